//! Data sets: the built-in catalogue, file readers, splitting, normalisation and batching.
//!
//! Every set ends up as a [`Dataset`]: normalised features in memory, split into train,
//! validation and (where the set has one) test.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod csv;
mod embedded;
mod holdout;
pub mod idx;
pub mod image_folder;
mod loader;
pub mod storage;
pub mod synthetic;
pub mod table;
pub mod text;
pub mod user_estimate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

pub use augment::{AugmentSpec, Augmenter};
pub use batch::{epoch_order, Batch};
pub use holdout::SplitInfo;
use loader::{digit_names, required_path, split_indices, Presplit, Raw};
pub use loader::{load, load_with};
pub use text::{TextInfo, TokenLevel};

/// What a preset's `[data]` table says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSpec {
    /// A built-in set (see [`CATALOGUE`]) or `idx` for a folder of IDX files.
    pub set: String,
    /// The folder for `idx` and `text-folder` (the one holding train/ and test/), the file for
    /// `text-file`; for `fashion-mnist` and the fortunes sets, overrides the Debian location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Share of the training data held out for validation.
    pub validation_fraction: f64,
    /// Use at most this many training samples (0: all).
    pub limit: usize,
    /// Synthetic sets: number of points.
    pub samples: usize,
    /// Synthetic sets: noise level.
    pub noise: f64,
    /// Synthetic spiral and blobs: number of classes.
    pub classes: usize,
    /// Preprocessing of the inputs (text sets are never normalised: their inputs are token ids).
    pub normalization: NormalizationKind,
    /// Text sets: tokens per sample (classification: longer texts are cut, shorter padded) or
    /// per window (language models).
    #[serde(skip_serializing_if = "is_default_max_len")]
    pub max_len: usize,
    /// Text sets: the vocabulary holds the `vocab_size` most frequent tokens of the training part,
    /// plus `<pad>` and `<unk>`.
    #[serde(skip_serializing_if = "is_default_vocab_size")]
    pub vocab_size: usize,
    /// `word-languages`: the word lists to tell apart (`english`, `german`, ...; see
    /// [`text::wordlists::LANGUAGES`]); empty: every one installed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// `cifar100`: `fine` (100 classes, the default) or `coarse` (20 superclasses).
    #[serde(skip_serializing_if = "cifar::LabelKind::is_fine")]
    pub labels: cifar::LabelKind,
    /// `image-folder`: the side of the square the images are resized to, or `[height, width]`
    /// (default 32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<image_folder::ImageSize>,
    /// `image-folder`: `rgb` (the default) or `grey`.
    #[serde(skip_serializing_if = "image_folder::ColorMode::is_rgb")]
    pub color: image_folder::ColorMode,
    /// `csv`: whether the first row names the columns (default: detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// `csv`: the label column, by name or 0-based position (default: the last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_column: Option<table::LabelColumn>,
    /// `csv`: what to do with a missing value (empty, NA, NaN, ?): refuse (the default), or
    /// `mean`, `zero`, `drop_row`.
    #[serde(skip_serializing_if = "table::Missing::is_refuse")]
    pub missing: table::Missing,
    /// Image sets from files: keep the pixels in a disk cache and read them per batch (`true`),
    /// in memory (`false`); default: stream when the set's `f32` size would exceed 512 MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

const DEFAULT_MAX_LEN: usize = 50;
const DEFAULT_VOCAB_SIZE: usize = 10_000;

fn is_default_max_len(n: &usize) -> bool {
    *n == DEFAULT_MAX_LEN
}

fn is_default_vocab_size(n: &usize) -> bool {
    *n == DEFAULT_VOCAB_SIZE
}

/// How inputs are preprocessed before the model sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormalizationKind {
    /// Zero mean, unit variance, fitted on the training split (one mean for images, one per
    /// feature for tables).
    #[default]
    Standardize,
    /// Images scaled to [0, 1]; tables unchanged.
    Scale,
    /// Raw values.
    None,
}

impl NormalizationKind {
    pub const ALL: [NormalizationKind; 3] =
        [NormalizationKind::Standardize, NormalizationKind::Scale, NormalizationKind::None];

    pub fn title(self) -> &'static str {
        match self {
            NormalizationKind::Standardize => "standardize",
            NormalizationKind::Scale => "scale to [0, 1]",
            NormalizationKind::None => "none",
        }
    }
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            set: "mnist-5k".into(),
            path: None,
            validation_fraction: 0.1,
            limit: 0,
            samples: 1000,
            noise: 0.1,
            classes: 3,
            normalization: NormalizationKind::Standardize,
            max_len: DEFAULT_MAX_LEN,
            vocab_size: DEFAULT_VOCAB_SIZE,
            languages: Vec::new(),
            labels: cifar::LabelKind::Fine,
            image_size: None,
            color: image_folder::ColorMode::Rgb,
            header: None,
            label_column: None,
            missing: table::Missing::Refuse,
            stream: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// Two features, drawn as a scatter plot.
    Points2d,
    Tabular,
    Image,
    /// Classification of a text sample: rows of `max_len` token ids.
    Text,
    /// A language model over one long text: rows of `max_len + 1` consecutive token ids.
    TextStream,
}

impl SetKind {
    pub fn is_text(self) -> bool {
        matches!(self, SetKind::Text | SetKind::TextStream)
    }
}

/// One entry of the data-set picker.
#[derive(Debug, Clone, Copy)]
pub struct SetInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub kind: SetKind,
    pub description: &'static str,
}

pub const CATALOGUE: &[SetInfo] = &[
    SetInfo { id: "mnist-5k", title: "MNIST 5k", kind: SetKind::Image, description: "5,000 handwritten digits (28x28 grey), 500 per class; a subset of LeCun's MNIST. Embedded." },
    SetInfo { id: "fashion-mnist", title: "Fashion-MNIST", kind: SetKind::Image, description: "70,000 clothing images (28x28 grey, 10 classes) from Zalando; read from Debian's dataset-fashion-mnist package." },
    SetInfo { id: "idx", title: "IDX folder", kind: SetKind::Image, description: "Any folder of MNIST-format IDX files (train-images, train-labels, t10k-*), raw or gzipped." },
    SetInfo { id: "digits", title: "Digits 8x8", kind: SetKind::Image, description: "1,797 UCI optical-recognition digits, 8x8 pixels with 17 grey levels. Embedded." },
    SetInfo { id: "iris", title: "Iris", kind: SetKind::Tabular, description: "Fisher's 150 iris flowers: 4 measurements, 3 species. Embedded." },
    SetInfo { id: "wine", title: "Wine", kind: SetKind::Tabular, description: "178 Italian wines: 13 chemical measurements, 3 cultivars. Embedded." },
    SetInfo { id: "breast-cancer", title: "Breast cancer", kind: SetKind::Tabular, description: "569 Wisconsin diagnostic tumour biopsies: 30 cell-nucleus features, malignant or benign. Embedded." },
    SetInfo { id: "spiral", title: "Spiral", kind: SetKind::Points2d, description: "Interleaved spiral arms in 2-D: not linearly separable, a classic test for hidden layers." },
    SetInfo { id: "moons", title: "Two moons", kind: SetKind::Points2d, description: "Two interleaving half circles in 2-D." },
    SetInfo { id: "circles", title: "Circles", kind: SetKind::Points2d, description: "A small circle inside a large one in 2-D." },
    SetInfo { id: "xor", title: "XOR", kind: SetKind::Points2d, description: "Four quadrants labelled by the sign of x*y." },
    SetInfo { id: "blobs", title: "Gaussian blobs", kind: SetKind::Points2d, description: "Gaussian clusters, one per class, in 2-D." },
    SetInfo { id: "cifar10", title: "CIFAR-10 folder", kind: SetKind::Image, description: "60,000 colour images (32x32, 10 classes: airplane ... truck) from the CIFAR-10 binary files in a folder you pick (data_batch_1..5.bin, test_batch.bin)." },
    SetInfo { id: "cifar100", title: "CIFAR-100 folder", kind: SetKind::Image, description: "60,000 colour images (32x32) in 100 fine or 20 coarse classes, from CIFAR-100's binary train.bin and test.bin in a folder you pick." },
    SetInfo { id: "image-folder", title: "Image folder", kind: SetKind::Image, description: "Your images: one sub-folder per class (PNG, JPEG or WebP), resized to a chosen size, grey or RGB; optionally train/ and test/ folders." },
    SetInfo { id: "csv", title: "CSV table", kind: SetKind::Tabular, description: "Your table: numeric columns and a label column (by name or position, default the last); a header row is detected." },
    SetInfo { id: "text-folder", title: "Text folder", kind: SetKind::Text, description: "Text classification from a folder in the IMDB layout: train/<class>/*.txt and optionally test/<class>/*.txt. Words." },
    SetInfo { id: "fortune-categories", title: "Fortune categories", kind: SetKind::Text, description: "Which of 43 categories (art, computers, love, science, ...) a fortune cookie comes from, from its words; Debian's fortunes and fortunes-min packages." },
    SetInfo { id: "word-languages", title: "Word languages", kind: SetKind::Text, description: "Which language a word is from, from its letters: Debian's word lists (wamerican, wngerman, wfrench, ...), 10,000 words each." },
    SetInfo { id: "fortunes-text", title: "Fortunes (text)", kind: SetKind::TextStream, description: "A character-level language model over all the fortune cookies as one text (2.6 million characters)." },
    SetInfo { id: "text-file", title: "Text file", kind: SetKind::TextStream, description: "A character-level language model over any UTF-8 text file you pick." },
];

pub fn set_info(id: &str) -> Option<&'static SetInfo> {
    CATALOGUE.iter().find(|s| s.id == id)
}

/// Features (row-major, one row per sample) and labels. The features are in memory, or for a
/// streamed set (`disk`, see [`storage`]) rows of bytes in a cache file and `features` is empty:
/// cut batches with [`Split::copy_rows`], which reads either.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    pub disk: Option<std::sync::Arc<storage::DiskRows>>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn feature_len(&self) -> usize {
        if let Some(disk) = &self.disk {
            return disk.row_len();
        }
        if self.labels.is_empty() {
            0
        } else {
            self.features.len() / self.labels.len()
        }
    }

    pub fn sample(&self, i: usize) -> &[f32] {
        let f = self.feature_len();
        &self.features[i * f..(i + 1) * f]
    }

    fn select(&self, indices: &[usize]) -> Split {
        if let Some(streamed) = self.select_disk(indices) {
            return streamed;
        }
        let f = self.feature_len();
        let mut out = Split::new(Vec::with_capacity(indices.len() * f), Vec::with_capacity(indices.len()));
        for &i in indices {
            out.features.extend_from_slice(self.sample(i));
            out.labels.push(self.labels[i]);
        }
        out
    }
}

/// How raw inputs become model inputs: `(x * scale - mean[i % mean.len()]) / std[i % std.len()]`.
/// One mean and std for images, one per feature for tables. Kept so that an exported model can
/// be fed raw data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub scale: f32,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Checks a normalisation read from a file (an exported card, data.json) before it is
    /// applied to inputs of `features` values: one mean/std, or one per feature, finite, std > 0.
    pub fn check(&self, features: usize) -> std::result::Result<(), String> {
        let fits = |n: usize| n == 1 || n == features;
        if !fits(self.mean.len()) || !fits(self.std.len()) {
            return Err(format!(
                "normalization has {} means and {} stds; expected 1 or {features} (one per input value)",
                self.mean.len(),
                self.std.len()
            ));
        }
        let finite = self.scale.is_finite() && self.mean.iter().all(|m| m.is_finite());
        if !finite || !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err("normalization values must be finite, with every std above 0".into());
        }
        Ok(())
    }

    pub fn apply(&self, features: &mut [f32]) {
        let (m, s) = (self.mean.len(), self.std.len());
        for (i, v) in features.iter_mut().enumerate() {
            *v = (*v * self.scale - self.mean[i % m]) / self.std[i % s];
        }
    }

    fn identity(scale: f32) -> Self {
        Self { scale, mean: vec![0.0], std: vec![1.0] }
    }

    /// Standardises with statistics of `train` (raw features scaled by `scale`): one mean/std for
    /// all features when `global`, else per feature.
    /// A streamed split is read in one pass, in the same order, so it fits the same numbers.
    fn fit(train: &Split, scale: f32, global: bool) -> Result<Self> {
        let f = train.feature_len().max(1);
        let groups = if global { 1 } else { f };
        let mut sum = vec![0f64; groups];
        let mut sq = vec![0f64; groups];
        let all: Vec<usize> = (0..train.len()).collect();
        train.for_each_raw(&all, |_, row| {
            for (i, &v) in row.iter().enumerate() {
                let g = if global { 0 } else { i % f };
                let v = f64::from(v * scale);
                sum[g] += v;
                sq[g] += v * v;
            }
        })?;
        let per_group = ((train.len() * train.feature_len()) / groups).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / per_group) as f32).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| {
                let var = q / per_group - f64::from(m) * f64::from(m);
                (var.max(0.0).sqrt() as f32).max(1e-6)
            })
            .collect();
        Ok(Self { scale, mean, std })
    }
}

/// A loaded data set, normalised and split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub id: String,
    pub title: String,
    pub class_names: Vec<String>,
    /// `[channels, height, width]` for images, `[features]` otherwise.
    pub input_shape: Vec<usize>,
    pub kind: SetKind,
    pub train: Split,
    pub validation: Split,
    pub test: Option<Split>,
    pub normalization: Normalization,
    /// Where the data came from, for summaries.
    pub source: String,
    /// Counts and hashes of the split, so a later `eval` can check it holds out the same samples.
    pub split: SplitInfo,
    /// Text sets: the tokenizer and vocabulary (encode a sentence, decode a prediction).
    pub text: Option<TextInfo>,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn feature_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// What a model of this data reads and predicts for `task`.
    pub fn model_input(&self, task: crate::task::Task) -> crate::model::ModelInput {
        let vocab = self.text.as_ref().map(|t| t.tokens.len());
        crate::model::ModelInput { shape: self.input_shape.clone(), classes: self.num_classes(), vocab, task }
    }
}
