//! The drawing pad of "Try it": strokes drawn with the mouse become a 28 x 28 picture in raw
//! pixel units (0..255, as the IDX loader stores MNIST), optionally centred the way MNIST's
//! digits were (bounding box scaled into 20 x 20, centre of mass moved to the middle), so what
//! the model sees looks like what it was trained on. The rasterising is pure and tested; the
//! widget only records strokes.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

/// The picture's side in pixels.
pub const SIDE: usize = 28;
/// The pad's side on screen, in points: ten screen points per pixel.
pub const PAD_SIDE: f32 = 280.0;
/// The brush's radius as a share of the pad's side (a 2-pixel-wide line, as MNIST's pen).
pub const BRUSH: f32 = 0.04;
/// MNIST's digits fit a 20 x 20 box inside the 28 x 28 field.
const BOX: f32 = 20.0;

/// Strokes in pad coordinates: (x, y) in 0..1, y down.
pub type Strokes = Vec<Vec<[f32; 2]>>;

/// Coverage (0..1) of each pixel by a disc brush of `radius` pixels dragged along the strokes,
/// mapped to pixels by `p * scale + offset`. A pixel's coverage falls linearly over the one
/// pixel around the brush's edge: an antialiased line, as a scanned pen stroke.
fn raster(strokes: &Strokes, scale: f32, offset: [f32; 2], radius: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; SIDE * SIDE];
    let to_px = |p: [f32; 2]| [p[0] * scale + offset[0], p[1] * scale + offset[1]];
    let reach = radius + 0.5;
    for stroke in strokes {
        // a single point is a dot: a segment of length 0
        let points: Vec<[f32; 2]> = stroke.iter().copied().map(to_px).collect();
        let segments: Vec<([f32; 2], [f32; 2])> = match points.as_slice() {
            [] => vec![],
            [p] => vec![(*p, *p)],
            _ => points.windows(2).map(|w| (w[0], w[1])).collect(),
        };
        for (a, b) in segments {
            let lo = |i: usize| (a[i].min(b[i]) - reach).floor().max(0.0) as usize;
            let hi = |i: usize| ((a[i].max(b[i]) + reach).ceil().max(0.0) as usize).min(SIDE);
            for y in lo(1)..hi(1) {
                for x in lo(0)..hi(0) {
                    let d = segment_distance([x as f32 + 0.5, y as f32 + 0.5], a, b);
                    let c = (reach - d).clamp(0.0, 1.0);
                    let cell = &mut out[y * SIDE + x];
                    *cell = cell.max(c);
                }
            }
        }
    }
    out
}

fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let ap = [p[0] - a[0], p[1] - a[1]];
    let len2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if len2 > 0.0 { ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let d = [ap[0] - t * ab[0], ap[1] - t * ab[1]];
    (d[0] * d[0] + d[1] * d[1]).sqrt()
}

/// The centre of mass of a picture in pixel units (pixel `i` spans `i..i + 1`).
pub fn mass_centre(picture: &[f32]) -> Option<[f32; 2]> {
    let (mut sum, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in picture.iter().enumerate() {
        let v = f64::from(v);
        sum += v;
        sx += v * ((i % SIDE) as f64 + 0.5);
        sy += v * ((i / SIDE) as f64 + 0.5);
    }
    (sum > 0.0).then(|| [(sx / sum) as f32, (sy / sum) as f32])
}

/// The strokes as a 28 x 28 coverage picture (0..1), or `None` for an empty pad (nothing to
/// ask the model). `centre`: MNIST's preprocessing (the drawing's box, brush included, scaled
/// to fit 20 x 20 keeping its aspect, then moved so its centre of mass is the field's centre).
pub fn rasterise(strokes: &Strokes, centre: bool) -> Option<Vec<f32>> {
    let points = strokes.iter().flatten();
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in points {
        for i in 0..2 {
            lo[i] = lo[i].min(p[i]);
            hi[i] = hi[i].max(p[i]);
        }
    }
    if lo[0] > hi[0] {
        return None;
    }
    if !centre {
        let scale = SIDE as f32;
        return Some(raster(strokes, scale, [0.0, 0.0], BRUSH * scale));
    }
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]) + 2.0 * BRUSH;
    let scale = BOX / extent;
    let middle = SIDE as f32 / 2.0;
    // first the box's centre in the middle, then shifted by where its mass lies
    let mut offset = [middle - (lo[0] + hi[0]) / 2.0 * scale, middle - (lo[1] + hi[1]) / 2.0 * scale];
    let first = raster(strokes, scale, offset, BRUSH * scale);
    let c = mass_centre(&first)?;
    offset = [offset[0] + middle - c[0], offset[1] + middle - c[1]];
    Some(raster(strokes, scale, offset, BRUSH * scale))
}

/// What is sent to the model: the picture in raw pixel units (0..255), as the data set's
/// loader stores them; the training thread normalises it as it did the training data.
pub fn raw_pixels(strokes: &Strokes, centre: bool) -> Option<Vec<f32>> {
    rasterise(strokes, centre).map(|p| p.into_iter().map(|v| v * 255.0).collect())
}

/// The pad: strokes and whether they changed since they were last sent.
#[derive(Default)]
pub struct DrawPad {
    pub strokes: Strokes,
    /// Bumped by every change; the view compares it with what it last sent.
    pub version: u64,
}

impl DrawPad {
    pub fn clear(&mut self) {
        self.strokes.clear();
        self.version += 1;
    }

    /// Draws the pad and records the pointer while the primary button is held on it.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> egui::Response {
        let (response, painter) = ui.allocate_painter(Vec2::splat(PAD_SIDE), Sense::drag());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "Drawing pad"));
        let rect = response.rect;
        painter.rect_filled(rect, 2.0, Color32::BLACK);
        painter.rect_stroke(rect, 2.0, Stroke::new(1.0, ui.visuals().weak_text_color()), egui::StrokeKind::Outside);
        let to_pad = |p: Pos2| {
            let v = (p - rect.min) / rect.size();
            [v.x.clamp(0.0, 1.0), v.y.clamp(0.0, 1.0)]
        };
        if response.drag_started() {
            self.strokes.push(Vec::new());
        }
        if response.dragged() || response.drag_started() {
            if let (Some(pos), Some(stroke)) = (response.interact_pointer_pos(), self.strokes.last_mut()) {
                let p = to_pad(pos);
                if stroke.last() != Some(&p) {
                    stroke.push(p);
                    self.version += 1;
                }
            }
        }
        draw_strokes(&painter, rect, &self.strokes);
        if self.strokes.is_empty() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "draw a digit here",
                egui::FontId::proportional(14.0),
                Color32::from_gray(120),
            );
        }
        response
    }
}

fn draw_strokes(painter: &egui::Painter, rect: Rect, strokes: &Strokes) {
    let width = 2.0 * BRUSH * rect.width();
    let at = |p: &[f32; 2]| rect.min + Vec2::new(p[0], p[1]) * rect.size();
    for stroke in strokes {
        match stroke.as_slice() {
            [] => {}
            [p] => {
                painter.circle_filled(at(p), width / 2.0, Color32::WHITE);
            }
            points => {
                let line: Vec<Pos2> = points.iter().map(at).collect();
                for p in [line[0], line[line.len() - 1]] {
                    painter.circle_filled(p, width / 2.0, Color32::WHITE);
                }
                painter.add(egui::Shape::line(line, Stroke::new(width, Color32::WHITE)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(x: f32, y0: f32, y1: f32) -> Strokes {
        vec![(0..=20).map(|i| [x, y0 + (y1 - y0) * i as f32 / 20.0]).collect()]
    }

    fn rows_with_ink(picture: &[f32]) -> Vec<usize> {
        (0..SIDE).filter(|y| picture[y * SIDE..(y + 1) * SIDE].iter().any(|&v| v > 1e-3)).collect()
    }

    #[test]
    fn an_off_centre_bar_is_centred_and_scaled_as_mnist_was() {
        let strokes = bar(0.2, 0.55, 0.9);
        let plain = rasterise(&strokes, false).unwrap();
        let c = mass_centre(&plain).unwrap();
        assert!((c[0] - 0.2 * 28.0).abs() < 0.5 && (c[1] - 0.725 * 28.0).abs() < 0.5, "uncentred: {c:?}");

        let centred = rasterise(&strokes, true).unwrap();
        let c = mass_centre(&centred).unwrap();
        assert!((c[0] - 14.0).abs() <= 0.5 && (c[1] - 14.0).abs() <= 0.5, "mass centre {c:?}");
        let rows = rows_with_ink(&centred);
        assert_eq!(rows.len(), 20, "the bar's box is 20 pixels high: rows {rows:?}");
        assert_eq!(rows.windows(2).filter(|w| w[1] != w[0] + 1).count(), 0, "one piece");
        assert!(centred.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(centred.contains(&1.0), "the middle of the line is fully covered");
        let raw = raw_pixels(&strokes, true).unwrap();
        assert_eq!(raw.len(), 784);
        assert!((raw.iter().copied().fold(0.0, f32::max) - 255.0).abs() < 1e-3);
    }

    #[test]
    fn an_empty_pad_asks_nothing_and_a_dot_is_a_dot() {
        assert!(rasterise(&vec![], true).is_none());
        assert!(rasterise(&vec![vec![]], false).is_none());
        let dot = rasterise(&vec![vec![[0.5, 0.5]]], false).unwrap();
        let inked = dot.iter().filter(|&&v| v > 0.0).count();
        assert!((4..=16).contains(&inked), "a dot of the brush's size: {inked} pixels");
        let c = mass_centre(&dot).unwrap();
        assert!((c[0] - 14.0).abs() < 0.1 && (c[1] - 14.0).abs() < 0.1, "{c:?}");
    }
}
