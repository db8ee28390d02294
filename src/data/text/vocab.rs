//! The vocabulary: the most frequent tokens of the training part, after `<pad>` (id 0) and
//! `<unk>` (id 1).

use std::collections::HashMap;

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";
pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;

/// Token counts of the training part.
#[derive(Default)]
pub struct Counts(HashMap<String, u64>);

impl Counts {
    pub fn add(&mut self, tokens: Vec<String>) {
        for t in tokens {
            self.add_count(t, 1);
        }
    }

    pub fn add_count(&mut self, token: String, count: u64) {
        *self.0.entry(token).or_insert(0) += count;
    }

    /// `<pad>`, `<unk>`, then the `size` most frequent tokens. Ties go to the token that sorts
    /// first, so the same text always gives the same ids (a `HashMap`'s order is random).
    pub fn vocabulary(self, size: usize) -> Vec<String> {
        let mut counted: Vec<(String, u64)> = self.0.into_iter().collect();
        counted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counted.truncate(size);
        let mut tokens = vec![PAD.to_string(), UNK.to_string()];
        tokens.extend(counted.into_iter().map(|(t, _)| t));
        tokens
    }
}

/// Token -> id for encoding.
pub struct Index<'a>(HashMap<&'a str, u32>);

impl<'a> Index<'a> {
    pub fn new(tokens: &'a [String]) -> Self {
        // ids are stored as f32 features, exact up to 2^24; validation caps vocab_size far below
        Self(tokens.iter().enumerate().skip(2).map(|(i, t)| (t.as_str(), i as u32)).collect())
    }

    pub fn id(&self, token: &str) -> u32 {
        self.0.get(token).copied().unwrap_or(UNK_ID)
    }

    /// The ids of `tokens`, cut to `max_len` and padded with `<pad>` to it.
    pub fn padded(&self, tokens: &[String], max_len: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens.iter().take(max_len).map(|t| self.id(t)).collect();
        ids.resize(max_len, PAD_ID);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn most_frequent_first_ties_alphabetical() {
        let mut c = Counts::default();
        c.add(strings(&["b", "a", "c", "c", "d", "b", "e"]));
        assert_eq!(c.vocabulary(3), strings(&["<pad>", "<unk>", "b", "c", "a"]));
        let vocab = strings(&["<pad>", "<unk>", "b", "c"]);
        let index = Index::new(&vocab);
        assert_eq!(index.padded(&strings(&["c", "zzz", "b"]), 5), [3, 1, 2, 0, 0]);
        assert_eq!(index.padded(&strings(&["c", "zzz", "b"]), 2), [3, 1]);
    }
}
