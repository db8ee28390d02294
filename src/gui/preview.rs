//! A look at the chosen data set before training: counts, classes, a few images or a scatter of
//! 2-D points. Loading happens on a background thread; the UI only draws what has arrived.

use std::collections::HashMap;

use crossbeam_channel::{bounded, Receiver, Sender};
use egui::{Color32, TextureHandle, TextureOptions};
use egui_plot::{Plot, Points};

use crate::data::{self, DataSpec, SetKind};
use crate::train::Waker;

const IMAGES: usize = 16;
const MAX_POINTS: usize = 1500;
const TEXTS: usize = 6;

pub struct PreviewData {
    pub kind: SetKind,
    pub class_names: Vec<String>,
    pub input_shape: Vec<usize>,
    pub train: usize,
    pub validation: usize,
    pub test: Option<usize>,
    /// (label, width, height, grey pixels)
    pub images: Vec<(u32, usize, usize, Vec<u8>)>,
    /// (x, y, label)
    pub points: Vec<(f64, f64, u32)>,
    /// Text sets: a few training samples decoded, with their label.
    pub texts: Vec<(u32, String)>,
    /// Text sets: tokens the model's embedding must hold.
    pub vocab: Option<usize>,
}

fn key(spec: &DataSpec, seed: u64) -> String {
    format!("{spec:?}/{seed}")
}

fn build(spec: &DataSpec, seed: u64) -> Result<PreviewData, String> {
    let ds = data::load(spec, seed).map_err(|e| e.to_string())?;
    let mut images = Vec::new();
    let mut points = Vec::new();
    let mut texts = Vec::new();
    match ds.kind {
        SetKind::Image => {
            let (h, w) = (ds.input_shape[1], ds.input_shape[2]);
            for i in 0..IMAGES.min(ds.train.len()) {
                // a streamed set's rows are on disk: read them rather than index memory
                let sample = ds.train.sample_vec(i).map_err(|e| e.to_string())?;
                let px = &sample[..h * w];
                let (lo, hi) = px.iter().fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
                let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
                let grey = px.iter().map(|&v| ((v - lo) * scale) as u8).collect();
                images.push((ds.train.labels[i], w, h, grey));
            }
        }
        SetKind::Points2d => {
            for i in 0..MAX_POINTS.min(ds.train.len()) {
                let s = ds.train.sample(i);
                points.push((f64::from(s[0]), f64::from(s[1]), ds.train.labels[i]));
            }
        }
        SetKind::Tabular => {}
        SetKind::Text | SetKind::TextStream => {
            if let Some(info) = &ds.text {
                for i in 0..TEXTS.min(ds.train.len()) {
                    texts.push((ds.train.labels[i], info.decode(&data::TextInfo::ids_of(ds.train.sample(i)))));
                }
            }
        }
    }
    Ok(PreviewData {
        vocab: ds.text.as_ref().map(|t| t.tokens.len()),
        kind: ds.kind,
        class_names: ds.class_names,
        input_shape: ds.input_shape,
        train: ds.train.len(),
        validation: ds.validation.len(),
        test: ds.test.as_ref().map(data::Split::len),
        images,
        points,
        texts,
    })
}

enum Entry {
    Loading,
    Ready(PreviewData, Vec<TextureHandle>),
    Failed(String),
}

pub struct PreviewLoader {
    requests: Sender<(String, DataSpec, u64)>,
    results: Receiver<(String, Result<PreviewData, String>)>,
    entries: HashMap<String, Entry>,
    /// The augmented grid, on its own thread beside this one.
    pub augmented: super::augment_preview::AugmentPreview,
}

impl PreviewLoader {
    pub fn spawn(waker: Option<Waker>) -> Self {
        Self::spawn_with(waker, build)
    }

    /// The loader with its own way to build a preview (tests make one that panics).
    fn spawn_with(
        waker: Option<Waker>,
        build: impl Fn(&DataSpec, u64) -> Result<PreviewData, String> + Send + 'static,
    ) -> Self {
        let augmented = super::augment_preview::AugmentPreview::spawn(waker.clone());
        let (req_tx, req_rx) = bounded::<(String, DataSpec, u64)>(8);
        let (res_tx, res_rx) = bounded(8);
        std::thread::Builder::new()
            .name("gradlab-preview".into())
            .spawn(move || {
                for (key, spec, seed) in req_rx {
                    let result = super::catch_panic("loading the preview", || build(&spec, seed)).and_then(|r| r);
                    if res_tx.send((key, result)).is_err() {
                        return;
                    }
                    if let Some(w) = &waker {
                        w();
                    }
                }
            })
            .expect("spawning the preview thread");
        Self { requests: req_tx, results: res_rx, entries: HashMap::new(), augmented }
    }

    /// Takes finished previews (call once per frame; never blocks).
    pub fn poll(&mut self, ctx: &egui::Context) {
        self.augmented.poll(ctx);
        while let Ok((key, result)) = self.results.try_recv() {
            let entry = match result {
                Ok(data) => {
                    let textures = data
                        .images
                        .iter()
                        .enumerate()
                        .map(|(i, (_, w, h, px))| {
                            let image = egui::ColorImage::from_gray([*w, *h], px);
                            ctx.load_texture(format!("preview-{key}-{i}"), image, TextureOptions::NEAREST)
                        })
                        .collect();
                    Entry::Ready(data, textures)
                }
                Err(e) => Entry::Failed(e),
            };
            self.entries.insert(key, entry);
        }
    }

    /// Draws the preview of `spec`, asking for it if it is not there yet.
    pub fn ui(&mut self, ui: &mut egui::Ui, spec: &DataSpec, seed: u64) {
        let key = key(spec, seed);
        if !self.entries.contains_key(&key) && self.requests.try_send((key.clone(), spec.clone(), seed)).is_ok() {
            self.entries.insert(key.clone(), Entry::Loading);
        }
        match self.entries.get(&key) {
            None | Some(Entry::Loading) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Loading data…");
                });
            }
            Some(Entry::Failed(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            Some(Entry::Ready(data, textures)) => show_ready(ui, data, textures),
        }
    }

    /// The preview's data if loaded (class count and shape for the setup panel).
    pub fn info(&self, spec: &DataSpec, seed: u64) -> Option<&PreviewData> {
        match self.entries.get(&key(spec, seed)) {
            Some(Entry::Ready(d, _)) => Some(d),
            _ => None,
        }
    }
}

pub fn class_color(c: u32) -> Color32 {
    const PALETTE: [Color32; 10] = [
        Color32::from_rgb(31, 119, 180),
        Color32::from_rgb(255, 127, 14),
        Color32::from_rgb(44, 160, 44),
        Color32::from_rgb(214, 39, 40),
        Color32::from_rgb(148, 103, 189),
        Color32::from_rgb(140, 86, 75),
        Color32::from_rgb(227, 119, 194),
        Color32::from_rgb(127, 127, 127),
        Color32::from_rgb(188, 189, 34),
        Color32::from_rgb(23, 190, 207),
    ];
    PALETTE[c as usize % PALETTE.len()]
}

fn show_ready(ui: &mut egui::Ui, data: &PreviewData, textures: &[TextureHandle]) {
    let shape = data.input_shape.iter().map(ToString::to_string).collect::<Vec<_>>().join("×");
    let test = data.test.map_or(String::new(), |t| format!(" / {t} test"));
    ui.label(format!(
        "{} train / {} validation{test} samples · input {shape} · {} classes",
        data.train,
        data.validation,
        data.class_names.len()
    ));
    match data.kind {
        SetKind::Image => {
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing = egui::vec2(2.0, 2.0);
                for ((label, ..), tex) in data.images.iter().zip(textures) {
                    ui.image((tex.id(), egui::vec2(36.0, 36.0)))
                        .on_hover_text(data.class_names.get(*label as usize).cloned().unwrap_or_default());
                }
            });
        }
        SetKind::Points2d => {
            Plot::new("data_scatter")
                .height(170.0)
                .data_aspect(1.0)
                .allow_scroll(false)
                .allow_drag(false)
                .allow_zoom(false)
                .show_axes(false)
                .show(ui, |p| {
                    for c in 0..data.class_names.len() as u32 {
                        let pts: Vec<[f64; 2]> = data.points.iter().filter(|q| q.2 == c).map(|q| [q.0, q.1]).collect();
                        p.points(
                            Points::new(data.class_names[c as usize].clone(), pts).color(class_color(c)).radius(1.5),
                        );
                    }
                });
        }
        SetKind::Tabular => {
            ui.label(format!("Classes: {}", data.class_names.join(", ")));
        }
        SetKind::Text | SetKind::TextStream => {
            for (label, text) in &data.texts {
                let shown: String = text.chars().take(160).collect::<String>().replace('\n', " / ");
                if data.kind == SetKind::Text {
                    let class = data.class_names.get(*label as usize).cloned().unwrap_or_default();
                    ui.label(egui::RichText::new(format!("[{class}] {shown}")).small());
                } else {
                    ui.label(egui::RichText::new(shown).small().monospace());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_set_previews_decoded_samples_with_their_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, text) in [("neg", "Awful film."), ("pos", "A GREAT film!<br />")] {
            let folder = dir.path().join("train").join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..5 {
                std::fs::write(folder.join(format!("{i}.txt")), text).unwrap();
            }
        }
        let spec = DataSpec { set: "text-folder".into(), path: Some(dir.path().into()), ..DataSpec::default() };
        let preview = build(&spec, 1).unwrap();
        assert_eq!((preview.train, preview.validation, preview.texts.len()), (9, 1, TEXTS));
        for (label, text) in &preview.texts {
            assert_eq!(text, ["awful film .", "a great film !"][*label as usize]);
        }
    }

    #[test]
    fn a_panic_while_loading_arrives_as_an_error() {
        let mut loader = PreviewLoader::spawn_with(None, |spec, _| panic!("cannot preview {}", spec.set));
        let spec = DataSpec { set: "iris".into(), ..DataSpec::default() };
        let ctx = egui::Context::default();
        loader.requests.send((key(&spec, 1), spec.clone(), 1)).unwrap();
        // the reply comes back on the channel; poll() files it under the key
        let (k, result) = loader.results.recv_timeout(std::time::Duration::from_secs(60)).expect("a reply");
        let err = result.err().expect("an error, not a preview");
        assert!(
            err.contains("internal error while loading the preview") && err.contains("cannot preview iris"),
            "{err}"
        );
        // the thread survives for the next request
        loader.requests.send((k, spec.clone(), 2)).unwrap();
        assert!(loader.results.recv_timeout(std::time::Duration::from_secs(60)).is_ok());
        loader.poll(&ctx);
    }
}
