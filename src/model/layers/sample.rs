//! `sample`: a VAE's reparameterisation. The encoder before it ends in `2 * latent` units, read
//! as the mean and the log-variance of a diagonal Gaussian; while training the layer gives
//! `z = mean + exp(logvar / 2) * eps` with `eps` drawn from the run's seeded RNG (on the host, so
//! a run reproduces: candle's CPU RNG cannot be seeded); in evaluation it gives the mean. The
//! VAE task reads the layer's input for its KL term (`task::generative`).

use candle_core::Tensor;

use super::{field_error, Mode, RunLayer};
use crate::error::Result;

/// What the run layer calls itself; the VAE task finds the split by it.
pub const KIND: &str = "sample";

/// `[2 * latent]` in, `[latent]` out.
pub fn plan(key: &str, input: &[usize]) -> Result<Vec<usize>> {
    match input {
        [n] if *n >= 2 && n % 2 == 0 => Ok(vec![n / 2]),
        other => Err(field_error(
            key,
            "",
            format!("a sample layer reads a mean and a log-variance per latent dimension, an even number of features (2 x latent), but gets {other:?}; put it after a dense layer of 2 x latent units"),
        )),
    }
}

/// The mean and log-variance halves of the encoder's output `[batch, 2 * latent]`.
pub fn halves(stats: &Tensor) -> Result<(Tensor, Tensor)> {
    let latent = stats.dim(1)? / 2;
    Ok((stats.narrow(1, 0, latent)?, stats.narrow(1, latent, latent)?))
}

pub struct Sample;

impl RunLayer for Sample {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let (mean, logvar) = halves(x)?;
        match mode {
            Mode::Eval => Ok(mean),
            Mode::Train(rng) => {
                let noise: Vec<f32> = (0..mean.elem_count()).map(|_| rng.normal()).collect();
                let eps = Tensor::from_vec(noise, mean.shape(), mean.device())?;
                Ok((mean + (logvar * 0.5)?.exp()?.mul(&eps)?)?)
            }
        }
    }

    fn kind(&self) -> &'static str {
        KIND
    }
}
