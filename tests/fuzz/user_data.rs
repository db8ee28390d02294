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

/// PNG's CRC-32 (the chunk checksum), so a crafted header is one a decoder reads.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A small PNG file whose (valid) header declares `width` x `height` 8-bit RGB pixels.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = encoded(image::ImageFormat::Png);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// The declared size is read before decoding: a small file claiming 16384 x 16384 pixels (RGB:
/// 768 MiB decoded, as much again converted) is refused naming the file and its size.
#[test]
fn an_image_declaring_too_many_pixels_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.png");
    std::fs::write(&path, png_declaring(16_384, 16_384)).unwrap();
    let (r, peak) = crate::support::peak_of(|| image_folder::decode(&path, [3, 32, 32]));
    let err = r.unwrap_err().to_string();
    assert!(err.contains("huge.png") && err.contains("16384x16384") && err.contains("megapixels"), "{err}");
    assert!(peak < 1 << 20, "held {peak} bytes");
    // under the pixel cap the header still decides: the decoder's cap (from the file's bytes)
    let (r, peak) = crate::support::peak_of(|| image_folder::decode_bytes(&png_declaring(4000, 4000), [3, 32, 32]));
    assert!(r.is_err());
    assert!(peak < 8 << 20, "held {peak} bytes");
}

/// What follows decoding is capped too: a real PNG of 16384 x 1 grey pixels (a few hundred
/// bytes, 16 KiB decoded) resized to 1024 x 1024 would hold 256 MiB in the resize's
/// intermediate image; it is refused naming the work, before decoding. A 24-megapixel photo's
/// worth of pixels still decodes.
#[test]
fn the_conversion_and_resize_after_decoding_are_capped() {
    let line = image::GrayImage::from_fn(16_384, 1, |x, _| image::Luma([(x % 251) as u8]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    line.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    let (r, peak) = crate::support::peak_of(|| image_folder::decode_bytes(bytes.get_ref(), [3, 1024, 1024]));
    let err = r.unwrap_err();
    assert!(err.contains("16384x1") && err.contains("MiB"), "{err}");
    assert!(peak < 8 << 20, "held {peak} bytes");
    // the same line to a small image is fine
    let (r, _) = crate::support::peak_of(|| image_folder::decode_bytes(bytes.get_ref(), [1, 4, 64]));
    assert_eq!(r.unwrap().len(), 4 * 64);

    let photo = image::RgbImage::from_fn(6000, 4000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    drop(photo);
    let (r, peak) = crate::support::peak_of(|| image_folder::decode_bytes(bytes.get_ref(), [3, 224, 224]));
    assert_eq!(r.unwrap().len(), 3 * 224 * 224);
    // the decoded 72 MB, no copy for the colour, the resize's 21 MB
    assert!(peak < 110 << 20, "held {peak} bytes");
}
