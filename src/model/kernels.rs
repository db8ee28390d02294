//! The numeric kernels behind the fused layers, on plain slices: GEMM through the `gemm` crate,
//! bias and activations, max-pooling with its argmax, column sums, weight layout changes.

use rayon::prelude::*;

use super::spec::Activation;

const CHUNK: usize = 1 << 14;

/// A row-major view for [`matmul`]: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: 1, cs: cols }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst (m x n, row-major) = [dst +] a (m x k) · b (k x n)`, on the current rayon pool.
pub(super) fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, a: View<'_>, b: View<'_>) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul: buffers do not fit {m}x{k} · {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    if threads > 1 && k >= 4096 && m * n <= 128 * 1024 {
        // a long reduction into a small result (weight gradients): gemm would leave threads idle,
        // so each thread reduces its own stretch of k and the partial results are added
        let span = k.div_ceil(threads);
        let partials: Vec<Vec<f32>> = (0..threads)
            .into_par_iter()
            .map(|t| {
                let k0 = (t * span).min(k);
                let kk = span.min(k - k0);
                let mut part = vec![0f32; m * n];
                if kk > 0 {
                    let a_part = View { data: &a.data[k0 * a.cs..], ..a };
                    let b_part = View { data: &b.data[k0 * b.rs..], ..b };
                    gemm_into(m, n, kk, &mut part, false, a_part, b_part, gemm::Parallelism::None);
                }
                part
            })
            .collect();
        let dst = &mut dst[..m * n];
        if !accumulate {
            dst.fill(0.0);
        }
        for part in &partials {
            dst.iter_mut().zip(part).for_each(|(d, p)| *d += p);
        }
        return;
    }
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    gemm_into(m, n, k, dst, accumulate, a, b, parallelism);
}

#[allow(clippy::too_many_arguments)]
fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    a: View<'_>,
    b: View<'_>,
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "gemm: buffers do not fit {m}x{k} · {k}x{n}");
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the assert above keeps every index the strides reach inside the slices, and `dst`
    // is borrowed mutably so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The vector resized to `len` (growing with zeros, keeping its capacity), as a slice.
pub(super) fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.resize(len, T::default());
    &mut v[..]
}

/// Column sums of a row-major matrix with `cols` columns.
pub(super) fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let rows_per_task = (CHUNK / cols.max(1)).max(1);
    m.par_chunks(rows_per_task * cols)
        .map(|chunk| {
            let mut acc = vec![0f32; cols];
            for row in chunk.chunks(cols) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .reduce(
            || vec![0f32; cols],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        )
}

/// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

fn gelu(z: f32) -> f32 {
    0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

fn gelu_grad(z: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * z * z).exp() * 0.398_942_3;
    cdf + z * pdf
}

/// Adds the bias (one value per column) and applies the activation, in one pass over the rows;
/// returns the pre-activations when the backward needs them (GELU).
pub(super) fn bias_activate(act: Option<Activation>, z: &mut [f32], bias: &[f32]) -> Option<Vec<f32>> {
    let cols = bias.len().max(1);
    let rows_per_task = (CHUNK / cols).max(1);
    let gelu_saves = act == Some(Activation::Gelu);
    z.par_chunks_mut(rows_per_task * cols).for_each(|chunk| {
        for row in chunk.chunks_mut(cols) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            if gelu_saves {
                continue; // the pre-activations are copied before GELU below
            }
            match act {
                None => {}
                Some(Activation::Relu) => row.iter_mut().for_each(|v| *v = v.max(0.0)),
                Some(Activation::Tanh) => row.iter_mut().for_each(|v| *v = v.tanh()),
                Some(Activation::Sigmoid) => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
                Some(Activation::Gelu) => unreachable!(),
            }
        }
    });
    if !gelu_saves {
        return None;
    }
    let saved = z.to_vec();
    z.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = gelu(*v)));
    Some(saved)
}

/// `grad *= act'` given the activations `y` (or, for GELU, the saved pre-activations).
pub(super) fn activation_backward(act: Option<Activation>, y: &[f32], pre: Option<&[f32]>, grad: &mut [f32]) {
    let Some(act) = act else { return };
    let from = if act == Activation::Gelu { pre.expect("GELU keeps its pre-activations") } else { y };
    grad.par_chunks_mut(CHUNK).zip(from.par_chunks(CHUNK)).for_each(|(g, y)| match act {
        Activation::Relu => g.iter_mut().zip(y).for_each(|(g, y)| {
            if *y <= 0.0 {
                *g = 0.0;
            }
        }),
        Activation::Tanh => g.iter_mut().zip(y).for_each(|(g, y)| *g *= 1.0 - y * y),
        Activation::Sigmoid => g.iter_mut().zip(y).for_each(|(g, y)| *g *= y * (1.0 - y)),
        Activation::Gelu => g.iter_mut().zip(y).for_each(|(g, z)| *g *= gelu_grad(*z)),
    });
}

/// `[o, c, k, k]` -> `[k * k * c, o]`, and back.
pub(super) fn weight_to_matrix(w: &[f32], o: usize, c: usize, k: usize) -> Vec<f32> {
    let mut m = vec![0f32; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    m[((ky * k + kx) * c + ci) * o + oi] = w[((oi * c + ci) * k + ky) * k + kx];
                }
            }
        }
    }
    m
}

pub(super) fn matrix_to_weight(m: &[f32], o: usize, c: usize, k: usize) -> Vec<f32> {
    let mut w = vec![0f32; m.len()];
    for oi in 0..o {
        for ci in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    w[((oi * c + ci) * k + ky) * k + kx] = m[((ky * k + kx) * c + ci) * o + oi];
                }
            }
        }
    }
    w
}

/// Max-pool of NHWC values `[n, h, w, c]`; returns the pooled values and records where each
/// maximum was (an index within its image). The first element of a window counts first, so a
/// window of NaNs still routes its gradient inside the window.
pub(super) fn pool_forward(
    a: &[f32],
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    p: usize,
    argmax: &mut Vec<u32>,
) -> Vec<f32> {
    let (ph, pw) = (h / p, w / p);
    let mut out = vec![0f32; n * ph * pw * c];
    let arg = sized(argmax, out.len());
    let image = h * w * c;
    out.par_chunks_mut(pw * c).zip(arg.par_chunks_mut(pw * c)).enumerate().for_each(|(row, (dst, at))| {
        let (b, py) = (row / ph, row % ph);
        let a = &a[b * image..(b + 1) * image];
        for px in 0..pw {
            let (best, idx) = (&mut dst[px * c..(px + 1) * c], &mut at[px * c..(px + 1) * c]);
            for dy in 0..p {
                for dx in 0..p {
                    let start = ((py * p + dy) * w + px * p + dx) * c;
                    let src = &a[start..start + c];
                    if dy == 0 && dx == 0 {
                        best.copy_from_slice(src);
                        idx.iter_mut().enumerate().for_each(|(ch, i)| *i = (start + ch) as u32);
                    } else {
                        for ch in 0..c {
                            let better = src[ch] > best[ch];
                            best[ch] = if better { src[ch] } else { best[ch] };
                            idx[ch] = if better { (start + ch) as u32 } else { idx[ch] };
                        }
                    }
                }
            }
        }
    });
    out
}

/// Scatters pooled gradients to where the maxima were, into `dz` (zeroed here), image by image.
pub(super) fn pool_backward(grad: &[f32], argmax: &[u32], dz: &mut [f32], images: usize) {
    let (per_out, per_in) = (grad.len() / images.max(1), dz.len() / images.max(1));
    dz.par_chunks_mut(per_in).zip(grad.par_chunks(per_out).zip(argmax.par_chunks(per_out))).for_each(
        |(dz, (g, at))| {
            dz.fill(0.0);
            for (gv, &i) in g.iter().zip(at) {
                dz[i as usize] += gv;
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_accurate() {
        for (x, want) in [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }
}
