//! The text views: what a language model writes (prompt, length, temperature; a new sample each
//! epoch and on request), a classifier's class probabilities for typed text (updated as you
//! type), and the embedding map (the most frequent tokens' vectors in 2-D by PCA, labelled and
//! zoomable). The training thread computes all three from its weights; these only draw what
//! its events carried and send requests.

use egui::{RichText, Ui};
use egui_plot::{Plot, PlotPoint, Points, Text};

use super::run_view::{LiveRun, Phase};
use super::setup_panel::Action;

/// What the user typed into the text views; kept across runs.
pub struct TextViewState {
    pub prompt: String,
    pub length: usize,
    pub temperature: f64,
    pub probe: String,
}

impl Default for TextViewState {
    fn default() -> Self {
        Self { prompt: "The ".into(), length: 200, temperature: 0.8, probe: String::new() }
    }
}

/// The training thread answers while a run trains or is paused, and after it ends with its
/// final weights (until the next run starts).
fn answers(phase: Phase) -> bool {
    use crate::train::RunStatus;
    matches!(phase, Phase::Running | Phase::Paused | Phase::Finished(RunStatus::Completed | RunStatus::Stopped))
}

/// The language model's sample panel.
pub fn samples(ui: &mut Ui, run: &LiveRun, state: &mut TextViewState, actions: &mut Vec<Action>) {
    ui.strong("Samples");
    let active = answers(run.phase);
    ui.horizontal(|ui| {
        let l = ui.label("Prompt");
        ui.add(egui::TextEdit::singleline(&mut state.prompt).desired_width(180.0)).labelled_by(l.id);
        let l = ui.label("Length");
        ui.add(egui::DragValue::new(&mut state.length).range(1..=crate::train::text::MAX_GENERATE)).labelled_by(l.id);
    });
    ui.horizontal(|ui| {
        ui.add(egui::Slider::new(&mut state.temperature, 0.0..=2.0).text("Temperature"));
        let generate = ui.add_enabled(active, egui::Button::new("Generate"));
        let generate = generate.on_hover_text("Writes from the current weights (at the next batch while training)");
        if generate.clicked() {
            actions.push(Action::Generate {
                prompt: state.prompt.clone(),
                length: state.length,
                temperature: state.temperature,
            });
        }
    });
    if run.text_samples.is_empty() {
        ui.label(RichText::new("A sample appears after each epoch.").weak());
    }
    egui::ScrollArea::vertical().id_salt("samples").max_height(ui.available_height().max(120.0)).show(ui, |ui| {
        for sample in run.text_samples.iter().rev() {
            ui.label(
                RichText::new(format!(
                    "epoch {} · temperature {:.1} · {:.0} ms",
                    sample.epoch, sample.temperature, sample.millis
                ))
                .small()
                .weak(),
            );
            ui.label(RichText::new(format!("{}{}", sample.prompt, sample.text)).monospace());
            ui.add_space(4.0);
        }
    });
}

/// The classifier's probabilities for typed text.
pub fn probe(ui: &mut Ui, run: &LiveRun, state: &mut TextViewState, actions: &mut Vec<Action>) {
    ui.strong("Try it");
    let active = answers(run.phase);
    let l = ui.label("Type a word or sentence");
    let edit =
        ui.add_enabled(active, egui::TextEdit::singleline(&mut state.probe).desired_width(260.0)).labelled_by(l.id);
    if edit.changed() && !state.probe.trim().is_empty() {
        actions.push(Action::Probe(state.probe.clone()));
    }
    if !active {
        ui.label(RichText::new("Answers once a run has started.").small().weak());
    }
    let Some((text, probabilities)) = &run.probe else { return };
    ui.label(RichText::new(format!("for \"{text}\"")).small().weak());
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (class, p) in ranked.into_iter().take(8) {
        let name = run.class_names.get(class).map_or("?", String::as_str);
        ui.horizontal(|ui| {
            ui.add(egui::ProgressBar::new(p).desired_width(120.0).text(format!("{:.1}%", 100.0 * p)));
            ui.label(name);
        });
    }
}

/// The embedding map: tokens at their first two principal components.
pub fn embedding(ui: &mut Ui, run: &LiveRun, height: f32) {
    let Some(map) = &run.embedding else { return };
    ui.strong(format!("Embedding map (epoch {}, {} most frequent tokens, PCA)", map.epoch, map.tokens.len()));
    Plot::new("embedding_map").height(height).data_aspect(1.0).show(ui, |plot| {
        let points: Vec<[f64; 2]> = map.points.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
        plot.points(Points::new("tokens", points).radius(2.0));
        for (token, p) in map.tokens.iter().zip(&map.points) {
            let shown = match token.as_str() {
                " " => "(space)".to_string(),
                "\n" => "\\n".to_string(),
                t => t.to_string(),
            };
            plot.text(Text::new(token.as_str(), PlotPoint::new(p[0], p[1]), RichText::new(shown).small()));
        }
    });
}
