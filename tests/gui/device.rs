//! The setup panel's Device choice and the device a run got, in the status bar.

use egui_kittest::kittest::Queryable;
use gradlab::Preset;

use super::{harness, run_to_completion, settle};

/// XOR's small MLP for a few epochs: over in seconds on either path.
fn short_run() -> Preset {
    let mut preset = Preset::builtin("xor_mlp").unwrap();
    preset.train.epochs = 3;
    preset
}

/// Picks `choice` in the Device combo box, starts the run and waits for its end.
fn run_on(h: &mut egui_kittest::Harness<'_, gradlab::gui::GradlabApp>, choice: &str) {
    // the Training settings sit below the fold of the setup panel
    h.get_by_label("Device").scroll_to_me();
    h.run();
    h.get_by_label("Device").click();
    h.run();
    h.get_by_label(choice).click();
    h.run();
    assert_eq!(h.state().preset.train.device.to_string(), choice);
    run_to_completion(h);
}

#[test]
fn the_status_bar_shows_the_portable_path_when_chosen() {
    let mut h = harness(short_run());
    settle(&mut h);
    run_on(&mut h, "cpu-portable");
    // the run is over and the status bar still says where it ran
    h.get_by_label("CPU (portable path)");
    assert_eq!(h.state().run.device, "CPU (portable path)");
}

/// No GPU here: `auto` trains on the CPU and the status bar says why (a cuda build on a
/// machine with a driver would say `CUDA 0` instead).
#[test]
fn auto_runs_on_the_cpu_here_and_says_why() {
    let mut h = harness(short_run());
    settle(&mut h);
    run_on(&mut h, "auto");
    let device = h.state().run.device.clone();
    if device != "CUDA 0" {
        if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
            assert_eq!(device, "CPU (auto: built without CUDA)");
        } else if !cfg!(feature = "metal") && !gradlab::device::cuda_driver_loads() {
            assert_eq!(device, "CPU (auto: no NVIDIA driver)");
        } else {
            // a driver but no usable GPU (none, hidden, too old): any reason, still on the CPU
            assert!(device.starts_with("CPU (auto: "), "{device}");
        }
    }
    h.get_by_label(&device);
}
