//! `attention` (multi-head self-attention, `nn.MultiheadAttention`), `layernorm`
//! (`nn.LayerNorm`) and `transformer_block` (pre-norm `nn.TransformerEncoderLayer`: attention and
//! a GELU MLP, each with a residual connection), composed from candle ops.

use candle_core::{Device, Tensor, D};
use serde::{Deserialize, Serialize};

use super::{checked, field_error, kaiming, Init, Mode, ParamSpec, Planned, RunLayer};
use crate::error::Result;
use crate::export::layout::RefLayer;

const EPS: f64 = 1e-5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionSpec {
    pub heads: usize,
    /// Each step sees only itself and earlier steps (language models).
    pub causal: bool,
}

impl Default for AttentionSpec {
    fn default() -> Self {
        Self { heads: 2, causal: false }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerNormSpec {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformerBlockSpec {
    pub heads: usize,
    /// Units of the MLP's hidden layer; left out: four times the width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ff: Option<usize>,
    pub causal: bool,
    pub dropout: f64,
}

impl Default for TransformerBlockSpec {
    fn default() -> Self {
        Self { heads: 2, ff: None, causal: true, dropout: 0.0 }
    }
}

fn sequence_width(key: &str, input: &[usize], what: &str) -> Result<(usize, usize)> {
    match input {
        &[t, d] => Ok((t, d)),
        _ => Err(field_error(key, "", format!("{what} reads a sequence (time x features), not {input:?}"))),
    }
}

fn check_heads(key: &str, heads: usize, width: usize) -> Result<()> {
    if heads == 0 || !width.is_multiple_of(heads) {
        let fits: Vec<String> =
            (1..=width.min(16)).filter(|h| width.is_multiple_of(*h)).map(|h| h.to_string()).collect();
        return Err(field_error(
            key,
            "heads",
            format!("{heads} heads do not divide the width {width}; use one of {}", fits.join(", ")),
        ));
    }
    Ok(())
}

/// `nn.MultiheadAttention`'s tensors: packed q, k, v projection and the output projection.
fn attention_params(prefix: &str, d: usize) -> Vec<ParamSpec> {
    let xavier = (6.0 / (d + 3 * d) as f32).sqrt();
    vec![
        ParamSpec::new(format!("{prefix}.in_proj_weight"), vec![3 * d, d], Init::Uniform(xavier)),
        ParamSpec::new(format!("{prefix}.in_proj_bias"), vec![3 * d], Init::Constant(0.0)),
        kaiming(format!("{prefix}.out_proj.weight"), vec![d, d], d),
        ParamSpec::new(format!("{prefix}.out_proj.bias"), vec![d], Init::Constant(0.0)),
    ]
}

fn norm_params(prefix: &str, d: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(format!("{prefix}.weight"), vec![d], Init::Constant(1.0)),
        ParamSpec::new(format!("{prefix}.bias"), vec![d], Init::Constant(0.0)),
    ]
}

impl AttentionSpec {
    pub fn describe(&self) -> String {
        format!("attention, {} heads{}", self.heads, if self.causal { ", causal" } else { "" })
    }

    pub fn plan(&self, key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let (t, d) = sequence_width(key, input, "attention")?;
        check_heads(key, self.heads, d)?;
        checked(key, "heads", vec![self.heads, t, t], "the attention scores")?;
        checked(key, "", vec![3 * d, d], "the projections")?;
        Ok((input.to_vec(), attention_params(name, d)))
    }

    pub fn build(&self, params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
        Ok(Box::new(Attention { heads: self.heads, causal: self.causal, w: params.to_vec() }))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        vec![RefLayer::MultiheadAttention {
            embed_dim: p.input[1],
            num_heads: self.heads,
            causal: self.causal,
            batch_first: true,
            prefix: p.name.clone(),
        }]
    }
}

pub fn plan_layernorm(key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
    // images run channels-last, so "the last axis" would mean channels here but width in the
    // [c, h, w] a preset and PyTorch see: refused rather than ambiguous
    let (1 | 2) = input.len() else {
        return Err(field_error(
            key,
            "",
            format!("layer norm takes features or a sequence, not a {input:?} image; add a flatten before it"),
        ));
    };
    let Some(&d) = input.last() else { return Err(field_error(key, "", "layer norm needs features")) };
    Ok((input.to_vec(), norm_params(name, d)))
}

pub fn build_layernorm(params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
    Ok(Box::new(LayerNorm { weight: params[0].clone(), bias: params[1].clone() }))
}

pub fn reference_layernorm(p: &Planned) -> Vec<RefLayer> {
    vec![RefLayer::LayerNorm {
        normalized_shape: p.params[0].shape[0],
        eps: EPS,
        weight: p.params[0].name.clone(),
        bias: p.params[1].name.clone(),
    }]
}

impl TransformerBlockSpec {
    pub fn describe(&self) -> String {
        let ff = self.ff.map_or("4x".to_string(), |f| f.to_string());
        format!("transformer block, {} heads, MLP {ff}{}", self.heads, if self.causal { ", causal" } else { "" })
    }

    fn ff_units(&self, d: usize) -> usize {
        self.ff.unwrap_or(4 * d)
    }

    pub fn plan(&self, key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let (t, d) = sequence_width(key, input, "a transformer block")?;
        check_heads(key, self.heads, d)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(field_error(key, "dropout", format!("{} is not a probability in [0, 1)", self.dropout)));
        }
        let ff = self.ff_units(d);
        if ff == 0 {
            return Err(field_error(key, "ff", "must be at least 1"));
        }
        checked(key, "ff", vec![ff, d.max(t)], "the MLP")?;
        checked(key, "heads", vec![self.heads, t, t], "the attention scores")?;
        let mut params = attention_params(&format!("{name}.self_attn"), d);
        params.push(kaiming(format!("{name}.linear1.weight"), vec![ff, d], d));
        params.push(kaiming(format!("{name}.linear1.bias"), vec![ff], d));
        params.push(kaiming(format!("{name}.linear2.weight"), vec![d, ff], ff));
        params.push(kaiming(format!("{name}.linear2.bias"), vec![d], ff));
        params.extend(norm_params(&format!("{name}.norm1"), d));
        params.extend(norm_params(&format!("{name}.norm2"), d));
        Ok((input.to_vec(), params))
    }

    pub fn build(&self, _p: &Planned, params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
        Ok(Box::new(TransformerBlock {
            attention: Attention { heads: self.heads, causal: self.causal, w: params[0..4].to_vec() },
            linear1: (params[4].clone(), params[5].clone()),
            linear2: (params[6].clone(), params[7].clone()),
            norm1: LayerNorm { weight: params[8].clone(), bias: params[9].clone() },
            norm2: LayerNorm { weight: params[10].clone(), bias: params[11].clone() },
            dropout: self.dropout,
        }))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        let d = p.input[1];
        vec![RefLayer::TransformerEncoderLayer {
            d_model: d,
            nhead: self.heads,
            dim_feedforward: self.ff_units(d),
            dropout: self.dropout,
            activation: "gelu".into(),
            norm_first: true,
            batch_first: true,
            causal: self.causal,
            prefix: p.name.clone(),
        }]
    }
}

/// `x · wᵀ + b` over the last dimension of `[batch, time, in]`.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (batch, time, inputs) = x.dims3()?;
    let y = x.contiguous()?.reshape((batch * time, inputs))?.matmul(&w.t()?)?.broadcast_add(b)?;
    Ok(y.reshape((batch, time, w.dim(0)?))?)
}

/// Softmax over the last dimension, from differentiable primitives.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `-1e9` above the diagonal: a step's scores for later steps vanish in the softmax.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?)
}

struct Attention {
    heads: usize,
    causal: bool,
    /// in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias
    w: Vec<Tensor>,
}

impl Attention {
    fn attend(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = linear(x, &self.w[0], &self.w[1])?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv.narrow(2, i * d, d)?.reshape((b, t, h, dh))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let mut scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? / (dh as f64).sqrt())?;
        if self.causal {
            scores = scores.broadcast_add(&causal_mask(t, x.device())?)?;
        }
        let out = softmax_last(&scores)?.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, t, d))?;
        linear(&out, &self.w[2], &self.w[3])
    }
}

impl RunLayer for Attention {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        self.attend(x)
    }

    fn kind(&self) -> &'static str {
        "attention"
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn norm(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + EPS)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

impl RunLayer for LayerNorm {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        self.norm(x)
    }

    fn kind(&self) -> &'static str {
        "layer norm"
    }
}

struct TransformerBlock {
    attention: Attention,
    linear1: (Tensor, Tensor),
    linear2: (Tensor, Tensor),
    norm1: LayerNorm,
    norm2: LayerNorm,
    dropout: f64,
}

impl RunLayer for TransformerBlock {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let drop = |y: Tensor, mode: &mut Mode<'_>| match mode {
            Mode::Train(rng) if self.dropout > 0.0 => crate::model::network::dropout(&y, self.dropout, rng),
            _ => Ok(y),
        };
        let a = drop(self.attention.attend(&self.norm1.norm(x)?)?, mode)?;
        let x = (x + a)?;
        let hidden = linear(&self.norm2.norm(&x)?, &self.linear1.0, &self.linear1.1)?.gelu_erf()?;
        let hidden = drop(hidden, mode)?;
        let f = drop(linear(&hidden, &self.linear2.0, &self.linear2.1)?, mode)?;
        Ok((x + f)?)
    }

    fn kind(&self) -> &'static str {
        "transformer block"
    }
}
