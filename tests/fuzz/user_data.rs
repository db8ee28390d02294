//! The readers of data a user brings: image files (mutated PNG, JPEG and WebP, random bytes),
//! CIFAR binary folders (a mutated batch file among valid ones) and CSV tables (mutated text).

use gradlab::data::{self, cifar, image_folder, DataSpec};
use proptest::prelude::*;

use crate::support::{bounded, config, hostile_text, mutated, mutated_text, random_bytes};

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 28) as u8, (y * 36) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn image_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        mutated(encoded(image::ImageFormat::Png)),
        mutated(encoded(image::ImageFormat::Jpeg)),
        mutated(encoded(image::ImageFormat::WebP)),
        random_bytes(),
    ]
}

fn cifar_input() -> impl Strategy<Value = Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    cifar::write_fixture(dir.path(), 2, 9).unwrap();
    let batch = std::fs::read(dir.path().join("data_batch_3.bin")).unwrap();
    prop_oneof![mutated(batch), random_bytes()]
}

const TABLE: &str = "species,length,width\nsetosa,1.5,0.2\nvirginica,6.0,2.5\n\"setosa\",1.4,NA\nversicolor,4.5,1.5\n";

fn table_input() -> impl Strategy<Value = String> {
    prop_oneof![mutated_text(TABLE), hostile_text(TABLE.to_string())]
}

fn named(e: &gradlab::Error, file: &str) -> bool {
    let e = e.to_string();
    e.contains(file) || e.contains("data.label_column")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_decoder_never_panics(bytes in image_input()) {
        let shape = [3, 8, 8];
        if let Ok(px) = bounded("decoding an image", || image_folder::decode_bytes(&bytes, shape))? {
            prop_assert_eq!(px.len(), 3 * 8 * 8);
        }
    }

    #[test]
    fn cifar_reader_never_panics(bytes in cifar_input()) {
        let dir = tempfile::tempdir().unwrap();
        cifar::write_fixture(dir.path(), 2, 9).unwrap();
        std::fs::write(dir.path().join("data_batch_3.bin"), &bytes).unwrap();
        let spec = DataSpec { set: "cifar10".into(), path: Some(dir.path().into()), stream: Some(false), ..DataSpec::default() };
        match bounded("reading CIFAR", || data::load(&spec, 1))? {
            Ok(ds) => prop_assert_eq!(ds.train.len() + ds.validation.len(), 8 + bytes.len() / 3073),
            Err(e) => prop_assert!(named(&e, "data_batch_3.bin"), "{}", e),
        }
    }

    #[test]
    fn csv_table_reader_never_panics(text in table_input()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz-table.csv");
        std::fs::write(&path, &text).unwrap();
        let spec = DataSpec { set: "csv".into(), path: Some(path.clone()), missing: data::table::Missing::Mean, ..DataSpec::default() };
        match bounded("reading a CSV table", || data::load(&spec, 1))? {
            Ok(ds) => {
                prop_assert!(ds.train.features.iter().all(|v| v.is_finite()));
                prop_assert_eq!(ds.train.features.len(), ds.train.len() * ds.input_shape[0]);
            }
            Err(e) => prop_assert!(named(&e, "fuzz-table.csv") || e.to_string().contains("fewer than 2"), "{}", e),
        }
    }
}

#[test]
fn a_png_claiming_huge_pixels_is_refused_without_allocating_them() {
    let mut png = encoded(image::ImageFormat::Png);
    // IHDR width and height (bytes 16..24) set to 30,000 x 30,000; the CRC no longer matches,
    // and even if it did, the 2.7 GB would be refused by the decoder's allocation limit
    png[16..24].copy_from_slice(&[0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30]);
    let (r, peak) = crate::support::peak_of(|| image_folder::decode_bytes(&png, [3, 8, 8]));
    assert!(r.is_err());
    assert!(peak < 8 << 20, "held {peak} bytes");
}
