//! A user's image folder (`image-folder` set): one sub-folder per class (sorted names are the
//! class names) holding PNG, JPEG or WebP files, or `train/<class>/` and optionally
//! `test/<class>/`. Every image is decoded with the `image` crate, converted to grey or RGB and
//! resized to `data.image_size` with a triangle (bilinear) filter. A file that is not a readable
//! image is refused naming it, never skipped: a set silently missing samples trains on
//! something other than what the user picked.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

use super::storage::{self, RowSink};
use super::{DataSpec, Raw};
use crate::error::{Error, Result};

/// Files a folder may hold (a bound on the listing and the labels kept in memory).
pub const MAX_FILES: usize = 2_000_000;
/// Bytes per image file, and per decoded image: a decompression bomb stops here.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_DECODED_BYTES: u64 = 256 << 20;
/// Decoded bytes per file byte allowed beyond the first MiB: deflate (PNG) cannot inflate more
/// than ~1,032 times, so a header claiming more pixels than this is lying, and the decoder is
/// refused the allocation rather than making it.
const MAX_RATIO: u64 = 2048;
/// Pixels an image may declare (a 24-megapixel photo fits); checked from its header, before
/// decoding, as the conversion after decoding holds three bytes per pixel.
pub const MAX_PIXELS: u64 = 1 << 25;
/// Bytes the colour conversion and the resize may hold beyond the decoded image (a 24-megapixel
/// RGB photo resized to 1024 x 1024 takes 170 MB): with the decoder's own cap, what one
/// decoding thread may hold, whatever the header declares.
const MAX_WORKING_BYTES: u64 = 192 << 20;
pub const MAX_SIDE: usize = 1024;
pub const DEFAULT_SIDE: usize = 32;

/// `data.image_size`: a square side or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    Side(usize),
    HeightWidth([usize; 2]),
}

impl ImageSize {
    pub fn hw(self) -> (usize, usize) {
        match self {
            ImageSize::Side(s) => (s, s),
            ImageSize::HeightWidth([h, w]) => (h, w),
        }
    }
}

/// `data.color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    #[default]
    Rgb,
    #[serde(alias = "gray")]
    Grey,
}

impl ColorMode {
    pub fn is_rgb(&self) -> bool {
        *self == ColorMode::Rgb
    }

    pub fn channels(self) -> usize {
        match self {
            ColorMode::Rgb => 3,
            ColorMode::Grey => 1,
        }
    }
}

/// `[channels, height, width]` the preset asks for, checked.
pub fn input_shape(spec: &DataSpec) -> Result<[usize; 3]> {
    let (h, w) = spec.image_size.map_or((DEFAULT_SIDE, DEFAULT_SIDE), ImageSize::hw);
    if !(1..=MAX_SIDE).contains(&h) || !(1..=MAX_SIDE).contains(&w) {
        return Err(Error::config("preset", "data.image_size", format!("{h}x{w}; each side must be 1 to {MAX_SIDE}")));
    }
    Ok([spec.color.channels(), h, w])
}

/// The files of a folder, sorted: the class folders and each one's files.
pub struct Listing {
    pub class_names: Vec<String>,
    /// (file, class index), training files first, then `test` ones.
    pub files: Vec<(PathBuf, u32)>,
    /// How many of `files` are training files.
    pub train: usize,
    pub root: PathBuf,
}

fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // hidden files (.DS_Store, editor backups) are not samples
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        out.push((name, path.clone(), path.is_dir()));
        if out.len() > MAX_FILES {
            return Err(Error::format(dir, format!("more than {MAX_FILES} entries")));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Lists the class folders under `dir` (and `test/` when `dir` has `train/`).
pub fn list(dir: &Path) -> Result<Listing> {
    let train_dir = dir.join("train");
    let (root, test_dir) =
        if train_dir.is_dir() { (train_dir, Some(dir.join("test"))) } else { (dir.to_path_buf(), None) };
    let classes: Vec<(String, PathBuf)> =
        sorted_entries(&root)?.into_iter().filter(|e| e.2).map(|(n, p, _)| (n, p)).collect();
    if classes.len() < 2 {
        return Err(Error::format(
            &root,
            format!("{} class folder(s); an image folder holds one sub-folder per class, at least 2", classes.len()),
        ));
    }
    let class_names: Vec<String> = classes.iter().map(|c| c.0.clone()).collect();
    let mut files = Vec::new();
    let add = |class_dir: &Path, class: u32, files: &mut Vec<(PathBuf, u32)>| -> Result<()> {
        for (_, path, is_dir) in sorted_entries(class_dir)? {
            if is_dir {
                return Err(Error::format(&path, "a folder inside a class folder; put the images directly in it"));
            }
            files.push((path, class));
            if files.len() > MAX_FILES {
                return Err(Error::format(dir, format!("more than {MAX_FILES} images")));
            }
        }
        Ok(())
    };
    for (c, (name, path)) in classes.iter().enumerate() {
        let before = files.len();
        add(path, c as u32, &mut files)?;
        if files.len() == before {
            return Err(Error::format(path, format!("the class folder `{name}` holds no images")));
        }
    }
    let train = files.len();
    if let Some(test) = test_dir.filter(|t| t.is_dir()) {
        for (name, path, is_dir) in sorted_entries(&test)? {
            if !is_dir {
                continue;
            }
            let Some(c) = class_names.iter().position(|n| *n == name) else {
                return Err(Error::format(
                    &path,
                    format!("test class `{name}` is not one of the training classes ({})", class_names.join(", ")),
                ));
            };
            add(&path, c as u32, &mut files)?;
        }
    }
    Ok(Listing { class_names, files, train, root: dir.to_path_buf() })
}

/// Decodes one file to `shape` (`[c, h, w]`, planes in CHW order like CIFAR and PyTorch).
pub fn decode(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > MAX_FILE_BYTES {
        return Err(Error::format(path, format!("{len} bytes is more than an image may hold ({MAX_FILE_BYTES})")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(&bytes, shape).map_err(|why| Error::format(path, why))
}

/// The same from bytes in memory; the error says why, without the file.
pub fn decode_bytes(bytes: &[u8], [c, h, w]: [usize; 3]) -> std::result::Result<Vec<u8>, String> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot be read: {e}"))?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::WebP) => {}
        _ => return Err("is not a PNG, JPEG or WebP image".into()),
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc =
        Some((bytes.len() as u64).saturating_mul(MAX_RATIO).saturating_add(1 << 20).min(MAX_DECODED_BYTES));
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(|e| format!("is not a readable image: {e}"))?;
    // the header's size, checked before a pixel is decoded: the decoder's cap covers its own
    // buffer, not the colour conversion and the resize after it, whose sizes follow the
    // declared pixels rather than the file's bytes
    let (w0, h0) = image::ImageDecoder::dimensions(&decoder);
    let pixels = u64::from(w0) * u64::from(h0);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "declares {w0}x{h0} pixels ({:.0} megapixels); an image may have at most {:.1} megapixels",
            pixels as f64 / 1e6,
            MAX_PIXELS as f64 / 1e6
        ));
    }
    let same_colour =
        image::ImageDecoder::color_type(&decoder) == if c == 1 { image::ColorType::L8 } else { image::ColorType::Rgb8 };
    let working = after_decoding(w0, h0, [c, h, w], same_colour);
    if working > MAX_WORKING_BYTES {
        return Err(format!(
            "declares {w0}x{h0} pixels: converting and resizing it to {w}x{h} would take {} MiB, more than {} MiB",
            working >> 20,
            MAX_WORKING_BYTES >> 20
        ));
    }
    // what `ImageReader::decode` does: the decoded buffer counts against the cap
    limits.reserve(image::ImageDecoder::total_bytes(&decoder)).map_err(|e| format!("is not a readable image: {e}"))?;
    image::ImageDecoder::set_limits(&mut decoder, limits).map_err(|e| format!("is not a readable image: {e}"))?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| format!("is not a readable image: {e}"))?;
    let resize = |w0: u32, h0: u32| (w0 as usize, h0 as usize) != (w, h);
    let (w32, h32) = (w as u32, h as u32);
    Ok(if c == 1 {
        let grey = img.into_luma8();
        let grey = if resize(grey.width(), grey.height()) {
            image::imageops::resize(&grey, w32, h32, FilterType::Triangle)
        } else {
            grey
        };
        grey.into_raw()
    } else {
        let rgb = img.into_rgb8();
        let rgb = if resize(rgb.width(), rgb.height()) {
            image::imageops::resize(&rgb, w32, h32, FilterType::Triangle)
        } else {
            rgb
        };
        let hwc = rgb.into_raw();
        let mut chw = vec![0u8; hwc.len()];
        for (p, px) in hwc.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                chw[ch * h * w + p] = px[ch];
            }
        }
        chw
    })
}

/// Bytes held after decoding an image of `w0` x `h0` to `[c, h, w]`: the colour conversion (none
/// when the decoder gives that colour already) and the resize's intermediate image (the
/// `image` crate's vertical pass, 4 x f32 per pixel, `w0` x `h`), and the result.
fn after_decoding(w0: u32, h0: u32, [c, h, w]: [usize; 3], same_colour: bool) -> u64 {
    let (w0, h0) = (u64::from(w0), u64::from(h0));
    let (c, h, w) = (c as u64, h as u64, w as u64);
    let converted = if same_colour { 0 } else { w0 * h0 * c };
    let resized = if (w0, h0) == (w, h) { 0 } else { w0 * h * 16 + h * w * c };
    converted + resized + c * h * w
}

/// Loads `image-folder` from `spec.path`.
pub(super) fn load(spec: &DataSpec) -> Result<Raw> {
    let dir = super::required_path(spec, "the folder with one sub-folder of images per class")?;
    let shape = input_shape(spec)?;
    let listing = list(&dir)?;
    let row_len = shape.iter().product::<usize>();
    let total = listing.files.len();
    let stream = storage::should_stream(spec.stream, (total * row_len) as u64);
    let mut parts = vec![format!("{shape:?}")];
    if stream {
        // only a cache needs the stamps (a stat per file)
        for (f, c) in &listing.files {
            parts.push(format!("{c}|{}", storage::file_stamp(f)?));
        }
    }
    let mut sink = RowSink::new(stream, &storage::cache_key("image-folder", &parts), row_len, total)?;
    if sink.cached() {
        sink.skip(total);
    } else {
        decode_all(&listing.files, shape, &mut sink)?;
    }
    let labels: Vec<u32> = listing.files.iter().map(|f| f.1).collect();
    let has_test = listing.train < total;
    let (train, test) = sink.finish(labels, listing.train)?;
    Ok(Raw {
        class_names: listing.class_names,
        input_shape: shape.to_vec(),
        features: train,
        test: has_test.then_some(test),
        scale: 1.0 / 255.0,
        source: format!("{}{}", dir.display(), if stream { " (streamed from a disk cache)" } else { "" }),
        presplit: None,
        text: None,
    })
}

/// Decodes in parallel a block at a time, pushing rows in file order (so the cache and the
/// labels line up whatever the thread count), holding one block of rows in memory.
fn decode_all(files: &[(PathBuf, u32)], shape: [usize; 3], sink: &mut RowSink) -> Result<()> {
    use rayon::prelude::*;
    for block in files.chunks(1024) {
        let rows: Vec<Result<Vec<u8>>> = block.par_iter().map(|(f, _)| decode(f, shape)).collect();
        for row in rows {
            sink.push(&row?)?;
        }
    }
    Ok(())
}
