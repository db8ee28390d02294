//! `text-folder`: text classification from a folder in the IMDB layout,
//! `train/<class>/*.txt` and optionally `test/<class>/*.txt`, with any class names.
//!
//! The folder is bounded before anything is read: at most [`MAX_FILES`] entries are listed in all,
//! each file at most [`MAX_FILE_BYTES`], all of them together at most [`MAX_TOTAL_BYTES`].

use std::path::{Path, PathBuf};

use super::{classification, read_text, Labelled, TokenLevel};
use crate::data::{DataSpec, Raw};
use crate::error::{Error, Result};

/// Entries listed in train/ and test/ together (the IMDB has 100,000 reviews).
pub const MAX_FILES: usize = 300_000;
/// One review or document (the IMDB's longest review is 14 kB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// All files together.
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// Class folders of train/.
pub const MAX_CLASSES: usize = 1000;
/// The IMDB's unlabelled reviews live in train/unsup; they belong to no class.
const UNLABELLED: &str = "unsup";

/// Counts what has been listed and read so far against the caps.
struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    fn entry(&mut self, dir: &Path) -> Result<()> {
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(Error::format(
                dir,
                format!("the text folder holds more than {MAX_FILES} files; it is too large to load"),
            ));
        }
        Ok(())
    }
}

fn list(dir: &Path, budget: &mut Budget) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        budget.entry(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        out.push((name, path.clone(), path.is_dir()));
    }
    // read_dir's order depends on the file system; the data set must not
    out.sort();
    Ok(out)
}

/// The class folders of `split` (train/ or test/), sorted by name.
fn class_folders(split: &Path, budget: &mut Budget) -> Result<Vec<(String, PathBuf)>> {
    let classes: Vec<(String, PathBuf)> = list(split, budget)?
        .into_iter()
        .filter(|(name, _, is_dir)| *is_dir && name != UNLABELLED)
        .map(|(name, path, _)| (name, path))
        .collect();
    if classes.is_empty() {
        return Err(Error::format(split, "holds no class folders; expected <class>/*.txt inside"));
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::format(split, format!("holds {} class folders; at most {MAX_CLASSES}", classes.len())));
    }
    Ok(classes)
}

/// Reads every `*.txt` of each class folder, labelled with the class's index in `names`.
fn read_split(split: &Path, names: &[String], budget: &mut Budget) -> Result<Labelled> {
    let mut out = Labelled::default();
    for (class, dir) in class_folders(split, budget)? {
        let Some(label) = names.iter().position(|n| *n == class) else {
            return Err(Error::format(
                &dir,
                format!("class `{class}` has no folder in train/ (its classes: {})", names.join(", ")),
            ));
        };
        let before = out.texts.len();
        for (name, path, is_dir) in list(&dir, budget)? {
            if is_dir || !name.ends_with(".txt") {
                continue;
            }
            let text = read_text(&path, MAX_FILE_BYTES)?;
            budget.bytes += text.len() as u64;
            if budget.bytes > MAX_TOTAL_BYTES {
                return Err(Error::format(
                    &path,
                    format!(
                        "the text folder holds more than {} MiB of text; it is too large to load",
                        MAX_TOTAL_BYTES >> 20
                    ),
                ));
            }
            out.push(text, label as u32);
        }
        if out.texts.len() == before {
            return Err(Error::format(&dir, "holds no .txt files"));
        }
    }
    Ok(out)
}

/// `text-folder` at `dir`: word-level classification, classes from train/'s folders, test/ (if
/// present) as the test split.
pub(in crate::data) fn load(dir: &Path, spec: &DataSpec, seed: u64) -> Result<Raw> {
    let train_dir = dir.join("train");
    if !train_dir.is_dir() {
        return Err(Error::format(
            dir,
            "holds no train/ folder; a text folder has train/<class>/*.txt (and optionally test/<class>/*.txt)",
        ));
    }
    let mut budget = Budget { files: 0, bytes: 0 };
    let names: Vec<String> = class_folders(&train_dir, &mut budget)?.into_iter().map(|(n, _)| n).collect();
    let train = read_split(&train_dir, &names, &mut budget)?;
    let test_dir = dir.join("test");
    let test = if test_dir.is_dir() { Some(read_split(&test_dir, &names, &mut budget)?) } else { None };
    classification(&train, test.as_ref(), names, (TokenLevel::Word, true), spec, seed, dir.display().to_string())
}
