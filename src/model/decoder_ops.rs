//! The decoder layers as single CPU ops with their own backward (as `fused` does for dense and
//! conv): the transposed convolution, batch norm and nearest upsampling. The layers keep their composed candle forms
//! for other devices; `layers/upsample.rs` and `layers/norm.rs` test both against each other.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};

use super::decoder_kernels::{
    batch_norm_backward, gather_taps, normalise, spread_taps, taps_to_weight, upsample, upsample_backward,
    weight_to_taps, Transposed,
};
use super::fused::{contiguous, tensor, with_data};
use super::kernels::{activation_backward, bias_activate, column_sums, matmul, View};
use super::layers::upsample::transposed_size;
use super::spec::Activation;

/// A transposed convolution, `[n, h, w, in]` -> `[n, oh, ow, out]` with PyTorch's weight
/// `[in, out, k, k]`, + bias + activation.
///
/// Forward: one GEMM gives every input pixel's contribution at every kernel tap, then each
/// output value gathers the taps that land on it. Backward: the output gradient at each input
/// pixel's taps (an im2col of it) times the weight's transpose is the input gradient (an
/// ordinary convolution), and the input's transpose times it the weight gradient.
pub struct ConvTranspose {
    stride: usize,
    padding: usize,
    output_padding: usize,
    act: Option<Activation>,
    pre_activation: Mutex<Option<Vec<f32>>>,
}

impl ConvTranspose {
    pub fn new(stride: usize, padding: usize, output_padding: usize, act: Option<Activation>) -> Self {
        Self { stride, padding, output_padding, act, pre_activation: Mutex::new(None) }
    }

    fn geometry(&self, x: &Shape, w: &Shape) -> candle_core::Result<Transposed> {
        let (n, h, wd, cin) = x.dims4()?;
        let (wc, cout, k, k2) = w.dims4()?;
        if wc != cin || k != k2 {
            candle_core::bail!("transposed conv: input has {cin} channels, weight is {wc}x{cout}x{k}x{k2}");
        }
        let size = |n| transposed_size(n, k, self.stride, self.padding, self.output_padding);
        let (Some(out_h), Some(out_w)) = (size(h), size(wd)) else {
            candle_core::bail!(
                "transposed conv: kernel {k}, stride {}, padding {} leave no output from a {h}x{wd} input",
                self.stride,
                self.padding
            );
        };
        Ok(Transposed { n, h, w: wd, cin, cout, k, stride: self.stride, pad: self.padding, out_h, out_w })
    }
}

impl CustomOp3 for ConvTranspose {
    fn name(&self) -> &'static str {
        "gradlab-conv-transpose"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geometry(xl.shape(), wl.shape())?;
        let (x, w, b) = (
            contiguous(xs, xl, "transposed conv x")?,
            contiguous(ws, wl, "transposed conv w")?,
            contiguous(bs, bl, "transposed conv b")?,
        );
        let (pixels, taps) = (g.n * g.h * g.w, g.taps());
        let w_taps = weight_to_taps(w, g.cin, g.cout, g.k);
        let mut contributions = vec![0f32; pixels * taps];
        matmul(pixels, taps, g.cin, &mut contributions, false, View::rows(x, g.cin), View::rows(&w_taps, taps));
        let mut y = gather_taps(&g, &contributions);
        *self.pre_activation.lock().expect("not poisoned") = bias_activate(self.act, &mut y, b);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.out_h, g.out_w, g.cout))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.shape(), w.shape())?;
        let (pixels, taps) = (g.n * g.h * g.w, g.taps());
        let mut dz = grad.flatten_all()?.to_vec1::<f32>()?;
        let pre = self.pre_activation.lock().expect("not poisoned");
        with_data(res, |y| activation_backward(self.act, y, pre.as_deref(), &mut dz))?;
        let db = column_sums(&dz, g.cout);
        let mut cols = vec![0f32; pixels * taps];
        spread_taps(&g, &dz, &mut cols);
        let mut dw_taps = vec![0f32; g.cin * taps];
        with_data(x, |x| {
            matmul(g.cin, taps, pixels, &mut dw_taps, false, View::transposed(x, g.cin), View::rows(&cols, taps))
        })?;
        let dw = taps_to_weight(&dw_taps, g.cin, g.cout, g.k);
        let dx = if x.track_op() {
            let w_taps = with_data(w, |w| weight_to_taps(w, g.cin, g.cout, g.k))?;
            let mut dx = vec![0f32; pixels * g.cin];
            matmul(pixels, g.cin, taps, &mut dx, false, View::rows(&cols, taps), View::transposed(&w_taps, taps));
            Some(tensor(dx, x.shape())?)
        } else {
            None
        };
        Ok((dx, Some(tensor(dw, w.shape())?), Some(tensor(db, b.shape())?)))
    }
}

/// Batch norm on `[rows, features]` (an image's pixels are rows, its channels features):
/// `y = (x - mean) * invstd * gamma + beta` with the statistics it is built with. With
/// `batch_statistics` they are the batch's own (training), and the gradient flows through them
/// too; otherwise they are the running ones, constants (evaluation).
pub struct BatchNorm {
    mean: Vec<f32>,
    invstd: Vec<f32>,
    batch_statistics: bool,
}

impl BatchNorm {
    pub fn new(mean: Vec<f32>, var: &[f32], eps: f64, batch_statistics: bool) -> Self {
        let invstd = var.iter().map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32).collect();
        Self { mean, invstd, batch_statistics }
    }

    fn check(&self, x: &Shape, gamma: &Shape) -> candle_core::Result<usize> {
        let features = self.mean.len();
        if x.dims().last() != Some(&features) || gamma.elem_count() != features {
            candle_core::bail!("batch norm of {features} features: input {x:?}, weight {gamma:?}");
        }
        Ok(features)
    }
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "gradlab-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.check(xl.shape(), gl.shape())?;
        let (x, gamma, beta) = (
            contiguous(xs, xl, "batch norm x")?,
            contiguous(gs, gl, "batch norm weight")?,
            contiguous(bs, bl, "batch norm bias")?,
        );
        let scale: Vec<f32> = self.invstd.iter().zip(gamma).map(|(s, g)| s * g).collect();
        Ok((CpuStorage::F32(normalise(x, &self.mean, &scale, beta)), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.check(x.shape(), gamma.shape())?;
        let gamma_v = gamma.flatten_all()?.to_vec1::<f32>()?;
        let (dx, dgamma, dbeta) = with_data(x, |x| {
            with_data(grad, |dy| batch_norm_backward(x, dy, &self.mean, &self.invstd, &gamma_v, self.batch_statistics))
        })??;
        let dx = if x.track_op() { Some(tensor(dx, x.shape())?) } else { None };
        Ok((dx, Some(tensor(dgamma, gamma.shape())?), Some(tensor(dbeta, beta.shape())?)))
    }
}

/// Nearest upsampling of `[n, h, w, c]` by a whole factor, with a backward that sums each
/// pixel's copies in one pass (the composed broadcast's backward reduces over two axes).
pub struct Upsample {
    pub scale: usize,
}

impl CustomOp1 for Upsample {
    fn name(&self) -> &'static str {
        "gradlab-upsample"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, h, w, c) = xl.shape().dims4()?;
        let x = contiguous(xs, xl, "upsample x")?;
        let s = self.scale;
        Ok((CpuStorage::F32(upsample(x, (n, h, w, c), s)), Shape::from((n, h * s, w * s, c))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dims = x.dims4()?;
        let dx = with_data(grad, |g| upsample_backward(g, dims, self.scale))?;
        Ok(Some(tensor(dx, x.shape())?))
    }
}
