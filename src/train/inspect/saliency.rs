//! Saliency: which input values the chosen class's log-probability is most sensitive to.
//!
//! The gradient is of log p(class | x) with respect to the *normalised* input (the single
//! sigmoid head's logits `[0, z]` have no gradient through column 0, its log-probability does).
//! Integrated gradients average that gradient along the straight path from a baseline (a black
//! image in raw units) to the input, at `m` midpoints evaluated as one batch: evaluation mode
//! makes the samples independent (no dropout, batch norm on its running statistics).

use candle_core::{Tensor, Var, D};

use super::samples::{input_tensor, Refusal};
use super::{InputRef, InspectReply, SaliencyMap, SaliencyMethod};
use crate::data::{Dataset, SetKind};
use crate::error::{Error, Result};
use crate::model::{Mode, Network};
use crate::task::Task;

/// Integrated-gradient steps at most (they run as one batch).
pub const MAX_IG_STEPS: usize = 256;

/// log p(class | x) for each sample of a batch `x`.
pub fn log_p(net: &Network, task: Task, x: &Tensor, class: usize) -> Result<Vec<f32>> {
    let logits = net.forward(x, &mut Mode::Eval)?.detach();
    let lp = candle_nn::ops::log_softmax(&task.logits_matrix(&logits)?, D::Minus1)?;
    Ok(lp.narrow(1, class, 1)?.flatten_all()?.to_vec1()?)
}

/// d log p(class | x_i) / d x_i for each sample of a batch `x` (`[n, shape...]`), flattened per
/// sample in `x`'s layout.
pub fn gradient(net: &Network, task: Task, x: &Tensor, class: usize) -> Result<Vec<f32>> {
    let var = Var::from_tensor(x)?;
    let logits = net.forward(var.as_tensor(), &mut Mode::Eval)?;
    let lp = candle_nn::ops::log_softmax(&task.logits_matrix(&logits)?, D::Minus1)?;
    // samples are independent in evaluation: the sum's gradient at x_i is sample i's own
    let total = lp.narrow(1, class, 1)?.sum_all()?;
    let grads = total.backward()?;
    let g = grads
        .get(var.as_tensor())
        .ok_or_else(|| Error::Other("no gradient reached the model's input (a layer does not pass one back)".into()))?;
    Ok(g.flatten_all()?.to_vec1()?)
}

/// Integrated gradients of log p(class) from `baseline` to `x` (both one sample, `[1, shape...]`)
/// with `steps` midpoints: per input value (x − x′) · mean gradient, and log p(x) − log p(x′).
pub fn integrated(
    net: &Network,
    task: Task,
    x: &Tensor,
    baseline: &Tensor,
    class: usize,
    steps: usize,
) -> Result<(Vec<f32>, f32)> {
    let steps = steps.max(1);
    let diff = (x - baseline)?;
    let alphas: Vec<f32> = (0..steps).map(|k| (k as f32 + 0.5) / steps as f32).collect();
    let mut path = Vec::with_capacity(steps);
    for a in &alphas {
        path.push((baseline + (&diff * f64::from(*a))?)?);
    }
    let batch = Tensor::cat(&path, 0)?;
    let g = gradient(net, task, &batch, class)?;
    let n = diff.elem_count();
    let d: Vec<f32> = diff.flatten_all()?.to_vec1()?;
    let mut attribution = vec![0f32; n];
    for row in g.chunks_exact(n) {
        for (a, gi) in attribution.iter_mut().zip(row) {
            *a += gi;
        }
    }
    for (a, di) in attribution.iter_mut().zip(&d) {
        *a = *a / steps as f32 * di;
    }
    let ends = log_p(net, task, &Tensor::cat(&[x, baseline], 0)?, class)?;
    Ok((attribution, ends[0] - ends[1]))
}

/// Per-sample values `[c, h, w]` (channels first, as the data holds them) or `[features]` to a
/// map of `h * w` positions: max over channels of |v|, or the signed sum over channels.
pub fn to_map(values: &[f32], shape: &[usize], signed: bool) -> (Vec<f32>, usize, usize) {
    let (c, h, w) = match *shape {
        [c, h, w] => (c, h, w),
        _ => (1, 1, values.len()),
    };
    let mut map = vec![0f32; h * w];
    for ch in 0..c {
        for (p, m) in map.iter_mut().enumerate() {
            let v = values[ch * h * w + p];
            if signed {
                *m += v;
            } else {
                *m = m.max(v.abs());
            }
        }
    }
    (map, h, w)
}

/// Answers a saliency request from the session's network.
pub fn saliency(
    net: &Network,
    task: Task,
    data: &Dataset,
    input: &InputRef,
    class: usize,
    method: SaliencyMethod,
    device: &candle_core::Device,
) -> InspectReply {
    match try_saliency(net, task, data, input, class, method, device) {
        Ok(Ok(map)) => InspectReply::Saliency(map),
        Ok(Err(why)) => InspectReply::Unavailable(why),
        Err(e) => InspectReply::Unavailable(format!("computing the saliency failed: {e}")),
    }
}

fn try_saliency(
    net: &Network,
    task: Task,
    data: &Dataset,
    input: &InputRef,
    class: usize,
    method: SaliencyMethod,
    device: &candle_core::Device,
) -> Result<std::result::Result<SaliencyMap, Refusal>> {
    if task != Task::Classify {
        return Ok(Err(format!("saliency needs a classifier; this is a {} model", task.title())));
    }
    if data.kind.is_text() {
        return Ok(Err("token ids have no gradient: saliency is for images, tables and points".into()));
    }
    let classes = data.num_classes();
    if class >= classes {
        return Ok(Err(format!("class {class} does not exist: the model has {classes}")));
    }
    let x = match input_tensor(data, input, device) {
        Ok(x) => x,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(match method {
        SaliencyMethod::Gradient => {
            let g = gradient(net, task, &x, class)?;
            let (map, h, w) = to_map(&g, &data.input_shape, false);
            SaliencyMap { map, h, w, signed: false, sum: 0.0, delta_log_p: 0.0 }
        }
        SaliencyMethod::Integrated { steps } => {
            if !matches!(data.kind, SetKind::Image | SetKind::Tabular) {
                return Ok(Err("integrated gradients are for images and tables (a black baseline)".into()));
            }
            if steps == 0 || steps > MAX_IG_STEPS {
                return Ok(Err(format!("{steps} integrated-gradient steps: 1 to {MAX_IG_STEPS}")));
            }
            let black = vec![0f32; data.feature_len()];
            let baseline = match input_tensor(data, &InputRef::Raw(black), device) {
                Ok(b) => b,
                Err(why) => return Ok(Err(why)),
            };
            let (attribution, delta) = integrated(net, task, &x, &baseline, class, steps)?;
            let sum = attribution.iter().sum();
            let (map, h, w) = to_map(&attribution, &data.input_shape, true);
            SaliencyMap { map, h, w, signed: true, sum, delta_log_p: delta }
        }
    }))
}
