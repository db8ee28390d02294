//! The decision boundary of a model of 2-D points: the class probabilities over the data's
//! extent as a heat map (each class's colour mixed by its probability, faint where the model is
//! unsure) behind the validation points, and, for small networks, each hidden unit's response
//! over the same plane, layer by layer (as TensorFlow Playground shows them).

use egui::{Color32, ColorImage, RichText, Ui};
use egui_plot::{Plot, PlotImage, PlotPoint, Points};

use super::filters_view::diverging;
use super::inspect::InspectState;
use super::preview::class_color;
use super::run_view::LiveRun;
use crate::train::inspect::{BoundaryMap, NeuronMap, NEURON_RES};

const TILE: f32 = 64.0;

/// The probabilities as an image, top row first (the map's rows run from `y_min` up).
pub fn boundary_image(b: &BoundaryMap) -> ColorImage {
    let (res, classes) = (b.res, b.classes.max(1));
    let mut pixels = vec![Color32::TRANSPARENT; res * res];
    for row in 0..res {
        for col in 0..res {
            let at = (row * res + col) * classes;
            let Some(p) = b.probs.get(at..at + classes) else { continue };
            let (mut rgb, mut top) = ([0.0f32; 3], 0u8);
            for (c, &q) in p.iter().enumerate() {
                let w = f32::from(q) / 255.0;
                let col = class_color(c as u32);
                rgb[0] += w * f32::from(col.r());
                rgb[1] += w * f32::from(col.g());
                rgb[2] += w * f32::from(col.b());
                top = top.max(q);
            }
            // alpha from how sure the model is: chance level is clear, certainty strong
            let chance = 1.0 / classes as f32;
            let sure = ((f32::from(top) / 255.0 - chance) / (1.0 - chance)).clamp(0.0, 1.0);
            let alpha = (60.0 + 150.0 * sure) as u8;
            let px = |v: f32| v.clamp(0.0, 255.0) as u8;
            pixels[(res - 1 - row) * res + col] =
                Color32::from_rgba_unmultiplied(px(rgb[0]), px(rgb[1]), px(rgb[2]), alpha);
        }
    }
    ColorImage::new([res, res], pixels)
}

fn neuron_image(n: &NeuronMap) -> ColorImage {
    let res = NEURON_RES;
    let mut pixels = vec![Color32::WHITE; res * res];
    // 0..=255 spans lo..=hi: drawn around the unit's zero when it has both signs
    let peak = n.lo.abs().max(n.hi.abs()).max(1e-12);
    for (i, &v) in n.values.iter().enumerate().take(res * res) {
        let value = n.lo + (n.hi - n.lo) * f32::from(v) / 255.0;
        let (row, col) = (i / res, i % res);
        pixels[(res - 1 - row) * res + col] = diverging(value / peak);
    }
    ColorImage::new([res, res], pixels)
}

pub fn show(ui: &mut Ui, run: &LiveRun, inspect: &mut InspectState) {
    let Some(b) = inspect.boundary.clone() else {
        ui.label(RichText::new("The decision boundary arrives a moment after training starts.").weak());
        return;
    };
    let ctx = ui.ctx().clone();
    let texture = inspect.texture(&ctx, "boundary", true, || boundary_image(&b));
    let [x0, x1, y0, y1] = b.extent.map(f64::from);
    ui.strong(format!("Decision boundary ({} validation points)", b.points.len()));
    let height = (ui.available_height() * 0.6).clamp(220.0, 460.0);
    ui.horizontal_top(|ui| {
        Plot::new("boundary_plot").height(height).width(height).data_aspect(1.0).show(ui, |p| {
            let centre = PlotPoint::new((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            p.image(PlotImage::new("boundary", texture.id(), centre, [(x1 - x0) as f32, (y1 - y0) as f32]));
            for c in 0..b.classes as u32 {
                let pts: Vec<[f64; 2]> = b
                    .points
                    .iter()
                    .zip(&b.labels)
                    .filter(|&(_, &l)| l == c)
                    .map(|(q, _)| [f64::from(q[0]), f64::from(q[1])])
                    .collect();
                let name = run.class_names.get(c as usize).cloned().unwrap_or_else(|| c.to_string());
                p.points(Points::new(name, pts).color(class_color(c)).radius(2.5));
            }
        });
        ui.vertical(|ui| neurons(ui, &ctx, inspect, &b));
    });
}

fn neurons(ui: &mut Ui, ctx: &egui::Context, inspect: &mut InspectState, b: &BoundaryMap) {
    if b.neurons.is_empty() {
        ui.label(RichText::new("Unit maps appear for networks with at most 16 units per hidden layer.").small().weak());
        return;
    }
    ui.strong("Hidden units (blue negative, red positive)");
    let mut layer = "";
    egui::ScrollArea::vertical().id_salt("neuron_tiles").show(ui, |ui| {
        let mut row: Vec<&NeuronMap> = Vec::new();
        let flush = |ui: &mut Ui, row: &mut Vec<&NeuronMap>, inspect: &mut InspectState| {
            if let Some(first) = row.first() {
                ui.label(RichText::new(&first.layer).small());
            }
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing = egui::vec2(3.0, 3.0);
                for n in row.drain(..) {
                    let key = format!("neuron-{}-{}", n.layer, n.unit);
                    let t = inspect.texture(ctx, &key, true, || neuron_image(n));
                    let name = format!("{} unit {}", n.layer, n.unit + 1);
                    ui.add(egui::Image::new((t.id(), egui::vec2(TILE, TILE))).alt_text(name.clone()))
                        .on_hover_text(format!("{name}: {:.2} to {:.2}", n.lo, n.hi));
                }
            });
        };
        for n in &b.neurons {
            if n.layer != layer && !row.is_empty() {
                flush(ui, &mut row, inspect);
            }
            layer = &n.layer;
            row.push(n);
        }
        flush(ui, &mut row, inspect);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sure_cell_is_its_class_colour_and_rows_run_upwards() {
        // 2 x 2 grid, 2 classes: the bottom-left cell is surely class 1, the rest 50/50
        let mut probs = vec![128u8; 8];
        probs[0] = 0;
        probs[1] = 255;
        let b = BoundaryMap {
            extent: [0.0, 1.0, 0.0, 1.0],
            res: 2,
            classes: 2,
            probs,
            points: vec![],
            labels: vec![],
            neurons: vec![],
        };
        let img = boundary_image(&b);
        // the map's row 0 (y_min) is the image's bottom row
        let bottom_left = img.pixels[2];
        let c = class_color(1);
        let unmul = bottom_left.to_srgba_unmultiplied();
        let near = |a: u8, b: u8| a.abs_diff(b) <= 2;
        assert!(near(unmul[0], c.r()) && near(unmul[1], c.g()) && near(unmul[2], c.b()), "{unmul:?} vs {c:?}");
        assert_eq!(unmul[3], 210, "certain: strong");
        assert_eq!(img.pixels[0].to_srgba_unmultiplied()[3], 60, "chance: faint");
    }
}
