//! Keyboard shortcuts. One table drives both the handler and the help overlay (F1 or `?`), so
//! the two cannot disagree; a shortcut does what its button does (it becomes the same
//! `Action`).

use egui::{Context, Key, KeyboardShortcut, Modifiers};

use super::app::View;

/// What a shortcut asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Do {
    Start,
    /// Pause when running, Resume when paused.
    PauseResume,
    Stop,
    OpenPreset,
    SavePreset,
    Tab(View),
    Help,
}

pub struct Shortcut {
    /// As the help overlay writes it.
    pub keys: &'static str,
    pub what: &'static str,
    pub key: Key,
    pub ctrl: bool,
    pub does: Do,
}

const fn ctrl(keys: &'static str, what: &'static str, key: Key, does: Do) -> Shortcut {
    Shortcut { keys, what, key, ctrl: true, does }
}

pub const SHORTCUTS: &[Shortcut] = &[
    ctrl("Ctrl+Enter", "Start", Key::Enter, Do::Start),
    ctrl("Ctrl+P", "Pause / Resume", Key::P, Do::PauseResume),
    ctrl("Ctrl+.", "Stop", Key::Period, Do::Stop),
    ctrl("Ctrl+O", "Open preset…", Key::O, Do::OpenPreset),
    ctrl("Ctrl+S", "Save preset…", Key::S, Do::SavePreset),
    ctrl("Ctrl+1", "Experiments tab", Key::Num1, Do::Tab(View::Experiments)),
    ctrl("Ctrl+2", "Training tab", Key::Num2, Do::Tab(View::Training)),
    ctrl("Ctrl+3", "Inside tab", Key::Num3, Do::Tab(View::Inside)),
    ctrl("Ctrl+4", "Runs tab", Key::Num4, Do::Tab(View::Runs)),
    Shortcut { keys: "F1 or ?", what: "This help", key: Key::F1, ctrl: false, does: Do::Help },
];

/// The shortcuts pressed this frame, consumed so no widget sees them too.
pub fn handle(ctx: &Context) -> Vec<Do> {
    let typing = ctx.text_edit_focused();
    let mut out = Vec::new();
    ctx.input_mut(|input| {
        for s in SHORTCUTS {
            let modifiers = if s.ctrl { Modifiers::COMMAND } else { Modifiers::NONE };
            if input.consume_shortcut(&KeyboardShortcut::new(modifiers, s.key)) {
                out.push(s.does);
            }
        }
        // `?` is text: only when no text field would take it
        if !typing {
            let before = input.events.len();
            input.events.retain(|e| !matches!(e, egui::Event::Text(t) if t == "?"));
            if input.events.len() != before && !out.contains(&Do::Help) {
                out.push(Do::Help);
            }
        }
    });
    out
}

/// The help overlay; returns false once it is closed (Escape, a click outside, Close).
pub fn help(ctx: &Context) -> bool {
    let response = egui::Modal::new(egui::Id::unique("help_overlay")).show(ctx, |ui| {
        ui.heading("Keyboard shortcuts");
        ui.add_space(4.0);
        egui::Grid::new("shortcuts_grid").num_columns(2).spacing([24.0, 6.0]).striped(true).show(ui, |ui| {
            for s in SHORTCUTS {
                ui.label(egui::RichText::new(s.keys).monospace().strong());
                ui.label(s.what);
                ui.end_row();
            }
        });
        ui.add_space(6.0);
        ui.label(egui::RichText::new("On a Mac, Cmd takes the place of Ctrl.").small().weak());
        ui.button("Close").clicked()
    });
    !(response.inner || response.should_close())
}
