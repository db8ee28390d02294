//! `batchnorm` (PyTorch's BatchNorm1d on features, BatchNorm2d on images) and `dropout2d`
//! (whole channels). Images arrive channels-last (`[n, h, w, c]`): the network puts them in that
//! layout before either layer, so the channel is always the last axis.

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::{field_error, Init, Mode, ParamSpec, Planned, RunLayer};
use crate::error::{Error, Result};
use crate::export::layout::RefLayer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchNormSpec {
    /// The weight of the newest batch in the running statistics (PyTorch's `momentum`).
    pub momentum: f64,
    /// Added to the variance before its square root.
    pub eps: f64,
}

impl Default for BatchNormSpec {
    fn default() -> Self {
        Self { momentum: 0.1, eps: 1e-5 }
    }
}

impl BatchNormSpec {
    pub fn describe(&self) -> String {
        "batch norm".into()
    }

    /// Features `[f]` or an image `[c, h, w]`: one weight, bias and pair of running statistics
    /// per feature or channel.
    pub fn plan(&self, key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let features = match input {
            [f] | [f, _, _] => *f,
            other => {
                return Err(field_error(
                    key,
                    "",
                    format!("batch norm normalises features or an image (channels x height x width), not {other:?}"),
                ))
            }
        };
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(field_error(key, "momentum", format!("{} is not in [0, 1]", self.momentum)));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(field_error(key, "eps", format!("{} must be a small positive number such as 1e-5", self.eps)));
        }
        let params = vec![
            ParamSpec::new(format!("{name}.weight"), vec![features], Init::Constant(1.0)),
            ParamSpec::new(format!("{name}.bias"), vec![features], Init::Constant(0.0)),
            ParamSpec::buffer(format!("{name}.running_mean"), vec![features], Init::Constant(0.0)),
            ParamSpec::buffer(format!("{name}.running_var"), vec![features], Init::Constant(1.0)),
            // a count, kept as f32 in training (exact to 2^24 batches) and written as int64 in
            // exports, as PyTorch's state_dict holds it
            ParamSpec::buffer(format!("{name}.num_batches_tracked"), vec![], Init::Constant(0.0)),
        ];
        Ok((input.to_vec(), params))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        let names: Vec<String> = p.params.iter().map(|q| q.name.clone()).collect();
        vec![RefLayer::BatchNorm {
            module: if p.input.len() == 3 { "BatchNorm2d" } else { "BatchNorm1d" }.into(),
            num_features: p.input[0],
            eps: self.eps,
            momentum: self.momentum,
            weight: names[0].clone(),
            bias: names[1].clone(),
            running_mean: names[2].clone(),
            running_var: names[3].clone(),
            num_batches_tracked: names[4].clone(),
        }]
    }

    /// The layer, holding its buffers as variables it updates in place while training.
    pub fn build(&self, vars: &[Var]) -> Result<Box<dyn RunLayer>> {
        self.build_on(vars, false)
    }

    /// The layer composed from candle ops even on the CPU, as it runs on other devices (tests and
    /// `examples/decoder_timing.rs` compare it with the fused op).
    pub fn build_composed(&self, vars: &[Var]) -> Result<Box<dyn RunLayer>> {
        self.build_on(vars, true)
    }

    /// [`BatchNormSpec::build`], composed from candle ops when `portable`.
    pub fn build_on(&self, vars: &[Var], portable: bool) -> Result<Box<dyn RunLayer>> {
        let [weight, bias, running_mean, running_var, tracked] = vars else {
            return Err(Error::Other(format!("batch norm has 5 tensors, got {}", vars.len())));
        };
        Ok(Box::new(BatchNorm {
            weight: weight.as_tensor().clone(),
            bias: bias.as_tensor().clone(),
            running_mean: running_mean.clone(),
            running_var: running_var.clone(),
            tracked: tracked.clone(),
            momentum: self.momentum,
            eps: self.eps,
            portable,
        }))
    }
}

pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    tracked: Var,
    momentum: f64,
    eps: f64,
    /// The composed form even on the CPU (the fused op's tests compare the two).
    portable: bool,
}

impl BatchNorm {
    /// Folds the new batch's statistics into the running ones, as PyTorch does: the mean, and
    /// the unbiased variance (`rows / (rows - 1)` times the biased one the batch is normalised
    /// with). A single row has no unbiased variance; PyTorch refuses it, here the running
    /// statistics simply skip it (a last batch of one sample must not end a run).
    fn track(&self, mean: &Tensor, biased_var: &Tensor, rows: usize) -> Result<()> {
        if rows < 2 {
            return Ok(());
        }
        let m = self.momentum;
        let unbiased = (biased_var.detach() * (rows as f64 / (rows - 1) as f64))?;
        let rm = ((self.running_mean.as_tensor() * (1.0 - m))? + (mean.detach() * m)?)?;
        let rv = ((self.running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)?;
        self.tracked.set(&(self.tracked.as_tensor() + 1.0)?)?;
        Ok(())
    }
}

impl BatchNorm {
    /// One fused op on the CPU: the statistics in a fixed order (the same bits on any number of
    /// threads), then normalisation with its own backward.
    fn fused(&self, flat: &Tensor, rows: usize, mode: &Mode<'_>) -> Result<Tensor> {
        let c = self.weight.dim(0)?;
        let op = match mode {
            Mode::Train(_) => {
                let (mean, var) =
                    crate::model::fused::with_data(flat, |x| crate::model::decoder_kernels::batch_stats(x, c))?;
                let device = flat.device();
                self.track(&Tensor::new(mean.as_slice(), device)?, &Tensor::new(var.as_slice(), device)?, rows)?;
                crate::model::decoder_ops::BatchNorm::new(mean, &var, self.eps, true)
            }
            Mode::Eval => {
                let mean = self.running_mean.as_tensor().to_vec1::<f32>()?;
                let var = self.running_var.as_tensor().to_vec1::<f32>()?;
                crate::model::decoder_ops::BatchNorm::new(mean, &var, self.eps, false)
            }
        };
        Ok(flat.apply_op3(&self.weight, &self.bias, op)?)
    }

    fn composed(&self, flat: &Tensor, rows: usize, mode: &Mode<'_>) -> Result<Tensor> {
        Ok(match mode {
            Mode::Train(_) => {
                let mean = flat.mean(0)?;
                let centred = flat.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean(0)?;
                self.track(&mean, &var, rows)?;
                let scale = (var + self.eps)?.sqrt()?.recip()?;
                centred.broadcast_mul(&(scale * &self.weight)?)?.broadcast_add(&self.bias)?
            }
            Mode::Eval => {
                let scale = ((self.running_var.as_tensor() + self.eps)?.sqrt()?.recip()? * &self.weight)?;
                let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?;
                flat.broadcast_mul(&scale)?.broadcast_add(&shift)?
            }
        })
    }
}

impl RunLayer for BatchNorm {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let c = self.weight.dim(0)?;
        let shape = x.shape().clone();
        // every position of a channel is one more sample of it
        let rows = x.elem_count() / c.max(1);
        let flat = x.contiguous()?.reshape((rows, c))?;
        let y = if x.device().is_cpu() && !self.portable {
            self.fused(&flat, rows, mode)?
        } else {
            self.composed(&flat, rows, mode)?
        };
        Ok(y.reshape(shape)?)
    }

    fn kind(&self) -> &'static str {
        "batch norm"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dropout2dSpec {
    /// The share of channels zeroed while training (`p` in PyTorch).
    #[serde(alias = "p")]
    pub rate: f64,
}

impl Default for Dropout2dSpec {
    fn default() -> Self {
        Self { rate: 0.1 }
    }
}

impl Dropout2dSpec {
    pub fn plan(&self, key: &str, input: &[usize]) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(field_error(key, "rate", format!("{} is not a probability in [0, 1)", self.rate)));
        }
        if input.len() != 3 {
            return Err(field_error(
                key,
                "",
                format!("dropout2d drops whole channels of an image (channels x height x width), not {input:?}; use dropout"),
            ));
        }
        Ok(input.to_vec())
    }
}

pub struct Dropout2d {
    pub rate: f64,
}

impl RunLayer for Dropout2d {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let Mode::Train(rng) = mode else { return Ok(x.clone()) };
        if self.rate <= 0.0 {
            return Ok(x.clone());
        }
        let (n, _, _, c) = x.dims4()?;
        let keep = (1.0 - self.rate) as f32;
        // one draw per sample and channel, in that order, from the run's RNG
        let mask: Vec<f32> = (0..n * c).map(|_| if rng.uniform() < keep { 1.0 / keep } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (n, 1, 1, c), x.device())?;
        Ok(x.broadcast_mul(&mask)?)
    }

    fn kind(&self) -> &'static str {
        "dropout2d"
    }
}
