//! The augmentation preview: a few training images as they are and as training will see them in
//! its first epochs, made on the "gradlab-augment-preview" thread (it loads the data set once and
//! keeps it while only the transforms change); the UI thread only draws the textures.

use crossbeam_channel::{bounded, Receiver, Sender};
use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::data::{self, epoch_order, AugmentSpec, Augmenter, DataSpec, Dataset};
use crate::train::Waker;

/// Images shown, one per row.
pub const SAMPLES: usize = 4;
/// Augmented draws per image: the first epochs' pictures of it.
pub const DRAWS: usize = 4;

/// Per row: the image's label, then the image as it is followed by its `DRAWS` augmented copies.
type Grid = Vec<(u32, Vec<ColorImage>)>;
type Request = (String, DataSpec, u64, AugmentSpec);

fn key(spec: &DataSpec, seed: u64, augment: &AugmentSpec) -> String {
    format!("{spec:?}/{seed}/{augment:?}")
}

/// One sample (normalised values) as an image, its pixels mapped from `range` (in un-normalised
/// units, so that brightness and contrast show) to black..white.
fn picture(ds: &Dataset, values: &[f32], range: (f32, f32)) -> ColorImage {
    let (c, h, w) = (ds.input_shape[0], ds.input_shape[1], ds.input_shape[2]);
    let n = &ds.normalization;
    let (lo, hi) = range;
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let byte = |i: usize| {
        let x = values[i] * n.std[i % n.std.len()] + n.mean[i % n.mean.len()];
        ((x - lo) * scale).clamp(0.0, 255.0) as u8
    };
    if c == 3 {
        let rgb: Vec<u8> = (0..h * w).flat_map(|p| [byte(p), byte(h * w + p), byte(2 * h * w + p)]).collect();
        ColorImage::from_rgb([w, h], &rgb)
    } else {
        let grey: Vec<u8> = (0..h * w).map(byte).collect();
        ColorImage::from_gray([w, h], &grey)
    }
}

/// The first training images, each as it is and as epochs `0..DRAWS` will augment it (at its
/// place in each epoch's order, so exactly what training sees).
pub fn grid(ds: &Dataset, augment: &AugmentSpec, seed: u64) -> Result<Grid, String> {
    let Some(augmenter) = Augmenter::new(augment, ds.kind, &ds.id, &ds.input_shape, &ds.normalization, seed)
        .map_err(|e| e.to_string())?
    else {
        return Ok(Vec::new());
    };
    let len = ds.train.len();
    let orders: Vec<Vec<usize>> = (0..DRAWS).map(|epoch| epoch_order(len, seed, epoch)).collect();
    let mut scratch = vec![0.0; augmenter.sample_len()];
    let mut rows = Vec::new();
    for i in 0..SAMPLES.min(len) {
        // a streamed set's rows are on disk: read them rather than index memory
        let original = ds.train.sample_vec(i).map_err(|e| e.to_string())?;
        let original = original.as_slice();
        let n = &ds.normalization;
        let x = original.iter().enumerate().map(|(j, v)| v * n.std[j % n.std.len()] + n.mean[j % n.mean.len()]);
        let range = x.fold((f32::MAX, f32::MIN), |(l, u), v| (l.min(v), u.max(v)));
        let mut pictures = vec![picture(ds, original, range)];
        for (epoch, order) in orders.iter().enumerate() {
            let position = order.iter().position(|&j| j == i).unwrap_or(i);
            let mut values = original.to_vec();
            augmenter.apply(&mut values, epoch, position, len, &mut scratch);
            pictures.push(picture(ds, &values, range));
        }
        rows.push((ds.train.labels[i], pictures));
    }
    Ok(rows)
}

/// Keeps the last data set loaded, so moving a slider only redraws the grid.
fn serve(requests: &Receiver<Request>, results: &Sender<(String, Result<Grid, String>)>, waker: Option<&Waker>) {
    let mut loaded: Option<(String, Dataset)> = None;
    while let Ok(mut request) = requests.recv() {
        // only the newest setting matters
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        let (key, spec, seed, augment) = request;
        let result = super::catch_panic("drawing the augmentation preview", || {
            let data_key = format!("{spec:?}/{seed}");
            if loaded.as_ref().is_none_or(|(k, _)| *k != data_key) {
                loaded = None;
                loaded = Some((data_key, data::load(&spec, seed).map_err(|e| e.to_string())?));
            }
            let (_, ds) = loaded.as_ref().ok_or("no data set")?;
            grid(ds, &augment, seed)
        })
        .and_then(|r| r);
        if results.send((key, result)).is_err() {
            return;
        }
        if let Some(w) = waker {
            w();
        }
    }
}

enum Shown {
    Grid(Vec<(u32, Vec<TextureHandle>)>),
    Failed(String),
}

pub struct AugmentPreview {
    requests: Sender<Request>,
    results: Receiver<(String, Result<Grid, String>)>,
    /// The setting asked for and not arrived yet.
    pending: Option<String>,
    shown: Option<(String, Shown)>,
}

impl AugmentPreview {
    pub fn spawn(waker: Option<Waker>) -> Self {
        let (req_tx, req_rx) = bounded::<Request>(8);
        let (res_tx, res_rx) = bounded(8);
        std::thread::Builder::new()
            .name("gradlab-augment-preview".into())
            .spawn(move || serve(&req_rx, &res_tx, waker.as_ref()))
            .expect("spawning the augmentation preview thread");
        Self { requests: req_tx, results: res_rx, pending: None, shown: None }
    }

    /// Takes finished grids (once per frame; never blocks).
    pub fn poll(&mut self, ctx: &egui::Context) {
        while let Ok((key, result)) = self.results.try_recv() {
            let shown = match result {
                Ok(rows) => Shown::Grid(
                    rows.into_iter()
                        .enumerate()
                        .map(|(r, (label, images))| {
                            let textures = images
                                .into_iter()
                                .enumerate()
                                .map(|(c, image)| {
                                    ctx.load_texture(format!("augment-preview-{r}-{c}"), image, TextureOptions::NEAREST)
                                })
                                .collect();
                            (label, textures)
                        })
                        .collect(),
                ),
                Err(e) => Shown::Failed(e),
            };
            if self.pending.as_deref() == Some(key.as_str()) {
                self.pending = None;
            }
            self.shown = Some((key, shown));
        }
    }

    /// Whether the grid for this setting is on screen.
    pub fn ready(&self, spec: &DataSpec, seed: u64, augment: &AugmentSpec) -> bool {
        self.shown.as_ref().is_some_and(|(k, s)| *k == key(spec, seed, augment) && matches!(s, Shown::Grid(_)))
    }

    /// Draws the grid for this setting (the previous one until it arrives).
    pub fn ui(&mut self, ui: &mut egui::Ui, spec: &DataSpec, seed: u64, augment: &AugmentSpec, classes: &[String]) {
        let key = key(spec, seed, augment);
        let current = self.shown.as_ref().is_some_and(|(k, _)| *k == key);
        if !current
            && self.pending.as_deref() != Some(key.as_str())
            && self.requests.try_send((key.clone(), spec.clone(), seed, augment.clone())).is_ok()
        {
            self.pending = Some(key);
        }
        match &self.shown {
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Drawing augmented samples...");
                });
            }
            Some((_, Shown::Failed(e))) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            Some((_, Shown::Grid(rows))) => {
                ui.label(
                    egui::RichText::new("Each row: a training image, then epochs 1 to 4 as training sees it").small(),
                );
                egui::Grid::new("augment_grid").spacing(egui::vec2(2.0, 2.0)).show(ui, |ui| {
                    for (row, (label, textures)) in rows.iter().enumerate() {
                        let class = classes.get(*label as usize).cloned().unwrap_or_default();
                        for (col, tex) in textures.iter().enumerate() {
                            let what = if col == 0 {
                                format!("Sample {} ({class}) as it is", row + 1)
                            } else {
                                format!("Sample {} augmented, epoch {col}", row + 1)
                            };
                            let image = ui.image((tex.id(), egui::vec2(40.0, 40.0))).on_hover_text(&what);
                            image.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &what));
                        }
                        ui.end_row();
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_shows_what_training_sees() {
        let spec = DataSpec { set: "digits".into(), ..DataSpec::default() };
        let ds = data::load(&spec, 3).unwrap();
        let augment = AugmentSpec { flip: true, shift: 2, ..AugmentSpec::default() };
        let rows = grid(&ds, &augment, 3).unwrap();
        assert_eq!(rows.len(), SAMPLES);
        assert!(rows.iter().all(|(_, images)| images.len() == DRAWS + 1 && images[0].size == [8, 8]));
        // some draw differs from its original
        assert!(rows.iter().any(|(_, images)| images[1..].iter().any(|i| i.pixels != images[0].pixels)));
        assert!(grid(&ds, &AugmentSpec::default(), 3).unwrap().is_empty());
    }
}
