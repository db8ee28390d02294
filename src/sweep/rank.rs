//! Ranking trials by the sweep's metric, and who goes on to the next halving rung.

use std::path::Path;

use super::spec::Metric;
use crate::train::RunStatus;

/// A trial's standing at the end of a rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub trial: usize,
    /// The metric so far; `None` when it has none (failed before an epoch).
    pub score: Option<f64>,
    pub status: RunStatus,
}

/// The metric of a run so far: its best validation accuracy (summary.json), or its lowest
/// validation loss (epochs.jsonl). `None` before its first epoch or when unreadable.
pub fn metric_of(run_dir: &Path, metric: Metric) -> Option<f64> {
    match metric {
        Metric::ValidationAccuracy => crate::record::RunInfo::read(run_dir).ok()?.best_validation_accuracy,
        Metric::ValidationLoss => {
            let text = crate::record::read_text_capped(&run_dir.join("epochs.jsonl"), 2 << 30).ok()?;
            text.lines()
                .filter_map(|l| serde_json::from_str::<crate::train::EpochMetrics>(l).ok())
                .map(|m| m.validation.loss)
                .filter(|l| l.is_finite())
                .reduce(f64::min)
        }
    }
}

/// How many of `n` trials go on: `ceil(n / eta)`, at least 1.
pub fn keep_count(n: usize, eta: usize) -> usize {
    n.div_ceil(eta.max(1)).max(1).min(n.max(1))
}

/// The `keep` best trials, best first: failed and interrupted ones (or without a score) last,
/// ties to the lower index.
pub fn survivors(standings: &[Standing], metric: Metric, keep: usize) -> Vec<usize> {
    let mut ranked: Vec<&Standing> = standings.iter().collect();
    let scored = |s: &Standing| {
        s.score.filter(|x| x.is_finite() && !matches!(s.status, RunStatus::Failed | RunStatus::Interrupted))
    };
    ranked.sort_by(|a, b| {
        let order = match (scored(a), scored(b)) {
            (Some(x), Some(y)) if metric.better(x, y) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) if metric.better(y, x) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        };
        order.then(a.trial.cmp(&b.trial))
    });
    ranked.into_iter().take(keep).map(|s| s.trial).collect()
}

/// The best of `scores` (trial, metric) by the metric, ties to the lower index.
pub fn best(scores: impl IntoIterator<Item = (usize, f64)>, metric: Metric) -> Option<usize> {
    scores
        .into_iter()
        .filter(|(_, x)| x.is_finite())
        .fold(None, |best: Option<(usize, f64)>, (t, x)| match best {
            Some((bt, bx)) if !metric.better(x, bx) && !(x == bx && t < bt) => Some((bt, bx)),
            _ => Some((t, x)),
        })
        .map(|(t, _)| t)
}
