//! Sweeps on Slurm: one job array per rung (the array task id *is* the trial index), each task a
//! `gradlab train` process, and an "advance" job that runs after the array (`afterany`) to rank
//! the rung and submit the next one. Nothing waits on the login node.
//!
//! Only `sbatch --parsable`, `squeue`, `scontrol` and `scancel` are used: a cluster without
//! accounting refuses `sacct` ("Slurm accounting storage is disabled"), and once a finished job
//! is older than `MinJobAge` (300 s by default) Slurm forgets it, so the run folders are the
//! truth about a trial and the queue only says what is still pending or running.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::SlurmSpec;
use crate::error::{Error, Result};

/// One rung's job array, everything its script needs. Paths must be absolute: the tasks run in
/// another process, maybe on another node.
#[derive(Debug, Clone)]
pub struct RungJob<'a> {
    pub sweep_id: &'a str,
    pub rung: usize,
    /// The trials this rung trains; they become the array's task ids.
    pub trials: &'a [usize],
    /// `Some(E_r)` on every rung but the last: those trials stop at that epoch, resumable.
    pub until_epoch: Option<usize>,
    pub sweep_dir: &'a Path,
    pub runs_dir: &'a Path,
    pub gradlab: &'a Path,
    /// The directory the tasks start in, so relative data paths resolve as `sweep plan` checked them.
    pub chdir: &'a Path,
    /// `[slurm]` with the CLI's flags over it; each flag goes to sbatch only when given, so the
    /// cluster's defaults apply otherwise (`--cpus-per-task` is 1 then).
    pub options: &'a SlurmSpec,
}

/// `slurm/rung-R.sbatch` inside the sweep folder.
pub fn script_path(sweep_dir: &Path, rung: usize) -> PathBuf {
    sweep_dir.join("slurm").join(format!("rung-{rung}.sbatch"))
}

/// `gradlab-<slug>-r<rung>`: the slug is what follows the id's timestamp.
pub fn job_name(sweep_id: &str, rung: usize) -> String {
    let slug = sweep_id.split_once('_').map_or(sweep_id, |(_, slug)| slug);
    format!("gradlab-{slug}-r{rung}")
}

impl RungJob<'_> {
    /// The batch script. `#SBATCH` values are double-quoted (Slurm's own parser; spaces and `'`
    /// pass, `"`, `%` and line breaks are refused), the shell line single-quoted.
    pub fn script(&self) -> Result<String> {
        if self.trials.is_empty() {
            return Err(Error::Other(format!("sweep {}: rung {} has no trials to submit", self.sweep_id, self.rung)));
        }
        let sweep = utf8(self.sweep_dir)?;
        let output = format!("{sweep}/slurm/%A_%a.out");
        directive_safe(sweep, "the sweep folder", true)?;
        let chdir = utf8(self.chdir)?;
        directive_safe(chdir, "the working directory", false)?;
        let array: Vec<String> = self.trials.iter().map(usize::to_string).collect();
        let cpus = self.options.cpus.unwrap_or(1).max(1);

        let mut s = String::from("#!/bin/bash\n");
        s += &format!("#SBATCH --job-name={}\n", job_name(self.sweep_id, self.rung));
        s += &format!("#SBATCH --array={}\n", array.join(","));
        s += &format!("#SBATCH --cpus-per-task={cpus}\n");
        s += &format!("#SBATCH --output=\"{output}\"\n");
        s += &format!("#SBATCH --chdir=\"{chdir}\"\n");
        for (flag, value) in
            [("partition", &self.options.partition), ("time", &self.options.time), ("mem", &self.options.mem)]
        {
            if let Some(v) = value {
                directive_safe(v, flag, true)?;
                s += &format!("#SBATCH --{flag}=\"{v}\"\n");
            }
        }
        // Each task sees the whole node (task/none binds no CPUs): candle's element-wise pool
        // and our compute pool are sized from what Slurm granted, not from the machine.
        s += "set -eu\nexport CANDLE_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n";
        s += "T=$(printf %03d \"$SLURM_ARRAY_TASK_ID\")\n";
        s += &format!(
            "exec {} train {}\"$T.toml\" --runs-dir {} -q \\\n  --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" --sweep-trial {}\"$SLURM_ARRAY_TASK_ID\"",
            sh_quote(utf8(self.gradlab)?),
            sh_quote(&format!("{sweep}/trials/")),
            sh_quote(utf8(self.runs_dir)?),
            sh_quote(&format!("{}/", self.sweep_id)),
        );
        if let Some(e) = self.until_epoch {
            s += &format!(" --until-epoch {e}");
        }
        s.push('\n');
        Ok(s)
    }
}

/// The advance job's command line (`sbatch --wrap`): `'<gradlab>' sweep advance '<sweep>'`.
pub fn advance_command(gradlab: &Path, sweep_dir: &Path) -> Result<String> {
    Ok(format!("{} sweep advance {}", sh_quote(utf8(gradlab)?), sh_quote(utf8(sweep_dir)?)))
}

/// Single-quotes a word for bash: `it's` becomes `'it'\''s'`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| Error::Other(format!("{}: a Slurm script needs a UTF-8 path", path.display())))
}

/// A value inside `#SBATCH --flag="..."` cannot hold a quote or a line break; in an output file
/// name `%` starts one of Slurm's patterns.
fn directive_safe(value: &str, what: &str, output_pattern: bool) -> Result<()> {
    // Slurm's #SBATCH parser also reads a backslash as an escape, even inside quotes
    let bad = |c: char| matches!(c, '"' | '\\' | '\n' | '\r') || (output_pattern && c == '%');
    match value.chars().find(|&c| bad(c)) {
        Some(c) => Err(Error::Other(format!(
            "{what} `{value}` contains {c:?}, which an #SBATCH line cannot carry; use a path without it"
        ))),
        None => Ok(()),
    }
}

/// The job id from `sbatch --parsable`, which prints `id` or `id;cluster`.
pub fn parse_sbatch(stdout: &str) -> Result<String> {
    let id = stdout.trim().split(';').next().unwrap_or("").trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Other(format!("sbatch --parsable printed {:?}, not a job id", stdout.trim())));
    }
    Ok(id.to_string())
}

/// One line of `squeue -h -r -o '%i|%T|%r'`: a task of an array (`1236_2`) or a plain job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// `1236_2` for an array task, `1237` for a job.
    pub job: String,
    /// `PENDING`, `RUNNING`, `COMPLETING`, ...
    pub state: String,
    /// Why it waits: `Resources`, `Dependency`, `Priority`, `None`.
    pub reason: String,
}

impl QueueEntry {
    /// `("1236", 2)` for an array task; `None` for a plain job (or a range squeue did not expand).
    pub fn array_task(&self) -> Option<(&str, usize)> {
        let (job, task) = self.job.split_once('_')?;
        Some((job, task.parse().ok()?))
    }

    /// The job id without the task: `1236` for `1236_2`.
    pub fn job_id(&self) -> &str {
        self.job.split_once('_').map_or(&self.job, |(job, _)| job)
    }
}

/// The format `parse_squeue` reads.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r";

/// Parses squeue's lines; a line that is not `id|state|reason` is refused, quoted.
pub fn parse_squeue(stdout: &str) -> Result<Vec<QueueEntry>> {
    let mut entries = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(job), Some(state), Some(reason)) if !job.is_empty() && !state.is_empty() => {
                entries.push(QueueEntry { job: job.into(), state: state.into(), reason: reason.into() });
            }
            _ => return Err(Error::Other(format!("squeue printed {line:?}, not `id|state|reason`"))),
        }
    }
    Ok(entries)
}

/// squeue's answer for some job ids: an exit with "Invalid job id" means Slurm no longer knows
/// any of them (all ended longer than `MinJobAge` ago), so nothing is queued.
pub fn squeue_answer(success: bool, stdout: &str, stderr: &str) -> Result<Vec<QueueEntry>> {
    if success {
        parse_squeue(stdout)
    } else if stderr.contains("Invalid job id") {
        Ok(Vec::new())
    } else {
        Err(Error::Other(format!("squeue failed: {}", stderr.trim())))
    }
}

fn run(cmd: &mut Command) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Other(format!("`{program}` is not on PATH: Slurm sweeps run where sbatch and squeue do"))
        } else {
            Error::Other(format!("could not run `{program}`: {e}"))
        }
    })
}

fn checked(cmd: &mut Command) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = run(cmd)?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "`{program}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes `slurm/rung-R.sbatch` (and the `slurm/` folder, which sbatch would not create for the
/// output files) and submits it; returns the array's job id.
pub fn submit_rung(job: &RungJob) -> Result<String> {
    let script = job.script()?;
    let path = script_path(job.sweep_dir, job.rung);
    let dir = job.sweep_dir.join("slurm");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    crate::record::write_atomic(&path, script.as_bytes())?;
    parse_sbatch(&checked(Command::new("sbatch").arg("--parsable").arg(&path))?)
}

/// Submits `gradlab sweep advance` to run once `after` has ended, however it ended.
/// It starts in `chdir`, so the rungs it submits start there too.
pub fn submit_advance(
    gradlab: &Path,
    sweep_dir: &Path,
    chdir: &Path,
    after: &str,
    options: &SlurmSpec,
) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--dependency=afterany:{after}"))
        .arg("--cpus-per-task=1")
        .arg(format!("--job-name={}", advance_job_name(sweep_dir)))
        .arg(format!("--output={}/slurm/advance-%j.out", utf8(sweep_dir)?))
        .arg(format!("--chdir={}", utf8(chdir)?));
    if let Some(p) = &options.partition {
        cmd.arg(format!("--partition={p}"));
    }
    if let Some(t) = &options.time {
        // ranking a rung takes a second; the trials' limit is ample and some partitions need one
        cmd.arg(format!("--time={t}"));
    }
    cmd.arg("--wrap").arg(advance_command(gradlab, sweep_dir)?);
    parse_sbatch(&checked(&mut cmd)?)
}

fn advance_job_name(sweep_dir: &Path) -> String {
    let id = sweep_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let slug = id.split_once('_').map_or(id.as_str(), |(_, s)| s);
    format!("gradlab-{slug}-advance")
}

/// The queued and running tasks of these jobs (one line per array task).
pub fn queue(job_ids: &[String]) -> Result<Vec<QueueEntry>> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = run(Command::new("squeue").args(["-h", "-r", "-o", SQUEUE_FORMAT, "-j", &job_ids.join(",")]))?;
    squeue_answer(out.status.success(), &String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr))
}

/// `scancel` of these jobs (arrays whole). A job Slurm has forgotten is not an error.
pub fn cancel(job_ids: &[String]) -> Result<()> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let out = run(Command::new("scancel").args(job_ids))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("Invalid job id") {
        Ok(())
    } else {
        Err(Error::Other(format!("scancel {} failed: {}", job_ids.join(" "), stderr.trim())))
    }
}

/// `JobState` and `ExitCode` from `scontrol show job -o`, while Slurm still remembers the job
/// (`MinJobAge`); `None` after that or on any error: the run folders are the truth then.
pub fn job_state(job: &str) -> Option<(String, String)> {
    let out = run(Command::new("scontrol").args(["show", "job", "-o", job])).ok()?;
    if !out.status.success() {
        return None;
    }
    parse_scontrol(&String::from_utf8_lossy(&out.stdout))
}

/// The first record's `JobState` and `ExitCode` (an array prints one line per task).
pub fn parse_scontrol(stdout: &str) -> Option<(String, String)> {
    let line = stdout.lines().next()?;
    let field = |key: &str| {
        line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')).map(String::from))
    };
    Some((field("JobState")?, field("ExitCode")?))
}

#[cfg(test)]
#[path = "slurm_tests.rs"]
mod tests;
