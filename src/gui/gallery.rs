//! The preset gallery: a card per preset file; one click loads it, a second click starts it.

use egui::{Role, Sense, Ui, WidgetInfo};

use super::io::GalleryEntry;
use super::setup_panel::Action;
use super::thumbnails::{self, Thumbnails};
use crate::config::Preset;

#[derive(Default)]
pub struct Gallery {
    pub entries: Vec<GalleryEntry>,
    /// The card whose preset is loaded (its file path or built-in name).
    pub loaded: Option<String>,
    /// The cards' pictures of their data.
    pub thumbnails: Thumbnails,
}

fn key(entry: &GalleryEntry) -> String {
    entry.path.as_ref().map_or_else(|| entry.name.clone(), |p| p.display().to_string())
}

impl Gallery {
    /// Marks the card holding `preset` as loaded (e.g. the default experiment at start-up).
    pub fn mark_loaded(&mut self, preset: &Preset) {
        if self.loaded.is_none() {
            self.loaded = self.entries.iter().find(|e| e.preset.as_ref().ok() == Some(preset)).map(key);
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, current: &Preset, can_start: bool, actions: &mut Vec<Action>) {
        ui.label("Click a card to load its experiment into the panel on the left; click it again to start it.");
        ui.add_space(6.0);
        if self.entries.is_empty() {
            ui.spinner();
            return;
        }
        let card_width = 260.0;
        let spacing = 10.0;
        let columns = (((ui.available_width() + spacing) / (card_width + 16.0 + spacing)) as usize).max(1);
        let mut clicked = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.spacing_mut().item_spacing = egui::vec2(spacing, spacing);
            for row in self.entries.chunks(columns) {
                ui.horizontal_top(|ui| {
                    for entry in row {
                        let picture = entry.preset.as_ref().ok().and_then(|p| self.thumbnails.get(&p.data, p.seed));
                        if card(ui, entry, picture, self.loaded.as_deref(), current, can_start, card_width) {
                            clicked = Some(entry);
                        }
                    }
                });
            }
        });
        if let Some(entry) = clicked {
            let k = key(entry);
            let is_loaded = self.loaded.as_deref() == Some(k.as_str()) && entry.preset.as_ref().ok() == Some(current);
            match &entry.preset {
                Ok(_) if is_loaded && can_start => actions.push(Action::Start),
                Ok(p) => {
                    self.loaded = Some(k);
                    actions.push(Action::LoadPreset(Box::new(p.clone())));
                }
                Err(_) => {}
            }
        }
    }
}

/// One card; true when clicked.
fn card(
    ui: &mut Ui,
    entry: &GalleryEntry,
    picture: Option<&egui::TextureHandle>,
    loaded: Option<&str>,
    current: &Preset,
    can_start: bool,
    width: f32,
) -> bool {
    let k = key(entry);
    let is_loaded = loaded == Some(k.as_str()) && entry.preset.as_ref().ok() == Some(current);
    let stroke = if is_loaded {
        egui::Stroke::new(2.0, ui.visuals().selection.stroke.color)
    } else {
        ui.visuals().widgets.noninteractive.bg_stroke
    };
    let inner = egui::Frame::group(ui.style()).stroke(stroke).inner_margin(8.0).show(ui, |ui| {
        ui.set_width(width);
        ui.set_min_height(96.0);
        ui.horizontal_top(|ui| {
            if let Some(texture) = picture {
                let side = thumbnails::SIZE as f32;
                ui.add(egui::Image::new((texture.id(), egui::vec2(side, side))).corner_radius(3.0));
            }
            ui.vertical(|ui| match &entry.preset {
                Ok(p) => {
                    ui.strong(&p.title);
                    ui.add(egui::Label::new(egui::RichText::new(&p.description).small()).selectable(false));
                    ui.add(
                        egui::Label::new(
                            egui::RichText::new(format!(
                                "{} · {} · {} epochs",
                                p.data.set,
                                p.model.summary(),
                                p.train.epochs
                            ))
                            .small()
                            .weak(),
                        )
                        .selectable(false),
                    );
                    if is_loaded {
                        ui.label(
                            egui::RichText::new(if can_start { "loaded: click again to start" } else { "loaded" })
                                .small(),
                        );
                    }
                }
                Err(e) => {
                    ui.strong(&entry.name);
                    ui.colored_label(ui.visuals().error_fg_color, egui::RichText::new(e).small());
                }
            });
        });
    });
    let title = entry.preset.as_ref().map_or(entry.name.as_str(), |p| p.title.as_str()).to_string();
    let response = ui.interact(inner.response.rect, ui.make_persistent_id(("card", &k)), Sense::click());
    response.widget_info(|| WidgetInfo::labeled(Role::Button, true, format!("Preset {title}")));
    response.on_hover_text(entry.path.as_ref().map_or_else(|| "built in".into(), |p| p.display().to_string())).clicked()
}
