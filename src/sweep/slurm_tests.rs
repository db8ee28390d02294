use super::*;

fn job<'a>(trials: &'a [usize], until: Option<usize>, options: &'a SlurmSpec) -> RungJob<'a> {
    RungJob {
        sweep_id: "2026-11-27T23-00-00_spiral-lr",
        rung: 1,
        trials,
        until_epoch: until,
        sweep_dir: Path::new("/runs/sweeps/2026-11-27T23-00-00_spiral-lr"),
        runs_dir: Path::new("/runs"),
        gradlab: Path::new("/opt/gradlab/bin/gradlab"),
        chdir: Path::new("/home/me/work"),
        options,
    }
}

/// A script's `#SBATCH` lines, without the prefix.
fn directives(script: &str) -> Vec<&str> {
    script.lines().filter_map(|l| l.strip_prefix("#SBATCH ")).collect()
}

#[test]
fn the_array_lists_the_rungs_trials_and_ids_are_task_ids() {
    let options = SlurmSpec::default();
    let s = job(&[0, 3, 5, 8], Some(3), &options).script().unwrap();
    let d = directives(&s);
    assert!(d.contains(&"--array=0,3,5,8"), "{s}");
    assert!(d.contains(&"--job-name=gradlab-spiral-lr-r1"), "{s}");
    assert!(d.contains(&"--output=\"/runs/sweeps/2026-11-27T23-00-00_spiral-lr/slurm/%A_%a.out\""), "{s}");
    assert!(d.contains(&"--chdir=\"/home/me/work\""), "{s}");
    assert!(s.starts_with("#!/bin/bash\n"));
    assert!(s.contains("--sweep-trial '2026-11-27T23-00-00_spiral-lr/'\"$SLURM_ARRAY_TASK_ID\""), "{s}");
    assert!(s.contains("'/runs/sweeps/2026-11-27T23-00-00_spiral-lr/trials/'\"$T.toml\""), "{s}");
    assert!(s.contains("--threads \"${SLURM_CPUS_PER_TASK:-1}\""), "{s}");
    assert!(job(&[], None, &options).script().is_err(), "an empty rung is refused");
}

#[test]
fn slurm_flags_appear_only_when_given() {
    let none = SlurmSpec::default();
    let d_none = job(&[0], None, &none).script().unwrap();
    for flag in ["--partition", "--time", "--mem"] {
        assert!(!d_none.contains(flag), "{flag} without a value: {d_none}");
    }
    assert!(directives(&d_none).contains(&"--cpus-per-task=1"), "one CPU by default: {d_none}");

    let all = SlurmSpec {
        partition: Some("debug".into()),
        time: Some("00:30:00".into()),
        cpus: Some(4),
        mem: Some("4G".into()),
    };
    let s = job(&[0], None, &all).script().unwrap();
    let d = directives(&s);
    for want in ["--partition=\"debug\"", "--time=\"00:30:00\"", "--mem=\"4G\"", "--cpus-per-task=4"] {
        assert!(d.contains(&want), "{want} missing: {s}");
    }
}

#[test]
fn until_epoch_on_every_rung_but_the_last() {
    let options = SlurmSpec::default();
    let early = job(&[0, 1], Some(2), &options).script().unwrap();
    assert!(early.trim_end().ends_with("--until-epoch 2"), "{early}");
    let last = job(&[0, 1], None, &options).script().unwrap();
    assert!(!last.contains("--until-epoch"), "{last}");
}

#[test]
fn paths_with_spaces_and_quotes_survive_bash() {
    let options = SlurmSpec::default();
    let mut j = job(&[2], None, &options);
    let sweep = Path::new("/tmp/my runs/it's/sweeps/2026-11-27T23-00-00_x");
    j.sweep_dir = sweep;
    j.runs_dir = Path::new("/tmp/my runs/it's");
    j.gradlab = Path::new("/opt/o'brien/gradlab");
    let s = j.script().unwrap();
    assert!(s.contains("--output=\"/tmp/my runs/it's/sweeps/2026-11-27T23-00-00_x/slurm/%A_%a.out\""), "{s}");
    // Let bash itself read the exec line back, with `exec` swapped for printf of each word.
    let exec = s.lines().skip_while(|l| !l.starts_with("exec ")).collect::<Vec<_>>().join("\n");
    let probe = format!(
        "SLURM_ARRAY_TASK_ID=2; SLURM_CPUS_PER_TASK=3; T=$(printf %03d \"$SLURM_ARRAY_TASK_ID\"); \
         printf '%s\\n' {}",
        exec.strip_prefix("exec ").unwrap()
    );
    let out = Command::new("bash").arg("-c").arg(&probe).output().expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    assert_eq!(
        words,
        [
            "/opt/o'brien/gradlab",
            "train",
            "/tmp/my runs/it's/sweeps/2026-11-27T23-00-00_x/trials/002.toml",
            "--runs-dir",
            "/tmp/my runs/it's",
            "-q",
            "--threads",
            "3",
            "--sweep-trial",
            "2026-11-27T23-00-00_spiral-lr/2",
        ]
    );
    assert_eq!(
        advance_command(Path::new("/opt/o'brien/gradlab"), sweep).unwrap(),
        "'/opt/o'\\''brien/gradlab' sweep advance '/tmp/my runs/it'\\''s/sweeps/2026-11-27T23-00-00_x'"
    );
}

#[test]
fn a_path_an_sbatch_line_cannot_carry_is_refused_by_name() {
    let options = SlurmSpec::default();
    let mut j = job(&[0], None, &options);
    j.sweep_dir = Path::new("/tmp/say \"hi\"/sweeps/x");
    let e = j.script().unwrap_err().to_string();
    assert!(e.contains("sweep folder") && e.contains("say \"hi\""), "{e}");
    j.sweep_dir = Path::new("/tmp/100%/sweeps/x");
    assert!(j.script().unwrap_err().to_string().contains("'%'"));
}

#[test]
fn sbatch_parsable_gives_the_job_id() {
    assert_eq!(parse_sbatch("1234;ci\n").unwrap(), "1234");
    assert_eq!(parse_sbatch("17\n").unwrap(), "17");
    let e = parse_sbatch("sbatch: error: Batch job submission failed\n").unwrap_err().to_string();
    assert!(e.contains("not a job id"), "{e}");
    assert!(parse_sbatch("").is_err());
}

#[test]
fn squeue_lines_parse_and_invalid_job_id_means_nothing_queued() {
    // as the one-node 22.05 cluster prints them: pending tasks first, then running ones
    let q = parse_squeue(
        "1236_2|PENDING|Resources\n1236_3|PENDING|Resources\n1237|PENDING|Dependency\n1236_0|RUNNING|None\n",
    )
    .unwrap();
    assert_eq!(q.len(), 4);
    assert_eq!(q[0], QueueEntry { job: "1236_2".into(), state: "PENDING".into(), reason: "Resources".into() });
    assert_eq!(q[0].array_task(), Some(("1236", 2)));
    assert_eq!(q[0].job_id(), "1236");
    assert_eq!(q[2].array_task(), None);
    assert_eq!(q[2].job_id(), "1237");
    assert_eq!(q[3].state, "RUNNING");

    let gone = squeue_answer(false, "", "slurm_load_jobs error: Invalid job id specified\n").unwrap();
    assert!(gone.is_empty());
    assert!(squeue_answer(false, "", "slurm_load_jobs error: Unable to contact slurm controller\n").is_err());
    assert!(squeue_answer(true, "", "").unwrap().is_empty());
    let e = parse_squeue("garbage\n").unwrap_err().to_string();
    assert!(e.contains("garbage"), "{e}");
}

#[test]
fn scontrol_gives_state_and_exit_code() {
    let line = "JobId=6 ArrayJobId=1 ArrayTaskId=2 JobName=wrap JobState=COMPLETED Reason=None ExitCode=0:0 RunTime=00:00:02\n";
    assert_eq!(parse_scontrol(line), Some(("COMPLETED".into(), "0:0".into())));
    assert_eq!(parse_scontrol(""), None);
}
