//! The actions that open a dialog or touch files: presets, data paths, runs (rename,
//! delete, resume, fork, export), the runs folder, plot PNGs. Dialogs stay on the UI thread;
//! the reading and writing they lead to goes to the io thread.

use std::sync::Arc;

use super::app::{GradlabApp, Notice};
use super::io::IoRequest;
use super::setup_panel::Action;
use crate::config::Preset;
use crate::export::find_checkpoint;
use crate::train::RunOrigin;

impl GradlabApp {
    /// Actions that open a dialog or touch files (through the io thread).
    pub(super) fn act_on_files(&mut self, action: Action, ctx: &egui::Context) {
        let request = match action {
            Action::LoadPreset(p) => {
                self.preset = *p;
                self.fork_from = None;
                return;
            }
            Action::OpenPreset => match self.dialogs.open_preset() {
                Some(path) => IoRequest::ReadPreset(path),
                None => return,
            },
            Action::SavePreset => {
                let name = format!(
                    "{}.toml",
                    self.preset.title.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                match self.dialogs.save_file("Save preset", &name, "toml") {
                    Some(path) => IoRequest::WritePreset(path, Box::new(self.preset.clone())),
                    None => return,
                }
            }
            Action::PickTransferSource => {
                // a look at the folder only; the training thread reads the weights at Start
                if let Some(dir) = self.dialogs.pick_folder("Exported model or run folder to start from") {
                    if dir.join("config.json").is_file() || dir.join("checkpoints").is_dir() {
                        super::transfer_panel::start_from(&mut self.preset, dir.display().to_string());
                    } else {
                        self.error(format!(
                            "{} is neither an exported model (config.json) nor a run folder (checkpoints/)",
                            dir.display()
                        ));
                    }
                }
                return;
            }
            Action::PickDataPath => {
                // only a listing or a look at the path: the files are read on the preview and
                // training threads
                match self.preset.data.set.as_str() {
                    "text-file" => {
                        if let Some(file) = self.dialogs.pick_file("Text file to model (UTF-8)") {
                            self.preset.data.path = Some(file);
                        }
                    }
                    "csv" => {
                        if let Some(file) = self.dialogs.pick_file("CSV table (a label column and numbers)") {
                            self.preset.data.path = Some(file);
                        }
                    }
                    "cifar10" | "cifar100" | "image-folder" => {
                        let what = match self.preset.data.set.as_str() {
                            "image-folder" => "Folder with one sub-folder of images per class",
                            _ => "Folder with the CIFAR binary files",
                        };
                        if let Some(dir) = self.dialogs.pick_folder(what) {
                            // the files are read (and refused with reasons) when the data loads
                            self.preset.data.path = Some(dir);
                        }
                    }
                    "text-folder" => {
                        if let Some(dir) = self.dialogs.pick_folder("Folder with train/<class>/*.txt") {
                            if dir.join("train").is_dir() {
                                self.preset.data.path = Some(dir);
                            } else {
                                self.error(format!(
                                    "{} has no train/ folder; a text folder holds train/<class>/*.txt (and test/)",
                                    dir.display()
                                ));
                            }
                        }
                    }
                    _ => {
                        if let Some(dir) = self.dialogs.pick_folder("Folder with IDX files") {
                            match crate::data::idx::find_in_folder(&dir) {
                                Ok(_) => self.preset.data.path = Some(dir),
                                Err(e) => self.error(e.to_string()),
                            }
                        }
                    }
                }
                return;
            }
            Action::CancelFork => {
                self.fork_from = None;
                return;
            }
            Action::RefreshRuns => {
                self.last_runs_poll = None;
                return;
            }
            Action::RenameRun(dir, name) => IoRequest::RenameRun(dir, name),
            Action::DeleteRun(dir) => IoRequest::DeleteRun(dir),
            Action::ResumeRun(dir) => {
                match self.runs.loaded.get(&dir) {
                    Some((_, data, _)) => self.preset = data.preset.clone(),
                    None => {
                        if let Ok(p) = Preset::load(&dir.join("preset.toml")) {
                            self.preset = p;
                        }
                    }
                }
                self.start(RunOrigin::Resume(dir.clone()));
                self.io.send(IoRequest::LoadRun(dir));
                return;
            }
            Action::Fork(dir, which) => {
                match (find_checkpoint(&dir, which), Preset::load(&dir.join("preset.toml"))) {
                    (Ok(checkpoint), Ok(preset)) => {
                        let epoch =
                            checkpoint.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                        let run = dir.file_name().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                        self.preset = preset;
                        self.fork_from = Some((checkpoint, format!("{run} / {epoch}")));
                        self.notice = Some(Notice::Info(
                            "Forking: change the hyper-parameters on the left (epochs must exceed the checkpoint's), then Start.".into(),
                        ));
                    }
                    (Err(e), _) | (_, Err(e)) => self.error(e.to_string()),
                }
                return;
            }
            Action::ExportModel(dir, which) => match self.dialogs.pick_folder("Folder for the exported model") {
                Some(out) => IoRequest::ExportModel { run: dir, which, out, format: self.runs.export_format },
                None => return,
            },
            Action::ExportMetrics(dir) => match self.dialogs.save_file("Save metrics", "metrics.csv", "csv") {
                Some(to) => IoRequest::CopyFile { from: dir.join("metrics.csv"), to },
                None => return,
            },
            Action::OpenImageFile(shape) => match self.dialogs.pick_file("Image to classify (PNG, JPEG, WebP)") {
                Some(path) => IoRequest::DecodeImage { path, shape },
                None => return,
            },
            Action::ChangeRunsDir => {
                if let Some(dir) = self.dialogs.pick_folder("Folder to record runs in") {
                    self.set_runs_dir(dir);
                }
                return;
            }
            Action::SavePlotPng(id, rect) => {
                let Some(path) = self.dialogs.save_file("Save plot", &format!("{id}.png"), "png") else { return };
                // the pixels come with a later frame; crop them there and hand them to the io thread
                let pending = self.io.sender();
                let ppp = ctx.pixels_per_point();
                ctx.request_screenshot(move |image| {
                    let cropped = image.region(&rect, Some(ppp));
                    let _ = pending.try_send(IoRequest::WritePng { path, image: Arc::new(cropped) });
                });
                return;
            }
            Action::Start
            | Action::Pause
            | Action::Resume
            | Action::Stop
            | Action::SetLearningRate(_)
            | Action::Generate { .. }
            | Action::Probe(_)
            | Action::OpenLrWindow
            | Action::FindLearningRate
            | Action::Inspect(_)
            | Action::ShowTab(_) => return,
        };
        if !self.io.send(request) {
            self.error("Gradlab is busy with files; try again in a moment.");
        }
    }
}
