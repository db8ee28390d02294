//! Seeded data order and mini-batches as tensors.

use candle_core::{Device, Tensor};

use super::Split;
use crate::error::Result;
use crate::rng::Rng;

/// The order of the training samples in `epoch` (0-based). It depends only on the seed and the
/// epoch, so a resumed run sees the same order as an uninterrupted one.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    Rng::derive(seed, "epoch-order", epoch as u64).permutation(len)
}

/// One mini-batch: inputs shaped `[batch, input_shape...]` and `u32` labels.
pub struct Batch {
    pub inputs: Tensor,
    pub labels: Tensor,
    pub size: usize,
}

impl Batch {
    pub fn gather(split: &Split, indices: &[usize], input_shape: &[usize], device: &Device) -> Result<Self> {
        let mut features = Vec::new();
        split.copy_rows(indices, &mut features)?;
        let labels: Vec<u32> = indices.iter().map(|&i| split.labels[i]).collect();
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(input_shape);
        Ok(Self {
            inputs: Tensor::from_vec(features, shape, device)?,
            labels: Tensor::from_vec(labels, indices.len(), device)?,
            size: indices.len(),
        })
    }
}
