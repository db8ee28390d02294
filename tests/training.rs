//! Real training on real data, through the training thread: the accuracies such models are
//! known to reach, reproducibility, and failures that end a run cleanly.

mod common;

use common::{final_accuracy, train};
use gradlab::model::ModelSpec;
use gradlab::Preset;

#[test]
fn mnist_cnn_preset_reaches_93_percent() {
    // PyTorch, same model and data, 10 epochs, three seeds: 94.4-96.0%
    let preset = Preset::builtin("mnist_cnn").unwrap();
    assert_eq!(preset.train.epochs, 10);
    let out = train(preset);
    let acc = final_accuracy(&out);
    let s = out.summary.as_ref().unwrap();
    eprintln!("MNIST CNN: validation accuracy {:.2}%, {:.0} samples/s", 100.0 * acc, s.samples_per_s);
    assert_eq!(out.epochs.len(), 10);
    assert_eq!(out.epochs[0].validation.confusion.total(), 500);
    assert!(acc >= 0.93, "validation accuracy {acc}");
}

#[test]
fn mlp_on_spiral_reaches_95_percent() {
    let out = train(Preset::builtin("spiral_mlp").unwrap());
    let acc = final_accuracy(&out);
    eprintln!("spiral MLP: {:.2}%", 100.0 * acc);
    assert!(acc >= 0.95, "validation accuracy {acc}");
}

#[test]
fn iris_reaches_90_percent() {
    let out = train(Preset::builtin("iris_mlp").unwrap());
    let acc = final_accuracy(&out);
    eprintln!("iris MLP: {:.2}%", 100.0 * acc);
    assert!(acc >= 0.90, "validation accuracy {acc}");
}

#[test]
fn small_tabular_and_2d_presets_learn() {
    for (name, floor) in [
        ("wine_mlp", 0.9),
        ("breast_cancer_mlp", 0.9),
        ("moons_mlp", 0.95),
        ("circles_mlp", 0.95),
        ("xor_mlp", 0.9),
        ("digits_mlp", 0.93),
    ] {
        let acc = final_accuracy(&train(Preset::builtin(name).unwrap()));
        eprintln!("{name}: {:.2}%", 100.0 * acc);
        assert!(acc >= floor, "{name}: validation accuracy {acc}");
    }
}

#[test]
fn same_seed_same_numbers() {
    let mut preset = Preset::builtin("mnist_cnn").unwrap();
    preset.train.epochs = 2;
    preset.data.limit = 1000;
    preset.model.dropout = 0.0;
    let a = train(preset.clone());
    let b = train(preset.clone());
    let losses = |o: &common::Outcome| {
        o.epochs.iter().map(|m| (m.train_loss, m.validation.loss, m.validation.accuracy)).collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
    preset.seed += 1;
    let c = train(preset);
    assert_ne!(losses(&a), losses(&c));
}

#[test]
fn dropout_runs_are_reproducible_too() {
    let mut preset = Preset::builtin("breast_cancer_mlp").unwrap();
    preset.train.epochs = 3;
    assert!(preset.model.dropout > 0.0);
    let a = train(preset.clone());
    let b = train(preset);
    assert_eq!(
        a.epochs.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
        b.epochs.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
}

#[test]
fn exploding_loss_fails_the_run_with_a_reason() {
    let mut preset = Preset::builtin("breast_cancer_mlp").unwrap();
    preset.train.optimizer = gradlab::config::OptimizerKind::Sgd;
    preset.train.learning_rate = 10.0;
    preset.train.momentum = 0.99;
    preset.model = ModelSpec { hidden: vec![256, 256, 256], dropout: 0.0, ..ModelSpec::mlp(&[]) };
    let out = train(preset);
    let error = out.failure.expect("the run should fail");
    assert!(error.contains("loss became") && error.contains("epoch"), "{error}");
}

#[test]
fn a_cnn_on_tabular_data_is_refused_with_the_key() {
    let mut preset = Preset::builtin("iris_mlp").unwrap();
    preset.model = ModelSpec::default();
    let e = preset.validate("test.toml").unwrap_err().to_string();
    assert!(e.contains("test.toml") && e.contains("model.layers[0]") && e.contains("image"), "{e}");
    // the older form names its `kind`
    preset.model = ModelSpec { kind: Some(gradlab::model::ModelKind::Cnn), ..ModelSpec::mlp(&[]) };
    let e = preset.validate("test.toml").unwrap_err().to_string();
    assert!(e.contains("test.toml") && e.contains("model.kind") && e.contains("image"), "{e}");
}
