//! A fingerprint of how a data set was split, so that `eval` can prove it holds out exactly the
//! samples the run held out (and refuse when the data on disk has changed since).

use serde::{Deserialize, Serialize};

use super::Split;

/// Counts and hashes of a split. Stored in a run's data.json and in an exported model's card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Samples in the training file(s) before splitting.
    pub total: usize,
    pub train: usize,
    pub validation: usize,
    pub test: Option<usize>,
    /// A 64-bit hash (hex) of the held-out indices into the training file(s), in order.
    pub validation_indices: String,
    /// A hash of the held-out samples themselves (raw features and labels, validation then
    /// test): the same indices into changed files are different samples.
    pub held_out_content: String,
}

/// FNV-1a style hashing over 64-bit words: stable across platforms and versions, which `std`'s
/// hasher is not.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// One step per 64-bit word rather than per byte: the held-out part of a large set is
    /// millions of values, and this runs at every load.
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        self.0 ^= self.0 >> 29;
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

impl SplitInfo {
    /// The fingerprint of a split made from `all` raw samples: `val_idx` held out, `train`
    /// samples kept for training, `test` the set's own raw test split.
    /// A streamed split is read row by row, so it hashes the same values as in memory.
    pub(crate) fn of(all: &Split, val_idx: &[usize], train: usize, test: Option<&Split>) -> crate::error::Result<Self> {
        let mut idx = Fnv::new();
        for &i in val_idx {
            idx.word(i as u64);
        }
        let mut content = Fnv::new();
        let mut hash_row = |label: u32, row: &[f32]| {
            content.word(u64::from(label));
            for v in row {
                content.word(u64::from(v.to_bits()));
            }
        };
        all.for_each_raw(val_idx, |i, row| hash_row(all.labels[i], row))?;
        if let Some(t) = test {
            content.word(t.len() as u64);
            content.word(u64::from_le_bytes(*b"testsplt"));
            let every: Vec<usize> = (0..t.len()).collect();
            t.for_each_raw(&every, |i, row| {
                content.word(u64::from(t.labels[i]));
                for v in row {
                    content.word(u64::from(v.to_bits()));
                }
            })?;
        }
        Ok(Self {
            total: all.len(),
            train,
            validation: val_idx.len(),
            test: test.map(Split::len),
            validation_indices: idx.hex(),
            held_out_content: content.hex(),
        })
    }

    /// What differs between the split recorded (`self`) and the one made now, in words; `None`
    /// when they are the same.
    pub fn differences(&self, now: &SplitInfo) -> Option<String> {
        let mut out = Vec::new();
        let count = |name: &str, was: String, is: String, out: &mut Vec<String>| {
            if was != is {
                out.push(format!("{name} samples {was} then, {is} now"));
            }
        };
        let opt = |n: Option<usize>| n.map_or_else(|| "none".to_string(), |n| n.to_string());
        count("total", self.total.to_string(), now.total.to_string(), &mut out);
        count("training", self.train.to_string(), now.train.to_string(), &mut out);
        count("validation", self.validation.to_string(), now.validation.to_string(), &mut out);
        count("test", opt(self.test), opt(now.test), &mut out);
        if self.validation_indices != now.validation_indices {
            out.push(format!("held-out indices hash {} then, {} now", self.validation_indices, now.validation_indices));
        } else if self.held_out_content != now.held_out_content {
            out.push(format!(
                "the held-out samples' contents changed (hash {} then, {} now)",
                self.held_out_content, now.held_out_content
            ));
        }
        (!out.is_empty()).then(|| out.join("; "))
    }
}
