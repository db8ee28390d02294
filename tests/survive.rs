//! Runs that survive: killed at random moments (SIGKILL, again and again) a run reads back and
//! resumes to the numbers of a run never interrupted; one process writes a run at a time; a
//! full disk or a read-only runs folder stops training with a clear error; a run whose setup
//! fails says so; a rename sticks while the run goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gradlab::record::{self, load_run};
use gradlab::rng::Rng;
use gradlab::train::{Command as TrainCommand, Event, RunOrigin, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

fn gradlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
}

/// A CNN run of a few seconds that writes a checkpoint within its epochs every ~30 ms.
fn kill_preset() -> Preset {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.title = "kill test".into();
    p.data.limit = 800;
    p.train.batch_size = 16;
    p.train.epochs = 3;
    p.train.threads = 1;
    p.train.checkpoint_minutes = 0.0005;
    p
}

/// Everything a resumed run must reproduce: per epoch the losses, accuracies and confusion
/// matrix, and every step's loss.
fn figures(run: &Path) -> (Vec<common::EpochFigures>, Vec<[f64; 2]>) {
    (common::epoch_figures(run), load_run(run).unwrap().steps)
}

fn only_run(runs_dir: &Path) -> Option<PathBuf> {
    let runs = record::list_runs(runs_dir);
    assert!(runs.len() <= 1, "one run in {}", runs_dir.display());
    runs.first().map(|(d, _)| d.clone())
}

/// Waits `delay` for the child, then kills it. True when it was killed (not already done).
fn kill_after(mut child: Child, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            if !status.success() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
                panic!("the run failed instead of being killed: {stderr}");
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    killed
}

#[test]
fn fifty_random_kills_lose_nothing_and_resume_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let preset_file = dir.path().join("kill.toml");
    kill_preset().save(&preset_file).unwrap();
    let whole = dir.path().join("whole");
    let started = Instant::now();
    let out = gradlab().arg("train").arg(&preset_file).arg("--runs-dir").arg(&whole).arg("-q").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole_run = only_run(&whole).unwrap();
    let reference = figures(&whole_run);
    assert_eq!(reference.0.len(), 3);
    let run_time = started.elapsed();

    let mut rng = Rng::new(2026);
    let (mut kills, mut completed, mut attempt, mut within_epoch) = (0, 0, 0, 0);
    while kills < 50 || completed == 0 {
        attempt += 1;
        let runs = dir.path().join(format!("cut-{attempt}"));
        let mut kills_of_this_run = 0;
        loop {
            // kill anywhere from before the data is loaded to past the end of the run; after a
            // few kills let it finish, so a slow machine cannot keep it from ending
            let delay = if kills_of_this_run < 6 {
                run_time.mul_f64(f64::from(rng.uniform()) * 0.6)
            } else {
                Duration::from_secs(600)
            };
            let mut command = gradlab();
            match only_run(&runs) {
                None => command.arg("train").arg(&preset_file).arg("--runs-dir").arg(&runs),
                Some(run) => command.arg("resume").arg(run),
            };
            let child = command.arg("-q").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            if !kill_after(child, delay) {
                break;
            }
            kills += 1;
            kills_of_this_run += 1;
            // what the killed process left reads back: an interrupted run, its last checkpoint
            if let Some(run) = only_run(&runs) {
                let data = load_run(&run).unwrap();
                if data.info.status == RunStatus::Completed {
                    break; // killed between writing its end and exiting
                }
                assert_eq!(data.info.status, RunStatus::Interrupted, "after kill {kills}");
                if let Some(ckpt) = record::latest_checkpoint(&run) {
                    if record::read_checkpoint(&ckpt).unwrap().state.batch > 0 {
                        within_epoch += 1;
                    }
                }
            }
        }
        let run = only_run(&runs).unwrap();
        assert_eq!(load_run(&run).unwrap().info.status, RunStatus::Completed);
        let got = figures(&run);
        for (a, b) in got.0.iter().zip(&reference.0) {
            assert_eq!(a, b, "run {attempt}, after {kills} kills so far: epoch {} differs", b.0);
        }
        let first_diff = got.1.iter().zip(&reference.1).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "run {attempt}: step losses differ");
        assert_eq!((got.0.len(), got.1.len()), (reference.0.len(), reference.1.len()));
        let brief = |i: record::RunInfo| {
            (i.epochs_completed, i.best_epoch, i.best_validation_accuracy, i.final_validation_accuracy, i.test_accuracy)
        };
        assert_eq!(brief(record::RunInfo::read(&run).unwrap()), brief(record::RunInfo::read(&whole_run).unwrap()));
        completed += 1;
    }
    eprintln!(
        "{kills} SIGKILLs over {completed} runs ({within_epoch} resumed from within an epoch): every run \
         resumed to the uninterrupted numbers"
    );
    assert!(within_epoch >= 10, "only {within_epoch} kills left a checkpoint within an epoch");
}

/// Starts a CLI run that goes on for a while and waits until its folder is there. The caller
/// kills and waits for the child.
#[allow(clippy::zombie_processes)]
fn start_long_run(dir: &Path) -> (Child, PathBuf) {
    let mut p = kill_preset();
    p.data.limit = 0;
    p.train.epochs = 50;
    let file = dir.join("long.toml");
    p.save(&file).unwrap();
    let runs = dir.join("runs");
    let mut child =
        gradlab().arg("train").arg(&file).arg("--runs-dir").arg(&runs).stdout(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(run) = only_run(&runs) {
            return (child, run);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the run folder never appeared");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn one_process_writes_a_run_and_liveness_comes_from_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, run) = start_long_run(dir.path());
    assert_eq!(load_run(&run).unwrap().info.status, RunStatus::Running);
    let out = gradlab().arg("resume").arg(&run).arg("-q").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second writer was let in");
    assert!(stderr.contains(&format!("process {}", child.id())), "{stderr}");
    assert!(record::delete_run(&run).is_err(), "deleted a run while it was written");
    child.kill().unwrap();
    child.wait().unwrap();
    // the OS dropped the lock with the process: the run reads as interrupted, without /proc
    assert_eq!(record::run_is_locked(&run), Some(false));
    assert_eq!(load_run(&run).unwrap().info.status, RunStatus::Interrupted);
}

#[test]
fn a_rename_while_the_run_goes_on_sticks() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Preset::builtin("xor_mlp").unwrap();
    p.train.epochs = 4;
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(dir.path().to_path_buf())));
    assert!(trainer.send(TrainCommand::Start(Box::new(RunRequest { preset: p, origin: RunOrigin::Fresh }))));
    // paused before its first batch, so every epoch's summary.json comes after the rename
    assert!(trainer.send(TrainCommand::Pause));
    let mut epochs_after_rename = 0;
    let mut renamed = false;
    loop {
        match trainer.recv_timeout(Duration::from_secs(120)).unwrap() {
            Event::Paused { .. } if !renamed => {
                record::rename_run(&only_run(dir.path()).unwrap(), "renamed mid-run").unwrap();
                renamed = true;
                assert!(trainer.send(TrainCommand::Resume));
            }
            Event::Epoch(_) if renamed => epochs_after_rename += 1,
            Event::Finished(_) => break,
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(epochs_after_rename, 4, "the writer rewrites summary.json each epoch after the rename");
    let runs = record::list_runs(dir.path());
    assert_eq!(runs[0].1.status, RunStatus::Completed);
    assert_eq!(runs[0].1.name, "renamed mid-run");
}

#[test]
fn a_run_whose_data_fails_to_load_is_marked_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-idx-files-here");
    std::fs::create_dir_all(&empty).unwrap();
    let mut p = Preset::builtin("mnist_mlp").unwrap();
    p.data.set = "idx".into();
    p.data.path = Some(empty);
    let runs = dir.path().join("runs");
    let out = common::run_request(RunRequest { preset: p, origin: RunOrigin::Fresh }, Some(&runs));
    let failure = out.failure.expect("loading an empty folder fails");
    let (_, info) = &record::list_runs(&runs)[0];
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.error.as_deref(), Some(failure.as_str()));
}

/// Runs `gradlab train` with its runs folder on a fresh tmpfs of `size_kib` (mounted `ro` or
/// not) in a private mount namespace, then copies what it wrote to `out`. `None` where mount
/// namespaces are not available.
fn train_on_tmpfs(preset: &Path, size_kib: usize, read_only: bool, out: &Path) -> Option<std::process::Output> {
    if !cfg!(target_os = "linux") || !Command::new("unshare").args(["-rm", "true"]).status().is_ok_and(|s| s.success())
    {
        // CI runs as root on Linux, where this works: a skip there would hide a regression
        assert!(std::env::var_os("CI").is_none(), "mount namespaces (unshare -rm) are not available");
        eprintln!("skipped: no mount namespaces here (unshare -rm)");
        return None;
    }
    let mnt = out.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let opts = format!("size={size_kib}k{}", if read_only { ",ro" } else { "" });
    let script = r#"mount -t tmpfs -o "$1" tmpfs "$2" || exit 99
"$3" train "$4" --runs-dir "$2/runs" -q; code=$?
cp -r "$2/." "$5/" 2>/dev/null; exit $code"#;
    let output = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh", &opts])
        .arg(&mnt)
        .arg(env!("CARGO_BIN_EXE_gradlab"))
        .arg(preset)
        .arg(out)
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(99), "mounting the tmpfs failed");
    Some(output)
}

#[test]
fn a_full_disk_stops_training_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.data.limit = 1000;
    p.train.epochs = 5;
    p.train.threads = 1;
    p.train.checkpoint_minutes = 0.0;
    let file = dir.path().join("p.toml");
    p.save(&file).unwrap();
    // room for the preset, metrics and summary, not for a checkpoint (~650 KiB with Adam's moments)
    let out_dir = dir.path().join("out");
    let Some(out) = train_on_tmpfs(&file, 320, false, &out_dir) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "training went on without its records");
    assert!(stderr.contains("No space left on device") && stderr.contains("checkpoint"), "{stderr}");
    let run = only_run(&out_dir.join("runs")).expect("the run folder");
    let data = load_run(&run).unwrap();
    // it stopped at the first checkpoint it could not write: nothing trained past it
    assert_eq!(data.info.status, RunStatus::Failed);
    assert!(data.info.error.as_deref().unwrap_or_default().contains("No space left"), "{:?}", data.info.error);
    let batches_per_epoch = p.data.limit.div_ceil(p.train.batch_size);
    assert_eq!(data.steps.len(), batches_per_epoch, "steps recorded past the failed checkpoint");
    assert!(!std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .any(|e| { e.file_name().to_string_lossy().ends_with(".tmp") }));
}

#[test]
fn a_read_only_runs_folder_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    Preset::builtin("xor_mlp").unwrap().save(&file).unwrap();
    let out_dir = dir.path().join("out");
    let Some(out) = train_on_tmpfs(&file, 64, true, &out_dir) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Read-only file system") && stderr.contains("runs"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch"), "it trained");
}

/// The same run on different thread counts gives the same numbers: started in the CLI on all
/// cores, resumed the way the GUI resumes it (one fewer: 1 here), it ends as an uninterrupted
/// one-thread run does.
#[test]
fn a_run_started_on_all_cores_resumes_on_one_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = kill_preset();
    p.train.threads = 0; // the machine's choice: all cores headless, one fewer with the GUI
    p.train.checkpoint_minutes = 0.0;
    let mut one_thread = p.clone();
    one_thread.train.threads = 1;
    let whole = dir.path().join("whole");
    common::run_request(RunRequest { preset: one_thread, origin: RunOrigin::Fresh }, Some(&whole));
    let reference = figures(&only_run(&whole).unwrap());

    let file = dir.path().join("p.toml");
    p.save(&file).unwrap();
    let cut = dir.path().join("cut");
    let mut child =
        gradlab().arg("train").arg(&file).arg("--runs-dir").arg(&cut).stdout(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let run = loop {
        if let Some(run) = only_run(&cut) {
            if !record::list_checkpoints(&run).is_empty() {
                break run;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let cores_used = record::RunInfo::read(&run).unwrap().threads;

    let gui_like = WorkerOptions { default_threads: 1, ..WorkerOptions::headless(None) };
    let trainer = Trainer::spawn(gui_like);
    assert!(
        trainer.send(TrainCommand::Start(Box::new(RunRequest { preset: p, origin: RunOrigin::Resume(run.clone()) })))
    );
    let out = common::collect(&trainer);
    let summary = out.summary.unwrap_or_else(|| panic!("resume failed: {:?}", out.failure));
    assert_eq!(summary.threads, 1);
    eprintln!("started on {cores_used} threads, resumed on {}", summary.threads);
    assert_eq!(figures(&run), reference);
}
