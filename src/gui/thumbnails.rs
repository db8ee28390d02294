//! The gallery cards' pictures: four training images of the card's data set, or a scatter of
//! its 2-D points, 64 x 64. Drawn on a thread of their own after the presets are listed (a set
//! that needs files the machine lacks, or has no picture, such as text, gets none), so neither
//! the io thread nor the first frame waits for them.

use std::collections::HashMap;

use crossbeam_channel::{unbounded, Receiver};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions};

use super::preview::class_color;
use crate::data::{self, DataSpec, SetKind};
use crate::train::Waker;

pub const SIZE: usize = 64;

/// The data set a card shows, as a key (presets sharing a set share the picture).
pub fn key(spec: &DataSpec, seed: u64) -> String {
    format!("{}|{:?}|{}|{}|{}|{}", spec.set, spec.path, spec.samples, spec.noise, spec.classes, seed)
}

#[derive(Default)]
pub struct Thumbnails {
    receiver: Option<Receiver<(String, Option<ColorImage>)>>,
    images: HashMap<String, Option<TextureHandle>>,
    /// Pictures asked for and not arrived yet.
    pending: usize,
}

impl Thumbnails {
    /// Starts drawing the pictures of these sets (those not drawn yet).
    pub fn request(&mut self, sets: Vec<(DataSpec, u64)>, waker: Waker) {
        let mut wanted: Vec<(String, DataSpec, u64)> = Vec::new();
        for (spec, seed) in sets {
            let k = key(&spec, seed);
            if !self.images.contains_key(&k) && !wanted.iter().any(|w| w.0 == k) {
                wanted.push((k, spec, seed));
            }
        }
        if wanted.is_empty() {
            return;
        }
        let (tx, rx) = unbounded();
        let count = wanted.len();
        let spawned = std::thread::Builder::new().name("gradlab-thumbnails".into()).spawn(move || {
            for (k, spec, seed) in wanted {
                let image = super::catch_panic("drawing a gallery picture", || draw(&spec, seed)).ok().flatten();
                if tx.send((k, image)).is_err() {
                    return;
                }
                waker();
            }
        });
        if spawned.is_ok() {
            self.receiver = Some(rx);
            self.pending = count;
        }
    }

    /// Takes the pictures drawn since the last frame.
    pub fn poll(&mut self, ctx: &egui::Context) {
        let Some(rx) = &self.receiver else { return };
        while let Ok((k, image)) = rx.try_recv() {
            let texture = image.map(|i| ctx.load_texture(format!("thumbnail {k}"), i, TextureOptions::LINEAR));
            self.images.insert(k, texture);
            self.pending = self.pending.saturating_sub(1);
        }
    }

    /// Every picture asked for has arrived (or has none).
    pub fn ready(&self) -> bool {
        self.receiver.is_some() && self.pending == 0
    }

    pub fn get(&self, spec: &DataSpec, seed: u64) -> Option<&TextureHandle> {
        self.images.get(&key(spec, seed)).and_then(Option::as_ref)
    }
}

/// The picture of one set, or `None` when it has none (text, tables) or cannot load here.
pub fn draw(spec: &DataSpec, seed: u64) -> Option<ColorImage> {
    let kind = data::CATALOGUE.iter().find(|e| e.id == spec.set).map(|e| e.kind)?;
    if !matches!(kind, SetKind::Image | SetKind::Points2d) {
        return None;
    }
    let mut spec = spec.clone();
    if kind == SetKind::Image {
        // four pictures are all it takes
        spec.limit = 64;
    }
    let ds = data::load(&spec, seed).ok()?;
    let mut image = ColorImage::filled([SIZE, SIZE], Color32::from_gray(24));
    match ds.kind {
        SetKind::Image => {
            let (c, h, w) = (ds.input_shape[0], ds.input_shape[1], ds.input_shape[2]);
            let half = SIZE / 2;
            for (n, i) in (0..4.min(ds.train.len())).enumerate() {
                let sample = ds.train.sample_vec(i).ok()?;
                let (lo, hi) = sample.iter().fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
                let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
                let value = |ch: usize, y: usize, x: usize| ((sample[(ch * h + y) * w + x] - lo) * scale) as u8;
                let (ox, oy) = ((n % 2) * half, (n / 2) * half);
                for y in 0..half {
                    for x in 0..half {
                        let (sy, sx) = (y * h / half, x * w / half);
                        image[(ox + x, oy + y)] = if c >= 3 {
                            Color32::from_rgb(value(0, sy, sx), value(1, sy, sx), value(2, sy, sx))
                        } else {
                            Color32::from_gray(value(0, sy, sx))
                        };
                    }
                }
            }
        }
        SetKind::Points2d => {
            let n = ds.train.len().min(1500);
            let pts: Vec<(f32, f32, u32)> =
                (0..n).map(|i| (ds.train.sample(i)[0], ds.train.sample(i)[1], ds.train.labels[i])).collect();
            let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
            for &(x, y, _) in &pts {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
            let span = (x1 - x0).max(y1 - y0).max(1e-6);
            for (x, y, label) in pts {
                let px = (((x - x0) / span) * (SIZE - 3) as f32) as usize + 1;
                let py = SIZE - 2 - (((y - y0) / span) * (SIZE - 3) as f32) as usize;
                image[(px.min(SIZE - 1), py.min(SIZE - 1))] = class_color(label);
            }
        }
        _ => return None,
    }
    Some(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_images_and_synthetic_points_get_pictures_text_none() {
        let mnist = crate::Preset::builtin("mnist_cnn").unwrap();
        let picture = draw(&mnist.data, mnist.seed).expect("MNIST is compiled in");
        assert_eq!(picture.size, [SIZE, SIZE]);
        // four digits: bright strokes on black in each quarter
        for (qx, qy) in [(0, 0), (32, 0), (0, 32), (32, 32)] {
            let bright = (0..32)
                .flat_map(|y| (0..32).map(move |x| (x, y)))
                .filter(|&(x, y)| picture[(qx + x, qy + y)].r() > 200)
                .count();
            assert!(bright > 20, "quarter ({qx}, {qy}) has {bright} bright pixels");
        }
        let spiral = crate::Preset::builtin("spiral_mlp").unwrap();
        let scatter = draw(&spiral.data, spiral.seed).expect("the spiral is synthetic");
        let coloured = scatter.pixels.iter().filter(|p| **p != Color32::from_gray(24)).count();
        assert!(coloured > 200, "{coloured} points drawn");
        let text = crate::Preset::builtin("text_rnn").unwrap();
        assert!(draw(&text.data, text.seed).is_none());
    }
}
