//! The Inside tab: the network's insides, panels picked by the data's kind and the model's
//! layers (boundary and neurons, filters and activations, layer statistics, saliency, "Try it").

use super::inspect::InspectState;
use super::run_view::{LiveRun, Phase};
use super::setup_panel::Action;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    if run.phase == Phase::Idle || inspect.info.is_none() {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading("Start a run to look inside its network.");
        });
        return;
    }
    ui.collapsing("Decision boundary", |ui| super::boundary_view::show(ui, run, inspect, actions));
    ui.collapsing("Filters and activations", |ui| super::filters_view::show(ui, run, inspect, actions));
    ui.collapsing("Layer statistics", |ui| super::layer_stats_view::show(ui, run, inspect, actions));
    ui.collapsing("Saliency", |ui| super::saliency_view::show(ui, run, inspect, actions));
    ui.collapsing("Try it", |ui| super::draw_pad::show(ui, run, inspect, actions));
    ui.collapsing("Samples", |ui| super::sample_gallery::show(ui, run, inspect, actions));
}
