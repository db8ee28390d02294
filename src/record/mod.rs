//! Run directories: what a run writes as it goes, and reading past runs back.
//!
//! ```text
//! runs/2026-11-26T18-40-12_mnist-cnn/
//!   preset.toml      the exact preset that ran
//!   metrics.csv      one row per step and per epoch, appended and flushed as they come
//!   epochs.jsonl     one JSON line per epoch, with the confusion matrix
//!   data.json        input shape, class names, normalisation (for export)
//!   summary.json     status, best and final figures, machine, versions (rewritten atomically)
//!   checkpoints/     epoch-N.safetensors (weights and optimizer moments) + epoch-N.json;
//!                    epoch-N-batch-B.*: the newest checkpoint within epoch N + 1
//!   final.json       the run's Summary, once it ends
//!   name.txt         the display name, once renamed
//!   run.lock         held (OS file lock) by the process writing the run
//! ```
//! Every file is either appended line by line or written to a temporary name and renamed, so a
//! run killed at any moment leaves a readable directory.

mod checkpoint;
mod history;
mod lock;
mod recorder;
mod time;

use std::io::{Read, Write};
use std::path::Path;

pub use checkpoint::{
    checkpoints_newest_first, latest_checkpoint, list_checkpoints, read_checkpoint, Checkpoint, CheckpointState,
};
pub use history::{delete_run, list_runs, load_run, rename_run, RunData};
pub use lock::{is_held as run_is_locked, RunLock, LOCK_FILE};
pub(crate) use recorder::slug;
pub use recorder::{DataInfo, Machine, RunInfo, RunRecorder, SweepTag, METRICS_HEADER};
pub use time::timestamp;

use crate::error::{Error, Result};

/// Writes a file so that readers see the old or the new content, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        // a full disk leaves a partial temporary file: do not leave it taking the space
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// summary.json, data.json and checkpoint JSON are small; a larger one is not ours.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Reads a small text file (a preset, a JSON card) whole, refusing one larger than `max_bytes`
/// before holding it: such files are kilobytes, and a huge one is damaged or hostile.
pub fn read_text_capped(path: &Path, max_bytes: u64) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::format(path, format!("is larger than the {max_bytes} bytes such a file can be")));
    }
    String::from_utf8(bytes).map_err(|e| Error::format(path, format!("is not UTF-8 text: {e}")))
}
