//! Training steps and evaluation of the generative tasks (`autoencode`, `vae`, `gan`); the
//! losses are in `task::generative`, the views in `generative_views`.
//!
//! A GAN's generator is the session's network (the preset's `[model]`, reading `latent` noise
//! values); its discriminator and that one's optimizer are the session's `Adversary`. Each batch
//! trains the discriminator once on the real batch and on the generator's fakes (detached), then
//! the generator once on the same fakes through the updated discriminator, as PyTorch's DCGAN
//! example. The noise draws from the run's RNG (kept in checkpoints), so a resumed run goes on
//! exactly.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::event::Evaluation;
use super::metrics::Confusion;
use super::optim::Optimizer;
use super::session::Session;
use crate::config::{discriminator_error, discriminator_input, Preset};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::layers::sample;
use crate::model::{Mode, Network};
use crate::rng::Rng;
use crate::task::generative::{autoencoder_loss, gan_loss, vae_loss, Reconstruction};
use crate::task::{Task, TaskBatch};

/// The discriminator's tensors in a checkpoint are named `discriminator.fc1.weight`.
pub const DISCRIMINATOR_PREFIX: &str = "discriminator.";

const EVAL_BATCH: usize = 500;

/// A GAN's second network with its optimizer.
pub struct Adversary {
    pub net: Network,
    pub optimizer: Optimizer,
}

impl Adversary {
    /// The discriminator a GAN preset describes; `None` for other tasks.
    pub fn for_preset(preset: &Preset, data: &Dataset, compute: &crate::device::Compute) -> Result<Option<Self>> {
        let Some(spec) = preset.discriminator.as_ref().filter(|_| preset.task == Task::Gan) else {
            return Ok(None);
        };
        let rng = Rng::derive(preset.seed, "init-discriminator", 0);
        let net = Network::build(spec, &discriminator_input(&data.input_shape), rng, compute)
            .map_err(|e| discriminator_error(e, "preset"))?;
        let mut optimizer = Optimizer::for_preset(&preset.train, net.params().len());
        optimizer.portable = compute.portable;
        Ok(Some(Self { net, optimizer }))
    }
}

/// A GAN's figures: the discriminator's loss (real + fake), the generator's, and the mean
/// probability the discriminator gives real samples, D(x), and fakes, D(G(z)). Summed over an
/// epoch's samples in `EpochProgress`, a mean elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GanFigures {
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
}

impl GanFigures {
    pub fn add_scaled(&mut self, other: &GanFigures, weight: f64) {
        self.d_loss += other.d_loss * weight;
        self.g_loss += other.g_loss * weight;
        self.d_real += other.d_real * weight;
        self.d_fake += other.d_fake * weight;
    }

    pub fn scaled(&self, factor: f64) -> GanFigures {
        let mut out = GanFigures::default();
        out.add_scaled(self, factor);
        out
    }
}

/// A GAN's epoch: the training batches' mean figures and the validation figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GanEpoch {
    pub train: GanFigures,
    pub validation: GanFigures,
}

/// One generative training step's figures. `loss` is the task's loss (a GAN's: the
/// discriminator's).
pub struct GenerativeStep {
    pub loss: f64,
    pub gan: Option<GanFigures>,
}

/// The model's output, and the `sample` layer's input (a VAE's mean and log-variance) when it
/// has one.
pub fn forward_with_stats(net: &Network, x: &Tensor, mode: &mut Mode<'_>) -> Result<(Tensor, Option<Tensor>)> {
    let mut x = x.clone();
    let mut stats = None;
    for i in 0..net.run_layers() {
        if net.layer_kind(i) == sample::KIND {
            stats = Some(x.clone());
        }
        x = net.forward_layer(i, &x, mode)?;
    }
    Ok((x, stats))
}

/// `n` noise vectors of `latent` normal values each, drawn on the host from `rng`.
pub fn noise(n: usize, latent: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..n * latent).map(|_| rng.normal()).collect();
    Ok(Tensor::from_vec(values, (n, latent), device)?)
}

/// The mean probability the discriminator gives `logits`' samples, left on the device (as
/// `task::generative::mean_probability` computes it, which reads it at once).
fn mean_probability(logits: &Tensor) -> Result<Tensor> {
    let p = crate::model::activate(&logits.detach(), crate::model::Activation::Sigmoid)?;
    Ok(p.mean_all()?)
}

/// The generator's noise width.
pub fn latent_of(preset: &Preset) -> usize {
    preset.model.latent.unwrap_or(crate::model::DEFAULT_LATENT)
}

fn check_finite(value: f64, session: &Session) -> Result<()> {
    if value.is_finite() {
        return Ok(());
    }
    Err(Error::NonFiniteLoss { value: value as f32, epoch: session.epoch + 1, batch: session.batch + 1 })
}

/// Trains one batch of a generative task (forward, loss, backward, optimizer steps).
pub fn train_step(session: &mut Session, batch: &TaskBatch, lr: f64) -> Result<GenerativeStep> {
    let clip = session.preset.train.clip_grad_norm;
    let clip = (clip > 0.0).then_some(clip);
    let kind = Reconstruction::for_data(session.preset.data.normalization);
    match session.preset.task {
        Task::Gan => gan_step(session, batch, lr, clip),
        task => {
            let (output, stats) = forward_with_stats(&session.net, &batch.inputs, &mut Mode::Train(&mut session.rng))?;
            let loss = match (task, stats) {
                (Task::Vae, Some(stats)) => vae_loss(kind, &output, &batch.inputs, &stats)?,
                (Task::Vae, None) => return Err(Error::Other("a VAE's model has no sample layer".into())),
                _ => autoencoder_loss(kind, &output, &batch.inputs)?,
            };
            let value = f64::from(loss.to_scalar::<f32>()?);
            check_finite(value, session)?;
            let grads = loss.backward()?;
            session.optimizer.step_clipped(session.net.params(), &grads, lr, clip)?;
            Ok(GenerativeStep { loss: value, gan: None })
        }
    }
}

fn gan_step(session: &mut Session, batch: &TaskBatch, lr: f64, clip: Option<f64>) -> Result<GenerativeStep> {
    let latent = latent_of(&session.preset);
    let n = batch.samples;
    let z = noise(n, latent, &mut session.rng, &session.device)?;
    let adversary =
        session.adversary.as_mut().ok_or_else(|| Error::Other("a GAN's session has no discriminator".into()))?;
    let fake = session.net.forward(&z, &mut Mode::Train(&mut session.rng))?;
    let fake = fake.reshape(batch.inputs.shape())?;
    // the discriminator: real batch as real, the fakes (no gradient into the generator) as fake
    let real_logits = adversary.net.forward(&batch.inputs, &mut Mode::Train(&mut session.rng))?;
    let fake_logits = adversary.net.forward(&fake.detach(), &mut Mode::Train(&mut session.rng))?;
    let d_loss = (gan_loss(&real_logits, true)? + gan_loss(&fake_logits, false)?)?;
    let (d_real, d_fake) = (mean_probability(&real_logits)?, mean_probability(&fake_logits)?);
    let grads = d_loss.backward()?;
    adversary.optimizer.step_clipped(adversary.net.params(), &grads, lr, clip)?;
    // the generator: its fakes through the updated discriminator, scored as real
    // (non-saturating: -log D(G(z)) keeps its gradient while D wins)
    let judged = adversary.net.forward(&fake, &mut Mode::Train(&mut session.rng))?;
    let g_loss = gan_loss(&judged, true)?;
    // the step's one read from the device, before the generator's update
    let read = super::session::read_scalars(&[&d_loss, &g_loss, &d_real, &d_fake])?;
    let [d_value, g_value, d_real, d_fake] = [0, 1, 2, 3].map(|i| f64::from(read[i]));
    check_finite(d_value, session)?;
    check_finite(g_value, session)?;
    let grads = g_loss.backward()?;
    session.optimizer.step_clipped(session.net.params(), &grads, lr, clip)?;
    let figures = GanFigures { d_loss: d_value, g_loss: g_value, d_real, d_fake };
    Ok(GenerativeStep { loss: d_value, gan: Some(figures) })
}

/// The validation (or test) figures of a generative model, without dropout and, for a VAE, from
/// the latent means. An autoencoder's and a VAE's loss is the training loss; a GAN's is the
/// discriminator's on the split's samples and as many fakes from a fixed noise. There is no
/// accuracy: the evaluation's accuracy is 0 and its confusion matrix empty.
pub fn evaluate(session: &Session, split: &Split) -> Result<(Evaluation, Option<GanFigures>)> {
    let preset = &session.preset;
    let kind = Reconstruction::for_data(preset.data.normalization);
    let input = session.data.model_input(preset.task);
    let mut loss_sum = 0.0;
    let mut gan = GanFigures::default();
    let mut eval_noise = Rng::derive(preset.seed, "gan-evaluation-noise", 0);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let batch = preset.task.gather(split, chunk, &input.shape, &session.device)?;
        let weight = batch.samples as f64;
        match (preset.task, session.adversary.as_ref()) {
            (Task::Gan, Some(adversary)) => {
                let z = noise(batch.samples, latent_of(preset), &mut eval_noise, &session.device)?;
                let fake = session.net.forward(&z, &mut Mode::Eval)?.detach().reshape(batch.inputs.shape())?;
                let real_logits = adversary.net.forward(&batch.inputs, &mut Mode::Eval)?.detach();
                let fake_logits = adversary.net.forward(&fake, &mut Mode::Eval)?.detach();
                let d_loss = (gan_loss(&real_logits, true)? + gan_loss(&fake_logits, false)?)?;
                let g_loss = gan_loss(&fake_logits, true)?;
                let (d_real, d_fake) = (mean_probability(&real_logits)?, mean_probability(&fake_logits)?);
                let read = super::session::read_scalars(&[&d_loss, &g_loss, &d_real, &d_fake])?;
                let [d_loss, g_loss, d_real, d_fake] = [0, 1, 2, 3].map(|i| f64::from(read[i]));
                let figures = GanFigures { d_loss, g_loss, d_real, d_fake };
                gan.add_scaled(&figures, weight);
                loss_sum += d_loss * weight;
            }
            (Task::Gan, None) => return Err(Error::Other("a GAN's session has no discriminator".into())),
            (task, _) => {
                let (output, stats) = forward_with_stats(&session.net, &batch.inputs, &mut Mode::Eval)?;
                let loss = match (task, stats) {
                    (Task::Vae, Some(stats)) => vae_loss(kind, &output, &batch.inputs, &stats)?,
                    _ => autoencoder_loss(kind, &output, &batch.inputs)?,
                };
                loss_sum += f64::from(loss.to_scalar::<f32>()?) * weight;
            }
        }
    }
    let n = split.len().max(1) as f64;
    let evaluation = Evaluation { loss: loss_sum / n, accuracy: 0.0, confusion: Confusion::new(0) };
    Ok((evaluation, (preset.task == Task::Gan).then(|| gan.scaled(1.0 / n))))
}
