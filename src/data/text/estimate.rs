//! Sizes of text sets known without reading the text: class counts for preset validation, sample
//! counts and loading temporaries for the memory estimate, bounded by the files' sizes on disk.

use std::path::Path;

use super::{folder, fortunes, wordlists};
use crate::data::DataSpec;

/// What the memory estimate needs of a text set.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSize {
    /// Samples split into train and validation (windows for a language model).
    pub samples: f64,
    pub test: f64,
    pub classes: usize,
    /// Bytes held while loading and freed before training.
    pub temporaries: f64,
}

/// `[max_len]` and the class count (a language model's: the largest vocabulary it may have).
pub fn shape_hint(spec: &DataSpec) -> Option<(Vec<usize>, usize)> {
    let classes = match spec.set.as_str() {
        "text-folder" => class_dirs(&spec.path.as_ref()?.join("train"))?.len(),
        "fortune-categories" => fortunes::category_files(&fortunes_dir(spec)).ok()?.len(),
        "word-languages" => wordlists::resolve(&spec.languages).ok()?.len(),
        "fortunes-text" | "text-file" => spec.vocab_size.saturating_add(2),
        _ => return None,
    };
    Some((vec![spec.max_len], classes))
}

fn fortunes_dir(spec: &DataSpec) -> std::path::PathBuf {
    spec.path.clone().unwrap_or_else(|| fortunes::FORTUNES_DIR.into())
}

/// Class folders of a train/ or test/ folder; `None` past the loader's caps (it refuses those).
fn class_dirs(dir: &Path) -> Option<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.take(folder::MAX_FILES) {
        let path = entry.ok()?.path();
        let name = path.file_name()?.to_string_lossy();
        if path.is_dir() && !name.starts_with('.') && name != "unsup" {
            out.push(path);
        }
    }
    (out.len() <= folder::MAX_CLASSES).then_some(out)
}

/// Files whose size is looked up per class folder; the rest are taken at their average. The GUI
/// redoes the estimate every few seconds on its own thread: 50,000 lookups would stall a frame.
const SIZED_PER_CLASS: usize = 256;

/// `.txt` files and their bytes under a train/ or test/ folder.
fn text_files(dir: &Path, listed: &mut usize) -> Option<(f64, f64)> {
    let (mut files, mut bytes) = (0.0, 0.0);
    for class in class_dirs(dir)? {
        let (mut count, mut sized, mut sized_bytes) = (0usize, 0usize, 0.0);
        for entry in std::fs::read_dir(class).ok()? {
            *listed += 1;
            if *listed > folder::MAX_FILES {
                return None;
            }
            let entry = entry.ok()?;
            if entry.file_name().to_string_lossy().ends_with(".txt") {
                count += 1;
                if sized < SIZED_PER_CLASS {
                    sized += 1;
                    sized_bytes += entry.metadata().ok()?.len().min(folder::MAX_FILE_BYTES) as f64;
                }
            }
        }
        files += count as f64;
        bytes += sized_bytes * count as f64 / sized.max(1) as f64;
    }
    Some((files, bytes))
}

/// `None` when the files are missing (loading then says what is wrong).
pub fn size(spec: &DataSpec) -> Option<TextSize> {
    let (_, classes) = shape_hint(spec)?;
    let row = (spec.max_len as f64 + 1.0) * 4.0;
    let file_bytes = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len() as f64);
    // One window per max_len characters; a character is at least a byte. While loading a text
    // is held as its bytes, its chars (4 bytes each), its ids (4 each) and the unsplit windows.
    let stream = |bytes: f64| TextSize {
        samples: (bytes / spec.max_len.max(1) as f64).ceil(),
        test: 0.0,
        classes,
        temporaries: 14.0 * bytes,
    };
    Some(match spec.set.as_str() {
        "text-folder" => {
            let dir = spec.path.as_ref()?;
            let mut listed = 0;
            let (train, train_bytes) = text_files(&dir.join("train"), &mut listed)?;
            let test_dir = dir.join("test");
            let (test, test_bytes) = if test_dir.is_dir() { text_files(&test_dir, &mut listed)? } else { (0.0, 0.0) };
            // the texts, the token counts (at most a few times the text) and the unsplit rows
            TextSize { samples: train, test, classes, temporaries: 4.0 * (train_bytes + test_bytes) + train * row }
        }
        "fortune-categories" => {
            let files = fortunes::category_files(&fortunes_dir(spec)).ok()?;
            let bytes: f64 = files.iter().filter_map(|(_, p)| file_bytes(p)).sum();
            // Debian's fortunes average 175 bytes; 100 keeps the count on the safe side
            let samples = (bytes / 100.0).ceil();
            TextSize { samples, test: 0.0, classes, temporaries: 4.0 * bytes + samples * row }
        }
        "word-languages" => {
            let languages = wordlists::resolve(&spec.languages).ok()?;
            let largest = languages.iter().filter_map(|l| file_bytes(&l.path())).fold(0.0, f64::max);
            let samples = (languages.len() * wordlists::WORDS_PER_LANGUAGE) as f64;
            // one list at a time as text (and, for a Latin-1 list, its UTF-8 copy); the drawn
            // words (short strings) and their rows
            TextSize { samples, test: 0.0, classes, temporaries: 2.0 * largest + samples * (64.0 + row) }
        }
        "fortunes-text" => {
            let files = fortunes::category_files(&fortunes_dir(spec)).ok()?;
            let bytes: f64 = files.iter().filter_map(|(_, p)| file_bytes(p)).sum();
            // the fortunes one by one, then joined into one text
            let mut s = stream(bytes);
            s.temporaries += 2.0 * bytes;
            s
        }
        "text-file" => stream(file_bytes(spec.path.as_ref()?)?.min(super::stream::MAX_TEXT_FILE_BYTES as f64)),
        _ => return None,
    })
}
