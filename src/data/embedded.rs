//! The small real data sets compiled into the binary (see assets/README.md for provenance).

use std::io::Read;
use std::path::Path;

use super::csv::{class_index, parse_numeric};
use super::{digit_names, Raw, Split};
use crate::error::{Error, Result};

const MNIST_5K: &[u8] = include_bytes!("../../assets/mnist_5k.csv.gz");
const DIGITS: &[u8] = include_bytes!("../../assets/digits.csv.gz");
const IRIS: &str = include_str!("../../assets/iris.csv");
const WINE: &str = include_str!("../../assets/wine_data.csv");
const BREAST_CANCER: &str = include_str!("../../assets/breast_cancer.csv");

fn gunzip(bytes: &[u8], name: &str) -> Result<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| Error::format(name, format!("embedded data is damaged: {e}")))?;
    Ok(text)
}

/// Rows of `pixels..., label`, as the MNIST 5k and digits files are.
fn image_rows(text: &str, name: &str, side: usize, max_value: f32) -> Result<Raw> {
    let table = parse_numeric(text, Path::new(name), 1)?;
    let pixels = side * side;
    if table.columns != pixels + 1 {
        return Err(Error::format(name, format!("expected {} columns, found {}", pixels + 1, table.columns)));
    }
    let mut split = Split::default();
    for r in 0..table.rows() {
        let row = table.row(r);
        split.features.extend_from_slice(&row[..pixels]);
        split.labels.push(class_index(row[pixels], Path::new(name), table.lines[r], pixels + 1)?);
    }
    Ok(Raw {
        class_names: digit_names(),
        input_shape: vec![1, side, side],
        features: split,
        test: None,
        scale: 1.0 / max_value,
        source: format!("embedded {name}"),
        presplit: None,
        text: None,
    })
}

pub(super) fn mnist_5k() -> Result<Raw> {
    image_rows(&gunzip(MNIST_5K, "mnist_5k.csv.gz")?, "mnist_5k.csv.gz", 28, 255.0)
}

pub(super) fn digits() -> Result<Raw> {
    image_rows(&gunzip(DIGITS, "digits.csv.gz")?, "digits.csv.gz", 8, 16.0)
}

/// The scikit-learn table format: a first line `rows,features,class names...`, then rows of
/// features and the class index.
pub(crate) fn parse_table(text: &str, name: &str) -> Result<Raw> {
    let (head, body) = text.split_once('\n').unwrap_or((text, ""));
    let fields: Vec<&str> = head.trim().split(',').map(str::trim).collect();
    let bad_header = || Error::format(name, "line 1: expected `rows,features,class names...`");
    if fields.len() < 3 {
        return Err(bad_header());
    }
    let rows: usize = fields[0].parse().map_err(|_| bad_header())?;
    let features: usize = fields[1].parse().map_err(|_| bad_header())?;
    let class_names: Vec<String> = fields[2..].iter().map(ToString::to_string).collect();
    let table = parse_numeric(body, Path::new(name), 2)?;
    if Some(table.columns) != features.checked_add(1) || table.rows() != rows {
        return Err(Error::format(
            name,
            format!(
                "header promises {rows} rows of {features} features and a class, found {} rows of {} columns",
                table.rows(),
                table.columns
            ),
        ));
    }
    let mut split = Split::default();
    for r in 0..rows {
        let row = table.row(r);
        split.features.extend_from_slice(&row[..features]);
        split.labels.push(class_index(row[features], Path::new(name), table.lines[r], features + 1)?);
    }
    Ok(Raw {
        class_names,
        input_shape: vec![features],
        features: split,
        test: None,
        scale: 1.0,
        source: format!("embedded {name}"),
        presplit: None,
        text: None,
    })
}

pub(super) fn table(id: &str) -> Result<Raw> {
    match id {
        "iris" => parse_table(IRIS, "iris.csv"),
        "wine" => parse_table(WINE, "wine_data.csv"),
        _ => parse_table(BREAST_CANCER, "breast_cancer.csv"),
    }
}
