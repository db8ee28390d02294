//! `word-languages`: which language a word is from, from its characters, over Debian's word
//! lists in /usr/share/dict.
//!
//! Each language contributes at most [`WORDS_PER_LANGUAGE`] words, drawn with the seed from its
//! whole list, so Polish's four million entries do not swamp Spanish's eighty thousand. Words
//! are lower-cased and kept only when made of letters alone (no "'s" forms, hyphens or digits);
//! a word drawn for two languages stays with the first, so no input has two labels.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{classification, Labelled, TokenLevel};
use crate::data::{DataSpec, Raw};
use crate::error::{Error, Result};
use crate::rng::Rng;

pub const DICT_DIR: &str = "/usr/share/dict";
/// Words drawn per language.
pub const WORDS_PER_LANGUAGE: usize = 10_000;
/// The largest word list read (Polish's is 60 MB).
pub const MAX_LIST_BYTES: u64 = 256 << 20;

/// A word list Gradlab knows: its language, its file in [`DICT_DIR`] and its Debian package.
#[derive(Debug, Clone, Copy)]
pub struct Language {
    pub name: &'static str,
    pub file: &'static str,
    pub package: &'static str,
    /// Debian ships this list in ISO-8859-1; read as such when it is not UTF-8.
    pub latin1: bool,
}

const fn lang(name: &'static str, file: &'static str, package: &'static str, latin1: bool) -> Language {
    Language { name, file, package, latin1 }
}

pub const LANGUAGES: [Language; 11] = [
    lang("english", "american-english", "wamerican", false),
    lang("german", "ngerman", "wngerman", false),
    lang("french", "french", "wfrench", false),
    lang("spanish", "spanish", "wspanish", false),
    lang("italian", "italian", "witalian", false),
    lang("portuguese", "portuguese", "wportuguese", false),
    lang("dutch", "dutch", "wdutch", false),
    lang("swedish", "swedish", "wswedish", true),
    lang("danish", "danish", "wdanish", false),
    lang("norwegian", "bokmaal", "wnorwegian", true),
    lang("polish", "polish", "wpolish", false),
];

pub fn language(name: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.name == name)
}

impl Language {
    pub fn path(&self) -> PathBuf {
        Path::new(DICT_DIR).join(self.file)
    }
}

/// The languages a preset asks for (`data.languages`), or every installed one when it names
/// none. Errors name the key or the package to install.
pub fn resolve(names: &[String]) -> Result<Vec<&'static Language>> {
    let known = || LANGUAGES.iter().map(|l| l.name).collect::<Vec<_>>().join(", ");
    if names.is_empty() {
        let installed: Vec<_> = LANGUAGES.iter().filter(|l| l.path().is_file()).collect();
        if installed.len() < 2 {
            let packages = LANGUAGES.iter().map(|l| l.package).collect::<Vec<_>>().join(" ");
            return Err(Error::format(
                DICT_DIR,
                format!(
                    "{} word lists are installed; at least 2 are needed: `apt-get install {packages}`",
                    installed.len()
                ),
            ));
        }
        return Ok(installed);
    }
    let mut out = Vec::new();
    for name in names {
        let l = language(name).ok_or_else(|| {
            Error::config(
                "preset",
                "data.languages",
                format!("unknown language `{name}`; expected some of {}", known()),
            )
        })?;
        if out.iter().any(|o: &&Language| o.name == l.name) {
            return Err(Error::config("preset", "data.languages", format!("`{name}` is named twice")));
        }
        if !l.path().is_file() {
            return Err(Error::format(
                l.path(),
                format!("the {name} word list is not installed; install it with `apt-get install {}`", l.package),
            ));
        }
        out.push(l);
    }
    if out.len() < 2 {
        return Err(Error::config("preset", "data.languages", "name at least 2 languages to tell apart"));
    }
    Ok(out)
}

fn read_list(l: &Language) -> Result<String> {
    let path = l.path();
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let length = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    // sized up front: grown by doubling, Polish's 60 MB list would peak at twice that
    let mut bytes = Vec::with_capacity(length.min(MAX_LIST_BYTES) as usize + 1);
    file.take(MAX_LIST_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(&path, e))?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(Error::format(&path, format!("is larger than {} MiB; not a word list", MAX_LIST_BYTES >> 20)));
    }
    if bytes.contains(&0) {
        return Err(Error::format(&path, "is a binary file (it holds NUL bytes), not a word list"));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        // ISO-8859-1 bytes are the first 256 code points
        Err(e) if l.latin1 => Ok(e.into_bytes().iter().map(|&b| char::from(b)).collect()),
        Err(e) => Err(Error::format(
            &path,
            format!("is not UTF-8 text (an invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )),
    }
}

/// Up to `k` words of the list, drawn uniformly with `rng` (reservoir sampling: one pass, `k`
/// words held, however long the list), lower-cased, sorted, without repeats.
fn draw(text: &str, k: usize, rng: &mut Rng) -> Vec<String> {
    let mut kept: Vec<&str> = Vec::with_capacity(k);
    let mut seen = 0usize;
    for word in text.lines().map(str::trim).filter(|w| !w.is_empty() && w.chars().all(char::is_alphabetic)) {
        seen += 1;
        if kept.len() < k {
            kept.push(word);
        } else {
            let j = rng.below(seen);
            if j < k {
                kept[j] = word;
            }
        }
    }
    let mut words: Vec<String> = kept.into_iter().map(str::to_lowercase).collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// `word-languages`: the language of a word, from its characters.
pub(in crate::data) fn load(spec: &DataSpec, seed: u64) -> Result<Raw> {
    let languages = resolve(&spec.languages)?;
    let mut samples = Labelled::default();
    let mut taken = HashSet::new();
    for (label, l) in languages.iter().enumerate() {
        let text = read_list(l)?;
        let mut rng = Rng::derive(seed, "word-languages", label as u64);
        let words = draw(&text, WORDS_PER_LANGUAGE, &mut rng);
        if words.is_empty() {
            return Err(Error::format(l.path(), "holds no words made of letters"));
        }
        for word in words {
            if taken.insert(word.clone()) {
                samples.push(word, label as u32);
            }
        }
    }
    let names = languages.iter().map(|l| l.name.to_string()).collect();
    let source = format!("{DICT_DIR} ({})", languages.iter().map(|l| l.file).collect::<Vec<_>>().join(", "));
    classification(&samples, None, names, (TokenLevel::Char, true), spec, seed, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_letters_only_words_without_repeats() {
        let list = "Aaron\naaron\nAaron's\nx-ray\n\nzebra\nétage\n42\n";
        let words = draw(list, 100, &mut Rng::new(1));
        assert_eq!(words, ["aaron", "zebra", "étage"]);
        let few = draw(
            &(0..1000).map(|i| format!("w{}\n", "a".repeat(i % 50 + 1))).collect::<String>(),
            10,
            &mut Rng::new(2),
        );
        assert!(few.len() <= 10 && !few.is_empty());
    }
}
