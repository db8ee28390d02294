//! Saliency: the input, its gradient map and integrated gradients, with a class picker.
//! (A stub of the GUI skeleton.)

use super::inspect::InspectState;
use super::run_view::LiveRun;
use super::setup_panel::Action;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let _ = (run, inspect, actions);
    ui.label("Not yet.");
}
