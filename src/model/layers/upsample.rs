//! The layers a decoder grows an image with: `reshape` (features to an image, PyTorch's
//! `Unflatten`), `conv_transpose2d` and `upsample` (nearest). Images run channels-last
//! (`[n, h, w, c]`); `reshape` gives channels-first rows (as PyTorch's `Unflatten` does) and the
//! network turns them channels-last before the next image layer.
//!
//! The transposed convolution is one fused op on the CPU (`decoder_ops::ConvTranspose`: a GEMM
//! and a gather of the kernel taps, with its own backward). Elsewhere it is composed from candle
//! ops whose gradients are plain (matmul, narrow, zero padding, add), not candle's
//! `conv_transpose2d`: every weight gradient of it is then right by construction, on any image
//! shape (candle's conv backward is wrong on non-square inputs).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{checked, elements, field_error, kaiming, Mode, ParamSpec, Planned, RunLayer};
use crate::error::Result;
use crate::export::layout::RefLayer;
use crate::model::spec::Activation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvTranspose2dSpec {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Rows and columns added at the bottom and right of the output (less than `stride`),
    /// to reach sizes that `stride` alone cannot.
    pub output_padding: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

impl Default for ConvTranspose2dSpec {
    fn default() -> Self {
        Self { channels: 16, kernel: 4, stride: 2, padding: 1, output_padding: 0, activation: None }
    }
}

/// PyTorch's output size: `(size - 1) * stride - 2 * padding + kernel + output_padding`, or
/// `None` when it is not positive or overflows.
pub fn transposed_size(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Option<usize> {
    let grown = size.checked_sub(1)?.checked_mul(stride)?.checked_add(kernel)?.checked_add(output_padding)?;
    grown.checked_sub(padding.checked_mul(2)?).filter(|&n| n > 0)
}

impl ConvTranspose2dSpec {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "transposed conv {} {k}x{k}, stride {}, padding {}",
            self.channels,
            self.stride,
            self.padding,
            k = self.kernel
        );
        if self.output_padding > 0 {
            s.push_str(&format!(", output padding {}", self.output_padding));
        }
        if let Some(a) = self.activation {
            s.push_str(&format!(", {}", a.title()));
        }
        s
    }

    pub fn plan(&self, key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let &[c, h, w] = input else {
            return Err(field_error(
                key,
                "",
                format!("a transposed conv needs an image (channels x height x width) but gets {input:?}; put a reshape before it"),
            ));
        };
        for (field, value) in [("channels", self.channels), ("kernel", self.kernel), ("stride", self.stride)] {
            if value == 0 {
                return Err(field_error(key, field, "must be at least 1"));
            }
        }
        if self.output_padding >= self.stride {
            return Err(field_error(
                key,
                "output_padding",
                format!("{} must be smaller than the stride ({})", self.output_padding, self.stride),
            ));
        }
        let size = |n| transposed_size(n, self.kernel, self.stride, self.padding, self.output_padding);
        let (Some(oh), Some(ow)) = (size(h), size(w)) else {
            return Err(field_error(
                key,
                "padding",
                format!(
                    "padding {} leaves no output from the {h}x{w} input (kernel {}, stride {})",
                    self.padding, self.kernel, self.stride
                ),
            ));
        };
        let k = self.kernel;
        let weights = c.checked_mul(k).and_then(|n| n.checked_mul(k)).and_then(|n| n.checked_mul(self.channels));
        if weights.and_then(|n| elements(&[n])).is_none() {
            let blame = if self.channels > k { "channels" } else { "kernel" };
            return Err(field_error(key, blame, "makes the layer's weights too large to address"));
        }
        checked(key, "channels", vec![self.channels, oh, ow], "the layer's output")?;
        // each input pixel's contribution to every kernel position, before they are placed
        checked(key, "kernel", vec![h, w, k, k, self.channels], "the layer's contributions")?;
        checked(
            key,
            "stride",
            vec![(h - 1) * self.stride + k, (w - 1) * self.stride + k, self.channels],
            "the layer's output",
        )?;
        // PyTorch's ConvTranspose2d: the weight is [in, out, kh, kw] and its fan-in is out * kh * kw
        let fan_in = self.channels * k * k;
        let params = vec![
            kaiming(format!("{name}.weight"), vec![c, self.channels, k, k], fan_in),
            kaiming(format!("{name}.bias"), vec![self.channels], fan_in),
        ];
        Ok((vec![self.channels, oh, ow], params))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        let mut layers = vec![RefLayer::ConvTranspose2d {
            in_channels: p.input[0],
            out_channels: self.channels,
            kernel_size: self.kernel,
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            weight: p.params[0].name.clone(),
            bias: p.params[1].name.clone(),
        }];
        layers.extend(self.activation.map(RefLayer::activation));
        layers
    }

    pub fn build(&self, params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
        self.build_on(params, false)
    }

    /// The layer composed from candle ops even on the CPU, as it runs on other devices (tests and
    /// `examples/decoder_timing.rs` compare it with the fused op).
    pub fn build_composed(&self, params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
        self.build_on(params, true)
    }

    /// [`ConvTranspose2dSpec::build`], composed from candle ops when `portable`.
    pub fn build_on(&self, params: &[Tensor], portable: bool) -> Result<Box<dyn RunLayer>> {
        Ok(Box::new(ConvTranspose {
            weight: params[0].clone(),
            bias: params[1].clone(),
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            act: self.activation,
            portable,
        }))
    }
}

/// A transposed convolution on a channels-last batch. Every input pixel times the weight gives
/// its contribution at each kernel position (one matmul). Output row `iy * stride + ky` is, with
/// `ky = q * stride + r`, row `iy + q` of phase `r`: so each of the `stride x stride` phases is a
/// sum of contributions shifted by whole input pixels (small tensors at the input's size), and
/// interleaving the phases gives the output. The padding is cut off last.
pub struct ConvTranspose {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
    act: Option<Activation>,
    /// The composed form even on the CPU (the fused op's tests compare the two).
    portable: bool,
}

impl RunLayer for ConvTranspose {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        if x.device().is_cpu() && !self.portable {
            let op =
                crate::model::decoder_ops::ConvTranspose::new(self.stride, self.padding, self.output_padding, self.act);
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?);
        }
        self.composed(x)
    }

    fn kind(&self) -> &'static str {
        "transposed conv"
    }
}

impl ConvTranspose {
    fn composed(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, cin) = x.dims4()?;
        let (_, cout, k, _) = self.weight.dims4()?;
        let (s, p, op) = (self.stride, self.padding, self.output_padding);
        // [in, out, kh, kw] -> [in, kh * kw * out]
        let wm = self.weight.permute((0, 2, 3, 1))?.contiguous()?.reshape((cin, k * k * cout))?;
        let parts = x.contiguous()?.reshape((n * h * w, cin))?.matmul(&wm)?.reshape((n, h, w, k * k * cout))?;
        // kernel taps per phase along one axis: ky = q * s + r for q < taps
        let taps = k.div_ceil(s);
        let (ph, pw) = (h + taps - 1, w + taps - 1);
        let mut rows = Vec::with_capacity(s);
        for r in 0..s {
            let mut columns = Vec::with_capacity(s);
            for c in 0..s {
                let mut phase: Option<Tensor> = None;
                for (qy, ky) in (r..k).step_by(s).enumerate() {
                    for (qx, kx) in (c..k).step_by(s).enumerate() {
                        let part = parts.narrow(3, (ky * k + kx) * cout, cout)?;
                        let shifted =
                            part.pad_with_zeros(1, qy, taps - 1 - qy)?.pad_with_zeros(2, qx, taps - 1 - qx)?;
                        phase = Some(match phase {
                            None => shifted,
                            Some(sum) => (sum + shifted)?,
                        });
                    }
                }
                // a stride larger than the kernel leaves phases no tap reaches
                let phase = match phase {
                    Some(t) => t,
                    None => Tensor::zeros((n, ph, pw, cout), x.dtype(), x.device())?,
                };
                columns.push(phase);
            }
            rows.push(Tensor::stack(&columns, 3)?); // [n, ph, pw, s, cout]
        }
        // [n, ph, s, pw, s, cout]: row j * s + r, column i * s + c
        let mut y = Tensor::stack(&rows, 2)?.reshape((n, ph * s, pw * s, cout))?;
        let (oh, ow) = ((h - 1) * s + k + op - 2 * p, (w - 1) * s + k + op - 2 * p);
        // output padding past the rows the phases hold is new zeros (then the bias)
        let (need_h, need_w) = (p + oh, p + ow);
        if need_h > ph * s {
            y = y.pad_with_zeros(1, 0, need_h - ph * s)?;
        }
        if need_w > pw * s {
            y = y.pad_with_zeros(2, 0, need_w - pw * s)?;
        }
        let y = y.narrow(1, p, oh)?.narrow(2, p, ow)?.broadcast_add(&self.bias)?;
        match self.act {
            Some(a) => crate::model::network::activate(&y, a),
            None => Ok(y),
        }
    }
}

/// Nearest-neighbour upsampling by a whole factor (PyTorch `Upsample(scale_factor, "nearest")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpsampleSpec {
    pub scale: usize,
}

impl Default for UpsampleSpec {
    fn default() -> Self {
        Self { scale: 2 }
    }
}

impl UpsampleSpec {
    pub fn plan(&self, key: &str, input: &[usize]) -> Result<Vec<usize>> {
        let &[c, h, w] = input else {
            return Err(field_error(
                key,
                "",
                format!(
                    "upsampling needs an image (channels x height x width), not {input:?}; put a reshape before it"
                ),
            ));
        };
        if self.scale == 0 {
            return Err(field_error(key, "scale", "must be at least 1"));
        }
        let (Some(oh), Some(ow)) = (h.checked_mul(self.scale), w.checked_mul(self.scale)) else {
            return Err(field_error(key, "scale", "makes the layer's output too large to address"));
        };
        checked(key, "scale", vec![c, oh, ow], "the layer's output")
    }
}

pub struct Upsample {
    pub scale: usize,
    /// The composed form even on the CPU (tests and timings compare the two).
    pub portable: bool,
}

impl RunLayer for Upsample {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        if x.device().is_cpu() && !self.portable {
            let op = crate::model::decoder_ops::Upsample { scale: self.scale };
            return Ok(x.contiguous()?.apply_op1(op)?);
        }
        let (n, h, w, c) = x.dims4()?;
        let s = self.scale;
        // each pixel repeated s x s times; the gradient of the broadcast sums the copies
        let y = x.reshape((n, h, 1, w, 1, c))?.broadcast_as((n, h, s, w, s, c))?.contiguous()?;
        Ok(y.reshape((n, h * s, w * s, c))?)
    }

    fn kind(&self) -> &'static str {
        "upsample"
    }
}

/// Features to a shape, as PyTorch's `Unflatten(1, shape)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReshapeSpec {
    pub shape: Vec<usize>,
}

impl Default for ReshapeSpec {
    fn default() -> Self {
        Self { shape: vec![16, 7, 7] }
    }
}

impl ReshapeSpec {
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        format!("reshape to {}", dims.join("x"))
    }

    pub fn plan(&self, key: &str, input: &[usize]) -> Result<Vec<usize>> {
        let &[features] = input else {
            return Err(field_error(
                key,
                "",
                format!("reshape reads features, not {input:?}; put a flatten or a dense layer before it"),
            ));
        };
        if self.shape.is_empty() || self.shape.len() > 3 || self.shape.contains(&0) {
            return Err(field_error(
                key,
                "shape",
                format!(
                    "{:?} is not a shape of 1 to 3 sizes of at least 1, such as [channels, height, width]",
                    self.shape
                ),
            ));
        }
        match elements(&self.shape) {
            Some(n) if n == features => Ok(self.shape.clone()),
            got => Err(field_error(
                key,
                "shape",
                format!(
                    "{:?} holds {} values but the layer before gives {features}; make the sizes multiply to {features}",
                    self.shape,
                    got.map_or_else(|| "too many".to_string(), |n| n.to_string())
                ),
            )),
        }
    }
}

pub struct Reshape {
    pub shape: Vec<usize>,
}

impl RunLayer for Reshape {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut dims = vec![x.dim(0)?];
        dims.extend_from_slice(&self.shape);
        Ok(x.contiguous()?.reshape(dims)?)
    }

    fn kind(&self) -> &'static str {
        "reshape"
    }
}
