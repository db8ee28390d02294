//! What the GUI knows of the model's insides: the run's `InsideInfo`, the latest predictions,
//! the replies to inspect requests, layer statistics and the decision boundary, as the training
//! thread sends them. (A stub of the GUI skeleton; the inside views' work fills it in.)

use crate::train::inspect::{BoundaryMap, InsideInfo, InspectReply, Predictions, Views};
use crate::train::layer_stats::LayerStats;
use crate::train::Event;

#[derive(Default)]
pub struct InspectState {
    /// The current run's input shape, data kind and layers (from `Started`).
    pub info: Option<InsideInfo>,
    pub predictions: Option<Predictions>,
    pub layer_stats: Vec<LayerStats>,
    pub boundary: Option<BoundaryMap>,
    /// Replies by request id, newest last.
    pub replies: Vec<(u64, InspectReply)>,
    /// The last image file decoded for "Try it": its path and raw pixels, or why not.
    pub decoded: Option<(std::path::PathBuf, Result<Vec<u8>, String>)>,
    next_id: u64,
}

impl InspectState {
    /// A new run: what was known of the last one goes.
    pub fn run_started(&mut self, info: InsideInfo) {
        *self = Self { info: Some(info), next_id: self.next_id, ..Self::default() };
    }

    /// An id for the next `InspectRequest`.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The costly views the open Inside tab wants computed.
    pub fn views_wanted(&self) -> Views {
        Views::ALL
    }

    /// Takes an inspect event (the app routes `Predictions`, `Inspected`, `LayerStats` and
    /// `Boundary` here; everything else goes to the live run).
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Predictions(p) => self.predictions = Some(*p),
            Event::Inspected { id, reply } => self.replies.push((id, *reply)),
            Event::LayerStats(s) => self.layer_stats.push(*s),
            Event::Boundary(b) => self.boundary = Some(*b),
            _ => {}
        }
    }

    /// The io thread's answer to `Action::OpenImageFile`.
    pub fn image_decoded(&mut self, path: std::path::PathBuf, result: Result<Vec<u8>, String>) {
        self.decoded = Some((path, result));
    }
}
