//! File work for the GUI on its own thread ("gradlab-io"): presets, run folders, exports,
//! PNGs. The UI sends requests and picks up replies each frame; it never waits on a disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::runs_panel::SweepHeader;
use super::sweep_panel::OpenedSweep;
use crate::config::Preset;
use crate::export::Which;
use crate::record::{self, RunData, RunInfo};
use crate::sweep::{status, LocalOptions, LocalSweep, Mode, Plan, SweepState, SweepStatus, SweepSummary};
use crate::train::Waker;

/// One card of the preset gallery.
pub struct GalleryEntry {
    /// The file, or `None` for a preset compiled into the binary.
    pub path: Option<PathBuf>,
    pub name: String,
    pub preset: Result<Preset, String>,
}

pub enum IoRequest {
    ScanPresets(Vec<PathBuf>),
    ReadPreset(PathBuf),
    WritePreset(PathBuf, Box<Preset>),
    ListRuns(PathBuf),
    LoadRun(PathBuf),
    RenameRun(PathBuf, String),
    DeleteRun(PathBuf),
    ExportModel {
        run: PathBuf,
        which: Which,
        out: PathBuf,
        format: crate::export::ExportFormat,
    },
    CopyFile {
        from: PathBuf,
        to: PathBuf,
    },
    WritePng {
        path: PathBuf,
        image: Arc<egui::ColorImage>,
    },
    /// A sweep file, or a sweep folder's sweep.toml (then the folder's plan and state).
    ReadSweep(PathBuf),
    /// Writes the sweep folder and starts the sweep (its driver thread does the rest).
    StartSweep {
        runs_dir: PathBuf,
        plan: Box<Plan>,
        options: LocalOptions,
    },
    ResumeSweep {
        dir: PathBuf,
        options: LocalOptions,
    },
    /// The sweeps in a runs folder, for the runs list's headers.
    ListSweeps(PathBuf),
    /// `sweep cancel`: a Slurm sweep's jobs scancelled, its state and summary `cancelled`.
    CancelSlurm(PathBuf),
    /// A Slurm sweep's trials: its folder joined with squeue (asked at most every 10 s).
    SlurmStatus(PathBuf),
    /// An image file decoded to a model's input shape `[c, h, w]` (raw 0..255 values, CHW).
    DecodeImage {
        path: PathBuf,
        shape: [usize; 3],
    },
}

pub enum IoReply {
    Presets(Vec<GalleryEntry>),
    PresetRead(PathBuf, Result<Box<Preset>, String>),
    Runs(Vec<(PathBuf, RunInfo)>),
    Run(PathBuf, Result<Box<RunData>, String>),
    SweepRead(PathBuf, Result<Box<OpenedSweep>, String>),
    SweepStarted(Result<Box<LocalSweep>, String>),
    Sweeps(Vec<SweepHeader>),
    SlurmStatus(PathBuf, Result<(SweepStatus, Vec<status::TrialRow>), String>),
    /// The pixels of `IoRequest::DecodeImage`, or why it could not be read.
    ImageDecoded(PathBuf, Result<Vec<u8>, String>),
    /// A finished action, to tell the user.
    Done(String),
    Failed(String),
}

pub struct Io {
    requests: Sender<IoRequest>,
    replies: Receiver<IoReply>,
}

impl Io {
    pub fn spawn(waker: Option<Waker>) -> Self {
        Self::spawn_with(waker, handle)
    }

    /// The io thread with its own request handler (tests give one that panics).
    fn spawn_with(waker: Option<Waker>, handle: impl Fn(IoRequest) -> IoReply + Send + 'static) -> Self {
        let (req_tx, req_rx) = bounded::<IoRequest>(64);
        let (rep_tx, rep_rx) = bounded::<IoReply>(64);
        std::thread::Builder::new()
            .name("gradlab-io".into())
            .spawn(move || {
                for request in req_rx {
                    // a reply of the kind the UI waits for, so a panic ends its wait too
                    let on_panic = match &request {
                        IoRequest::LoadRun(dir) => Fallback::Run(dir.clone()),
                        IoRequest::ReadPreset(path) => Fallback::Preset(path.clone()),
                        IoRequest::ReadSweep(path) => Fallback::Sweep(path.clone()),
                        IoRequest::StartSweep { .. } | IoRequest::ResumeSweep { .. } => Fallback::SweepStart,
                        _ => Fallback::Failed,
                    };
                    let reply = super::catch_panic("reading or writing files", || handle(request))
                        .unwrap_or_else(|e| on_panic.reply(e));
                    if rep_tx.send(reply).is_err() {
                        return;
                    }
                    if let Some(w) = &waker {
                        w();
                    }
                }
            })
            .expect("spawning the io thread");
        Self { requests: req_tx, replies: rep_rx }
    }

    /// Queues a request; false when the queue is full (try again next frame).
    pub fn send(&self, request: IoRequest) -> bool {
        self.requests.try_send(request).is_ok()
    }

    /// A sender for replies that arrive later on another thread (screenshots).
    pub fn sender(&self) -> Sender<IoRequest> {
        self.requests.clone()
    }

    pub fn try_recv(&self) -> Option<IoReply> {
        self.replies.try_recv().ok()
    }
}

enum Fallback {
    Run(PathBuf),
    Preset(PathBuf),
    Sweep(PathBuf),
    SweepStart,
    Failed,
}

impl Fallback {
    fn reply(self, error: String) -> IoReply {
        match self {
            Fallback::Run(dir) => IoReply::Run(dir, Err(error)),
            Fallback::Preset(path) => IoReply::PresetRead(path, Err(error)),
            Fallback::Sweep(path) => IoReply::SweepRead(path, Err(error)),
            Fallback::SweepStart => IoReply::SweepStarted(Err(error)),
            Fallback::Failed => IoReply::Failed(error),
        }
    }
}

fn handle(request: IoRequest) -> IoReply {
    match request {
        IoRequest::ScanPresets(dirs) => IoReply::Presets(scan_presets(&dirs)),
        IoRequest::ReadPreset(path) => {
            let result = Preset::load(&path).map(Box::new).map_err(|e| e.to_string());
            IoReply::PresetRead(path, result)
        }
        IoRequest::WritePreset(path, preset) => match preset.save(&path) {
            Ok(()) => IoReply::Done(format!("Saved the preset to {}", path.display())),
            Err(e) => IoReply::Failed(e.to_string()),
        },
        IoRequest::DecodeImage { path, shape } => {
            let result = crate::data::image_folder::decode(&path, shape).map_err(|e| e.to_string());
            IoReply::ImageDecoded(path, result)
        }
        IoRequest::ListRuns(dir) => {
            let runs = record::list_runs(&dir);
            IoReply::Runs(runs)
        }
        IoRequest::LoadRun(dir) => {
            let result = record::load_run(&dir).map(Box::new).map_err(|e| e.to_string());
            IoReply::Run(dir, result)
        }
        IoRequest::RenameRun(dir, name) => {
            done(record::rename_run(&dir, &name), format!("Renamed the run to “{name}”"))
        }
        IoRequest::DeleteRun(dir) => done(record::delete_run(&dir), format!("Deleted {}", dir.display())),
        IoRequest::ExportModel { run, which, out, format } => {
            match crate::export::export_run_as(&run, which, &out, format) {
                Ok(card) => IoReply::Done(format!(
                    "Exported the model of epoch {} ({}) to {}",
                    card.epoch,
                    format.title(),
                    out.display()
                )),
                Err(e) => IoReply::Failed(e.to_string()),
            }
        }
        IoRequest::CopyFile { from, to } => done(
            std::fs::copy(&from, &to).map(|_| ()).map_err(|e| crate::Error::io(&to, e)),
            format!("Wrote {}", to.display()),
        ),
        IoRequest::WritePng { path, image } => done(write_png(&path, &image), format!("Wrote {}", path.display())),
        IoRequest::ReadSweep(path) => {
            let result = read_sweep(&path).map(Box::new).map_err(|e| e.to_string());
            IoReply::SweepRead(path, result)
        }
        IoRequest::StartSweep { runs_dir, plan, options } => {
            IoReply::SweepStarted(LocalSweep::start(&runs_dir, *plan, options).map(Box::new).map_err(|e| e.to_string()))
        }
        IoRequest::ResumeSweep { dir, options } => {
            IoReply::SweepStarted(LocalSweep::resume(&dir, options).map(Box::new).map_err(|e| e.to_string()))
        }
        IoRequest::ListSweeps(runs_dir) => IoReply::Sweeps(list_sweeps(&runs_dir)),
        IoRequest::SlurmStatus(dir) => {
            let result = slurm_status(&dir).map_err(|e| e.to_string());
            IoReply::SlurmStatus(dir, result)
        }
        IoRequest::CancelSlurm(dir) => match crate::sweep::slurm_run::cancel(&dir) {
            Ok(ids) if ids.is_empty() => IoReply::Done(format!("{}: nothing to cancel", dir.display())),
            Ok(ids) => {
                IoReply::Done(format!("Cancelled Slurm jobs {}; started trials are resumable runs", ids.join(", ")))
            }
            Err(e) => IoReply::Failed(e.to_string()),
        },
    }
}

/// As `gradlab sweep status` joins them: the plan, the trials' runs and, while the sweep runs,
/// the queue (unreadable: the run folders alone, as the CLI falls back).
fn slurm_status(dir: &Path) -> crate::Result<(SweepStatus, Vec<status::TrialRow>)> {
    let state = SweepState::read(dir)?;
    let plan = crate::sweep::read_plan(dir)?;
    let runs = crate::sweep::trial_runs(&state.runs_dir, &state.id);
    let queue = if state.status == SweepStatus::Running {
        crate::sweep::slurm::queue(&crate::sweep::slurm_run::job_ids(&state)).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((state.status, status::join(&status::planned_trials(&plan), &state, &runs, &queue)))
}

fn read_sweep(file: &Path) -> crate::Result<OpenedSweep> {
    match super::sweep_panel::sweep_folder_of(file) {
        Some(dir) => {
            let plan = crate::sweep::read_plan(&dir)?;
            let state = SweepState::read(&dir).ok().map(|s| undriven_stopped(&dir, s));
            let metrics = summary_metrics(&dir);
            Ok(OpenedSweep { file: file.to_path_buf(), plan, dir: Some(dir), state, metrics })
        }
        None => {
            let plan = crate::sweep::Plan::new(crate::sweep::SweepSpec::load(file)?)?;
            Ok(OpenedSweep { file: file.to_path_buf(), plan, dir: None, state: None, metrics: BTreeMap::new() })
        }
    }
}

/// Each sweep folder's name, plan size and Slurm jobs, from its plan.json and state.json (a
/// folder that cannot be read is left out: its trials then show under their own tags).
fn list_sweeps(runs_dir: &Path) -> Vec<SweepHeader> {
    crate::sweep::list_sweeps(runs_dir)
        .into_iter()
        .filter_map(|dir| {
            let path = dir.join("plan.json");
            let text = record::read_text_capped(&path, record::MAX_JSON_BYTES).ok()?;
            let plan: serde_json::Value = serde_json::from_str(&text).ok()?;
            let id = dir.file_name()?.to_string_lossy().into_owned();
            let name = plan.get("name").and_then(|n| n.as_str()).unwrap_or(&id).to_string();
            let trials = plan.get("trials").and_then(|t| t.as_array()).map_or(0, Vec::len);
            let state = SweepState::read(&dir).ok().map(|s| undriven_stopped(&dir, s));
            let jobs = state.as_ref().map(crate::sweep::slurm_run::job_ids).unwrap_or_default();
            let metrics = summary_metrics(&dir);
            Some(SweepHeader { id, name, trials, jobs, status: state.map(|s| s.status), metrics })
        })
        .collect()
}

/// A local sweep that says `running` while nobody holds its state.lock had its driver die (a
/// crash, a killed process): it is stopped, and resumable, whatever its state.json says.
fn undriven_stopped(dir: &Path, mut state: SweepState) -> SweepState {
    if state.mode == Mode::Local && state.status == SweepStatus::Running && SweepState::try_lock(dir).is_ok() {
        state.status = SweepStatus::Stopped;
    }
    state
}

/// Each trial's metric from the folder's summary.json (none while no driver has ended: it is
/// written when one does).
fn summary_metrics(dir: &Path) -> BTreeMap<usize, f64> {
    let Ok(summary) = SweepSummary::read(dir) else { return BTreeMap::new() };
    summary.trials.iter().filter_map(|t| Some((t.index, t.metric.filter(|m| m.is_finite())?))).collect()
}

fn done(result: crate::Result<()>, message: String) -> IoReply {
    match result {
        Ok(()) => IoReply::Done(message),
        Err(e) => IoReply::Failed(e.to_string()),
    }
}

/// Every `*.toml` in the folders (files that do not parse are listed with their error); the
/// compiled-in presets when no folder has any.
fn scan_presets(dirs: &[PathBuf]) -> Vec<GalleryEntry> {
    let mut entries = Vec::new();
    for dir in dirs {
        let Ok(read) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let preset = Preset::load(&path).map_err(|e| e.to_string());
            entries.push(GalleryEntry { path: Some(path), name, preset });
        }
    }
    if entries.is_empty() {
        for (name, _) in crate::config::BUILTIN {
            entries.push(GalleryEntry {
                path: None,
                name: (*name).into(),
                preset: Preset::builtin(name).map_err(|e| e.to_string()),
            });
        }
    }
    entries
}

/// The user's own presets folder: `$XDG_CONFIG_HOME/gradlab/presets` or `~/.config/gradlab/presets`.
pub fn user_presets_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("gradlab").join("presets"))
}

pub fn write_png(path: &Path, image: &egui::ColorImage) -> crate::Result<()> {
    let [w, h] = image.size;
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| crate::Error::format(path, e.to_string()))?;
        let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
        writer.write_image_data(&rgba).map_err(|e| crate::Error::format(path, e.to_string()))?;
    }
    record::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(io: &Io) -> IoReply {
        io.replies.recv_timeout(std::time::Duration::from_secs(60)).expect("a reply")
    }

    /// A local sweep whose state.json says running while nobody holds its lock lost its driver:
    /// it reads as stopped (so Resume is offered); held by a driver, it reads as running.
    #[test]
    fn a_running_sweep_without_its_driver_reads_as_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lr.toml");
        std::fs::write(
            &file,
            "name = \"xor lr\"\nbuiltin = \"xor_mlp\"\n[vary]\n\"train.learning_rate\" = { values = [0.01, 0.02] }\n",
        )
        .unwrap();
        let plan = Plan::new(crate::sweep::SweepSpec::load(&file).unwrap()).unwrap();
        let sweep = crate::sweep::write_sweep_dir(&dir.path().join("runs"), &plan).unwrap();
        let mut state = SweepState::read(&sweep).unwrap();
        state.status = SweepStatus::Running;
        state.write(&sweep).unwrap();
        let opened = read_sweep(&sweep.join("sweep.toml")).unwrap();
        assert_eq!(opened.state.map(|s| s.status), Some(SweepStatus::Stopped));
        assert_eq!(list_sweeps(&dir.path().join("runs"))[0].status, Some(SweepStatus::Stopped));
        let _driver = SweepState::try_lock(&sweep).unwrap();
        let opened = read_sweep(&sweep.join("sweep.toml")).unwrap();
        assert_eq!(opened.state.map(|s| s.status), Some(SweepStatus::Running));
        assert_eq!(list_sweeps(&dir.path().join("runs"))[0].status, Some(SweepStatus::Running));
    }

    /// A sweep ranked by validation loss has no loss in its run records: its results come from
    /// summary.json's per-trial metric when no event gave one.
    #[test]
    fn a_loss_ranked_sweep_takes_its_results_from_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lr.toml");
        std::fs::write(
            &file,
            "name = \"xor lr\"\nbuiltin = \"xor_mlp\"\nmetric = \"validation_loss\"\n\
             [vary]\n\"train.learning_rate\" = { values = [0.01, 0.02] }\n",
        )
        .unwrap();
        let plan = Plan::new(crate::sweep::SweepSpec::load(&file).unwrap()).unwrap();
        let sweep = crate::sweep::write_sweep_dir(&dir.path().join("runs"), &plan).unwrap();
        let opened = read_sweep(&sweep.join("sweep.toml")).unwrap();
        assert!(opened.metrics.is_empty(), "no summary.json yet");
        let mut summary = SweepSummary::collect(&sweep).unwrap();
        summary.trials[1].metric = Some(0.25);
        summary.write(&sweep).unwrap();
        let opened = read_sweep(&sweep.join("sweep.toml")).unwrap();
        let mut panel = super::super::sweep_panel::SweepPanel::default();
        panel.set_opened(opened);
        let results: Vec<Option<f64>> = panel.rows(&[]).iter().map(|r| r.result).collect();
        assert_eq!(results, [None, Some(0.25)]);
        assert_eq!(list_sweeps(&dir.path().join("runs"))[0].metrics.get(&1), Some(&0.25));
    }

    #[test]
    fn a_panic_in_a_request_arrives_as_an_error() {
        let io = Io::spawn_with(None, |request| match request {
            IoRequest::ListRuns(_) => IoReply::Runs(vec![]),
            _ => panic!("disk on fire"),
        });
        assert!(io.send(IoRequest::LoadRun(PathBuf::from("runs/r1"))));
        match reply(&io) {
            IoReply::Run(dir, Err(e)) => {
                assert_eq!(dir, PathBuf::from("runs/r1"));
                assert!(e.contains("internal error") && e.contains("disk on fire"), "{e}");
            }
            _ => panic!("expected the run's reply as an error"),
        }
        assert!(io.send(IoRequest::ReadPreset(PathBuf::from("p.toml"))));
        assert!(matches!(reply(&io), IoReply::PresetRead(_, Err(e)) if e.contains("disk on fire")));
        assert!(io.send(IoRequest::DeleteRun(PathBuf::from("runs/r1"))));
        assert!(matches!(reply(&io), IoReply::Failed(e) if e.contains("disk on fire")));
        // the thread lives on
        assert!(io.send(IoRequest::ListRuns(PathBuf::from("runs"))));
        assert!(matches!(reply(&io), IoReply::Runs(r) if r.is_empty()));
    }
}
