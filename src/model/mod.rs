//! Models: the spec a preset gives, the layer plan with its shape checks, the network with its
//! seeded weights, and the custom CPU ops the CNN relies on.

mod fused;
mod kernels;
mod network;
pub mod ops;
pub mod recurrent;
mod spec;

pub use network::{LayerInfo, Mode, Network};
pub use spec::{plan, Activation, ConvSpec, LayerPlan, ModelKind, ModelSpec};
