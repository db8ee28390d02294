//! Parallel coordinates of a sweep: one vertical axis per varied key (linear, log, or evenly
//! spaced categories) and a result axis; each trial is a polyline across them, coloured by its
//! result (purple = worst, through teal, to yellow = best; grey while it has none). The geometry (`layout`) is pure,
//! so it is unit-tested without a window; `show` paints it and reports a clicked trial.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Ui, Vec2};

/// How an axis places its values.
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    Linear {
        min: f64,
        max: f64,
    },
    /// Both ends positive; values are placed by their logarithm.
    Log {
        min: f64,
        max: f64,
    },
    /// Evenly spaced, in this order (bottom to top).
    Categories(Vec<String>),
}

/// One value of a trial on an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Category(String),
}

impl Value {
    /// A varied value from a trial preset: numbers are numbers, anything else (strings, arrays
    /// such as `[64, 64]`) a category named by its TOML text.
    pub fn from_toml(v: &toml::Value) -> Self {
        match v {
            toml::Value::Integer(i) => Value::Number(*i as f64),
            toml::Value::Float(f) => Value::Number(*f),
            toml::Value::String(s) => Value::Category(s.clone()),
            other => Value::Category(other.to_string()),
        }
    }

    fn label(&self) -> String {
        match self {
            Value::Number(x) => short_number(*x),
            Value::Category(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: String,
    pub scale: Scale,
    /// Values labelled along a numeric axis besides its ends (a grid's few points).
    pub marks: Vec<f64>,
    /// Labels as percentages (an accuracy in [0, 1]).
    pub percent: bool,
}

impl Axis {
    /// An axis spanning the values seen: numbers give a linear axis (log when asked and every
    /// value is positive), anything else the categories in order of first appearance.
    pub fn fit(name: impl Into<String>, values: &[Value], log: bool) -> Self {
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| match v {
                Value::Number(x) if x.is_finite() => Some(*x),
                _ => None,
            })
            .collect();
        let mut marks = Vec::new();
        let scale = match numbers {
            Some(xs) if !xs.is_empty() => {
                for x in &xs {
                    if !marks.contains(x) {
                        marks.push(*x);
                        // past 5 they are cleared below: stop looking (10,000 trials)
                        if marks.len() > 5 {
                            break;
                        }
                    }
                }
                // many values (a random sample) would crowd the axis: the ends only
                if marks.len() > 5 {
                    marks.clear();
                }
                let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if log && min > 0.0 {
                    Scale::Log { min, max }
                } else {
                    Scale::Linear { min, max }
                }
            }
            _ => {
                let mut names: Vec<String> = Vec::new();
                for v in values {
                    let l = v.label();
                    if !names.contains(&l) {
                        names.push(l);
                    }
                }
                Scale::Categories(names)
            }
        };
        Self { name: name.into(), scale, marks, percent: false }
    }

    /// Where a value sits along the axis: 0 at the bottom, 1 at the top; `None` for a value the
    /// axis cannot place (not finite, a category it does not list, a non-positive on a log axis).
    pub fn fraction(&self, v: &Value) -> Option<f32> {
        let t = match (&self.scale, v) {
            (Scale::Linear { min, max }, Value::Number(x)) if x.is_finite() => span(*x, *min, *max),
            (Scale::Log { min, max }, Value::Number(x)) if x.is_finite() && *x > 0.0 => {
                span(x.ln(), min.ln(), max.ln())
            }
            (Scale::Categories(names), v) => {
                let i = names.iter().position(|n| *n == v.label())?;
                if names.len() < 2 {
                    0.5
                } else {
                    i as f64 / (names.len() - 1) as f64
                }
            }
            _ => return None,
        };
        Some(t.clamp(0.0, 1.0) as f32)
    }

    /// Labels along the axis (position as in `fraction`, text): the ends of a numeric axis,
    /// every category.
    fn ticks(&self) -> Vec<(f32, String)> {
        match &self.scale {
            Scale::Linear { min, max } | Scale::Log { min, max } => {
                let mut values = self.marks.clone();
                for end in [*min, *max] {
                    if !values.contains(&end) {
                        values.push(end);
                    }
                }
                let label = |x: f64| if self.percent { format!("{:.1}%", 100.0 * x) } else { short_number(x) };
                values.into_iter().filter_map(|x| Some((self.fraction(&Value::Number(x))?, label(x)))).collect()
            }
            Scale::Categories(names) => {
                names.iter().map(|n| (self.fraction(&Value::Category(n.clone())).unwrap_or(0.5), n.clone())).collect()
            }
        }
    }
}

/// `(x - lo) / (hi - lo)`, the middle when the axis has one value.
fn span(x: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        (x - lo) / (hi - lo)
    } else {
        0.5
    }
}

fn short_number(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:.1e}")
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{}", (x * 1e4).round() / 1e4)
    }
}

/// The x of each axis: the first at the left edge, the last at the right (one axis: the middle).
fn axis_xs(n: usize, rect: Rect) -> Vec<f32> {
    match n {
        0 => vec![],
        1 => vec![rect.center().x],
        n => (0..n).map(|i| rect.left() + rect.width() * i as f32 / (n - 1) as f32).collect(),
    }
}

/// Each trial's polyline in `rect`: a point per axis, in axis order, up to its first value the
/// axis cannot place (a trial without a result yet stops before the result axis). The top of
/// `rect` is each axis' maximum (or last category), the bottom its minimum.
pub fn layout(axes: &[Axis], trials: &[Vec<Option<Value>>], rect: Rect) -> Vec<Vec<Pos2>> {
    let xs = axis_xs(axes.len(), rect);
    trials
        .iter()
        .map(|values| {
            axes.iter()
                .zip(&xs)
                .zip(values)
                .map_while(|((axis, x), v)| {
                    let t = axis.fraction(v.as_ref()?)?;
                    Some(Pos2::new(*x, rect.bottom() - t * rect.height()))
                })
                .collect()
        })
        .collect()
}

/// Viridis-like stops: purple, blue, teal, green, yellow (a straight blue-to-yellow blend passes
/// through grey in the middle, which reads as "no result yet"); the dark end is lifted from
/// viridis' near-black purple, which vanished on the dark background.
const RAMP: [[f32; 3]; 5] =
    [[110.0, 60.0, 170.0], [70.0, 110.0, 190.0], [35.0, 160.0, 150.0], [110.0, 205.0, 90.0], [250.0, 225.0, 40.0]];

/// Purple (worst) through teal to yellow (best) for `t` in [0, 1].
pub fn result_color(t: f32) -> Color32 {
    let x = t.clamp(0.0, 1.0) * (RAMP.len() - 1) as f32;
    let i = (x.floor() as usize).min(RAMP.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| (RAMP[i][k] + (RAMP[i + 1][k] - RAMP[i][k]) * f).round() as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

const PENDING: Color32 = Color32::from_gray(150);

/// Paints the chart, `height` points tall, across the available width. `trials[i]` holds a value
/// per axis (the last axis is the result); `goodness[i]` is that trial's result scaled to [0, 1]
/// (1 = best), `None` while it has none. Returns the index of a trial clicked this frame.
pub fn show(
    ui: &mut Ui,
    axes: &[Axis],
    trials: &[Vec<Option<Value>>],
    goodness: &[Option<f32>],
    height: f32,
) -> Option<usize> {
    let (response, painter) = ui.allocate_painter(Vec2::new(ui.available_width(), height), Sense::click());
    let font = FontId::proportional(11.0);
    let text = ui.visuals().text_color();
    let weak = ui.visuals().weak_text_color();
    // room for the axis names above and the end labels below and beside
    let plot = Rect::from_min_max(response.rect.min + Vec2::new(50.0, 22.0), response.rect.max - Vec2::new(50.0, 18.0));
    if axes.is_empty() || plot.width() <= 0.0 || plot.height() <= 0.0 {
        return None;
    }
    // the lines lie a few points inside the axes' ends, so the best and worst are not hidden
    // under the frame of the chart
    let inner = plot.shrink2(Vec2::new(0.0, 4.0));
    let lines = layout(axes, trials, inner);
    // the line nearest the pointer (within 6 points) is highlighted and opens on click
    let hovered = response.hover_pos().and_then(|p| {
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| (i, distance_to_polyline(p, line)))
            .filter(|(_, d)| *d < 6.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    });
    for (i, (x, axis)) in axis_xs(axes.len(), plot).into_iter().zip(axes).enumerate() {
        painter.line_segment([Pos2::new(x, plot.top()), Pos2::new(x, plot.bottom())], Stroke::new(1.0, weak));
        painter.text(Pos2::new(x, response.rect.top() + 2.0), Align2::CENTER_TOP, &axis.name, font.clone(), text);
        for (t, label) in axis.ticks() {
            let y = inner.bottom() - t * inner.height();
            // the first axis is labelled on its left, in the margin, away from the lines
            let (at, align) = if i == 0 && axes.len() > 1 {
                (Pos2::new(x - 5.0, y), Align2::RIGHT_CENTER)
            } else {
                (Pos2::new(x + 5.0, y), Align2::LEFT_CENTER)
            };
            painter.text(at, align, label, font.clone(), weak);
        }
    }
    // pending first, then by result, so the best lines are drawn on top
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|a, b| {
        let g = |i: usize| goodness.get(i).copied().flatten().unwrap_or(-1.0);
        g(*a).total_cmp(&g(*b))
    });
    for i in order {
        let color = goodness.get(i).copied().flatten().map_or(PENDING, result_color);
        let width = if hovered == Some(i) { 4.0 } else { 2.0 };
        if lines[i].len() >= 2 {
            painter.line(lines[i].clone(), Stroke::new(width, color));
        } else if let Some(p) = lines[i].first() {
            painter.circle_filled(*p, width, color);
        }
    }
    if let Some(i) = hovered {
        painter.line(lines[i].clone(), Stroke::new(4.0, ui.visuals().strong_text_color()));
        response.clone().on_hover_text(format!("trial {i} (click to open)"));
    }
    if response.clicked() {
        hovered
    } else {
        None
    }
}

fn distance_to_polyline(p: Pos2, line: &[Pos2]) -> f32 {
    line.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let ab = b - a;
            let t = if ab.length_sq() > 0.0 { ((p - a).dot(ab) / ab.length_sq()).clamp(0.0, 1.0) } else { 0.0 };
            p.distance(a + ab * t)
        })
        .fold(f32::INFINITY, f32::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect() -> Rect {
        Rect::from_min_max(Pos2::new(10.0, 20.0), Pos2::new(310.0, 220.0))
    }

    #[test]
    fn ends_of_each_axis_map_to_its_extremes() {
        let lr = [1e-3, 1e-2, 1e-1].map(Value::Number);
        let width = [16.0, 64.0].map(Value::Number);
        let axes = [Axis::fit("lr", &lr, true), Axis::fit("batch", &width, false), Axis::fit("acc", &[], false)];
        assert!(matches!(axes[0].scale, Scale::Log { .. }));
        let trials =
            vec![vec![Some(lr[0].clone()), Some(width[1].clone())], vec![Some(lr[2].clone()), Some(width[0].clone())]];
        let lines = layout(&axes, &trials, rect());
        // the smallest learning rate at the bottom of the first axis, the widest batch at the
        // top of the second (the x of the axes: left edge, then the middle of three)
        assert_eq!(lines[0], [Pos2::new(10.0, 220.0), Pos2::new(160.0, 20.0)]);
        assert_eq!(lines[1], [Pos2::new(10.0, 20.0), Pos2::new(160.0, 220.0)]);
    }

    #[test]
    fn the_geometric_mean_lands_mid_axis_on_a_log_axis() {
        let values = [1e-4, 1e-1].map(Value::Number);
        let axes = [Axis::fit("lr", &values, true)];
        let mid = (1e-4f64 * 1e-1).sqrt();
        let lines = layout(&axes, &[vec![Some(Value::Number(mid))]], rect());
        assert!((lines[0][0].y - 120.0).abs() < 1e-3, "{:?}", lines[0]);
        assert_eq!(lines[0][0].x, 160.0, "a single axis stands in the middle");
        // on a linear axis the arithmetic mean would be there instead
        let linear = [Axis::fit("lr", &values, false)];
        let lines = layout(&linear, &[vec![Some(Value::Number(mid))]], rect());
        assert!(lines[0][0].y > 210.0, "{:?}", lines[0]);
    }

    #[test]
    fn categories_are_evenly_spaced_and_a_pending_trial_stops_before_its_result() {
        let hidden = [Value::Category("[32, 32]".into()), Value::Category("[64, 64]".into())];
        let axes =
            [Axis::fit("hidden", &hidden, false), Axis::fit("acc", &[Value::Number(0.5), Value::Number(0.9)], false)];
        let trials = vec![vec![Some(hidden[1].clone()), None], vec![Some(hidden[0].clone()), Some(Value::Number(0.7))]];
        let lines = layout(&axes, &trials, rect());
        assert_eq!(lines[0], [Pos2::new(10.0, 20.0)]);
        assert_eq!(lines[1].len(), 2);
        assert_eq!(lines[1][0].y, 220.0);
        assert!((lines[1][1].y - 120.0).abs() < 1e-3);
    }

    #[test]
    fn colours_run_from_purple_to_yellow_and_are_never_grey() {
        let (worst, best) = (result_color(0.0), result_color(1.0));
        assert!(worst.b() > worst.g() && best.r() > best.b(), "{worst:?} {best:?}");
        // a mid-range result must not look like a pending trial's grey
        for i in 0..=20 {
            let c = result_color(i as f32 / 20.0);
            let [r, g, b] = [c.r(), c.g(), c.b()].map(i32::from);
            let chroma = r.max(g).max(b) - r.min(g).min(b);
            assert!(chroma >= 60, "t = {}: {c:?} is grey-like", i as f32 / 20.0);
        }
    }
}
