//! The CPU op against the candle-composed cells, finite differences and PyTorch; thread-count
//! independence; bad shapes. The timing is `examples/recurrent_timing.rs`.

mod pytorch;

use candle_core::{Device, Tensor, Var};

use super::{sequence, Cell};
use crate::rng::Rng;

const CELLS: [Cell; 3] = [Cell::Rnn, Cell::Lstm, Cell::Gru];

fn random(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal() * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// A layer's input and weights as variables: x, w_ih, w_hh, b_ih, b_hh.
struct Layer {
    cell: Cell,
    vars: Vec<Var>,
}

impl Layer {
    /// PyTorch's init scale, 1/sqrt(hidden), so that the gates neither saturate nor vanish.
    fn new(cell: Cell, batch: usize, time: usize, input: usize, hidden: usize, seed: u64) -> Self {
        let (gh, scale) = (cell.gates() * hidden, 1.0 / (hidden as f32).sqrt());
        let shapes = [vec![batch, time, input], vec![gh, input], vec![gh, hidden], vec![gh], vec![gh]];
        let vars = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Var::from_tensor(&random(s, seed + i as u64, if i == 0 { 1.0 } else { scale })).unwrap())
            .collect();
        Self { cell, vars }
    }

    fn run_with(&self, params: &[Tensor], reverse: bool, portable: bool) -> Tensor {
        let [x, w_ih, w_hh, b_ih, b_hh] = params else { unreachable!() };
        sequence(self.cell, x, w_ih, w_hh, b_ih, b_hh, reverse, portable).unwrap()
    }

    fn run(&self, reverse: bool, portable: bool) -> Tensor {
        let params: Vec<Tensor> = self.vars.iter().map(|v| v.as_tensor().clone()).collect();
        self.run_with(&params, reverse, portable)
    }

    /// The output and the gradients of `sum(output * upstream)` for x and the four weights.
    fn output_and_gradients(&self, reverse: bool, portable: bool, upstream: &Tensor) -> Vec<Vec<f32>> {
        let y = self.run(reverse, portable);
        let grads = (&y * upstream).unwrap().sum_all().unwrap().backward().unwrap();
        let mut all = vec![values(&y)];
        all.extend(self.vars.iter().map(|v| values(grads.get(v).expect("every input gets a gradient"))));
        all
    }
}

const NAMES: [&str; 6] = ["output", "dx", "dw_ih", "dw_hh", "db_ih", "db_hh"];

/// Largest difference relative to the largest value of `want`.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn cpu_op_matches_the_composed_cells() {
    // odd shapes: batch 1, time 1, hidden not a multiple of 8, a batch that is not a multiple
    // of the row blocks; and hidden 32, where gemm reads W_hh in place instead of packing it
    let shapes = [(3, 5, 4, 6), (1, 1, 3, 5), (1, 7, 2, 9), (19, 4, 3, 3), (4, 12, 5, 17), (18, 6, 7, 32)];
    for (batch, time, input, hidden) in shapes {
        for cell in CELLS {
            for reverse in [false, true] {
                let layer = Layer::new(cell, batch, time, input, hidden, 40);
                let upstream = random(&[batch, time, hidden], 7, 1.0);
                let fast = layer.output_and_gradients(reverse, false, &upstream);
                let portable = layer.output_and_gradients(reverse, true, &upstream);
                for ((got, want), name) in fast.iter().zip(&portable).zip(NAMES) {
                    let err = relative_error(got, want);
                    assert!(
                        err < 1e-5,
                        "{cell:?} reverse={reverse} [{batch}, {time}, {input}] -> {hidden}: {name} differs by {err:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let (batch, time, input, hidden) = (2, 4, 3, 3);
    for cell in CELLS {
        for reverse in [false, true] {
            let layer = Layer::new(cell, batch, time, input, hidden, 60);
            let upstream = random(&[batch, time, hidden], 8, 1.0);
            let up = values(&upstream);
            let analytic = layer.output_and_gradients(reverse, false, &upstream);
            let params: Vec<Tensor> = layer.vars.iter().map(|v| v.as_tensor().clone()).collect();
            // the loss summed in f64, so that its rounding does not swamp the differences
            let loss = |params: &[Tensor]| -> f64 {
                let y = values(&layer.run_with(params, reverse, false));
                y.iter().zip(&up).map(|(y, u)| f64::from(*y) * f64::from(*u)).sum()
            };
            let eps = 3e-3f32;
            for (p, grad) in analytic[1..].iter().enumerate() {
                let base = values(&params[p]);
                for (i, g) in grad.iter().enumerate() {
                    let at = |delta: f32| {
                        let mut v = base.clone();
                        v[i] += delta;
                        let mut moved = params.clone();
                        moved[p] = Tensor::from_vec(v, params[p].shape(), &Device::Cpu).unwrap();
                        loss(&moved)
                    };
                    let numeric = (at(eps) - at(-eps)) / f64::from(2.0 * eps);
                    assert!(
                        (numeric - f64::from(*g)).abs() < 2e-3 * (1.0 + numeric.abs()),
                        "{cell:?} reverse={reverse}: {}[{i}] is {g}, finite differences give {numeric}",
                        NAMES[p + 1]
                    );
                }
            }
        }
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn threads_never_change_a_number() {
    // several row blocks with a partial one; and batch * time past the length at which weight
    // gradients are split along their reduction
    let cases = [
        (Cell::Rnn, 37, 6, 5, 13),
        (Cell::Lstm, 37, 6, 5, 13),
        (Cell::Gru, 37, 6, 5, 13),
        (Cell::Lstm, 64, 70, 8, 11),
        (Cell::Gru, 20, 5, 6, 32),
    ];
    for (cell, batch, time, input, hidden) in cases {
        for reverse in [false, true] {
            let layer = Layer::new(cell, batch, time, input, hidden, 80);
            let upstream = random(&[batch, time, hidden], 9, 1.0);
            let one = in_pool(1, || layer.output_and_gradients(reverse, false, &upstream));
            for threads in [2, 3, 8] {
                let other = in_pool(threads, || layer.output_and_gradients(reverse, false, &upstream));
                for ((a, b), name) in one.iter().zip(&other).zip(NAMES) {
                    let differ = a.iter().zip(b).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                    assert_eq!(
                        differ, 0,
                        "{cell:?} reverse={reverse}: {differ} values of {name} differ, 1 vs {threads} threads"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_shapes_are_refused_with_their_names() {
    let layer = Layer::new(Cell::Lstm, 2, 3, 4, 5, 90);
    let p: Vec<Tensor> = layer.vars.iter().map(|v| v.as_tensor().clone()).collect();
    let err = |cell: Cell, x: &Tensor, w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor| {
        sequence(cell, x, w_ih, w_hh, b_ih, &p[4], false, false).unwrap_err().to_string()
    };
    let gru = err(Cell::Gru, &p[0], &p[1], &p[2], &p[3]);
    assert!(gru.contains("GRU") && gru.contains("w_hh is [20, 5], expected [15, 5]"), "{gru}");
    let rank = err(Cell::Lstm, &p[0].flatten_from(1).unwrap(), &p[1], &p[2], &p[3]);
    assert!(rank.contains("the input is [2, 12]"), "{rank}");
    let features = err(Cell::Lstm, &random(&[2, 3, 7], 1, 1.0), &p[1], &p[2], &p[3]);
    assert!(features.contains("w_ih is [20, 4], expected [20, 7]"), "{features}");
    let bias = err(Cell::Lstm, &p[0], &p[1], &p[2], &random(&[19], 1, 1.0));
    assert!(bias.contains("b_ih is [19], expected [20]"), "{bias}");
    let empty = err(Cell::Lstm, &random(&[2, 0, 4], 1, 1.0), &p[1], &p[2], &p[3]);
    assert!(empty.contains("is empty"), "{empty}");
}

#[test]
fn a_non_contiguous_input_gives_the_same_output() {
    let layer = Layer::new(Cell::Gru, 3, 4, 5, 6, 100);
    let x = layer.vars[0].as_tensor();
    // the same values, stored time-major and seen through a transpose
    let strided = x.transpose(0, 1).unwrap().contiguous().unwrap().transpose(0, 1).unwrap();
    assert!(!strided.is_contiguous());
    let [_, w_ih, w_hh, b_ih, b_hh] = &layer.vars[..] else { unreachable!() };
    let y = sequence(Cell::Gru, &strided, w_ih, w_hh, b_ih, b_hh, false, false).unwrap();
    assert_eq!(values(&y), values(&layer.run(false, false)));
}

#[test]
fn data_input_gets_no_gradient_and_the_weights_the_same_ones() {
    // a first layer's input is data: the op skips its gradient, the weights' are unchanged
    let layer = Layer::new(Cell::Lstm, 3, 4, 5, 6, 120);
    let upstream = random(&[3, 4, 6], 11, 1.0);
    let with_x = layer.output_and_gradients(false, false, &upstream);
    let x = layer.vars[0].as_tensor().detach();
    let [_, w_ih, w_hh, b_ih, b_hh] = &layer.vars[..] else { unreachable!() };
    let y = sequence(Cell::Lstm, &x, w_ih, w_hh, b_ih, b_hh, false, false).unwrap();
    let grads = (y * &upstream).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none());
    for (i, v) in layer.vars.iter().enumerate().skip(1) {
        assert_eq!(values(grads.get(v).unwrap()), with_x[i + 1], "{}", NAMES[i + 1]);
    }
}
