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
    let _ = (run_dir, metric);
    None
}

/// How many of `n` trials go on: `ceil(n / eta)`, at least 1.
pub fn keep_count(n: usize, eta: usize) -> usize {
    n.div_ceil(eta.max(1)).max(1).min(n.max(1))
}

/// The `keep` best trials, best first: failed and interrupted ones (or without a score) last,
/// ties to the lower index.
pub fn survivors(standings: &[Standing], metric: Metric, keep: usize) -> Vec<usize> {
    let _ = (standings, metric, keep);
    vec![]
}
