//! The sample gallery: the validation samples of a confusion-matrix cell, the confidently wrong
//! ones or the least confident ones, as cards (the picture, text or point; the truth; the top-3
//! classes as bars; Why? for saliency and Maps for activation maps). The choice is re-applied to
//! each epoch's predictions, so the gallery follows the training.

use egui::{RichText, Ui};

use super::app::View;
use super::inspect::{GalleryMode, InsidePanel, InspectState, Subject, GALLERY_CARDS};
use super::run_view::LiveRun;
use super::setup_panel::Action;
use crate::train::inspect::InputRef;

const PICTURE: f32 = 56.0;
/// A card's inner width.
const CARD: f32 = 112.0;

fn class_name(names: &[String], c: u32) -> String {
    names.get(c as usize).cloned().unwrap_or_else(|| c.to_string())
}

pub fn show(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    ui.horizontal_wrapped(|ui| {
        ui.strong("Samples");
        for (mode, title) in
            [(GalleryMode::ConfidentlyWrong, "Confidently wrong"), (GalleryMode::LeastConfident, "Least confident")]
        {
            if ui.selectable_label(inspect.gallery == Some(mode), title).clicked() {
                inspect.gallery = Some(mode);
            }
        }
    });
    let Some(predictions) = &inspect.predictions else {
        ui.label(RichText::new("Predictions arrive after each epoch.").weak());
        return;
    };
    let Some(mode) = inspect.gallery else {
        ui.label(RichText::new("Click a cell of the matrix to see its samples.").weak());
        return;
    };
    let epoch = predictions.epoch;
    let names = &run.class_names;
    let indices = inspect.gallery_indices();
    let n = indices.len();
    let heading = match mode {
        GalleryMode::Cell { truth, predicted } => {
            format!("{n} samples: true {}, predicted {}", class_name(names, truth), class_name(names, predicted))
        }
        GalleryMode::ConfidentlyWrong => format!("{n} misclassified samples, the most confident first"),
        GalleryMode::LeastConfident => format!("{n} samples, the least confident first"),
    };
    ui.label(RichText::new(heading).strong());
    ui.label(RichText::new(format!("predictions of epoch {epoch}")).small().weak());
    let shown: Vec<usize> = indices.into_iter().take(GALLERY_CARDS).collect();
    inspect.fetch_gallery(&shown, actions);
    if let Some(why) = inspect.gallery_error() {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Samples unavailable: {why}"));
    }
    let has_conv = inspect.info.as_ref().is_some_and(|i| !i.conv_layers.is_empty());
    let ctx = ui.ctx().clone();
    // rows laid out by hand: frames in a wrapping layout do not wrap (their size is unknown
    // until they are drawn)
    let per_row = ((ui.available_width() + 4.0) / (CARD + 14.0)).floor().max(1.0) as usize;
    egui::ScrollArea::vertical().id_salt("sample_gallery").show(ui, |ui| {
        for row in shown.chunks(per_row) {
            ui.horizontal_top(|ui| {
                for &index in row {
                    card(ui, &ctx, run, inspect, index, has_conv, actions);
                }
            });
        }
    });
}

fn card(
    ui: &mut Ui,
    ctx: &egui::Context,
    run: &LiveRun,
    inspect: &mut InspectState,
    index: usize,
    has_conv: bool,
    actions: &mut Vec<Action>,
) {
    let Some(p) = &inspect.predictions else { return };
    let (truth, top) = (p.truth[index], p.top[index]);
    let names = &run.class_names;
    let texture = inspect.sample_texture(ctx, index);
    let sample = inspect.samples.get(&index).map(|s| s.view.clone());
    egui::Frame::group(ui.style()).inner_margin(4.0).show(ui, |ui| {
        ui.set_width(CARD);
        ui.vertical(|ui| {
            ui.label(
                RichText::new(format!(
                    "sample {index} · true {} · top-1 {}",
                    class_name(names, truth),
                    class_name(names, top[0].0)
                ))
                .small(),
            );
            match (&texture, &sample) {
                (Some(t), _) => {
                    ui.add(
                        egui::Image::new((t.id(), egui::vec2(PICTURE, PICTURE))).alt_text(format!("sample {index}")),
                    );
                }
                (None, Some(s)) => {
                    if let Some(text) = &s.text {
                        let short: String = text.chars().take(120).collect();
                        ui.label(RichText::new(short).small().monospace());
                    } else if let Some([x, y]) = s.point {
                        ui.label(RichText::new(format!("point ({x:.2}, {y:.2})")).small());
                    } else if !s.features.is_empty() {
                        let f: Vec<String> = s.features.iter().take(8).map(|v| format!("{v:.3}")).collect();
                        ui.label(RichText::new(f.join(", ")).small().monospace());
                    }
                }
                (None, None) => {
                    ui.spinner();
                }
            }
            for (class, prob) in top.iter().filter(|(_, q)| *q > 0.0) {
                let bar = egui::ProgressBar::new(*prob)
                    .desired_width(CARD)
                    .desired_height(12.0)
                    .text(RichText::new(format!("{} {:.1}%", class_name(names, *class), 100.0 * prob)).small());
                ui.add(bar);
            }
            ui.horizontal(|ui| {
                let subject = || Subject {
                    input: InputRef::Validation(index),
                    label: format!("validation sample {index} (true {})", class_name(names, truth)),
                    class: top[0].0 as usize,
                };
                let images = inspect
                    .info
                    .as_ref()
                    .is_some_and(|i| i.input_shape.len() == 3 || i.kind == crate::data::SetKind::Tabular);
                if images && ui.small_button("Why?").on_hover_text("Which inputs the top class depends on").clicked() {
                    inspect.ask_saliency(subject(), super::inspect::SaliencyKind::Gradient, actions);
                    inspect.panel = InsidePanel::Saliency;
                    actions.push(Action::ShowTab(View::Inside));
                }
                if has_conv && ui.small_button("Maps").on_hover_text("What each conv layer makes of it").clicked() {
                    inspect.ask_activations(subject(), actions);
                    inspect.panel = InsidePanel::Filters;
                    actions.push(Action::ShowTab(View::Inside));
                }
            });
        });
    });
}

/// The validation indices a gallery mode picks from the predictions, in the order shown.
pub fn select(p: &crate::train::inspect::Predictions, mode: GalleryMode) -> Vec<usize> {
    let top1 = |i: usize| p.top[i][0];
    let n = p.truth.len().min(p.top.len());
    let mut out: Vec<usize> = match mode {
        GalleryMode::Cell { truth, predicted } => {
            (0..n).filter(|&i| p.truth[i] == truth && top1(i).0 == predicted).collect()
        }
        GalleryMode::ConfidentlyWrong => (0..n).filter(|&i| p.truth[i] != top1(i).0).collect(),
        GalleryMode::LeastConfident => (0..n).collect(),
    };
    match mode {
        GalleryMode::Cell { .. } => out.sort_by(|&a, &b| top1(b).1.total_cmp(&top1(a).1).then(a.cmp(&b))),
        GalleryMode::ConfidentlyWrong => out.sort_by(|&a, &b| top1(b).1.total_cmp(&top1(a).1).then(a.cmp(&b))),
        GalleryMode::LeastConfident => out.sort_by(|&a, &b| top1(a).1.total_cmp(&top1(b).1).then(a.cmp(&b))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predictions() -> crate::train::inspect::Predictions {
        // sample: truth, top-1 (class, p)
        let rows = [(0, 0, 0.9), (0, 1, 0.6), (1, 1, 0.5), (1, 0, 0.95), (0, 1, 0.8), (2, 2, 0.4)];
        crate::train::inspect::Predictions {
            epoch: 1,
            truth: rows.iter().map(|r| r.0).collect(),
            top: rows.iter().map(|&(_, c, q)| [(c, q), ((c + 1) % 3, 1.0 - q), ((c + 2) % 3, 0.0)]).collect(),
        }
    }

    #[test]
    fn gallery_modes_pick_and_order_samples() {
        let p = predictions();
        assert_eq!(select(&p, GalleryMode::Cell { truth: 0, predicted: 1 }), [4, 1], "the cell, surest first");
        assert_eq!(select(&p, GalleryMode::Cell { truth: 1, predicted: 0 }), [3]);
        assert_eq!(select(&p, GalleryMode::ConfidentlyWrong), [3, 4, 1]);
        assert_eq!(select(&p, GalleryMode::LeastConfident), [5, 2, 1, 4, 0, 3]);
    }
}
