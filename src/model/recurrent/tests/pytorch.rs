//! One case per cell against PyTorch 2.15 (`bench/recurrent_pytorch_values.py` prints these
//! numbers): a bidirectional layer's two directions and the gradients of its forward direction.

use candle_core::{Device, Tensor, Var};

use super::values;
use crate::model::recurrent::{sequence, Cell};

struct PyTorchCase {
    cell: Cell,
    forward: &'static [f32],
    reverse: &'static [f32],
    dx: &'static [f32],
    dw_hh: &'static [f32],
}

/// Value k of the tensor is `scale * sin(0.7 k + offset)`, computed in f64 as the script does.
fn formula(shape: &[usize], offset: f64, scale: f64) -> Var {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|k| (scale * (0.7 * k as f64 + offset).sin()) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 2e-6 + 1e-5 * w.abs(), "{what}[{i}]: {g}, PyTorch {w}");
    }
}

#[test]
fn pytorch_gives_the_same_numbers() {
    let (batch, time, input, hidden) = (2, 3, 2, 3);
    for case in CASES {
        let gh = case.cell.gates() * hidden;
        let x = formula(&[batch, time, input], 0.0, 1.0);
        for (reverse, base, want) in [(false, 1.0, case.forward), (true, 5.0, case.reverse)] {
            let w_ih = formula(&[gh, input], base, 0.5);
            let w_hh = formula(&[gh, hidden], base + 1.0, 0.5);
            let b_ih = formula(&[gh], base + 2.0, 0.5);
            let b_hh = formula(&[gh], base + 3.0, 0.5);
            for portable in [false, true] {
                let what = format!("{:?} reverse={reverse} portable={portable}", case.cell);
                let y = sequence(case.cell, &x, &w_ih, &w_hh, &b_ih, &b_hh, reverse, portable).unwrap();
                close(&values(&y), want, &format!("{what}: output"));
                if !reverse {
                    let n = batch * time * hidden;
                    let up: Vec<f32> = (0..n).map(|k| (0.3 * k as f64).cos() as f32).collect();
                    let up = Tensor::from_vec(up, (batch, time, hidden), &Device::Cpu).unwrap();
                    let grads = (y * up).unwrap().sum_all().unwrap().backward().unwrap();
                    close(&values(grads.get(&x).unwrap()), case.dx, &format!("{what}: dx"));
                    close(&values(grads.get(&w_hh).unwrap()), case.dw_hh, &format!("{what}: dw_hh"));
                }
            }
        }
    }
}

const CASES: [PyTorchCase; 3] = [
    PyTorchCase {
        cell: Cell::Rnn,
        forward: &[
            0.011582244,
            -0.6360347,
            -0.8265205,
            0.46973962,
            0.1872782,
            -0.9742627,
            0.037221342,
            -0.5376287,
            -0.8425996,
            -0.82158536,
            -0.7930744,
            -0.11484556,
            -0.7981272,
            -0.20318843,
            -0.72970665,
            0.14447242,
            0.16129667,
            -0.95832026,
        ],
        reverse: &[
            0.7693279,
            0.9003515,
            -0.09343311,
            0.33088475,
            0.9317908,
            0.5129506,
            0.6405724,
            0.61519367,
            0.4356825,
            0.8544604,
            0.80928135,
            -0.69815964,
            0.9258186,
            0.80838513,
            -0.60846037,
            0.23179659,
            0.8408379,
            0.8217626,
        ],
        dx: &[
            0.56336987,
            0.44524646,
            0.3595458,
            0.26611486,
            -0.15125223,
            -0.015431292,
            0.037924856,
            0.24801749,
            -0.34847784,
            -0.091351904,
            -0.06749411,
            -0.11564512,
        ],
        dw_hh: &[
            0.370444,
            -0.03916321,
            -0.01981622,
            0.40113407,
            0.26204932,
            0.032401443,
            0.058988348,
            0.1273236,
            0.20640792,
        ],
    },
    PyTorchCase {
        cell: Cell::Lstm,
        forward: &[
            0.14209156,
            0.04401213,
            0.02035646,
            0.2754689,
            0.0040959413,
            0.019361995,
            0.21420038,
            0.054734685,
            0.039010745,
            0.045456786,
            0.059163503,
            0.05985437,
            0.12062522,
            0.076835856,
            0.07481186,
            0.2594208,
            0.048146866,
            0.04251667,
        ],
        reverse: &[
            -0.15685154,
            -0.010837215,
            0.046223443,
            -0.03755375,
            0.09726408,
            -0.03104411,
            -0.27064082,
            -0.02230853,
            0.17756069,
            -0.63245595,
            -0.22789791,
            0.1855474,
            -0.3620206,
            -0.11181371,
            0.11479036,
            0.021472985,
            0.1261591,
            -0.09546123,
        ],
        dx: &[
            0.04087465,
            -0.023786383,
            0.030543383,
            -0.0036284507,
            0.0077426396,
            -0.0010302318,
            -0.004717797,
            -0.035559714,
            -0.048017338,
            -0.027396703,
            -0.021890488,
            -0.010129352,
        ],
        dw_hh: &[
            -0.0026255427,
            -0.0026063484,
            -0.0038089838,
            -0.0065157334,
            -0.0016206667,
            -0.0018425074,
            -0.0029586344,
            -0.00056902523,
            -0.0005844253,
            -0.0015352999,
            -0.00082963787,
            -0.0013456966,
            1.360448e-05,
            -0.00029400203,
            -0.0003598928,
            -0.0017445883,
            -0.00011599498,
            -0.00016645303,
            0.0061115515,
            -0.0017653273,
            -0.0048981463,
            -0.005671199,
            0.00056434417,
            -0.00051284546,
            -0.022225186,
            -0.0022477834,
            -0.0028108098,
            -0.004550317,
            -0.0032860087,
            -0.005157011,
            -0.0066860123,
            -0.0023186945,
            -0.0026652343,
            -0.004773175,
            -0.00038008232,
            -0.000744708,
        ],
    },
    PyTorchCase {
        cell: Cell::Gru,
        forward: &[
            0.26964927,
            0.123900905,
            0.13224417,
            0.43021366,
            -0.070494294,
            0.16846693,
            0.57277334,
            0.23467635,
            0.19044481,
            0.3310229,
            0.5618727,
            0.16934118,
            0.46403262,
            0.61180866,
            0.2922161,
            0.5193645,
            0.12769994,
            0.31697375,
        ],
        reverse: &[
            -0.1676904,
            -0.027522478,
            -0.04061808,
            0.0047252774,
            0.12441209,
            -0.11432432,
            -0.2952667,
            -0.067831635,
            0.25475135,
            -0.61735976,
            -0.4062812,
            0.5302762,
            -0.37396887,
            -0.14554484,
            0.17738204,
            0.08420707,
            0.1429494,
            -0.19224694,
        ],
        dx: &[
            -0.1540732,
            -0.35679287,
            0.029984444,
            -0.089865565,
            0.15564191,
            0.10732875,
            0.12568119,
            0.18219794,
            0.094100565,
            0.18320997,
            -0.041433923,
            0.018766649,
        ],
        dw_hh: &[
            -0.021412257,
            -0.036703765,
            -0.011445061,
            0.0009505104,
            0.0037777876,
            0.0004595666,
            0.0011830863,
            0.00013969187,
            0.00062635157,
            0.02300278,
            0.035867304,
            0.011462289,
            0.04596185,
            0.016880512,
            0.021145571,
            0.00895925,
            0.0036424208,
            0.0035332267,
            -0.041733023,
            -0.094552115,
            -0.024333464,
            -0.036801137,
            -0.01563037,
            -0.014905126,
            -0.036989234,
            0.00022761244,
            -0.01427647,
        ],
    },
];
