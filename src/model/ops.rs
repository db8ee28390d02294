//! Channels-last (NHWC) convolution pieces: the geometry and the im2col / col2im kernels the
//! fused conv block runs on the CPU, and the composed candle ops used off the CPU and as the
//! reference in tests: convolution through candle's conv2d, and a max-pool whose gradient is
//! right (candle's `max_pool2d` gradient is scaled by 1/(k*k), which is wrong).

use candle_core::{DType, Tensor};
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
/// candle's conv2d; returns NHWC.
///
/// Candle 0.11's conv2d backward computes the input gradient with a transposed conv whose one
/// `output_padding` it takes from the height (`arg.dim(2) - out_size`), so a strided input whose
/// leftover rows and columns differ (7x8, k3, stride 2, pad 1) gets a wrong-shaped or wrong
/// gradient. So the padding is done here (zeros, whose backward is a narrow) and the padded
/// input is cut to the rows and columns some window reaches, `(out - 1) * stride + k`: candle
/// then convolves with padding 0 and both leftovers 0, which its backward gets right on every
/// backend; the rows cut off never reach the output, and the narrow gives them zero gradient.
pub fn conv2d_nhwc(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Result<Tensor> {
    let (o, _, k, _) = weight.dims4()?;
    let (_, h, w, _) = x.dims4()?;
    let reach = |size: usize| {
        conv_output_size(size, k, stride, pad).map(|out| (out - 1) * stride + k).ok_or_else(|| {
            crate::Error::Shape(format!(
                "a {k}x{k} convolution with stride {stride} and padding {pad} has no output from {h}x{w}"
            ))
        })
    };
    let (rh, rw) = (reach(h)?, reach(w)?);
    let x = x.pad_with_zeros(1, pad, pad)?.pad_with_zeros(2, pad, pad)?.narrow(1, 0, rh)?.narrow(2, 0, rw)?;
    let y = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(weight, 0, stride, 1, 1)?;
    let y = match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, o, 1, 1))?)?,
        None => y,
    };
    Ok(y.permute((0, 2, 3, 1))?.contiguous()?)
}

/// Non-overlapping max-pool of an NHWC tensor with window and stride `size` (rows and columns
/// that do not fill a window are dropped, as in PyTorch): the portable form, used off the CPU
/// and with `cpu-portable` (the CPU's standalone pool is [`super::fused_pool::MaxPool`]).
///
/// Each window's gradient goes to its *first* maximum in (row, column) order, as PyTorch and the
/// fused ops send it. Neither candle's `max_pool2d` (its gradient is scaled by 1/(k*k)) nor its
/// `max` (whose backward gives the whole gradient to every tied maximum) does that, and ties are
/// common: a conv over an image's flat background gives equal values. So the windows are laid
/// along the last axis, the candidates are marked (the elements equal to the maximum, or the
/// NaNs of a window that has any: a NaN wins as in PyTorch, which candle's `max` ignores), the
/// first candidate is kept by a running "seen one before" (a prefix maximum by doubling shifts),
/// and the output is that element picked by `where_cond`, whose backward routes the gradient to
/// it alone. Every tensor here is made on the device from the input (no index or scalar is
/// uploaded from the host, which a GPU would pay for every step).
pub fn max_pool_nhwc(x: &Tensor, size: usize) -> candle_core::Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let (oh, ow, k) = (h / size, w / size, size * size);
    let windows = x
        .narrow(1, 0, oh * size)?
        .narrow(2, 0, ow * size)?
        .reshape((n, oh, size, ow, size, c))?
        .permute((0, 1, 3, 5, 2, 4))?
        .contiguous()?
        .reshape((n, oh, ow, c, k))?;
    let values = windows.detach();
    let shape = values.shape().clone();
    let at_max = values.broadcast_eq(&values.max_keepdim(4)?)?;
    let is_nan = values.ne(&values)?;
    let any_nan = is_nan.max_keepdim(4)?.broadcast_as(&shape)?.contiguous()?;
    let candidate = any_nan.where_cond(&is_nan, &at_max)?.to_dtype(values.dtype())?;
    let first = if k == 1 {
        candidate
    } else {
        // seen[j] = any candidate at 0..=j
        let mut seen = candidate.clone();
        let mut shift = 1;
        while shift < k {
            seen = seen.maximum(&seen.narrow(4, 0, k - shift)?.pad_with_zeros(4, shift, 0)?)?;
            shift *= 2;
        }
        let before = seen.narrow(4, 0, k - 1)?.pad_with_zeros(4, 1, 0)?;
        (candidate * before.affine(-1.0, 1.0)?)?
    };
    first.to_dtype(DType::U8)?.where_cond(&windows, &windows.zeros_like()?)?.sum(4)
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
    fn conv_gradients_match_finite_differences_on_non_square_inputs() {
        // 7x8 with stride 2: leftover rows and columns differ, which candle's backward alone
        // gets wrong; strides 1 and 3 and paddings 0 and 1 around it
        for (h, w) in [(7, 8), (8, 5)] {
            for stride in [1, 2, 3] {
                for pad in [0, 1] {
                    let shape = [2, h, w, 2];
                    let x = random(&shape, 20);
                    let weight = random(&[3, 2, 3, 3], 21);
                    let bias = random(&[3], 22);
                    let out = conv2d_nhwc(&x, &weight, Some(&bias), stride, pad).unwrap();
                    let (oh, ow) =
                        (conv_output_size(h, 3, stride, pad).unwrap(), conv_output_size(w, 3, stride, pad).unwrap());
                    assert_eq!(out.dims(), &[2, oh, ow, 3], "{h}x{w} stride {stride} pad {pad}");
                    let up = random(out.dims(), 23);
                    let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
                    check_finite_differences(&xs, &shape, |x| {
                        (conv2d_nhwc(x, &weight, Some(&bias), stride, pad).unwrap() * &up).unwrap().sum_all().unwrap()
                    });
                    let ws: Vec<f32> = weight.flatten_all().unwrap().to_vec1().unwrap();
                    check_finite_differences(&ws, &[3, 2, 3, 3], |w| {
                        (conv2d_nhwc(&x, w, Some(&bias), stride, pad).unwrap() * &up).unwrap().sum_all().unwrap()
                    });
                }
            }
        }
    }

    #[test]
    fn max_pool_sends_a_tied_window_gradient_to_its_first_maximum() {
        // a flat background gives equal values; PyTorch and the fused op pass each window's
        // gradient to its first maximum only
        let x = Var::from_tensor(&Tensor::ones((1, 4, 4, 1), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        let y = max_pool_nhwc(&x, 2).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![1.0; 4]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        #[rustfmt::skip]
        let first = vec![1.0, 0.0, 1.0, 0.0,  0.0, 0.0, 0.0, 0.0,  1.0, 0.0, 1.0, 0.0,  0.0, 0.0, 0.0, 0.0];
        assert_eq!(g, first);
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
