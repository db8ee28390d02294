//! Preset validation, and turning TOML errors into messages that name the file and the key.

use super::{DeviceKind, Preset};
use crate::data::{set_info, synthetic, SetKind, CATALOGUE};
use crate::error::{Error, Result};

/// The input shape and class count of a data set, known without loading it where possible.
pub fn input_shape_hint(preset: &Preset) -> Option<(Vec<usize>, usize)> {
    let data = &preset.data;
    Some(match data.set.as_str() {
        "mnist-5k" | "fashion-mnist" => (vec![1, 28, 28], 10),
        "digits" => (vec![1, 8, 8], 10),
        "iris" => (vec![4], 3),
        "wine" => (vec![13], 3),
        "breast-cancer" => (vec![30], 2),
        "spiral" | "blobs" => (vec![2], data.classes),
        "moons" | "circles" | "xor" => (vec![2], 2),
        "cifar10" | "cifar100" | "image-folder" | "csv" => return crate::data::user_estimate::shape_hint(data),
        _ => return crate::data::text::estimate::shape_hint(data),
    })
}

/// What a model of this preset reads and predicts, as far as it is known without loading the
/// data: a text set's vocabulary is at most `data.vocab_size` plus `<pad>` and `<unk>`.
pub fn model_input_hint(preset: &Preset) -> Option<crate::model::ModelInput> {
    let (shape, classes) = input_shape_hint(preset)?;
    let text = set_info(&preset.data.set).is_some_and(|s| s.kind.is_text());
    let vocab = text.then(|| preset.data.vocab_size.saturating_add(2));
    Some(crate::model::ModelInput { shape, classes, vocab, task: preset.task })
}

pub(super) fn validate(p: &Preset, origin: &str) -> Result<()> {
    let err = |key: &str, msg: String| Err(Error::config(origin, key, msg));
    let Some(info) = set_info(&p.data.set) else {
        return err(
            "data.set",
            format!(
                "unknown data set `{}`; expected one of {}",
                p.data.set,
                CATALOGUE.iter().map(|s| s.id).collect::<Vec<_>>().join(", ")
            ),
        );
    };
    if !(p.data.validation_fraction > 0.0 && p.data.validation_fraction < 1.0) {
        return err(
            "data.validation_fraction",
            format!("{} must be between 0 and 1 (exclusive)", p.data.validation_fraction),
        );
    }
    if info.kind == SetKind::Points2d {
        if p.data.samples < 10 {
            return err("data.samples", format!("{} is too few; use at least 10", p.data.samples));
        }
        if p.data.samples > synthetic::MAX_SAMPLES {
            return err(
                "data.samples",
                format!("{} is too many for a synthetic set; use at most {}", p.data.samples, synthetic::MAX_SAMPLES),
            );
        }
        if !(0.0..=10.0).contains(&p.data.noise) {
            return err("data.noise", format!("{} must be between 0 and 10", p.data.noise));
        }
        if matches!(info.id, "spiral" | "blobs") && !(2..=100).contains(&p.data.classes) {
            return err("data.classes", format!("{} must be between 2 and 100", p.data.classes));
        }
    }
    if info.id == "idx" && p.data.path.is_none() {
        return err("data.path", "the `idx` set needs the folder that holds the IDX files".into());
    }
    if let Some(path) = &p.data.path {
        if !path.exists() {
            return err("data.path", format!("`{}` does not exist", path.display()));
        }
    }
    text_data(p, info.id, info.kind.is_text()).map_err(|(key, msg)| Error::config(origin, key, msg))?;
    user_data(p, info.id).map_err(|(key, msg)| Error::config(origin, key, msg))?;
    let shape = input_shape_hint(p).map(|(shape, _)| shape);
    p.augment.check(info.kind, &p.data.set, shape.as_deref()).map_err(|(key, msg)| Error::config(origin, key, msg))?;
    if p.task.is_generative() && !p.augment.is_off() {
        // the reconstruction target is the (augmented) input, and noise or brightness push it
        // out of the 0..1 the binary cross-entropy needs
        return err(
            "augment",
            format!("a `{}` model learns to give back its input; leave [augment] out", p.task.title()),
        );
    }
    let t = &p.train;
    if t.batch_size == 0 {
        return err("train.batch_size", "must be at least 1".into());
    }
    if t.epochs == 0 {
        return err("train.epochs", "must be at least 1".into());
    }
    if !(t.learning_rate.is_finite() && t.learning_rate > 0.0 && t.learning_rate <= 10.0) {
        return err("train.learning_rate", format!("{} must be a positive number up to 10", t.learning_rate));
    }
    if !(0.0..1.0).contains(&t.momentum) {
        return err("train.momentum", format!("{} must be in [0, 1)", t.momentum));
    }
    if !(t.clip_grad_norm.is_finite() && t.clip_grad_norm >= 0.0) {
        return err(
            "train.clip_grad_norm",
            format!("{} must be a norm of 0 or more (0: no clipping)", t.clip_grad_norm),
        );
    }
    // a language model reads one long text; a classifier reads samples with classes
    let stream = info.kind == crate::data::SetKind::TextStream;
    if stream != (p.task == crate::task::Task::LanguageModel) {
        return err(
            "task",
            if stream {
                format!("`{}` is one long text for a language model; set task = \"language_model\"", p.data.set)
            } else {
                format!("a language model needs a text to model (`fortunes-text` or `text-file`), not `{}`", p.data.set)
            },
        );
    }
    if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
        return err("train.weight_decay", format!("{} must be 0 or positive", t.weight_decay));
    }
    if t.schedule.warmup_epochs < 0.0 || t.schedule.warmup_epochs > t.epochs as f64 {
        return err(
            "train.schedule.warmup_epochs",
            format!("{} must be between 0 and the number of epochs", t.schedule.warmup_epochs),
        );
    }
    if t.schedule.step_epochs == 0 {
        return err("train.schedule.step_epochs", "must be at least 1".into());
    }
    if !(t.schedule.gamma > 0.0 && t.schedule.gamma <= 1.0) {
        return err("train.schedule.gamma", format!("{} must be in (0, 1]", t.schedule.gamma));
    }
    if !(t.checkpoint_minutes.is_finite() && (0.0..=100_000.0).contains(&t.checkpoint_minutes)) {
        return err(
            "train.checkpoint_minutes",
            format!("{} must be 0 (only at epoch ends) or a number of minutes", t.checkpoint_minutes),
        );
    }
    if let Some(gb) = t.max_memory_gb {
        if !(gb.is_finite() && gb > 0.0 && gb < 1e9) {
            return err("train.max_memory_gb", format!("{gb} must be a positive number of GiB"));
        }
    }
    match t.device {
        DeviceKind::Cuda(_) if !cfg!(feature = "cuda") => {
            return err("train.device", format!("`{}` needs gradlab built with `--features cuda`", t.device))
        }
        DeviceKind::Metal(_) if !cfg!(feature = "metal") => {
            return err("train.device", format!("`{}` needs gradlab built with `--features metal`", t.device))
        }
        _ => {}
    }
    for (key, beta) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
        if !(0.0..1.0).contains(&beta) {
            return err(key, format!("{beta} must be in [0, 1)"));
        }
    }
    if p.task.is_generative() && info.kind.is_text() {
        return err(
            "task",
            format!("a {} model makes numbers, not text; `{}` is a text set", p.task.title(), p.data.set),
        );
    }
    match (&p.discriminator, p.task) {
        (None, crate::task::Task::Gan) => {
            return err(
                "discriminator",
                "a GAN needs a `[discriminator]` with its layers, ending in one logit (real or fake)".into(),
            )
        }
        (Some(_), task) if task != crate::task::Task::Gan => {
            return err("discriminator", "only a GAN (task = \"gan\") has a discriminator".into())
        }
        _ => {}
    }
    if let Some(input) = model_input_hint(p) {
        crate::model::plan(&p.model, &input).map_err(|e| match e {
            Error::Config { key, message, .. } => Error::config(origin, key, message),
            other => other,
        })?;
        // the source is read (and found missing) when a fresh run starts: a recorded run, resumed
        // or exported, needs it no more
        if let Some(t) = &p.transfer {
            crate::train::transfer::validate(t, &p.model, &input, origin)?;
        }
        if let Some(spec) = &p.discriminator {
            crate::model::plan(spec, &discriminator_input(&input.shape)).map_err(|e| discriminator_error(e, origin))?;
        }
    }
    Ok(())
}

/// The keys of the sets a user brings: the image size, and a path of the right kind. Without a
/// path the preset is still sound (cifar10_cnn is for the user's own folder); loading asks.
fn user_data(p: &Preset, id: &str) -> std::result::Result<(), (&'static str, String)> {
    let d = &p.data;
    if id == "image-folder" {
        crate::data::image_folder::input_shape(d).map_err(|_| {
            let max = crate::data::image_folder::MAX_SIDE;
            ("data.image_size", format!("{:?}: each side must be 1 to {max} pixels", d.image_size))
        })?;
    }
    match (id, &d.path) {
        ("cifar10" | "cifar100" | "image-folder", Some(path)) if !path.is_dir() => {
            Err(("data.path", format!("`{}` is not a folder", path.display())))
        }
        ("csv", Some(path)) if !path.is_file() => Err(("data.path", format!("`{}` is not a file", path.display()))),
        _ => Ok(()),
    }
}

/// What a GAN's discriminator reads (a sample of the data) and gives (one logit).
pub fn discriminator_input(data_shape: &[usize]) -> crate::model::ModelInput {
    crate::model::ModelInput::classify(data_shape, 1)
}

/// A discriminator's plan error, naming its own table: `discriminator.layers[2]`.
pub fn discriminator_error(e: Error, origin: &str) -> Error {
    match e {
        Error::Config { key, message, .. } => {
            let key = match key.strip_prefix("model.") {
                Some(rest) => format!("discriminator.{rest}"),
                None => key,
            };
            Error::config(origin, key, message)
        }
        other => other,
    }
}

/// The text sets' keys: lengths and vocabulary in range, the path they need, known languages.
fn text_data(p: &Preset, id: &str, is_text: bool) -> std::result::Result<(), (&'static str, String)> {
    use crate::data::text::{wordlists, MAX_LEN, MAX_VOCAB};
    let d = &p.data;
    if is_text && !(1..=MAX_LEN).contains(&d.max_len) {
        return Err(("data.max_len", format!("{} must be between 1 and {MAX_LEN} tokens", d.max_len)));
    }
    if is_text && !(1..=MAX_VOCAB).contains(&d.vocab_size) {
        return Err(("data.vocab_size", format!("{} must be between 1 and {MAX_VOCAB} tokens", d.vocab_size)));
    }
    // without a path the preset is still sound (imdb_lstm is for the user's own aclImdb folder):
    // loading asks for the path, and the GUI's Start waits for it
    match (id, &d.path) {
        ("text-folder", Some(path)) if !path.join("train").is_dir() => {
            return Err((
                "data.path",
                format!("`{}` holds no train/ folder; a text folder has train/<class>/*.txt", path.display()),
            ))
        }
        ("text-file", Some(path)) if !path.is_file() => {
            return Err(("data.path", format!("`{}` is not a file", path.display())))
        }
        _ => {}
    }
    // other sets ignore the key, so switching sets in the GUI never leaves an invalid preset
    if id == "word-languages" && !d.languages.is_empty() {
        for (i, name) in d.languages.iter().enumerate() {
            if wordlists::language(name).is_none() {
                let known: Vec<_> = wordlists::LANGUAGES.iter().map(|l| l.name).collect();
                return Err((
                    "data.languages",
                    format!("unknown language `{name}`; expected some of {}", known.join(", ")),
                ));
            }
            if d.languages[..i].contains(name) {
                return Err(("data.languages", format!("`{name}` is named twice")));
            }
        }
        if d.languages.len() < 2 {
            return Err(("data.languages", "name at least 2 languages to tell apart".into()));
        }
    }
    Ok(())
}

/// The dotted key at a byte offset of a TOML document: the innermost `[table]` above it and the
/// key on its line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let mut table = String::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let end = pos + line.len();
        if trimmed.starts_with('[') {
            table = trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if offset < end {
            let key = trimmed.split('=').next().map(str::trim).filter(|k| !k.is_empty() && !k.starts_with('['));
            return Some(match (table.is_empty(), key) {
                (_, None) => table,
                (true, Some(k)) => k.to_string(),
                (false, Some(k)) => format!("{table}.{k}"),
            });
        }
        pos = end;
    }
    None
}

pub(crate) fn toml_error(e: &toml::de::Error, text: &str, origin: &str) -> Error {
    let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
    let key = e.span().and_then(|s| key_at(text, s.start)).unwrap_or_default();
    let message = e.message().trim().to_string();
    let message = match line {
        Some(l) => format!("{message} (line {l})"),
        None => message,
    };
    Error::config(origin, key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_finds_table_and_key() {
        let text = "seed = 1\n[train]\nbatch_size = \"x\"\n";
        assert_eq!(key_at(text, 2).as_deref(), Some("seed"));
        let off = text.find("\"x\"").unwrap();
        assert_eq!(key_at(text, off).as_deref(), Some("train.batch_size"));
    }
}
