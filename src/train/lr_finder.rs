//! The learning-rate finder: a short sweep of geometrically growing learning rates from the
//! preset's fresh weights, on the training thread, recording nothing.

use crate::config::Preset;

/// What `Command::FindLearningRate` asks for.
#[derive(Debug, Clone)]
pub struct LrFinderRequest {
    pub preset: Preset,
    pub min_lr: f64,
    pub max_lr: f64,
    /// Steps (fewer when the loss blows up); a short training set is gone through more than once.
    pub steps: usize,
}

impl LrFinderRequest {
    pub fn new(preset: Preset) -> Self {
        Self { preset, min_lr: 1e-7, max_lr: 10.0, steps: 100 }
    }
}

/// One point of the sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrPoint {
    pub lr: f64,
    pub loss: f64,
    /// Exponential moving average of the loss (β 0.98, debiased).
    pub smoothed: f64,
}

/// The learning rates the finder suggests once it is done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSuggestion {
    /// Where the smoothed loss falls fastest against log lr, before its minimum.
    pub steep: f64,
    /// A tenth of the learning rate at the smoothed loss's minimum.
    pub min_over_10: f64,
}

/// The sweep so far (`Event::LrFinder`, every few steps); `done` once it has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFinderProgress {
    pub points: Vec<LrPoint>,
    pub done: Option<LrSuggestion>,
    /// Why it ended without a suggestion (stopped, too few points, failed).
    pub error: Option<String>,
}

use std::collections::VecDeque;

use super::control::unavailable;
use super::event::{Command, Event};
use super::session::{device_for, Session};
use crate::config::Schedule;
use crate::error::{Error, Result};

/// The smoothing of the loss (fastai's and Leslie Smith's finder: an EMA, debiased).
pub const BETA: f64 = 0.98;
/// The sweep stops once the smoothed loss passes this many times its best.
pub const BLOW_UP: f64 = 4.0;
/// Points between progress events.
pub const EVERY: usize = 5;

/// The learning rate of step `k` of `n`, geometric from `min` to `max`.
pub fn lr_at(min: f64, max: f64, k: usize, n: usize) -> f64 {
    if n <= 1 {
        return min;
    }
    min * (max / min).powf(k as f64 / (n - 1) as f64)
}

/// The suggestion from the points so far (at least 3, increasing in lr): where the smoothed loss
/// falls fastest against log lr before its minimum, and a tenth of the lr at the minimum.
pub fn suggestion(points: &[LrPoint]) -> Option<LrSuggestion> {
    if points.len() < 3 {
        return None;
    }
    let (min_i, _) = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.smoothed.is_finite())
        .min_by(|a, b| a.1.smoothed.total_cmp(&b.1.smoothed))?;
    let x: Vec<f64> = points.iter().map(|p| p.lr.log10()).collect();
    // central differences inside, one-sided at the ends (numpy's gradient), up to the minimum
    let slope = |i: usize| {
        let (a, b) = (i.saturating_sub(1), (i + 1).min(points.len() - 1));
        (points[b].smoothed - points[a].smoothed) / (x[b] - x[a])
    };
    let end = min_i.max(1);
    let steep = (0..=end).min_by(|&a, &b| slope(a).total_cmp(&slope(b)))?;
    Some(LrSuggestion { steep: points[steep].lr, min_over_10: points[min_i].lr / 10.0 })
}

/// Whether the sweep has gone past any useful rate: the smoothed loss is not finite or has
/// passed `BLOW_UP` times its best so far.
pub fn blown_up(smoothed: f64, best: f64) -> bool {
    !smoothed.is_finite() || smoothed > BLOW_UP * best
}

/// Debiased moving averages of a loss series.
#[derive(Debug, Default)]
pub struct Smoother {
    avg: f64,
    n: i32,
}

impl Smoother {
    pub fn push(&mut self, loss: f64) -> f64 {
        self.avg = BETA * self.avg + (1.0 - BETA) * loss;
        self.n += 1;
        self.avg / (1.0 - BETA.powi(self.n))
    }
}

/// How a sweep ended.
pub enum FinderEnd {
    /// Done or stopped; the worker goes on with these commands first, in the order they came
    /// during the sweep (a Start that ended it last).
    Continue(VecDeque<Command>),
    /// The receiver went away, or the thread is to end.
    Exit,
}

/// What a question asked while the finder runs is told: it has no model to answer from.
pub const BUSY: &str = "the learning-rate finder is running";

/// Runs the sweep: a fresh session from the preset (its data and initial weights, the schedule
/// constant), one lr per step. `emit` sends an event (progress, or the answer to a question; false:
/// the receiver is gone); `poll` reads a command without waiting. Nothing is recorded.
pub fn sweep(
    request: &LrFinderRequest,
    emit: &mut dyn FnMut(Event) -> bool,
    poll: &mut dyn FnMut() -> Option<Command>,
) -> FinderEnd {
    let mut points = Vec::new();
    let mut later = VecDeque::new();
    let outcome = run_sweep(request, &mut points, &mut later, emit, poll);
    let (done, error) = match outcome {
        Ok(Stop::Done) => match suggestion(&points) {
            Some(s) => (Some(s), None),
            None => (None, Some("too few points for a suggestion".to_string())),
        },
        Ok(Stop::Stopped) => (None, Some("stopped".to_string())),
        Ok(Stop::Exit) => return FinderEnd::Exit,
        Err(e) => (None, Some(e.to_string())),
    };
    if emit(Event::LrFinder(Box::new(LrFinderProgress { points, done, error }))) {
        FinderEnd::Continue(later)
    } else {
        FinderEnd::Exit
    }
}

enum Stop {
    Done,
    /// Stop, or a Start (queued in `later`).
    Stopped,
    Exit,
}

/// Reads the commands that came since the last step. Questions are answered at once (the
/// finder's session is no model to look inside); the rest wait for the sweep's end, in order, so
/// a runs folder or subscription set meanwhile is not lost.
fn read_commands(
    later: &mut VecDeque<Command>,
    emit: &mut dyn FnMut(Event) -> bool,
    poll: &mut dyn FnMut() -> Option<Command>,
) -> Option<Stop> {
    while let Some(command) = poll() {
        match command {
            Command::Shutdown => return Some(Stop::Exit),
            Command::Stop => return Some(Stop::Stopped),
            c @ Command::Start(_) => {
                later.push_back(c);
                return Some(Stop::Stopped);
            }
            Command::Inspect(request) => {
                if !emit(unavailable(&request, BUSY)) {
                    return Some(Stop::Exit);
                }
            }
            other => later.push_back(other),
        }
    }
    None
}

fn run_sweep(
    request: &LrFinderRequest,
    points: &mut Vec<LrPoint>,
    later: &mut VecDeque<Command>,
    emit: &mut dyn FnMut(Event) -> bool,
    poll: &mut dyn FnMut() -> Option<Command>,
) -> Result<Stop> {
    let (min, max) = (request.min_lr, request.max_lr);
    if !(min > 0.0 && max > min && max.is_finite()) {
        return Err(Error::Other(format!("the finder's learning rates must grow from above 0: {min} to {max}")));
    }
    let mut preset = request.preset.clone();
    preset.train.schedule = Schedule::default();
    preset.train.epochs = preset.train.epochs.max(1);
    crate::budget::check(&preset, "preset")?;
    let device = device_for(&preset)?;
    let data = crate::data::load(&preset.data, preset.seed)?;
    let mut session = Session::new(preset, data, device)?;
    if let Some(t) = session.preset.transfer.clone() {
        super::transfer::apply(&t, &mut session)?;
    }
    // all the steps asked for, across epochs: a small set (the spiral's 37 batches) would give
    // too few points, and a suggestion lagging behind the smoothing, in one
    let n = request.steps.clamp(1, 10_000);
    let mut smoother = Smoother::default();
    let mut best = f64::INFINITY;
    for k in 0..n {
        if let Some(stop) = read_commands(later, emit, poll) {
            return Ok(stop);
        }
        if session.epoch_done() {
            // the next epoch's order, as the batch source gives it; no validation
            session.epoch += 1;
            session.batch = 0;
        }
        let lr = lr_at(min, max, k, n);
        session.base_learning_rate = lr;
        let loss = match session.train_batch() {
            Ok(step) => step.loss,
            // the rate is too high: the sweep has found its end
            Err(Error::NonFiniteLoss { .. }) => break,
            Err(e) => return Err(e),
        };
        let smoothed = smoother.push(loss);
        points.push(LrPoint { lr, loss, smoothed });
        best = best.min(smoothed);
        if blown_up(smoothed, best) {
            break;
        }
        if (k + 1) % EVERY == 0 {
            let progress = LrFinderProgress { points: points.clone(), done: None, error: None };
            if !emit(Event::LrFinder(Box::new(progress))) {
                return Ok(Stop::Exit);
            }
        }
    }
    session.batches.stop();
    Ok(Stop::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(steep_at: f64, blow_up: bool) -> Vec<LrPoint> {
        // a tanh step down in log lr centred on `steep_at`, rising again past 1e-1
        let mut s = Smoother::default();
        (0..100)
            .map(|k| {
                let lr = lr_at(1e-7, 10.0, k, 100);
                let t = (lr.log10() - steep_at.log10()) * 1.5;
                let mut loss = 2.0 - 1.5 * t.tanh();
                if lr > 1e-1 {
                    loss += (lr / 1e-1).log10() * if blow_up { 50.0 } else { 2.0 };
                }
                LrPoint { lr, loss, smoothed: s.push(loss).min(f64::MAX) }
            })
            .collect()
    }

    #[test]
    fn the_suggestion_is_at_the_steepest_fall() {
        let mut points = curve(1e-3, false);
        // the exact curve, so the test is of the rule, not of the smoothing's lag
        for p in &mut points {
            p.smoothed = p.loss;
        }
        let s = suggestion(&points).unwrap();
        assert!(s.steep / 1e-3 < 1.3 && 1e-3 / s.steep < 1.3, "steep {}", s.steep);
        assert!(s.min_over_10 > s.steep, "the minimum lies past the steepest fall");
    }

    #[test]
    fn a_curve_that_blows_up_stops_the_sweep_early() {
        let points = curve(1e-3, true);
        let mut best = f64::INFINITY;
        let stop = points.iter().position(|p| {
            best = best.min(p.smoothed);
            blown_up(p.smoothed, best)
        });
        let stop = stop.expect("the sweep stops");
        assert!(stop < 99 && points[stop].lr > 1e-1, "stopped at {} (lr {})", stop, points[stop].lr);
        // the gentle curve runs to its end
        let mut best = f64::INFINITY;
        assert!(!curve(1e-3, false).iter().any(|p| {
            best = best.min(p.smoothed);
            blown_up(p.smoothed, best)
        }));
        assert!(blown_up(f64::NAN, 1.0) && blown_up(f64::INFINITY, 1.0));
    }

    #[test]
    fn geometric_rates_and_debiased_smoothing() {
        assert!((lr_at(1e-7, 10.0, 0, 100) - 1e-7).abs() < 1e-20);
        assert!((lr_at(1e-7, 10.0, 99, 100) - 10.0).abs() < 1e-9);
        let mut s = Smoother::default();
        // a constant stays constant from the first point on
        assert!((s.push(3.0) - 3.0).abs() < 1e-12 && (s.push(3.0) - 3.0).abs() < 1e-12);
        assert!(suggestion(&curve(1e-3, false)[..2]).is_none());
    }
}
