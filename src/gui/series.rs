//! A curve's points kept so that any view of it draws in time independent of its length:
//! the raw values, TensorBoard's debiased EMA of them, and a min/max pyramid over both, from
//! which `columns` picks each pixel column's extremes (spikes survive any zoom).

use egui_plot::PlotPoint;

/// What the x axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum XKind {
    #[default]
    Epoch,
    Step,
    /// Seconds of training (pauses not counted).
    WallTime,
}

impl XKind {
    pub const ALL: [XKind; 3] = [XKind::Step, XKind::Epoch, XKind::WallTime];

    pub fn title(self) -> &'static str {
        match self {
            XKind::Step => "step",
            XKind::Epoch => "epoch",
            XKind::WallTime => "wall time",
        }
    }
}

/// Which of a series' two curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    Raw,
    Smoothed,
}

/// The smallest block the pyramid keeps: below it `columns` reads the raw values.
const BASE_SHIFT: u32 = 6;
const BASE: usize = 1 << BASE_SHIFT;

/// One block's extremes (indices into the series). `min > max` marks a block without a
/// finite value.
#[derive(Debug, Clone, Copy)]
struct Block {
    min: f32,
    max: f32,
    argmin: u32,
    argmax: u32,
}

impl Block {
    const EMPTY: Block = Block { min: f32::INFINITY, max: f32::NEG_INFINITY, argmin: 0, argmax: 0 };

    fn is_empty(&self) -> bool {
        self.min > self.max
    }

    fn add(&mut self, value: f32, index: u32) {
        // NaN fails both comparisons: a missing value never becomes an extreme
        if value < self.min {
            self.min = value;
            self.argmin = index;
        }
        if value > self.max {
            self.max = value;
            self.argmax = index;
        }
    }

    fn merge(&mut self, other: &Block) {
        if other.is_empty() {
            return;
        }
        if other.min < self.min {
            self.min = other.min;
            self.argmin = other.argmin;
        }
        if other.max > self.max {
            self.max = other.max;
            self.argmax = other.argmax;
        }
    }
}

/// Level k holds the extremes of aligned blocks of `64 << k` values; only whole blocks.
#[derive(Debug, Clone, Default)]
pub struct MinMaxPyramid {
    levels: Vec<Vec<Block>>,
}

impl MinMaxPyramid {
    /// Takes note of `values[len - 1]`, just appended.
    fn appended(&mut self, values: &[f32]) {
        let n = values.len();
        if n == 0 || !n.is_multiple_of(BASE) {
            return;
        }
        let mut block = Block::EMPTY;
        for (i, &v) in values[n - BASE..].iter().enumerate() {
            block.add(v, (n - BASE + i) as u32);
        }
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(block);
            let blocks = &self.levels[level];
            if !blocks.len().is_multiple_of(2) {
                break;
            }
            let mut parent = blocks[blocks.len() - 2];
            parent.merge(&blocks[blocks.len() - 1]);
            block = parent;
            level += 1;
        }
    }

    fn rebuild(values: &[f32]) -> Self {
        let mut p = Self::default();
        for n in (BASE..=values.len()).step_by(BASE) {
            p.appended(&values[..n]);
        }
        p
    }

    /// The extremes of `values[a..b]`: whole blocks where they fit, raw values at the ends.
    fn extremes(&self, values: &[f32], a: usize, b: usize) -> Block {
        let mut out = Block::EMPTY;
        let mut i = a;
        while i < b {
            if i.is_multiple_of(BASE) && i + BASE <= b && !self.levels.is_empty() {
                // the largest block aligned at i that ends by b: its level is bounded by i's
                // alignment and by the room left (a block not complete yet is one level down)
                let align = (i.trailing_zeros().min(usize::BITS - 1) - BASE_SHIFT) as usize;
                let fit = (usize::BITS - 1 - (b - i).leading_zeros() - BASE_SHIFT) as usize;
                let mut level = align.min(fit).min(self.levels.len() - 1);
                loop {
                    let size = BASE << level;
                    if let Some(block) = self.levels[level].get(i / size) {
                        out.merge(block);
                        i += size;
                        break;
                    }
                    if level == 0 {
                        break;
                    }
                    level -= 1;
                }
                if i.is_multiple_of(BASE) && i + BASE <= b && self.levels[0].get(i / BASE).is_some() {
                    continue;
                }
            }
            let end = b.min((i / BASE + 1) * BASE);
            for (j, &v) in values[i..end].iter().enumerate() {
                out.add(v, (i + j) as u32);
            }
            i = end;
        }
        out
    }
}

/// One curve of a run: its raw and smoothed values by step and time, appended as they come.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub step: Vec<u32>,
    pub time_s: Vec<f32>,
    pub y: Vec<f32>,
    pub smoothed: Vec<f32>,
    smoothing: f32,
    /// The EMA's biased state and how many finite values it has seen.
    ema: f64,
    ema_count: i32,
    raw_pyramid: MinMaxPyramid,
    smooth_pyramid: MinMaxPyramid,
    id: SeriesId,
}

/// Which values a series holds: renewed by every change of its values, so a cache of drawn
/// points keyed by it never draws another curve's (or an older smoothing's) points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId(u64);

impl SeriesId {
    fn fresh() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl Default for SeriesId {
    fn default() -> Self {
        Self::fresh()
    }
}

impl Series {
    /// Identifies the values the series holds now (see [`SeriesId`]).
    pub fn id(&self) -> SeriesId {
        self.id
    }

    pub fn with_smoothing(smoothing: f32) -> Self {
        Self { smoothing: smoothing.clamp(0.0, 0.999), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn smoothing(&self) -> f32 {
        self.smoothing
    }

    pub fn push(&mut self, step: u32, time_s: f32, y: f32) {
        self.step.push(step);
        self.time_s.push(time_s);
        self.y.push(y);
        let s = self.smooth_next(y);
        self.smoothed.push(s);
        self.raw_pyramid.appended(&self.y);
        self.smooth_pyramid.appended(&self.smoothed);
        self.id = SeriesId::fresh();
    }

    /// Puts `other`'s points before this series' (a resumed run's history).
    pub fn prepend(&mut self, other: &Series) {
        let mut joined = Series::with_smoothing(self.smoothing);
        for i in 0..other.len() {
            joined.push(other.step[i], other.time_s[i], other.y[i]);
        }
        for i in 0..self.len() {
            joined.push(self.step[i], self.time_s[i], self.y[i]);
        }
        *self = joined;
    }

    /// TensorBoard's smoothing: an EMA divided by the weight it has gathered, so the first
    /// values are not pulled towards 0. Non-finite values pass through and are skipped.
    fn smooth_next(&mut self, y: f32) -> f32 {
        if !y.is_finite() {
            return y;
        }
        let w = f64::from(self.smoothing);
        self.ema = self.ema * w + (1.0 - w) * f64::from(y);
        self.ema_count += 1;
        let debias = 1.0 - w.powi(self.ema_count);
        if debias > 0.0 {
            (self.ema / debias) as f32
        } else {
            y
        }
    }

    /// A new smoothing weight (0 = raw, up to 0.999): the smoothed curve is computed again.
    pub fn set_smoothing(&mut self, smoothing: f32) {
        let smoothing = smoothing.clamp(0.0, 0.999);
        if smoothing == self.smoothing {
            return;
        }
        self.smoothing = smoothing;
        self.ema = 0.0;
        self.ema_count = 0;
        let y = std::mem::take(&mut self.y);
        self.smoothed = y.iter().map(|&v| self.smooth_next(v)).collect();
        self.y = y;
        self.smooth_pyramid = MinMaxPyramid::rebuild(&self.smoothed);
        self.id = SeriesId::fresh();
    }

    /// The x of point `i` on an axis of `kind`.
    pub fn x(&self, kind: XKind, batches_per_epoch: usize, i: usize) -> f64 {
        match kind {
            XKind::Step => f64::from(self.step[i]),
            XKind::Epoch => f64::from(self.step[i]) / batches_per_epoch.max(1) as f64,
            XKind::WallTime => f64::from(self.time_s[i]),
        }
    }

    /// The point at or just before `x` (for hover text).
    pub fn index_at(&self, kind: XKind, batches_per_epoch: usize, x: f64) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let i = self.first_at_or_after(kind, batches_per_epoch, x);
        Some(if i < self.len() && self.x(kind, batches_per_epoch, i) == x { i } else { i.saturating_sub(1) })
    }

    /// The first index whose x is ≥ `x` (x is non-decreasing along the series).
    fn first_at_or_after(&self, kind: XKind, bpe: usize, x: f64) -> usize {
        self.partition(kind, bpe, |xi| xi < x)
    }

    /// The first index whose x is > `x`.
    fn first_after(&self, kind: XKind, bpe: usize, x: f64) -> usize {
        self.partition(kind, bpe, |xi| xi <= x)
    }

    /// `partition` searched from `from` onwards by doubling steps: the columns of a plot ask
    /// in x order, so each answer is near the last one and the search stays in cache (a
    /// binary search over a million steps misses it some twenty times per column).
    fn gallop(&self, kind: XKind, bpe: usize, from: usize, before: impl Fn(f64) -> bool) -> usize {
        let n = self.len();
        if from >= n || !before(self.x(kind, bpe, from)) {
            return from;
        }
        // before(x(lo)) holds; find hi with !before(x(hi)) (or the end)
        let (mut lo, mut step) = (from, 1usize);
        let hi = loop {
            let probe = lo + step;
            if probe >= n {
                break n;
            }
            if before(self.x(kind, bpe, probe)) {
                lo = probe;
                step *= 2;
            } else {
                break probe;
            }
        };
        // the first index in (lo, hi) where before fails, else hi
        let (mut a, mut b) = (lo + 1, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if before(self.x(kind, bpe, mid)) {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        a
    }

    fn partition(&self, kind: XKind, bpe: usize, before: impl Fn(f64) -> bool) -> usize {
        match kind {
            XKind::WallTime => self.time_s.partition_point(|&t| before(f64::from(t))),
            XKind::Step => self.step.partition_point(|&s| before(f64::from(s))),
            XKind::Epoch => {
                let bpe = bpe.max(1) as f64;
                self.step.partition_point(|&s| before(f64::from(s) / bpe))
            }
        }
    }
}

/// The x extent of a series on an axis of `kind`, or `None` when it is empty.
pub fn x_extent(series: &Series, kind: XKind, bpe: usize) -> Option<[f64; 2]> {
    (!series.is_empty()).then(|| [series.x(kind, bpe, 0), series.x(kind, bpe, series.len() - 1)])
}

/// The points to draw of one curve between `x_range` on a plot `width_px` columns wide: in
/// each column the smallest and the largest value (in x order), so the line looks as the full
/// series would, in O(width · log n). One point beyond each end is kept so the line reaches the
/// plot's edges. Few points in range are returned as they are. `log` gives log10 of the values,
/// dropping those ≤ 0 (min and max commute with a rising map, so this is decimation of the log).
pub fn columns(
    series: &Series,
    curve: Curve,
    kind: XKind,
    bpe: usize,
    x_range: [f64; 2],
    width_px: usize,
    log: bool,
) -> Vec<PlotPoint> {
    let values = match curve {
        Curve::Raw => &series.y,
        Curve::Smoothed => &series.smoothed,
    };
    let pyramid = match curve {
        Curve::Raw => &series.raw_pyramid,
        Curve::Smoothed => &series.smooth_pyramid,
    };
    let n = values.len();
    if n == 0 || x_range.iter().any(|x| x.is_nan()) || x_range[0] > x_range[1] {
        return Vec::new();
    }
    let lo = series.first_at_or_after(kind, bpe, x_range[0]).saturating_sub(1);
    // first index with x > x_range[1], plus the one beyond
    let hi = (series.first_after(kind, bpe, x_range[1]) + 1).min(n);
    if hi <= lo {
        // x not in order (a damaged record): nothing to draw rather than a wrong line
        return Vec::new();
    }
    let point = |i: usize| {
        let v = values[i];
        let y = if log { (v > 0.0).then(|| f64::from(v).log10()) } else { v.is_finite().then_some(f64::from(v)) };
        y.map(|y| PlotPoint::new(series.x(kind, bpe, i), y))
    };
    let width = width_px.max(1);
    if hi - lo <= 2 * width + 2 {
        return (lo..hi).filter_map(point).collect();
    }
    let dx = (x_range[1] - x_range[0]) / width as f64;
    let mut out = Vec::with_capacity(2 * width + 4);
    let mut start = lo;
    for c in 1..=width + 1 {
        let end = if c > width {
            hi
        } else {
            let edge = x_range[0] + c as f64 * dx;
            series.gallop(kind, bpe, start, |x| x < edge)
        };
        let end = end.min(hi);
        if end > start {
            let b = pyramid.extremes(values, start, end);
            if !b.is_empty() {
                let (first, second) = if b.argmin <= b.argmax { (b.argmin, b.argmax) } else { (b.argmax, b.argmin) };
                out.extend(point(first as usize));
                if second != first {
                    out.extend(point(second as usize));
                }
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
