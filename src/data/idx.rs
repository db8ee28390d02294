//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped. The header is read first
//! and checked (magic number, no zero dimension, a size Gradlab accepts, computed without
//! overflow); then exactly the bytes it promises are read, never more: a file or gzip stream
//! that ends early is truncated, one that goes on has trailing data, and both are refused
//! naming the file. Memory grows with the bytes that actually arrive, never with a header
//! number alone, so a gzip bomb is refused after at most the promised size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const UBYTE: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most data bytes Gradlab reads from one IDX file (2 GiB of pixels, 8 GiB as features):
/// far above any real set of this format (Fashion-MNIST's training images are 47 MB).
pub const MAX_DATA_BYTES: u64 = 2 << 30;

/// The images of an IDX3 file: `count` images of `rows` x `cols` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// A checked IDX header: the dimensions and how many data bytes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    pub dims: Vec<usize>,
    pub data_bytes: u64,
}

fn kind(want_dims: u8) -> &'static str {
    if want_dims == 3 {
        "images (idx3)"
    } else {
        "labels (idx1)"
    }
}

/// Reads exactly `buf.len()` bytes or says how many there were.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn stream_error(path: &Path, gzip: bool, e: std::io::Error) -> Error {
    if gzip {
        Error::format(path, format!("gzip data is damaged or truncated: {e}"))
    } else {
        Error::io(path, e)
    }
}

/// Reads and checks the header from `reader` (already past any gzip layer).
fn parse_header(reader: &mut dyn Read, path: &Path, want_dims: u8, gzip: bool) -> Result<IdxHeader> {
    let kind = kind(want_dims);
    let header_len = 4 + 4 * usize::from(want_dims);
    let mut head = vec![0u8; header_len];
    let got = read_full(reader, &mut head).map_err(|e| stream_error(path, gzip, e))?;
    if got < 4 {
        return Err(Error::format(path, format!("file is {got} bytes long, too short for an IDX header")));
    }
    if head[0] != 0 || head[1] != 0 || head[2] != UBYTE || head[3] != want_dims {
        return Err(Error::format(
            path,
            format!(
                "wrong magic number 0x{:02x}{:02x}{:02x}{:02x}; expected 0x000008{:02x} for unsigned-byte {kind}",
                head[0], head[1], head[2], head[3], want_dims
            ),
        ));
    }
    if got < header_len {
        return Err(Error::format(
            path,
            format!("file ends inside the IDX header (truncated): {got} of its {header_len} bytes"),
        ));
    }
    let names: &[&str] = if want_dims == 3 { &["images", "rows", "columns"] } else { &["labels"] };
    let mut dims = Vec::with_capacity(names.len());
    let mut data_bytes: u64 = 1;
    for (d, name) in names.iter().enumerate() {
        let o = 4 + 4 * d;
        let n = u32::from_be_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
        if n == 0 {
            return Err(Error::format(path, format!("the header says 0 {name}; an IDX {kind} file needs at least 1")));
        }
        // u32 x u32 x u32 can pass u64: checked, and capped long before that
        data_bytes = data_bytes.checked_mul(u64::from(n)).filter(|&b| b <= MAX_DATA_BYTES).ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "the header promises more than the {} GiB of data Gradlab reads from one IDX file",
                    MAX_DATA_BYTES >> 30
                ),
            )
        })?;
        dims.push(n as usize);
    }
    Ok(IdxHeader { dims, data_bytes })
}

fn shape_text(dims: &[usize]) -> String {
    dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(" x ")
}

/// Reads the data the header promises: no more (a byte past it is trailing data), no less.
fn read_data(reader: &mut dyn Read, path: &Path, header: &IdxHeader, gzip: bool) -> Result<Vec<u8>> {
    let expected = header.data_bytes;
    // grows with the bytes that arrive: a header number alone never sizes an allocation
    let mut data = Vec::new();
    reader.take(expected + 1).read_to_end(&mut data).map_err(|e| stream_error(path, gzip, e))?;
    let found = data.len() as u64;
    let what = if gzip { "the gzip stream inflates to" } else { "the file holds" };
    if found < expected {
        return Err(Error::format(
            path,
            format!(
                "truncated: the header promises {} ({expected} data bytes) but {what} {found}",
                shape_text(&header.dims)
            ),
        ));
    }
    if found > expected {
        return Err(Error::format(
            path,
            format!(
                "trailing data: the header promises {} ({expected} data bytes) but {what} more; \
                 the file is damaged or not what its header says",
                shape_text(&header.dims)
            ),
        ));
    }
    Ok(data)
}

/// An open IDX stream: raw, or gunzipped when it starts with the gzip magic bytes.
struct IdxReader<'a> {
    inner: Box<dyn Read + 'a>,
    gzip: bool,
}

impl<'a> IdxReader<'a> {
    fn new(source: impl Read + 'a, path: &Path) -> Result<Self> {
        let mut buffered = BufReader::new(source);
        let gzip = buffered.fill_buf().map_err(|e| Error::io(path, e))?.starts_with(&GZIP_MAGIC);
        let inner: Box<dyn Read + 'a> = if gzip {
            // every member: data after the first is trailing data, not silently ignored
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Self { inner, gzip })
    }

    fn open(path: &Path) -> Result<IdxReader<'static>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        IdxReader::new(file, path)
    }

    fn header(&mut self, path: &Path, want_dims: u8) -> Result<IdxHeader> {
        parse_header(&mut self.inner, path, want_dims, self.gzip)
    }

    fn data(&mut self, path: &Path, header: &IdxHeader) -> Result<Vec<u8>> {
        read_data(&mut self.inner, path, header, self.gzip)
    }
}

fn images_from(header: &IdxHeader, pixels: Vec<u8>) -> IdxImages {
    IdxImages { count: header.dims[0], rows: header.dims[1], cols: header.dims[2], pixels }
}

/// Reads only the header of an images (`want_dims` 3) or labels (1) file: what it promises,
/// checked, without reading the data.
pub fn read_header(path: &Path, want_dims: u8) -> Result<IdxHeader> {
    IdxReader::open(path)?.header(path, want_dims)
}

/// Reads images from any stream (raw or gzip); `path` names it in errors.
pub fn read_images_from(source: impl Read, path: &Path) -> Result<IdxImages> {
    let mut reader = IdxReader::new(source, path)?;
    let header = reader.header(path, 3)?;
    let pixels = reader.data(path, &header)?;
    Ok(images_from(&header, pixels))
}

/// Reads labels from any stream (raw or gzip); `path` names it in errors.
pub fn read_labels_from(source: impl Read, path: &Path) -> Result<Vec<u8>> {
    let mut reader = IdxReader::new(source, path)?;
    let header = reader.header(path, 1)?;
    reader.data(path, &header)
}

pub fn read_images(path: &Path) -> Result<IdxImages> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_images_from(file, path)
}

pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_labels_from(file, path)
}

/// Reads an images file and its labels file and checks that they belong together. Both headers
/// are read first, so a mismatch is refused before either file's data is read.
pub fn read_pair(images: &Path, labels: &Path) -> Result<(IdxImages, Vec<u8>)> {
    let mut img_reader = IdxReader::open(images)?;
    let img_header = img_reader.header(images, 3)?;
    let mut lbl_reader = IdxReader::open(labels)?;
    let lbl_header = lbl_reader.header(labels, 1)?;
    if img_header.dims[0] != lbl_header.dims[0] {
        return Err(Error::format(
            labels,
            format!("holds {} labels but {} holds {} images", lbl_header.dims[0], images.display(), img_header.dims[0]),
        ));
    }
    let pixels = img_reader.data(images, &img_header)?;
    let lbls = lbl_reader.data(labels, &lbl_header)?;
    Ok((images_from(&img_header, pixels), lbls))
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
        let d = u32::try_from(d).map_err(|_| Error::format(path, format!("{d} does not fit an IDX dimension")))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(&images.pixels);
    write(path, &bytes, gzip)
}

/// Writes labels in IDX1 format (gzipped when `gzip`).
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    let mut bytes = vec![0, 0, UBYTE, 1];
    let count = u32::try_from(labels.len())
        .map_err(|_| Error::format(path, format!("{} labels do not fit an IDX file", labels.len())))?;
    bytes.extend_from_slice(&count.to_be_bytes());
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
