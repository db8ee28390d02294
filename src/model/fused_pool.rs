//! The CPU's standalone max-pool (one not after a conv, whose pool is inside the fused conv
//! block): one op over the conv block's pool kernels, so it runs at the fused speed and keeps
//! its behaviour (the first maximum of a tie takes the gradient, a NaN wins its window, as in
//! PyTorch). The portable form is `ops::max_pool_nhwc`; the two are compared in the tests here
//! and in tests/portable.rs.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::fused::{contiguous, tensor, with_data};
use super::kernels::{pool_backward, pool_forward};

/// Max-pool of an NHWC f32 tensor with window and stride `size`. One op per forward: it keeps
/// where that forward's maxima were for its own backward.
pub struct MaxPool {
    size: usize,
    argmax: Mutex<Vec<u32>>,
}

impl MaxPool {
    pub fn new(size: usize) -> Self {
        Self { size, argmax: Mutex::new(Vec::new()) }
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "gradlab-max-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, h, w, c) = l.shape().dims4()?;
        if self.size == 0 {
            candle_core::bail!("max-pool: a window of size 0 pools nothing");
        }
        let x = contiguous(s, l, "max-pool input")?;
        let mut argmax = self.argmax.lock().expect("not poisoned");
        let out = pool_forward(x, n, h, w, c, self.size, &mut argmax);
        Ok((CpuStorage::F32(out), Shape::from((n, h / self.size, w / self.size, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let mut dx = vec![0f32; arg.elem_count()];
        if grad.elem_count() > 0 {
            let argmax = self.argmax.lock().expect("not poisoned");
            with_data(grad, |g| pool_backward(g, &argmax, &mut dx, arg.dim(0).unwrap_or(1)))?;
        }
        Ok(Some(tensor(dx, arg.shape())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::max_pool_nhwc;
    use crate::model::ops::tests::random;
    use candle_core::{Device, Var};

    fn pool_both(x: &Var, size: usize, up: &Tensor) -> [(Vec<f32>, Vec<f32>); 2] {
        let fused = x.contiguous().unwrap().apply_op1(MaxPool::new(size)).unwrap();
        let portable = max_pool_nhwc(x, size).unwrap();
        [fused, portable].map(|y| {
            let grads = (&y * up).unwrap().sum_all().unwrap().backward().unwrap();
            let g = grads.get(x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            (y.flatten_all().unwrap().to_vec1().unwrap(), g)
        })
    }

    #[test]
    fn fused_and_portable_pools_agree_on_ties_leftovers_and_sizes() {
        for (shape, size) in [([2, 6, 7, 3], 2), ([1, 7, 9, 2], 3), ([2, 4, 4, 1], 1), ([1, 5, 5, 2], 4)] {
            // values rounded to few levels: many tied windows
            let x = (random(&shape, 30) * 2.0).unwrap().round().unwrap();
            let x = Var::from_tensor(&x).unwrap();
            let (oh, ow) = (shape[1] / size, shape[2] / size);
            let up = random(&[shape[0], oh, ow, shape[3]], 31);
            let [fused, portable] = pool_both(&x, size, &up);
            assert_eq!(fused, portable, "{shape:?} size {size}");
        }
    }

    #[test]
    fn a_window_with_nan_gives_nan_and_routes_its_gradient_to_the_nan() {
        // [NaN, 1, 2, 3] and [1, NaN, 3, 3]: NaN out as in PyTorch, the gradient to the first NaN
        for (vals, at) in [([f32::NAN, 1.0, 2.0, 3.0], 0), ([1.0, f32::NAN, 3.0, 3.0], 1)] {
            let x = Var::from_tensor(&Tensor::from_vec(vals.to_vec(), (1, 2, 2, 1), &Device::Cpu).unwrap()).unwrap();
            let up = Tensor::ones((1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
            for (form, (y, g)) in ["fused", "portable"].into_iter().zip(pool_both(&x, 2, &up)) {
                assert!(y[0].is_nan(), "{form} {vals:?}: {y:?}");
                let mut want = vec![0.0; 4];
                want[at] = 1.0;
                assert_eq!(g, want, "{form} {vals:?}");
            }
        }
    }
}
