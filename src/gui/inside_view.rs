//! The Inside tab: what the network does with its inputs. It offers the views that fit the
//! run's data and layers: "Try it" (a drawing pad for 28 x 28 grey pictures, the text box for
//! text classifiers), the decision boundary (2-D points), filters and activation maps (conv
//! layers), layer statistics, and saliency (pictures and tables). Everything shown comes from the
//! training thread's answers; this file only picks and lays out.

use egui::{RichText, Ui};

use super::inspect::{InsidePanel, InspectState, SaliencyKind, Subject};
use super::run_view::{LiveRun, Phase};
use super::setup_panel::Action;
use super::text_views::{self, TextViewState};
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

pub fn show(
    ui: &mut Ui,
    run: &LiveRun,
    inspect: &mut InspectState,
    text_view: &mut TextViewState,
    actions: &mut Vec<Action>,
) {
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
        InsidePanel::TryIt => try_it(ui, run, &info, inspect, text_view, actions),
        InsidePanel::Boundary => boundary_view::show(ui, run, inspect),
        InsidePanel::Filters => filters_view::show(ui, run, inspect, actions),
        InsidePanel::LayerStats => layer_stats_view::show(ui, inspect),
        InsidePanel::Saliency => saliency_view::show(ui, run, inspect, actions),
    }
}

fn try_it(
    ui: &mut Ui,
    run: &LiveRun,
    info: &InsideInfo,
    inspect: &mut InspectState,
    text_view: &mut TextViewState,
    actions: &mut Vec<Action>,
) {
    if run.text {
        text_views::probe(ui, run, text_view, actions);
        return;
    }
    if !takes_drawings(info) {
        let shape = info.input_shape.iter().map(ToString::to_string).collect::<Vec<_>>().join("×");
        ui.label(RichText::new(format!(
            "The drawing pad is for models of 28×28 grey pictures; this one reads {shape}. The gallery in the Training tab shows how it sees its validation samples."
        )).weak());
        return;
    }
    let ctx = ui.ctx().clone();
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Drawing pad");
            inspect.pad.ui(ui);
            ui.horizontal(|ui| {
                if ui.button("Clear").clicked() {
                    inspect.pad.clear();
                }
                let centre = ui
                    .checkbox(&mut inspect.pad_centre, "Centre like MNIST")
                    .on_hover_text("Scale the drawing into 20×20 and move its centre of mass to the middle, as MNIST's digits were");
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
    for (class, &q) in p.iter().enumerate() {
        let name = run.class_names.get(class).cloned().unwrap_or_else(|| class.to_string());
        ui.horizontal(|ui| {
            let bar = egui::ProgressBar::new(q).desired_width(180.0).text(format!("{:.1}%", 100.0 * q));
            ui.add(bar);
            let label = RichText::new(format!("{name}: {:.1}%", 100.0 * q));
            ui.label(if class == best { label.strong() } else { label });
        });
    }
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
