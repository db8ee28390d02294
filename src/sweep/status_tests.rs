use super::*;
use crate::sweep::SlurmJob;

const ID: &str = "2026-11-27T23-00-00_lr";

/// A run folder as a trial leaves it: summary.json only, which is what the join reads.
fn run_dir(runs: &Path, trial: usize, status: &str, epochs: usize, pid: u32, job: &str) {
    let id = format!("2026-11-27T23-0{trial}-00_lr-{trial}");
    let dir = runs.join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let info = serde_json::json!({
        "id": id, "name": id, "title": format!("lr #{trial:03}"), "data": "spiral", "model": "mlp",
        "status": status, "started_at": format!("2026-11-27T23:0{trial}:00Z"),
        "epochs_planned": 4, "epochs_completed": epochs, "best_epoch": null,
        "best_validation_accuracy": if epochs > 0 { serde_json::json!(0.5 + trial as f64 / 100.0) } else { serde_json::Value::Null },
        "final_validation_accuracy": null, "test_accuracy": null, "wall_time_s": 1.0, "samples_per_s": 1.0,
        "params": 10, "threads": 1, "error": null, "parent": null, "pid": pid,
        "machine": { "os": "linux", "arch": "x86_64", "cores": 2 },
        "gradlab_version": "0", "candle_version": "0",
        "sweep": { "sweep": ID, "trial": trial, "slurm_job": job },
    });
    std::fs::write(dir.join("summary.json"), serde_json::to_string(&info).unwrap()).unwrap();
}

fn planned(n: usize) -> Vec<PlannedTrial> {
    (0..n).map(|i| PlannedTrial { index: i, values: format!("train.learning_rate={i}"), epochs: 4 }).collect()
}

fn slurm_state(status: SweepStatus) -> SweepState {
    SweepState {
        id: ID.into(),
        mode: Mode::Slurm,
        status,
        slurm_jobs: vec![SlurmJob {
            rung: 0,
            array: "1236".into(),
            trials: (0..7).collect(),
            advance: Some("1237".into()),
        }],
        ..SweepState::default()
    }
}

/// A pid that no process has: `/proc/<pid>` is missing, so a `running` run with it was killed.
const DEAD_PID: u32 = 4_000_000;

#[test]
fn every_trial_state_from_run_folders_and_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let runs_dir = tmp.path();
    let me = std::process::id();
    run_dir(runs_dir, 1, "running", 1, me, "1236_1"); // its writer (this process) is alive
    run_dir(runs_dir, 2, "completed", 4, DEAD_PID, "1236_2");
    run_dir(runs_dir, 3, "stopped", 2, DEAD_PID, "1236_3"); // halving stopped it, then pruned it
    run_dir(runs_dir, 4, "running", 1, DEAD_PID, "1236_4"); // killed: reads interrupted
    run_dir(runs_dir, 5, "failed", 0, DEAD_PID, "1236_5");
    // trial 0: pending in the queue, no folder; trial 6: submitted, gone from the queue, no folder
    let queue =
        slurm::parse_squeue("1236_0|PENDING|Resources\n1237|PENDING|Dependency\n1236_1|RUNNING|None\n").unwrap();
    let runs = trial_runs(runs_dir, ID);
    assert_eq!(runs.len(), 5, "the fixture's runs are found by their tag");

    let mut state = slurm_state(SweepStatus::Running);
    state.pruned.insert(3, 0);
    let rows = join(&planned(7), &state, &runs, &queue);
    let states: Vec<TrialState> = rows.iter().map(|r| r.state.clone()).collect();
    assert_eq!(
        states,
        [
            TrialState::Queued("Resources".into()),
            TrialState::Running,
            TrialState::Completed,
            TrialState::Pruned(0),
            TrialState::Interrupted,
            TrialState::Failed,
            TrialState::Lost("slurm/1236_6.out".into()),
        ]
    );
    assert_eq!(rows[0].queue.as_deref(), Some("1236_0 PENDING"));
    assert_eq!(rows[0].run, None);
    assert_eq!(rows[0].epochs_planned, 4, "from the plan while there is no run");
    assert_eq!(rows[2].run.as_deref(), Some("2026-11-27T23-02-00_lr-2"));
    assert_eq!((rows[2].epochs_completed, rows[2].best_validation_accuracy), (4, Some(0.52)));
    assert_eq!(rows[2].slurm_job.as_deref(), Some("1236_2"));

    let table = render("lr", &state, 1, &rows);
    assert!(table.starts_with(&format!("lr ({ID}): slurm, running, rung 1/1; rung 1: job 1236 (advance 1237)\n")));
    for want in ["queued (Resources)", "pruned at rung 1", "lost (see slurm/1236_6.out)", "52.0%", "4/4"] {
        assert!(table.contains(want), "{want} missing:\n{table}");
    }
    assert_eq!(table.lines().count(), 2 + 7, "{table}");

    // cancelled: what had not ended is cancelled, what ended keeps its state
    let cancelled = join(&planned(7), &slurm_state(SweepStatus::Cancelled), &runs, &[]);
    let states: Vec<TrialState> = cancelled.iter().map(|r| r.state.clone()).collect();
    assert_eq!(states[0], TrialState::Cancelled, "a pending trial without a folder");
    assert_eq!(states[4], TrialState::Cancelled, "a killed trial");
    assert_eq!(states[2], TrialState::Completed);
    assert_eq!(states[5], TrialState::Failed);
    assert_eq!(states[1], TrialState::Running, "its writer still runs until the kill lands");

    // a local sweep's trials without a folder are planned, never lost
    let local = SweepState { id: ID.into(), mode: Mode::Local, status: SweepStatus::Running, ..SweepState::default() };
    assert_eq!(join(&planned(1), &local, &BTreeMap::new(), &[])[0].state, TrialState::Planned);
}
