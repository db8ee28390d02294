//! One writer per run: `run.lock` in the run directory, held with an OS file lock (flock on
//! Unix, LockFileEx on Windows) by the process that writes the run, for as long as it writes.
//!
//! The lock is also how readers tell a live run from an interrupted one: the OS drops it when
//! the process ends, however it ends (SIGKILL included), on every platform, with no `/proc`
//! and no pid reuse to fool it. The file holds the writer's pid only to name it in messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

pub const LOCK_FILE: &str = "run.lock";

/// Held while a process writes a run; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the run's lock, or says which process holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // a reader checking liveness holds the lock for a moment: retry briefly before refusing
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    let holder =
                        read_pid(&mut file).map_or_else(|| "another process".into(), |p| format!("process {p}"));
                    return Err(Error::Other(format!(
                        "{}: this run is being written by {holder} (it holds {}); wait for it to end or stop it first",
                        run_dir.display(),
                        path.display()
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
        };
        write_pid(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether some process (this one included) holds the run's lock: `None` when the run has no
/// lock file (written by a Gradlab from before locks).
pub fn is_held(run_dir: &Path) -> Option<bool> {
    let path = run_dir.join(LOCK_FILE);
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Some(false)
        }
        Err(TryLockError::WouldBlock) => Some(true),
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(is_held(dir.path()), None);
        let first = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(is_held(dir.path()), Some(true));
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        drop(first);
        assert_eq!(is_held(dir.path()), Some(false));
        RunLock::acquire(dir.path()).unwrap();
    }
}
