//! A user's CSV table (`csv` set), RFC 4180 (our own small reader: the `csv` crate's serde
//! features rebuilt every serde dependant): quoted cells, a header row or not
//! (detected unless `data.header` says), a label column by name or 0-based position (default
//! the last), every other column numeric. Class names are the label column's distinct values,
//! sorted (as numbers when they all are). A missing value (empty, NA, NaN, ?) is refused naming
//! its line and column unless `data.missing` says to impute it or drop its row.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{DataSpec, Raw, Split};
use crate::error::{Error, Result};

/// A table larger than this is refused before it is read: its `f32` cells live in memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// More distinct labels than this is a measurement picked as the label, not classes.
pub const MAX_CLASSES: usize = 256;

/// `data.label_column`: a header name or a 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelColumn {
    Position(usize),
    Name(String),
}

/// `data.missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// An error naming the line and column.
    #[default]
    Refuse,
    /// The column's mean over the rows that have it.
    Mean,
    Zero,
    /// Leave out every row with a missing value.
    DropRow,
}

impl Missing {
    pub fn is_refuse(&self) -> bool {
        *self == Missing::Refuse
    }
}

fn is_missing(cell: &str) -> bool {
    matches!(cell.to_ascii_lowercase().as_str(), "" | "na" | "n/a" | "nan" | "?")
}

fn number(cell: &str) -> Option<f32> {
    cell.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// What the head of a file says about its layout, without the rest of it: for `validate` and
/// the budget.
pub struct Shape {
    pub header: Option<Vec<String>>,
    pub columns: usize,
    pub label: usize,
}

/// The file's text, checked: not empty, within the cap, UTF-8. With `head`, only its first MiB
/// up to the last whole line (enough to see the header and the width).
fn read_text(path: &Path, head: bool) -> Result<String> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::format(path, "the file is empty"));
    }
    if len > MAX_FILE_BYTES {
        return Err(Error::format(path, format!("{len} bytes is more than a table may hold ({MAX_FILE_BYTES})")));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let cap = if head { len.min(HEAD_BYTES) } else { len };
    let mut bytes = Vec::with_capacity(cap as usize);
    // a file growing while read stops at the length checked
    std::io::Read::read_to_end(&mut std::io::Read::take(file, cap), &mut bytes).map_err(|e| Error::io(path, e))?;
    if head && cap < len {
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::format(path, format!("line {line}: not UTF-8 text"))
    })
}

/// Bytes read to find a table's header and width.
const HEAD_BYTES: u64 = 1 << 20;

/// Calls `visit(line, cells)` for each record of RFC 4180 CSV (commas, cells in double quotes
/// may hold commas, line breaks and `""`), skipping blank lines, until `visit` says stop.
fn for_each_record(text: &str, path: &Path, mut visit: impl FnMut(usize, &[String]) -> Result<bool>) -> Result<()> {
    let (mut cells, mut cell) = (Vec::<String>::new(), String::new());
    let (mut line, mut start) = (1usize, 1usize);
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut end_record = |cells: &mut Vec<String>, cell: &mut String, start: usize| -> Result<bool> {
        cells.push(std::mem::take(cell));
        let blank = cells.len() == 1 && cells[0].trim().is_empty();
        let go_on = blank || visit(start, cells)?;
        cells.clear();
        Ok(go_on)
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                _ => {
                    line += usize::from(c == '\n');
                    cell.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if cell.trim().is_empty() => {
                quoted = true;
                cell.clear();
            }
            ',' => cells.push(std::mem::take(&mut cell)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if !end_record(&mut cells, &mut cell, start)? {
                    return Ok(());
                }
                line += 1;
                start = line;
            }
            _ => cell.push(c),
        }
    }
    if quoted {
        return Err(Error::format(path, format!("line {start}: a quoted cell is never closed")));
    }
    if !cells.is_empty() || !cell.is_empty() {
        end_record(&mut cells, &mut cell, start)?;
    }
    Ok(())
}

/// Reads the first two rows: the header (as `data.header` says, or detected: the first row is a
/// header when some column that holds a number in the second row does not in the first), the
/// column count and the label column.
pub fn shape(path: &Path, spec: &DataSpec) -> Result<Shape> {
    let text = read_text(path, true)?;
    let mut head: Vec<Vec<String>> = Vec::new();
    for_each_record(&text, path, |_, cells| {
        head.push(cells.to_vec());
        Ok(head.len() < 2)
    })?;
    let Some(first) = head.first() else { return Err(Error::format(path, "no rows")) };
    let has_header = spec.header.unwrap_or_else(|| {
        head.get(1).is_some_and(|second| {
            first.iter().zip(second).any(|(a, b)| {
                let a = a.trim();
                number(b.trim()).is_some() && number(a).is_none() && !is_missing(a)
            })
        })
    });
    let columns = first.len();
    if columns < 2 {
        return Err(Error::format(
            path,
            format!("line 1: {columns} column; a table needs a label and at least one feature"),
        ));
    }
    let header: Option<Vec<String>> = has_header.then(|| first.iter().map(|c| c.trim().to_string()).collect());
    let label = match &spec.label_column {
        None => columns - 1,
        Some(LabelColumn::Position(p)) if *p < columns => *p,
        Some(LabelColumn::Position(p)) => {
            return Err(Error::config(
                "preset",
                "data.label_column",
                format!("column {p} does not exist: {} has {columns} columns (0 to {})", path.display(), columns - 1),
            ));
        }
        Some(LabelColumn::Name(name)) => match &header {
            Some(h) => h.iter().position(|c| c == name).ok_or_else(|| {
                Error::config(
                    "preset",
                    "data.label_column",
                    format!("no column `{name}` in {}; its columns are {}", path.display(), h.join(", ")),
                )
            })?,
            None => {
                return Err(Error::config(
                    "preset",
                    "data.label_column",
                    format!(
                        "`{name}` is a name but {} has no header row; give the column's 0-based position",
                        path.display()
                    ),
                ));
            }
        },
    };
    Ok(Shape { header, columns, label })
}

/// The distinct values of the label column (rows with a missing label left out), reading only
/// that column: for `validate`, which must not parse the whole table.
pub fn count_classes(path: &Path, shape: &Shape) -> Result<usize> {
    let mut seen = std::collections::BTreeSet::new();
    let text = read_text(path, false)?;
    let mut skip = shape.header.is_some();
    for_each_record(&text, path, |_, rec| {
        if std::mem::take(&mut skip) {
            return Ok(true);
        }
        if let Some(cell) = rec.get(shape.label).map(|c| c.trim()).filter(|c| !is_missing(c)) {
            if !seen.contains(cell) {
                seen.insert(cell.to_string());
            }
        }
        Ok(seen.len() <= MAX_CLASSES)
    })?;
    Ok(seen.len())
}

/// Loads the table as a `Tabular` set.
pub(super) fn load(path: &Path, spec: &DataSpec) -> Result<Raw> {
    let shape = shape(path, spec)?;
    let col_name = |c: usize| match &shape.header {
        Some(h) => format!("column {} `{}`", c + 1, h[c]),
        None => format!("column {}", c + 1),
    };
    let features = shape.columns - 1;
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut missing_at: Vec<bool> = Vec::new();
    let (mut sum, mut count) = (vec![0f64; features], vec![0usize; features]);
    let text = read_text(path, false)?;
    let mut row = Vec::with_capacity(features);
    let mut skip = shape.header.is_some();
    for_each_record(&text, path, |line, rec| {
        if std::mem::take(&mut skip) {
            return Ok(true);
        }
        if rec.len() != shape.columns {
            return Err(Error::format(
                path,
                format!("line {line}: expected {} columns like the lines before, found {}", shape.columns, rec.len()),
            ));
        }
        row.clear();
        let mut row_missing = false;
        let mut label = None;
        for (c, cell) in rec.iter().enumerate() {
            let cell = cell.trim();
            let gap = is_missing(cell);
            if gap && (spec.missing == Missing::Refuse || (c == shape.label && spec.missing != Missing::DropRow)) {
                let how = if c == shape.label {
                    "data.missing = \"drop_row\""
                } else {
                    "data.missing = \"mean\", \"zero\" or \"drop_row\""
                };
                return Err(Error::format(
                    path,
                    format!("line {line}, {}: missing value (`{cell}`); set {how} to accept it", col_name(c)),
                ));
            }
            row_missing |= gap;
            if c == shape.label {
                label = Some(cell);
                continue;
            }
            let v = if gap {
                f32::NAN
            } else {
                number(cell).ok_or_else(|| {
                    Error::format(path, format!("line {line}, {}: `{cell}` is not a finite number", col_name(c)))
                })?
            };
            row.push(v);
        }
        if row_missing && spec.missing == Missing::DropRow {
            return Ok(true);
        }
        for (j, &v) in row.iter().enumerate() {
            if !v.is_nan() {
                sum[j] += f64::from(v);
                count[j] += 1;
            }
        }
        values.extend_from_slice(&row);
        missing_at.push(row_missing);
        labels.push(label.unwrap_or_default().to_string());
        Ok(true)
    })?;
    if labels.is_empty() {
        return Err(Error::format(path, "no rows of data"));
    }
    if missing_at.iter().any(|&m| m) {
        impute(&mut values, features, spec.missing, &sum, &count, path, &col_name, shape.label)?;
    }
    let (class_names, ids) = classes(&labels, path)?;
    Ok(Raw {
        class_names,
        input_shape: vec![features],
        features: Split::new(values, ids),
        test: None,
        scale: 1.0,
        source: path.display().to_string(),
        presplit: None,
        text: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn impute(
    values: &mut [f32],
    features: usize,
    how: Missing,
    sum: &[f64],
    count: &[usize],
    path: &Path,
    col_name: &dyn Fn(usize) -> String,
    label: usize,
) -> Result<()> {
    let mut fill = vec![0f32; features];
    if how == Missing::Mean {
        for j in 0..features {
            if count[j] == 0 {
                let col = if j >= label { j + 1 } else { j };
                return Err(Error::format(
                    path,
                    format!("{}: every value is missing; there is no mean", col_name(col)),
                ));
            }
            fill[j] = (sum[j] / count[j] as f64) as f32;
        }
    }
    for (i, v) in values.iter_mut().enumerate() {
        if v.is_nan() {
            *v = fill[i % features];
        }
    }
    Ok(())
}

/// Distinct labels, sorted (numerically when every one is a number), and each row's index.
fn classes(labels: &[String], path: &Path) -> Result<(Vec<String>, Vec<u32>)> {
    let mut names: Vec<&str> = labels.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_CLASSES {
        return Err(Error::format(
            path,
            format!(
                "the label column has {} distinct values, more than {MAX_CLASSES} classes; is it a measurement? pick the label with data.label_column",
                names.len()
            ),
        ));
    }
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    }
    let ids = labels.iter().map(|l| names.iter().position(|n| n == l).unwrap_or(0) as u32).collect();
    Ok((names.into_iter().map(String::from).collect(), ids))
}
