//! The first conv layer's filters as small tiles (blue negative, white zero, red positive, each
//! filter on its own scale; colour filters as RGB), and the activation maps of every conv layer
//! for one chosen input (from a gallery card's Maps, or the drawing).

use egui::{Color32, ColorImage, RichText, Ui};

use super::inspect::{InspectState, Subject};
use super::run_view::LiveRun;
use super::setup_panel::Action;
use crate::train::inspect::{Filters, InputRef, LayerMaps};

const TILE: f32 = 40.0;
const MAP: f32 = 56.0;

/// Blue (-1) through white (0) to red (+1).
pub fn diverging(v: f32) -> Color32 {
    let t = v.clamp(-1.0, 1.0);
    let fade = |full: f32| (255.0 - (255.0 - full) * t.abs()) as u8;
    if t >= 0.0 {
        Color32::from_rgb(fade(178.0), fade(24.0), fade(43.0))
    } else {
        Color32::from_rgb(fade(33.0), fade(102.0), fade(172.0))
    }
}

/// Dark purple (0) through orange to pale yellow (1), a perceptual ramp like matplotlib's magma.
pub fn sequential(v: f32) -> Color32 {
    const STOPS: [[f32; 3]; 5] =
        [[0.0, 0.0, 4.0], [81.0, 18.0, 124.0], [183.0, 55.0, 121.0], [252.0, 137.0, 97.0], [252.0, 253.0, 191.0]];
    let t = if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 } * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f) as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// One filter as an image: `in_channels` of 3 as RGB (min..max of the filter to 0..255), else
/// the mean over input channels on the diverging scale.
pub fn filter_image(f: &Filters, o: usize) -> ColorImage {
    let kk = f.k * f.k;
    let per = f.in_channels * kk;
    let w = &f.values[o * per..(o + 1) * per];
    if f.in_channels == 3 {
        let (lo, hi) = w.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        let px = |c: usize, i: usize| ((w[c * kk + i] - lo) * scale) as u8;
        let pixels = (0..kk).map(|i| Color32::from_rgb(px(0, i), px(1, i), px(2, i))).collect();
        return ColorImage::new([f.k, f.k], pixels);
    }
    let mean: Vec<f32> =
        (0..kk).map(|i| (0..f.in_channels).map(|c| w[c * kk + i]).sum::<f32>() / f.in_channels as f32).collect();
    let peak = mean.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    ColorImage::new([f.k, f.k], mean.iter().map(|v| diverging(v / peak)).collect())
}

/// One channel of a layer's maps, on the sequential scale of the layer's range.
fn map_image(m: &LayerMaps, c: usize, lo: f32, hi: f32) -> ColorImage {
    let hw = m.h * m.w;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let pixels = m.values[c * hw..(c + 1) * hw].iter().map(|v| sequential((v - lo) / span)).collect();
    ColorImage::new([m.w, m.h], pixels)
}

pub fn show(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    // the filters change as the model learns: asked again after each epoch
    let epochs = run.epoch_metrics.len();
    if inspect.filters_asked_at != Some(epochs) && !inspect.filters_pending() {
        inspect.filters_asked_at = Some(epochs);
        inspect.ask_filters(actions);
    }
    let ctx = ui.ctx().clone();
    match inspect.filters.clone() {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Asking for the filters…");
            });
        }
        Some(Err(why)) => {
            ui.label(RichText::new(format!("Filters: {why}")).weak());
        }
        Some(Ok(f)) => {
            let colour = if f.in_channels == 3 { "RGB" } else { "blue negative, red positive" };
            ui.strong(format!("{}: {} filters of {}×{} ({colour})", f.layer, f.out, f.k, f.k));
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing = egui::vec2(3.0, 3.0);
                for o in 0..f.out {
                    let t = inspect.texture(&ctx, &format!("filter-{o}"), false, || filter_image(&f, o));
                    let name = format!("{} filter {}", f.layer, o + 1);
                    ui.add(egui::Image::new((t.id(), egui::vec2(TILE, TILE))).alt_text(name.clone()))
                        .on_hover_text(name);
                }
            });
        }
    }
    ui.separator();
    activations(ui, &ctx, inspect, actions);
}

fn activations(ui: &mut Ui, ctx: &egui::Context, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.strong("Activation maps");
        if let Some(raw) = super::draw_pad::raw_pixels(&inspect.pad.strokes, inspect.pad_centre) {
            if ui.small_button("Maps of the drawing").clicked() {
                let class = argmax(inspect.pad_probabilities.as_deref().unwrap_or(&[]));
                let subject = Subject { input: InputRef::Raw(raw), label: "your drawing".into(), class };
                inspect.ask_activations(subject, actions);
            }
        }
    });
    if inspect.activations_pending() {
        ui.spinner();
    }
    let Some((subject, answer)) = inspect.activations.clone() else {
        ui.label(
            RichText::new(
                "Press Maps on a sample in the Training tab's gallery to see what each conv layer makes of it.",
            )
            .weak(),
        );
        return;
    };
    ui.label(RichText::new(format!("for {}", subject.label)).small());
    match answer {
        Err(why) => {
            ui.label(RichText::new(why).weak());
        }
        Ok(layers) => {
            egui::ScrollArea::vertical().id_salt("activation_maps").show(ui, |ui| {
                for m in &layers {
                    let (lo, hi) = m.values.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    ui.label(format!("{}: {} maps of {}×{} (range {lo:.2} to {hi:.2})", m.name, m.channels, m.h, m.w));
                    ui.horizontal_wrapped(|ui| {
                        ui.spacing_mut().item_spacing = egui::vec2(3.0, 3.0);
                        for c in 0..m.channels {
                            let key = format!("maps-{}-{c}", m.name);
                            let t = inspect.texture(ctx, &key, false, || map_image(m, c, lo, hi));
                            let name = format!("{} map {}", m.name, c + 1);
                            ui.add(egui::Image::new((t.id(), egui::vec2(MAP, MAP))).alt_text(name));
                        }
                    });
                }
            });
        }
    }
}

pub fn argmax(p: &[f32]) -> usize {
    p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_scales_run_from_end_to_end() {
        assert_eq!(diverging(0.0), Color32::WHITE);
        assert_eq!(diverging(1.0), Color32::from_rgb(178, 24, 43));
        assert_eq!(diverging(-2.0), Color32::from_rgb(33, 102, 172));
        assert_eq!(sequential(0.0), Color32::from_rgb(0, 0, 4));
        assert_eq!(sequential(1.0), Color32::from_rgb(252, 253, 191));
        assert_eq!(sequential(f32::NAN), sequential(0.0));
    }

    #[test]
    fn a_filter_tile_is_k_by_k() {
        let f = Filters {
            layer: "conv1".into(),
            out: 2,
            in_channels: 1,
            k: 3,
            values: (0..18).map(|v| v as f32 - 9.0).collect(),
        };
        let img = filter_image(&f, 1);
        assert_eq!(img.size, [3, 3]);
        // filter 2 holds 0..8: its largest weight is full red, its zero white
        assert_eq!(img.pixels[8], diverging(1.0));
        assert_eq!(img.pixels[0], Color32::WHITE);
    }
}
