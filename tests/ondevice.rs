//! The optimizer on the device (issue 13), checked through `cpu-portable`, the GPU path's ops on
//! the CPU: a run keeps its optimizer state on the device between checkpoints, a checkpoint
//! carries it to the host and back, and a run stopped within an epoch resumes to the numbers of
//! the run that was never interrupted.

mod common;

use gradlab::config::DeviceKind;
use gradlab::data;
use gradlab::device::Compute;
use gradlab::record::load_run;
use gradlab::train::Session;
use gradlab::Preset;

/// 1,080 training digits in batches of 128 (9 an epoch), Adam with gradient clipping, a
/// checkpoint after every batch, on the portable path.
fn portable_mlp() -> Preset {
    let mut p = Preset::builtin("mnist_mlp").unwrap();
    p.title = "portable resume test".into();
    p.data.limit = 1200;
    p.train.epochs = 3;
    p.train.threads = 1;
    p.train.clip_grad_norm = 0.5;
    p.train.checkpoint_minutes = 0.0;
    p.train.device = DeviceKind::CpuPortable;
    p
}

#[test]
fn a_cpu_portable_run_stopped_within_an_epoch_resumes_to_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let whole = common::completed_run(&portable_mlp(), &dir.path().join("whole"));

    let run = common::stop_in_second_epoch_and_resume(&portable_mlp(), &dir.path().join("cut"));
    assert_eq!(common::epoch_figures(&run), common::epoch_figures(&whole));
    assert_eq!(load_run(&run).unwrap().steps, load_run(&whole).unwrap().steps);
    // and the run did learn (a resume that lost Adam's moments would still "match" a broken run)
    let accuracy = load_run(&run).unwrap().epochs.last().unwrap().validation.accuracy;
    assert!(accuracy > 0.8, "validation accuracy {accuracy}");
}

/// A GAN holds two optimizers, the discriminator's under its own prefix in a checkpoint.
#[test]
fn a_cpu_portable_gan_stopped_within_an_epoch_resumes_to_the_uninterrupted_numbers() {
    let mut p = Preset::builtin("gan_mnist_mlp").unwrap();
    p.train.epochs = 3;
    p.data.limit = 600;
    p.train.threads = 1;
    p.train.checkpoint_minutes = 0.0;
    p.train.device = DeviceKind::CpuPortable;
    let dir = tempfile::tempdir().unwrap();
    let whole = load_run(&common::completed_run(&p, &dir.path().join("whole"))).unwrap();

    let run = load_run(&common::stop_in_second_epoch_and_resume(&p, &dir.path().join("cut"))).unwrap();
    let figures = |r: &gradlab::record::RunData| r.epochs.iter().map(|m| (m.train_loss, m.gan)).collect::<Vec<_>>();
    assert!(run.epochs.iter().all(|m| m.gan.is_some()));
    assert_eq!(figures(&run), figures(&whole));
    assert_eq!(run.steps, whole.steps);
}

#[test]
fn a_portable_session_keeps_the_optimizer_state_on_the_device_and_tracks_the_cpu() {
    let preset = portable_mlp();
    let data = data::load(&preset.data, preset.seed).unwrap();
    let mut portable = Session::new(preset.clone(), data.clone(), Compute::cpu_portable()).unwrap();
    let mut cpu = Session::new(preset, data, Compute::cpu()).unwrap();
    assert!(portable.optimizer.portable && !cpu.optimizer.portable);
    for _ in 0..6 {
        let (a, b) = (portable.train_batch().unwrap(), cpu.train_batch().unwrap());
        // the layers' portable forms round differently from the fused ones: close, not equal
        assert!((a.loss - b.loss).abs() <= 1e-3 * b.loss, "step {}: {} vs {}", a.batch, a.loss, b.loss);
        assert!(a.correct.abs_diff(b.correct) <= 1, "step {}: {} vs {} correct", a.batch, a.correct, b.correct);
    }
    // host_copies counts the optimizer's own state copies only (not the step's loss read, nor
    // anything the layers do): the steps moved no moment to the host and back
    assert_eq!(portable.optimizer.host_copies(), 0, "six steps copied optimizer state to the host");
    assert!(portable.optimizer.state_on_device() && !cpu.optimizer.state_on_device());
    // a checkpoint is where the state comes to the host: m and v of each of the six tensors
    let moments = portable.optimizer.host_state().unwrap();
    assert_eq!(portable.optimizer.host_copies(), 12);
    assert!(moments.iter().zip(portable.net.params()).all(|(s, (_, var))| s.v.len() == var.elem_count()));
}

/// A GAN's discriminator has its own optimizer: it takes the portable path too.
#[test]
fn a_portable_gans_two_optimizers_keep_their_state_on_the_device() {
    let mut preset = Preset::builtin("gan_mnist_mlp").unwrap();
    preset.data.limit = 300;
    let data = data::load(&preset.data, preset.seed).unwrap();
    let mut session = Session::new(preset, data, Compute::cpu_portable()).unwrap();
    for _ in 0..3 {
        let step = session.train_batch().unwrap();
        let gan = step.gan.unwrap();
        assert!(gan.d_loss == step.loss && gan.g_loss > 0.0 && (0.0..=1.0).contains(&gan.d_real));
    }
    let discriminator = &session.adversary.as_ref().unwrap().optimizer;
    for (who, optimizer) in [("generator", &session.optimizer), ("discriminator", discriminator)] {
        assert!(optimizer.portable && optimizer.state_on_device(), "the {who}'s state is on the device");
        assert_eq!(optimizer.host_copies(), 0, "the {who}'s steps copied state to the host");
    }
}

/// `gradlab bench --device` trains where it says and prints the device's label; a device this
/// build cannot open is an error naming it, not a panic.
#[test]
fn the_benchmark_runs_on_the_device_it_is_given_and_names_it() {
    let bench = |device: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
            .args(["bench", "--models", "gan", "--batches", "2", "--no-reference", "--threads", "1"])
            .args(["--device", device])
            .output()
            .unwrap()
    };
    let out = bench("cpu-portable");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().next().unwrap().contains("CPU (portable path)"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("gan ")), "{stdout}");
    if !cfg!(feature = "cuda") {
        let out = bench("cuda:1");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("`cuda:1`") && !stderr.contains("panicked"), "{stderr}");
    }
    let out = bench("gpu");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("`gpu` is not a device"));
}
