//! Numeric CSV, as the embedded tabular and image sets are stored. Every row must have the same
//! number of columns; a ragged row, a cell that is not a finite number, or a file without rows
//! is an error naming the file and the line. Memory grows with the text, never beyond it.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows of numbers, all of one width.
pub struct NumericTable {
    pub columns: usize,
    pub values: Vec<f32>,
    /// The 1-based line number of each row in the file (blank lines are skipped).
    pub lines: Vec<usize>,
}

impl NumericTable {
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.columns).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.columns..(i + 1) * self.columns]
    }
}

/// A cell that must be a class index (a whole number from 0 up), checked rather than cast so
/// that `-1` or `2.5` is an error naming where it is, not a silently different class.
pub fn class_index(value: f32, path: &Path, line: usize, column: usize) -> Result<u32> {
    if value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f32 {
        Ok(value as u32)
    } else {
        Err(Error::format(path, format!("line {line}, column {column}: `{value}` is not a class index (0, 1, 2, ...)")))
    }
}

/// Parses comma-separated numbers. `first_line` is the 1-based line number of `text`'s first
/// line in the file, so that errors point at the right place when a header was skipped.
pub fn parse_numeric(text: &str, path: &Path, first_line: usize) -> Result<NumericTable> {
    let mut columns = None;
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = first_line + i;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let before = values.len();
        for (c, cell) in line.split(',').enumerate() {
            let cell = cell.trim();
            let v: f32 = cell.parse().map_err(|_| {
                Error::format(path, format!("line {line_no}, column {}: `{cell}` is not a number", c + 1))
            })?;
            // NaN would poison the normalisation and every loss after it; f32 overflow is inf
            if !v.is_finite() {
                return Err(Error::format(
                    path,
                    format!("line {line_no}, column {}: `{cell}` is not a finite number", c + 1),
                ));
            }
            values.push(v);
        }
        let found = values.len() - before;
        match columns {
            None => columns = Some(found),
            Some(expected) if expected != found => {
                return Err(Error::format(
                    path,
                    format!("line {line_no}: expected {expected} columns like the lines before, found {found}"),
                ));
            }
            Some(_) => {}
        }
        lines.push(line_no);
    }
    let Some(columns) = columns else {
        return Err(Error::format(path, format!("no rows of numbers from line {first_line} on")));
    };
    Ok(NumericTable { columns, values, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_row_names_its_line() {
        let err = parse_numeric("1,2,3\n4,5,6\n7,8\n", Path::new("x.csv"), 1).err().unwrap().to_string();
        assert!(err.contains("x.csv") && err.contains("line 3") && err.contains("found 2"), "{err}");
    }

    #[test]
    fn bad_cell_names_line_and_column() {
        let err = parse_numeric("1,2\n3,oops\n", Path::new("y.csv"), 2).err().unwrap().to_string();
        assert!(err.contains("line 3, column 2") && err.contains("oops"), "{err}");
    }

    #[test]
    fn non_finite_and_empty_are_refused() {
        for (text, bad) in [("1,2\n3,NaN\n", "NaN"), ("inf,1\n", "inf"), ("1,1e39\n", "1e39")] {
            let err = parse_numeric(text, Path::new("n.csv"), 1).err().unwrap().to_string();
            assert!(err.contains("n.csv") && err.contains("not a finite number") && err.contains(bad), "{err}");
        }
        let err = parse_numeric("\n  \n", Path::new("e.csv"), 4).err().unwrap().to_string();
        assert!(err.contains("e.csv") && err.contains("no rows") && err.contains("line 4"), "{err}");
    }

    #[test]
    fn class_index_refuses_what_a_cast_would_bend() {
        assert_eq!(class_index(3.0, Path::new("c.csv"), 5, 2).unwrap(), 3);
        for v in [-1.0, 2.5, 1e10] {
            let err = class_index(v, Path::new("c.csv"), 5, 2).err().unwrap().to_string();
            assert!(err.contains("c.csv") && err.contains("line 5, column 2"), "{err}");
        }
    }

    #[test]
    fn parses_rows() {
        let t = parse_numeric("1,2\n\n3,4.5\n", Path::new("z.csv"), 1).unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(t.row(1), &[3.0, 4.5]);
        assert_eq!(t.lines, vec![1, 3]);
    }
}
