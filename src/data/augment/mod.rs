//! Random transforms of training images: flips, rotation, shift (pad and crop), gaussian noise,
//! brightness, contrast and cutout, as a preset's `[augment]` table asks.
//!
//! Samples are `[C, H, W]` rows that are already normalised (`Dataset::normalization`). Every
//! transform works on the pixel values before normalisation, `x = raw * scale` (an image's
//! [0, 1] unless `normalization = "none"`): a sample is un-normalised, transformed and
//! normalised again, so brightness multiplies light, contrast blends with the sample's mean as
//! torchvision's `ColorJitter` does, noise is in pixel units, and what rotation, shift and cutout
//! uncover is black (`x = 0`, the normalised value of black), as torchvision fills unnormalised
//! tensors. Values are not clamped.
//!
//! Each sample's transform draws from its own stream, `Rng::derive(seed, "augment", epoch *
//! train_len + position)` (position: its place in the epoch's order), so the pictures depend only
//! on the seed and the position: the same at any thread count, on the data thread or not, and a
//! resumed run sees what an uninterrupted one saw.

#[cfg(test)]
mod tests;
mod transforms;

use serde::{Deserialize, Serialize};

use super::{Normalization, SetKind};
use crate::error::{Error, Result};
use crate::rng::Rng;

pub use transforms::{cutout, flip_horizontal, flip_vertical, rotate, shift};

/// What a preset's `[augment]` table says; every transform is off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentSpec {
    /// Mirror left to right with probability 1/2.
    pub flip: bool,
    /// Mirror top to bottom with probability 1/2.
    pub flip_vertical: bool,
    /// Rotate by a uniform angle in [-rotate, rotate] degrees (bilinear, black outside).
    pub rotate: f64,
    /// Pad by this many black pixels on each side, then crop a random window of the image's size
    /// (PyTorch's `RandomCrop(size, padding=shift)`).
    pub shift: usize,
    /// Add gaussian noise of this standard deviation (in units of `x`, [0, 1] for images).
    pub noise: f64,
    /// Multiply the pixels by a uniform factor in [1 - brightness, 1 + brightness].
    pub brightness: f64,
    /// Blend with the sample's mean by a uniform factor in [1 - contrast, 1 + contrast].
    pub contrast: f64,
    /// Black out one square of this side, placed uniformly inside the image.
    pub cutout: usize,
}

impl AugmentSpec {
    /// No transform is on (old presets, and the table left out).
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the ranges, and that the data are images: `kind` of the set named `set`, and its
    /// `[C, H, W]` shape where known. Errors name `augment.<field>`.
    pub fn check(
        &self,
        kind: SetKind,
        set: &str,
        shape: Option<&[usize]>,
    ) -> std::result::Result<(), (String, String)> {
        if self.is_off() {
            return Ok(());
        }
        let err = |field: &str, msg: String| Err((format!("augment.{field}"), msg));
        if kind != SetKind::Image {
            return Err((
                "augment".into(),
                format!("augmentation transforms images; `{set}` is not an image set, so leave [augment] out"),
            ));
        }
        if !(self.rotate.is_finite() && (0.0..=180.0).contains(&self.rotate)) {
            return err("rotate", format!("{} must be between 0 and 180 degrees", self.rotate));
        }
        for (field, value, what) in [
            ("noise", self.noise, "a standard deviation from 0 to 10"),
            ("brightness", self.brightness, "a relative change from 0 to 1"),
            ("contrast", self.contrast, "a relative change from 0 to 1"),
        ] {
            let max = if field == "noise" { 10.0 } else { 1.0 };
            if !(value.is_finite() && (0.0..=max).contains(&value)) {
                return err(field, format!("{value} must be {what}"));
            }
        }
        if let Some(&[_, h, w]) = shape {
            let side = h.min(w);
            if self.shift >= side {
                return err("shift", format!("{} pixels must be less than the image's side ({side})", self.shift));
            }
            if self.cutout >= side {
                return err(
                    "cutout",
                    format!("a square of {} must be smaller than the image's side ({side})", self.cutout),
                );
            }
        } else if let Some(shape) = shape {
            return Err(("augment".into(), format!("augmentation needs images [C, H, W]; `{set}` holds {shape:?}")));
        }
        Ok(())
    }
}

/// An [`AugmentSpec`] ready for one data set: its image shape and normalisation, and the run's
/// seed.
#[derive(Debug, Clone)]
pub struct Augmenter {
    spec: AugmentSpec,
    channels: usize,
    height: usize,
    width: usize,
    /// Per value of a sample: `x = z * std + mean` undoes the normalisation.
    mean: Vec<f32>,
    std: Vec<f32>,
    seed: u64,
}

impl Augmenter {
    /// `None` when every transform is off. Refuses (naming `augment.<field>`) a spec that does
    /// not fit the data.
    pub fn new(
        spec: &AugmentSpec,
        kind: SetKind,
        set: &str,
        shape: &[usize],
        norm: &Normalization,
        seed: u64,
    ) -> Result<Option<Self>> {
        if spec.is_off() {
            return Ok(None);
        }
        spec.check(kind, set, Some(shape)).map_err(|(key, msg)| Error::config("preset", key, msg))?;
        let &[channels, height, width] = shape else {
            return Err(Error::Shape(format!("augmentation needs images [C, H, W]; `{set}` holds {shape:?}")));
        };
        let len = channels * height * width;
        norm.check(len).map_err(|e| Error::Other(format!("augmenting `{set}`: {e}")))?;
        Ok(Some(Self {
            spec: spec.clone(),
            channels,
            height,
            width,
            mean: (0..len).map(|i| norm.mean[i % norm.mean.len()]).collect(),
            std: (0..len).map(|i| norm.std[i % norm.std.len()]).collect(),
            seed,
        }))
    }

    pub fn spec(&self) -> &AugmentSpec {
        &self.spec
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The stream of the sample at `position` of epoch `epoch`'s order.
    fn rng(&self, epoch: usize, position: usize, train_len: usize) -> Rng {
        let index = (epoch as u64).wrapping_mul(train_len as u64).wrapping_add(position as u64);
        Rng::derive(self.seed, "augment", index)
    }

    /// Augments consecutive samples `values` (a batch's inputs) that sit at positions
    /// `first_position..` of epoch `epoch`'s order over `train_len` training samples.
    pub fn apply_batch(&self, values: &mut [f32], epoch: usize, first_position: usize, train_len: usize) -> Result<()> {
        let len = self.sample_len();
        if len == 0 || !values.len().is_multiple_of(len) {
            return Err(Error::Shape(format!(
                "a batch of {} values does not hold whole images of {len} values ({}x{}x{})",
                values.len(),
                self.channels,
                self.height,
                self.width
            )));
        }
        let mut scratch = vec![0.0; len];
        for (i, sample) in values.chunks_exact_mut(len).enumerate() {
            self.apply(sample, epoch, first_position + i, train_len, &mut scratch);
        }
        Ok(())
    }

    /// Augments one sample (normalised values, `sample_len()` of them) as training would at
    /// `position` of epoch `epoch`; `scratch` holds `sample_len()` values.
    pub fn apply(&self, sample: &mut [f32], epoch: usize, position: usize, train_len: usize, scratch: &mut [f32]) {
        let mut rng = self.rng(epoch, position, train_len);
        let (c, h, w) = (self.channels, self.height, self.width);
        let s = &self.spec;
        for ((v, m), sd) in sample.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = *v * sd + m;
        }
        if s.flip && rng.uniform() < 0.5 {
            flip_horizontal(sample, c, h, w);
        }
        if s.flip_vertical && rng.uniform() < 0.5 {
            flip_vertical(sample, c, h, w);
        }
        if s.rotate > 0.0 {
            let degrees = rng.uniform_range(-s.rotate as f32, s.rotate as f32);
            rotate(sample, scratch, c, h, w, degrees);
            sample.copy_from_slice(scratch);
        }
        if s.shift > 0 {
            // RandomCrop draws the top, then the left of the window in the padded image
            let dy = rng.below(2 * s.shift + 1) as isize - s.shift as isize;
            let dx = rng.below(2 * s.shift + 1) as isize - s.shift as isize;
            shift(sample, scratch, c, h, w, dy, dx);
            sample.copy_from_slice(scratch);
        }
        if s.brightness > 0.0 {
            let b = s.brightness as f32;
            let factor = rng.uniform_range((1.0 - b).max(0.0), 1.0 + b);
            sample.iter_mut().for_each(|v| *v *= factor);
        }
        if s.contrast > 0.0 {
            let k = s.contrast as f32;
            let factor = rng.uniform_range((1.0 - k).max(0.0), 1.0 + k);
            let mean = sample.iter().sum::<f32>() / sample.len() as f32;
            sample.iter_mut().for_each(|v| *v = factor * *v + (1.0 - factor) * mean);
        }
        if s.noise > 0.0 {
            add_noise(sample, s.noise as f32, &mut rng);
        }
        if s.cutout > 0 {
            let top = rng.below(h - s.cutout + 1);
            let left = rng.below(w - s.cutout + 1);
            cutout(sample, c, h, w, top, left, s.cutout);
        }
        for ((v, m), sd) in sample.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = (*v - m) / sd;
        }
    }
}

/// Adds gaussian noise of standard deviation `sd`: Box-Muller in f32, both values of each pair
/// used (a third of `Rng::normal`'s cost per value, which keeps one f64 draw of two).
fn add_noise(values: &mut [f32], sd: f32, rng: &mut Rng) {
    for pair in values.chunks_mut(2) {
        let u1 = (rng.next_u32() as f32 + 1.0) * (1.0 / 4_294_967_296.0);
        let radius = sd * (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f32::consts::TAU * rng.uniform()).sin_cos();
        pair[0] += radius * cos;
        if let Some(v) = pair.get_mut(1) {
            *v += radius * sin;
        }
    }
}
