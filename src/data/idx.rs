//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped. Readers check the magic
//! number, the dimensions against the file's length, and images against labels, and say which
//! file is wrong and how.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const UBYTE: u8 = 0x08;

/// The images of an IDX3 file: `count` images of `rows` x `cols` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("gzip data is damaged or truncated: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the header and returns the dimensions and the offset of the data.
fn header(bytes: &[u8], path: &Path, want_dims: u8) -> Result<(Vec<usize>, usize)> {
    let kind = if want_dims == 3 { "images (idx3)" } else { "labels (idx1)" };
    if bytes.len() < 4 {
        return Err(Error::format(path, format!("file is {} bytes long, too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != UBYTE || bytes[3] != want_dims {
        return Err(Error::format(
            path,
            format!(
                "wrong magic number 0x{:02x}{:02x}{:02x}{:02x}; expected 0x000008{:02x} for unsigned-byte {kind}",
                bytes[0], bytes[1], bytes[2], bytes[3], want_dims
            ),
        ));
    }
    let header_len = 4 + 4 * usize::from(want_dims);
    if bytes.len() < header_len {
        return Err(Error::format(path, "file ends inside the IDX header (truncated)"));
    }
    let dims = (0..usize::from(want_dims))
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect::<Vec<_>>();
    let expected = dims.iter().product::<usize>();
    let found = bytes.len() - header_len;
    if found < expected {
        return Err(Error::format(
            path,
            format!(
                "truncated: the header promises {} ({expected} data bytes) but the file holds {found}",
                dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(" x ")
            ),
        ));
    }
    Ok((dims, header_len))
}

pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gz(path)?;
    let (dims, offset) = header(&bytes, path, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    Ok(IdxImages { count, rows, cols, pixels: bytes[offset..offset + count * rows * cols].to_vec() })
}

pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let (dims, offset) = header(&bytes, path, 1)?;
    Ok(bytes[offset..offset + dims[0]].to_vec())
}

/// Reads an images file and its labels file and checks that they belong together.
pub fn read_pair(images: &Path, labels: &Path) -> Result<(IdxImages, Vec<u8>)> {
    let imgs = read_images(images)?;
    let lbls = read_labels(labels)?;
    if imgs.count != lbls.len() {
        return Err(Error::format(
            labels,
            format!("holds {} labels but {} holds {} images", lbls.len(), images.display(), imgs.count),
        ));
    }
    Ok((imgs, lbls))
}

fn write(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let result = if gzip {
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes).and_then(|()| enc.finish().map(|_| ()))
    } else {
        let mut f = file;
        f.write_all(bytes)
    };
    result.map_err(|e| Error::io(path, e))
}

/// Writes images in IDX3 format (gzipped when `gzip`).
pub fn write_images(path: &Path, images: &IdxImages, gzip: bool) -> Result<()> {
    let mut bytes = vec![0, 0, UBYTE, 3];
    for d in [images.count, images.rows, images.cols] {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(&images.pixels);
    write(path, &bytes, gzip)
}

/// Writes labels in IDX1 format (gzipped when `gzip`).
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    let mut bytes = vec![0, 0, UBYTE, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    write(path, &bytes, gzip)
}

/// The four files of an MNIST-style folder.
#[derive(Debug, Clone)]
pub struct IdxFolder {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test: Option<(PathBuf, PathBuf)>,
}

/// Finds `train-images*`, `train-labels*` (and `t10k-images*`, `t10k-labels*` when present) in
/// a folder, whatever the separator (`-idx3-ubyte` or `.idx3-ubyte`) and compression.
pub fn find_in_folder(dir: &Path) -> Result<IdxFolder> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let find = |prefix: &str| {
        names
            .iter()
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.contains("ubyte"))
            })
            .cloned()
    };
    let missing = |what: &str| {
        Error::format(
            dir,
            format!("no `{what}-idx?-ubyte[.gz]` file in this folder; an IDX folder holds train-images, train-labels and optionally t10k-images, t10k-labels"),
        )
    };
    let train_images = find("train-images").ok_or_else(|| missing("train-images"))?;
    let train_labels = find("train-labels").ok_or_else(|| missing("train-labels"))?;
    let test = match (find("t10k-images"), find("t10k-labels")) {
        (Some(i), Some(l)) => Some((i, l)),
        _ => None,
    };
    Ok(IdxFolder { train_images, train_labels, test })
}

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

pub fn fashion_mnist_installed() -> bool {
    find_in_folder(Path::new(FASHION_MNIST_DIR)).is_ok()
}
