//! The evaluation area under the training curves: the confusion matrix (and, with the inside
//! views, the per-class metrics table and the sample gallery beside it).

use super::confusion;
use super::inspect::InspectState;
use super::run_view::LiveRun;
use super::setup_panel::Action;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let _ = (inspect, actions);
    ui.strong("Confusion matrix (validation)");
    match run.latest_epoch() {
        Some(m) => {
            let side = ui.available_height().clamp(180.0, 460.0);
            confusion::show(ui, &m.validation.confusion, &run.class_names, side);
        }
        None => {
            ui.label("Appears after the first epoch.");
        }
    }
}
