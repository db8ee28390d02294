use super::*;

/// A small LCG: the tests need noise, not a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

fn noisy(n: usize, seed: u64) -> Series {
    let mut noise = Noise(seed);
    let mut s = Series::with_smoothing(0.6);
    for i in 0..n {
        s.push(i as u32, i as f32 * 0.01, 1.0 + noise.next());
    }
    s
}

fn has_spike(points: &[PlotPoint]) -> bool {
    points.iter().any(|p| p.y == 100.0 && p.x == 654_321.0)
}

#[test]
fn a_spike_survives_every_width_and_zoom_that_holds_it() {
    let mut noise = Noise(7);
    let mut s = Series::default();
    for i in 0..1_000_000u32 {
        s.push(i, i as f32, if i == 654_321 { 100.0 } else { noise.next() });
    }
    let full = [0.0, 999_999.0];
    for width in [100, 1_000] {
        let pts = columns(&s, Curve::Raw, XKind::Step, 1, full, width, false);
        assert!(has_spike(&pts), "width {width}");
        assert!(pts.len() <= 2 * width + 4, "{} points for width {width}", pts.len());
        assert!(pts.windows(2).all(|w| w[0].x <= w[1].x), "x goes back at width {width}");
    }
    let mut r = Noise(11);
    for _ in 0..40 {
        let a = f64::from(r.next()) * 1e6;
        let b = a + f64::from(r.next()) * (1e6 - a);
        let pts = columns(&s, Curve::Raw, XKind::Step, 1, [a, b], 300, false);
        // one point beyond each end is kept, so "holds it" reaches one step past the range
        let holds = a - 1.0 <= 654_321.0 && 654_321.0 <= b + 1.0;
        let clearly_out = 654_321.0 < a - 2.0 || 654_321.0 > b + 2.0;
        if holds {
            assert!(has_spike(&pts), "range {a}..{b}");
        } else if clearly_out {
            assert!(!has_spike(&pts), "range {a}..{b}");
        }
    }
    for range in [[654_000.0, 655_000.0], [654_321.0, 654_321.0], [0.0, 654_322.0]] {
        assert!(has_spike(&columns(&s, Curve::Raw, XKind::Step, 1, range, 500, false)), "{range:?}");
    }
    for range in [[0.0, 654_000.0], [654_400.0, 999_999.0]] {
        assert!(!has_spike(&columns(&s, Curve::Raw, XKind::Step, 1, range, 500, false)), "{range:?}");
    }
}

/// The same columns as `columns`, by a scan of every value.
fn naive(s: &Series, x_range: [f64; 2], width: usize) -> Vec<(f64, f64)> {
    let xs: Vec<f64> = (0..s.len()).map(|i| s.x(XKind::WallTime, 1, i)).collect();
    let lo = xs.partition_point(|&x| x < x_range[0]).saturating_sub(1);
    let hi = (xs.partition_point(|&x| x <= x_range[1]) + 1).min(xs.len());
    let dx = (x_range[1] - x_range[0]) / width as f64;
    let mut out = vec![];
    let mut start = lo;
    for c in 1..=width + 1 {
        let end = if c > width { hi } else { xs.partition_point(|&x| x < x_range[0] + c as f64 * dx).clamp(start, hi) };
        if end > start {
            let (mut mn, mut mx) = (start, start);
            for i in start..end {
                if s.y[i] < s.y[mn] {
                    mn = i;
                }
                if s.y[i] > s.y[mx] {
                    mx = i;
                }
            }
            let (first, second) = if mn <= mx { (mn, mx) } else { (mx, mn) };
            out.push((xs[first], f64::from(s.y[first])));
            if second != first {
                out.push((xs[second], f64::from(s.y[second])));
            }
        }
        start = end;
    }
    out
}

#[test]
fn each_column_holds_the_naive_min_and_max() {
    let s = noisy(200_000, 3);
    let mut r = Noise(5);
    for _ in 0..50 {
        let a = f64::from(r.next()) * 2_000.0;
        let b = a + f64::from(r.next()) * (2_000.0 - a);
        let width = 50 + (r.next() * 900.0) as usize;
        let got: Vec<(f64, f64)> =
            columns(&s, Curve::Raw, XKind::WallTime, 1, [a, b], width, false).iter().map(|p| (p.x, p.y)).collect();
        let n = s.time_s.partition_point(|&t| f64::from(t) <= b) - s.time_s.partition_point(|&t| f64::from(t) < a);
        if n + 4 > 2 * width + 2 {
            assert_eq!(got, naive(&s, [a, b], width), "range {a}..{b} width {width}");
        }
    }
}

#[test]
fn appending_gives_what_building_gives() {
    let whole = noisy(10_000, 9);
    let mut grown = noisy(3_000, 9);
    let more = noisy(10_000, 9);
    for i in 3_000..10_000 {
        grown.push(more.step[i], more.time_s[i], more.y[i]);
        if i % 1_111 == 0 {
            let a = columns(&grown, Curve::Smoothed, XKind::Step, 1, [0.0, i as f64], 200, false);
            assert!(!a.is_empty());
        }
    }
    for curve in [Curve::Raw, Curve::Smoothed] {
        for range in [[0.0, 9_999.0], [1_234.5, 8_765.4], [9_000.0, 9_999.0]] {
            assert_eq!(
                columns(&whole, curve, XKind::Step, 1, range, 300, false),
                columns(&grown, curve, XKind::Step, 1, range, 300, false)
            );
        }
    }
    // a new smoothing weight recomputes what appending would have built
    let mut resmoothed = noisy(10_000, 9);
    resmoothed.set_smoothing(0.9);
    resmoothed.set_smoothing(0.6);
    assert_eq!(
        columns(&whole, Curve::Smoothed, XKind::Epoch, 100, [0.0, 100.0], 300, false),
        columns(&resmoothed, Curve::Smoothed, XKind::Epoch, 100, [0.0, 100.0], 300, false)
    );
}

#[test]
fn empty_and_single_point_series() {
    let empty = Series::default();
    assert!(columns(&empty, Curve::Raw, XKind::Step, 1, [0.0, 10.0], 100, false).is_empty());
    assert_eq!(empty.index_at(XKind::Step, 1, 3.0), None);
    let mut one = Series::default();
    one.push(5, 0.5, 2.0);
    let pts = columns(&one, Curve::Raw, XKind::Step, 1, [0.0, 10.0], 100, false);
    assert_eq!(pts, vec![PlotPoint::new(5.0, 2.0)]);
    assert_eq!(
        columns(&one, Curve::Raw, XKind::Step, 1, [5.0, 5.0], 100, true),
        vec![PlotPoint::new(5.0, 2f64.log10())]
    );
    assert_eq!(one.index_at(XKind::Step, 1, 9.0), Some(0));
}

#[test]
fn log_after_decimation_is_decimation_after_log() {
    let s = noisy(100_000, 21);
    let mut logged = Series::with_smoothing(0.6);
    for i in 0..s.len() {
        logged.push(s.step[i], s.time_s[i], s.y[i].log10());
    }
    for range in [[0.0, 99_999.0], [12_345.0, 23_456.0]] {
        let a = columns(&s, Curve::Raw, XKind::Step, 1, range, 400, true);
        let b = columns(&logged, Curve::Raw, XKind::Step, 1, range, 400, false);
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert_eq!(p.x, q.x);
            assert!((p.y - q.y).abs() < 1e-6, "{p:?} vs {q:?}");
        }
    }
    // values ≤ 0 have no logarithm: dropped, never -inf
    let mut signed = Series::default();
    for (i, v) in [1.0, 0.0, -1.0, 10.0].into_iter().enumerate() {
        signed.push(i as u32, 0.0, v);
    }
    let pts = columns(&signed, Curve::Raw, XKind::Step, 1, [0.0, 3.0], 100, true);
    assert_eq!(pts, vec![PlotPoint::new(0.0, 0.0), PlotPoint::new(3.0, 1.0)]);
}

#[test]
fn ema_is_tensorboards_debiased_one() {
    let mut s = Series::with_smoothing(0.6);
    for (i, v) in [1.0, 0.0, 0.0].into_iter().enumerate() {
        s.push(i as u32, 0.0, v);
    }
    let want = [1.0, 0.375, 0.183_673];
    for (got, want) in s.smoothed.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{:?}", s.smoothed);
    }
    let mut constant = Series::with_smoothing(0.99);
    for i in 0..1_000 {
        constant.push(i, 0.0, 0.25);
    }
    assert!(constant.smoothed.iter().all(|&v| (v - 0.25).abs() < 1e-6));
    let mut raw = noisy(100, 1);
    raw.set_smoothing(0.0);
    assert_eq!(raw.smoothed, raw.y);
}
