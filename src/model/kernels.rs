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

/// Reductions at least this long into a result of at most [`SPLIT_MAX_RESULT`] values (weight
/// gradients) are split along k: gemm only parallelises over the result, so it would leave
/// threads idle.
const SPLIT_MIN_K: usize = 4096;
const SPLIT_MAX_RESULT: usize = 128 * 1024;
/// The length a split aims at per chunk, and the most chunks (their partial results are held at
/// once: at most 64 x 512 KiB).
const SPLIT_TARGET_K: usize = 4096;
const SPLIT_MAX_CHUNKS: usize = 64;

/// How many chunks a reduction of length `k` is split into: a function of the shape alone, never
/// of the thread count, so that the partial sums and the order they are added in (hence every
/// bit of the result) are the same on any pool. A multiple of 4 keeps 2 or 4 threads evenly busy.
fn k_chunks(k: usize) -> usize {
    k.div_ceil(SPLIT_TARGET_K).next_multiple_of(4).min(SPLIT_MAX_CHUNKS)
}

/// `dst (m x n, row-major) = [dst +] a (m x k) · b (k x n)`, on the current rayon pool.
///
/// The result is bit-identical for any number of threads: gemm splits its work over blocks of
/// the result only, with the same blocking along k whatever its parallelism (gemm-common 0.19,
/// `gemm_basic_generic`), and the long-k split below depends on the shape alone.
pub(super) fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, a: View<'_>, b: View<'_>) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul: buffers do not fit {m}x{k} · {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k >= SPLIT_MIN_K && m * n <= SPLIT_MAX_RESULT {
        matmul_split_k(k_chunks(k), m, n, k, &mut dst[..m * n], accumulate, a, b);
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    gemm_into(m, n, k, dst, accumulate, a, b, parallelism);
}

/// [`matmul`] on the calling thread alone, for the many small products of a recurrence, each
/// made inside a parallel task that already keeps a thread busy.
pub(super) fn matmul_serial(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, a: View<'_>, b: View<'_>) {
    gemm_into(m, n, k, dst, accumulate, a, b, gemm::Parallelism::None);
}

/// A long reduction into a small result: each chunk of k is reduced on its own (in parallel),
/// then the partial results are added in chunk order, element by element.
#[allow(clippy::too_many_arguments)]
fn matmul_split_k(
    chunks: usize,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    a: View<'_>,
    b: View<'_>,
) {
    let span = k.div_ceil(chunks);
    let len = m * n;
    let mut partials = vec![0f32; chunks * len];
    partials.par_chunks_mut(len).enumerate().for_each(|(t, part)| {
        let k0 = (t * span).min(k);
        let kk = span.min(k - k0);
        if kk > 0 {
            let a_part = View { data: &a.data[k0 * a.cs..], ..a };
            let b_part = View { data: &b.data[k0 * b.rs..], ..b };
            gemm_into(m, n, kk, part, false, a_part, b_part, gemm::Parallelism::None);
        }
    });
    let partials = &partials;
    dst.par_chunks_mut(CHUNK).enumerate().for_each(|(c, d)| {
        let start = c * CHUNK;
        if !accumulate {
            d.fill(0.0);
        }
        for part in partials.chunks(len) {
            d.iter_mut().zip(&part[start..]).for_each(|(d, p)| *d += p);
        }
    });
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

/// Column sums of a row-major matrix with `cols` columns. The rows are summed in tasks of a
/// fixed size and the task sums added in row order, so the result does not depend on the number
/// of threads (rayon's `reduce` would add them in whatever tree its splitting made).
pub(super) fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let rows_per_task = (CHUNK / cols.max(1)).max(1);
    let partials: Vec<Vec<f32>> = m
        .par_chunks(rows_per_task * cols.max(1))
        .map(|chunk| {
            let mut acc = vec![0f32; cols];
            for row in chunk.chunks(cols.max(1)) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .collect();
    let mut sums = vec![0f32; cols];
    for part in &partials {
        for (s, p) in sums.iter_mut().zip(part) {
            *s += p;
        }
    }
    sums
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
                Some(Activation::LeakyRelu) => row.iter_mut().for_each(|v| {
                    if *v < 0.0 {
                        *v *= Activation::LEAKY_SLOPE;
                    }
                }),
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
        // y < 0 exactly where x < 0
        Activation::LeakyRelu => g.iter_mut().zip(y).for_each(|(g, y)| {
            if *y < 0.0 {
                *g *= Activation::LEAKY_SLOPE;
            }
        }),
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
/// maximum was (an index within its image). The first maximum wins a tie, and the first NaN
/// beats any number, as in PyTorch (whose output is NaN for a window holding one), so a window
/// of NaNs still routes its gradient inside the window.
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
                            let better = src[ch] > best[ch] || (src[ch].is_nan() && !best[ch].is_nan());
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
    use crate::rng::Rng;

    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    }

    #[test]
    fn matmul_gives_the_same_bits_at_any_thread_count() {
        let mut rng = Rng::derive(3, "matmul-test", 0);
        // weight gradients of conv layers (long k, small result: split along k), a forward
        // GEMM, and a long k into a large result (gemm's own threads)
        for (m, n, k) in [(9, 32, 43_264), (288, 64, 7_744), (10, 1_600, 4_096), (2_000, 64, 288), (400, 400, 5_000)] {
            // `a` is the transpose of a k x m matrix, as the weight gradients read im2col rows
            let a: Vec<f32> = (0..k * m).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let start: Vec<f32> = (0..m * n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let run = |threads: usize, accumulate: bool| {
                in_pool(threads, || {
                    let mut dst = start.clone();
                    matmul(m, n, k, &mut dst, accumulate, View::transposed(&a, m), View::rows(&b, n));
                    dst
                })
            };
            for accumulate in [false, true] {
                let one = run(1, accumulate);
                for threads in [2, 3, 7] {
                    let other = run(threads, accumulate);
                    let differ = one.iter().zip(&other).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                    assert_eq!(differ, 0, "{m}x{k}·{k}x{n}: {differ} values differ between 1 and {threads} threads");
                }
                if m * n * k <= 200_000_000 {
                    // and the split computes the product
                    for (i, got) in one.iter().enumerate().step_by(7) {
                        let (r, c) = (i / n, i % n);
                        let exact: f64 = (0..k).map(|j| f64::from(a[j * m + r]) * f64::from(b[j * n + c])).sum::<f64>()
                            + if accumulate { f64::from(start[i]) } else { 0.0 };
                        assert!((f64::from(*got) - exact).abs() < 1e-3 * (k as f64).sqrt(), "{m}x{k}·{k}x{n} at {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn column_sums_give_the_same_bits_at_any_thread_count() {
        let mut rng = Rng::derive(4, "column-sums-test", 0);
        for (rows, cols) in [(43_264, 16), (100, 256), (7, 1)] {
            let m: Vec<f32> = (0..rows * cols).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let one = in_pool(1, || column_sums(&m, cols));
            for threads in [2, 3, 7] {
                assert_eq!(in_pool(threads, || column_sums(&m, cols)), one, "{rows}x{cols} on {threads} threads");
            }
            let exact: f64 = m.iter().step_by(cols).map(|v| f64::from(*v)).sum();
            assert!((f64::from(one[0]) - exact).abs() < 1e-2, "column 0 of {rows}x{cols}");
        }
    }

    #[test]
    fn erf_is_accurate() {
        for (x, want) in [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }
}
