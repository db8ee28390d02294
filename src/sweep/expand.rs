//! A sweep's combinations: the grid (cartesian product in key order, the first key slowest) or
//! random draws (`Rng::derive(seed, "sweep", i)`), each a map of varied key → TOML value.

use std::collections::BTreeMap;

use super::spec::{Axis, RandomSpec, SweepSpec};
use crate::rng::Rng;

pub(super) type Values = BTreeMap<String, toml::Value>;

/// Checks one axis: exactly one of values / linear / log, sensible ends and count.
pub(super) fn check_axis(axis: &Axis, random: bool) -> Result<(), String> {
    let given = [axis.values.is_some(), axis.linear.is_some(), axis.log.is_some()].iter().filter(|g| **g).count();
    if given != 1 {
        return Err(format!(
            "give exactly one of `values = [...]`, `linear = [low, high]` or `log = [low, high]` ({given} given)"
        ));
    }
    if let Some(values) = &axis.values {
        if values.is_empty() {
            return Err("`values` is empty".into());
        }
        if axis.count.is_some() || axis.integer {
            return Err("`count` and `integer` go with `linear` or `log`, not `values`".into());
        }
        return Ok(());
    }
    let (kind, [low, high]) = match (axis.linear, axis.log) {
        (Some(r), _) => ("linear", r),
        (None, Some(r)) => ("log", r),
        (None, None) => unreachable!("one of the three is given"),
    };
    if !low.is_finite() || !high.is_finite() {
        return Err(format!("`{kind}` ends must be finite numbers"));
    }
    if kind == "log" && (low <= 0.0 || high <= 0.0) {
        return Err(format!("`log = [{low}, {high}]`: a log range needs both ends above 0"));
    }
    match axis.count {
        Some(0) => Err("`count = 0` gives no trials; give 1 or more".into()),
        Some(n) if n > super::spec::MAX_TRIALS => Err(format!("`count = {n}`: at most {}", super::spec::MAX_TRIALS)),
        None if !random => Err(format!("a grid needs `count`, the number of points from {low} to {high}")),
        _ => Ok(()),
    }
}

/// Points on a grid axis.
pub(super) fn grid_len(axis: &Axis) -> usize {
    axis.values.as_ref().map_or(axis.count.unwrap_or(1), Vec::len)
}

/// Rounds to `digits` significant figures (grid points to 12, so 1e-2 prints as 0.01; random
/// draws to 4).
fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn number(x: f64, integer: bool) -> toml::Value {
    if integer {
        toml::Value::Integer(x.round() as i64)
    } else {
        toml::Value::Float(x)
    }
}

/// The grid values of one axis.
fn axis_points(axis: &Axis) -> Vec<toml::Value> {
    if let Some(values) = &axis.values {
        return values.clone();
    }
    let n = axis.count.unwrap_or(1);
    let at = |i: usize| if n == 1 { 0.0 } else { i as f64 / (n - 1) as f64 };
    (0..n)
        .map(|i| match (axis.linear, axis.log) {
            (Some([a, b]), _) => number(significant(a + at(i) * (b - a), 12), axis.integer),
            (None, Some([a, b])) => number(significant((a.ln() + at(i) * (b.ln() - a.ln())).exp(), 12), axis.integer),
            (None, None) => unreachable!("checked: one of values, linear, log"),
        })
        .collect()
}

/// Every combination of the axes' points, the first key slowest.
pub(super) fn grid(spec: &SweepSpec) -> Vec<Values> {
    let axes: Vec<(&String, Vec<toml::Value>)> = spec.vary.iter().map(|(k, a)| (k, axis_points(a))).collect();
    let total: usize = axes.iter().map(|(_, p)| p.len()).product();
    (0..total)
        .map(|mut i| {
            let mut values = Values::new();
            for (key, points) in axes.iter().rev() {
                values.insert((*key).clone(), points[i % points.len()].clone());
                i /= points.len();
            }
            values
        })
        .collect()
}

/// A uniform draw in [0, 1) with 32 bits.
fn unit(rng: &mut Rng) -> f64 {
    f64::from(rng.next_u32()) / 4_294_967_296.0
}

/// `samples` draws: linear uniform, log log-uniform (4 significant figures), values a choice.
pub(super) fn random(spec: &SweepSpec, r: RandomSpec) -> Vec<Values> {
    (0..r.samples)
        .map(|i| {
            let mut rng = Rng::derive(r.seed, "sweep", i as u64);
            spec.vary
                .iter()
                .map(|(key, axis)| {
                    let value = match (&axis.values, axis.linear, axis.log) {
                        (Some(values), _, _) => values[rng.below(values.len())].clone(),
                        (None, Some([a, b]), _) => number(significant(a + unit(&mut rng) * (b - a), 4), axis.integer),
                        (None, None, Some([a, b])) => {
                            let x = (a.ln() + unit(&mut rng) * (b.ln() - a.ln())).exp();
                            number(significant(x, 4), axis.integer)
                        }
                        (None, None, None) => unreachable!("checked: one of values, linear, log"),
                    };
                    (key.clone(), value)
                })
                .collect()
        })
        .collect()
}

/// The distinct values a key takes (up to 32), to check each against the base preset alone.
pub(super) fn distinct<'a>(values: impl Iterator<Item = &'a toml::Value>) -> Vec<&'a toml::Value> {
    let mut seen: Vec<&toml::Value> = vec![];
    for v in values {
        if seen.len() == 32 {
            break;
        }
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}
