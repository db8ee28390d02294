//! CIFAR-10 and CIFAR-100 in their binary format, from a folder the user picks.
//!
//! CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`, records of one label
//! byte and 3,072 pixel bytes (32x32, the red plane, then green, then blue). CIFAR-100:
//! `train.bin` and `test.bin`, records of a coarse label byte, a fine label byte and the pixels.
//! Every file is checked from its length before it is read (empty, cut short, beyond the cap),
//! read a bounded chunk at a time, and every label is checked against the classes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::storage::{self, RowSink};
use super::{DataSpec, Raw};
use crate::error::{Error, Result};
use crate::rng::Rng;

pub const PIXELS: usize = 3 * 32 * 32;

/// A CIFAR-10 batch is 30,730,000 bytes and CIFAR-100's train.bin 153,700,000; a file beyond
/// this is not CIFAR, and refusing it keeps a wrong pick from filling the disk cache or memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Records read per chunk: memory stays at a few MB whatever the file.
const CHUNK_RECORDS: usize = 1024;

pub const CIFAR10_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

#[rustfmt::skip]
pub const CIFAR100_COARSE: [&str; 20] = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
];

#[rustfmt::skip]
pub const CIFAR100_FINE: [&str; 100] = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl",
    "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair",
    "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin",
    "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp",
    "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck",
    "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm",
];

/// CIFAR-100's two labellings (`data.labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    /// 100 classes.
    #[default]
    Fine,
    /// 20 superclasses.
    Coarse,
}

impl LabelKind {
    pub fn is_fine(&self) -> bool {
        *self == LabelKind::Fine
    }
}

/// The files of one CIFAR variant and how to read them.
struct Layout {
    train: Vec<&'static str>,
    test: &'static str,
    /// Label bytes before the pixels.
    label_bytes: usize,
    /// Which of them is the label used.
    label_at: usize,
    names_file: &'static str,
    default_names: &'static [&'static str],
}

fn layout(hundred: bool, labels: LabelKind) -> Layout {
    if !hundred {
        let train =
            vec!["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
        return Layout {
            train,
            test: "test_batch.bin",
            label_bytes: 1,
            label_at: 0,
            names_file: "batches.meta.txt",
            default_names: &CIFAR10_NAMES,
        };
    }
    let (label_at, names_file, default_names): (usize, _, &'static [&'static str]) = match labels {
        LabelKind::Coarse => (0, "coarse_label_names.txt", &CIFAR100_COARSE),
        LabelKind::Fine => (1, "fine_label_names.txt", &CIFAR100_FINE),
    };
    Layout { train: vec!["train.bin"], test: "test.bin", label_bytes: 2, label_at, names_file, default_names }
}

/// The names file that `labels` reads class names from.
pub(crate) fn names_file(hundred: bool, labels: LabelKind) -> &'static str {
    layout(hundred, labels).names_file
}

/// The training files and the test file of a variant.
pub(crate) fn file_names(hundred: bool) -> (Vec<&'static str>, &'static str) {
    let l = layout(hundred, LabelKind::Fine);
    (l.train, l.test)
}

/// The folder holding the files: the picked one, or the archive's own sub-folder inside it.
pub(crate) fn files_dir(dir: &Path, hundred: bool) -> PathBuf {
    let sub = dir.join(if hundred { "cifar-100-binary" } else { "cifar-10-batches-bin" });
    if sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// The expected files, checked to exist before any is read, and their record count.
fn check_files(dir: &Path, l: &Layout, hundred: bool) -> Result<Vec<(PathBuf, usize)>> {
    let names: Vec<&str> = l.train.iter().copied().chain([l.test]).collect();
    let missing: Vec<&str> = names.iter().copied().filter(|n| !dir.join(n).is_file()).collect();
    if !missing.is_empty() {
        let set = if hundred { "CIFAR-100" } else { "CIFAR-10" };
        return Err(Error::format(
            dir,
            format!("missing {}; a {set} folder (binary version) holds {}", missing.join(", "), names.join(", ")),
        ));
    }
    let record = l.label_bytes + PIXELS;
    names
        .iter()
        .map(|n| {
            let path = dir.join(n);
            let len = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            if len == 0 {
                return Err(Error::format(&path, "the file is empty"));
            }
            if len > MAX_FILE_BYTES {
                return Err(Error::format(
                    &path,
                    format!("{len} bytes is more than a CIFAR file holds (at most {MAX_FILE_BYTES} read)"),
                ));
            }
            let rest = (len % record as u64) as usize;
            if rest != 0 {
                return Err(Error::format(
                    &path,
                    format!("record {} is cut short: {rest} of {record} bytes", len / record as u64),
                ));
            }
            Ok((path, (len / record as u64) as usize))
        })
        .collect()
}

/// Class names from the set's names file (one per line) when present, else the standard ones.
fn class_names(dir: &Path, l: &Layout) -> Result<Vec<String>> {
    let path = dir.join(l.names_file);
    if !path.is_file() {
        return Ok(l.default_names.iter().map(ToString::to_string).collect());
    }
    let text = crate::record::read_text_capped(&path, 64 << 10)?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if names.is_empty() || names.len() > 256 {
        return Err(Error::format(&path, format!("{} class names; expected one per line, 1 to 256", names.len())));
    }
    Ok(names)
}

/// Reads `cifar10` or `cifar100` from `spec.path`.
pub(super) fn load(spec: &DataSpec, hundred: bool) -> Result<Raw> {
    let what = if hundred {
        "the folder with CIFAR-100's train.bin and test.bin"
    } else {
        "the folder with CIFAR-10's data_batch_*.bin"
    };
    let picked = super::required_path(spec, what)?;
    let dir = files_dir(&picked, hundred);
    let l = layout(hundred, spec.labels);
    let files = check_files(&dir, &l, hundred)?;
    let class_names = class_names(&dir, &l)?;
    let total: usize = files.iter().map(|f| f.1).sum();
    let train_rows: usize = files[..files.len() - 1].iter().map(|f| f.1).sum();
    let stream = storage::should_stream(spec.stream, (total * PIXELS) as u64);
    let stamps = files.iter().map(|(p, _)| storage::file_stamp(p)).collect::<Result<Vec<_>>>()?;
    let key = storage::cache_key(if hundred { "cifar100" } else { "cifar10" }, &stamps);
    let mut sink = RowSink::new(stream, &key, PIXELS, total)?;
    let mut labels = Vec::with_capacity(total);
    for (path, records) in &files {
        read_file(path, *records, &l, class_names.len(), &mut sink, &mut labels)?;
    }
    let (train, test) = sink.finish(labels, train_rows)?;
    Ok(Raw {
        class_names,
        input_shape: vec![3, 32, 32],
        features: train,
        test: Some(test),
        scale: 1.0 / 255.0,
        source: format!("{}{}", dir.display(), if stream { " (streamed from a disk cache)" } else { "" }),
        presplit: None,
        text: None,
    })
}

fn read_file(
    path: &Path,
    records: usize,
    l: &Layout,
    classes: usize,
    sink: &mut RowSink,
    labels: &mut Vec<u32>,
) -> Result<()> {
    let record = l.label_bytes + PIXELS;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // never more than the length checked before, whatever the file does meanwhile
    let mut reader = file.take((records * record) as u64);
    let mut buf = vec![0u8; CHUNK_RECORDS.min(records) * record];
    let mut done = 0;
    while done < records {
        let n = CHUNK_RECORDS.min(records - done);
        let chunk = &mut buf[..n * record];
        reader
            .read_exact(chunk)
            .map_err(|e| Error::format(path, format!("record {done}: the file changed while it was read ({e})")))?;
        for (k, rec) in chunk.chunks_exact(record).enumerate() {
            let label = rec[l.label_at];
            if usize::from(label) >= classes {
                return Err(Error::format(
                    path,
                    format!("record {}: label {label} is outside the {classes} classes", done + k),
                ));
            }
            labels.push(u32::from(label));
            if !sink.cached() {
                sink.push(&rec[l.label_bytes..])?;
            }
        }
        if sink.cached() {
            sink.skip(n);
        }
        done += n;
    }
    Ok(())
}

/// One fixture image of class `class`: a class colour, stripes whose direction and period the
/// class sets, and seeded noise, so a small CNN learns it well above chance.
fn fixture_image(class: usize, rng: &mut Rng) -> Vec<u8> {
    let mut px = Vec::with_capacity(PIXELS);
    for ch in 0..3 {
        let base = 50.0 + 150.0 * (((class * 7 + ch * 3) % 10) as f32 / 9.0);
        for y in 0..32usize {
            for x in 0..32usize {
                let period = 2 + class % 3;
                let stripe = if class.is_multiple_of(2) { x } else { y };
                let lit = (stripe / period).is_multiple_of(2);
                let v = base * if lit { 1.0 } else { 0.55 } + rng.normal() * 18.0;
                px.push(v.clamp(0.0, 255.0) as u8);
            }
        }
    }
    px
}

/// Writes a CIFAR-10 folder in the exact binary format with `records_per_file` records in each
/// of the six files (labels cycling through the ten classes in a seeded order) and
/// `batches.meta.txt`. For tests and presets that need CIFAR where there is none.
pub fn write_fixture(dir: &Path, records_per_file: usize, seed: u64) -> Result<()> {
    write_files(dir, records_per_file, seed, false)
}

/// The same for CIFAR-100 (`train.bin` with 5x `records_per_file` records, `test.bin` with
/// `records_per_file`): the fine label is `coarse * 5 + k`.
pub fn write_fixture_100(dir: &Path, records_per_file: usize, seed: u64) -> Result<()> {
    write_files(dir, records_per_file, seed, true)
}

fn write_files(dir: &Path, records_per_file: usize, seed: u64, hundred: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let l = layout(hundred, LabelKind::Fine);
    let files: Vec<(&str, usize)> = if hundred {
        vec![("train.bin", 5 * records_per_file), ("test.bin", records_per_file)]
    } else {
        l.train.iter().map(|&n| (n, records_per_file)).chain([(l.test, records_per_file)]).collect()
    };
    for (f, (name, records)) in files.into_iter().enumerate() {
        let mut rng = Rng::derive(seed, "cifar-fixture", f as u64);
        let mut bytes = Vec::with_capacity(records * (l.label_bytes + PIXELS));
        for r in 0..records {
            let class = (r + rng.below(10)) % 10;
            if hundred {
                let fine = class * 10 + rng.below(10);
                bytes.extend([(fine / 5) as u8, fine as u8]);
            } else {
                bytes.push(class as u8);
            }
            bytes.extend(fixture_image(class, &mut rng));
        }
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    if !hundred {
        let meta = dir.join("batches.meta.txt");
        std::fs::write(&meta, CIFAR10_NAMES.join("\n") + "\n\n").map_err(|e| Error::io(&meta, e))?;
    }
    Ok(())
}
