//! The training thread's contract: commands at batch boundaries, events never lost except
//! per-step ones (counted), failures as events.

mod common;

use std::time::Duration;

use gradlab::train::{Command, Event, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

fn small_cnn() -> Preset {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.data.limit = 1000;
    // long enough that Stop always finds it running
    p.train.epochs = 100;
    p
}

#[test]
fn pause_resume_and_stop_take_effect_at_the_next_batch() {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    // queued before the first batch: the run must pause before training anything
    assert!(trainer.send(RunRequest::fresh(small_cnn())));
    assert!(trainer.send(Command::Pause));
    let mut steps = 0;
    loop {
        match trainer.recv_timeout(Duration::from_secs(60)).expect("an event") {
            Event::Step { .. } => steps += 1,
            Event::Paused { epoch, batch } => {
                assert_eq!((epoch, batch, steps), (1, 0, 0));
                break;
            }
            Event::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // nothing happens while paused
    assert!(trainer.recv_timeout(Duration::from_millis(300)).is_none());
    assert!(trainer.send(Command::Resume));
    assert!(matches!(trainer.recv_timeout(Duration::from_secs(10)), Some(Event::Resumed)));
    match trainer.recv_timeout(Duration::from_secs(60)) {
        Some(Event::Step { global_step, .. }) => assert_eq!(global_step, 1),
        other => panic!("expected the first step, got {other:?}"),
    }
    // stop: at most the batch in flight finishes, then the run ends as stopped
    assert!(trainer.send(Command::Stop));
    let mut after_stop = 0;
    loop {
        match trainer.recv_timeout(Duration::from_secs(60)).expect("an event") {
            Event::Step { .. } => after_stop += 1,
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Stopped);
                break;
            }
            Event::Epoch(_) | Event::Predictions(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // steps already queued before Stop was read, plus at most one in flight
    assert!(after_stop <= 9, "{after_stop} steps after stop");
    // the thread takes the next run
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.train.epochs = 2;
    assert!(trainer.send(RunRequest::fresh(p)));
    let out = common::collect(&trainer);
    assert_eq!(out.epochs.len(), 2);
}

#[test]
fn a_slow_receiver_loses_only_step_events_and_they_are_counted() {
    let mut preset = Preset::builtin("xor_mlp").unwrap();
    preset.train.epochs = 40;
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    assert!(trainer.send(RunRequest::fresh(preset)));
    // do not read for a while: the channel fills with steps
    std::thread::sleep(Duration::from_secs(3));
    let out = common::collect(&trainer);
    let summary = out.summary.expect("finished");
    assert_eq!(out.epochs.len(), 40, "every epoch event arrives");
    let batches = 40 * 900usize.div_ceil(16);
    assert_eq!(out.steps as u64 + trainer.dropped_steps(), batches as u64);
    assert!(trainer.dropped_steps() > 0, "the test did not fill the channel");
    assert_eq!(summary.epochs_completed, 40);
}

#[test]
fn bad_data_fails_as_an_event_and_the_thread_lives_on() {
    let mut preset = Preset::builtin("mnist_cnn").unwrap();
    preset.data.set = "idx".into();
    preset.data.path = Some("/nonexistent-folder".into());
    let out = common::train(preset);
    let error = out.failure.expect("fails");
    assert!(error.contains("/nonexistent-folder"), "{error}");
}
