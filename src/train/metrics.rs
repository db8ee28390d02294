//! Confusion matrices and the figures derived from them.

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class), row-major: `counts[true * classes + predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    pub classes: usize,
    pub counts: Vec<u64>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Self { classes, counts: vec![0; classes * classes] }
    }

    pub fn add(&mut self, truth: u32, predicted: u32) {
        let (t, p) = (truth as usize, predicted as usize);
        if t < self.classes && p < self.classes {
            self.counts[t * self.classes + p] += 1;
        }
    }

    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|c| self.get(c, c)).sum()
    }

    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            self.correct() as f64 / total as f64
        }
    }

    /// Samples of class `truth` in all.
    pub fn row_total(&self, truth: usize) -> u64 {
        (0..self.classes).map(|p| self.get(truth, p)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_the_diagonal() {
        let mut c = Confusion::new(3);
        for (t, p) in [(0, 0), (1, 1), (2, 1), (2, 2)] {
            c.add(t, p);
        }
        assert_eq!(c.total(), 4);
        assert_eq!(c.get(2, 1), 1);
        assert!((c.accuracy() - 0.75).abs() < 1e-12);
        assert_eq!(c.row_total(2), 2);
    }
}
