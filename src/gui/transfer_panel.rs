//! "Start from": transfer learning in the model section. Random weights, a model shipped with
//! Gradlab, or an exported model or run folder the user picks (the dialog runs in the app; the
//! weights are read by the training thread at Start). The layer editor marks frozen layers.

use egui::{RichText, Ui};

use super::setup_panel::Action;
use crate::config::Preset;
use crate::train::transfer::{TransferSpec, PRETRAINED};

const RANDOM: &str = "random weights";

/// A transfer spec starting from `from`, keeping what was set before (frozen layers, head).
pub fn start_from(preset: &mut Preset, from: String) {
    match &mut preset.transfer {
        Some(t) => t.from = from,
        None => {
            preset.transfer = Some(TransferSpec { from, checkpoint: "best".into(), freeze: vec![], keep_head: false })
        }
    }
}

pub fn ui(ui: &mut Ui, preset: &mut Preset, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let l = ui.label("Start from");
        let current = preset.transfer.as_ref().map_or(RANDOM.to_string(), |t| t.from.clone());
        let mut choice = current.clone();
        egui::ComboBox::from_id_salt("start_from")
            .selected_text(&current)
            .width(200.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut choice, RANDOM.to_string(), RANDOM);
                for (name, _, _) in PRETRAINED {
                    let id = format!("pretrained:{name}");
                    ui.selectable_value(&mut choice, id.clone(), id);
                }
                if current != RANDOM && !current.starts_with("pretrained:") {
                    ui.selectable_value(&mut choice, current.clone(), &current);
                }
            })
            .response
            .labelled_by(l.id)
            .on_hover_text("Transfer learning: start from another model's weights; the head starts fresh");
        if choice != current {
            if choice == RANDOM {
                preset.transfer = None;
            } else {
                start_from(preset, choice);
            }
        }
        if ui.button("Model folder…").on_hover_text("An exported model or a run folder").clicked() {
            actions.push(Action::PickTransferSource);
        }
    });
    if let Some(t) = &mut preset.transfer {
        ui.horizontal(|ui| {
            ui.checkbox(&mut t.keep_head, "Keep its head")
                .on_hover_text("Keep the source's output layer (same classes) instead of a new one");
            if !t.from.starts_with("pretrained:") {
                let l = ui.label(RichText::new("checkpoint").small());
                ui.add(egui::TextEdit::singleline(&mut t.checkpoint).desired_width(50.0))
                    .labelled_by(l.id)
                    .on_hover_text("For a run folder: best, last or an epoch number");
            }
        });
        ui.label(RichText::new("Tick \"frozen\" on a layer to keep its loaded weights.").small());
    }
}
