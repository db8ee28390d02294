//! The setup panel's "Augmentation" section: a control per transform of the preset's
//! `[augment]` table, and the preview grid of augmented training images.

use egui::{DragValue, Slider, Ui};

use super::augment_preview::AugmentPreview;
use crate::config::Preset;
use crate::data::{set_info, AugmentSpec, SetKind};

fn row(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
    let l = ui.label(label);
    add(ui).labelled_by(l.id);
    ui.end_row();
}

/// Draws the section for image sets (nothing for others); `side` is the image's smaller side when known (it bounds
/// shift and cutout), `classes` names the labels under the grid's images.
pub fn ui(ui: &mut Ui, preset: &mut Preset, side: Option<usize>, classes: &[String], grid: &mut AugmentPreview) {
    // augmentation transforms images: other sets show no section
    if set_info(&preset.data.set).is_none_or(|s| s.kind != SetKind::Image) {
        return;
    }
    ui.separator();
    // closed while every transform is off, so the section costs one line until it is wanted
    egui::CollapsingHeader::new(egui::RichText::new("Augmentation").heading())
        .id_salt("augmentation")
        .default_open(!preset.augment.is_off())
        .show(ui, |ui| controls(ui, preset, side, classes, grid));
}

fn controls(ui: &mut Ui, preset: &mut Preset, side: Option<usize>, classes: &[String], grid: &mut AugmentPreview) {
    ui.label(
        egui::RichText::new(
            "Random changes to each training image, new every epoch; evaluation sees the images as they are.",
        )
        .small(),
    );
    let limit = side.map_or(64, |s| s.saturating_sub(1));
    let a = &mut preset.augment;
    egui::Grid::new("augment_controls").num_columns(2).show(ui, |ui| {
        row(ui, "Flip left-right", |ui| ui.checkbox(&mut a.flip, ""));
        row(ui, "Flip upside down", |ui| ui.checkbox(&mut a.flip_vertical, ""));
        row(ui, "Rotate (max degrees)", |ui| ui.add(Slider::new(&mut a.rotate, 0.0..=180.0)));
        row(ui, "Shift (max pixels)", |ui| ui.add(DragValue::new(&mut a.shift).range(0..=limit)));
        row(ui, "Noise (std)", |ui| ui.add(Slider::new(&mut a.noise, 0.0..=1.0)));
        row(ui, "Brightness (max change)", |ui| ui.add(Slider::new(&mut a.brightness, 0.0..=1.0)));
        row(ui, "Contrast (max change)", |ui| ui.add(Slider::new(&mut a.contrast, 0.0..=1.0)));
        row(ui, "Cutout (square side)", |ui| ui.add(DragValue::new(&mut a.cutout).range(0..=limit)));
    });
    if preset.augment.is_off() {
        return;
    }
    if ui.button("Turn augmentation off").clicked() {
        preset.augment = AugmentSpec::default();
        return;
    }
    grid.ui(ui, &preset.data, preset.seed, &preset.augment, classes);
}
