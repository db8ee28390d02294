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

    /// Each row divided by its total (the share of the true class that went to each
    /// prediction), row-major like `counts`; a class without samples keeps a row of zeros.
    pub fn row_normalised(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.counts.len()];
        for t in 0..self.classes {
            let total = self.row_total(t);
            if total == 0 {
                continue;
            }
            for p in 0..self.classes {
                out[t * self.classes + p] = self.get(t, p) as f64 / total as f64;
            }
        }
        out
    }

    /// Samples predicted as class `predicted` in all.
    pub fn column_total(&self, predicted: usize) -> u64 {
        (0..self.classes).map(|t| self.get(t, predicted)).sum()
    }

    /// Precision, recall, F1 and support per class, with the macro and weighted averages as
    /// scikit-learn's `classification_report` defines them (0 where a denominator is 0).
    pub fn per_class(&self) -> ClassReport {
        let rows: Vec<ClassRow> = (0..self.classes)
            .map(|c| {
                let hit = self.get(c, c) as f64;
                let support = self.row_total(c);
                let predicted = self.column_total(c);
                let precision = ratio(hit, predicted as f64);
                let recall = ratio(hit, support as f64);
                let f1 = ratio(2.0 * precision * recall, precision + recall);
                ClassRow { precision, recall, f1, support, predicted }
            })
            .collect();
        let total = self.total();
        // a class that is neither in the data nor ever predicted says nothing about the model
        let present: Vec<&ClassRow> = rows.iter().filter(|r| r.support > 0 || r.predicted > 0).collect();
        let n = present.len() as f64;
        let mean = |f: fn(&ClassRow) -> f64| ratio(present.iter().map(|r| f(r)).sum(), n);
        let weighted =
            |f: fn(&ClassRow) -> f64| ratio(rows.iter().map(|r| f(r) * r.support as f64).sum(), total as f64);
        let macro_avg = ClassRow {
            precision: mean(|r| r.precision),
            recall: mean(|r| r.recall),
            f1: mean(|r| r.f1),
            support: total,
            predicted: total,
        };
        let weighted_avg = ClassRow {
            precision: weighted(|r| r.precision),
            recall: weighted(|r| r.recall),
            f1: weighted(|r| r.f1),
            support: total,
            predicted: total,
        };
        ClassReport { rows, macro_avg, weighted_avg }
    }
}

/// `a / b`, or 0 when `b` is 0 (a class never predicted has precision 0, not NaN).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// One line of a classification report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassRow {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples of this class (for the averages: all samples).
    pub support: u64,
    /// Samples predicted as this class.
    pub predicted: u64,
}

/// Per-class figures of a confusion matrix and their averages.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassReport {
    pub rows: Vec<ClassRow>,
    /// The unweighted mean over the classes with samples or predictions.
    pub macro_avg: ClassRow,
    /// The mean weighted by support (its recall is the accuracy).
    pub weighted_avg: ClassRow,
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

    fn from_rows(rows: &[&[u64]]) -> Confusion {
        let classes = rows.len();
        Confusion { classes, counts: rows.iter().flat_map(|r| r.iter().copied()).collect() }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// The figures worked out by hand (and by scikit-learn's classification_report).
    #[test]
    fn per_class_report_matches_hand_computed_figures() {
        // rows: true class; columns: predicted
        let c = from_rows(&[&[5, 1, 0], &[2, 3, 1], &[0, 0, 4]]);
        let r = c.per_class();
        let want = [
            (5.0 / 7.0, 5.0 / 6.0, 10.0 / 13.0, 6),
            (3.0 / 4.0, 1.0 / 2.0, 3.0 / 5.0, 6),
            (4.0 / 5.0, 1.0, 8.0 / 9.0, 4),
        ];
        for (row, (p, rc, f1, support)) in r.rows.iter().zip(want) {
            assert!(close(row.precision, p) && close(row.recall, rc) && close(row.f1, f1), "{row:?}");
            assert_eq!(row.support, support);
        }
        let m = r.macro_avg;
        assert!(close(m.precision, 0.754762) && close(m.recall, 0.777778) && close(m.f1, 0.752707), "{m:?}");
        let w = r.weighted_avg;
        assert!(close(w.precision, 0.749107) && close(w.recall, 0.75) && close(w.f1, 0.735684), "{w:?}");
        assert!(close(w.recall, c.accuracy()), "weighted recall is the accuracy");
        assert_eq!(m.support, 16);
    }

    #[test]
    fn a_class_never_predicted_has_zero_precision_and_an_absent_class_is_left_out() {
        // class 1 is never predicted; class 2 neither occurs nor is predicted
        let c = from_rows(&[&[3, 0, 0], &[2, 0, 0], &[0, 0, 0]]);
        let r = c.per_class();
        assert_eq!(r.rows[1].precision, 0.0);
        assert_eq!(r.rows[1].f1, 0.0);
        assert!(r.rows.iter().all(|row| row.precision.is_finite() && row.f1.is_finite()));
        // macro over classes 0 and 1 only: P = (3/5 + 0) / 2, R = (1 + 0) / 2
        assert!(close(r.macro_avg.precision, 0.3) && close(r.macro_avg.recall, 0.5), "{:?}", r.macro_avg);
        let empty = Confusion::new(4).per_class();
        assert_eq!(empty.macro_avg.f1, 0.0);
    }

    #[test]
    fn row_normalised_rows_sum_to_one() {
        let c = from_rows(&[&[5, 1, 0], &[2, 3, 1], &[0, 0, 0]]);
        let n = c.row_normalised();
        for t in 0..2 {
            assert!(close(n[t * 3..t * 3 + 3].iter().sum(), 1.0));
        }
        assert!(close(n[1], 1.0 / 6.0) && close(n[3], 2.0 / 6.0), "rows, not columns: {n:?}");
        assert_eq!(&n[6..], &[0.0; 3], "an empty class stays zero");
    }
}
