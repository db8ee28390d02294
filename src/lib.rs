//! Gradlab's core: data, models, training, run records and export. The desktop app (`gui`
//! feature) and the headless CLI are both thin layers over it.

pub mod bench;
pub mod budget;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod export;
pub mod model;
pub mod record;
pub mod rng;
pub mod sweep;
pub mod task;
pub mod train;

#[cfg(feature = "gui")]
pub mod gui;

pub use config::Preset;
pub use error::{Error, Result};
