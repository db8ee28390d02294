//! A split's second storage: rows of `u8` values in a cache file on disk, read per batch with
//! positioned reads and turned into normalised `f32` only when gathered. A 60,000-image folder
//! then holds its labels and one batch in memory, not 60,000 rows of `f32`.
//!
//! The cache is decoded once per source (named by a hash of the files, their sizes and times and
//! the decoding options) under the system temp dir, written under a temporary name and renamed,
//! so a killed load never leaves a half cache that a later one would trust.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Normalization, Split};
use crate::error::{Error, Result};

/// Sets whose `f32` features would exceed this stream from disk unless `data.stream` says.
pub const AUTO_STREAM_BYTES: u64 = 512 << 20;

/// Rows read at a time when fitting or fingerprinting a streamed split.
const CHUNK_ROWS: usize = 512;

/// Rows of `row_len` bytes in a cache file; `rows[i]` is the file row of this split's sample i.
#[derive(Debug, Clone)]
pub struct DiskRows {
    file: Arc<File>,
    path: Arc<Path>,
    row_len: usize,
    rows: Vec<usize>,
    /// Applied when rows are gathered (set by `load` after fitting on the training split).
    norm: Option<Normalization>,
}

impl DiskRows {
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of the cache file this split reads (its share of it).
    pub fn bytes(&self) -> u64 {
        (self.rows.len() * self.row_len) as u64
    }

    fn read_row(&self, i: usize, buf: &mut [u8]) -> Result<()> {
        let offset = (self.rows[i] * self.row_len) as u64;
        read_exact_at(&self.file, buf, offset).map_err(|e| Error::io(&*self.path, e))
    }

    /// The same rows, picked by `indices` (into this split).
    fn select(&self, indices: &[usize]) -> DiskRows {
        DiskRows { rows: indices.iter().map(|&i| self.rows[i]).collect(), ..self.clone() }
    }

    /// The split holding file rows `start..end` of the same cache.
    pub fn range(&self, start: usize, end: usize) -> DiskRows {
        DiskRows { rows: (start..end).collect(), ..self.clone() }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl Split {
    /// An in-memory split.
    pub fn new(features: Vec<f32>, labels: Vec<u32>) -> Self {
        Self { features, labels, disk: None }
    }

    /// A split whose features stay on disk.
    pub fn streamed(disk: DiskRows, labels: Vec<u32>) -> Self {
        Self { features: Vec::new(), labels, disk: Some(Arc::new(disk)) }
    }

    /// The cache rows when this split streams from disk.
    pub fn disk(&self) -> Option<&DiskRows> {
        self.disk.as_deref()
    }

    /// Appends the (normalised) features of the samples at `indices` to `out`, from memory or
    /// from the cache file: the one way batches are cut, so both storages give the same numbers.
    pub fn copy_rows(&self, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        self.copy(indices, out, true)
    }

    /// One sample's features as a vector (works for streamed splits too; the GUI preview).
    pub fn sample_vec(&self, i: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.feature_len());
        self.copy_rows(&[i], &mut out)?;
        Ok(out)
    }

    fn copy(&self, indices: &[usize], out: &mut Vec<f32>, normalise: bool) -> Result<()> {
        let Some(disk) = self.disk.as_deref() else {
            out.reserve(indices.len() * self.feature_len());
            for &i in indices {
                out.extend_from_slice(self.sample(i));
            }
            return Ok(());
        };
        let mut buf = vec![0u8; disk.row_len];
        out.reserve(indices.len() * disk.row_len);
        for &i in indices {
            disk.read_row(i, &mut buf)?;
            let start = out.len();
            out.extend(buf.iter().map(|&b| f32::from(b)));
            if let (Some(norm), true) = (&disk.norm, normalise) {
                // the same formula as `Normalization::apply`, so a streamed batch has the same bits
                norm.apply(&mut out[start..]);
            }
        }
        Ok(())
    }

    /// Calls `visit(i, raw_row)` for each index in turn, with the features before normalisation;
    /// a streamed split is read a chunk of rows at a time.
    pub(crate) fn for_each_raw(&self, indices: &[usize], mut visit: impl FnMut(usize, &[f32])) -> Result<()> {
        if self.disk.is_none() {
            indices.iter().for_each(|&i| visit(i, self.sample(i)));
            return Ok(());
        }
        let f = self.feature_len();
        let mut buf = Vec::with_capacity(CHUNK_ROWS * f);
        for chunk in indices.chunks(CHUNK_ROWS) {
            buf.clear();
            self.copy(chunk, &mut buf, false)?;
            for (&i, row) in chunk.iter().zip(buf.chunks(f.max(1))) {
                visit(i, row);
            }
        }
        Ok(())
    }

    /// Normalises in place, or for a streamed split, from now on when rows are gathered.
    pub(crate) fn normalize(&mut self, norm: &Normalization) {
        match &mut self.disk {
            Some(disk) => Arc::make_mut(disk).norm = Some(norm.clone()),
            None => norm.apply(&mut self.features),
        }
    }

    pub(crate) fn select_disk(&self, indices: &[usize]) -> Option<Split> {
        let disk = self.disk.as_deref()?;
        Some(Split::streamed(disk.select(indices), indices.iter().map(|&i| self.labels[i]).collect()))
    }
}

/// Where decoded rows go: memory (`f32`) or a cache file (`u8`).
pub enum RowSink {
    Memory(Vec<f32>),
    /// `writer` is `None` when a complete cache of this source already exists: rows are counted,
    /// not written.
    Disk {
        writer: Option<Partial>,
        path: PathBuf,
        row_len: usize,
        rows: usize,
    },
}

/// A cache being written; removed again if the load fails before it is renamed into place.
pub struct Partial {
    w: Option<BufWriter<File>>,
    tmp: PathBuf,
}

impl Drop for Partial {
    fn drop(&mut self) {
        // after the rename this finds nothing; after an error it removes the half-written rows
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl RowSink {
    /// A sink for `rows` rows of `row_len` values named `key` (the source's hash): memory, or the
    /// cache file, which is reused when it exists with exactly that size.
    pub fn new(stream: bool, key: &str, row_len: usize, rows: usize) -> Result<Self> {
        if !stream {
            return Ok(RowSink::Memory(Vec::with_capacity(row_len.saturating_mul(rows).min(1 << 26))));
        }
        let dir = cache_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{key}.u8"));
        let complete = std::fs::metadata(&path).is_ok_and(|m| m.len() == (row_len * rows) as u64);
        let writer = if complete {
            None
        } else {
            // unique per load: the preview threads and the training thread of one process may
            // load the same set at once, and must never write into each other's file
            static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = dir.join(format!(".{key}.{}-{n}.partial", std::process::id()));
            let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            Some(Partial { w: Some(BufWriter::with_capacity(1 << 20, file)), tmp })
        };
        Ok(RowSink::Disk { writer, path, row_len, rows: 0 })
    }

    /// True when the rows need not be decoded again (a complete cache exists); the caller then
    /// calls [`RowSink::skip`] instead of pushing.
    pub fn cached(&self) -> bool {
        matches!(self, RowSink::Disk { writer: None, .. })
    }

    pub fn skip(&mut self, n: usize) {
        if let RowSink::Disk { rows, .. } = self {
            *rows += n;
        }
    }

    pub fn push(&mut self, row: &[u8]) -> Result<()> {
        match self {
            RowSink::Memory(v) => v.extend(row.iter().map(|&b| f32::from(b))),
            RowSink::Disk { writer, rows, row_len, .. } => {
                debug_assert_eq!(row.len(), *row_len);
                if let Some(Partial { w: Some(w), tmp }) = writer {
                    w.write_all(row).map_err(|e| Error::io(&*tmp, e))?;
                }
                *rows += 1;
            }
        }
        Ok(())
    }

    /// The rows pushed, split at `at` into two splits (training file(s), then test) with
    /// their labels.
    pub fn finish(self, labels: Vec<u32>, at: usize) -> Result<(Split, Split)> {
        let (mut a_labels, b_labels) = (labels[..at].to_vec(), labels[at..].to_vec());
        match self {
            RowSink::Memory(mut v) => {
                let f = v.len().checked_div(labels.len()).unwrap_or(0);
                let b = v.split_off(at * f);
                Ok((Split::new(v, std::mem::take(&mut a_labels)), Split::new(b, b_labels)))
            }
            RowSink::Disk { writer, path, row_len, rows } => {
                if let Some(mut partial) = writer {
                    let tmp = partial.tmp.clone();
                    if let Some(w) = partial.w.take() {
                        let file = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
                        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
                    }
                    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
                }
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let all = DiskRows { file: Arc::new(file), path: path.into(), row_len, rows: Vec::new(), norm: None };
                Ok((Split::streamed(all.range(0, at), a_labels), Split::streamed(all.range(at, rows), b_labels)))
            }
        }
    }
}

/// `GRADLAB_CACHE_DIR`, else `gradlab-cache` under the system temp dir.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("GRADLAB_CACHE_DIR").map_or_else(|| std::env::temp_dir().join("gradlab-cache"), PathBuf::from)
}

/// A stable 64-bit FNV-1a hash of `parts`, as hex: names a source's cache.
pub fn cache_key(set: &str, parts: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{set}-{h:016x}")
}

/// What identifies a file's contents cheaply: its path, length and modification time.
pub fn file_stamp(path: &Path) -> Result<String> {
    let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let time = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    Ok(format!("{}|{}|{:?}", path.display(), m.len(), time))
}

/// Whether a set of `values` f32 features streams: as `data.stream` says, else when it would
/// exceed [`AUTO_STREAM_BYTES`].
pub fn should_stream(stream: Option<bool>, values: u64) -> bool {
    stream.unwrap_or(values.saturating_mul(4) > AUTO_STREAM_BYTES)
}
