//! The headless CLI: trains presets, validates them, and fails with the key named.

use std::process::Command;

fn gradlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
}

#[test]
fn trains_a_small_preset_and_exits_zero() {
    let out = gradlab().args(["train", "presets/iris_mlp.toml", "--no-record", "--epochs", "5"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("epoch 5/5"), "{stdout}");
    assert!(stdout.contains("final validation"), "{stdout}");
}

#[test]
fn trains_a_builtin_preset_by_name() {
    let out = gradlab().args(["train", "--builtin", "xor_mlp", "--no-record", "--epochs", "2", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gradlab().args(["train", "--builtin", "no_such_preset"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mnist_cnn"));
}

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, text).unwrap();
    let out = gradlab().args(["train"]).arg(&file).arg("--no-record").output().unwrap();
    let check = gradlab().args(["preset", "check"]).arg(&file).output().unwrap();
    assert_eq!(out.status.success(), check.status.success());
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn broken_presets_exit_non_zero_naming_file_and_key() {
    let cases = [
        ("[train]\nbatch_sise = 3\n", "train.batch_sise"),
        ("[train]\nbatch_size = \"big\"\n", "train.batch_size"),
        ("[train]\nbatch_size = 0\n", "train.batch_size"),
        ("[data]\nset = \"mnist-6k\"\n", "data.set"),
        ("[model]\nkind = \"cnn\"\nconv = [{ channels = 8, kernel = 40 }]\n", "model.conv[0].kernel"),
        ("[model]\nkind = \"transformerx\"\n", "model.kind"),
        ("[data]\nset = \"idx\"\npath = \"/no/such/dir\"\n", "data.path"),
        ("seed = 1\n[train\n", ""),
    ];
    for (text, key) in cases {
        let (ok, stderr) = check(text);
        assert!(!ok, "accepted: {text}");
        assert!(stderr.contains("broken.toml") && stderr.contains(key), "for {text:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn every_shipped_preset_checks() {
    for entry in std::fs::read_dir("presets").unwrap() {
        let path = entry.unwrap().path();
        let out = gradlab().args(["preset", "check"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// Runs `gradlab train` on XOR for one epoch on `device`, recording into a fresh folder.
fn train_on(device: &str) -> (std::process::Output, tempfile::TempDir) {
    let runs = tempfile::tempdir().unwrap();
    let out = gradlab()
        .args(["train", "--builtin", "xor_mlp", "--epochs", "1", "-q", "--device", device, "--runs-dir"])
        .arg(runs.path())
        .output()
        .unwrap();
    (out, runs)
}

/// The device a run got is printed at its start and kept in its summary.json.
#[test]
fn the_device_is_printed_and_recorded() {
    for (choice, label) in [("cpu", "CPU"), ("cpu-portable", "CPU (portable path)")] {
        let (out, runs) = train_on(choice);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("device: {label}\n")), "{stdout}");
        let (_, info) = gradlab::record::list_runs(runs.path()).pop().expect("the run is listed");
        assert_eq!(info.device, label);
    }
}

/// No GPU here: `auto` trains on the CPU and says why; `cuda` is an error naming the device and
/// what is missing, never a panic. (On a machine with a working GPU both would train on it.)
#[test]
fn without_a_gpu_auto_uses_the_cpu_and_cuda_fails_clearly() {
    let (out, _runs) = train_on("auto");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    if stdout.contains("device: CUDA 0") {
        return;
    }
    if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
        assert!(stdout.contains("device: CPU (auto: built without CUDA)\n"), "{stdout}");
    } else if !cfg!(feature = "metal") && !gradlab::device::cuda_driver_loads() {
        assert!(stdout.contains("device: CPU (auto: no NVIDIA driver)\n"), "{stdout}");
    } else {
        // a driver but no usable GPU (none, hidden, too old): any reason, still on the CPU
        assert!(stdout.contains("device: CPU (auto: "), "{stdout}");
    }

    let (out, _runs) = train_on("cuda");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    if cfg!(feature = "cuda") && gradlab::device::cuda_driver_loads() {
        assert!(stderr.contains("`cuda`: ") && stderr.contains("train.device = \"auto\""), "{stderr}");
    } else if cfg!(feature = "cuda") {
        let driver = "`cuda`: the NVIDIA driver (libcuda.so.1) could not be loaded";
        assert!(stderr.contains(driver) && stderr.contains("train.device = \"auto\""), "{stderr}");
    } else {
        // the preset is refused before anything loads
        assert!(stderr.contains("`train.device`: `cuda` needs gradlab built with `--features cuda`"), "{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}
