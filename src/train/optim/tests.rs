//! The optimizer's rules against the formulas, and the portable path against the fused CPU
//! rule: same numbers, state on the device, nothing copied to the host by a step.
use super::*;
use candle_core::{DType, Device};

/// Minimises (p - 3)^2 and checks every optimizer gets there.
#[test]
fn optimizers_minimise_a_quadratic() {
    for (kind, lr) in [(OptimizerKind::Sgd, 0.1), (OptimizerKind::Adam, 0.1), (OptimizerKind::AdamW, 0.1)] {
        let var = Var::new(&[0f32, 10.0], &Device::Cpu).unwrap();
        let params = vec![("p".to_string(), var.clone())];
        let mut opt = Optimizer::new(kind, 0.9, 0.0, 1);
        for _ in 0..300 {
            let loss = (var.as_tensor() - 3.0).unwrap().sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&params, &grads, lr).unwrap();
        }
        let v: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|x| (x - 3.0).abs() < 0.05), "{kind:?}: {v:?}");
    }
}

#[test]
fn adam_first_step_moves_by_lr() {
    // With bias correction, Adam's first update is lr * sign(grad).
    let var = Var::new(&[1f32, -1.0], &Device::Cpu).unwrap();
    let params = vec![("p".to_string(), var.clone())];
    let mut opt = Optimizer::new(OptimizerKind::Adam, 0.0, 0.0, 1);
    let grads = (var.as_tensor() * 5.0).unwrap().sum_all().unwrap().backward().unwrap();
    opt.step(&params, &grads, 0.01).unwrap();
    let v: Vec<f32> = var.as_tensor().to_vec1().unwrap();
    assert!((v[0] - 0.99).abs() < 1e-5 && (v[1] + 1.01).abs() < 1e-5, "{v:?}");
}

/// Both paths' updates equal the textbook formulas written with tensor operations.
#[test]
fn matches_the_formulas_step_by_step() {
    let p0 = [0.5f32, -1.5, 2.0, 0.0];
    let grads_seq = [[0.1f32, -0.2, 0.3, 0.0], [-0.3, 0.1, 0.2, 0.5], [0.05, 0.05, -0.4, 0.1]];
    let both_paths = [false, true].into_iter().flat_map(|portable| {
        [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW].map(|kind| (portable, kind))
    });
    for (portable, kind) in both_paths {
        let (lr, mu, wd) = (0.1f64, 0.9f64, 0.01f64);
        let var = Var::new(&p0, &Device::Cpu).unwrap();
        let params = vec![("p".to_string(), var.clone())];
        let mut opt = Optimizer::new(kind, mu, wd, 1);
        opt.portable = portable;
        let (mut p, mut m, mut v) = (p0.map(f64::from), [0f64; 4], [0f64; 4]);
        for (t, g) in grads_seq.iter().enumerate() {
            // d/dp sum(p * g) = g
            let gt = Tensor::new(g, &Device::Cpu).unwrap();
            let grads = (var.as_tensor() * &gt).unwrap().sum_all().unwrap().backward().unwrap();
            opt.step(&params, &grads, lr).unwrap();
            let t = t as i32 + 1;
            for i in 0..4 {
                let g = f64::from(g[i]);
                match kind {
                    OptimizerKind::Sgd => {
                        let g = g + wd * p[i];
                        m[i] = mu * m[i] + g;
                        p[i] -= lr * m[i];
                    }
                    _ => {
                        let adamw = kind == OptimizerKind::AdamW;
                        let g = if adamw { g } else { g + wd * p[i] };
                        m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                        v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                        if adamw {
                            p[i] *= 1.0 - lr * wd;
                        }
                        let mh = m[i] / (1.0 - BETA1.powi(t));
                        let vh = v[i] / (1.0 - BETA2.powi(t));
                        p[i] -= lr * mh / (vh.sqrt() + EPS);
                    }
                }
            }
        }
        let got: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        for i in 0..4 {
            let (got, want) = (f64::from(got[i]), p[i]);
            assert!((got - want).abs() < 1e-5, "{kind:?} portable {portable} [{i}]: {got} vs {want}");
        }
    }
}

/// A small model's parameters: a weight and a bias that train, a frozen weight and a buffer that
/// no loss reads (batch norm's running statistics): the last two must never move.
fn toy_params() -> Vec<(String, Var)> {
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n).map(|i| (((i * 7 + seed * 3) % 11) as f32 - 5.0) * 0.13 + 0.01 * seed as f32).collect()
    };
    let var =
        |v: Vec<f32>, shape: &[usize]| Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap();
    vec![
        ("fc.weight".into(), var(values(12, 1), &[3, 4])),
        ("fc.bias".into(), var(values(4, 2), &[4])),
        ("frozen.weight".into(), var(values(6, 3), &[6])),
        ("bn.running_mean".into(), var(values(3, 4), &[3])),
    ]
}

/// Step `t`'s loss: squared error of a linear map on fixed inputs against targets that change
/// with `t`, plus a term through the frozen weight. Its gradients depend on the parameters, so a
/// difference in one update shows in every later one.
fn toy_grads(params: &[(String, Var)], t: usize) -> GradStore {
    let x: Vec<f32> = (0..15).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.4).collect();
    let x = Tensor::from_vec(x, (5, 3), &Device::Cpu).unwrap();
    let y: Vec<f32> = (0..20).map(|i| (((i + t * 3) % 9) as f32 - 4.0) * 0.6).collect();
    let y = Tensor::from_vec(y, (5, 4), &Device::Cpu).unwrap();
    let out = x.matmul(params[0].1.as_tensor()).unwrap().broadcast_add(params[1].1.as_tensor()).unwrap();
    let fit = (out - y).unwrap().sqr().unwrap().sum_all().unwrap();
    let frozen = params[2].1.as_tensor().sqr().unwrap().sum_all().unwrap();
    (fit + frozen).unwrap().backward().unwrap()
}

fn values(var: &Var) -> Vec<f32> {
    var.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
}

/// Within 1e-6 of each other, relative (to 1e-3 for values near zero).
fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1e-3);
        assert!((x - y).abs() <= 1e-6 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

struct Case {
    kind: OptimizerKind,
    momentum: f64,
    weight_decay: f64,
    betas: (f64, f64),
}

const CASES: [Case; 7] = [
    Case { kind: OptimizerKind::Sgd, momentum: 0.0, weight_decay: 0.0, betas: (BETA1, BETA2) },
    Case { kind: OptimizerKind::Sgd, momentum: 0.9, weight_decay: 0.0, betas: (BETA1, BETA2) },
    Case { kind: OptimizerKind::Sgd, momentum: 0.0, weight_decay: 0.05, betas: (BETA1, BETA2) },
    Case { kind: OptimizerKind::Sgd, momentum: 0.9, weight_decay: 0.01, betas: (BETA1, BETA2) },
    Case { kind: OptimizerKind::Adam, momentum: 0.0, weight_decay: 0.0, betas: (BETA1, BETA2) },
    // a GAN's betas, and L2 decay
    Case { kind: OptimizerKind::Adam, momentum: 0.0, weight_decay: 0.01, betas: (0.5, 0.999) },
    Case { kind: OptimizerKind::AdamW, momentum: 0.0, weight_decay: 0.05, betas: (0.8, 0.99) },
];

fn optimizer(case: &Case, portable: bool) -> Optimizer {
    let mut opt = Optimizer::new(case.kind, case.momentum, case.weight_decay, 4);
    opt.betas = case.betas;
    opt.frozen = vec![false, false, true];
    opt.portable = portable;
    opt
}

#[test]
fn portable_updates_equal_the_fused_rule_for_every_optimizer() {
    for case in &CASES {
        for clip in [None, Some(0.5)] {
            let what = format!(
                "{:?} momentum {} decay {} betas {:?} clip {clip:?}",
                case.kind, case.momentum, case.weight_decay, case.betas
            );
            let (fused_params, device_params) = (toy_params(), toy_params());
            let initial: Vec<Vec<f32>> = fused_params.iter().map(|(_, v)| values(v)).collect();
            let (mut fused, mut device) = (optimizer(case, false), optimizer(case, true));
            for t in 0..5 {
                fused.step_clipped(&fused_params, &toy_grads(&fused_params, t), 0.05, clip).unwrap();
                device.step_clipped(&device_params, &toy_grads(&device_params, t), 0.05, clip).unwrap();
                for ((name, a), (_, b)) in fused_params.iter().zip(&device_params) {
                    assert_close(&values(a), &values(b), &format!("{what}: step {t} {name}"));
                }
            }
            for (i, (name, var)) in device_params.iter().enumerate() {
                assert_ne!(values(var) == initial[i], i < 2, "{what}: {name} moved iff it trains");
            }
            let (a, b) = (fused.host_state().unwrap(), device.host_state().unwrap());
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                // the fused rule keeps a buffer of zeros where plain SGD has no momentum
                let zeros_if_empty =
                    |x: &[f32], like: &[f32]| if x.is_empty() { vec![0.0; like.len()] } else { x.to_vec() };
                assert_close(&a.m, &zeros_if_empty(&b.m, &a.m), &format!("{what}: m of parameter {i}"));
                assert_close(&a.v, &zeros_if_empty(&b.v, &a.v), &format!("{what}: v of parameter {i}"));
            }
            assert!(b[2].m.is_empty() && b[3].m.is_empty(), "{what}: no state for the frozen weight and the buffer");
        }
    }
}

#[test]
fn the_clipping_scale_on_the_device_equals_the_hosts() {
    let grads: Vec<Tensor> = [(7usize, 0.3f32), (300, -0.05), (1, 2.5), (4096, 0.01)]
        .iter()
        .map(|&(n, a)| {
            let v: Vec<f32> = (0..n).map(|i| a * (1.0 + (i % 13) as f32 * 0.1)).collect();
            Tensor::from_vec(v, n, &Device::Cpu).unwrap()
        })
        .collect();
    for max_norm in [0.01, 0.5, 1.0, 3.0, 1e6] {
        let host = host_clip_scale(grads.iter(), max_norm).unwrap();
        let device = portable::clip_scale(grads.iter(), max_norm).unwrap().unwrap();
        assert_eq!(device.dims(), &[] as &[usize]);
        let device = f64::from(device.to_scalar::<f32>().unwrap());
        assert!((host - device).abs() <= 1e-6 * host, "max_norm {max_norm}: host {host}, device {device}");
        assert!(host <= 1.0 && (max_norm < 1e3 || host == 1.0 && device == 1.0), "{max_norm}: {host} {device}");
    }
    assert!(portable::clip_scale(std::iter::empty(), 1.0).unwrap().is_none());
}

#[test]
fn portable_steps_keep_the_state_on_the_device_and_copy_nothing_to_the_host() {
    let case = &CASES[6];
    let params = toy_params();
    let mut device = optimizer(case, true);
    for t in 0..5 {
        device.step_clipped(&params, &toy_grads(&params, t), 0.05, Some(0.5)).unwrap();
    }
    assert_eq!(device.host_copies(), 0, "a step copies nothing between the host and the device");
    assert!(device.state_on_device());
    let mut fused = optimizer(case, false);
    fused.step(&params, &toy_grads(&params, 0), 0.05).unwrap();
    assert!(!fused.state_on_device(), "the fused rule keeps host vectors");

    // a checkpoint reads the state back once: m and v of the two trained parameters
    let saved = device.host_state().unwrap();
    assert_eq!(device.host_copies(), 4);
    assert!(saved[0].m.len() == 12 && saved[0].v.len() == 12 && saved[1].v.len() == 4);

    // and a resumed optimizer, on either path, goes on as the one that was never stopped
    let (resumed_params, fused_params) = (toy_params(), toy_params());
    for (dst, src) in resumed_params.iter().chain(&fused_params).zip(params.iter().cycle()) {
        dst.1.set(src.1.as_tensor()).unwrap();
    }
    let mut resumed = optimizer(case, true);
    resumed.load_host_state(&resumed_params, saved.clone()).unwrap();
    let mut cpu = optimizer(case, false);
    cpu.load_host_state(&fused_params, saved).unwrap();
    assert!(resumed.state_on_device() && !cpu.state_on_device());
    for opt in [&mut device, &mut resumed, &mut cpu] {
        opt.steps = 5;
    }
    device.step_clipped(&params, &toy_grads(&params, 5), 0.05, Some(0.5)).unwrap();
    resumed.step_clipped(&resumed_params, &toy_grads(&resumed_params, 5), 0.05, Some(0.5)).unwrap();
    cpu.step_clipped(&fused_params, &toy_grads(&fused_params, 5), 0.05, Some(0.5)).unwrap();
    for i in 0..4 {
        assert_eq!(values(&params[i].1), values(&resumed_params[i].1), "parameter {i}");
        assert_close(&values(&params[i].1), &values(&fused_params[i].1), &format!("parameter {i} on the CPU path"));
    }
}

#[test]
fn a_checkpoints_state_of_the_wrong_size_is_refused_naming_the_parameter() {
    let params = toy_params();
    let mut state = vec![ParamState::default(); 4];
    state[1].v = vec![0.0; 5];
    for portable in [false, true] {
        let mut opt = optimizer(&CASES[4], portable);
        let e = opt.load_host_state(&params, state.clone()).unwrap_err().to_string();
        assert!(e.contains("`v`") && e.contains("fc.bias") && e.contains("5 values"), "{e}");
        let e = opt.load_host_state(&params, state[..2].to_vec()).unwrap_err().to_string();
        assert!(e.contains("2 parameters"), "{e}");
    }
    let _ = DType::F32;
}
