//! The IDX reader on files written here: round trips, the malformed cases, and a folder that
//! trains.

use std::path::Path;

use gradlab::data::idx::{self, IdxImages};
use gradlab::data::{self, DataSpec};

fn images(count: usize) -> IdxImages {
    IdxImages { count, rows: 4, cols: 3, pixels: (0..count * 12).map(|i| (i * 7 % 256) as u8).collect() }
}

fn labels(count: usize) -> Vec<u8> {
    (0..count).map(|i| (i % 10) as u8).collect()
}

fn err_of<T>(r: gradlab::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn round_trip_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        let ip = dir.path().join(format!("imgs-{gzip}"));
        let lp = dir.path().join(format!("lbls-{gzip}"));
        idx::write_images(&ip, &images(20), gzip).unwrap();
        idx::write_labels(&lp, &labels(20), gzip).unwrap();
        let (i, l) = idx::read_pair(&ip, &lp).unwrap();
        assert_eq!(i, images(20));
        assert_eq!(l, labels(20));
    }
}

#[test]
fn missing_file_is_named() {
    let e = err_of(idx::read_images(Path::new("/nonexistent/train-images-idx3-ubyte")));
    assert!(e.contains("/nonexistent/train-images-idx3-ubyte"), "{e}");
}

#[test]
fn wrong_magic_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lp = dir.path().join("labels");
    idx::write_labels(&lp, &labels(5), false).unwrap();
    // a labels file where images are expected
    let e = err_of(idx::read_images(&lp));
    assert!(e.contains("labels") && e.contains("wrong magic number 0x00000801"), "{e}");
    std::fs::write(&lp, b"PK\x03\x04 not idx at all").unwrap();
    let e = err_of(idx::read_labels(&lp));
    assert!(e.contains("wrong magic number"), "{e}");
}

#[test]
fn truncated_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("train-images-idx3-ubyte");
    idx::write_images(&ip, &images(10), false).unwrap();
    let bytes = std::fs::read(&ip).unwrap();
    std::fs::write(&ip, &bytes[..bytes.len() - 5]).unwrap();
    let e = err_of(idx::read_images(&ip));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("truncated") && e.contains("10 x 4 x 3"), "{e}");
    // inside the header
    std::fs::write(&ip, &bytes[..9]).unwrap();
    assert!(err_of(idx::read_images(&ip)).contains("header"));
    // a gzip stream cut short
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    idx::write_images(&gz, &images(10), true).unwrap();
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_of(idx::read_images(&gz));
    assert!(e.contains("train-images-idx3-ubyte.gz") && (e.contains("truncated") || e.contains("damaged")), "{e}");
}

#[test]
fn image_label_count_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("i");
    let lp = dir.path().join("l");
    idx::write_images(&ip, &images(10), false).unwrap();
    idx::write_labels(&lp, &labels(9), false).unwrap();
    let e = err_of(idx::read_pair(&ip, &lp));
    assert!(e.contains("9 labels") && e.contains("10 images"), "{e}");
}

#[test]
fn a_folder_of_idx_files_loads_and_splits() {
    let dir = tempfile::tempdir().unwrap();
    idx::write_images(&dir.path().join("train-images-idx3-ubyte.gz"), &images(50), true).unwrap();
    idx::write_labels(&dir.path().join("train-labels-idx1-ubyte.gz"), &labels(50), true).unwrap();
    idx::write_images(&dir.path().join("t10k-images-idx3-ubyte"), &images(20), false).unwrap();
    idx::write_labels(&dir.path().join("t10k-labels-idx1-ubyte"), &labels(20), false).unwrap();
    let spec = DataSpec {
        set: "idx".into(),
        path: Some(dir.path().to_path_buf()),
        validation_fraction: 0.2,
        ..DataSpec::default()
    };
    let ds = data::load(&spec, 1).unwrap();
    assert_eq!(ds.input_shape, vec![1, 4, 3]);
    assert_eq!((ds.train.len(), ds.validation.len()), (40, 10));
    assert_eq!(ds.test.as_ref().map(|t| t.len()), Some(20));
    assert_eq!(ds.num_classes(), 10);
    // a folder without the files says what it looked for
    let empty = tempfile::tempdir().unwrap();
    let spec = DataSpec { set: "idx".into(), path: Some(empty.path().to_path_buf()), ..DataSpec::default() };
    assert!(err_of(data::load(&spec, 1)).contains("train-images"));
}

fn raw_images(count: u32, rows: u32, cols: u32, extra: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.resize(b.len() + (count * rows * cols) as usize + extra, 7);
    b
}

#[test]
fn zero_dimensions_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("train-images-idx3-ubyte");
    for (dims, word) in [((5, 0, 0), "0 rows"), ((0, 4, 4), "0 images"), ((5, 4, 0), "0 columns")] {
        std::fs::write(&ip, raw_images(dims.0, dims.1, dims.2, 0)).unwrap();
        let e = err_of(idx::read_images(&ip));
        assert!(e.contains("train-images-idx3-ubyte") && e.contains(word), "{e}");
    }
    let lp = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&lp, [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    assert!(err_of(idx::read_labels(&lp)).contains("0 labels"));
}

#[test]
fn trailing_data_is_refused_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&ip, raw_images(3, 2, 2, 1)).unwrap();
    let e = err_of(idx::read_images(&ip));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("trailing data") && e.contains("3 x 2 x 2"), "{e}");
    // a second gzip member appended to a valid file is trailing data too, not ignored
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    idx::write_images(&gz, &images(4), true).unwrap();
    let mut bytes = std::fs::read(&gz).unwrap();
    let again = bytes.clone();
    bytes.extend_from_slice(&again);
    std::fs::write(&gz, &bytes).unwrap();
    let e = err_of(idx::read_images(&gz));
    assert!(e.contains("trailing data") && e.contains("inflates"), "{e}");
}

#[test]
fn absurd_sizes_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("huge-idx3-ubyte");
    // 4 billion images of 4 billion x 4 billion pixels: the product overflows 64 bits
    let mut head = vec![0, 0, 8, 3];
    for _ in 0..3 {
        head.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    std::fs::write(&ip, &head).unwrap();
    let e = err_of(idx::read_images(&ip));
    assert!(e.contains("huge-idx3-ubyte") && e.contains("GiB"), "{e}");
    // a header promising 60,000 images in a file of 16 bytes: truncated, saying how many
    std::fs::write(&ip, &raw_images(60_000, 28, 28, 0)[..16 + 100]).unwrap();
    let e = err_of(idx::read_images(&ip));
    assert!(e.contains("truncated") && e.contains("47040000") && e.contains("holds 100"), "{e}");
}

#[test]
fn zero_by_zero_images_do_not_reach_training() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), raw_images(20, 0, 0, 0)).unwrap();
    idx::write_labels(&dir.path().join("train-labels-idx1-ubyte"), &labels(20), false).unwrap();
    let spec = DataSpec { set: "idx".into(), path: Some(dir.path().to_path_buf()), ..DataSpec::default() };
    let e = err_of(data::load(&spec, 1));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("0 rows"), "{e}");
}

#[test]
fn test_labels_outside_the_training_classes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    idx::write_images(&dir.path().join("train-images-idx3-ubyte"), &images(30), false).unwrap();
    idx::write_labels(&dir.path().join("train-labels-idx1-ubyte"), &labels(30), false).unwrap();
    idx::write_images(&dir.path().join("t10k-images-idx3-ubyte"), &images(5), false).unwrap();
    idx::write_labels(&dir.path().join("t10k-labels-idx1-ubyte"), &[1, 2, 200, 3, 4], false).unwrap();
    let spec = DataSpec { set: "idx".into(), path: Some(dir.path().to_path_buf()), ..DataSpec::default() };
    let e = err_of(data::load(&spec, 1));
    assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("label 200") && e.contains("sample 2"), "{e}");
}

#[test]
fn fashion_labels_past_ten_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("my-fashion");
    std::fs::create_dir(&dir).unwrap();
    idx::write_images(&dir.join("train-images-idx3-ubyte"), &images(30), false).unwrap();
    let mut lbls = labels(30);
    lbls[7] = 10;
    idx::write_labels(&dir.join("train-labels-idx1-ubyte"), &lbls, false).unwrap();
    let spec = DataSpec { set: "fashion-mnist".into(), path: Some(dir.clone()), ..DataSpec::default() };
    let e = err_of(data::load(&spec, 1));
    assert!(e.contains("train-labels-idx1-ubyte") && e.contains("label 10") && e.contains("Fashion-MNIST"), "{e}");
    // any other IDX folder, whatever its name, takes its classes from its labels
    let spec = DataSpec { set: "idx".into(), path: Some(dir.clone()), ..DataSpec::default() };
    assert_eq!(data::load(&spec, 1).unwrap().num_classes(), 11);
}

#[test]
fn a_count_mismatch_is_found_from_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("i");
    let lp = dir.path().join("l");
    // the images' data is cut short, but the count mismatch is what is reported: the headers
    // are compared before any data is read
    std::fs::write(&ip, &raw_images(10, 4, 3, 0)[..40]).unwrap();
    idx::write_labels(&lp, &labels(9), true).unwrap();
    let e = err_of(idx::read_pair(&ip, &lp));
    assert!(e.contains("9 labels") && e.contains("10 images") && e.contains(&lp.display().to_string()), "{e}");
}
