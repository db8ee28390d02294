//! The bottom line: where the run is and how fast it goes.

use std::time::Duration;

use super::run_view::{LiveRun, Phase};

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

pub fn show(ui: &mut egui::Ui, run: &LiveRun, dropped_steps: u64) {
    ui.horizontal(|ui| {
        let phase = match run.phase {
            Phase::Idle => "Ready".to_string(),
            Phase::Starting => "Loading data…".to_string(),
            Phase::Running => "Training".to_string(),
            Phase::Paused => "Paused".to_string(),
            Phase::Finished(status) => format!("Run {}", status.title()),
        };
        ui.strong(phase);
        if run.phase != Phase::Idle && run.epochs > 0 {
            ui.separator();
            ui.label(format!("Epoch {}/{}", run.epoch.max(1), run.epochs));
            ui.separator();
            ui.label(format!("Batch {}/{}", run.batch, run.batches_per_epoch));
            ui.separator();
            ui.label(format!("{:.0} samples/s", run.samples_per_s));
            ui.separator();
            ui.label(format!("Elapsed {}", clock(run.elapsed())));
            if !run.device.is_empty() {
                ui.separator();
                ui.label(&run.device).on_hover_text("Where this run computes (train.device)");
            }
            if let Some(eta) = run.eta() {
                ui.separator();
                ui.label(format!("ETA {}", clock(eta)));
            }
            if run.learning_rate > 0.0 {
                ui.separator();
                ui.label(format!("lr {:.2e}", run.learning_rate));
            }
            if dropped_steps > 0 {
                ui.separator();
                ui.label(format!("{dropped_steps} step updates skipped (display only)"))
                    .on_hover_text("The display fell behind; every step is still in the run's metrics.csv.");
            }
        }
    });
}
