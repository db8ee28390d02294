//! A GAN (two networks, two optimizers, noise from the run's RNG) paused, or stopped and resumed
//! within an epoch, goes on to the numbers of the run that was never interrupted: every step's
//! losses and every epoch's figures.

mod common;

use std::path::Path;
use std::time::Duration;

use gradlab::record::load_run;
use gradlab::train::{Command, Event, RunOrigin, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

/// 540 training digits in batches of 64: 9 batches an epoch.
fn preset() -> Preset {
    let mut p = Preset::builtin("gan_mnist_mlp").unwrap();
    p.train.epochs = 3;
    p.data.limit = 600;
    p.train.threads = 1;
    p.train.checkpoint_minutes = 0.0;
    p
}

/// Starts `request` and answers its events: `on_step` sees each (epoch, batch) and may send.
/// Returns how the run ended and where it paused: (epoch, batch) of each pause.
fn drive(
    trainer: &Trainer,
    request: RunRequest,
    mut on_step: impl FnMut(&Trainer, usize, usize),
) -> (RunStatus, Vec<(usize, usize)>) {
    assert!(trainer.send(Command::Start(Box::new(request))));
    let mut pauses = Vec::new();
    loop {
        match trainer.recv_timeout(Duration::from_secs(300)).expect("the training thread went quiet") {
            Event::Step { epoch, batch, .. } => on_step(trainer, epoch, batch),
            Event::Paused { epoch, batch } => {
                pauses.push((epoch, batch));
                assert!(trainer.send(Command::Resume));
            }
            Event::Finished(s) => return (s.status, pauses),
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
}

type Figures = Vec<(usize, f64, Option<gradlab::train::generative::GanEpoch>)>;

fn epoch_figures(run: &Path) -> Figures {
    load_run(run).unwrap().epochs.iter().map(|m| (m.epoch, m.train_loss, m.gan)).collect()
}

#[test]
fn a_gan_stopped_within_an_epoch_resumes_to_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let whole_dir = dir.path().join("whole");
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(whole_dir.clone())));
    // paused a few batches into the first epoch and resumed at once: the same numbers
    let (status, pauses) =
        drive(&trainer, RunRequest { preset: preset(), origin: RunOrigin::Fresh }, |t, epoch, batch| {
            if (epoch, batch) == (1, 4) {
                assert!(t.send(Command::Pause));
            }
        });
    assert_eq!(status, RunStatus::Completed);
    assert_eq!(pauses.len(), 1, "the run paused once: {pauses:?}");
    let whole = common::only_run(&whole_dir);

    // stopped within the second epoch: its newest checkpoint is within the epoch
    let run = common::stop_in_second_epoch_and_resume(&preset(), &dir.path().join("cut"));

    let resumed = epoch_figures(&run);
    assert_eq!(resumed.len(), 3);
    assert!(resumed.iter().all(|f| f.2.is_some()), "a GAN's epochs have their figures");
    assert_eq!(resumed, epoch_figures(&whole));
    assert_eq!(load_run(&run).unwrap().steps, load_run(&whole).unwrap().steps);
}
