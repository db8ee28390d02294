//! Training: the session (one run in memory), optimizers, metrics, and the training thread with
//! its commands and events.

mod control;
pub mod digit_reading;
mod event;
pub mod generative;
pub mod generative_views;
pub mod inspect;
pub mod layer_stats;
pub mod lr_finder;
mod metrics;
pub mod optim;
mod prefetch;
mod prepare;
mod session;
pub mod text;
pub mod transfer;
mod worker;

pub use event::{Command, EpochMetrics, Evaluation, Event, RunOrigin, RunRequest, RunStatus, Summary};
pub use metrics::{ClassReport, ClassRow, Confusion};
pub use prefetch::{BatchSource, AHEAD as BATCHES_AHEAD};
pub use session::{device_for, evaluate, evaluate_with_predictions, EpochProgress, Session, StepMetrics};
pub use worker::{cores, resolve_threads, tune_candle_pool, Trainer, Waker, WorkerOptions, STEP_WAKE_INTERVAL};
