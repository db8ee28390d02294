//! The curve plot of the live view and of compare: per-step curves drawn from their min/max
//! columns (any length, any zoom, spikes kept), a smoothed line over the faint raw one, log y,
//! x in steps, epochs or wall time, plots linked in x and cursor, hover text naming the point,
//! and markers where the run paused, resumed, forked or had its learning rate set.

use std::sync::Arc;

use egui::{Color32, Id, Ui};
use egui_plot::{
    log_grid_spacer, Corner, GridMark, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotMemory,
    PlotPoint, PlotPoints, Points, Text, VLine,
};

use super::series::{columns, x_extent, Curve, Series, XKind};

/// How curves are drawn; persisted with the app's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlotSettings {
    /// TensorBoard's EMA weight: 0 draws the raw values only, up to 0.999.
    pub smoothing: f32,
    pub log_y: bool,
    pub x_kind: XKind,
}

impl Default for PlotSettings {
    fn default() -> Self {
        Self { smoothing: 0.6, log_y: false, x_kind: XKind::Epoch }
    }
}

/// One per-step curve.
pub struct StepLine<'a> {
    pub name: String,
    pub series: &'a Series,
    pub color: Color32,
    pub batches_per_epoch: usize,
}

/// Per-epoch figures: a point per epoch, joined when `joined`.
pub struct EpochLine {
    pub name: String,
    pub color: Color32,
    /// (epoch, elapsed seconds at its end, value).
    pub points: Vec<(f64, f64, f64)>,
    pub batches_per_epoch: usize,
    pub joined: bool,
    pub shape: MarkerShape,
    pub radius: f32,
}

/// A vertical line with a short label (paused, resumed, lr 3e-4, forked from …).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub step: u32,
    /// Fractional epoch (step / batches per epoch of its run).
    pub epoch: f64,
    pub time_s: f32,
    pub label: String,
}

impl Marker {
    fn x(&self, kind: XKind) -> f64 {
        match kind {
            XKind::Step => f64::from(self.step),
            XKind::Epoch => self.epoch,
            XKind::WallTime => f64::from(self.time_s),
        }
    }
}

pub struct CurvePlot<'a> {
    pub id: &'static str,
    /// Plots with the same group (the live view's loss and accuracy) share x and the cursor.
    pub link_group: &'static str,
    /// What y is ("loss", "accuracy"): the hover text names it.
    pub y_name: &'a str,
    pub steps: Vec<StepLine<'a>>,
    pub epochs: Vec<EpochLine>,
    pub markers: &'a [Marker],
    pub height: f32,
    /// Values the y range always includes (linear scale only).
    pub include_y: &'a [f64],
    pub legend: Corner,
}

/// The row above the plots: smoothing, log y, the x axis. Returns whether anything changed.
pub fn settings_bar(ui: &mut Ui, settings: &mut PlotSettings) -> bool {
    let before = *settings;
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        ui.add(egui::Slider::new(&mut settings.smoothing, 0.0..=0.999).step_by(0.01).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text(
                "TensorBoard's exponential moving average of the per-step values; the raw curve stays faint behind",
            );
        ui.checkbox(&mut settings.log_y, "log y");
        ui.separator();
        ui.label("x:");
        for kind in XKind::ALL {
            ui.selectable_value(&mut settings.x_kind, kind, kind.title());
        }
    });
    *settings != before
}

fn x_of(kind: XKind, bpe: usize, epoch: f64, time_s: f64) -> f64 {
    match kind {
        XKind::Step => epoch * bpe.max(1) as f64,
        XKind::Epoch => epoch,
        XKind::WallTime => time_s,
    }
}

/// "0:42", "1:02:03".
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The hover text of point `i` of a series.
pub fn hover_text(series: &Series, i: usize, bpe: usize, y_name: &str, smoothing: f32) -> String {
    let step = series.step[i];
    let mut text = format!(
        "step {} · epoch {:.1} · {} · {y_name} {}",
        super::setup_panel::group_thousands(step as usize),
        f64::from(step) / bpe.max(1) as f64,
        clock(f64::from(series.time_s[i])),
        short(f64::from(series.y[i]))
    );
    if smoothing > 0.0 {
        text.push_str(&format!(" (smoothed {})", short(f64::from(series.smoothed[i]))));
    }
    text
}

/// What a line's points were computed for: the same key gives the same points.
#[derive(Clone, PartialEq)]
struct CacheKey {
    series: super::series::SeriesId,
    len: usize,
    range: [u64; 2],
    width: usize,
    kind: XKind,
    smoothing: u32,
    log: bool,
    curve: u8,
}

type Cached = Arc<(CacheKey, Vec<PlotPoint>)>;

/// The points of one line for this frame, from the cache when nothing changed.
fn cached_columns(
    ui: &Ui,
    id: Id,
    line: &StepLine<'_>,
    curve: Curve,
    settings: &PlotSettings,
    view: ([f64; 2], usize),
) -> Vec<PlotPoint> {
    let (range, width) = view;
    let key = CacheKey {
        series: line.series.id(),
        len: line.series.len(),
        range: range.map(f64::to_bits),
        width,
        kind: settings.x_kind,
        smoothing: line.series.smoothing().to_bits(),
        log: settings.log_y,
        curve: curve as u8,
    };
    if let Some(hit) = ui.ctx().data(|d| d.get_temp::<Cached>(id)).filter(|c| c.0 == key) {
        return hit.1.clone();
    }
    let points = columns(line.series, curve, settings.x_kind, line.batches_per_epoch, range, width, settings.log_y);
    ui.ctx().data_mut(|d| d.insert_temp(id, Arc::new((key, points.clone()))));
    points
}

/// Draws the plot. Returns its response (for Save as PNG).
pub fn show(ui: &mut Ui, plot: CurvePlot<'_>, settings: &PlotSettings) -> egui::Response {
    let cache_id = Id::unique(plot.id);
    let kind = settings.x_kind;
    // a new x axis starts from the whole range: the bounds of another axis mean nothing on it
    let plot_id = cache_id.with(kind.title());
    let link_id = Id::unique(plot.link_group).with(kind.title());
    // The x range and width the plot showed last frame: while it follows the data (auto
    // bounds), the whole range; once zoomed or panned, only what is visible is queried.
    let full = plot
        .steps
        .iter()
        .filter_map(|l| x_extent(l.series, kind, l.batches_per_epoch))
        .reduce(|a, b| [a[0].min(b[0]), a[1].max(b[1])]);
    let memory = PlotMemory::load(ui.ctx(), plot_id);
    let width = memory.as_ref().map_or(ui.available_width(), |m| m.transform().frame().width()).max(50.0) as usize;
    let range = match (&memory, full) {
        (Some(m), Some(_)) if !m.auto_bounds.x => [m.bounds().min()[0], m.bounds().max()[0]],
        (_, Some(full)) => full,
        (_, None) => [0.0, 0.0],
    };
    let smoothing_on = settings.smoothing > 0.0;
    let log = settings.log_y;
    let mut lines = Vec::new();
    for (k, line) in plot.steps.iter().enumerate() {
        let raw = cached_columns(ui, cache_id.with(("raw", k)), line, Curve::Raw, settings, (range, width));
        let smooth = smoothing_on
            .then(|| cached_columns(ui, cache_id.with(("smooth", k)), line, Curve::Smoothed, settings, (range, width)));
        lines.push((raw, smooth));
    }
    let y_name = plot.y_name.to_string();
    let hover_lines: Vec<(String, &Series, usize)> =
        plot.steps.iter().map(|l| (l.name.clone(), l.series, l.batches_per_epoch)).collect();
    let smoothing = settings.smoothing;
    let mut p = Plot::new(plot.id)
        .id(plot_id)
        .height(plot.height)
        .legend(Legend::default().position(plot.legend))
        .x_axis_label(kind.title())
        .allow_scroll(false)
        .link_axis(link_id, [true, false])
        .link_cursor(link_id, [true, false])
        .label_formatter(move |pos: &HoverPosition<'_>| {
            // the nearest step line's point at this x (the first one's when not near a line);
            // any other line (per epoch, validation) names its own point
            let line = match pos {
                HoverPosition::NearDataPoint { plot_name, position, .. } => {
                    let own = |(n, ..): &&(String, &Series, usize)| {
                        *plot_name == n.as_str() || plot_name.strip_suffix(" (raw)") == Some(n.as_str())
                    };
                    match hover_lines.iter().find(own) {
                        Some(line) => (line, position.x),
                        None => {
                            let y = if log { 10f64.powf(position.y) } else { position.y };
                            let x = match kind {
                                XKind::WallTime => clock(position.x),
                                _ => format!("{:.2}", position.x),
                            };
                            return Some(format!("{plot_name}\n{} {x} · {y_name} {}", kind.title(), short(y)));
                        }
                    }
                }
                HoverPosition::Elsewhere { position } => (hover_lines.first()?, position.x),
            };
            let (line, x) = line;
            let i = line.1.index_at(kind, line.2, x)?;
            let text = hover_text(line.1, i, line.2, &y_name, smoothing);
            Some(if hover_lines.len() > 1 { format!("{}\n{text}", line.0) } else { text })
        });
    if kind == XKind::WallTime {
        p = p.x_axis_formatter(|mark: GridMark, _| clock(mark.value));
    }
    if log {
        p = p.y_grid_spacer(log_grid_spacer(10)).y_axis_formatter(|mark: GridMark, _| {
            let e = mark.value;
            if (e - e.round()).abs() < 1e-9 {
                format!("1e{}", e.round() as i64)
            } else {
                short(10f64.powf(e))
            }
        });
    } else {
        for &y in plot.include_y {
            p = p.include_y(y);
        }
        p = p.include_x(0.0);
    }
    let marker_color = ui.visuals().weak_text_color();
    let markers: Vec<(f64, String)> =
        plot.markers.iter().map(|m| (m.x(kind), m.label.clone())).filter(|(x, _)| x.is_finite()).collect();
    let epochs = plot.epochs;
    let names: Vec<(String, Color32)> = plot.steps.iter().map(|l| (l.name.clone(), l.color)).collect();
    let shown = p.show(ui, move |pu| {
        for ((raw, smooth), (name, color)) in lines.into_iter().zip(names) {
            match smooth {
                Some(smooth) => {
                    pu.line(
                        Line::new(format!("{name} (raw)"), PlotPoints::Owned(raw))
                            .color(color.gamma_multiply(0.25))
                            .width(1.0),
                    );
                    pu.line(Line::new(name, PlotPoints::Owned(smooth)).color(color).width(1.5));
                }
                None => pu.line(Line::new(name, PlotPoints::Owned(raw)).color(color.gamma_multiply(0.6)).width(1.0)),
            }
        }
        for e in epochs {
            let pts: Vec<[f64; 2]> = e
                .points
                .iter()
                .filter_map(|&(epoch, t, y)| {
                    let x = x_of(kind, e.batches_per_epoch, epoch, t);
                    let y = if log { (y > 0.0).then(|| y.log10())? } else { y };
                    y.is_finite().then_some([x, y])
                })
                .collect();
            if e.joined {
                pu.line(Line::new(e.name.clone(), pts.clone()).color(e.color).width(2.0));
            }
            pu.points(Points::new(e.name, pts).color(e.color).radius(e.radius).shape(e.shape));
        }
        let top = pu.plot_bounds().max()[1];
        for (x, label) in markers {
            pu.vline(VLine::new("", x).color(marker_color).style(LineStyle::dashed_loose()).width(1.0));
            pu.text(
                Text::new("", PlotPoint::new(x, top), egui::RichText::new(label).small())
                    .color(marker_color)
                    .anchor(egui::Align2::LEFT_TOP),
            );
        }
    });
    // the columns were computed for last frame's bounds: after a pan or zoom, draw once more
    // with the new ones (nothing else would repaint an idle window)
    if let Some(m) = PlotMemory::load(ui.ctx(), plot_id) {
        let bounds = [m.bounds().min()[0], m.bounds().max()[0]];
        if !m.auto_bounds.x && full.is_some() && bounds != range {
            ui.ctx().request_repaint();
        }
    }
    shown.response
}

/// The points the plot `plot_id` drew last for its `line`-th step curve (raw or smoothed), for
/// tests that check what was drawn.
#[doc(hidden)]
pub fn cached_points(ctx: &egui::Context, plot_id: &str, line: usize, smoothed: bool) -> Option<Vec<PlotPoint>> {
    let id = Id::unique(plot_id).with((if smoothed { "smooth" } else { "raw" }, line));
    ctx.data(|d| d.get_temp::<Cached>(id)).map(|c| c.1.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f32]) -> Series {
        let mut s = Series::with_smoothing(0.0);
        for (i, &v) in values.iter().enumerate() {
            s.push(i as u32, i as f32, v);
        }
        s
    }

    /// The points drawn for `series` under the same plot id, line and view.
    fn drawn(ctx: &egui::Context, series: &Series) -> Vec<f64> {
        let mut out = Vec::new();
        let mut output = ctx.run_ui(Default::default(), |ui| {
            let line = StepLine { name: "train".into(), series, color: Color32::WHITE, batches_per_epoch: 1 };
            let settings = PlotSettings { smoothing: 0.0, log_y: false, x_kind: XKind::Step };
            out = cached_columns(ui, Id::unique("cache-test"), &line, Curve::Raw, &settings, ([0.0, 2.0], 100))
                .iter()
                .map(|p| p.y)
                .collect();
        });
        output.textures_delta.clear();
        out
    }

    #[test]
    fn another_series_of_the_same_length_is_not_drawn_from_the_cache() {
        let ctx = egui::Context::default();
        let loss = series(&[2.0, 1.5, 1.0]);
        let accuracy = series(&[0.25, 0.5, 0.75]);
        assert!(drawn(&ctx, &loss).contains(&2.0));
        let points = drawn(&ctx, &accuracy);
        assert!(points.contains(&0.75) && !points.contains(&2.0), "drew {points:?} for the accuracy");
        let mut smoothed = accuracy.clone();
        smoothed.set_smoothing(0.5);
        assert_ne!(smoothed.id(), accuracy.id(), "a new smoothing renews the id");
    }
}
