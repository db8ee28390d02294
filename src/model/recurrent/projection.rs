//! `x W_ihᵀ + b_ih` for every time step as one GEMM over all `batch * time` rows, and its
//! gradients, on slices: the recurrence op runs it inside itself, so the projected input (the
//! layer's largest tensor) is never a graph node; candle would give it a zero-filled gradient
//! buffer and an addition of its own.

use crate::model::kernels::{column_sums, matmul, View};

/// `[rows, inputs] · w_ihᵀ + b_ih` -> `[rows, outputs]`.
pub(super) fn forward(x: &[f32], w_ih: &[f32], b_ih: &[f32], rows: usize, inputs: usize) -> Vec<f32> {
    let outputs = b_ih.len();
    let mut y = vec![0f32; rows * outputs];
    matmul(rows, outputs, inputs, &mut y, false, View::rows(x, inputs), View::transposed(w_ih, inputs));
    for row in y.chunks_exact_mut(outputs) {
        row.iter_mut().zip(b_ih).for_each(|(v, b)| *v += b);
    }
    y
}

/// The gradients of `x`, `w_ih` and `b_ih` from that of the output, `g` (`[rows, outputs]`);
/// `x`'s only when asked (a first layer's input is data).
pub(super) struct Gradients {
    pub dx: Option<Vec<f32>>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

pub(super) fn backward(g: &[f32], x: &[f32], w_ih: &[f32], rows: usize, inputs: usize, want_dx: bool) -> Gradients {
    let outputs = w_ih.len() / inputs.max(1);
    let db = column_sums(g, outputs);
    let mut dw = vec![0f32; outputs * inputs];
    matmul(outputs, inputs, rows, &mut dw, false, View::transposed(g, outputs), View::rows(x, inputs));
    let dx = want_dx.then(|| {
        let mut dx = vec![0f32; rows * inputs];
        matmul(rows, inputs, outputs, &mut dx, false, View::rows(g, outputs), View::rows(w_ih, inputs));
        dx
    });
    Gradients { dx, dw, db }
}
