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
        Metric::ValidationLoss => min_validation_loss(&run_dir.join("epochs.jsonl")),
    }
}

/// The lowest validation loss in epochs.jsonl, read a line at a time (a long run's file is not
/// held whole), each line capped: a corrupt line is skipped, never allocated without bound.
fn min_validation_loss(path: &Path) -> Option<f64> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let (mut best, mut line) = (None::<f64>, Vec::new());
    loop {
        line.clear();
        if (&mut reader).take(crate::record::MAX_JSON_BYTES).read_until(b'\n', &mut line).ok()? == 0 {
            return best;
        }
        if let Ok(m) = serde_json::from_slice::<crate::train::EpochMetrics>(&line) {
            let loss = m.validation.loss;
            if loss.is_finite() {
                best = Some(best.map_or(loss, |b| b.min(loss)));
            }
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
            Some((bt, bx)) if !(metric.better(x, bx) || x == bx && t < bt) => Some((bt, bx)),
            _ => Some((t, x)),
        })
        .map(|(t, _)| t)
}

/// Ends rung `state.rung` of a halving sweep: ranks its trials by the metric so far (their runs
/// in `state.runs_dir`), keeps `plan.rungs.keep[rung + 1]`, marks the rest pruned at this rung
/// and moves `state` to the next rung with the survivors active. Returns (promoted, pruned),
/// each in trial order. The caller writes the state (the local driver, or `sweep advance`).
pub fn promote(plan: &super::Plan, state: &mut super::SweepState) -> (Vec<usize>, Vec<usize>) {
    let rung = state.rung;
    let runs = super::trial_runs(&state.runs_dir, &state.id);
    let standings: Vec<Standing> = state
        .active
        .iter()
        .map(|&trial| {
            let run = runs.get(&trial);
            Standing {
                trial,
                score: run.and_then(|(dir, _)| metric_of(dir, plan.metric())),
                status: run.map_or(RunStatus::Failed, |(_, info)| info.status),
            }
        })
        .collect();
    let keep = plan.rungs.as_ref().and_then(|r| r.keep.get(rung + 1).copied()).unwrap_or(1);
    let mut promoted = survivors(&standings, plan.metric(), keep);
    promoted.sort_unstable();
    let pruned: Vec<usize> = state.active.iter().copied().filter(|t| !promoted.contains(t)).collect();
    for &t in &pruned {
        state.pruned.insert(t, rung);
    }
    state.rung = rung + 1;
    state.active.clone_from(&promoted);
    (promoted, pruned)
}
