//! One time step of one sequence (one batch row) of each cell, forward and backward, on plain
//! slices. The recurrent GEMMs (`h_{t-1} · W_hhᵀ` forward, `da · W_hh` backward) are done by the
//! caller for a whole block of rows at once; these functions do the elementwise rest.
//!
//! Gate layout follows PyTorch: LSTM `[i, f, g, o]`, GRU `[r, z, n]`, each `hidden` long.

use super::activations::{sigmoid_in_place, tanh_in_place};
use super::Cell;

/// How many values per hidden unit a step keeps for the backward.
pub(super) fn saved_per_unit(cell: Cell) -> usize {
    match cell {
        Cell::Rnn => 1,  // h
        Cell::Lstm => 6, // i, f, g, o, c_{t-1}, tanh(c_t)
        Cell::Gru => 4,  // r, z, n, W_hn h + b_hn
    }
}

/// The inputs of one forward step of one row.
pub(super) struct ForwardIn<'a> {
    /// `W_ih x_t + b_ih`, `gates * hidden`.
    pub xp: &'a [f32],
    /// `b_hh`.
    pub bh: &'a [f32],
    /// `h_{t-1}`.
    pub hp: &'a [f32],
}

/// One forward step: `gh` holds `W_hh h_{t-1}` (and is used as scratch), `c` the LSTM's cell
/// state (updated), `h` receives `h_t` and `saved` what the backward needs.
pub(super) fn forward(
    cell: Cell,
    input: &ForwardIn<'_>,
    gh: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    saved: &mut [f32],
) {
    let hidden = h.len();
    let ForwardIn { xp, bh, hp } = *input;
    let (c, hp) = (&mut c[..hidden], &hp[..hidden]);
    match cell {
        Cell::Rnn => {
            for ((a, x), b) in gh.iter_mut().zip(xp).zip(bh) {
                *a = x + (*a + b);
            }
            tanh_in_place(gh);
            h.copy_from_slice(gh);
            saved.copy_from_slice(gh);
        }
        Cell::Lstm => {
            for ((a, x), b) in gh.iter_mut().zip(xp).zip(bh) {
                *a = x + (*a + b);
            }
            sigmoid_in_place(&mut gh[..2 * hidden]);
            tanh_in_place(&mut gh[2 * hidden..3 * hidden]);
            sigmoid_in_place(&mut gh[3 * hidden..]);
            let (gates, rest) = saved.split_at_mut(4 * hidden);
            gates.copy_from_slice(gh);
            let (c_prev, tanh_c) = rest.split_at_mut(hidden);
            c_prev.copy_from_slice(c);
            let (i, f, g) = (&gh[..hidden], &gh[hidden..2 * hidden], &gh[2 * hidden..3 * hidden]);
            for (((c, i), f), g) in c.iter_mut().zip(i).zip(f).zip(g) {
                *c = f * *c + i * g;
            }
            tanh_c.copy_from_slice(c);
            tanh_in_place(tanh_c);
            for ((h, o), t) in h.iter_mut().zip(&gh[3 * hidden..]).zip(tanh_c.iter()) {
                *h = o * t;
            }
        }
        Cell::Gru => {
            let (rz, n) = gh.split_at_mut(2 * hidden);
            for ((a, x), b) in rz.iter_mut().zip(xp).zip(bh) {
                *a = x + (*a + b);
            }
            sigmoid_in_place(rz);
            let (r, z) = rz.split_at(hidden);
            let (saved_rz, rest) = saved.split_at_mut(2 * hidden);
            saved_rz.copy_from_slice(rz);
            let (saved_n, saved_hn) = rest.split_at_mut(hidden);
            let (bn, xn) = (&bh[2 * hidden..], &xp[2 * hidden..]);
            for ((((sn, shn), n), b), (x, r)) in
                saved_n.iter_mut().zip(saved_hn).zip(n.iter()).zip(bn).zip(xn.iter().zip(r))
            {
                *shn = n + b;
                *sn = x + r * *shn;
            }
            tanh_in_place(saved_n);
            for (((h, z), n), hp) in h.iter_mut().zip(z).zip(saved_n.iter()).zip(hp) {
                *h = (1.0 - z) * n + z * hp;
            }
        }
    }
}

/// One backward step of one row. `dh` is the whole gradient reaching `h_t` (from the output
/// and from step t+1); `dc` is the LSTM's cell-state gradient (from t+1 in, to t-1 out).
/// Writes the gradient of the step's input projection into `dgx` and, for the GRU (whose
/// candidate gate is scaled by r after the recurrent product), of the recurrent projection
/// into `dgh` (for the other cells the two are equal and `dgh` is `None`). `dh_prev` receives
/// the part of `h_{t-1}`'s gradient that bypasses `W_hh` (the GRU's `z * dh`; 0 for the others);
/// the caller adds `dgh · W_hh` for the whole block of rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    cell: Cell,
    dh: &[f32],
    saved: &[f32],
    hp: &[f32],
    dc: &mut [f32],
    dgx: &mut [f32],
    dgh: Option<&mut [f32]>,
    dh_prev: &mut [f32],
) {
    let hidden = dh.len();
    // slices of exactly `hidden` below let the compiler drop the bounds checks and vectorise
    let (dc, dh_prev, hp) = (&mut dc[..hidden], &mut dh_prev[..hidden], &hp[..hidden]);
    match cell {
        Cell::Rnn => {
            for ((d, g), h) in dgx.iter_mut().zip(dh).zip(saved) {
                *d = g * (1.0 - h * h);
            }
            dh_prev.fill(0.0);
        }
        Cell::Lstm => {
            let (i, f, g, o) = (
                &saved[..hidden],
                &saved[hidden..2 * hidden],
                &saved[2 * hidden..3 * hidden],
                &saved[3 * hidden..4 * hidden],
            );
            let (c_prev, tanh_c) = (&saved[4 * hidden..5 * hidden], &saved[5 * hidden..]);
            let (di, rest) = dgx.split_at_mut(hidden);
            let (df, rest) = rest.split_at_mut(hidden);
            let (dg, d_o) = rest.split_at_mut(hidden);
            let (di, df, dg, d_o, tanh_c) =
                (&mut di[..hidden], &mut df[..hidden], &mut dg[..hidden], &mut d_o[..hidden], &tanh_c[..hidden]);
            for j in 0..hidden {
                let dct = dc[j] + dh[j] * o[j] * (1.0 - tanh_c[j] * tanh_c[j]);
                d_o[j] = dh[j] * tanh_c[j] * o[j] * (1.0 - o[j]);
                di[j] = dct * g[j] * i[j] * (1.0 - i[j]);
                df[j] = dct * c_prev[j] * f[j] * (1.0 - f[j]);
                dg[j] = dct * i[j] * (1.0 - g[j] * g[j]);
                dc[j] = dct * f[j];
            }
            dh_prev.fill(0.0);
        }
        Cell::Gru => {
            let dgh = dgh.expect("the GRU keeps its recurrent gradient apart");
            let (r, z, n, hn) = (
                &saved[..hidden],
                &saved[hidden..2 * hidden],
                &saved[2 * hidden..3 * hidden],
                &saved[3 * hidden..4 * hidden],
            );
            let (dxr, rest) = dgx.split_at_mut(hidden);
            let (dxz, dxn) = rest.split_at_mut(hidden);
            let (dhr, rest) = dgh.split_at_mut(hidden);
            let (dhz, dhn) = rest.split_at_mut(hidden);
            let (dxn, dhn) = (&mut dxn[..hidden], &mut dhn[..hidden]);
            for j in 0..hidden {
                let dan = dh[j] * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                let dar = dan * hn[j] * r[j] * (1.0 - r[j]);
                let daz = dh[j] * (hp[j] - n[j]) * z[j] * (1.0 - z[j]);
                dxr[j] = dar;
                dxz[j] = daz;
                dxn[j] = dan;
                dhr[j] = dar;
                dhz[j] = daz;
                dhn[j] = dan * r[j];
                dh_prev[j] = dh[j] * z[j];
            }
        }
    }
}
