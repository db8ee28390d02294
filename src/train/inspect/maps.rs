//! What the layers hold and make: the first conv layer's filters, each conv layer's activation
//! maps for one input, and a 2-D model's decision boundary with its hidden units' responses.

use candle_core::{Device, Tensor};

use super::samples::{denormalise, input_tensor};
use super::{BoundaryMap, Filters, InputRef, InspectReply, LayerMaps, NeuronMap, BOUNDARY_RES, MAX_MAPS, NEURON_RES};
use crate::data::{Dataset, SetKind};
use crate::error::Result;
use crate::model::{Mode, Network};
use crate::task::Task;

/// Validation points sent with a boundary at most.
pub const MAX_POINTS: usize = 1000;
/// Hidden dense layers wider than this get no neuron maps (too many tiles to read).
pub const MAX_NEURON_UNITS: usize = 16;

/// The first conv layer's weights, `[out, in, k, k]`.
pub fn filters(net: &Network) -> InspectReply {
    let names = net.run_names();
    let Some(i) = (0..names.len()).find(|&i| net.layer_kind(i) == "conv block") else {
        return InspectReply::Unavailable("the model has no conv layer, so no filters to show".into());
    };
    let weight = format!("{}.weight", names[i]);
    let Some((_, w)) = net.params().iter().find(|(n, _)| *n == weight) else {
        return InspectReply::Unavailable(format!("the conv layer's weight `{weight}` is missing"));
    };
    let &[out, in_channels, k, _] = w.dims() else {
        return InspectReply::Unavailable(format!("`{weight}` is {:?}, not [out, in, k, k]", w.dims()));
    };
    match w.flatten_all().and_then(|t| t.to_vec1::<f32>()) {
        Ok(values) => InspectReply::Filters(Filters { layer: names[i].clone(), out, in_channels, k, values }),
        Err(e) => InspectReply::Unavailable(format!("reading `{weight}` failed: {e}")),
    }
}

/// Each conv layer's output for one input, channel-major, at most `MAX_MAPS` channels.
pub fn activations(net: &Network, data: &Dataset, input: &InputRef, device: &Device) -> InspectReply {
    if data.kind != SetKind::Image {
        return InspectReply::Unavailable("activation maps are for image models".into());
    }
    let x = match input_tensor(data, input, device) {
        Ok(x) => x,
        Err(why) => return InspectReply::Unavailable(why),
    };
    let mut maps: Vec<Result<LayerMaps>> = Vec::new();
    let forward = net.forward_tapped(&x, &mut Mode::Eval, &mut |tap| {
        if tap.kind == "conv block" {
            maps.push(channel_major(tap.name, tap.output));
        }
    });
    if let Err(e) = forward {
        return InspectReply::Unavailable(format!("running the model failed: {e}"));
    }
    if maps.is_empty() {
        return InspectReply::Unavailable("the model has no conv layer, so no activation maps".into());
    }
    match maps.into_iter().collect::<Result<Vec<_>>>() {
        Ok(maps) => InspectReply::Activations(maps),
        Err(e) => InspectReply::Unavailable(format!("reading the activation maps failed: {e}")),
    }
}

/// A channels-last `[1, h, w, c]` output to at most `MAX_MAPS` channel-major maps.
fn channel_major(name: &str, output: &Tensor) -> Result<LayerMaps> {
    let (_, h, w, c) = output.dims4()?;
    let values: Vec<f32> = output.flatten_all()?.to_vec1()?;
    let channels = c.min(MAX_MAPS);
    let mut out = vec![0f32; channels * h * w];
    for p in 0..h * w {
        for ch in 0..channels {
            out[ch * h * w + p] = values[p * c + ch];
        }
    }
    Ok(LayerMaps { name: name.to_string(), h, w, channels, values: out })
}

/// The validation points' raw extent with a margin of a tenth on each side.
fn extent(points: &[[f32; 2]]) -> [f32; 4] {
    let mut e = [f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY];
    for p in points {
        e = [e[0].min(p[0]), e[1].max(p[0]), e[2].min(p[1]), e[3].max(p[1])];
    }
    if !e.iter().all(|v| v.is_finite()) {
        return [-1.0, 1.0, -1.0, 1.0];
    }
    let (mx, my) = (((e[1] - e[0]) * 0.1).max(1e-3), ((e[3] - e[2]) * 0.1).max(1e-3));
    [e[0] - mx, e[1] + mx, e[2] - my, e[3] + my]
}

/// A `res × res` grid over `extent` in raw units, normalised as the model reads it, rows from
/// `y_min` up.
fn grid(data: &Dataset, extent: [f32; 4], res: usize, device: &Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(res * res * 2);
    for row in 0..res {
        let y = extent[2] + (row as f32 + 0.5) / res as f32 * (extent[3] - extent[2]);
        for col in 0..res {
            v.push(extent[0] + (col as f32 + 0.5) / res as f32 * (extent[1] - extent[0]));
            v.push(y);
        }
    }
    data.normalization.apply(&mut v);
    Ok(Tensor::from_vec(v, (res * res, 2), device)?)
}

fn to_u8(v: f32, lo: f32, hi: f32) -> u8 {
    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    (t.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// A model of 2-D points: class probabilities over the data's extent, the validation points, and
/// each hidden unit's response when every hidden dense layer is narrow. `None` for other models.
pub fn boundary(net: &Network, task: Task, data: &Dataset, device: &Device) -> Result<Option<BoundaryMap>> {
    if data.kind != SetKind::Points2d || task != Task::Classify || data.input_shape != [2] {
        return Ok(None);
    }
    let n = data.validation.len().min(MAX_POINTS);
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let mut v = data.validation.sample_vec(i)?;
        denormalise(&data.normalization, &mut v);
        points.push([v[0], v[1]]);
    }
    let labels = data.validation.labels[..n].to_vec();
    let extent = extent(&points);
    let probs = super::samples::probabilities(net, task, &grid(data, extent, BOUNDARY_RES, device)?)?;
    let classes = probs.first().map_or(0, Vec::len);
    let probs: Vec<u8> = probs.iter().flatten().map(|p| to_u8(*p, 0.0, 1.0)).collect();
    let info = super::InsideInfo::of(net, &data.input_shape, data.kind);
    let mut neurons = Vec::new();
    if !info.hidden_units.is_empty() && info.hidden_units.iter().all(|u| *u <= MAX_NEURON_UNITS) {
        let last_dense = (0..net.run_layers()).rev().find(|&i| net.layer_kind(i) == "dense");
        let mut outputs: Vec<(String, Tensor)> = Vec::new();
        net.forward_tapped(&grid(data, extent, NEURON_RES, device)?, &mut Mode::Eval, &mut |tap| {
            if tap.kind == "dense" && Some(tap.index) != last_dense {
                outputs.push((tap.name.to_string(), tap.output.clone()));
            }
        })?;
        for (layer, out) in outputs {
            let values: Vec<Vec<f32>> = out.to_vec2()?;
            let units = values.first().map_or(0, Vec::len);
            for unit in 0..units {
                let column: Vec<f32> = values.iter().map(|r| r[unit]).collect();
                let lo = column.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = column.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let values = column.iter().map(|v| to_u8(*v, lo, hi)).collect();
                neurons.push(NeuronMap { layer: layer.clone(), unit, values, lo, hi });
            }
        }
    }
    Ok(Some(BoundaryMap { extent, res: BOUNDARY_RES, classes, probs, points, labels, neurons }))
}
