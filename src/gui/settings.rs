//! What the app keeps from one session to the next, through eframe's storage
//! (`~/.local/share/gradlab/app.ron` on Linux; eframe keeps the window's size and place there
//! too): the open tab, the preset as TOML, the runs folder, how curves are drawn, the theme,
//! compare's metric. A stored preset that no longer parses (an older or hand-edited file)
//! falls back to the default one, with a notice saying why.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::compare::CompareMetric;
use super::curve_plot::PlotSettings;

/// The key of our settings in eframe's storage.
pub const APP_KEY: &str = "gradlab";

/// The name eframe's storage folder is made from (`~/.local/share/gradlab`).
pub const APP_ID: &str = "Gradlab";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Theme {
    /// As the desktop says (dark where it says nothing, as in tests).
    #[default]
    System,
    Dark,
    Light,
}

impl Theme {
    pub fn title(self) -> &'static str {
        match self {
            Theme::System => "System",
            Theme::Dark => "Dark",
            Theme::Light => "Light",
        }
    }

    /// The next one in the top bar's cycle.
    pub fn next(self) -> Theme {
        match self {
            Theme::System => Theme::Dark,
            Theme::Dark => Theme::Light,
            Theme::Light => Theme::System,
        }
    }

    pub fn preference(self) -> egui::ThemePreference {
        match self {
            Theme::System => egui::ThemePreference::System,
            Theme::Dark => egui::ThemePreference::Dark,
            Theme::Light => egui::ThemePreference::Light,
        }
    }
}

/// The tab, saved by name so that a tab added later does not shift the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SavedView {
    #[default]
    Experiments,
    Training,
    Inside,
    Runs,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub preset_toml: String,
    pub view: SavedView,
    /// `None`: recording was off (tests) or never chosen.
    pub runs_dir: Option<PathBuf>,
    pub plot: PlotSettings,
    pub theme: Theme,
    pub compare_metric: CompareMetric,
}

impl Settings {
    /// The stored preset, or why it was not used.
    pub fn preset(&self) -> Option<Result<crate::Preset, String>> {
        if self.preset_toml.trim().is_empty() {
            return None;
        }
        Some(
            // only parsed: a preset that fails validation (its data drive unmounted) is kept
            // and the setup panel names its problem, rather than being replaced by the default
            crate::Preset::parse_toml(&self.preset_toml, "the preset kept from last time")
                .map_err(|e| format!("The preset kept from last time was not loaded ({e}); the default one is open.")),
        )
    }
}

/// Where the GUI records runs unless told otherwise: beside eframe's storage, so a window
/// opened from a menu (whose working directory is anyone's guess) always finds its runs.
/// The CLI keeps `./runs`.
pub fn default_runs_dir() -> PathBuf {
    eframe::storage_dir(APP_ID).map_or_else(|| PathBuf::from("runs"), |d| d.join("runs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_that_does_not_parse_is_refused_with_a_reason() {
        let broken = Settings { preset_toml: "title = 3\n[[[".into(), ..Settings::default() };
        let err = broken.preset().unwrap().unwrap_err();
        assert!(err.contains("kept from last time"), "{err}");
        let good = crate::Preset::builtin("spiral_mlp").unwrap();
        let kept = Settings { preset_toml: good.to_toml(), ..Settings::default() };
        assert_eq!(kept.preset().unwrap().unwrap(), good);
        assert!(Settings::default().preset().is_none());
    }

    #[test]
    fn a_preset_that_parses_but_fails_validation_is_kept() {
        // as when its data drive is not mounted: the setup panel names the problem
        let mut unfit = crate::Preset::builtin("spiral_mlp").unwrap();
        unfit.train.epochs = 0;
        assert!(unfit.validate("test").is_err());
        let kept = Settings { preset_toml: unfit.to_toml(), ..Settings::default() };
        assert_eq!(kept.preset().unwrap().unwrap(), unfit);
    }

    #[derive(Default)]
    struct Memory(std::collections::HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.into(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn settings_survive_eframe_storage() {
        let s = Settings {
            preset_toml: crate::Preset::builtin("spiral_mlp").unwrap().to_toml(),
            view: SavedView::Runs,
            runs_dir: Some(PathBuf::from("/tmp/some runs")),
            plot: PlotSettings { smoothing: 0.9, log_y: true, x_kind: super::super::series::XKind::WallTime },
            theme: Theme::Light,
            compare_metric: CompareMetric::TrainLoss,
        };
        let mut storage = Memory::default();
        eframe::set_value(&mut storage, APP_KEY, &s);
        assert_eq!(eframe::get_value::<Settings>(&storage, APP_KEY), Some(s));
        // an older file without some fields still reads, the rest at their defaults
        eframe::Storage::set_string(&mut storage, APP_KEY, "(theme: Dark)".into());
        let old: Settings = eframe::get_value(&storage, APP_KEY).unwrap();
        assert_eq!(old.theme, Theme::Dark);
        assert_eq!(old.plot, PlotSettings::default());
    }
}
