//! The app's settings between sessions: what `save` gives eframe's storage, how a stored state
//! is taken up at start (the command line's preset and runs folder win, and are not saved over
//! the stored ones unless the user changes them), the theme and the runs folder.

use std::path::PathBuf;

use super::app::{GradlabApp, KeepFromLastTime, Notice, View};
use super::settings::{SavedView, Settings, Theme};
use crate::train::Command;

impl GradlabApp {
    /// What `save` keeps for the next session.
    pub fn settings(&self) -> Settings {
        let preset_toml = self.preset.to_toml();
        Settings {
            preset_toml: match &self.overridden.preset_toml {
                Some((given, stored)) if *given == preset_toml => stored.clone(),
                _ => preset_toml,
            },
            view: match self.view {
                View::Experiments => SavedView::Experiments,
                View::Training => SavedView::Training,
                View::Inside => SavedView::Inside,
                View::Runs | View::Sweep => SavedView::Runs,
            },
            runs_dir: match &self.overridden.runs_dir {
                Some((given, stored)) if *given == self.runs_dir => stored.clone(),
                _ => self.runs_dir.clone(),
            },
            plot: self.plot_settings,
            theme: self.theme,
            compare_metric: self.runs.compare_metric,
        }
    }

    /// Takes up the last session's settings (what `keep` allows of the preset and runs folder).
    pub fn apply_settings(&mut self, saved: Settings, keep: KeepFromLastTime, ctx: &egui::Context) {
        if !keep.preset {
            self.overridden.preset_toml = Some((self.preset.to_toml(), saved.preset_toml.clone()));
        }
        if !keep.runs_dir {
            self.overridden.runs_dir = Some((self.runs_dir.clone(), saved.runs_dir.clone()));
        }
        if keep.preset {
            match saved.preset() {
                Some(Ok(preset)) => self.preset = preset,
                Some(Err(why)) => self.notice = Some(Notice::Info(why)),
                None => {}
            }
        }
        if keep.runs_dir {
            if let Some(dir) = saved.runs_dir.clone() {
                self.set_runs_dir(dir);
            }
        }
        self.view = match saved.view {
            SavedView::Experiments => View::Experiments,
            SavedView::Training => View::Training,
            SavedView::Inside => View::Inside,
            SavedView::Runs => View::Runs,
        };
        self.plot_settings = saved.plot;
        self.set_theme(saved.theme, ctx);
        self.runs.compare_metric = saved.compare_metric;
    }

    pub fn set_theme(&mut self, theme: Theme, ctx: &egui::Context) {
        self.theme = theme;
        ctx.set_theme(theme.preference());
    }

    /// Where runs are recorded from now on (the worker is told; the list is read again).
    pub fn set_runs_dir(&mut self, dir: PathBuf) {
        if self.runs_dir.as_ref() == Some(&dir) {
            return;
        }
        if !self.trainer.send(Command::SetRunsDir(dir.clone())) {
            self.error("The training thread is not answering; restart Gradlab.");
        }
        self.runs_dir = Some(dir);
        self.runs.set_runs(Vec::new());
        self.last_runs_poll = None;
    }

    /// The folder runs are recorded in (`None`: this session records nothing).
    pub fn runs_dir(&self) -> Option<&std::path::Path> {
        self.runs_dir.as_deref()
    }
}
