//! The io thread's answers as the app takes them up: presets, runs, sweeps, decoded images.

use super::app::{GradlabApp, Notice};
use super::io::{IoReply, IoRequest};

impl GradlabApp {
    pub(super) fn take_io_replies(&mut self) {
        while let Some(reply) = self.io.try_recv() {
            match reply {
                IoReply::Presets(entries) => {
                    let sets = entries.iter().filter_map(|e| e.preset.as_ref().ok()).map(|p| (p.data.clone(), p.seed));
                    self.gallery.thumbnails.request(sets.collect(), self.waker.clone());
                    self.gallery.entries = entries;
                    self.gallery.mark_loaded(&self.preset);
                }
                IoReply::PresetRead(path, Ok(preset)) => {
                    self.preset = *preset;
                    self.fork_from = None;
                    self.notice = Some(Notice::Info(format!("Loaded {}", path.display())));
                }
                IoReply::PresetRead(_, Err(e)) => self.error(e),
                IoReply::Failed(e) => {
                    // a listing that panicked replies this way: let the next one go
                    self.runs_listing = false;
                    self.error(e);
                }
                IoReply::Runs(runs) => {
                    self.runs_listing = false;
                    self.runs.set_runs(runs);
                    for dir in self.runs.stale_selection() {
                        self.io.send(IoRequest::LoadRun(dir));
                    }
                }
                IoReply::Run(dir, Ok(data)) => {
                    if self.run.run_dir.as_ref() == Some(&dir) {
                        self.run.prepend_history(&data);
                    }
                    self.runs.set_loaded(dir, *data);
                }
                IoReply::Run(_, Err(e)) => self.error(e),
                IoReply::SweepRead(path, Ok(opened)) => {
                    self.sweep_panel.set_opened(*opened);
                    self.last_slurm_poll = None;
                    self.notice = Some(Notice::Info(format!("Opened the sweep {}", path.display())));
                    self.last_runs_poll = None;
                }
                IoReply::SweepRead(_, Err(e)) => self.error(e),
                IoReply::SweepStarted(result) => {
                    self.sweep_starting = false;
                    let stop = std::mem::take(&mut self.sweep_stop_pending);
                    match result {
                        Ok(sweep) => {
                            if stop {
                                sweep.stop();
                            }
                            self.sweep = Some(sweep);
                        }
                        Err(e) => self.error(e),
                    }
                }
                IoReply::SlurmStatus(dir, Ok((status, rows))) => self.sweep_panel.set_slurm_status(&dir, status, &rows),
                IoReply::SlurmStatus(_, Err(e)) => self.error(e),
                IoReply::Sweeps(sweeps) => {
                    // a sweep driven elsewhere (the CLI, Slurm) shows its state as its folder says
                    if self.sweep.is_none() && !self.sweep_starting {
                        let shown = self.sweep_panel.id();
                        if let Some(status) =
                            sweeps.iter().find(|s| Some(&s.id) == shown.as_ref()).and_then(|s| s.status)
                        {
                            self.sweep_panel.status = Some(status);
                        }
                    }
                    if let Some(shown) = self.sweep_panel.id() {
                        if let Some(s) = sweeps.iter().find(|s| s.id == shown) {
                            self.sweep_panel.set_metrics(&s.id, &s.metrics);
                        }
                    }
                    self.runs.sweeps = sweeps;
                }
                IoReply::ImageDecoded(path, result) => self.inspect.image_decoded(path, result),
                IoReply::Done(message) => {
                    self.notice = Some(Notice::Info(message));
                    self.last_runs_poll = None;
                }
            }
        }
    }
}
