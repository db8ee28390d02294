//! Whole layers as single CPU ops with their own backward: dense (+ activation) and conv block
//! (conv + activation + max-pool). One graph node per layer means no intermediate tensors, no
//! zero-filled gradient buffers for them, and GEMMs called directly on the buffers (the `gemm`
//! crate candle itself uses). Checked against the composed candle ops and finite differences in
//! the tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Storage, Tensor};

use super::kernels::{
    activation_backward, bias_activate, column_sums, matmul, matrix_to_weight, pool_backward, pool_forward, sized,
    weight_to_matrix, View,
};
use super::ops::{col2im, im2col_into, ConvGeometry};
use super::spec::Activation;

/// A custom op's f32 input as a slice; `what` names it in the error.
pub(super) fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    Ok(&data[a..b])
}

/// Runs `f` on a CPU tensor's contiguous f32 data.
pub(super) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(contiguous(cpu, layout, "fused layer")?)),
        _ => Err(candle_core::Error::Msg("fused layers run on the CPU".into())),
    }
}

pub(super) fn tensor(v: Vec<f32>, shape: impl Into<Shape>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// `y = act(x · wᵀ + b)` for x `[batch, in]`, w `[out, in]`, b `[out]`.
pub struct Dense {
    pub act: Option<Activation>,
    pre_activation: Mutex<Option<Vec<f32>>>,
}

impl Dense {
    pub fn new(act: Option<Activation>) -> Self {
        Self { act, pre_activation: Mutex::new(None) }
    }
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "gradlab-dense"
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
        let (x, w, b) =
            (contiguous(xs, xl, "dense x")?, contiguous(ws, wl, "dense w")?, contiguous(bs, bl, "dense b")?);
        let (batch, inputs) = xl.shape().dims2()?;
        let (outputs, w_in) = wl.shape().dims2()?;
        if w_in != inputs || b.len() != outputs {
            candle_core::bail!("dense: input has {inputs} features, weight is {outputs}x{w_in}, bias {}", b.len());
        }
        let mut y = vec![0f32; batch * outputs];
        matmul(batch, outputs, inputs, &mut y, false, View::rows(x, inputs), View::transposed(w, inputs));
        *self.pre_activation.lock().expect("not poisoned") = bias_activate(self.act, &mut y, b);
        Ok((CpuStorage::F32(y), Shape::from((batch, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (batch, inputs) = x.dims2()?;
        let outputs = w.dim(0)?;
        let mut dz = grad.flatten_all()?.to_vec1::<f32>()?;
        let pre = self.pre_activation.lock().expect("not poisoned");
        with_data(res, |y| activation_backward(self.act, y, pre.as_deref(), &mut dz))?;
        let db = column_sums(&dz, outputs);
        let mut dw = vec![0f32; outputs * inputs];
        with_data(x, |x| {
            matmul(outputs, inputs, batch, &mut dw, false, View::transposed(&dz, outputs), View::rows(x, inputs))
        })?;
        let dx = if x.track_op() {
            let mut dx = vec![0f32; batch * inputs];
            with_data(w, |w| {
                matmul(batch, inputs, outputs, &mut dx, false, View::rows(&dz, outputs), View::rows(w, inputs))
            })?;
            Some(tensor(dx, (batch, inputs))?)
        } else {
            None
        };
        Ok((dx, Some(tensor(dw, (outputs, inputs))?), Some(tensor(db, outputs)?)))
    }
}

/// Buffers a conv layer reuses from batch to batch (so its large temporaries do not fault in
/// fresh pages every step), holding what the forward leaves for the backward. `generation` tells
/// a backward whether the buffers still belong to its forward.
#[derive(Default)]
pub struct ConvWorkspace {
    generation: u64,
    cols: Vec<f32>,
    /// Weights as `[k * k * c, out]` in the patch order.
    w_mat: Vec<f32>,
    /// Convolution outputs `[rows, out]`: before bias and activation when those come after
    /// pooling, else after them.
    z: Vec<f32>,
    pre_activation: Option<Vec<f32>>,
    /// For each pooled output, the index of its maximum within its image's part of `z`.
    argmax: Vec<u32>,
    dz: Vec<f32>,
    dcols: Vec<f32>,
}

pub type SharedWorkspace = Arc<Mutex<ConvWorkspace>>;

/// Convolution (NHWC input, `[out, in, k, k]` weight) + bias + activation + max-pool (`pool` > 1).
///
/// With a monotonic activation (ReLU, tanh, sigmoid) the max commutes with bias and activation,
/// so they run after pooling, on a quarter of the values, and the backward only touches the
/// maxima. GELU is not monotonic: it runs before pooling.
pub struct ConvBlock {
    pub stride: usize,
    pub padding: usize,
    pub act: Option<Activation>,
    pub pool: usize,
    workspace: SharedWorkspace,
    generation: AtomicU64,
}

impl ConvBlock {
    pub fn new(
        stride: usize,
        padding: usize,
        act: Option<Activation>,
        pool: usize,
        workspace: SharedWorkspace,
    ) -> Self {
        Self { stride, padding, act, pool, workspace, generation: AtomicU64::new(0) }
    }

    fn geometry(&self, x: &Shape, w: &Shape) -> candle_core::Result<(ConvGeometry, usize)> {
        let (n, h, wd, c) = x.dims4()?;
        let (o, wc, k, k2) = w.dims4()?;
        if wc != c || k != k2 {
            candle_core::bail!("conv block: input has {c} channels, weight is {o}x{wc}x{k}x{k2}");
        }
        let g = ConvGeometry { n, h, w: wd, c, k, stride: self.stride, pad: self.padding };
        if g.check().is_none() {
            candle_core::bail!(
                "conv block: a {k}x{k} kernel with stride {} and padding {} does not fit a {h}x{wd} input of {n} images",
                self.stride,
                self.padding
            );
        }
        Ok((g, o))
    }

    fn pool_first(&self) -> bool {
        self.pool > 1 && self.act != Some(Activation::Gelu)
    }

    /// Fills the workspace for these inputs and returns the layer's output.
    fn forward_into(
        &self,
        ws: &mut ConvWorkspace,
        g: &ConvGeometry,
        o: usize,
        x: &[f32],
        w: &[f32],
        b: &[f32],
    ) -> Vec<f32> {
        let (oh, ow, kkc) = (g.out_h(), g.out_w(), g.k * g.k * g.c);
        let rows = g.n * oh * ow;
        let ConvWorkspace { cols, w_mat, z, pre_activation, argmax, .. } = ws;
        im2col_into(g, x, sized(cols, rows * kkc));
        *w_mat = weight_to_matrix(w, o, g.c, g.k);
        let z = sized(z, rows * o);
        matmul(rows, o, kkc, z, false, View::rows(cols, kkc), View::rows(w_mat, o));
        if self.pool_first() {
            let mut out = pool_forward(z, g.n, oh, ow, o, self.pool, argmax);
            *pre_activation = bias_activate(self.act, &mut out, b);
            out
        } else {
            *pre_activation = bias_activate(self.act, z, b);
            if self.pool > 1 {
                pool_forward(z, g.n, oh, ow, o, self.pool, argmax)
            } else {
                z.to_vec()
            }
        }
    }
}

impl CustomOp3 for ConvBlock {
    fn name(&self) -> &'static str {
        "gradlab-conv-block"
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
        let (g, o) = self.geometry(xl.shape(), wl.shape())?;
        let (x, w, b) = (contiguous(xs, xl, "conv x")?, contiguous(ws, wl, "conv w")?, contiguous(bs, bl, "conv b")?);
        let mut workspace = self.workspace.lock().expect("not poisoned");
        workspace.generation += 1;
        self.generation.store(workspace.generation, Ordering::Relaxed);
        let out = self.forward_into(&mut workspace, &g, o, x, w, b);
        let p = self.pool.max(1);
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.out_h() / p, g.out_w() / p, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, o) = self.geometry(x.shape(), w.shape())?;
        let (oh, ow, kkc) = (g.out_h(), g.out_w(), g.k * g.k * g.c);
        let rows = g.n * oh * ow;
        let mut guard = self.workspace.lock().expect("not poisoned");
        if guard.generation != self.generation.load(Ordering::Relaxed) {
            // another forward used the buffers since ours: redo ours
            let x = x.flatten_all()?.to_vec1::<f32>()?;
            let w = w.flatten_all()?.to_vec1::<f32>()?;
            let b = b.flatten_all()?.to_vec1::<f32>()?;
            self.forward_into(&mut guard, &g, o, &x, &w, &b);
            guard.generation = self.generation.load(Ordering::Relaxed);
        }
        let ConvWorkspace { cols, w_mat, z, pre_activation, argmax, dz, dcols, .. } = &mut *guard;
        let dz = sized(dz, rows * o);
        let db = if self.pool_first() {
            // gradient at the pooled pre-activations, then to the maxima
            let mut dpool = grad.flatten_all()?.to_vec1::<f32>()?;
            with_data(res, |y| activation_backward(self.act, y, pre_activation.as_deref(), &mut dpool))?;
            pool_backward(&dpool, argmax, dz, g.n);
            column_sums(&dpool, o)
        } else {
            if self.pool > 1 {
                with_data(grad, |gr| pool_backward(gr, argmax, dz, g.n))?;
                activation_backward(self.act, z, pre_activation.as_deref(), dz);
            } else {
                with_data(grad, |gr| dz.copy_from_slice(gr))?;
                with_data(res, |y| activation_backward(self.act, y, pre_activation.as_deref(), dz))?;
            }
            column_sums(dz, o)
        };
        let mut dw_mat = vec![0f32; kkc * o];
        matmul(kkc, o, rows, &mut dw_mat, false, View::transposed(cols, kkc), View::rows(dz, o));
        let dw = matrix_to_weight(&dw_mat, o, g.c, g.k);
        let dx = if x.track_op() {
            let dcols = sized(dcols, rows * kkc);
            matmul(rows, kkc, o, dcols, false, View::rows(dz, o), View::transposed(w_mat, o));
            Some(tensor(col2im(&g, dcols), (g.n, g.h, g.w, g.c))?)
        } else {
            None
        };
        Ok((dx, Some(tensor(dw, w.shape())?), Some(tensor(db, b.shape())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network::activate;
    use crate::model::ops::tests::{check_finite_differences, random};
    use crate::model::ops::{conv2d_nhwc, max_pool_nhwc};
    use crate::rng::Rng;
    use candle_core::Var;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    const ACTS: [Option<Activation>; 6] = [
        None,
        Some(Activation::Relu),
        Some(Activation::Tanh),
        Some(Activation::Sigmoid),
        Some(Activation::Gelu),
        Some(Activation::LeakyRelu),
    ];

    /// Forward values and gradients of `ours` and `reference` agree for the same upstream gradient.
    fn agree(vars: &[&Var], ours: Tensor, reference: Tensor, tol: f32, what: &str) {
        assert_eq!(ours.dims(), reference.dims(), "{what}");
        assert!(max_diff(&ours, &reference) < tol, "{what}: forward differs by {}", max_diff(&ours, &reference));
        let up = random(ours.dims(), 99);
        let g1 = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (reference * &up).unwrap().sum_all().unwrap().backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            let d = max_diff(a, b);
            assert!(d < tol * 10.0, "{what}: gradient {i} differs by {d}");
        }
    }

    #[test]
    fn dense_matches_composed_candle_ops() {
        for act in ACTS {
            let x = Var::from_tensor(&random(&[7, 5], 1)).unwrap();
            let w = Var::from_tensor(&random(&[4, 5], 2)).unwrap();
            let b = Var::from_tensor(&random(&[4], 3)).unwrap();
            let ours = x.apply_op3(&w, &b, Dense::new(act)).unwrap();
            let mut reference = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            if let Some(a) = act {
                reference = activate(&reference, a).unwrap();
            }
            agree(&[&x, &w, &b], ours, reference, 1e-4, &format!("dense {act:?}"));
        }
    }

    #[test]
    fn conv_block_matches_composed_candle_ops() {
        let geometries =
            [(6, 7, 1, 3, 3, 1, 0, 2), (8, 8, 3, 4, 3, 1, 1, 2), (9, 9, 2, 3, 3, 2, 1, 1), (5, 6, 2, 2, 1, 1, 0, 2)];
        for (h, w_, c, o, k, stride, pad, pool) in geometries {
            for act in ACTS {
                // distinct inputs so that pooling has no ties
                let mut rng = Rng::new(5);
                let mut xs: Vec<f32> = (0..2 * h * w_ * c).map(|i| i as f32 * 0.01 - 0.3).collect();
                rng.shuffle(&mut xs);
                let x = Var::from_tensor(&Tensor::from_vec(xs, (2, h, w_, c), &Device::Cpu).unwrap()).unwrap();
                let w = Var::from_tensor(&random(&[o, c, k, k], 6)).unwrap();
                let b = Var::from_tensor(&random(&[o], 7)).unwrap();
                let ours =
                    x.apply_op3(&w, &b, ConvBlock::new(stride, pad, act, pool, SharedWorkspace::default())).unwrap();
                let mut reference = conv2d_nhwc(&x, &w, Some(&b), stride, pad).unwrap();
                if let Some(a) = act {
                    reference = activate(&reference, a).unwrap();
                }
                if pool > 1 {
                    reference = max_pool_nhwc(&reference, pool).unwrap();
                }
                agree(
                    &[&x, &w, &b],
                    ours,
                    reference,
                    2e-4,
                    &format!("conv {h}x{w_}x{c}->{o} k{k} s{stride} p{pad} pool{pool} {act:?}"),
                );
            }
        }
    }

    #[test]
    fn conv_block_gradient_matches_finite_differences() {
        let block = |act, pool| ConvBlock::new(1, 0, act, pool, SharedWorkspace::default());
        // input gradient, with an activation and a non-square input
        let (w, b) = (random(&[3, 2, 3, 3], 8), random(&[3], 9));
        let up = random(&[1, 3, 4, 3], 10);
        let x0: Vec<f32> = random(&[1, 5, 6, 2], 11).flatten_all().unwrap().to_vec1().unwrap();
        check_finite_differences(&x0, &[1, 5, 6, 2], |x| {
            (x.apply_op3(&w, &b, block(Some(Activation::Tanh), 1)).unwrap() * &up).unwrap().sum_all().unwrap()
        });
        // stride 2 and padding, which candle's own conv2d backward gets wrong on such shapes
        let up = random(&[2, 3, 4, 3], 12);
        let x0: Vec<f32> = random(&[2, 5, 7, 2], 13).flatten_all().unwrap().to_vec1().unwrap();
        check_finite_differences(&x0, &[2, 5, 7, 2], |x| {
            let y = x.apply_op3(&w, &b, ConvBlock::new(2, 1, None, 1, SharedWorkspace::default())).unwrap();
            (y * &up).unwrap().sum_all().unwrap()
        });
        // weight gradient
        let xt = random(&[2, 5, 5, 2], 14);
        let up = random(&[2, 3, 3, 3], 15);
        let w0: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
        check_finite_differences(&w0, &[3, 2, 3, 3], |w| {
            (xt.apply_op3(w, &b, block(None, 1)).unwrap() * &up).unwrap().sum_all().unwrap()
        });
    }

    #[test]
    fn input_gradient_is_skipped_for_data() {
        // the first layer's input is data: no gradient is computed (or needed) for it
        let x = random(&[2, 6, 6, 1], 12);
        let w = Var::from_tensor(&random(&[4, 1, 3, 3], 13)).unwrap();
        let b = Var::from_tensor(&random(&[4], 14)).unwrap();
        let y =
            x.apply_op3(&w, &b, ConvBlock::new(1, 0, Some(Activation::Relu), 2, SharedWorkspace::default())).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&w).is_some());
    }

    #[test]
    fn a_stale_workspace_is_recomputed() {
        // two forwards through one workspace, then the first one's backward: still right
        let ws = SharedWorkspace::default();
        let w = Var::from_tensor(&random(&[3, 2, 3, 3], 15)).unwrap();
        let b = Var::from_tensor(&random(&[3], 16)).unwrap();
        let x1 = Var::from_tensor(&random(&[2, 6, 6, 2], 17)).unwrap();
        let x2 = random(&[2, 6, 6, 2], 18);
        let y1 = x1.apply_op3(&w, &b, ConvBlock::new(1, 1, Some(Activation::Relu), 2, ws.clone())).unwrap();
        let _y2 = x2.apply_op3(&w, &b, ConvBlock::new(1, 1, Some(Activation::Relu), 2, ws)).unwrap();
        let fresh =
            x1.apply_op3(&w, &b, ConvBlock::new(1, 1, Some(Activation::Relu), 2, SharedWorkspace::default())).unwrap();
        let g1 = y1.sum_all().unwrap().backward().unwrap();
        let g2 = fresh.sum_all().unwrap().backward().unwrap();
        for v in [&x1, &w, &b] {
            assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-6);
        }
    }
}
