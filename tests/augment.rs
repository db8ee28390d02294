//! Augmentation: training batches are transformed, evaluation never is; the pictures depend only
//! on the seed and the position, so a run stopped within an epoch, or forked from an epoch's end,
//! goes on to the numbers of the run that was never interrupted, and the data thread gives the
//! same bits as cutting batches inline.

mod common;

use candle_core::Device;
use gradlab::data::{self, AugmentSpec};
use gradlab::export::{find_checkpoint, Which};
use gradlab::record::load_run;
use gradlab::train::{RunOrigin, RunRequest, RunStatus, Session};
use gradlab::Preset;

fn augment() -> AugmentSpec {
    AugmentSpec {
        flip: true,
        rotate: 10.0,
        shift: 2,
        noise: 0.05,
        brightness: 0.2,
        contrast: 0.2,
        cutout: 6,
        ..AugmentSpec::default()
    }
}

fn small_preset() -> Preset {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.title = "augmented resume test".into();
    p.data.limit = 1200;
    p.train.epochs = 3;
    p.train.threads = 1;
    p.augment = augment();
    p
}

#[test]
fn an_augmented_run_resumed_within_an_epoch_or_forked_at_its_end_equals_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let a = common::run_request(RunRequest { preset: small_preset(), origin: RunOrigin::Fresh }, Some(&whole));
    assert_eq!(a.summary.unwrap().status, RunStatus::Completed);
    let whole_run = common::only_run(&whole);

    // stopped a few batches into the second epoch: the newest checkpoint is within the epoch
    let run = common::stop_in_second_epoch_and_resume(&small_preset(), &dir.path().join("cut"));
    assert_eq!(common::epoch_figures(&run), common::epoch_figures(&whole_run));
    assert_eq!(load_run(&run).unwrap().steps, load_run(&whole_run).unwrap().steps);

    // a new run from the end of epoch 1 with the same preset trains epochs 2 and 3 as the whole did
    let ckpt = find_checkpoint(&whole_run, Which::Epoch(1)).unwrap();
    let fork = common::run_request(RunRequest { preset: small_preset(), origin: RunOrigin::Fork(ckpt) }, None);
    let figures = |m: &gradlab::train::EpochMetrics| (m.epoch, m.train_loss, m.validation.loss, m.validation.accuracy);
    let whole_epochs = load_run(&whole_run).unwrap().epochs;
    assert_eq!(
        fork.epochs.iter().map(figures).collect::<Vec<_>>(),
        whole_epochs[1..].iter().map(figures).collect::<Vec<_>>()
    );

    // and augmentation did change the training: the same run without it has other numbers
    let mut plain = small_preset();
    plain.augment = AugmentSpec::default();
    plain.train.epochs = 1;
    let plain = common::train(plain);
    assert_ne!(plain.epochs[0].train_loss, whole_epochs[0].train_loss);
}

fn session(augment: AugmentSpec) -> Session {
    let mut p = small_preset();
    p.augment = augment;
    let data = data::load(&p.data, p.seed).unwrap();
    Session::new(p, data, Device::Cpu).unwrap()
}

#[test]
fn training_batches_are_augmented_and_evaluation_is_not() {
    let mut plain = session(AugmentSpec::default());
    let mut augmented = session(augment());
    let (p, a) = (plain.batches.take(0, 0).unwrap(), augmented.batches.take(0, 0).unwrap());
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        values(&p.targets.to_dtype(candle_core::DType::F32).unwrap()),
        values(&a.targets.to_dtype(candle_core::DType::F32).unwrap())
    );
    assert_eq!(p.inputs.dims(), a.inputs.dims());
    let (p, a) = (values(&p.inputs), values(&a.inputs));
    let changed = p.iter().zip(&a).filter(|(x, y)| x != y).count();
    assert!(changed > p.len() / 2, "{changed} of {} values changed", p.len());
    // the same seed gives the same initial weights: evaluation sees the same unaugmented images
    let (ep, ea) =
        (plain.evaluate(&plain.data.validation).unwrap(), augmented.evaluate(&augmented.data.validation).unwrap());
    assert_eq!(ep.loss.to_bits(), ea.loss.to_bits());
}

#[test]
fn the_data_thread_gives_the_bits_of_inline_batches_across_epochs_and_seeks() {
    let trace = |threaded: bool| {
        let mut s = session(augment());
        s.batches.threaded = threaded;
        let mut losses = vec![];
        for _ in 0..2 {
            while !s.epoch_done() {
                losses.push(s.train_batch().unwrap().loss.to_bits());
            }
            s.finish_epoch(0.0).unwrap();
        }
        // back to batch 4 of epoch 2 (what a resume does): its batch is cut again for that position
        let state = gradlab::record::CheckpointState {
            epoch: 1,
            batch: 4,
            rng: s.rng.clone(),
            base_learning_rate: s.base_learning_rate,
            epoch_progress: gradlab::train::EpochProgress::default(),
            optimizer_steps: 0,
            best_epoch: None,
            best_validation_accuracy: None,
            validation_accuracy: 0.0,
            samples_seen: 0,
            train_time_s: 0.0,
            elapsed_s: 0.0,
        };
        s.seek(&state);
        losses.push(s.train_batch().unwrap().loss.to_bits());
        losses
    };
    assert_eq!(trace(true), trace(false));
}

#[test]
fn augmentation_of_data_that_are_not_images_is_refused_naming_the_table() {
    let text = "[data]\nset = \"iris\"\n[model]\nkind = \"mlp\"\nhidden = [8]\n[augment]\nflip = true\n";
    let e = Preset::from_toml(text, "my.toml").unwrap_err().to_string();
    assert!(e.contains("`augment`") && e.contains("`iris` is not an image set"), "{e}");
    let text = "[augment]\nrotate = 200\n";
    let e = Preset::from_toml(text, "my.toml").unwrap_err().to_string();
    assert!(e.contains("`augment.rotate`") && e.contains("between 0 and 180"), "{e}");
    let text = "[augment]\nshift = 28\n";
    let e = Preset::from_toml(text, "my.toml").unwrap_err().to_string();
    assert!(e.contains("`augment.shift`") && e.contains("(28)"), "{e}");
    // a preset without the table writes none, so old presets and run folders read back unchanged
    assert!(!Preset::builtin("mnist_cnn").unwrap().to_toml().contains("augment"));
}

#[test]
fn the_augmented_fashion_preset_learns() {
    if !common::installed("Fashion-MNIST", data::idx::FASHION_MNIST_DIR) {
        return;
    }
    let mut p = Preset::builtin("fashion_mnist_cnn_augmented").unwrap();
    assert!(p.augment.flip && p.augment.shift == 2);
    p.data.limit = 3000;
    p.train.epochs = 2;
    let out = common::train(p);
    let accuracy = common::final_accuracy(&out);
    assert!(accuracy > 0.7, "validation accuracy {accuracy}");
}
