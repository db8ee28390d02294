//! Which memory layout an image has at each layer. Data and `reshape` give channels-first
//! images (`[n, c, h, w]`, as PyTorch holds them); the image layers run channels-last
//! (`[n, h, w, c]`: the fused conv op's im2col rows are contiguous, and batch norm's and
//! dropout2d's channel is the last axis). The network inserts a layout step where the two
//! differ; the export reads the same plan to know which dense weight reads a channels-last
//! flatten.

use candle_core::Tensor;

use super::layers::{LayerSpec, Planned, RunLayer};
use super::network::Mode;
use crate::error::Result;

/// The layout of the image entering and leaving each planned layer (`true`: channels-last).
/// Only meaningful where that side is an image (`[c, h, w]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layouts {
    pub input_channels_last: bool,
    pub output_channels_last: bool,
}

/// Layers that read an image by its channel axis (or by pixels, as the fused conv does).
fn wants_channels_last(spec: &LayerSpec) -> bool {
    matches!(
        spec,
        LayerSpec::Conv2d(_)
            | LayerSpec::Maxpool(_)
            | LayerSpec::Avgpool(_)
            | LayerSpec::ConvTranspose2d(_)
            | LayerSpec::Upsample(_)
            | LayerSpec::Batchnorm(_)
            | LayerSpec::Dropout2d(_)
    )
}

/// Whether the features a flatten gives reach a layer that needs them in PyTorch's (c, h, w)
/// order: a batch norm (its per-feature statistics) or a reshape (its image). A dense layer reads
/// a channels-last flatten as it is (its columns are permuted at export instead), as every model
/// before these layers did.
fn flatten_needs_channels_first(after: &[Planned]) -> bool {
    after
        .iter()
        .find(|l| !matches!(l.spec, LayerSpec::Dropout(_) | LayerSpec::Activation(_)))
        .is_some_and(|l| matches!(l.spec, LayerSpec::Batchnorm(_) | LayerSpec::Reshape(_)))
}

/// The layout at each layer of a plan.
pub fn layouts(planned: &[Planned]) -> Vec<Layouts> {
    let mut current = false;
    let mut out = Vec::with_capacity(planned.len());
    for (i, p) in planned.iter().enumerate() {
        let input = if p.input.len() != 3 {
            false
        } else if wants_channels_last(&p.spec) {
            true
        } else if matches!(p.spec, LayerSpec::Flatten) {
            current && !flatten_needs_channels_first(&planned[i + 1..])
        } else {
            current
        };
        let output = p.output.len() == 3 && !matches!(p.spec, LayerSpec::Reshape(_)) && input;
        out.push(Layouts { input_channels_last: input, output_channels_last: output });
        current = output;
    }
    out
}

/// For each planned layer, the image its 1-D input was flattened from, `[c, h, w]`, when the
/// network hands it the values in (h, w, c) order (a channels-last flatten, through any dropout
/// or activation); `None` where they come in PyTorch's (c, h, w) order, or the two orders agree
/// (one channel, or one pixel). A weight that reads those values is held in that order: transfer
/// compares the source's and the target's before copying one, and the export permutes it.
pub fn flattened_channels_last(planned: &[Planned]) -> Vec<Option<[usize; 3]>> {
    let layouts = layouts(planned);
    let mut pending = None;
    let mut out = Vec::with_capacity(planned.len());
    for (i, p) in planned.iter().enumerate() {
        out.push(pending);
        pending = match (&p.spec, p.input.as_slice()) {
            (LayerSpec::Flatten, &[c, h, w]) if layouts[i].input_channels_last && c > 1 && h * w > 1 => Some([c, h, w]),
            (LayerSpec::Dropout(_) | LayerSpec::Activation(_), _) => pending,
            _ => None,
        };
    }
    out
}

/// NCHW data to the channels-last layout the image layers run in (free for one channel).
pub struct ToChannelsLast;

impl RunLayer for ToChannelsLast {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        Ok(x.permute((0, 2, 3, 1))?.contiguous()?)
    }

    fn kind(&self) -> &'static str {
        "layout"
    }
}

/// Channels-last back to NCHW: before a flatten that feeds a batch norm or a reshape, and at
/// the end of a model whose output is an image (a decoder's), so it has the plan's shape.
pub struct ToChannelsFirst;

impl RunLayer for ToChannelsFirst {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        Ok(x.permute((0, 3, 1, 2))?.contiguous()?)
    }

    fn kind(&self) -> &'static str {
        "layout"
    }
}
