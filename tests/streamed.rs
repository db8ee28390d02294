//! Training on a streamed split (`data.stream = true`: rows read from the disk cache as the data
//! thread cuts each batch) gives the numbers of the same set held in memory, with and without
//! augmentation, and a streamed run stopped within an epoch resumes to the numbers of the run
//! that was never interrupted.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gradlab::data::{cifar, AugmentSpec};
use gradlab::record::{self, load_run};
use gradlab::train::{RunOrigin, RunRequest, RunStatus};
use gradlab::Preset;

/// A CIFAR-10 folder in the real binary format (60 records per file: 270 training images, 30
/// for validation, 60 for test) and the disk cache, shared by the tests of this file.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        cifar::write_fixture(&dir.path().join("cifar"), 60, 3).unwrap();
        std::env::set_var("GRADLAB_CACHE_DIR", dir.path().join("cache"));
        dir
    })
    .path()
}

fn preset(stream: bool, augment: bool) -> Preset {
    let text = r#"
title = "streamed"
seed = 5
[data]
set = "cifar10"
validation_fraction = 0.1
[model]
layers = [
  { type = "conv2d", channels = 8, kernel = 3, padding = 1, activation = "relu" },
  { type = "maxpool", size = 2 },
  { type = "flatten" },
  { type = "dense", units = 10 },
]
[train]
optimizer = "adam"
learning_rate = 0.002
batch_size = 32
epochs = 3
threads = 1
"#;
    let mut p = Preset::from_toml(text, "test").unwrap();
    p.data.path = Some(data_dir().join("cifar"));
    p.data.stream = Some(stream);
    if augment {
        p.augment = AugmentSpec { flip: true, shift: 2, noise: 0.05, cutout: 6, ..AugmentSpec::default() };
    }
    p
}

/// A whole recorded run of `p` under `runs`.
fn recorded(p: Preset, runs: &Path) -> PathBuf {
    let outcome = common::run_request(RunRequest { preset: p, origin: RunOrigin::Fresh }, Some(runs));
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert_eq!(outcome.summary.unwrap().status, RunStatus::Completed);
    common::only_run(runs)
}

#[test]
fn a_streamed_set_trains_to_the_numbers_of_the_set_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for augment in [false, true] {
        let at = |name: &str| dir.path().join(format!("{name}-{augment}"));
        let memory = recorded(preset(false, augment), &at("memory"));
        let streamed = recorded(preset(true, augment), &at("streamed"));
        let info = record::DataInfo::read(&streamed).unwrap();
        assert!(info.source.contains("streamed"), "the run streamed: {}", info.source);
        assert_eq!(common::epoch_figures(&streamed), common::epoch_figures(&memory));
        assert_eq!(load_run(&streamed).unwrap().steps, load_run(&memory).unwrap().steps);
        assert_eq!(load_run(&streamed).unwrap().epochs.len(), 3);
    }
}

#[test]
fn a_streamed_run_stopped_within_an_epoch_resumes_to_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let whole = recorded(preset(true, true), &dir.path().join("whole"));

    let run = common::stop_in_second_epoch_and_resume(&preset(true, true), &dir.path().join("cut"));
    assert_eq!(common::epoch_figures(&run), common::epoch_figures(&whole));
    assert_eq!(load_run(&run).unwrap().steps, load_run(&whole).unwrap().steps);
}
