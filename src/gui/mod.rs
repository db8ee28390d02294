//! The desktop app (eframe/egui). One file per panel; the app holds them together.

mod app;
mod app_io;
mod app_settings;
mod app_sweep;
mod augment_panel;
mod augment_preview;
mod boundary_view;
mod compare;
mod confusion;
pub mod curve_plot;
mod device_combo;
mod dialogs;
mod draw_pad;
mod eval_view;
mod file_actions;
mod filters_view;
mod frame_stats;
mod gallery;
mod generative_views;
mod inside_view;
mod inspect;
mod io;
mod layer_editor;
mod layer_stats_view;
mod live_view;
pub mod lr_view;
mod parallel_coords;
mod plots;
mod preview;
mod run_view;
mod runs_panel;
mod saliency_view;
mod sample_gallery;
pub mod series;
pub mod settings;
mod setup_panel;
mod shortcuts;
mod status_bar;
mod sweep_panel;
mod sweep_table;
mod text_views;
mod thumbnails;
mod transfer_panel;

pub use app::{AppOptions, GradlabApp, KeepFromLastTime, Notice, View};
pub use compare::flatten_preset;
pub use dialogs::Dialogs;
pub use inspect::{GalleryMode, InsidePanel, InspectState};
pub use io::write_png;
pub use run_view::{LiveRun, Phase};
pub use runs_panel::SweepHeader;
pub use sweep_panel::{SweepPanel, TrialRow};
pub use sweep_table::format_value;

/// Runs `work` on a background thread's loop, turning a panic into an error message (the
/// thread lives on for the next request, and the UI shows the message instead of waiting
/// forever for a reply that never comes). The panic hook has already printed the location.
pub(crate) fn catch_panic<T>(what: &str, work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|payload| {
        let reason = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(ToString::to_string))
            .unwrap_or_else(|| "unknown panic".into());
        format!("internal error while {what}: {reason}")
    })
}

/// Opens the window (by default with the MNIST CNN experiment loaded).
pub fn run_native(options: AppOptions) -> eframe::Result<()> {
    let native = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([900.0, 600.0])
            .with_title("Gradlab")
            .with_app_id(settings::APP_ID),
        ..Default::default()
    };
    eframe::run_native(settings::APP_ID, native, Box::new(|cc| Ok(Box::new(GradlabApp::new(cc, options)))))
}
