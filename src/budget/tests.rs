use super::*;
use crate::config::Preset;
use crate::model::ModelSpec;

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn limited(mut p: Preset, gb: f64) -> Preset {
    p.train.max_memory_gb = Some(gb);
    p
}

#[test]
fn shipped_presets_estimate_between_runtime_and_a_gigabyte() {
    for (name, _) in crate::config::BUILTIN {
        let p = Preset::builtin(name).unwrap();
        let Some(e) = estimate(&p).unwrap() else {
            continue; // Fashion-MNIST is not installed here
        };
        let peak = mib(e.peak());
        assert!((16.0..1024.0).contains(&peak), "{name}: {}", e.summary());
    }
}

#[test]
fn huge_hidden_layers_are_refused_naming_the_layer() {
    let mut p = Preset::builtin("mnist_mlp").unwrap();
    p.model = ModelSpec::mlp(&[4_000_000_000, 10]);
    let err = check(&limited(p.clone(), 64.0), "x.toml").unwrap_err().to_string();
    assert!(err.starts_with("x.toml: `model.hidden[0]`: this run needs about"), "{err}");
    assert!(err.contains("fc1 is 784 x 4000000000") && err.contains("the limit is 64.0 GiB"), "{err}");
    // a layer made large by a wide layer before it blames that one
    p.model = ModelSpec::mlp(&[100_000, 100_000]);
    let err = check(&limited(p, 1.0), "x.toml").unwrap_err().to_string();
    assert!(err.contains("`model.hidden[1]`") && err.contains("fc2 is 100000 x 100000"), "{err}");
    let mut p = Preset::builtin("mnist_mlp").unwrap();
    p.model = ModelSpec::mlp(&[1_000_000, 10]);
    let err = check(&limited(p, 1.0), "x.toml").unwrap_err().to_string();
    assert!(err.contains("`model.hidden[0]`"), "{err}");
}

#[test]
fn the_optimizer_state_follows_the_optimizer() {
    let mut p = Preset::builtin("mnist_mlp").unwrap();
    p.model = ModelSpec::mlp(&[20_000]); // weights dominate
    let state =
        |p: &Preset| estimate(p).unwrap().unwrap().parts.iter().find(|x| x.what.ends_with("state")).unwrap().bytes;
    let weights = estimate(&p).unwrap().unwrap().parts.iter().find(|x| x.what == "weights").unwrap().bytes;
    p.train.optimizer = crate::config::OptimizerKind::Sgd;
    assert_eq!(state(&p), weights);
    p.train.optimizer = crate::config::OptimizerKind::AdamW;
    assert_eq!(state(&p), 2.0 * weights);
}

#[test]
fn a_large_batch_is_blamed_on_the_batch_size() {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    let small = estimate(&p).unwrap().unwrap().peak();
    p.train.batch_size = 4000;
    let large = estimate(&p).unwrap().unwrap();
    assert!(large.peak() > small + 200.0 * 1024.0 * 1024.0, "{}", large.summary());
    let err = check(&limited(p, 0.2), "x.toml").unwrap_err().to_string();
    assert!(err.contains("`train.batch_size`") && err.contains("batch 4000"), "{err}");
}

#[test]
fn a_huge_feature_map_is_blamed_on_the_padding() {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.model.conv.as_mut().unwrap()[0].padding = 100_000; // fits the arithmetic, not the machine
    let err = check(&limited(p, 64.0), "x.toml").unwrap_err().to_string();
    assert!(err.contains("`model.conv[0].padding`"), "{err}");
}

#[test]
fn many_synthetic_points_are_blamed_on_the_samples() {
    let mut p = Preset::builtin("spiral_mlp").unwrap();
    p.data.samples = crate::data::synthetic::MAX_SAMPLES;
    let err = check(&limited(p, 0.1), "x.toml").unwrap_err().to_string();
    assert!(err.contains("`data.samples`") && err.contains("loading"), "{err}");
}

#[test]
fn the_limit_is_the_setting_or_the_machine() {
    let p = Preset::builtin("iris_mlp").unwrap();
    assert!(check(&p, "x").unwrap().is_some(), "iris fits any machine");
    let (bytes, text) = limit(&limited(p.clone(), 2.0));
    assert_eq!(bytes, 2.0 * 1024f64.powi(3));
    assert!(text.contains("max_memory_gb"));
    let err = check(&limited(p, 0.001), "x.toml").unwrap_err().to_string();
    assert!(err.contains("this run needs about") && err.contains("--max-memory"), "{err}");
}

#[test]
fn unknown_idx_sizes_are_left_to_the_loader() {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.data.set = "idx".into();
    p.data.path = Some("/no/such/folder".into());
    assert_eq!(estimate(&p).unwrap(), None);
}

#[test]
fn idx_sizes_come_from_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let images = crate::data::idx::IdxImages { count: 300, rows: 12, cols: 10, pixels: vec![7; 300 * 120] };
    crate::data::idx::write_images(&dir.path().join("train-images-idx3-ubyte.gz"), &images, true).unwrap();
    crate::data::idx::write_labels(&dir.path().join("train-labels-idx1-ubyte"), &[1; 300], false).unwrap();
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.data.set = "idx".into();
    p.data.path = Some(dir.path().to_path_buf());
    let size = data_size(&p).unwrap();
    assert_eq!((size.samples, size.input_shape.clone()), (300.0, vec![1, 12, 10]));
    assert!(estimate(&p).unwrap().is_some());
}

#[test]
fn a_gan_counts_its_discriminator_and_blames_its_keys() {
    let p = Preset::builtin("gan_mnist_mlp").unwrap();
    let with = estimate(&p).unwrap().unwrap();
    let mut alone = p.clone();
    alone.discriminator = None;
    let without = estimate(&alone).unwrap().unwrap();
    // the discriminator's 0.5 M weights, their gradients and Adam's two moments at least
    assert!(with.peak() - without.peak() > 4.0 * 4.0 * 500_000.0, "{} vs {}", with.summary(), without.summary());
    let mut big = p.clone();
    let LayerSpec::Dense(d) = &mut big.discriminator.as_mut().unwrap().layers[1] else { panic!("a dense layer") };
    d.units = Some(4_000_000);
    let err = check(&limited(big, 1.0), "x.toml").unwrap_err().to_string();
    assert!(err.starts_with("x.toml: `") && err.contains("this run needs about"), "{err}");
    assert!(err.contains("the discriminator's fc1 is 784 x 4000000"), "{err}");
    // a weight too large to plan is named in the discriminator's own keys
    let mut huge = p.clone();
    let LayerSpec::Dense(d) = &mut huge.discriminator.as_mut().unwrap().layers[1] else { panic!("a dense layer") };
    d.units = Some(usize::MAX / 2);
    let err = check(&huge, "x.toml").unwrap_err().to_string();
    assert!(err.contains("discriminator.layers[1]"), "{err}");
}
