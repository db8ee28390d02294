//! The fortune cookies of Debian's `fortunes` and `fortunes-min` packages: 43 files (categories)
//! of `%`-separated English text, 2.7 MB in all. `fortune-categories` classifies a fortune by
//! its file (word level); `fortunes-text` is a character-level language model over all of them.
//!
//! Only the plain files are read: `*.dat` are `strfile` indexes, `*.u8` links to the same text,
//! and the offensive ones (`off/`, not installed by default) are a folder, skipped.

use std::path::{Path, PathBuf};

use super::{classification, read_text, stream, Labelled, TokenLevel};
use crate::data::{DataSpec, Raw};
use crate::error::{Error, Result};

pub const FORTUNES_DIR: &str = "/usr/share/games/fortunes";
/// The packages that fill [`FORTUNES_DIR`].
pub const PACKAGES: &str = "fortunes fortunes-min";
/// One category file (the largest Debian ships is 250 kB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
pub const MAX_FILES: usize = 1000;

/// The category files of `dir`, sorted by name.
pub fn category_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(Error::format(
            dir,
            format!("the fortunes are not installed here; install them with `apt-get install {PACKAGES}`"),
        ));
    }
    let mut files = Vec::new();
    for (seen, entry) in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.enumerate() {
        if seen >= 4 * MAX_FILES {
            return Err(Error::format(
                dir,
                format!("holds more than {} entries; not a fortunes folder", 4 * MAX_FILES),
            ));
        }
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let skipped = name.starts_with('.') || name.ends_with(".dat") || name.ends_with(".u8");
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if !skipped && file_type.is_file() {
            files.push((name, entry.path()));
        }
    }
    if files.is_empty() {
        return Err(Error::format(
            dir,
            format!("holds no fortune files; install them with `apt-get install {PACKAGES}`"),
        ));
    }
    if files.len() > MAX_FILES {
        return Err(Error::format(dir, format!("holds {} fortune files; at most {MAX_FILES}", files.len())));
    }
    files.sort();
    Ok(files)
}

/// The fortunes of one file: the text between lines holding only `%`, trimmed, empty ones
/// dropped.
pub fn parse(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_end() == "%" {
            push_fortune(&mut out, &current);
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_fortune(&mut out, &current);
    out
}

fn push_fortune(out: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        out.push(text.to_string());
    }
}

/// Every fortune of `dir`, labelled by its file's index.
fn read_all(dir: &Path) -> Result<(Vec<String>, Labelled)> {
    let files = category_files(dir)?;
    let mut samples = Labelled::default();
    let mut names = Vec::with_capacity(files.len());
    for (label, (name, path)) in files.into_iter().enumerate() {
        for fortune in parse(&read_text(&path, MAX_FILE_BYTES)?) {
            samples.push(fortune, label as u32);
        }
        names.push(name);
    }
    Ok((names, samples))
}

fn folder(spec: &DataSpec) -> PathBuf {
    spec.path.clone().unwrap_or_else(|| PathBuf::from(FORTUNES_DIR))
}

/// `fortune-categories`: which file a fortune comes from, from its words.
pub(in crate::data) fn categories(spec: &DataSpec, seed: u64) -> Result<Raw> {
    let dir = folder(spec);
    let (names, samples) = read_all(&dir)?;
    classification(&samples, None, names, (TokenLevel::Word, true), spec, seed, dir.display().to_string())
}

/// `fortunes-text`: all fortunes, file after file, as one text for a character-level model.
pub(in crate::data) fn text(spec: &DataSpec) -> Result<Raw> {
    let dir = folder(spec);
    let (_, samples) = read_all(&dir)?;
    stream::language_model(&samples.texts.join("\n\n"), spec, dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortunes_split_at_percent_lines() {
        let text = "A bird in the hand.\n%\n\n  Two\nlines\n%\n%\nLast, no final percent";
        assert_eq!(parse(text), ["A bird in the hand.", "Two\nlines", "Last, no final percent"]);
    }
}
