//! Shapes and sizes of the sets a user brings (CIFAR folders, image folders, CSV tables), known
//! from file lengths, folder listings and a table's first rows, without decoding the data: for
//! `validate` (does the model fit?) and the memory estimate (a streamed set holds its labels in
//! memory, not its pixels).

use std::path::Path;

use super::{cifar, image_folder, storage, table, DataSpec};

/// What the memory estimate needs of a user's set.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSize {
    /// Samples split into train and validation.
    pub samples: f64,
    pub test: f64,
    pub input_shape: Vec<usize>,
    /// The pixels stay in a disk cache; memory holds labels and row numbers.
    pub streamed: bool,
    /// Bytes held while loading and freed before training.
    pub temporaries: f64,
}

/// Tables larger than this are not scanned for their classes on every validation.
const SCAN_LABELS_BYTES: u64 = 8 << 20;

/// The input shape and class count, or `None` when the files do not say it cheaply. The GUI
/// validates its preset every frame: the answer is kept for the same settings and the same file
/// (length and modification time), so a frame costs one `stat`, not a scan of a table.
pub fn shape_hint(spec: &DataSpec) -> Option<(Vec<usize>, usize)> {
    type Memo = Option<(String, Option<(Vec<usize>, usize)>)>;
    static LAST: std::sync::Mutex<Memo> = std::sync::Mutex::new(None);
    let path = spec.path.as_ref()?;
    let stamp = std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
    let key = format!("{spec:?} {stamp:?}");
    if let Some((k, hint)) = LAST.lock().ok()?.as_ref() {
        if *k == key {
            return hint.clone();
        }
    }
    let hint = scan_shape_hint(spec);
    if let Ok(mut last) = LAST.lock() {
        *last = Some((key, hint.clone()));
    }
    hint
}

fn scan_shape_hint(spec: &DataSpec) -> Option<(Vec<usize>, usize)> {
    let path = spec.path.as_ref()?;
    match spec.set.as_str() {
        "cifar10" | "cifar100" => {
            let hundred = spec.set == "cifar100";
            let default = match (hundred, spec.labels) {
                (false, _) => cifar::CIFAR10_NAMES.len(),
                (true, cifar::LabelKind::Fine) => cifar::CIFAR100_FINE.len(),
                (true, cifar::LabelKind::Coarse) => cifar::CIFAR100_COARSE.len(),
            };
            let dir = cifar::files_dir(path, hundred);
            let names = cifar::names_file(hundred, spec.labels);
            let classes = std::fs::read_to_string(dir.join(names))
                .ok()
                .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
                .filter(|&n| n > 0)
                .unwrap_or(default);
            Some((vec![3, 32, 32], classes))
        }
        "image-folder" => {
            let shape = image_folder::input_shape(spec).ok()?;
            let root = if path.join("train").is_dir() { path.join("train") } else { path.clone() };
            Some((shape.to_vec(), class_dirs(&root)?.len()))
        }
        "csv" => {
            let shape = table::shape(path, spec).ok()?;
            let len = std::fs::metadata(path).ok()?.len();
            if len > SCAN_LABELS_BYTES {
                return None;
            }
            Some((vec![shape.columns - 1], table::count_classes(path, &shape).ok()?))
        }
        _ => None,
    }
}

fn class_dirs(dir: &Path) -> Option<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.take(image_folder::MAX_FILES) {
        let path = entry.ok()?.path();
        let hidden = path.file_name()?.to_string_lossy().starts_with('.');
        if path.is_dir() && !hidden {
            out.push(path);
        }
    }
    Some(out)
}

fn files_in(dirs: &[std::path::PathBuf]) -> Option<f64> {
    let mut n = 0usize;
    for d in dirs {
        n += std::fs::read_dir(d).ok()?.take(image_folder::MAX_FILES).count();
    }
    Some(n as f64)
}

/// Samples, test samples and whether the set streams.
pub fn size(spec: &DataSpec) -> Option<UserSize> {
    let path = spec.path.as_ref()?;
    let (shape, _) = shape_hint(spec).or_else(|| {
        // a large table: its width from the head, its classes unknown
        let s = table::shape(path, spec).ok()?;
        Some((vec![s.columns - 1], 2))
    })?;
    let row: f64 = shape.iter().map(|&x| x as f64).product();
    let (samples, test) = match spec.set.as_str() {
        "cifar10" | "cifar100" => {
            let hundred = spec.set == "cifar100";
            let dir = cifar::files_dir(path, hundred);
            let (train, test) = cifar::file_names(hundred);
            let record = (cifar::PIXELS + if hundred { 2 } else { 1 }) as f64;
            let count = |n: &str| std::fs::metadata(dir.join(n)).map_or(0.0, |m| (m.len() as f64 / record).floor());
            (train.iter().map(|n| count(n)).sum(), count(test))
        }
        "image-folder" => {
            let root = if path.join("train").is_dir() { path.join("train") } else { path.clone() };
            let test = path.join("test");
            let test_n = if root != *path && test.is_dir() { files_in(&class_dirs(&test)?)? } else { 0.0 };
            (files_in(&class_dirs(&root)?)?, test_n)
        }
        "csv" => {
            // rows from the file's length and its first line's
            let len = std::fs::metadata(path).ok()?.len() as f64;
            let mut first = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(path).ok()?, 64 << 10), &mut first)
                .ok()?;
            let head = first.iter().position(|&c| c == b'\n').unwrap_or(first.len()) + 1;
            ((len / head.max(1) as f64).ceil(), 0.0)
        }
        _ => return None,
    };
    let streamed = spec.set != "csv" && storage::should_stream(spec.stream, ((samples + test) * row) as u64);
    // a CSV's rows are parsed into a growing vector (twice its final size at worst); an image
    // set decodes a block of 1,024 rows at a time, or into its final vector
    let temporaries = match spec.set.as_str() {
        "csv" => 2.0 * samples * (row + 1.0) * 4.0,
        _ if streamed => 1024.0 * row * 4.0,
        _ => (samples + test) * row * 4.0,
    };
    Some(UserSize { samples, test, input_shape: shape, streamed, temporaries })
}
