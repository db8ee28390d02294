//! Channels-last (NHWC) convolution pieces: the geometry and the im2col / col2im kernels the
//! fused conv block runs on the CPU, and the composed candle ops used off the CPU and as the
//! reference in tests: convolution through candle's conv2d, and a max-pool whose gradient is
//! right (candle's `max_pool2d` gradient is scaled by 1/(k*k), which is wrong).

use candle_core::Tensor;
use rayon::prelude::*;

use crate::error::Result;
use crate::model::spec::conv_output_size;

/// Geometry of a convolution over an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    /// Checks that the output sizes and the im2col buffer (`n * oh * ow * k * k * c`) are
    /// computable without overflow; the fused op refuses a geometry that fails this, so the
    /// accessors below can rely on it.
    pub fn check(&self) -> Option<(usize, usize)> {
        let oh = conv_output_size(self.h, self.k, self.stride, self.pad)?;
        let ow = conv_output_size(self.w, self.k, self.stride, self.pad)?;
        [self.n, oh, ow, self.k, self.k, self.c].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        self.n.checked_mul(self.h)?.checked_mul(self.w)?.checked_mul(self.c)?;
        Some((oh, ow))
    }

    pub fn out_h(&self) -> usize {
        conv_output_size(self.h, self.k, self.stride, self.pad).expect("geometry checked by ConvGeometry::check")
    }

    pub fn out_w(&self) -> usize {
        conv_output_size(self.w, self.k, self.stride, self.pad).expect("geometry checked by ConvGeometry::check")
    }

    fn patch_len(&self) -> usize {
        self.k * self.k * self.c
    }

    /// The input column `ix` seen by output column `ox` at kernel offset `kx`, if inside the image.
    #[inline]
    fn input_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.stride + kx).checked_sub(self.pad).filter(|&i| i < self.w)
    }

    #[inline]
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky).checked_sub(self.pad).filter(|&i| i < self.h)
    }
}

/// A copy that stays inline for the few-element rows of single-channel images (a `memcpy` call
/// per 3 floats costs more than the copy).
#[inline]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if dst.len() < 32 {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
    } else {
        dst.copy_from_slice(src);
    }
}

/// `[n, h, w, c]` -> `[n * oh * ow, k * k * c]`, patches in (ky, kx, c) order, zero padding,
/// into a buffer of the right size; every element is written, so the buffer can be reused
/// without clearing it.
pub(crate) fn im2col_into(g: &ConvGeometry, x: &[f32], out: &mut [f32]) {
    let (oh, ow, kkc) = (g.out_h(), g.out_w(), g.patch_len());
    assert_eq!(out.len(), g.n * oh * ow * kkc, "im2col buffer size");
    let row_len = g.w * g.c;
    out.par_chunks_mut(ow * kkc).enumerate().for_each(|(row, chunk)| {
        let (n, oy) = (row / oh, row % oh);
        let image = &x[n * g.h * row_len..(n + 1) * g.h * row_len];
        for ox in 0..ow {
            let patch = &mut chunk[ox * kkc..(ox + 1) * kkc];
            for ky in 0..g.k {
                let dst = &mut patch[ky * g.k * g.c..(ky + 1) * g.k * g.c];
                let Some(iy) = g.input_row(oy, ky) else {
                    dst.fill(0.0); // padding
                    continue;
                };
                let src_row = &image[iy * row_len..(iy + 1) * row_len];
                let x0 = ox * g.stride;
                if x0 >= g.pad && x0 - g.pad + g.k <= g.w {
                    // the whole kernel row is inside: one contiguous copy
                    let ix = x0 - g.pad;
                    copy_short(dst, &src_row[ix * g.c..(ix + g.k) * g.c]);
                } else {
                    for kx in 0..g.k {
                        let d = &mut dst[kx * g.c..(kx + 1) * g.c];
                        match g.input_col(ox, kx) {
                            Some(ix) => d.copy_from_slice(&src_row[ix * g.c..(ix + 1) * g.c]),
                            None => d.fill(0.0),
                        }
                    }
                }
            }
        }
    });
}

/// The adjoint of [`im2col_into`]: sums patch gradients back into an `[n, h, w, c]` image.
pub(crate) fn col2im(g: &ConvGeometry, cols: &[f32]) -> Vec<f32> {
    let (oh, ow, kkc) = (g.out_h(), g.out_w(), g.patch_len());
    let image_len = g.h * g.w * g.c;
    let mut out = vec![0f32; g.n * image_len];
    out.par_chunks_mut(image_len).enumerate().for_each(|(n, image)| {
        let cols = &cols[n * oh * ow * kkc..(n + 1) * oh * ow * kkc];
        for oy in 0..oh {
            for ox in 0..ow {
                let patch = &cols[(oy * ow + ox) * kkc..(oy * ow + ox + 1) * kkc];
                for ky in 0..g.k {
                    let Some(iy) = g.input_row(oy, ky) else {
                        continue;
                    };
                    for kx in 0..g.k {
                        let Some(ix) = g.input_col(ox, kx) else {
                            continue;
                        };
                        let dst = &mut image[(iy * g.w + ix) * g.c..(iy * g.w + ix + 1) * g.c];
                        let src = &patch[(ky * g.k + kx) * g.c..(ky * g.k + kx + 1) * g.c];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    });
    out
}

/// 2-D convolution of an NHWC input with a PyTorch-layout `[out, in, k, k]` weight through
/// candle's conv2d; returns NHWC. (Candle's backward of it mixes up height and width when a
/// strided input is not square; the CPU path never uses it.)
pub fn conv2d_nhwc(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Result<Tensor> {
    let o = weight.dim(0)?;
    let y = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(weight, pad, stride, 1, 1)?;
    let y = match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, o, 1, 1))?)?,
        None => y,
    };
    Ok(y.permute((0, 2, 3, 1))?.contiguous()?)
}

/// Non-overlapping max-pool of an NHWC tensor with window and stride `size` (rows and columns
/// that do not fill a window are dropped, as in PyTorch), by reshaping into windows and
/// reducing: candle's `max` backward routes the gradient through an equality mask, which is
/// right (up to ties), unlike its `max_pool2d`. Used off the CPU (the CPU pools inside the fused
/// conv block) and as the reference in tests.
pub fn max_pool_nhwc(x: &Tensor, size: usize) -> candle_core::Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let (oh, ow) = (h / size, w / size);
    x.narrow(1, 0, oh * size)?.narrow(2, 0, ow * size)?.reshape((n, oh, size, ow, size, c))?.max(4)?.max(2)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::{Device, Var};

    pub(crate) fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Central finite differences of `f` at every element of `x`, against the analytic gradient.
    pub(crate) fn check_finite_differences(x: &[f32], shape: &[usize], f: impl Fn(&Tensor) -> Tensor) {
        let var = Var::from_tensor(&Tensor::from_vec(x.to_vec(), shape, &Device::Cpu).unwrap()).unwrap();
        let analytic: Vec<f32> =
            f(&var).backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let eps = 1e-2f32;
        for i in 0..x.len() {
            let eval = |delta: f32| -> f32 {
                let mut v = x.to_vec();
                v[i] += delta;
                let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
                f(&t).to_scalar().unwrap()
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            assert!(
                (numeric - analytic[i]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "element {i}: finite difference {numeric}, gradient {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn geometry_that_overflows_is_refused() {
        let g = ConvGeometry { n: 2, h: 28, w: 28, c: 1, k: 3, stride: 1, pad: 0 };
        assert_eq!(g.check(), Some((26, 26)));
        assert_eq!(ConvGeometry { pad: usize::MAX / 2, ..g }.check(), None);
        assert_eq!(ConvGeometry { pad: usize::MAX / 8, ..g }.check(), None); // im2col length
        assert_eq!(ConvGeometry { k: 40, ..g }.check(), None);
        assert_eq!(ConvGeometry { stride: usize::MAX, ..g }.check(), Some((1, 1)));
    }

    #[test]
    fn max_pool_gradient_matches_finite_differences() {
        // distinct values so that the maximum of each window is unique
        let mut rng = Rng::new(12);
        let mut vals: Vec<f32> = (0..2 * 6 * 7 * 3).map(|i| i as f32 * 0.1).collect();
        rng.shuffle(&mut vals);
        let shape = [2, 6, 7, 3];
        let x = Tensor::from_vec(vals.clone(), &shape[..], &Device::Cpu).unwrap();
        let pooled = max_pool_nhwc(&x, 2).unwrap();
        assert_eq!(pooled.dims(), &[2, 3, 3, 3]);
        let up = random(&[2, 3, 3, 3], 13);
        check_finite_differences(&vals, &shape, |x| (max_pool_nhwc(x, 2).unwrap() * &up).unwrap().sum_all().unwrap());
    }

    #[test]
    fn candle_max_pool_gradient_is_scaled_wrong() {
        // Documents why we do not use candle's max_pool2d: its gradient is 1/(k*k) of the true one.
        let x = Var::from_tensor(&random(&[1, 1, 4, 4], 14)).unwrap();
        let g = x.max_pool2d(2).unwrap().sum_all().unwrap().backward().unwrap();
        let total: f32 = g.get(&x).unwrap().sum_all().unwrap().to_scalar().unwrap();
        // four windows, each should pass a gradient of exactly 1
        assert!((total - 4.0).abs() > 1.0, "candle fixed max_pool2d's gradient ({total}); ours can go");
    }
}
