//! `conv2d`, `maxpool` and `avgpool`: image layers. Images enter as `[c, h, w]` and run
//! channels-last from the first of these layers on; the network fuses a conv with the activation
//! and max-pool after it into one CPU op.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{checked, elements, field_error, kaiming, Mode, ParamSpec, Planned, RunLayer};
use crate::error::Result;
use crate::export::layout::RefLayer;
use crate::model::spec::{conv_output_size, Activation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conv2dSpec {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Self { channels: 32, kernel: 3, stride: 1, padding: 0, activation: None }
    }
}

fn padded(size: usize, padding: usize) -> Option<usize> {
    padding.checked_mul(2)?.checked_add(size)
}

impl Conv2dSpec {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "conv {} {k}x{k}, stride {}, padding {}",
            self.channels,
            self.stride,
            self.padding,
            k = self.kernel
        );
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
                format!(
                    "a conv2d layer needs an image (channels x height x width) but gets {input:?}; images come from image data sets"
                ),
            ));
        };
        for (field, value) in [("channels", self.channels), ("stride", self.stride), ("kernel", self.kernel)] {
            if value == 0 {
                return Err(field_error(key, field, "must be at least 1"));
            }
        }
        let (Some(oh), Some(ow)) = (
            conv_output_size(h, self.kernel, self.stride, self.padding),
            conv_output_size(w, self.kernel, self.stride, self.padding),
        ) else {
            if padded(h, self.padding).is_none() || padded(w, self.padding).is_none() {
                return Err(field_error(
                    key,
                    "padding",
                    format!("padding {} overflows the size of the {h}x{w} input of this layer", self.padding),
                ));
            }
            return Err(field_error(
                key,
                "kernel",
                format!(
                    "kernel {} does not fit the {h}x{w} input of this layer (padding {}); at most {}",
                    self.kernel,
                    self.padding,
                    h.min(w) + 2 * self.padding.min(h.max(w))
                ),
            ));
        };
        // the weights, the output and one image's im2col patches must all be addressable
        let k = self.kernel;
        let weights = c.checked_mul(k).and_then(|n| n.checked_mul(k)).and_then(|n| n.checked_add(1));
        if weights.and_then(|n| n.checked_mul(self.channels)).and_then(|n| elements(&[n])).is_none() {
            let blame = if self.channels > k { "channels" } else { "kernel" };
            return Err(field_error(key, blame, "makes the layer's weights too large to address"));
        }
        let big_padding = self.padding > h.max(w);
        checked(
            key,
            if big_padding { "padding" } else { "channels" },
            vec![self.channels, oh, ow],
            "the layer's output",
        )?;
        checked(
            key,
            if big_padding { "padding" } else { "kernel" },
            vec![oh, ow, k, k, c],
            "the layer's im2col patches",
        )?;
        let fan_in = c * k * k;
        let params = vec![
            kaiming(format!("{name}.weight"), vec![self.channels, c, k, k], fan_in),
            kaiming(format!("{name}.bias"), vec![self.channels], fan_in),
        ];
        Ok((vec![self.channels, oh, ow], params))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        let mut layers = vec![RefLayer::Conv2d {
            in_channels: p.input[0],
            out_channels: self.channels,
            kernel_size: self.kernel,
            stride: self.stride,
            padding: self.padding,
            weight: p.params[0].name.clone(),
            bias: p.params[1].name.clone(),
        }];
        layers.extend(self.activation.map(RefLayer::activation));
        layers
    }
}

/// Max- or average-pooling over `size` x `size` windows with stride `size` (floor division, as
/// PyTorch's default `ceil_mode = False`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSpec {
    pub size: usize,
}

impl Default for PoolSpec {
    fn default() -> Self {
        Self { size: 2 }
    }
}

impl PoolSpec {
    pub fn plan(&self, key: &str, input: &[usize]) -> Result<Vec<usize>> {
        // the `kind = "cnn"` form calls the size `pool`
        let field = if key.starts_with("model.conv[") { "pool" } else { "size" };
        let &[c, h, w] = input else {
            return Err(field_error(
                key,
                "",
                format!("pooling needs an image (channels x height x width), not {input:?}"),
            ));
        };
        if self.size == 0 {
            return Err(field_error(key, field, "must be at least 1"));
        }
        if self.size > h || self.size > w {
            return Err(field_error(
                key,
                field,
                format!("pool {} is larger than the {h}x{w} feature map; at most {}", self.size, h.min(w)),
            ));
        }
        Ok(vec![c, h / self.size, w / self.size])
    }
}

/// Average pooling on a channels-last batch `[n, h, w, c]`, composed from candle ops.
pub struct AvgPool {
    pub size: usize,
}

impl RunLayer for AvgPool {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let s = self.size;
        let (oh, ow) = (h / s, w / s);
        let x = x.narrow(1, 0, oh * s)?.narrow(2, 0, ow * s)?.contiguous()?;
        Ok(x.reshape((n, oh, s, ow, s, c))?.mean(4)?.mean(2)?)
    }

    fn kind(&self) -> &'static str {
        "avg-pool"
    }
}
