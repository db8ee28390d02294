//! The first conv layer's filters and the activation maps of every conv layer for a chosen sample.
//! (A stub of the GUI skeleton.)

use super::inspect::InspectState;
use super::run_view::LiveRun;
use super::setup_panel::Action;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let _ = (run, inspect, actions);
    ui.label("Not yet.");
}
