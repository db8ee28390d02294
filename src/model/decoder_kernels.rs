//! The loops behind the decoder layers' fused ops (`decoder_ops`): the transposed conv's
//! scatter of kernel taps (written as a gather, so each output value is summed by one thread in
//! a fixed order), its im2col of the output gradient, its weight layout, and batch norm's
//! per-feature statistics and passes.
//!
//! Every reduction here is split into pieces whose size depends on the shape alone and added in
//! piece order, so results are bit-identical on any number of threads.

use rayon::prelude::*;

/// Values a parallel task handles at least (rows are grouped to reach it).
const TASK: usize = 1 << 14;

/// The shape of a transposed convolution on channels-last images.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transposed {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Transposed {
    /// Columns of a contribution row: every kernel tap's `cout` values, tap-major.
    pub fn taps(&self) -> usize {
        self.k * self.k * self.cout
    }

    /// The input index and kernel tap that reach output index `o` along one axis, in tap order:
    /// `o = i * stride + tap - pad`.
    fn sources(&self, o: usize, input: usize) -> Vec<(usize, usize)> {
        (0..self.k)
            .filter_map(|tap| {
                let at = (o + self.pad).checked_sub(tap)?;
                (at % self.stride == 0 && at / self.stride < input).then_some((at / self.stride, tap))
            })
            .collect()
    }
}

/// `[in, out, k, k]` (PyTorch's ConvTranspose2d weight) -> `[in, k * k * out]`, tap-major.
pub(super) fn weight_to_taps(w: &[f32], cin: usize, cout: usize, k: usize) -> Vec<f32> {
    let mut m = vec![0f32; w.len()];
    for ci in 0..cin {
        for co in 0..cout {
            for tap in 0..k * k {
                m[(ci * k * k + tap) * cout + co] = w[(ci * cout + co) * k * k + tap];
            }
        }
    }
    m
}

/// The inverse of [`weight_to_taps`].
pub(super) fn taps_to_weight(m: &[f32], cin: usize, cout: usize, k: usize) -> Vec<f32> {
    let mut w = vec![0f32; m.len()];
    for ci in 0..cin {
        for co in 0..cout {
            for tap in 0..k * k {
                w[(ci * cout + co) * k * k + tap] = m[(ci * k * k + tap) * cout + co];
            }
        }
    }
    w
}

/// The output `[n, out_h, out_w, cout]` from the contributions `[n * h * w, k * k * cout]`
/// (each input pixel times the weight): every output value is the sum of the taps that land on
/// it, row taps then column taps in ascending order, summed by the one task that owns its row.
pub(super) fn gather_taps(g: &Transposed, contributions: &[f32]) -> Vec<f32> {
    let (row_len, taps) = (g.out_w * g.cout, g.taps());
    let mut y = vec![0f32; g.n * g.out_h * row_len];
    if y.is_empty() {
        return y;
    }
    let columns: Vec<Vec<(usize, usize)>> = (0..g.out_w).map(|ox| g.sources(ox, g.w)).collect();
    y.par_chunks_mut(row_len).enumerate().for_each(|(row, out)| {
        let (b, oy) = (row / g.out_h, row % g.out_h);
        for (iy, ky) in g.sources(oy, g.h) {
            let image_row = (b * g.h + iy) * g.w;
            for (ox, sources) in columns.iter().enumerate() {
                let dst = &mut out[ox * g.cout..(ox + 1) * g.cout];
                for &(ix, kx) in sources {
                    let at = (image_row + ix) * taps + (ky * g.k + kx) * g.cout;
                    dst.iter_mut().zip(&contributions[at..at + g.cout]).for_each(|(d, c)| *d += c);
                }
            }
        }
    });
    y
}

/// The transpose of [`gather_taps`]: for every input pixel, the output gradient at each of its
/// taps (zero where a tap falls outside the output), `[n * h * w, k * k * cout]`.
pub(super) fn spread_taps(g: &Transposed, dy: &[f32], cols: &mut [f32]) {
    let taps = g.taps();
    if cols.is_empty() {
        return;
    }
    let target = |i: usize, tap: usize, out: usize| (i * g.stride + tap).checked_sub(g.pad).filter(|&o| o < out);
    cols.par_chunks_mut(g.w * taps).enumerate().for_each(|(row, dst)| {
        let (b, iy) = (row / g.h, row % g.h);
        for ix in 0..g.w {
            let pixel = &mut dst[ix * taps..(ix + 1) * taps];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let part = &mut pixel[(ky * g.k + kx) * g.cout..(ky * g.k + kx + 1) * g.cout];
                    match (target(iy, ky, g.out_h), target(ix, kx, g.out_w)) {
                        (Some(oy), Some(ox)) => {
                            let at = ((b * g.out_h + oy) * g.out_w + ox) * g.cout;
                            part.copy_from_slice(&dy[at..at + g.cout]);
                        }
                        _ => part.fill(0.0),
                    }
                }
            }
        }
    });
}

/// Rows per task of a `[rows, features]` pass: a function of the shape only.
fn rows_per_task(features: usize) -> usize {
    (TASK / features.max(1)).max(1)
}

/// Per-feature sums over the rows of a `[rows, features]` matrix, in f64: `add_row(acc, row)`
/// adds one row into a task's sums; task sums are added in task order.
fn feature_sums(m: &[f32], features: usize, add_row: impl Fn(&mut [f64], &[f32]) + Sync) -> Vec<f64> {
    let per = rows_per_task(features) * features;
    let partials: Vec<Vec<f64>> = m
        .par_chunks(per)
        .map(|chunk| {
            let mut acc = vec![0f64; features];
            chunk.chunks(features).for_each(|row| add_row(&mut acc, row));
            acc
        })
        .collect();
    let mut sums = vec![0f64; features];
    for part in &partials {
        sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    sums
}

/// Per-feature mean and biased variance of `[rows, features]` (two passes: the variance of the
/// centred values, which keeps its precision when the mean is large).
pub(super) fn batch_stats(x: &[f32], features: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = (x.len() / features.max(1)).max(1) as f64;
    let sums = feature_sums(x, features, |acc, row| acc.iter_mut().zip(row).for_each(|(a, v)| *a += f64::from(*v)));
    let mean: Vec<f64> = sums.iter().map(|s| s / rows).collect();
    let squares = feature_sums(x, features, |acc, row| {
        acc.iter_mut().zip(row).zip(&mean).for_each(|((a, v), m)| *a += (f64::from(*v) - m).powi(2));
    });
    (mean.iter().map(|&m| m as f32).collect(), squares.iter().map(|&v| (v / rows) as f32).collect())
}

/// `y = (x - centre) * scale + shift` per feature (the last axis).
pub(super) fn normalise(x: &[f32], centre: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let features = scale.len().max(1);
    let per = rows_per_task(features) * features;
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(per).zip(x.par_chunks(per)).for_each(|(yc, xc)| {
        for (yr, xr) in yc.chunks_mut(features).zip(xc.chunks(features)) {
            for (((y, x), c), (s, b)) in yr.iter_mut().zip(xr).zip(centre).zip(scale.iter().zip(shift)) {
                *y = (x - c) * s + b;
            }
        }
    });
    y
}

/// Batch norm's backward: with `xhat = (x - mean) * invstd`, returns
/// `(dx, Σ(dy * xhat) = dgamma, Σdy = dbeta)`. With the batch's own statistics (training) the
/// gradient also flows through them: `dx = gamma * invstd * (dy - Σdy / N - xhat * Σ(dy * xhat) / N)`;
/// with fixed (running) statistics `dx = gamma * invstd * dy`.
pub(super) fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    invstd: &[f32],
    gamma: &[f32],
    batch_statistics: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let features = mean.len().max(1);
    let rows = (x.len() / features).max(1) as f64;
    // Σdy and Σ(dy * xhat) in one pass over a task's rows of dy and x side by side
    let per = rows_per_task(features) * features;
    let partials: Vec<Vec<f64>> = dy
        .par_chunks(per)
        .zip(x.par_chunks(per))
        .map(|(dc, xc)| {
            let mut acc = vec![0f64; 2 * features];
            let (sum_dy, sum_dy_xhat) = acc.split_at_mut(features);
            for (dr, xr) in dc.chunks(features).zip(xc.chunks(features)) {
                for ((s, t), ((d, v), (m, i))) in
                    sum_dy.iter_mut().zip(sum_dy_xhat.iter_mut()).zip(dr.iter().zip(xr).zip(mean.iter().zip(invstd)))
                {
                    *s += f64::from(*d);
                    *t += f64::from(*d) * f64::from((v - m) * i);
                }
            }
            acc
        })
        .collect();
    let mut sums = vec![0f64; 2 * features];
    for part in &partials {
        sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    let (sum_dy, sum_dy_xhat) = (sums[..features].to_vec(), sums[features..].to_vec());
    let k: Vec<f32> = (0..features).map(|j| gamma[j] * invstd[j]).collect();
    let through_stats = |sums: &[f64]| -> Vec<f32> {
        sums.iter().map(|s| if batch_statistics { (s / rows) as f32 } else { 0.0 }).collect()
    };
    let (mean_dy, mean_dy_xhat) = (through_stats(&sum_dy), through_stats(&sum_dy_xhat));
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(per).zip(x.par_chunks(per).zip(dy.par_chunks(per))).for_each(|(dc, (xc, gc))| {
        for (dr, (xr, gr)) in dc.chunks_mut(features).zip(xc.chunks(features).zip(gc.chunks(features))) {
            for ((d, (x, g)), ((m, i), (k, (a, b)))) in dr
                .iter_mut()
                .zip(xr.iter().zip(gr))
                .zip(mean.iter().zip(invstd).zip(k.iter().zip(mean_dy.iter().zip(&mean_dy_xhat))))
            {
                *d = k * (g - a - (x - m) * i * b);
            }
        }
    });
    let as_f32 = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect::<Vec<f32>>();
    (dx, as_f32(sum_dy_xhat), as_f32(sum_dy))
}

/// Nearest upsampling of `[n, h, w, c]` by `s`: each output row copies its input row's pixels
/// `s` times each.
pub(super) fn upsample(x: &[f32], (n, h, w, c): (usize, usize, usize, usize), s: usize) -> Vec<f32> {
    let row_len = w * s * c;
    let mut y = vec![0f32; n * h * s * row_len];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(row_len).enumerate().for_each(|(row, out)| {
        let (b, iy) = (row / (h * s), row % (h * s) / s);
        let input = &x[(b * h + iy) * w * c..(b * h + iy + 1) * w * c];
        for (ix, pixel) in input.chunks(c).enumerate() {
            for copy in 0..s {
                out[(ix * s + copy) * c..(ix * s + copy + 1) * c].copy_from_slice(pixel);
            }
        }
    });
    y
}

/// The gradient of [`upsample`]: each input pixel sums its `s x s` copies' gradients, rows then
/// columns, on the one task that owns its row.
pub(super) fn upsample_backward(dy: &[f32], (n, h, w, c): (usize, usize, usize, usize), s: usize) -> Vec<f32> {
    let (row_len, out_row) = (w * c, w * s * c);
    let mut dx = vec![0f32; n * h * row_len];
    if dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(row_len).enumerate().for_each(|(row, dst)| {
        for dyy in 0..s {
            let src = &dy[(row * s + dyy) * out_row..(row * s + dyy + 1) * out_row];
            for (ix, pixel) in dst.chunks_mut(c).enumerate() {
                for copy in 0..s {
                    let at = (ix * s + copy) * c;
                    pixel.iter_mut().zip(&src[at..at + c]).for_each(|(d, g)| *d += g);
                }
            }
        }
    });
    dx
}
