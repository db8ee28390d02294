//! The size of a preset's data set, known without loading it: embedded sets have fixed sizes,
//! synthetic sets are `data.samples` points, IDX folders say theirs in their headers, text sets
//! are bounded by their files' sizes on disk.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{input_shape_hint, Preset};
use crate::data::idx;

/// Samples and shape of a data set, as the estimate needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSize {
    /// Samples that are split into train and validation (before `data.limit`).
    pub samples: f64,
    /// Samples of the separate test split.
    pub test: f64,
    pub input_shape: Vec<usize>,
    pub classes: usize,
    /// Bytes the reader allocates while loading and frees before training starts (a CSV's text
    /// and its growing tables, IDX file bytes, the unsplit features).
    pub temporaries: f64,
    /// The key that sets the size, named when the data is what does not fit.
    pub key: &'static str,
    /// The features stay in a disk cache (`data.stream`): memory holds labels and row numbers.
    pub streamed: bool,
}

/// `None` when the size cannot be known without reading the data (an IDX folder that is missing
/// or unreadable: loading then reports what is wrong).
pub fn data_size(preset: &Preset) -> Option<DataSize> {
    let d = &preset.data;
    let (input_shape, classes) = input_shape_hint(preset).unwrap_or((vec![], 10));
    let sample_bytes = |shape: &[usize]| (shape.iter().map(|&x| x as f64).product::<f64>() + 1.0) * 4.0;
    // An embedded CSV: its text, then the parsed table and the unsplit features, each grown by
    // doubling (up to twice their final size), all freed once the splits are copied out.
    let embedded = |samples: f64, text: f64| DataSize {
        samples,
        test: 0.0,
        input_shape: input_shape.clone(),
        classes,
        temporaries: 2.0 * text + 4.0 * samples * sample_bytes(&input_shape),
        key: "data.set",
        streamed: false,
    };
    Some(match d.set.as_str() {
        // the embedded CSVs inflate to these sizes (assets/)
        "mnist-5k" => embedded(5000.0, 9_139_322.0),
        "digits" => embedded(1797.0, 264_712.0),
        "iris" => embedded(150.0, 3_000.0),
        "wine" => embedded(178.0, 11_000.0),
        "breast-cancer" => embedded(569.0, 120_000.0),
        "spiral" | "blobs" | "moons" | "circles" | "xor" => DataSize {
            key: "data.samples",
            // the points as generated, before the splits are copied out
            temporaries: d.samples as f64 * sample_bytes(&input_shape),
            ..embedded(d.samples as f64, 0.0)
        },
        "fashion-mnist" | "idx" => {
            let dir = d.path.clone().unwrap_or_else(|| PathBuf::from(idx::FASHION_MNIST_DIR));
            let files = idx::find_in_folder(&dir).ok()?;
            let (count, rows, cols, bytes) = idx_images(&files.train_images)?;
            let (test, test_bytes) = match &files.test {
                Some((images, _)) => idx_images(images).map_or((0.0, 0.0), |(n, _, _, b)| (n, b)),
                None => (0.0, 0.0),
            };
            let input_shape = vec![1, rows, cols];
            DataSize {
                samples: count,
                test,
                // per file: its bytes (a gzipped one inflates into a buffer grown by doubling)
                // and a copy of the pixels; then the unsplit training features
                temporaries: 3.0 * (bytes + test_bytes) + count * sample_bytes(&input_shape),
                input_shape,
                classes: if d.set == "idx" { 10 } else { classes },
                key: if d.path.is_some() { "data.path" } else { "data.set" },
                streamed: false,
            }
        }
        "text-folder" | "fortune-categories" | "word-languages" | "fortunes-text" | "text-file" => {
            let t = crate::data::text::estimate::size(d)?;
            DataSize {
                samples: t.samples,
                test: t.test,
                input_shape: vec![d.max_len],
                classes: t.classes,
                temporaries: t.temporaries,
                key: if d.path.is_some() { "data.path" } else { "data.set" },
                streamed: false,
            }
        }
        "cifar10" | "cifar100" | "image-folder" | "csv" => {
            let u = crate::data::user_estimate::size(d)?;
            DataSize {
                samples: u.samples,
                test: u.test,
                input_shape: u.input_shape,
                classes,
                temporaries: u.temporaries,
                key: "data.path",
                streamed: u.streamed,
            }
        }
        _ => return None,
    })
}

/// Images, rows, columns and data bytes of an IDX3 file, from its header. A raw file cannot hold
/// more images than its length allows (the reader refuses one that promises more); a gzipped one
/// is taken at its word, which the reader also checks.
fn idx_images(path: &Path) -> Option<(f64, usize, usize, f64)> {
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len() as f64;
    let mut head = [0u8; 16];
    file.read_exact(&mut head[..2]).ok()?;
    let gzipped = head[..2] == [0x1f, 0x8b];
    if gzipped {
        let file = std::fs::File::open(path).ok()?;
        flate2::read::GzDecoder::new(file).read_exact(&mut head).ok()?;
    } else {
        file.read_exact(&mut head[2..]).ok()?;
    }
    let dim = |i: usize| f64::from(u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]));
    let (mut count, rows, cols) = (dim(4), dim(8), dim(12));
    let image = rows * cols;
    if !gzipped && image > 0.0 {
        count = count.min(((length - 16.0) / image).max(0.0).floor());
    }
    Some((count, rows as usize, cols as usize, count * image))
}
