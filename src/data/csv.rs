//! Numeric CSV, as the embedded tabular and image sets are stored. Every row must have the same
//! number of columns; a ragged row or a cell that is not a number is an error naming the line.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows of numbers, all of one width.
pub struct NumericTable {
    pub columns: usize,
    pub values: Vec<f32>,
}

impl NumericTable {
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.columns).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.columns..(i + 1) * self.columns]
    }
}

/// Parses comma-separated numbers. `first_line` is the 1-based line number of `text`'s first
/// line in the file, so that errors point at the right place when a header was skipped.
pub fn parse_numeric(text: &str, path: &Path, first_line: usize) -> Result<NumericTable> {
    let mut columns = None;
    let mut values = Vec::new();
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
    }
    Ok(NumericTable { columns: columns.unwrap_or(0), values })
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
    fn parses_rows() {
        let t = parse_numeric("1,2\n\n3,4.5\n", Path::new("z.csv"), 1).unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(t.row(1), &[3.0, 4.5]);
    }
}
