//! Presets: every shipped one is valid, saving and loading round-trips, and each kind of mistake
//! is reported with the file, the key and what is expected.

use gradlab::config::{ScheduleKind, BUILTIN};
use gradlab::Preset;

fn error_of(text: &str) -> String {
    match Preset::from_toml(text, "my.toml") {
        Ok(p) => panic!("accepted {text:?} as {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(text: &str, key: &str, expected: &str) {
    let e = error_of(text);
    assert!(e.starts_with("my.toml: "), "{e}");
    assert!(e.contains(&format!("`{key}`")), "expected key {key} in: {e}");
    assert!(e.contains(expected), "expected {expected:?} in: {e}");
}

#[test]
fn shipped_presets_are_valid_and_round_trip() {
    for (name, _) in BUILTIN {
        let p = Preset::builtin(name).unwrap();
        assert!(!p.title.is_empty() && !p.description.is_empty(), "{name}");
        let again = Preset::from_toml(&p.to_toml(), "again.toml").unwrap();
        assert_eq!(p, again, "{name} round-trips");
    }
    // every file in presets/ is built in, and the other way round
    let files = std::fs::read_dir("presets").unwrap().count();
    assert_eq!(files, BUILTIN.len());
}

#[test]
fn saving_writes_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Preset::builtin("fashion_mnist_cnn").unwrap();
    p.train.schedule.kind = ScheduleKind::Cosine;
    p.train.schedule.warmup_epochs = 1.0;
    p.train.weight_decay = 5e-4;
    p.model.dropout = 0.25;
    p.data.noise = 0.15;
    let file = dir.path().join("x.toml");
    p.save(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("noise = 0.15\n"), "values are written as typed:\n{text}");
    assert_eq!(Preset::load(&file).unwrap(), p);
}

#[test]
fn unknown_keys_are_named_with_their_table() {
    assert_names("[train]\nlearnig_rate = 0.1\n", "train.learnig_rate", "unknown field");
    assert_names("[model]\nhiden = [3]\n", "model.hiden", "expected one of");
    assert_names("colour = 1\n", "colour", "unknown field");
    assert_names("[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernal = 3 }]\n", "model.conv", "kernal");
}

#[test]
fn wrong_types_are_named() {
    assert_names("[train]\nbatch_size = \"64\"\n", "train.batch_size", "invalid type");
    assert_names("[train]\nepochs = -3\n", "train.epochs", "invalid value");
    assert_names("[model]\nactivation = \"swish\"\n", "model.activation", "relu");
    assert_names("[train]\noptimizer = \"adagrad\"\n", "train.optimizer", "adam");
    assert_names("seed = 1.5\n", "seed", "invalid type");
}

#[test]
fn impossible_values_are_named() {
    assert_names("[train]\nbatch_size = 0\n", "train.batch_size", "at least 1");
    assert_names("[train]\nepochs = 0\n", "train.epochs", "at least 1");
    assert_names("[train]\nlearning_rate = 0.0\n", "train.learning_rate", "positive");
    assert_names("[train]\nmomentum = 1.5\n", "train.momentum", "[0, 1)");
    assert_names("[data]\nvalidation_fraction = 1.0\n", "data.validation_fraction", "between 0 and 1");
    assert_names("[data]\nset = \"cifar-100\"\n", "data.set", "mnist-5k");
    assert_names("[data]\nset = \"idx\"\n", "data.path", "folder");
    assert_names("[data]\nset = \"idx\"\npath = \"/no/such/folder\"\n", "data.path", "does not exist");
    assert_names("[data]\nset = \"spiral\"\nsamples = 3\n", "data.samples", "at least 10");
    assert_names("[model]\ndropout = 1.0\n", "model.dropout", "probability");
    assert_names("[model]\nkind = \"mlp\"\nhidden = [64, 0]\n", "model.hidden[1]", "at least 1 unit");
    assert_names("[train.schedule]\nwarmup_epochs = 50.0\n", "train.schedule.warmup_epochs", "number of epochs");
}

#[test]
fn shapes_that_do_not_fit_are_named() {
    // kernel larger than the image, after pooling shrinks it
    let text = "[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernel = 3, pool = 2 }, { channels = 8, kernel = 3, pool = 2 }, { channels = 8, kernel = 7 }]\n";
    assert_names(text, "model.conv[2].kernel", "does not fit the 5x5 input");
    // a CNN on a table
    assert_names(
        "[data]\nset = \"wine\"\n[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernel = 3 }]\n",
        "model.kind",
        "image",
    );
    // pooling past a 1x1 map
    let text = "[data]\nset = \"digits\"\n[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernel = 3, pool = 2 }, { channels = 8, kernel = 3, pool = 2 }]\n";
    assert_names(text, "model.conv[1].pool", "larger than the 1x1 feature map");
}

#[test]
fn syntax_errors_give_the_line() {
    let e = error_of("seed = 1\n[train\nepochs = 3\n");
    assert!(e.contains("my.toml") && e.contains("line 2"), "{e}");
}
