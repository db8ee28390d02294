//! Hostile presets: sizes that would overflow or could never fit are refused by `preset check`
//! and by `train` with the key named, before anything large is allocated.

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test: this build's, or another (`GRADLAB_BIN=target/release/gradlab`, to
/// check the release build).
fn binary() -> std::ffi::OsString {
    std::env::var_os("GRADLAB_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_gradlab").into())
}

fn gradlab() -> Command {
    Command::new(binary())
}

/// Runs gradlab with its address space capped at 4 GiB: a run that tried to allocate what the
/// preset asks for would die in the allocator instead of giving the clear error.
fn capped(args: &[&str], file: &Path) -> Output {
    let mut cmd = if cfg!(target_os = "linux") {
        let mut c = Command::new("sh");
        c.arg("-c").arg("ulimit -v 4194304 && exec \"$@\"").arg("gradlab").arg(binary());
        c
    } else {
        gradlab()
    };
    cmd.args(args).arg(file).output().unwrap()
}

/// `preset check` and `train` on the same text; both must fail naming the key.
fn refused(text: &str, key: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.toml");
    std::fs::write(&file, text).unwrap();
    let runs = dir.path().join("runs");
    for args in [&["preset", "check"][..], &["train", "--runs-dir", runs.to_str().unwrap(), "--"][..]] {
        let out = capped(args, &file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted {text:?}: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(1), "{args:?} {text:?} did not exit cleanly: {stderr}");
        assert!(stderr.contains("hostile.toml") && stderr.contains(&format!("`{key}`")), "{args:?} {text:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?} {text:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!runs.exists(), "a refused run left a run directory");
}

#[test]
fn the_measured_hostile_presets_are_refused_naming_the_key() {
    // each of these passed the check before, and then ate the machine, aborted or trained
    refused(
        "[model]\nkind = \"mlp\"\nhidden = [4000000000, 4000000000]\n",
        "model.hidden[1]",
        "4000000000 x 4000000000",
    );
    refused(
        "[data]\nset = \"spiral\"\nsamples = 100000000000000\n[model]\nkind = \"mlp\"\n",
        "data.samples",
        "too many",
    );
    refused(
        "[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernel = 3, padding = 9223372036854775807 }]\n",
        "model.conv[0].padding",
        "overflows",
    );
}

#[test]
fn sizes_that_overflow_or_cannot_fit_are_refused_naming_the_key() {
    let conv = |c: &str| format!("[model]\nkind = \"cnn\"\nconv = [{{ {c} }}]\n");
    refused(&conv("kernel = 9223372036854775807"), "model.conv[0].kernel", "does not fit");
    refused(&conv("kernel = 2305843009213693951, padding = 2305843009213693951"), "model.conv[0].kernel", "too large");
    refused(&conv("padding = 4611686018427387903"), "model.conv[0].padding", "too large");
    refused(&conv("channels = 9223372036854775807"), "model.conv[0].channels", "too large");
    refused(&conv("pool = 9223372036854775807"), "model.conv[0].pool", "larger than");
    refused(&conv("stride = 0"), "model.conv[0].stride", "at least 1");
    // countable, but far beyond any machine: the memory estimate refuses them
    refused("[model]\nkind = \"mlp\"\nhidden = [4000000000]\n", "model.hidden[0]", "this run needs about");
    refused(&conv("channels = 8, padding = 100000"), "model.conv[0].padding", "this run needs about");
    refused("[train]\nbatch_size = 5000\nmax_memory_gb = 0.1\n", "train.batch_size", "the limit is 102 MiB");
}

#[test]
fn preset_check_prints_the_estimate_and_max_memory_overrides_the_machine() {
    let out = gradlab().args(["preset", "check", "presets/mnist_cnn.toml"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("estimated peak memory") && stdout.contains("available"), "{stdout}");
    let out = gradlab().args(["preset", "check", "presets/mnist_cnn.toml", "--max-memory", "20M"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("this run needs about") && stderr.contains("the limit is 20.0 MiB"), "{stderr}");
    let out = gradlab().args(["train", "presets/iris_mlp.toml", "--no-record", "--max-memory", "2M"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-memory"));
}

#[test]
fn resume_refuses_a_run_that_no_longer_fits() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let out = gradlab()
        .args(["train", "presets/iris_mlp.toml", "--epochs", "1", "-q", "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    // the training thread itself checks, before it loads the data
    let out = gradlab().args(["resume", "--max-memory", "1M"]).arg(&run).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("training failed") && stderr.contains("this run needs about"), "{stderr}");
}

#[test]
fn a_batch_larger_than_the_data_trains_as_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big_batch.toml");
    let text = "[data]\nset = \"iris\"\n[model]\nkind = \"mlp\"\nhidden = [8]\n[train]\nbatch_size = 9223372036854775807\nepochs = 2\n";
    std::fs::write(&file, text).unwrap();
    let out = capped(&["train", "--no-record"], &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("epoch 2/2"), "{stdout}");
}
