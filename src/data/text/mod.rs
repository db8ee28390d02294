//! Text data: classification of text samples (an IMDB-layout folder, fortune categories, the
//! language of a word) and character-level language models (the fortunes as one text, any UTF-8
//! file).
//!
//! Token ids travel in [`Split::features`] as `f32` (exact up to 2^24), one row of `max_len` ids
//! per sample with `<pad>` = 0 and `<unk>` = 1, so batching and splitting work as for images. A
//! language model's rows are windows of `max_len + 1` ids: the model reads `ids[..max_len]` and
//! predicts `ids[1..]`. The vocabulary always comes from the training part alone.

pub mod estimate;
pub mod folder;
pub mod fortunes;
pub mod stream;
pub mod tokenize;
pub mod vocab;
pub mod wordlists;

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{split_indices, DataSpec, Presplit, Raw, Split, SplitInfo};
use crate::error::{Error, Result};

/// Longest sequence a preset may ask for (`data.max_len`).
pub const MAX_LEN: usize = 4096;
/// Largest vocabulary (`data.vocab_size`); far below 2^24, where f32 ids stop being exact.
pub const MAX_VOCAB: usize = 1_000_000;

/// Whether a sample is cut into words or characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenLevel {
    Word,
    Char,
}

/// What a model needs to turn text into its inputs and its outputs back into text: kept with the
/// data set, in data.json and in an export's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextInfo {
    pub level: TokenLevel,
    /// Id -> token; 0 is `<pad>`, 1 is `<unk>`.
    pub tokens: Vec<String>,
    /// Ids per sample (classification) or per window (language models).
    pub max_len: usize,
    /// Characters are lower-cased before lookup (word lists). Words always are.
    #[serde(default)]
    pub lowercase: bool,
}

impl TextInfo {
    /// The tokens of `text`, cut as the training data was.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.each_token(text, |t| {
            out.push(t.to_string());
            true
        });
        out
    }

    /// Calls `f` with each token of `text` until it returns false.
    fn each_token(&self, text: &str, mut f: impl FnMut(&str) -> bool) {
        match self.level {
            TokenLevel::Word => tokenize::each_word(text, f),
            TokenLevel::Char => {
                let lower;
                let text = if self.lowercase {
                    lower = text.to_lowercase();
                    &lower
                } else {
                    text
                };
                for (i, c) in text.char_indices() {
                    if tokenize::keep_char(c) && !f(&text[i..i + c.len_utf8()]) {
                        return;
                    }
                }
            }
        }
    }

    /// The ids of `text` with `index` (this vocabulary's), cut to `max_len` when given.
    fn ids(&self, index: &vocab::Index, text: &str, max_len: Option<usize>) -> Vec<u32> {
        let mut ids = Vec::with_capacity(max_len.unwrap_or(0));
        self.each_token(text, |t| {
            ids.push(index.id(t));
            max_len.is_none_or(|m| ids.len() < m)
        });
        ids
    }

    /// A classifier's input for `text`: its first `max_len` ids, padded at the front (as Keras'
    /// `pad_sequences` does by default), so a recurrent layer's last state follows the last
    /// word rather than a run of padding.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let ids = self.ids(&vocab::Index::new(&self.tokens), text, Some(self.max_len));
        let mut padded = vec![vocab::PAD_ID; self.max_len - ids.len()];
        padded.extend(ids);
        padded
    }

    /// Every id of `text`, neither cut nor padded (a language model's prompt).
    pub fn encode_all(&self, text: &str) -> Vec<u32> {
        self.ids(&vocab::Index::new(&self.tokens), text, None)
    }

    /// Text from ids: characters joined, words joined by spaces; `<pad>` is left out, unknown
    /// or out-of-range ids read `<unk>`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let words = ids
            .iter()
            .filter(|&&id| id != vocab::PAD_ID)
            .map(|&id| self.tokens.get(id as usize).filter(|_| id != vocab::UNK_ID).map_or(vocab::UNK, String::as_str));
        match self.level {
            TokenLevel::Word => words.collect::<Vec<_>>().join(" "),
            TokenLevel::Char => words.collect(),
        }
    }

    /// Ids stored as features (one row) back to ids.
    pub fn ids_of(row: &[f32]) -> Vec<u32> {
        row.iter().map(|&v| v as u32).collect()
    }
}

/// Reads a text file of at most `max_bytes`, refusing (naming the file) one that is larger,
/// empty, binary (holds NUL bytes) or not UTF-8. A leading byte-order mark is dropped.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_big =
        || Error::format(path, format!("is larger than {} MiB, the most read for one text file", max_bytes >> 20));
    if length > max_bytes {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(length as usize);
    // a file that grows while read (or lies about its length) still stops one byte past the cap
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big());
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::format(path, format!("is a binary file, not text (a NUL byte at offset {at})")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(path, format!("is not UTF-8 text (an invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Error::format(path, "is empty: it holds no text"));
    }
    Ok(text)
}

/// Text samples with their classes, before splitting.
#[derive(Default)]
pub struct Labelled {
    pub texts: Vec<String>,
    pub labels: Vec<u32>,
}

impl Labelled {
    pub fn push(&mut self, text: String, label: u32) {
        self.texts.push(text);
        self.labels.push(label);
    }

    fn encode(&self, info: &TextInfo) -> Split {
        let index = vocab::Index::new(&info.tokens);
        let mut features = Vec::with_capacity(self.texts.len() * info.max_len);
        for text in &self.texts {
            // padded at the front, as `TextInfo::encode`
            let ids = info.ids(&index, text, Some(info.max_len));
            features.resize(features.len() + info.max_len - ids.len(), vocab::PAD_ID as f32);
            features.extend(ids.iter().map(|&id| id as f32));
        }
        Split::new(features, self.labels.clone())
    }
}

/// A classification set from text samples: split with the seed (as every set is), the
/// vocabulary counted on the training part, every split encoded with it.
pub(in crate::data) fn classification(
    samples: &Labelled,
    test: Option<&Labelled>,
    class_names: Vec<String>,
    (level, lowercase): (TokenLevel, bool),
    spec: &DataSpec,
    seed: u64,
    source: String,
) -> Result<Raw> {
    let n = samples.texts.len();
    if n < 2 {
        return Err(Error::format(&source, format!("holds {n} text samples; at least 2 are needed")));
    }
    let (val_idx, train_idx) = split_indices(n, spec, seed);
    let mut info = TextInfo { level, tokens: Vec::new(), max_len: spec.max_len, lowercase };
    let mut counts = vocab::Counts::default();
    for &i in &train_idx {
        info.each_token(&samples.texts[i], |t| {
            counts.add(t);
            true
        });
    }
    info.tokens = counts.vocabulary(spec.vocab_size);
    let all = samples.encode(&info);
    let test = test.map(|t| t.encode(&info));
    let split = SplitInfo::of(&all, &val_idx, train_idx.len(), test.as_ref())?;
    Ok(Raw {
        class_names,
        input_shape: vec![spec.max_len],
        features: all.select(&train_idx),
        presplit: Some(Presplit { validation: all.select(&val_idx), split }),
        test,
        scale: 1.0,
        source,
        text: Some(info),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reverses_encode_up_to_unknowns() {
        let tokens = ["<pad>", "<unk>", "the", "film", "!"].map(String::from).to_vec();
        let words = TextInfo { level: TokenLevel::Word, tokens, max_len: 6, lowercase: false };
        let ids = words.encode("The film, the END!");
        assert_eq!(ids, [2, 3, 1, 2, 1, 4]);
        assert_eq!(words.decode(&ids), "the film <unk> the <unk> !");
        assert_eq!(words.decode(&[3, 0, 0, 99]), "film <unk>");
        let chars = TextInfo {
            level: TokenLevel::Char,
            tokens: ["<pad>", "<unk>", "a", "b"].map(String::from).to_vec(),
            max_len: 4,
            lowercase: true,
        };
        // padded at the front
        assert_eq!(chars.encode("BAx"), [0, 3, 2, 1]);
        assert_eq!(chars.encode_all("abab ab"), [2, 3, 2, 3, 1, 2, 3]);
        assert_eq!(chars.decode(&[3, 2, 0]), "ba");
        // control characters (a fortune's backspaces and bells) are not text; line breaks are
        let text = TextInfo { lowercase: false, ..chars };
        assert_eq!(text.tokenize("Ab\u{7}\u{8}c\n"), ["A", "b", "c", "\n"]);
    }
}
