//! The core's error type. Every variant names what went wrong and where, so the GUI and the CLI
//! can show it as is.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A data file that exists but cannot be read as what it claims to be.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },

    /// A preset key with a wrong or impossible value.
    #[error("{file}: `{key}`: {message}")]
    Config { file: String, key: String, message: String },

    /// The model does not fit the data (shapes, sizes).
    #[error("model does not fit the data: {0}")]
    Shape(String),

    #[error("loss became {value} at epoch {epoch}, batch {batch}; try a lower learning rate")]
    NonFiniteLoss { value: f32, epoch: usize, batch: usize },

    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().to_path_buf(), source }
    }

    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::Format { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    pub fn config(file: impl Into<String>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config { file: file.into(), key: key.into(), message: message.into() }
    }
}
