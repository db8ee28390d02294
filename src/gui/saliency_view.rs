//! Saliency: the input beside the gradient of log p(class | input) (how strongly each input value
//! moves the class's probability) and integrated gradients (signed attributions from a black
//! image, with their completeness check). For pictures and tables; the class is pickable.

use egui::{ColorImage, RichText, Ui};

use super::filters_view::{diverging, sequential};
use super::inspect::{InspectState, SaliencyKind};
use super::run_view::LiveRun;
use super::setup_panel::Action;
use crate::train::inspect::{InputRef, SaliencyMap};

const SIDE: f32 = 168.0;

/// A saliency map as an image: magnitudes on the sequential scale, signed attributions on the
/// diverging one, each scaled by its largest magnitude.
pub fn saliency_image(m: &SaliencyMap) -> ColorImage {
    let peak = m.map.iter().fold(0.0f32, |p, v| p.max(v.abs())).max(1e-12);
    let pixels =
        m.map.iter().map(|v| if m.signed { diverging(v / peak) } else { sequential(v.abs() / peak) }).collect();
    ColorImage::new([m.w.max(1), m.h.max(1)], pixels)
}

fn size_of(w: usize, h: usize) -> egui::Vec2 {
    // a table's row of features is drawn as a strip
    if h <= 1 {
        egui::vec2(SIDE, 24.0)
    } else {
        let s = SIDE / w.max(h) as f32;
        egui::vec2(w as f32 * s, h as f32 * s)
    }
}

pub fn show(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState, actions: &mut Vec<Action>) {
    let Some(subject) = inspect.subject.clone() else {
        ui.label(
            RichText::new("Press Why? on a sample in the Training tab's gallery, or on your drawing in Try it.").weak(),
        );
        return;
    };
    let names = &run.class_names;
    ui.horizontal(|ui| {
        ui.strong(format!("Saliency of {}", subject.label));
        let mut class = subject.class;
        let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
        egui::ComboBox::from_label("for class").selected_text(name(class)).show_ui(ui, |ui| {
            for c in 0..names.len() {
                ui.selectable_value(&mut class, c, name(c));
            }
        });
        if class != subject.class {
            let moved = super::inspect::Subject { class, ..subject.clone() };
            inspect.ask_saliency(moved, SaliencyKind::Gradient, actions);
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Gradient").on_hover_text("d log p(class) / d input, largest over channels").clicked() {
            let s = inspect.subject.clone().unwrap_or_else(|| subject.clone());
            inspect.ask_saliency(s, SaliencyKind::Gradient, actions);
        }
        let ig = ui.button("Integrated gradients").on_hover_text(
            "Attributions from a black image to the input in 32 steps; they add up to the change of log p",
        );
        if ig.clicked() {
            let s = inspect.subject.clone().unwrap_or_else(|| subject.clone());
            inspect.ask_saliency(s, SaliencyKind::Integrated, actions);
        }
    });
    let ctx = ui.ctx().clone();
    ui.horizontal_top(|ui| {
        input_picture(ui, &ctx, inspect, &subject.input);
        let columns = [
            (SaliencyKind::Gradient, "|d log p / d input|", "Gradient map"),
            (SaliencyKind::Integrated, "attributions from black", "Integrated gradients map"),
        ];
        for (kind, heading, alt) in columns {
            ui.vertical(|ui| {
                ui.label(heading);
                if inspect.saliency_pending(kind) {
                    ui.spinner();
                }
                match inspect.saliency.get(&kind).cloned() {
                    Some(Ok(map)) => {
                        let t = inspect.texture(&ctx, &format!("saliency-{kind:?}"), false, || saliency_image(&map));
                        ui.add(egui::Image::new((t.id(), size_of(map.w, map.h))).alt_text(alt));
                        if kind == SaliencyKind::Integrated {
                            ui.label(
                                RichText::new(format!(
                                    "attributions sum {:.2}, log p changed {:.2}",
                                    map.sum, map.delta_log_p
                                ))
                                .small(),
                            );
                        }
                    }
                    Some(Err(why)) => {
                        ui.label(RichText::new(why).weak());
                    }
                    None => {}
                }
            });
        }
    });
}

/// The input as the model saw it: a cached validation picture or the drawing.
fn input_picture(ui: &mut Ui, ctx: &egui::Context, inspect: &mut InspectState, input: &InputRef) {
    ui.vertical(|ui| {
        ui.label("Input");
        match input {
            InputRef::Validation(i) => {
                if let Some(t) = inspect.sample_texture(ctx, *i) {
                    let [w, h] = t.size();
                    ui.add(egui::Image::new((t.id(), size_of(w, h))).alt_text(format!("validation sample {i}")));
                }
            }
            InputRef::Raw(raw) => {
                let side = (raw.len() as f32).sqrt() as usize;
                if side * side == raw.len() && side > 0 {
                    let grey: Vec<u8> = raw.iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
                    let key = format!("saliency-input-{}", grey.iter().map(|&v| u64::from(v)).sum::<u64>());
                    let t = inspect.texture(ctx, &key, false, || ColorImage::from_gray([side, side], &grey));
                    ui.add(egui::Image::new((t.id(), size_of(side, side))).alt_text("your drawing"));
                }
            }
        }
    });
}
