//! The losses of the generative tasks.
//!
//! - `autoencode`: the reconstruction error per value, averaged over the values and the batch
//!   (Keras' `binary_crossentropy` / `mse` in its MNIST autoencoder).
//! - `vae`: the reconstruction error summed over a sample's values plus the KL divergence of its
//!   latent Gaussian from N(0, I), averaged over the batch (the Keras and PyTorch VAE examples),
//!   so the figure is nats per sample.
//! - `gan`: binary cross-entropy on the discriminator's logit; the generator's loss is the
//!   non-saturating `-log D(G(z))`.
//!
//! The reconstruction error is the binary cross-entropy on the output's logits when the data is
//! scaled to [0, 1] (`data.normalization = "scale"`: the pixels read as probabilities), the
//! squared error otherwise (standardised values have no range for a sigmoid to cover). Outputs
//! are compared flattened, so a decoder may end in `[C, H, W]` or in `C * H * W` values.

use candle_core::Tensor;

use crate::data::NormalizationKind;
use crate::error::Result;

/// How an output is compared with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconstruction {
    /// Binary cross-entropy on logits (the model's output passes through a sigmoid to show).
    Bce,
    /// Squared error on the values themselves.
    Mse,
}

impl Reconstruction {
    pub fn for_data(normalization: NormalizationKind) -> Self {
        match normalization {
            NormalizationKind::Scale => Reconstruction::Bce,
            NormalizationKind::Standardize | NormalizationKind::None => Reconstruction::Mse,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Reconstruction::Bce => "binary cross-entropy",
            Reconstruction::Mse => "squared error",
        }
    }

    /// The error of every value, `[batch, values]`.
    pub fn per_value(self, output: &Tensor, input: &Tensor) -> Result<Tensor> {
        let b = output.dim(0)?;
        let z = output.reshape((b, ()))?;
        let x = input.reshape((b, ()))?;
        Ok(match self {
            Reconstruction::Bce => bce_with_logits(&z, &x)?,
            Reconstruction::Mse => (z - x)?.sqr()?,
        })
    }

    /// What the model's output shows as (the sigmoid of logits; values as they are).
    pub fn shown(self, output: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Reconstruction::Bce => crate::model::activate(output, crate::model::Activation::Sigmoid)?,
            Reconstruction::Mse => output.clone(),
        })
    }
}

/// `max(z, 0) - z x + log(1 + exp(-|z|))`: the binary cross-entropy of `sigmoid(z)` against
/// `x`, stable for large logits of either sign, elementwise.
pub fn bce_with_logits(z: &Tensor, x: &Tensor) -> Result<Tensor> {
    // |z| from two ReLUs, whose gradient candle knows everywhere
    let abs = (z.relu()? + z.neg()?.relu()?)?;
    let softplus = (abs.neg()?.exp()? + 1.0)?.log()?;
    Ok(((z.relu()? - z.mul(x)?)? + softplus)?)
}

/// An autoencoder's loss: the mean error per value.
pub fn autoencoder_loss(kind: Reconstruction, output: &Tensor, input: &Tensor) -> Result<Tensor> {
    Ok(kind.per_value(output, input)?.mean_all()?)
}

/// The KL divergence of `N(mean, exp(logvar))` from `N(0, I)` per sample, `[batch]`, from the
/// sample layer's input `[batch, 2 * latent]`.
pub fn kl_per_sample(stats: &Tensor) -> Result<Tensor> {
    let (mean, logvar) = crate::model::layers::sample::halves(stats)?;
    let inner = ((logvar.clone() + 1.0)? - mean.sqr()?)?.sub(&logvar.exp()?)?;
    Ok((inner.sum(1)? * -0.5)?)
}

/// A VAE's loss: reconstruction plus KL, each the mean per sample of its sum. Nothing is read
/// back to the host here (the step reads its loss once).
pub fn vae_loss(kind: Reconstruction, output: &Tensor, input: &Tensor, stats: &Tensor) -> Result<Tensor> {
    let reconstruction = kind.per_value(output, input)?.sum(1)?.mean_all()?;
    let kl = kl_per_sample(stats)?.mean_all()?;
    Ok((reconstruction + kl)?)
}

/// The mean binary cross-entropy of the discriminator's logits `[batch, 1]` against all-real
/// (`real = true`) or all-fake labels.
pub fn gan_loss(logits: &Tensor, real: bool) -> Result<Tensor> {
    let target = if real { logits.ones_like()? } else { logits.zeros_like()? };
    Ok(bce_with_logits(logits, &target)?.mean_all()?)
}

/// The mean of `sigmoid(logits)`: how real the discriminator thinks a batch is.
pub fn mean_probability(logits: &Tensor) -> Result<f64> {
    let p = crate::model::activate(logits, crate::model::Activation::Sigmoid)?;
    Ok(f64::from(p.mean_all()?.to_scalar::<f32>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn bce_with_logits_matches_the_formula_and_stays_finite() {
        let z = Tensor::new(&[[-30.0f32, -1.0, 0.0, 2.0, 40.0]], &Device::Cpu).unwrap();
        let x = Tensor::new(&[[0.0f32, 1.0, 0.5, 0.25, 1.0]], &Device::Cpu).unwrap();
        let got: Vec<f32> = bce_with_logits(&z, &x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for ((z, x), g) in [-30.0f64, -1.0, 0.0, 2.0, 40.0].iter().zip([0.0, 1.0, 0.5, 0.25, 1.0]).zip(got) {
            let p = 1.0 / (1.0 + (-z).exp());
            let want = -(x * p.max(1e-300).ln() + (1.0 - x) * (1.0 - p).max(1e-300).ln());
            assert!((f64::from(g) - want).abs() < 1e-4 * want.max(1.0), "z {z} x {x}: {g} vs {want}");
        }
    }

    #[test]
    fn kl_is_zero_for_the_prior_and_grows_away_from_it() {
        let prior = Tensor::new(&[[0.0f32, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        assert!(kl_per_sample(&prior).unwrap().to_vec1::<f32>().unwrap()[0].abs() < 1e-7);
        // mean 1, log-variance 0 in one of two dimensions: KL = 0.5
        let shifted = Tensor::new(&[[1.0f32, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let kl = kl_per_sample(&shifted).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((kl - 0.5).abs() < 1e-6, "{kl}");
    }
}
