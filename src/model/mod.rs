//! Models: the spec a preset gives, the layer plan with its shape checks, the network with its
//! seeded weights, and the custom CPU ops the CNN relies on.

pub mod channels;
mod decoder_kernels;
mod decoder_ops;
#[cfg(test)]
mod decoder_tests;
mod fused;
mod fused_pool;
mod kernels;
pub mod layers;
mod network;
pub mod ops;
pub mod recurrent;
mod spec;

pub use layers::{LayerSpec, Planned};
pub(crate) use network::activate;
pub use network::{LayerInfo, Mode, Network, Tap};
pub use spec::{
    conv_output_size, plan, plan_partial, Activation, ConvSpec, ModelInput, ModelKind, ModelSpec, DEFAULT_LATENT,
    MAX_TENSOR_ELEMENTS,
};
