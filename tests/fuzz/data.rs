//! IDX and CSV.

use std::io::Write;
use std::path::Path;

use gradlab::data::csv::parse_numeric;
use gradlab::data::idx::{self, IdxImages};
use proptest::prelude::*;

use crate::support::{bounded, config, hostile_text, mutated, mutated_text, random_bytes};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..count * rows * cols).map(|i| (i * 37 % 251) as u8));
    b
}

fn idx_labels(count: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&count.to_be_bytes());
    b.extend((0..count).map(|i| (i % 10) as u8));
    b
}

/// Valid files, raw and gzipped, with edits; gzip of edited raw files; random bytes.
fn idx_input() -> impl Strategy<Value = Vec<u8>> {
    let (imgs, lbls) = (idx_images(6, 5, 4), idx_labels(6));
    prop_oneof![
        mutated(imgs.clone()),
        mutated(lbls.clone()),
        mutated(gzip(&imgs)),
        mutated(gzip(&lbls)),
        mutated(imgs).prop_map(|b| gzip(&b)),
        mutated(lbls).prop_map(|b| gzip(&b)),
        random_bytes(),
        random_bytes().prop_map(|b| gzip(&b)),
    ]
}

fn check_idx(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = Path::new("fuzz-idx");
    let images = bounded("reading IDX images", || idx::read_images_from(bytes, path))?;
    match images {
        Ok(IdxImages { count, rows, cols, pixels }) => {
            prop_assert!(count > 0 && rows > 0 && cols > 0);
            prop_assert_eq!(pixels.len(), count * rows * cols);
        }
        Err(e) => prop_assert!(e.to_string().contains("fuzz-idx"), "{}", e),
    }
    match bounded("reading IDX labels", || idx::read_labels_from(bytes, path))? {
        Ok(labels) => prop_assert!(!labels.is_empty()),
        Err(e) => prop_assert!(e.to_string().contains("fuzz-idx"), "{}", e),
    }
    Ok(())
}

const IRIS: &str = include_str!("../../assets/iris.csv");

fn csv_input() -> impl Strategy<Value = String> {
    let body = IRIS.split_once('\n').unwrap().1.lines().take(12).collect::<Vec<_>>().join("\n");
    prop_oneof![
        mutated_text(&body),
        hostile_text(body),
        random_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[0-9eE.,+\\- \n]{0,200}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_readers_never_panic(bytes in idx_input()) {
        check_idx(&bytes)?;
    }

    #[test]
    fn csv_parser_never_panics(text in csv_input()) {
        match bounded("parsing CSV", || parse_numeric(&text, Path::new("fuzz.csv"), 1))? {
            Ok(t) => {
                prop_assert!(t.columns > 0);
                prop_assert_eq!(t.values.len(), t.rows() * t.columns);
                prop_assert_eq!(t.lines.len(), t.rows());
                prop_assert!(t.values.iter().all(|v| v.is_finite()));
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("fuzz.csv") && e.contains("line"), "{}", e);
            }
        }
    }
}

/// Counts the bytes read through it.
struct Counted<'a> {
    inner: &'a [u8],
    read: usize,
}

impl std::io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

/// The gzip bomb, scaled down: a header promising 1,000 28x28 images (784,000 bytes),
/// then 256 MiB of zeros, compressed to a fraction of that. The reader must stop one byte past
/// the promise and refuse the trailing data, not inflate the rest.
#[test]
fn gzip_bomb_is_refused_after_the_promised_bytes() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&idx_images(1000, 28, 28)[..16]).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let mut source = Counted { inner: &bomb, read: 0 };
    let (result, peak) =
        crate::support::peak_of(|| idx::read_images_from(&mut source, Path::new("train-images-idx3-ubyte.gz")));
    let err = result.expect_err("a bomb is refused").to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz") && err.contains("trailing data"), "{err}");
    assert!(err.contains("1000 x 28 x 28") && err.contains("784000"), "{err}");
    // 784 KB inflated from a few KB of the stream; the 256 MiB are never produced
    assert!(source.read < bomb.len() / 10, "read {} of the {} compressed bytes", source.read, bomb.len());
    assert!(peak < 16 << 20, "held {peak} bytes");
    eprintln!("bomb: {} compressed bytes, {} read, peak {peak} bytes held", bomb.len(), source.read);
}
