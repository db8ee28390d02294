//! The confusion matrix as a heatmap with counts (or shares of each true class), class names on
//! both axes. Each cell is a widget: clicking it fills the sample gallery with its samples, and
//! a screen reader (or a test) finds it as "true 4, predicted 9: 7".

use egui::{epaint::TextShape, Align2, Color32, FontId, Rect, Sense, Stroke, Vec2, WidgetInfo};

use crate::train::Confusion;

/// White to deep blue by the share of the true class that went to this cell.
fn cell_color(share: f64) -> Color32 {
    let t = share.clamp(0.0, 1.0) as f32;
    let lerp = |a: f32, b: f32| (a + (b - a) * t.powf(0.6)) as u8;
    Color32::from_rgb(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

fn short(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        let s: String = name.chars().take(max.saturating_sub(1)).collect();
        format!("{s}…")
    }
}

/// Above this many classes the cells are not separate widgets (65,536 of them for 256
/// classes); one response finds the cell under the pointer.
const MAX_CELL_WIDGETS: usize = 32;

/// How a cell's figure reads: a count, or the share of its true class.
pub fn cell_text(count: u64, share: f64, row_normalised: bool) -> String {
    if row_normalised {
        format!("{:.1}%", 100.0 * share)
    } else {
        count.to_string()
    }
}

/// Draws the matrix into at most `max_side` points square (plus its labels); returns the
/// (true, predicted) cell clicked this frame. `selected` is outlined.
pub fn show(
    ui: &mut egui::Ui,
    confusion: &Confusion,
    class_names: &[String],
    max_side: f32,
    row_normalised: bool,
    selected: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let n = confusion.classes;
    if n == 0 {
        return None;
    }
    let font = FontId::proportional(11.0);
    let text_color = ui.visuals().text_color();
    let name = |i: usize| short(class_names.get(i).map_or("?", String::as_str), 12);
    let galleys: Vec<_> = (0..n).map(|i| ui.painter().layout_no_wrap(name(i), font.clone(), text_color)).collect();
    let widest = galleys.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let left = widest + 10.0;
    let caption = 14.0;
    let fit = |bottom: f32| {
        (ui.available_width() - left).min(ui.available_height() - bottom - caption).min(max_side).max(60.0)
    };
    // column labels lie flat when they fit under their cell, else they are turned 45 degrees
    let flat_bottom = 16.0;
    let flat = widest + 4.0 <= fit(flat_bottom) / n as f32;
    let bottom = if flat { flat_bottom } else { widest * std::f32::consts::FRAC_1_SQRT_2 + 12.0 };
    let side = fit(bottom);
    let cell = side / n as f32;
    let cells_are_widgets = n <= MAX_CELL_WIDGETS;
    let sense = if cells_are_widgets { Sense::hover() } else { Sense::click() };
    let (response, painter) = ui.allocate_painter(Vec2::new(left + side, side + bottom + caption), sense);
    let origin = response.rect.min + Vec2::new(left, 0.0);
    let grid = Rect::from_min_size(origin, Vec2::splat(side));
    let count_font = FontId::monospace((cell * 0.32).clamp(7.0, 13.0));
    let mut hovered = None;
    let mut clicked = None;
    let base_id = response.id;
    for (t, galley) in galleys.iter().enumerate() {
        let row_total = confusion.row_total(t).max(1) as f64;
        for p in 0..n {
            let count = confusion.get(t, p);
            let share = count as f64 / row_total;
            let rect = Rect::from_min_size(origin + Vec2::new(p as f32 * cell, t as f32 * cell), Vec2::splat(cell));
            painter.rect_filled(rect.shrink(0.5), 1.0, cell_color(share));
            let text = cell_text(count, share, row_normalised);
            if cell >= 14.0 {
                let color = if share > 0.5 { Color32::WHITE } else { Color32::from_gray(40) };
                let font =
                    if row_normalised { FontId::monospace((cell * 0.24).clamp(6.0, 12.0)) } else { count_font.clone() };
                painter.text(rect.center(), Align2::CENTER_CENTER, &text, font, color);
            }
            if selected == Some((t, p)) {
                painter.rect_stroke(
                    rect.shrink(1.0),
                    1.0,
                    Stroke::new(2.0, Color32::from_rgb(240, 140, 40)),
                    egui::StrokeKind::Inside,
                );
            }
            if cells_are_widgets {
                let cell_response = ui.interact(rect, base_id.with((t, p)), Sense::click());
                let label = format!("true {}, predicted {}: {text}", name(t), name(p));
                cell_response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, &label));
                if cell_response.hovered() {
                    hovered = Some((cell_response.clone(), t, p, count, share));
                }
                if cell_response.clicked() {
                    clicked = Some((t, p));
                }
            } else if response.hovered() && ui.rect_contains_pointer(rect) {
                hovered = Some((response.clone(), t, p, count, share));
                if response.clicked() {
                    clicked = Some((t, p));
                }
            }
        }
        // row label: the true class
        painter.galley(
            origin + Vec2::new(-6.0 - galley.size().x, (t as f32 + 0.5) * cell - galley.size().y / 2.0),
            galley.clone(),
            text_color,
        );
    }
    for (p, galley) in galleys.iter().enumerate() {
        let top = origin + Vec2::new((p as f32 + 0.5) * cell, side + 4.0);
        if flat {
            painter.galley(top - Vec2::new(galley.size().x / 2.0, 0.0), galley.clone(), text_color);
        } else {
            painter.add(
                TextShape::new(top, galley.clone(), text_color)
                    .with_angle_and_anchor(std::f32::consts::FRAC_PI_4, Align2::LEFT_TOP),
            );
        }
    }
    painter.rect_stroke(grid, 0.0, Stroke::new(1.0, ui.visuals().weak_text_color()), egui::StrokeKind::Outside);
    painter.text(
        response.rect.left_bottom() + Vec2::new(2.0, -2.0),
        Align2::LEFT_BOTTOM,
        "rows: true class · columns: predicted",
        FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
    if let Some((target, t, p, count, share)) = hovered {
        let tip = format!(
            "true {} predicted as {}: {count} ({:.1}% of the class) · click for its samples",
            name(t),
            name(p),
            100.0 * share
        );
        target.on_hover_text(tip);
    }
    clicked
}
