//! What the training thread does with the commands read at a batch boundary (and between
//! runs): pause and stop, learning rates, the views' subscriptions and questions, text samples,
//! and the learning-rate finder.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::event::{Command, Event};
use super::inspect::{self, InspectReply, InspectRequest, Views};
use super::lr_finder::{self, FinderEnd, LrFinderProgress, LrFinderRequest};
use super::session::Session;
use super::text;
use super::worker::{global_step, resolve_threads, Disconnected, EventSender, WorkerOptions};
use crate::rng::Rng;
use crate::task::Task;

/// What the commands read at a batch boundary ask for.
#[derive(Default)]
pub(super) struct Control {
    pub(super) paused: bool,
    pub(super) stop: bool,
    pub(super) exit: bool,
    /// Answers to requests (text samples, probes), sent before the next batch.
    pub(super) replies: Vec<Event>,
    pub(super) requests: u64,
    /// The costly views the GUI has open.
    pub(super) views: Views,
    /// A runs folder set while a run was active, for the runs after it.
    pub(super) runs_dir: Option<PathBuf>,
    /// The boundary is due at the next batch boundary (just subscribed, paused, ended).
    pub(super) boundary_now: bool,
    pub(super) last_boundary: Option<Instant>,
}

/// A boundary while training at most this often.
const BOUNDARY_INTERVAL: Duration = Duration::from_millis(500);

impl Control {
    /// Sends the boundary when the view is open and one is due.
    pub(super) fn maybe_boundary(&mut self, session: &Session, events: &mut EventSender) -> Result<(), Disconnected> {
        let due = self.boundary_now || self.last_boundary.is_none_or(|t| t.elapsed() >= BOUNDARY_INTERVAL);
        if self.views.boundary && due {
            // a periodic one may be dropped (the next replaces it); one asked for now is the
            // last for a while (paused, ended, just subscribed)
            let blocking = self.boundary_now;
            self.boundary_now = false;
            self.last_boundary = Some(Instant::now());
            send_boundary(session, events, blocking)?;
        }
        Ok(())
    }
}

/// Layer statistics are collected only while their view is open.
pub(super) fn apply_views(session: &mut Session, views: Views) {
    if !views.layer_stats {
        session.layer_stats = None;
    } else if session.layer_stats.is_none() {
        session.layer_stats = Some(super::layer_stats::StatsCollector::default());
    }
}

/// The decision boundary of a 2-D model (nothing for other models); a failure is only logged.
/// `blocking`: wait for room rather than drop it when the receiver is behind.
pub(super) fn send_boundary(session: &Session, events: &mut EventSender, blocking: bool) -> Result<(), Disconnected> {
    match inspect::maps::boundary(&session.net, session.preset.task, &session.data, &session.device) {
        Ok(Some(map)) if blocking => events.send_blocking(Event::Boundary(Box::new(map))),
        Ok(Some(map)) => events.send(Event::Boundary(Box::new(map))),
        Ok(None) => Ok(()),
        Err(e) => {
            eprintln!("gradlab: the decision boundary failed: {e}");
            Ok(())
        }
    }
}

pub(super) fn unavailable(request: &InspectRequest, why: &str) -> Event {
    Event::Inspected { id: request.id, reply: Box::new(InspectReply::Unavailable(why.to_string())) }
}

impl Control {
    pub(super) fn apply(&mut self, command: Command, session: &mut Session) {
        match command {
            Command::Pause => self.paused = true,
            Command::Resume => self.paused = false,
            Command::Stop => self.stop = true,
            Command::Shutdown => {
                self.stop = true;
                self.exit = true;
            }
            Command::SetLearningRate(lr) if lr.is_finite() && lr > 0.0 => {
                session.base_learning_rate = lr;
                self.replies.push(Event::LearningRateSet { global_step: global_step(session), learning_rate: lr });
            }
            // A second Start while one runs is ignored; the GUI disables the button.
            Command::SetLearningRate(_) | Command::Start(_) => {}
            Command::Subscribe(views) => {
                self.views = views;
                apply_views(session, views);
                self.boundary_now = views.boundary;
            }
            Command::SetRunsDir(dir) => self.runs_dir = Some(dir),
            Command::FindLearningRate(_) => {
                let error = Some("a run is active: the finder runs between runs".to_string());
                self.replies.push(Event::LrFinder(Box::new(LrFinderProgress {
                    points: Vec::new(),
                    done: None,
                    error,
                })));
            }
            Command::Inspect(request) => {
                // a bug in one view must not end the run (or, between runs, the thread)
                let reply = catch_unwind(AssertUnwindSafe(|| inspect::answer(session, &request.what)))
                    .unwrap_or_else(|_| InspectReply::Unavailable("internal error answering the question".into()));
                self.replies.push(Event::Inspected { id: request.id, reply: Box::new(reply) });
            }
            Command::Generate { prompt, length, temperature } => {
                // each request draws from its own stream, so asking never changes the training
                let rng = Rng::derive(session.preset.seed, "text-sample-request", self.requests);
                self.requests += 1;
                match text::sample_now(session, &prompt, length, temperature, rng) {
                    Ok(Some(sample)) => self.replies.push(Event::TextSample(sample)),
                    Ok(None) => {}
                    Err(e) => eprintln!("gradlab: a text sample failed: {e}"),
                }
            }
            Command::Probe(text) => {
                let Some(info) = session.data.text.as_ref().filter(|_| session.preset.task == Task::Classify) else {
                    return;
                };
                match text::classify(&session.net, info, &text, &session.device) {
                    Ok(probabilities) => self.replies.push(Event::Probe { text, probabilities }),
                    Err(e) => eprintln!("gradlab: a probe failed: {e}"),
                }
            }
        }
    }

    pub(super) fn send_replies(&mut self, events: &mut EventSender) -> Result<(), Disconnected> {
        for reply in self.replies.drain(..) {
            events.send(reply)?;
        }
        Ok(())
    }
}

/// Runs the learning-rate finder between runs, in a pool of the preset's threads. Gives the
/// commands that came meanwhile (and a Start that ended it early) to run next, in order.
pub(super) fn find_learning_rate(
    request: &LrFinderRequest,
    commands: &Receiver<Command>,
    events: &mut EventSender,
    options: &WorkerOptions,
) -> Result<VecDeque<Command>, Disconnected> {
    let failed = |events: &mut EventSender, error: String| {
        let progress = LrFinderProgress { points: Vec::new(), done: None, error: Some(error) };
        events.send(Event::LrFinder(Box::new(progress))).map(|()| VecDeque::new())
    };
    let threads = resolve_threads(&request.preset, options.default_threads);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(e) => return failed(events, format!("cannot start {threads} compute threads: {e}")),
    };
    let mut emit = |event: Event| events.send(event).is_ok();
    let mut poll = || commands.try_recv().ok();
    let end = catch_unwind(AssertUnwindSafe(|| pool.install(|| lr_finder::sweep(request, &mut emit, &mut poll))));
    match end {
        Ok(FinderEnd::Continue(next)) => Ok(next),
        Ok(FinderEnd::Exit) => Err(Disconnected),
        Err(_) => failed(events, "internal error in the learning-rate finder".into()),
    }
}
