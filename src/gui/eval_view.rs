//! The evaluation under the curves: the confusion matrix (counts or row-normalised, cells
//! clickable), the per-class metrics table, and the sample gallery of the clicked cell.

use egui::{Grid, RichText};

use super::confusion;
use super::inspect::{GalleryMode, InspectState};
use super::run_view::LiveRun;
use super::sample_gallery;
use super::setup_panel::Action;
use crate::train::{ClassRow, Confusion};

/// Room left for the live view's column to the right of the gallery.
const NETWORK_COLUMN: f32 = 230.0;

pub fn show(ui: &mut egui::Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let Some(m) = run.latest_epoch() else {
        ui.strong("Confusion matrix (validation)");
        ui.label("Appears after the first epoch.");
        return;
    };
    let c = &m.validation.confusion;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                ui.strong("Confusion matrix (validation)");
                ui.selectable_value(&mut inspect.row_normalised, false, "Counts");
                ui.selectable_value(&mut inspect.row_normalised, true, "Row-normalised");
            });
            let side = ui.available_height().clamp(180.0, 420.0).min(ui.available_width() * 0.32);
            let selected = match inspect.gallery {
                Some(GalleryMode::Cell { truth, predicted }) => Some((truth as usize, predicted as usize)),
                _ => None,
            };
            let clicked = confusion::show(ui, c, &run.class_names, side, inspect.row_normalised, selected);
            if let Some((t, p)) = clicked {
                inspect.gallery = Some(GalleryMode::Cell { truth: t as u32, predicted: p as u32 });
            }
        });
        ui.separator();
        ui.vertical(|ui| {
            ui.strong("Per class");
            metrics_table(ui, c, &run.class_names);
        });
        ui.separator();
        // the live view's network column (layers, summary, export) comes after this one
        let width = (ui.available_width() - NETWORK_COLUMN).max(130.0);
        ui.vertical(|ui| {
            ui.set_max_width(width);
            sample_gallery::show(ui, run, inspect, actions);
        });
    });
}

fn figure(v: f64) -> String {
    format!("{v:.3}")
}

/// class | precision | recall | F1 | support, then the macro and weighted averages.
pub fn metrics_table(ui: &mut egui::Ui, c: &Confusion, class_names: &[String]) {
    let report = c.per_class();
    let row = |ui: &mut egui::Ui, name: &str, r: &ClassRow, strong: bool| {
        let text = |s: String| if strong { RichText::new(s).strong() } else { RichText::new(s) };
        ui.label(text(name.to_string()));
        for v in [r.precision, r.recall, r.f1] {
            ui.label(text(figure(v)));
        }
        ui.label(text(r.support.to_string()));
        ui.end_row();
    };
    egui::ScrollArea::vertical().id_salt("metrics_table").max_height(ui.available_height().max(160.0)).show(ui, |ui| {
        Grid::new("class_metrics").striped(true).num_columns(5).spacing([8.0, 2.0]).show(ui, |ui| {
            for h in ["class", "precision", "recall", "F1", "support"] {
                ui.label(RichText::new(h).weak());
            }
            ui.end_row();
            for (i, r) in report.rows.iter().enumerate() {
                let name = class_names.get(i).map_or_else(|| i.to_string(), Clone::clone);
                row(ui, &name, r, false);
            }
            row(ui, "macro avg", &report.macro_avg, true);
            row(ui, "weighted avg", &report.weighted_avg, true);
        });
    });
    ui.label(
        RichText::new("macro: the plain mean over classes; weighted: by support (its recall is the accuracy)")
            .small()
            .weak(),
    );
}
