//! Layer statistics while training: weight and gradient histograms, the size of each update
//! relative to its weights, and the share of ReLU units dead for a whole batch.

/// Bins of a histogram.
pub const BINS: usize = 64;

/// Counts of values in `BINS` equal bins over `[min, max]` (all in the first bin when equal).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub min: f32,
    pub max: f32,
    pub counts: [u32; BINS],
}

/// One layer's figures at a stats step.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStat {
    /// The weight tensor's name (`fc1.weight`, `conv2.weight`).
    pub name: String,
    pub weight: Histogram,
    pub grad: Histogram,
    /// ‖w′ − w‖ / ‖w‖ over the optimizer step.
    pub update_ratio: f32,
    /// The share of units that were 0 for the whole batch, when a ReLU follows the layer.
    pub dead_relu: Option<f32>,
}

/// Every layer's figures at one step (`Event::LayerStats`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    pub step: usize,
    pub layers: Vec<LayerStat>,
}

use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::Result;
use crate::model::{Activation, Tap};

impl Histogram {
    /// The histogram of the finite values (others are left out).
    pub fn of(values: &[f32]) -> Self {
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for v in values.iter().filter(|v| v.is_finite()) {
            min = min.min(*v);
            max = max.max(*v);
        }
        let mut counts = [0u32; BINS];
        if min > max {
            return Self { min: 0.0, max: 0.0, counts };
        }
        let width = (max - min) / BINS as f32;
        for v in values.iter().filter(|v| v.is_finite()) {
            let bin = if width > 0.0 { ((v - min) / width) as usize } else { 0 };
            counts[bin.min(BINS - 1)] += 1;
        }
        Self { min, max, counts }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }
}

/// Steps between stats steps at least and at most, and the share of training time they may take.
const MIN_EVERY: usize = 4;
const MAX_EVERY: usize = 1000;
const BUDGET: f64 = 0.01;
/// Stats sent per second at most (the view cannot show more).
const MIN_GAP: Duration = Duration::from_millis(250);

/// Collects layer statistics on some training steps while the view is open. The interval adapts
/// so that collecting takes about 1% of the training time.
#[derive(Debug)]
pub struct StatsCollector {
    next_due: usize,
    every: usize,
    last_sent: Option<Instant>,
    /// Seconds spent collecting on the current stats step.
    cost_s: f64,
    /// Seconds of a training step (moving average), told by the session.
    step_s: Option<f64>,
    /// Every run layer of the tapped forward in order: its name, and a ReLU layer's dead share.
    taps: Vec<(String, Option<f32>)>,
    /// Per weight: name, histograms, weights before the update.
    pending: Vec<(usize, String, Histogram, Histogram, Vec<f32>)>,
    ready: Option<LayerStats>,
    step: usize,
}

impl Default for StatsCollector {
    fn default() -> Self {
        Self {
            next_due: 0,
            every: MIN_EVERY,
            last_sent: None,
            cost_s: 0.0,
            step_s: None,
            taps: Vec::new(),
            pending: Vec::new(),
            ready: None,
            step: 0,
        }
    }
}

/// Whether a parameter is a layer's weight (the rows of the view): `fc1.weight`,
/// `lstm1.weight_ih_l0`; biases and batch norm's buffers are left out.
pub fn is_weight(name: &str) -> bool {
    name.rsplit('.').next().is_some_and(|last| last.starts_with("weight"))
}

/// The dead share per layer with weights. A ReLU layer of its own (dense, batch norm, then
/// `activation`) has no weights and so no row: it counts for the last layer with weights before it.
fn credit_dead(taps: &[(String, Option<f32>)], params: &[(String, Var)]) -> Vec<(String, f32)> {
    let weighted = |name: &str| params.iter().any(|(p, _)| p.split('.').next() == Some(name));
    let mut owner: Option<&str> = None;
    let mut dead = Vec::new();
    for (name, share) in taps {
        if weighted(name) {
            owner = Some(name);
        }
        if let (Some(share), Some(owner)) = (share, owner) {
            dead.push((owner.to_string(), *share));
        }
    }
    dead
}

impl StatsCollector {
    /// Whether the training step `step` (0-based, global) collects statistics.
    pub fn due(&self, step: usize) -> bool {
        step >= self.next_due && self.last_sent.is_none_or(|t| t.elapsed() >= MIN_GAP)
    }

    /// Steps between stats steps now.
    pub fn every(&self) -> usize {
        self.every
    }

    /// Starts a stats step.
    pub fn begin(&mut self, step: usize) {
        self.step = step;
        self.cost_s = 0.0;
        self.taps.clear();
        self.pending.clear();
    }

    /// A run layer's output in the tapped forward: the share of a ReLU layer's units (features,
    /// or channels over every position) that are 0 for the whole batch.
    pub fn observe(&mut self, tap: &Tap<'_>) {
        let t0 = Instant::now();
        let share = if tap.activation == Some(Activation::Relu) { dead_share(tap.output) } else { None };
        self.taps.push((tap.name.to_string(), share));
        self.cost_s += t0.elapsed().as_secs_f64();
    }

    /// After the backward, before the optimizer: histograms of each weight and its gradient, and
    /// a copy of the weight to measure the update by.
    pub fn after_backward(&mut self, params: &[(String, Var)], trainable: &[bool], grads: &GradStore) -> Result<()> {
        let t0 = Instant::now();
        for (i, ((name, var), train)) in params.iter().zip(trainable).enumerate() {
            if !train || !is_weight(name) {
                continue;
            }
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let w: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            self.pending.push((i, name.clone(), Histogram::of(&w), Histogram::of(&g), w));
        }
        self.cost_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// After the optimizer: each weight's update relative to it, the statistics made ready, and
    /// the next stats step chosen.
    pub fn after_step(&mut self, params: &[(String, Var)]) -> Result<()> {
        let t0 = Instant::now();
        let dead = credit_dead(&self.taps, params);
        let mut layers = Vec::with_capacity(self.pending.len());
        for (i, name, weight, grad, before) in self.pending.drain(..) {
            let after: Vec<f32> = params[i].1.as_tensor().flatten_all()?.to_vec1()?;
            let (mut du, mut w) = (0f64, 0f64);
            for (a, b) in after.iter().zip(&before) {
                du += f64::from(a - b).powi(2);
                w += f64::from(*b).powi(2);
            }
            let update_ratio = if w > 0.0 { (du / w).sqrt() as f32 } else { 0.0 };
            let prefix = name.split('.').next().unwrap_or("");
            let dead_relu = dead.iter().find(|(n, _)| n == prefix).map(|(_, s)| *s);
            layers.push(LayerStat { name, weight, grad, update_ratio, dead_relu });
        }
        self.cost_s += t0.elapsed().as_secs_f64();
        self.ready = Some(LayerStats { step: self.step, layers });
        self.last_sent = Some(Instant::now());
        self.every = match self.step_s {
            Some(step_s) if step_s > 0.0 => {
                ((self.cost_s / (BUDGET * step_s)).ceil() as usize).clamp(MIN_EVERY, MAX_EVERY)
            }
            _ => MIN_EVERY,
        };
        self.next_due = self.step + self.every;
        Ok(())
    }

    /// A training step's time, for the interval (an ordinary step's, not a stats step's).
    pub fn step_time(&mut self, seconds: f64) {
        self.step_s = Some(self.step_s.map_or(seconds, |s| 0.9 * s + 0.1 * seconds));
    }

    /// The statistics of the last stats step, once.
    pub fn take(&mut self) -> Option<LayerStats> {
        self.ready.take()
    }
}

/// The share of units (the last axis) that are 0 for every row of a ReLU's output.
pub fn dead_share(output: &Tensor) -> Option<f32> {
    let units = *output.dims().last()?;
    let values: Vec<f32> = output.flatten_all().ok()?.to_vec1().ok()?;
    if units == 0 || values.is_empty() {
        return None;
    }
    let mut alive = vec![false; units];
    for row in values.chunks_exact(units) {
        for (a, v) in alive.iter_mut().zip(row) {
            *a |= *v > 0.0;
        }
    }
    Some(alive.iter().filter(|a| !**a).count() as f32 / units as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OptimizerKind;
    use crate::model::{Mode, ModelInput, ModelSpec, Network};
    use crate::rng::Rng;
    use crate::train::optim::Optimizer;
    use candle_core::Device;

    #[test]
    fn histograms_count_every_finite_value_once() {
        let mut rng = Rng::new(1);
        let mut v: Vec<f32> = (0..10_007).map(|_| rng.normal()).collect();
        let h = Histogram::of(&v);
        assert_eq!(h.total(), 10_007);
        assert_eq!(h.min, v.iter().copied().fold(f32::INFINITY, f32::min));
        assert_eq!(h.max, v.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        // the maximum lands in the last bin, not past it
        assert!(h.counts[BINS - 1] >= 1 && h.counts[0] >= 1);
        v.push(f32::NAN);
        assert_eq!(Histogram::of(&v).total(), 10_007);
        assert_eq!(Histogram::of(&[2.0; 5]).counts[0], 5);
        assert_eq!(Histogram::of(&[]).total(), 0);
    }

    /// One SGD step of a two-layer ReLU MLP with the stats collected; `bias` for the hidden layer.
    fn stats_step(bias: Option<f32>, lr: f64) -> (LayerStats, Vec<(String, f64)>) {
        stats_step_of("{ type = \"dense\", units = 8, activation = \"relu\" }, { type = \"dense\" }", bias, lr)
    }

    fn stats_step_of(layers: &str, bias: Option<f32>, lr: f64) -> (LayerStats, Vec<(String, f64)>) {
        let spec: ModelSpec = toml::from_str(&format!("layers = [{layers}]")).unwrap();
        let net = Network::new(&spec, &ModelInput::classify(&[5], 3), 4, &Device::Cpu).unwrap();
        if let Some(b) = bias {
            let (_, var) = net.params().iter().find(|(n, _)| n.ends_with(".bias")).unwrap();
            var.set(&var.as_tensor().ones_like().unwrap().affine(f64::from(b), 0.0).unwrap()).unwrap();
        }
        let x = Tensor::randn(0f32, 1.0, (16, 5), &Device::Cpu).unwrap();
        let mut collector = StatsCollector::default();
        assert!(collector.due(0));
        collector.begin(0);
        let logits = net.forward_tapped(&x, &mut Mode::Eval, &mut |tap| collector.observe(tap)).unwrap();
        let loss = logits.sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        collector.after_backward(net.params(), net.trainable(), &grads).unwrap();
        // lr · ‖g‖ / ‖w‖ per weight, before the step
        let expected = net
            .params()
            .iter()
            .filter(|(n, _)| is_weight(n))
            .map(|(n, v)| {
                let norm =
                    |t: &Tensor| f64::from(t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sqrt();
                (n.clone(), lr * norm(grads.get(v.as_tensor()).unwrap()) / norm(v.as_tensor()))
            })
            .collect();
        let mut sgd = Optimizer::new(OptimizerKind::Sgd, 0.0, 0.0, net.params().len());
        sgd.step_clipped(net.params(), &grads, lr, None).unwrap();
        collector.after_step(net.params()).unwrap();
        assert!(!collector.due(1), "the next stats step is at least {MIN_EVERY} steps on");
        (collector.take().unwrap(), expected)
    }

    #[test]
    fn a_layer_pushed_below_zero_is_all_dead() {
        let (stats, _) = stats_step(Some(-100.0), 0.1);
        assert_eq!(stats.layers.len(), 2, "{stats:?}");
        assert_eq!(stats.layers[0].dead_relu, Some(1.0));
        // the output layer has no ReLU
        assert_eq!(stats.layers[1].dead_relu, None);
        let (alive, _) = stats_step(Some(100.0), 0.1);
        assert_eq!(alive.layers[0].dead_relu, Some(0.0));
    }

    #[test]
    fn a_relu_layer_of_its_own_counts_for_the_layer_with_weights_before_it() {
        // dense -> batch norm -> ReLU: in evaluation the batch norm keeps the -100 of the bias
        let layers = "{ type = \"dense\", units = 8 }, { type = \"batchnorm\" }, \
                      { type = \"activation\", activation = \"relu\" }, { type = \"dense\" }";
        let (stats, _) = stats_step_of(layers, Some(-100.0), 0.1);
        let dead: Vec<_> = stats.layers.iter().map(|l| (l.name.as_str(), l.dead_relu)).collect();
        let bn = dead.iter().find(|(n, _)| n.starts_with("bn")).expect("the batch norm's weight has a row");
        assert_eq!(bn.1, Some(1.0), "{dead:?}");
        assert!(dead.iter().filter(|(n, _)| !n.starts_with("bn")).all(|(_, d)| d.is_none()), "{dead:?}");
    }

    #[test]
    fn the_update_ratio_of_plain_sgd_is_lr_times_the_gradient_norm_over_the_weight_norm() {
        let (stats, expected) = stats_step(None, 0.05);
        for (layer, (name, want)) in stats.layers.iter().zip(&expected) {
            assert_eq!(&layer.name, name);
            let got = f64::from(layer.update_ratio);
            assert!(*want > 1e-4 && (got - want).abs() <= 1e-5 * (1.0 + want), "{name}: {got} vs {want}");
            assert_eq!(layer.weight.total() as usize, layer.grad.total() as usize);
        }
    }
}
