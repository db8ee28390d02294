//! Character-level language models over one long text: the fortunes, or any UTF-8 file.
//!
//! The text is split by position, not by sample: the last `validation_fraction` of it is held
//! out, so validation measures text the model has not seen (random windows would leak their
//! neighbours' characters). Windows of `max_len + 1` ids do not overlap (stride `max_len`, each
//! window's last id is the next one's first) and none straddles the cut.

use std::collections::HashMap;
use std::path::Path;

use super::{read_text, tokenize, vocab, TextInfo, TokenLevel};
use crate::data::{DataSpec, Presplit, Raw, Split, SplitInfo};
use crate::error::{Error, Result};

/// The largest text file a language model reads (`text-file`).
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// `text-file`: a language model over the UTF-8 file at `data.path`.
pub(in crate::data) fn text_file(path: &Path, spec: &DataSpec) -> Result<Raw> {
    let text = read_text(path, MAX_TEXT_FILE_BYTES)?;
    language_model(&text, spec, path.display().to_string())
}

/// The start of every window of `len + 1` ids within `[from, to)`, `len` apart.
fn window_starts(from: usize, to: usize, len: usize) -> impl Iterator<Item = usize> {
    (from..to).step_by(len).take_while(move |s| s + len < to)
}

/// A language model's data set from one text, named `source` in errors.
pub(in crate::data) fn language_model(text: &str, spec: &DataSpec, source: String) -> Result<Raw> {
    let len = spec.max_len;
    let mut info = TextInfo { level: TokenLevel::Char, tokens: Vec::new(), max_len: len, lowercase: false };
    // chars, not one String per character: a 64 MiB text would otherwise take gigabytes
    let chars: Vec<char> = text.chars().filter(|&c| tokenize::keep_char(c)).collect();
    let n = chars.len();
    let held_out = (n as f64 * spec.validation_fraction).round() as usize;
    let cut = n - held_out.min(n);
    if cut <= len || n - cut <= len {
        return Err(Error::format(
            &source,
            format!(
                "holds {n} characters: too short for windows of {} (data.max_len + 1) on both sides of the \
                 validation cut at {cut}; use a longer text or a smaller data.max_len",
                len + 1
            ),
        ));
    }
    let mut per_char: HashMap<char, u64> = HashMap::new();
    for &c in &chars[..cut] {
        *per_char.entry(c).or_insert(0) += 1;
    }
    let mut counts = vocab::Counts::default();
    for (c, k) in per_char {
        counts.add_count(c.to_string(), k);
    }
    info.tokens = counts.vocabulary(spec.vocab_size);
    let index: HashMap<char, u32> =
        info.tokens.iter().enumerate().skip(2).filter_map(|(i, t)| Some((t.chars().next()?, i as u32))).collect();
    let ids: Vec<f32> = chars.iter().map(|c| index.get(c).copied().unwrap_or(vocab::UNK_ID) as f32).collect();
    drop(chars);

    let mut all = Split::default();
    let mut train = window_starts(0, cut, len).count();
    for start in window_starts(0, cut, len).chain(window_starts(cut, n, len)) {
        all.features.extend_from_slice(&ids[start..=start + len]);
        all.labels.push(0); // the targets are the window's own next ids
    }
    let val_idx: Vec<usize> = (train..all.len()).collect();
    if spec.limit > 0 {
        train = train.min(spec.limit);
    }
    let train_idx: Vec<usize> = (0..train).collect();
    let split = SplitInfo::of(&all, &val_idx, train, None)?;
    Ok(Raw {
        // the model's outputs are the vocabulary: one class per token
        class_names: info.tokens.clone(),
        input_shape: vec![len],
        features: all.select(&train_idx),
        presplit: Some(Presplit { validation: all.select(&val_idx), split }),
        test: None,
        scale: 1.0,
        source,
        text: Some(info),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_do_not_cross_the_end() {
        assert_eq!(window_starts(0, 10, 3).collect::<Vec<_>>(), [0, 3, 6]);
        assert_eq!(window_starts(0, 9, 3).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(window_starts(9, 13, 3).collect::<Vec<_>>(), [9]);
    }
}
