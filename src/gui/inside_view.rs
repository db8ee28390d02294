//! The Inside tab: what the network does with its inputs. It offers the views that fit the
//! run's data and layers: "Try it" (a drawing pad for 28 x 28 grey pictures, the text box for
//! text classifiers), the decision boundary (2-D points), filters and activation maps (conv
//! layers), layer statistics, and saliency (pictures and tables). Everything shown comes from the
//! training thread's answers; this file only picks and lays out.

use egui::{RichText, Ui};

use super::inspect::{InsidePanel, InspectState, SaliencyKind, Subject};
use super::run_view::{LiveRun, Phase};
use super::setup_panel::Action;
use super::{boundary_view, draw_pad, filters_view, layer_stats_view, saliency_view};
use crate::data::SetKind;
use crate::train::inspect::{InputRef, InsideInfo};
use crate::train::RunStatus;

/// The training thread answers while a run trains or is paused, and after it ends (from its
/// last weights, until the next run starts).
pub fn answers(phase: Phase) -> bool {
    matches!(phase, Phase::Running | Phase::Paused | Phase::Finished(RunStatus::Completed | RunStatus::Stopped))
}

/// The panels that apply to a run, in tab order.
pub fn panels(info: &InsideInfo) -> Vec<(InsidePanel, &'static str)> {
    let mut out = vec![(InsidePanel::TryIt, "Try it")];
    if info.kind == SetKind::Points2d {
        out.push((InsidePanel::Boundary, "Decision boundary"));
    }
    if !info.conv_layers.is_empty() {
        out.push((InsidePanel::Filters, "Filters"));
    }
    out.push((InsidePanel::LayerStats, "Layer statistics"));
    if matches!(info.kind, SetKind::Image | SetKind::Tabular) {
        out.push((InsidePanel::Saliency, "Saliency"));
    }
    out
}

/// Whether the drawing pad fits the model's input (one grey 28 x 28 picture).
pub fn takes_drawings(info: &InsideInfo) -> bool {
    info.input_shape == [1, draw_pad::SIDE, draw_pad::SIDE]
}

pub fn show(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let Some(info) = inspect.info.clone() else {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading("Start a run to look inside its network.");
            ui.label("Its decision boundary, filters, layer statistics and saliency appear here as it learns.");
        });
        return;
    };
    if run.task.is_generative() {
        ui.label("The inside views are for classifiers; a generative model's pictures are in the Training tab.");
        return;
    }
    let available = panels(&info);
    if !available.iter().any(|(p, _)| *p == inspect.panel) {
        inspect.panel = available[0].0;
    }
    ui.horizontal(|ui| {
        for (panel, title) in &available {
            ui.selectable_value(&mut inspect.panel, *panel, *title);
        }
    });
    if !answers(run.phase) {
        ui.label(RichText::new("The network answers once the run has started, and after it ends.").weak());
    }
    ui.separator();
    match inspect.panel {
        InsidePanel::TryIt => try_it(ui, run, &info, inspect, actions),
        InsidePanel::Boundary => boundary_view::show(ui, run, inspect),
        InsidePanel::Filters => filters_view::show(ui, run, inspect, actions),
        InsidePanel::LayerStats => layer_stats_view::show(ui, inspect),
        InsidePanel::Saliency => saliency_view::show(ui, run, inspect, actions),
    }
}

fn try_it(ui: &mut Ui, run: &LiveRun, info: &InsideInfo, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    if run.text {
        ui.label(RichText::new("Type into the box in the Training tab: the probabilities follow as you type.").weak());
        return;
    }
    if let [c, h, w] = info.input_shape[..] {
        image_file(ui, run, inspect, [c, h, w], actions);
    }
    if !takes_drawings(info) {
        if info.input_shape.len() != 3 {
            ui.label(
                RichText::new("The drawing pad is for models of 28×28 grey pictures. The gallery in the Training tab shows how this one sees its validation samples.")
                    .weak(),
            );
        }
        return;
    }
    let ctx = ui.ctx().clone();
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Draw a digit");
            inspect.pad.ui(ui);
            ui.horizontal(|ui| {
                if ui.button("Clear").clicked() {
                    inspect.pad.clear();
                    inspect.pad_probabilities = None;
                }
                let centre = ui.checkbox(&mut inspect.pad_centre, "Centre like MNIST").on_hover_text(
                    "Scale the drawing into 20×20 and move its centre of mass to the middle, as MNIST's digits were",
                );
                if centre.changed() {
                    inspect.resend_pad();
                }
            });
        });
        ui.vertical(|ui| {
            if answers(run.phase) {
                inspect.send_pad(&ctx, actions);
            }
            probabilities(ui, run, inspect, actions);
        });
    });
}

/// "Open image…": a file decoded on the io thread to the model's input shape, then classified.
fn image_file(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, shape: [usize; 3], actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let open = ui.add_enabled(answers(run.phase), egui::Button::new("Open image…"));
        if open.on_hover_text("Classify a PNG, JPEG or WebP file, resized as the training pictures were").clicked() {
            actions.push(Action::OpenImageFile(shape));
        }
        if let Some(image) = &inspect.image {
            ui.label(RichText::new(&image.name).small());
        }
    });
    if answers(run.phase) {
        inspect.classify_image(actions);
    }
    let ctx = ui.ctx().clone();
    let Some(image) = &mut inspect.image else { return };
    match &image.pixels {
        Err(why) => {
            ui.colored_label(ui.visuals().error_fg_color, why);
        }
        Ok(pixels) => {
            if image.texture.is_none() {
                let [c, h, w] = shape;
                // planes [c, h, w] to interleaved pixels
                let bytes: Vec<u8> = (0..h * w)
                    .flat_map(|i| (0..c).map(move |k| (k, i)))
                    .map(|(k, i)| pixels.get(k * h * w + i).copied().unwrap_or(0))
                    .collect();
                let picture = crate::train::inspect::Picture { w, h, channels: c, bytes };
                if let Some(img) = super::inspect::color_image(&picture) {
                    image.texture = Some(ctx.load_texture("opened-image", img, egui::TextureOptions::LINEAR));
                }
            }
            ui.horizontal_top(|ui| {
                if let Some(t) = &image.texture {
                    ui.add(egui::Image::new((t.id(), egui::vec2(112.0, 112.0))).alt_text("the opened image"));
                }
                ui.vertical(|ui| match &image.probabilities {
                    Some(p) => bars(ui, run, p, 5),
                    None => {
                        ui.spinner();
                    }
                });
            });
        }
    }
    ui.separator();
}

/// The `top` most probable classes as bars (all of them when `top` is 0).
fn bars(ui: &mut Ui, run: &LiveRun, p: &[f32], top: usize) {
    let best = filters_view::argmax(p);
    let mut order: Vec<usize> = (0..p.len()).collect();
    if top > 0 {
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        order.truncate(top);
    }
    for class in order {
        let q = p[class];
        let name = run.class_names.get(class).cloned().unwrap_or_else(|| class.to_string());
        ui.horizontal(|ui| {
            let bar = egui::ProgressBar::new(q).desired_width(180.0).text(format!("{:.1}%", 100.0 * q));
            ui.add(bar);
            let label = RichText::new(format!("{name}: {:.1}%", 100.0 * q));
            ui.label(if class == best { label.strong() } else { label });
        });
    }
}

fn probabilities(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    ui.strong("What the model sees");
    if let Some(why) = &inspect.pad_error {
        ui.colored_label(ui.visuals().error_fg_color, why);
    }
    let Some(p) = inspect.pad_probabilities.clone() else {
        ui.label(RichText::new("Draw a digit: the probabilities follow your pen.").weak());
        return;
    };
    let best = filters_view::argmax(&p);
    bars(ui, run, &p, 0);
    ui.horizontal(|ui| {
        let raw = draw_pad::raw_pixels(&inspect.pad.strokes, inspect.pad_centre);
        if let Some(raw) = raw {
            let best_name = run.class_names.get(best).cloned().unwrap_or_else(|| best.to_string());
            if ui.button("Why?").on_hover_text(format!("Which pixels make it a {best_name}")).clicked() {
                let subject = Subject { input: InputRef::Raw(raw.clone()), label: "your drawing".into(), class: best };
                inspect.ask_saliency(subject, SaliencyKind::Gradient, actions);
                inspect.panel = InsidePanel::Saliency;
            }
            let conv = inspect.info.as_ref().is_some_and(|i| !i.conv_layers.is_empty());
            if conv && ui.button("Maps").clicked() {
                let subject = Subject { input: InputRef::Raw(raw), label: "your drawing".into(), class: best };
                inspect.ask_activations(subject, actions);
                inspect.panel = InsidePanel::Filters;
            }
        }
    });
}
