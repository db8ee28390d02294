//! Validation samples as a person sees them, and the model's input for an `InputRef`.

use candle_core::{Device, Tensor};

use super::{InputRef, InspectReply, Picture, SampleView};
use crate::data::{Dataset, Normalization, SetKind, TextInfo};
use crate::error::Result;
use crate::model::{Mode, Network};
use crate::task::Task;

/// Samples asked for at once at most (the gallery asks for 24).
pub const MAX_SAMPLES: usize = 256;

/// Why an input cannot be read, for `InspectReply::Unavailable`.
pub type Refusal = String;

/// The normalised features of an input, as the model read them in training (`input_shape`
/// values); a raw input is normalised with the training split's normalisation.
pub fn features(data: &Dataset, input: &InputRef) -> std::result::Result<Vec<f32>, Refusal> {
    match input {
        InputRef::Validation(i) => {
            let len = data.validation.len();
            if *i >= len {
                return Err(format!("validation sample {i} does not exist: the split has {len}"));
            }
            data.validation.sample_vec(*i).map_err(|e| format!("validation sample {i} could not be read: {e}"))
        }
        InputRef::Raw(values) => {
            let want = data.feature_len();
            if values.len() != want {
                return Err(format!(
                    "the input has {} values but the model reads {want} ({:?})",
                    values.len(),
                    data.input_shape
                ));
            }
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(format!("input value {bad} is not a finite number"));
            }
            let mut v = values.clone();
            // token ids are never normalised
            if !data.kind.is_text() {
                data.normalization.apply(&mut v);
            }
            Ok(v)
        }
    }
}

/// `features` as a batch of one, `[1, input_shape...]`.
pub fn input_tensor(data: &Dataset, input: &InputRef, device: &Device) -> std::result::Result<Tensor, Refusal> {
    let v = features(data, input)?;
    let mut shape = vec![1];
    shape.extend_from_slice(&data.input_shape);
    Tensor::from_vec(v, shape, device).map_err(|e| format!("the input could not be made a tensor: {e}"))
}

/// Raw units back from normalised features (the inverse of `Normalization::apply`).
pub fn denormalise(norm: &Normalization, features: &mut [f32]) {
    let (m, s) = (norm.mean.len().max(1), norm.std.len().max(1));
    let scale = if norm.scale == 0.0 { 1.0 } else { norm.scale };
    for (i, v) in features.iter_mut().enumerate() {
        let mean = norm.mean.get(i % m).copied().unwrap_or(0.0);
        let std = norm.std.get(i % s).copied().unwrap_or(1.0);
        *v = (*v * std + mean) / scale;
    }
}

/// Channel-first raw pixels `[c, h, w]` to an interleaved 8-bit picture.
pub fn picture(raw: &[f32], shape: &[usize]) -> Option<Picture> {
    let &[c, h, w] = shape else { return None };
    if raw.len() != c * h * w || !(c == 1 || c == 3) {
        return None;
    }
    let mut bytes = vec![0u8; c * h * w];
    for ch in 0..c {
        for p in 0..h * w {
            bytes[p * c + ch] = raw[ch * h * w + p].round().clamp(0.0, 255.0) as u8;
        }
    }
    Some(Picture { w, h, channels: c, bytes })
}

/// The validation samples at `indices`, in that order.
pub fn samples(data: &Dataset, indices: &[usize]) -> InspectReply {
    if indices.len() > MAX_SAMPLES {
        return InspectReply::Unavailable(format!(
            "{} samples asked for at once; at most {MAX_SAMPLES}",
            indices.len()
        ));
    }
    let mut out = Vec::with_capacity(indices.len());
    for &index in indices {
        let mut v = match features(data, &InputRef::Validation(index)) {
            Ok(v) => v,
            Err(why) => return InspectReply::Unavailable(why),
        };
        let truth = data.validation.labels.get(index).copied().unwrap_or(0);
        let mut view = SampleView { index, truth, picture: None, text: None, point: None, features: Vec::new() };
        match data.kind {
            SetKind::Text | SetKind::TextStream => {
                view.text = data.text.as_ref().map(|t| t.decode(&TextInfo::ids_of(&v)));
            }
            SetKind::Image => {
                denormalise(&data.normalization, &mut v);
                view.picture = picture(&v, &data.input_shape);
            }
            SetKind::Points2d => {
                denormalise(&data.normalization, &mut v);
                view.point = (v.len() == 2).then(|| [v[0], v[1]]);
                view.features = v;
            }
            SetKind::Tabular => {
                denormalise(&data.normalization, &mut v);
                view.features = v;
            }
        }
        out.push(view);
    }
    InspectReply::Samples(out)
}

/// Class probabilities of a batch of inputs, `[n, classes]` (a single sigmoid output reads as
/// two classes), in evaluation mode.
pub fn probabilities(net: &Network, task: Task, x: &Tensor) -> Result<Vec<Vec<f32>>> {
    let logits = net.forward(x, &mut Mode::Eval)?.detach();
    let p = candle_nn::ops::softmax_last_dim(&task.logits_matrix(&logits)?)?;
    Ok(p.to_vec2()?)
}

/// The model's class probabilities for one input.
pub fn classify(net: &Network, task: Task, data: &Dataset, input: &InputRef, device: &Device) -> InspectReply {
    if task != Task::Classify {
        return InspectReply::Unavailable(format!("a {} model has no class probabilities", task.title()));
    }
    let x = match input_tensor(data, input, device) {
        Ok(x) => x,
        Err(why) => return InspectReply::Unavailable(why),
    };
    match probabilities(net, task, &x) {
        Ok(mut p) if p.len() == 1 => InspectReply::Probabilities(p.remove(0)),
        Ok(_) => InspectReply::Unavailable("the model gave no probabilities for the input".into()),
        Err(e) => InspectReply::Unavailable(format!("classifying the input failed: {e}")),
    }
}
