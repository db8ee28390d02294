//! The decision boundary of a 2-D model behind its validation points, and its neurons' responses.
//! (A stub of the GUI skeleton.)

use super::inspect::InspectState;
use super::run_view::LiveRun;
use super::setup_panel::Action;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let _ = (run, inspect, actions);
    ui.label("Not yet.");
}
