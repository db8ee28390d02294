//! The architecture editor: the model's layer list, each layer with its settings, output shape
//! and parameter count as you edit; add, remove, move up and down; the first layer that does not
//! fit is marked with what would.

use egui::{DragValue, RichText, Ui};

use crate::config::Preset;
use crate::model::layers::{catalogue, LayerSpec};
use crate::model::{plan_partial, Activation, ModelInput, ModelSpec};

/// The model input of a preset as far as it is known without loading: shape, classes, vocabulary.
pub fn model_input(preset: &Preset, known: Option<(Vec<usize>, usize, Option<usize>)>) -> Option<ModelInput> {
    match known {
        Some((shape, classes, vocab)) => Some(ModelInput { shape, classes, vocab, task: preset.task }),
        None => crate::config::model_input_hint(preset),
    }
}

fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(ToString::to_string).collect::<Vec<_>>().join("×")
}

fn optional_activation(ui: &mut Ui, id: (&str, usize), act: &mut Option<Activation>) {
    let l = ui.label(RichText::new("act").small());
    egui::ComboBox::from_id_salt(id)
        .selected_text(act.map_or("linear", Activation::title))
        .width(70.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(act, None, "linear");
            for a in Activation::ALL {
                ui.selectable_value(act, Some(a), a.title());
            }
        })
        .response
        .labelled_by(l.id);
}

fn number(ui: &mut Ui, label: &str, value: &mut usize, range: std::ops::RangeInclusive<usize>) {
    let l = ui.label(RichText::new(label).small());
    ui.add(DragValue::new(value).range(range)).labelled_by(l.id);
}

/// A setting a preset may leave out (`None`: the layer works it out): a checkbox for that,
/// and the number when given. `auto` is the checkbox's text and hover, `given` the number's
/// label, range and first value.
fn optional_number(
    ui: &mut Ui,
    auto: (&str, &str),
    given: (&str, std::ops::RangeInclusive<usize>, usize),
    value: &mut Option<usize>,
) {
    let mut is_auto = value.is_none();
    if ui.checkbox(&mut is_auto, RichText::new(auto.0).small()).on_hover_text(auto.1).changed() {
        *value = if is_auto { None } else { Some(given.2) };
    }
    if let Some(v) = value {
        number(ui, given.0, v, given.1);
    }
}

/// The settings of one layer, in one row.
fn edit_settings(ui: &mut Ui, i: usize, layer: &mut LayerSpec) {
    match layer {
        LayerSpec::Dense(d) => {
            let auto = ("per class", "one unit per class (the output layer)");
            optional_number(ui, auto, ("units", 1..=65_536, 64), &mut d.units);
            optional_activation(ui, ("dense_act", i), &mut d.activation);
        }
        LayerSpec::Conv2d(c) => {
            number(ui, "ch", &mut c.channels, 1..=1024);
            number(ui, "k", &mut c.kernel, 1..=15);
            number(ui, "stride", &mut c.stride, 1..=8);
            number(ui, "pad", &mut c.padding, 0..=8);
            optional_activation(ui, ("conv_act", i), &mut c.activation);
        }
        LayerSpec::Maxpool(p) | LayerSpec::Avgpool(p) => number(ui, "size", &mut p.size, 1..=8),
        LayerSpec::Dropout(d) => {
            ui.add(egui::Slider::new(&mut d.rate, 0.0..=0.9).text("rate"));
        }
        LayerSpec::Activation(a) => {
            let l = ui.label(RichText::new("function").small());
            egui::ComboBox::from_id_salt(("act", i))
                .selected_text(a.activation.title())
                .width(70.0)
                .show_ui(ui, |ui| {
                    for f in Activation::ALL {
                        ui.selectable_value(&mut a.activation, f, f.title());
                    }
                })
                .response
                .labelled_by(l.id);
        }
        LayerSpec::Embedding(e) => {
            number(ui, "dim", &mut e.dim, 1..=4096);
            let auto = ("data's vocabulary", "one row per token of the data's vocabulary");
            optional_number(ui, auto, ("rows", 1..=1_000_000, 10_002), &mut e.vocab);
        }
        LayerSpec::Rnn(r) | LayerSpec::Lstm(r) | LayerSpec::Gru(r) => {
            number(ui, "hidden", &mut r.hidden, 1..=4096);
            number(ui, "layers", &mut r.layers, 1..=8);
            ui.checkbox(&mut r.bidirectional, RichText::new("bidir").small());
            ui.checkbox(&mut r.return_sequences, RichText::new("every step").small());
        }
        LayerSpec::Attention(a) => {
            number(ui, "heads", &mut a.heads, 1..=64);
            ui.checkbox(&mut a.causal, RichText::new("causal").small());
        }
        LayerSpec::TransformerBlock(b) => {
            number(ui, "heads", &mut b.heads, 1..=64);
            ui.checkbox(&mut b.causal, RichText::new("causal").small());
            let auto = ("MLP 4x", "the MLP's width: four times the layer's");
            optional_number(ui, auto, ("MLP", 1..=16_384, 256), &mut b.ff);
            ui.add(egui::Slider::new(&mut b.dropout, 0.0..=0.9).text("dropout"));
        }
        LayerSpec::Batchnorm(b) => {
            let l = ui.label(RichText::new("momentum").small());
            ui.add(DragValue::new(&mut b.momentum).range(0.0..=1.0).speed(0.01)).labelled_by(l.id);
            let l = ui.label(RichText::new("eps").small());
            ui.add(DragValue::new(&mut b.eps).range(1e-12..=1.0).speed(1e-6).max_decimals(8)).labelled_by(l.id);
        }
        LayerSpec::Dropout2d(d) => {
            ui.add(egui::Slider::new(&mut d.rate, 0.0..=0.9).text("rate"));
        }
        LayerSpec::ConvTranspose2d(c) => {
            number(ui, "ch", &mut c.channels, 1..=1024);
            number(ui, "k", &mut c.kernel, 1..=15);
            number(ui, "stride", &mut c.stride, 1..=8);
            number(ui, "pad", &mut c.padding, 0..=8);
            number(ui, "out pad", &mut c.output_padding, 0..=7);
            optional_activation(ui, ("deconv_act", i), &mut c.activation);
        }
        LayerSpec::Upsample(u) => number(ui, "scale", &mut u.scale, 1..=8),
        LayerSpec::Reshape(r) => {
            // [c, h, w] is what a decoder gives; a preset with another rank keeps its shape
            for (dim, label) in r.shape.iter_mut().zip(["c", "h", "w"]) {
                number(ui, label, dim, 1..=4096);
            }
        }
        LayerSpec::Flatten
        | LayerSpec::Position(_)
        | LayerSpec::Layernorm(_)
        | LayerSpec::GlobalMean
        | LayerSpec::Sample => {}
    }
}

/// Draws the editor for `preset.model`, converting the `kind = "mlp" | "cnn"` form to its
/// layer list first (same layers, same names, same numbers). Returns the plan's problem, if any.
pub fn ui(ui: &mut Ui, preset: &mut Preset, input: Option<&ModelInput>) -> Option<String> {
    // the older form is shown as its list and becomes one when edited
    let shape = input.map_or(vec![1, 28, 28], |i| i.shape.clone());
    let mut model = match preset.model.to_layer_list(&shape) {
        Ok(list) => list,
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e.to_string());
            return Some(e.to_string());
        }
    };
    let (planned, error) = match input {
        Some(input) => plan_partial(&model, input),
        None => (vec![], None),
    };
    let before = model.clone();
    let freeze = preset.transfer.as_mut().map(|t| &mut t.freeze);
    let error = edit(ui, &mut model, &planned, error, freeze);
    if model != before {
        preset.model = model;
    }
    error
}

fn edit(
    ui: &mut Ui,
    model: &mut ModelSpec,
    planned: &[crate::model::Planned],
    error: Option<crate::Error>,
    mut freeze: Option<&mut Vec<String>>,
) -> Option<String> {
    // the layer the error names: `model.layers[3].kernel` -> 3
    let bad = error.as_ref().and_then(|e| match e {
        crate::Error::Config { key, .. } => key.strip_prefix("model.layers[")?.split(']').next()?.parse::<usize>().ok(),
        _ => None,
    });
    let layers = &mut model.layers;
    let (mut remove, mut swap) = (None, None);
    let total: usize = planned.iter().map(crate::model::Planned::param_count).fold(0, usize::saturating_add);
    let buffers: usize = planned.iter().map(crate::model::Planned::buffer_count).fold(0, usize::saturating_add);
    if buffers > 0 {
        // as Keras' summary: the running statistics are held but not trained
        ui.label(format!(
            "Layers ({} trainable parameters, {} in buffers)",
            super::setup_panel::group_thousands(total),
            super::setup_panel::group_thousands(buffers)
        ));
    } else {
        ui.label(format!("Layers ({} parameters)", super::setup_panel::group_thousands(total)));
    }
    let count = layers.len();
    for (i, layer) in layers.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            let number = ui.label(format!("{}", i + 1)).id;
            if ui.add_enabled(i > 0, egui::Button::new("^").small()).on_hover_text("Move up").clicked() {
                swap = Some(i - 1);
            }
            if ui.add_enabled(i + 1 < count, egui::Button::new("v").small()).on_hover_text("Move down").clicked() {
                swap = Some(i);
            }
            let remove_button = ui.add_enabled(count > 1, egui::Button::new("x").small());
            if remove_button.on_hover_text("Remove this layer").clicked() {
                remove = Some(i);
            }
            let mut kind = layer.type_name();
            let combo =
                egui::ComboBox::from_id_salt(("layer_type", i)).selected_text(kind).width(110.0).show_ui(ui, |ui| {
                    for fresh in catalogue() {
                        let name = fresh.type_name();
                        if ui.selectable_value(&mut kind, name, name).clicked() && name != layer.type_name() {
                            *layer = fresh;
                        }
                    }
                });
            combo.response.labelled_by(number);
            match (planned.get(i), bad) {
                (_, Some(b)) if b == i => {
                    ui.label(RichText::new("does not fit").color(ui.visuals().error_fg_color));
                }
                (Some(p), _) if bad.is_none_or(|b| i < b) => {
                    let params = p.param_count();
                    let text = if params > 0 {
                        format!(
                            "out {}  ({} params)",
                            shape_text(&p.output),
                            super::setup_panel::group_thousands(params)
                        )
                    } else {
                        format!("out {}", shape_text(&p.output))
                    };
                    ui.label(RichText::new(text).small());
                    // transfer learning: layers with weights can keep the loaded ones
                    if let (Some(freeze), false) = (freeze.as_deref_mut(), p.name.is_empty()) {
                        let mut frozen = freeze.contains(&p.name);
                        let hover = format!("Keep {}'s loaded weights while training", p.name);
                        if ui.checkbox(&mut frozen, RichText::new("frozen").small()).on_hover_text(hover).changed() {
                            freeze.retain(|f| *f != p.name);
                            if frozen {
                                freeze.push(p.name.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        });
        ui.horizontal(|ui| {
            ui.add_space(24.0);
            edit_settings(ui, i, layer);
        });
    }
    if let Some(i) = remove {
        layers.remove(i);
    }
    if let Some(i) = swap {
        layers.swap(i, i + 1);
    }
    ui.horizontal(|ui| {
        let l = ui.label("Add");
        let added = egui::ComboBox::from_id_salt("add_layer").selected_text("layer…").show_ui(ui, |ui| {
            for fresh in catalogue() {
                if ui.selectable_label(false, fresh.type_name()).clicked() {
                    // before the output layer, where new hidden layers go
                    let at = match layers.last() {
                        Some(LayerSpec::Dense(d)) if d.units.is_none() => layers.len() - 1,
                        _ => layers.len(),
                    };
                    layers.insert(at, fresh);
                }
            }
        });
        added.response.labelled_by(l.id);
    });
    error.map(|e| e.to_string())
}

/// A sensible model for a data set of this shape when the current one cannot read it.
pub fn default_model_for(kind: crate::data::SetKind) -> ModelSpec {
    use crate::data::SetKind;
    use crate::model::layers::{Conv2dSpec, DenseSpec, EmbeddingSpec, PoolSpec, RecurrentSpec};
    let dense =
        |units: Option<usize>, activation: Option<Activation>| LayerSpec::Dense(DenseSpec { units, activation });
    let relu = Some(Activation::Relu);
    let layers = if kind == SetKind::Text {
        vec![
            LayerSpec::Embedding(EmbeddingSpec { vocab: None, dim: 32 }),
            LayerSpec::Lstm(RecurrentSpec::default()),
            dense(None, None),
        ]
    } else if kind == SetKind::TextStream {
        vec![
            LayerSpec::Embedding(EmbeddingSpec { vocab: None, dim: 32 }),
            LayerSpec::Lstm(RecurrentSpec { hidden: 128, return_sequences: true, ..RecurrentSpec::default() }),
            dense(None, None),
        ]
    } else if kind == SetKind::Image {
        vec![
            LayerSpec::Conv2d(Conv2dSpec { activation: relu, ..Conv2dSpec::default() }),
            LayerSpec::Maxpool(PoolSpec { size: 2 }),
            LayerSpec::Flatten,
            dense(None, None),
        ]
    } else {
        vec![dense(Some(32), relu), dense(Some(32), relu), dense(None, None)]
    };
    ModelSpec::from_layers(layers)
}
