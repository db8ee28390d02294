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
    pub fn add(&mut self, token: &str) {
        // most tokens are seen before: look up first, allocate only for a new one
        match self.0.get_mut(token) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(token.to_string(), 1);
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_frequent_first_ties_alphabetical() {
        let mut c = Counts::default();
        for t in ["b", "a", "c", "c", "d", "b", "e"] {
            c.add(t);
        }
        assert_eq!(c.vocabulary(3), ["<pad>", "<unk>", "b", "c", "a"]);
        let vocab = ["<pad>", "<unk>", "b", "c"].map(String::from);
        let index = Index::new(&vocab);
        assert_eq!(["c", "zzz", "b", "<pad>"].map(|t| index.id(t)), [3, 1, 2, 1]);
    }
}
