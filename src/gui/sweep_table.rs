//! The sweep view's drawing: the trial table and the parallel coordinates built from its rows.

use egui::{RichText, Ui};

use super::parallel_coords::{self, Axis, Value};
use super::sweep_panel::{SweepAction, TrialRow};
use crate::sweep::{Metric, Plan};

/// A number with at most 4 significant digits (`0.009999999999999998` as `0.01`); other values
/// as TOML writes them.
pub fn format_value(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(x) if x.is_finite() => {
            let rounded: f64 = format!("{x:.3e}").parse().unwrap_or(*x);
            format!("{rounded}")
        }
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The last segment of a dotted key (`train.learning_rate` → `learning_rate`), for narrow axes.
fn short_key(key: &str) -> String {
    key.rsplit('.').next().unwrap_or(key).to_string()
}

/// The trials as a table in a scroll area that lays out only the rows in view (every row is
/// one line high), so a 10,000-trial random sample costs what a screenful does. `loss` adds the
/// best validation loss, the result of a sweep ranked by it.
pub fn trial_table(ui: &mut Ui, keys: &[String], rows: &[TrialRow], loss: bool, actions: &mut Vec<SweepAction>) {
    let with_jobs = rows.iter().any(|r| r.slurm_job.is_some());
    let row_height = ui.spacing().interact_size.y;
    let max_height = ui.available_height() * 0.4;
    // row 0 is the header, so the grid keeps its columns under their names
    egui::ScrollArea::vertical().id_salt("sweep_trials").max_height(max_height).show_rows(
        ui,
        row_height,
        rows.len() + 1,
        |ui, range| {
            egui::Grid::new("sweep_trial_grid").striped(true).min_row_height(row_height).show(ui, |ui| {
                for i in range {
                    if i == 0 {
                        header(ui, keys, loss, with_jobs);
                    } else if let Some(row) = rows.get(i - 1) {
                        trial_row(ui, row, loss, with_jobs, actions);
                    }
                    ui.end_row();
                }
            });
        },
    );
}

fn header(ui: &mut Ui, keys: &[String], loss: bool, with_jobs: bool) {
    ui.strong("Trial");
    for k in keys {
        ui.strong(k);
    }
    ui.strong("Status");
    ui.strong("Progress");
    ui.strong("Best val acc");
    if loss {
        ui.strong("Best val loss");
    }
    if with_jobs {
        ui.strong("Slurm job");
    }
    ui.label("");
}

fn trial_row(ui: &mut Ui, row: &TrialRow, loss: bool, with_jobs: bool, actions: &mut Vec<SweepAction>) {
    ui.label(format!("#{}", row.index));
    for v in &row.values {
        ui.label(format_value(v));
    }
    let status = RichText::new(&row.status);
    let status = ui.label(match row.status.as_str() {
        "failed" | "interrupted" => status.color(ui.visuals().warn_fg_color),
        "running" => status.strong(),
        _ => status,
    });
    if let Some(error) = &row.error {
        status.on_hover_text(error);
    }
    ui.label(&row.progress);
    ui.label(row.best_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)));
    if loss {
        ui.label(row.result.map_or("-".into(), |l| format!("{l:.4}")));
    }
    if with_jobs {
        ui.label(row.slurm_job.as_deref().unwrap_or("-"));
    }
    let open = ui
        .add_enabled(row.run_dir.is_some(), egui::Button::new("Open").small())
        .on_hover_text("Show this trial's run in the runs view");
    if open.clicked() {
        if let Some(dir) = &row.run_dir {
            actions.push(SweepAction::OpenTrial(dir.clone()));
        }
    }
}

/// The parallel coordinates of the rows (a log axis where the sweep file samples in log space);
/// returns the row index of a clicked trial.
pub fn chart(ui: &mut Ui, plan: &Plan, rows: &[TrialRow]) -> Option<usize> {
    let keys = plan.varied_keys();
    let log = |k: &str| plan.spec.vary.get(k).is_some_and(|a| a.log.is_some());
    let mut axes: Vec<Axis> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let values: Vec<Value> = rows.iter().filter_map(|r| r.values.get(i)).map(Value::from_toml).collect();
            Axis::fit(short_key(k), &values, log(k))
        })
        .collect();
    let results: Vec<Value> = rows.iter().filter_map(|r| r.result).map(Value::Number).collect();
    let metric = plan.metric();
    let name = match metric {
        Metric::ValidationAccuracy => "best val acc",
        Metric::ValidationLoss => "best val loss",
    };
    // results are labelled at their ends only: close ones would overlap
    let percent = metric == Metric::ValidationAccuracy;
    axes.push(Axis { marks: vec![], percent, ..Axis::fit(name, &results, false) });
    let lines: Vec<Vec<Option<Value>>> = rows
        .iter()
        .map(|r| r.values.iter().map(|v| Some(Value::from_toml(v))).chain([r.result.map(Value::Number)]).collect())
        .collect();
    let (lo, hi) = results.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| match v {
        Value::Number(x) => (lo.min(*x), hi.max(*x)),
        Value::Category(_) => (lo, hi),
    });
    let goodness: Vec<Option<f32>> = rows
        .iter()
        .map(|r| {
            let x = r.result?;
            let t = if hi > lo { (x - lo) / (hi - lo) } else { 1.0 };
            Some(match metric {
                Metric::ValidationAccuracy => t as f32,
                Metric::ValidationLoss => 1.0 - t as f32,
            })
        })
        .collect();
    ui.strong("Varied values and results (yellow = best, purple = worst; grey = no result yet)");
    let height = (ui.available_height() * 0.45).clamp(140.0, 260.0);
    parallel_coords::show(ui, &axes, &lines, &goodness, height)
}
