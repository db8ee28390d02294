//! What the GUI knows of the model's insides, built from the training thread's answers: the
//! latest validation predictions, validation samples fetched by index (with their textures),
//! the pad's probabilities, saliency, filters, activation maps, layer statistics and the
//! decision boundary. Requests go out as `Action::Inspect` with an id; the answer with that id
//! is filed under what it was asked for. One request of each kind is in flight at a time, so a
//! busy training thread is never flooded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use egui::{ColorImage, TextureHandle, TextureOptions};

use super::draw_pad::{self, DrawPad};
use super::setup_panel::Action;
use crate::train::inspect::{
    BoundaryMap, Filters, InputRef, InsideInfo, InspectReply, InspectRequest, InspectWhat, LayerMaps, Picture,
    Predictions, SaliencyMap, SaliencyMethod, SampleView, Views,
};
use crate::train::layer_stats::LayerStats;
use crate::train::Event;

/// Cards in the sample gallery.
pub const GALLERY_CARDS: usize = 24;
/// Samples kept with their textures (a gallery's worth many times over).
const SAMPLE_CACHE: usize = 256;
/// Layer-statistics snapshots kept for the bands over time.
const STATS_HISTORY: usize = 400;
/// The pad asks again at most this often while you draw.
const PAD_INTERVAL: Duration = Duration::from_millis(50);

/// What a request was for, so its answer lands in the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Samples,
    Pad,
    Image,
    Saliency(SaliencyKind),
    Activations,
    Filters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaliencyKind {
    Gradient,
    Integrated,
}

/// Which validation samples the gallery shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GalleryMode {
    /// The samples of one confusion-matrix cell.
    Cell { truth: u32, predicted: u32 },
    /// Misclassified samples, the most confident first.
    ConfidentlyWrong,
    /// All samples, the least confident first.
    LeastConfident,
}

/// Which sub-view of the Inside tab is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsidePanel {
    #[default]
    TryIt,
    Boundary,
    Filters,
    LayerStats,
    Saliency,
}

/// The input a saliency or activation view is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub input: InputRef,
    /// What to call it on screen ("validation sample 12", "your drawing").
    pub label: String,
    pub class: usize,
}

/// A sample the worker sent, with its picture on the GPU once drawn.
pub struct CachedSample {
    pub view: SampleView,
    pub texture: Option<TextureHandle>,
    used: u64,
}

#[derive(Default)]
pub struct InspectState {
    pub info: Option<InsideInfo>,
    pub predictions: Option<Predictions>,
    pub samples: HashMap<usize, CachedSample>,
    next_id: u64,
    in_flight: HashMap<u64, Kind>,
    clock: u64,
    /// Why the gallery's samples were refused, with the predictions' epoch and the gallery
    /// mode they were asked for: not asked again until either changes (a failed run would
    /// otherwise be asked every frame).
    pub samples_error: Option<(usize, Option<GalleryMode>, String)>,
    /// The gallery's choice (none until a cell or a mode is picked).
    pub gallery: Option<GalleryMode>,
    /// The matrix and table show shares of each true class instead of counts.
    pub row_normalised: bool,
    pub panel: InsidePanel,
    pub pad: DrawPad,
    /// Centre the drawing as MNIST's digits were.
    pub pad_centre: bool,
    pad_sent: u64,
    pad_sent_at: Option<Instant>,
    /// The model's probabilities for the drawing (none for an empty pad).
    pub pad_probabilities: Option<Vec<f32>>,
    /// Why the drawing could not be classified.
    pub pad_error: Option<String>,
    pub subject: Option<Subject>,
    pub saliency: HashMap<SaliencyKind, Result<SaliencyMap, String>>,
    pub filters: Option<Result<Filters, String>>,
    /// How many epochs the run had when the filters were last asked for.
    pub filters_asked_at: Option<usize>,
    pub activations: Option<(Subject, Result<Vec<LayerMaps>, String>)>,
    pub layer_stats: Vec<LayerStats>,
    pub boundary: Option<BoundaryMap>,
    /// Boundary maps received in this run (tests wait for a few).
    pub boundaries_seen: usize,
    /// Textures of the panels, rebuilt when their data change, by name.
    pub textures: HashMap<String, TextureHandle>,
    /// The image file opened in "Try it": its name, picture and the model's probabilities, or
    /// why it could not be read.
    pub image: Option<OpenedImage>,
    image_asked: bool,
}

/// An image file the user opened to classify.
pub struct OpenedImage {
    pub name: String,
    /// Raw pixels in the model's input shape `[c, h, w]`, or why the file was refused.
    pub pixels: Result<Vec<u8>, String>,
    pub texture: Option<TextureHandle>,
    pub probabilities: Option<Vec<f32>>,
}

impl InspectState {
    /// A new run starts: nothing of the last one's model applies any more.
    pub fn run_started(&mut self, info: InsideInfo) {
        let (row_normalised, panel, pad_centre) = (self.row_normalised, self.panel, self.pad_centre);
        let pad = std::mem::take(&mut self.pad);
        *self = Self { row_normalised, panel, pad, pad_centre, next_id: self.next_id, ..Self::default() };
        // MNIST-like pictures are centred by default, as the IDX sets were
        self.pad_centre = pad_centre || info.input_shape == [1, 28, 28];
        self.pad_sent = u64::MAX;
        self.info = Some(info);
    }

    /// An id for the next `InspectRequest`.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn ask(&mut self, kind: Kind, what: InspectWhat, actions: &mut Vec<Action>) {
        let id = self.next_id();
        self.in_flight.insert(id, kind);
        actions.push(Action::Inspect(Box::new(InspectRequest { id, what })));
    }

    /// The costly views the open Inside tab wants computed: the boundary only for 2-D points.
    pub fn views_wanted(&self) -> Views {
        let points = self.info.as_ref().is_some_and(|i| i.kind == crate::data::SetKind::Points2d);
        Views { layer_stats: true, boundary: points }
    }

    /// Takes an inspect event (the app routes `Predictions`, `Inspected`, `LayerStats` and
    /// `Boundary` here; everything else goes to the live run).
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Predictions(p) => self.set_predictions(*p),
            Event::Inspected { id, reply } => {
                self.apply_reply(id, *reply);
            }
            Event::LayerStats(s) => self.add_layer_stats(*s),
            Event::Boundary(b) => self.set_boundary(*b),
            _ => {}
        }
    }

    /// The io thread's answer to `Action::OpenImageFile`: classified at once when it decoded.
    pub fn image_decoded(&mut self, path: std::path::PathBuf, result: Result<Vec<u8>, String>) {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.image = Some(OpenedImage { name, pixels: result, texture: None, probabilities: None });
        self.image_asked = false;
    }

    /// Asks for the opened image's probabilities once.
    pub fn classify_image(&mut self, actions: &mut Vec<Action>) {
        if self.image_asked {
            return;
        }
        let Some(Ok(pixels)) = self.image.as_ref().map(|i| &i.pixels) else { return };
        let raw = pixels.iter().map(|&v| f32::from(v)).collect();
        self.image_asked = true;
        self.ask(Kind::Image, InspectWhat::Classify(InputRef::Raw(raw)), actions);
    }

    fn busy(&self, kind: Kind) -> bool {
        self.in_flight.values().any(|k| *k == kind)
    }

    /// Files an answer; returns false for an id this state never asked (a previous run's).
    pub fn apply_reply(&mut self, id: u64, reply: InspectReply) -> bool {
        let Some(kind) = self.in_flight.remove(&id) else { return false };
        let unavailable = |r: &InspectReply| match r {
            InspectReply::Unavailable(why) => Some(why.clone()),
            _ => None,
        };
        match (kind, reply) {
            (Kind::Samples, InspectReply::Samples(views)) => {
                for view in views {
                    self.clock += 1;
                    self.samples.insert(view.index, CachedSample { view, texture: None, used: self.clock });
                }
                self.evict();
            }
            (Kind::Samples, r) => {
                let why = unavailable(&r).unwrap_or_else(|| "no answer".into());
                self.samples_error = Some((self.predictions_epoch(), self.gallery, why));
            }
            (Kind::Pad, InspectReply::Probabilities(p)) => {
                // the pad may have been cleared while the answer was on its way
                self.pad_error = None;
                self.pad_probabilities = (!self.pad.strokes.is_empty()).then_some(p);
            }
            (Kind::Saliency(k), InspectReply::Saliency(map)) => {
                self.textures.remove(&format!("saliency-{k:?}"));
                self.saliency.insert(k, Ok(map));
            }
            (Kind::Saliency(k), r) => {
                self.saliency.insert(k, Err(unavailable(&r).unwrap_or_else(|| "no answer".into())));
            }
            (Kind::Activations, r) => {
                let answer = match r {
                    InspectReply::Activations(maps) => Ok(maps),
                    other => Err(unavailable(&other).unwrap_or_else(|| "no answer".into())),
                };
                if let Some(subject) = self.subject.clone() {
                    self.textures.retain(|k, _| !k.starts_with("maps-"));
                    self.activations = Some((subject, answer));
                }
            }
            (Kind::Filters, r) => {
                self.textures.retain(|k, _| !k.starts_with("filter-"));
                self.filters = Some(match r {
                    InspectReply::Filters(f) => Ok(f),
                    other => Err(unavailable(&other).unwrap_or_else(|| "no answer".into())),
                });
            }
            (Kind::Image, InspectReply::Probabilities(p)) => {
                if let Some(image) = &mut self.image {
                    image.probabilities = Some(p);
                }
            }
            (Kind::Image, InspectReply::Unavailable(why)) => {
                if let Some(image) = &mut self.image {
                    image.pixels = Err(why);
                }
            }
            (Kind::Pad, InspectReply::Unavailable(why)) => {
                self.pad_probabilities = None;
                self.pad_error = Some(why);
            }
            (_, _) => {}
        }
        true
    }

    pub fn set_predictions(&mut self, predictions: Predictions) {
        self.samples_error = None;
        self.predictions = Some(predictions);
    }

    pub fn add_layer_stats(&mut self, stats: LayerStats) {
        if self.layer_stats.len() >= STATS_HISTORY {
            // keep every other old snapshot: the bands still span the whole run
            let mut i = 0;
            self.layer_stats.retain(|_| {
                i += 1;
                i % 2 == 0
            });
        }
        self.layer_stats.push(stats);
    }

    pub fn set_boundary(&mut self, map: BoundaryMap) {
        self.boundaries_seen += 1;
        self.textures.retain(|k, _| !k.starts_with("boundary") && !k.starts_with("neuron-"));
        self.boundary = Some(map);
    }

    fn evict(&mut self) {
        while self.samples.len() > SAMPLE_CACHE {
            let Some((&oldest, _)) = self.samples.iter().min_by_key(|(_, s)| s.used) else { return };
            self.samples.remove(&oldest);
        }
    }

    /// The validation indices the gallery shows, all of them (the cards show the first 24).
    pub fn gallery_indices(&self) -> Vec<usize> {
        match (&self.predictions, self.gallery) {
            (Some(p), Some(mode)) => super::sample_gallery::select(p, mode),
            _ => Vec::new(),
        }
    }

    fn predictions_epoch(&self) -> usize {
        self.predictions.as_ref().map_or(usize::MAX, |p| p.epoch)
    }

    /// Why the gallery's samples were refused for the predictions and mode shown now.
    pub fn gallery_error(&self) -> Option<&str> {
        self.samples_error
            .as_ref()
            .filter(|(epoch, mode, _)| *epoch == self.predictions_epoch() && *mode == self.gallery)
            .map(|(.., why)| why.as_str())
    }

    /// Asks for the gallery's samples that are not cached yet (one request at a time, none
    /// while the last refusal still applies).
    pub fn fetch_gallery(&mut self, shown: &[usize], actions: &mut Vec<Action>) {
        if self.busy(Kind::Samples) || self.gallery_error().is_some() {
            return;
        }
        let missing: Vec<usize> = shown.iter().copied().filter(|i| !self.samples.contains_key(i)).collect();
        for i in shown {
            if let Some(s) = self.samples.get_mut(i) {
                self.clock += 1;
                s.used = self.clock;
            }
        }
        if !missing.is_empty() {
            self.ask(Kind::Samples, InspectWhat::Samples(missing), actions);
        }
    }

    /// The picture of a cached sample as a texture (made on first use).
    pub fn sample_texture(&mut self, ctx: &egui::Context, index: usize) -> Option<TextureHandle> {
        let sample = self.samples.get_mut(&index)?;
        if sample.texture.is_none() {
            let picture = sample.view.picture.as_ref()?;
            let image = color_image(picture)?;
            sample.texture = Some(ctx.load_texture(format!("sample-{index}"), image, TextureOptions::NEAREST));
        }
        sample.texture.clone()
    }

    /// Sends the drawing when it changed (at most every 50 ms, one request in flight).
    pub fn send_pad(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        if self.pad.version == self.pad_sent {
            return;
        }
        if self.busy(Kind::Pad) {
            ctx.request_repaint_after(PAD_INTERVAL);
            return;
        }
        if let Some(at) = self.pad_sent_at.filter(|at| at.elapsed() < PAD_INTERVAL) {
            ctx.request_repaint_after(PAD_INTERVAL.saturating_sub(at.elapsed()));
            return;
        }
        self.pad_sent = self.pad.version;
        match draw_pad::raw_pixels(&self.pad.strokes, self.pad_centre) {
            Some(raw) => {
                self.pad_sent_at = Some(Instant::now());
                self.ask(Kind::Pad, InspectWhat::Classify(InputRef::Raw(raw)), actions);
            }
            None => self.pad_probabilities = None,
        }
    }

    /// The probabilities shown are for the drawing as it is (nothing left to send or receive).
    pub fn pad_settled(&self) -> bool {
        self.pad_sent == self.pad.version && !self.busy(Kind::Pad)
    }

    /// Re-sends the drawing (after the centring changed).
    pub fn resend_pad(&mut self) {
        self.pad_sent = u64::MAX;
    }

    /// Asks for the saliency of `subject` by one method; the Inside tab shows it.
    pub fn ask_saliency(&mut self, subject: Subject, kind: SaliencyKind, actions: &mut Vec<Action>) {
        if self.subject.as_ref() != Some(&subject) {
            self.saliency.clear();
            self.textures.retain(|k, _| !k.starts_with("saliency"));
        }
        let method = match kind {
            SaliencyKind::Gradient => SaliencyMethod::Gradient,
            SaliencyKind::Integrated => SaliencyMethod::Integrated { steps: crate::train::inspect::IG_STEPS },
        };
        let what = InspectWhat::Saliency { input: subject.input.clone(), class: subject.class, method };
        self.subject = Some(subject);
        self.saliency.remove(&kind);
        self.ask(Kind::Saliency(kind), what, actions);
    }

    pub fn saliency_pending(&self, kind: SaliencyKind) -> bool {
        self.busy(Kind::Saliency(kind))
    }

    /// Asks for the activation maps of every conv layer for `subject`.
    pub fn ask_activations(&mut self, subject: Subject, actions: &mut Vec<Action>) {
        let what = InspectWhat::Activations(subject.input.clone());
        self.subject = Some(subject);
        self.activations = None;
        self.ask(Kind::Activations, what, actions);
    }

    pub fn activations_pending(&self) -> bool {
        self.busy(Kind::Activations)
    }

    /// Asks for the first conv layer's filters (again after each epoch: they change).
    pub fn ask_filters(&mut self, actions: &mut Vec<Action>) {
        if !self.busy(Kind::Filters) {
            self.ask(Kind::Filters, InspectWhat::Filters, actions);
        }
    }

    pub fn filters_pending(&self) -> bool {
        self.busy(Kind::Filters)
    }

    /// A texture under `name`, made by `make` when not there yet.
    pub fn texture(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        smooth: bool,
        make: impl FnOnce() -> ColorImage,
    ) -> TextureHandle {
        if let Some(t) = self.textures.get(name) {
            return t.clone();
        }
        let options = if smooth { TextureOptions::LINEAR } else { TextureOptions::NEAREST };
        let t = ctx.load_texture(name, make(), options);
        self.textures.insert(name.to_string(), t.clone());
        t
    }
}

/// 8-bit pixels as an egui image (grey or RGB).
pub fn color_image(p: &Picture) -> Option<ColorImage> {
    if p.w * p.h * p.channels != p.bytes.len() || p.w == 0 {
        return None;
    }
    match p.channels {
        1 => Some(ColorImage::from_gray([p.w, p.h], &p.bytes)),
        3 => Some(ColorImage::from_rgb([p.w, p.h], &p.bytes)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predictions(epoch: usize) -> Predictions {
        Predictions { epoch, truth: vec![0, 1], top: vec![[(1, 0.9), (0, 0.1), (u32::MAX, 0.0)]; 2] }
    }

    fn asked(state: &mut InspectState) -> usize {
        let mut actions = Vec::new();
        state.fetch_gallery(&[0, 1], &mut actions);
        actions.len()
    }

    #[test]
    fn a_refused_gallery_is_not_asked_again_until_predictions_or_mode_change() {
        let mut state = InspectState { gallery: Some(GalleryMode::LeastConfident), ..Default::default() };
        state.set_predictions(predictions(1));
        assert_eq!(asked(&mut state), 1);
        let id = state.next_id;
        assert!(state.apply_reply(id, InspectReply::Unavailable("the run failed".into())));
        assert_eq!(state.gallery_error(), Some("the run failed"));
        for _ in 0..3 {
            assert_eq!(asked(&mut state), 0, "asked again after a refusal");
        }
        state.gallery = Some(GalleryMode::ConfidentlyWrong);
        assert_eq!(asked(&mut state), 1, "a new mode asks again");
        let id = state.next_id;
        state.apply_reply(id, InspectReply::Unavailable("still failed".into()));
        assert_eq!(asked(&mut state), 0);
        state.set_predictions(predictions(2));
        assert_eq!(state.gallery_error(), None);
        assert_eq!(asked(&mut state), 1, "new predictions ask again");
    }
}
