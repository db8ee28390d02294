//! What the generative views show, computed from the current weights on the training thread at
//! each epoch's end: a reconstruction grid (inputs above outputs), a GAN's samples from a fixed
//! noise, a VAE's grid decoded from a sweep of its 2-D latent plane, and the latent codes of
//! validation samples in 2-D. The GUI shows them; the recorder writes the grids as PGM/PPM.
//!
//! Images are shown in the data's range: values scaled to [0, 1] as they are, standardised (or
//! raw) values mapped by the smallest and largest value of the validation samples shown.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::digit_reading;
use super::event::Event;
use super::generative::{latent_of, noise};
use super::session::Session;
use crate::data::NormalizationKind;
use crate::error::Result;
use crate::model::layers::sample;
use crate::model::Mode;
use crate::rng::Rng;
use crate::task::generative::Reconstruction;
use crate::task::Task;

/// Validation samples in the latent scatter.
pub const LATENT_POINTS: usize = 1000;
/// Pairs of rows (inputs, outputs) and columns of the reconstruction grid.
const RECONSTRUCTION_GRID: (usize, usize) = (2, 8);
/// A GAN's sample grid, rows x columns, from the same noise every epoch.
const SAMPLE_GRID: (usize, usize) = (8, 8);
/// Steps along each axis of a VAE's latent sweep, and how far from 0 it goes.
const SWEEP_STEPS: usize = 10;
const SWEEP_EXTENT: f32 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridKind {
    /// Validation inputs, each with the model's output under it.
    Reconstructions,
    /// A GAN's generator on a fixed noise.
    Samples,
    /// A VAE's decoder on a grid of latent points.
    LatentSweep,
}

impl GridKind {
    pub fn title(self) -> &'static str {
        match self {
            GridKind::Reconstructions => "Reconstructions (inputs above outputs)",
            GridKind::Samples => "Samples from a fixed noise",
            GridKind::LatentSweep => "Decoded latent plane",
        }
    }

    /// One or two words, for the epoch slider's label.
    pub fn short(self) -> &'static str {
        match self {
            GridKind::Reconstructions => "Reconstructions",
            GridKind::Samples => "Samples",
            GridKind::LatentSweep => "Latent plane",
        }
    }

    /// The run folder's sub-folder of this grid's files.
    pub fn folder(self) -> &'static str {
        match self {
            GridKind::Reconstructions => "reconstructions",
            GridKind::Samples => "samples",
            GridKind::LatentSweep => "latent-sweep",
        }
    }
}

/// A grid of images as one picture: `height` rows of `width` pixels of `channels` (1: grey, 3:
/// RGB) bytes, cells separated by a one-pixel line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageGrid {
    pub kind: GridKind,
    /// The epoch whose weights made it.
    pub epoch: usize,
    pub rows: usize,
    pub cols: usize,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
    /// For a GAN's MNIST samples: the digits a pretrained classifier reads in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<super::digit_reading::DigitReading>,
}

impl ImageGrid {
    /// Builds a grid from images `[C, H, W]` of values in [0, 1], row by row.
    pub fn compose(kind: GridKind, epoch: usize, shape: [usize; 3], images: &[Vec<f32>], cols: usize) -> Self {
        let [c, h, w] = shape;
        let cols = cols.max(1);
        let rows = images.len().div_ceil(cols);
        let channels = if c == 3 { 3 } else { 1 };
        let (width, height) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
        let mut pixels = vec![60u8; width * height * channels];
        for (i, image) in images.iter().enumerate() {
            let (top, left) = ((i / cols) * (h + 1) + 1, (i % cols) * (w + 1) + 1);
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..channels {
                        let v = image.get(ch * h * w + y * w + x).copied().unwrap_or(0.0);
                        let at = ((top + y) * width + left + x) * channels + ch;
                        pixels[at] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
        }
        Self { kind, epoch, rows, cols, width, height, channels, pixels, reading: None }
    }

    /// The picture as a binary PGM (grey) or PPM (RGB) file, which image viewers and PIL read.
    pub fn to_pnm(&self) -> Vec<u8> {
        let magic = if self.channels == 3 { "P6" } else { "P5" };
        let mut out = format!("{magic}\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }

    /// `epoch-N.pgm` (or `.ppm`).
    pub fn file_name(&self) -> String {
        format!("epoch-{}.{}", self.epoch, if self.channels == 3 { "ppm" } else { "pgm" })
    }
}

/// Latent codes of validation samples in 2-D (the first two principal components when the
/// latent is wider), with each sample's class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentMap {
    pub epoch: usize,
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<u32>,
    /// Width of the latent code; more than 2 is shown by PCA.
    pub dims: usize,
}

/// Maps values to [0, 1] for showing: as they are for data scaled to [0, 1], else by a range.
#[derive(Clone, Copy)]
struct Shade {
    low: f32,
    span: f32,
}

impl Shade {
    fn of(session: &Session, reference: &[f32]) -> Self {
        if session.preset.data.normalization == NormalizationKind::Scale {
            return Self { low: 0.0, span: 1.0 };
        }
        let low = reference.iter().copied().fold(f32::INFINITY, f32::min);
        let high = reference.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if low.is_finite() && high > low {
            Self { low, span: high - low }
        } else {
            Self { low: 0.0, span: 1.0 }
        }
    }

    fn apply(self, values: Vec<f32>) -> Vec<f32> {
        values.into_iter().map(|v| (v - self.low) / self.span).collect()
    }
}

/// The image shape `[C, H, W]` of the data, `None` for tables and points (no grids then).
fn image_shape(session: &Session) -> Option<[usize; 3]> {
    match session.data.input_shape[..] {
        [c, h, w] if c == 1 || c == 3 => Some([c, h, w]),
        _ => None,
    }
}

/// Rows of a `[n, ...]` tensor as flat vectors.
fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let n = t.dim(0)?;
    Ok(t.reshape((n, ()))?.to_vec2()?)
}

/// What a generative model shows after an epoch.
pub(super) fn epoch_events(session: &Session) -> Result<Vec<Event>> {
    let task = session.preset.task;
    if !task.is_generative() || session.data.validation.is_empty() {
        return Ok(vec![]);
    }
    let epoch = session.epoch;
    let kind = Reconstruction::for_data(session.preset.data.normalization);
    let validation = &session.data.validation;
    let input = session.data.model_input(task);
    let mut out = Vec::new();
    let shown = validation.len().min(LATENT_POINTS);
    let indices: Vec<usize> = (0..shown).collect();
    let batch = task.gather(validation, &indices, &input.shape, &session.device)?;
    let reference: Vec<f32> = batch.inputs.flatten_all()?.to_vec1()?;
    let shade = Shade::of(session, &reference);
    if task == Task::Gan {
        if let Some(shape) = image_shape(session) {
            let (r, c) = SAMPLE_GRID;
            let mut rng = Rng::derive(session.preset.seed, "gan-fixed-noise", 0);
            let z = noise(r * c, latent_of(&session.preset), &mut rng, &session.device)?;
            let fakes = session.net.forward(&z, &mut Mode::Eval)?.detach();
            let images: Vec<Vec<f32>> = rows(&fakes)?.into_iter().map(|v| shade.apply(v)).collect();
            let mut grid = ImageGrid::compose(GridKind::Samples, epoch, shape, &images, c);
            if digit_reading::applies(&session.preset.data.set, shape) {
                // an extra: the grid is shown and written without it
                grid.reading = digit_reading::read(&images)
                    .map_err(|e| eprintln!("gradlab: the samples of epoch {epoch} could not be read as digits: {e}"))
                    .ok();
            }
            out.push(Event::Images(grid));
        }
        return Ok(out);
    }
    // autoencoder and VAE: the codes of the narrowest layer, the reconstructions, the sweep
    let net = &session.net;
    let mut x = batch.inputs.clone();
    let mut narrowest: Option<(usize, Tensor)> = None;
    let mut sample_at = None;
    for i in 0..net.run_layers() {
        if net.layer_kind(i) == sample::KIND {
            sample_at = Some(i);
        }
        x = net.forward_layer(i, &x, &mut Mode::Eval)?;
        let width = x.elem_count() / shown.max(1);
        if i + 1 < net.run_layers() && narrowest.as_ref().is_none_or(|(w, _)| width < *w) {
            narrowest = Some((width, x.clone()));
        }
    }
    let output = kind.shown(&x)?;
    if let Some(shape) = image_shape(session) {
        let (pairs, cols) = RECONSTRUCTION_GRID;
        let inputs = rows(&batch.inputs)?;
        let outputs = rows(&output)?;
        let mut images = Vec::new();
        for pair in 0..pairs {
            let range = (pair * cols).min(shown)..((pair + 1) * cols).min(shown);
            images.extend(inputs[range.clone()].iter().map(|v| shade.apply(v.clone())));
            images.extend(outputs[range].iter().map(|v| shade.apply(v.clone())));
        }
        out.push(Event::Images(ImageGrid::compose(GridKind::Reconstructions, epoch, shape, &images, cols)));
        if let Some(i) = sample_at.filter(|_| task == Task::Vae) {
            if let Some(grid) = latent_sweep(session, i, shape, shade, kind)? {
                out.push(Event::Images(grid));
            }
        }
    }
    if let Some((dims, codes)) = narrowest {
        let codes = rows(&codes)?;
        let points = match dims {
            1 => codes.iter().map(|v| [v[0], 0.0]).collect(),
            2 => codes.iter().map(|v| [v[0], v[1]]).collect(),
            _ => super::text::pca2(&codes, dims),
        };
        let labels: Vec<u32> = batch.targets.to_vec1()?;
        out.push(Event::Latent(LatentMap { epoch, points, labels, dims }));
    }
    Ok(out)
}

/// A VAE's decoder (the layers after its sample layer, run layer `sample_at`) on a grid of
/// points of its 2-D latent plane, `+y` up; `None` for a wider latent.
fn latent_sweep(
    session: &Session,
    sample_at: usize,
    shape: [usize; 3],
    shade: Shade,
    kind: Reconstruction,
) -> Result<Option<ImageGrid>> {
    let net = &session.net;
    let n = SWEEP_STEPS;
    let step = |i: usize| -SWEEP_EXTENT + 2.0 * SWEEP_EXTENT * i as f32 / (n - 1) as f32;
    let mut z = Vec::with_capacity(n * n * 2);
    for row in 0..n {
        for col in 0..n {
            z.extend_from_slice(&[step(col), step(n - 1 - row)]);
        }
    }
    let mut x = Tensor::from_vec(z, (n * n, 2), &session.device)?;
    // the decoder must read a 2-D code: a wider latent has no plane to sweep
    let latent = net.layers().iter().find(|l| l.description.starts_with(sample::KIND)).map(|l| l.output_shape.clone());
    if latent.as_deref() != Some(&[2][..]) {
        return Ok(None);
    }
    for i in sample_at + 1..net.run_layers() {
        x = net.forward_layer(i, &x, &mut Mode::Eval)?;
    }
    let images: Vec<Vec<f32>> = rows(&kind.shown(&x)?)?.into_iter().map(|v| shade.apply(v)).collect();
    Ok(Some(ImageGrid::compose(GridKind::LatentSweep, session.epoch, shape, &images, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_places_each_image_in_its_cell_and_writes_a_pgm() {
        let white = vec![1.0f32; 4];
        let black = vec![0.0f32; 4];
        let grid = ImageGrid::compose(GridKind::Samples, 3, [1, 2, 2], &[white, black.clone(), black], 2);
        assert_eq!((grid.rows, grid.cols, grid.width, grid.height), (2, 2, 7, 7));
        // first cell white, second black, separators grey
        assert_eq!(grid.pixels[7 + 1], 255);
        assert_eq!(grid.pixels[7 + 4], 0);
        assert_eq!(grid.pixels[0], 60);
        let pgm = grid.to_pnm();
        assert!(pgm.starts_with(b"P5\n7 7\n255\n"));
        assert_eq!(pgm.len(), "P5\n7 7\n255\n".len() + 49);
        assert_eq!(grid.file_name(), "epoch-3.pgm");
    }
}
