//! What the training thread computes for the text views, from the current weights: text a
//! language model writes, a classifier's probabilities for typed text, and the embedding
//! vectors of the most frequent tokens projected to 2-D (PCA). The GUI shows the results; it
//! never touches the network.

use candle_core::{Device, Tensor, D};
use serde::{Deserialize, Serialize};

use std::time::Instant;

use super::event::Event;
use super::session::Session;
use crate::data::TextInfo;
use crate::error::Result;
use crate::model::{Mode, Network};
use crate::rng::Rng;
use crate::task::Task;

/// Tokens of the embedding view.
pub const EMBEDDING_TOKENS: usize = 150;
/// The longest text one request may generate.
pub const MAX_GENERATE: usize = 1000;

/// Text a language model wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSample {
    /// The epoch whose weights wrote it (0: before training).
    pub epoch: usize,
    pub prompt: String,
    /// What the model added after the prompt.
    pub text: String,
    pub temperature: f64,
    /// Time it took on the training thread.
    pub millis: f64,
}

/// The first two principal components of the most frequent tokens' embedding vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingMap {
    pub epoch: usize,
    pub tokens: Vec<String>,
    pub points: Vec<[f32; 2]>,
}

/// The next-token probabilities after `ids` (the last `window` of them).
fn next_token_logits(net: &Network, ids: &[u32], window: usize, device: &Device) -> Result<Vec<f32>> {
    let start = ids.len().saturating_sub(window);
    let context: Vec<f32> = ids[start..].iter().map(|&i| i as f32).collect();
    let n = context.len();
    let x = Tensor::from_vec(context, (1, n), device)?;
    let logits = net.forward(&x, &mut Mode::Eval)?.detach();
    Ok(logits.squeeze(0)?.get(n - 1)?.to_vec1()?)
}

/// Samples `length` tokens after `prompt` from the model's next-token distribution at
/// `temperature` (0: always the most likely), with its own seeded RNG.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    net: &Network,
    info: &TextInfo,
    prompt: &str,
    length: usize,
    temperature: f64,
    rng: &mut Rng,
    device: &Device,
) -> Result<String> {
    let mut ids = info.encode_all(prompt);
    if ids.is_empty() {
        // an empty prompt starts from the most frequent token
        ids.push(2.min(info.tokens.len().saturating_sub(1) as u32));
    }
    let prompt_len = ids.len();
    for _ in 0..length.min(MAX_GENERATE) {
        let mut logits = next_token_logits(net, &ids, info.max_len, device)?;
        // never write padding or the unknown token
        for special in logits.iter_mut().take(2) {
            *special = f32::NEG_INFINITY;
        }
        let next = if temperature <= 0.0 {
            argmax(&logits)
        } else {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f64> = logits.iter().map(|&l| (f64::from(l - max) / temperature).exp()).collect();
            let total: f64 = weights.iter().sum();
            let mut draw = f64::from(rng.uniform()) * total;
            let mut pick = weights.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if draw < *w {
                    pick = i;
                    break;
                }
                draw -= w;
            }
            pick
        };
        ids.push(next as u32);
    }
    Ok(info.decode(&ids[prompt_len..]))
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// Class probabilities of a classifier for `text`, encoded as its training data was.
pub fn classify(net: &Network, info: &TextInfo, text: &str, device: &Device) -> Result<Vec<f32>> {
    let ids: Vec<f32> = info.encode(text).iter().map(|&i| i as f32).collect();
    let n = ids.len();
    let x = Tensor::from_vec(ids, (1, n), device)?;
    let logits = Task::Classify.logits_matrix(&net.forward(&x, &mut Mode::Eval)?.detach())?;
    Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.squeeze(0)?.to_vec1()?)
}

/// The 2-D map of the first embedding layer's most frequent tokens, if the model has one.
pub fn embedding_map(net: &Network, info: &TextInfo, epoch: usize) -> Result<Option<EmbeddingMap>> {
    let Some((_, table)) = net.params().iter().find(|(name, _)| name == "embedding1.weight") else {
        return Ok(None);
    };
    let (rows, dim) = table.dims2()?;
    // ids 0 and 1 are <pad> and <unk>; the rest run from the most frequent token down
    let end = rows.min(info.tokens.len()).min(2 + EMBEDDING_TOKENS);
    if end <= 4 {
        return Ok(None);
    }
    let vectors: Vec<Vec<f32>> = table.narrow(0, 2, end - 2)?.to_vec2()?;
    let points = pca2(&vectors, dim);
    Ok(Some(EmbeddingMap { epoch, tokens: info.tokens[2..end].to_vec(), points }))
}

/// Projection on the two leading eigenvectors of the covariance (power iteration with
/// deflation, from a fixed start, so the same weights give the same picture).
pub(crate) fn pca2(vectors: &[Vec<f32>], dim: usize) -> Vec<[f32; 2]> {
    let n = vectors.len() as f64;
    let mean: Vec<f64> = (0..dim).map(|j| vectors.iter().map(|v| f64::from(v[j])).sum::<f64>() / n).collect();
    let centred: Vec<Vec<f64>> =
        vectors.iter().map(|v| v.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect()).collect();
    let mut cov = vec![vec![0.0; dim]; dim];
    for v in &centred {
        for a in 0..dim {
            for b in 0..dim {
                cov[a][b] += v[a] * v[b] / n;
            }
        }
    }
    let mut components: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        let mut u: Vec<f64> = (0..dim).map(|j| if j % 2 == c { 1.0 } else { 0.5 }).collect();
        for _ in 0..200 {
            let mut next: Vec<f64> = (0..dim).map(|a| (0..dim).map(|b| cov[a][b] * u[b]).sum()).collect();
            for prev in &components {
                let dot: f64 = next.iter().zip(prev).map(|(x, p)| x * p).sum();
                next.iter_mut().zip(prev).for_each(|(x, p)| *x -= dot * p);
            }
            let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            u = next.iter().map(|x| x / norm).collect();
        }
        components.push(u);
    }
    centred
        .iter()
        .map(|v| {
            let project = |u: &[f64]| v.iter().zip(u).map(|(x, w)| x * w).sum::<f64>() as f32;
            [project(&components[0]), project(&components[1])]
        })
        .collect()
}

/// The prompt of the sample written at each epoch's end.
pub const EPOCH_PROMPT: &str = "The ";
/// Its length in tokens, and its temperature.
const EPOCH_SAMPLE: (usize, f64) = (240, 0.8);

/// Text the session's language model writes now, `None` for other models.
pub(super) fn sample_now(
    session: &Session,
    prompt: &str,
    length: usize,
    temperature: f64,
    mut rng: Rng,
) -> Result<Option<TextSample>> {
    let Some(info) = session.data.text.as_ref().filter(|_| session.preset.task == Task::LanguageModel) else {
        return Ok(None);
    };
    let started = Instant::now();
    let written = generate(&session.net, info, prompt, length, temperature, &mut rng, &session.device)?;
    Ok(Some(TextSample {
        epoch: session.epoch,
        prompt: prompt.to_string(),
        text: written,
        temperature,
        millis: started.elapsed().as_secs_f64() * 1e3,
    }))
}

/// What a text model shows after an epoch: a sample of its writing, its embedding map.
pub(super) fn epoch_events(session: &Session) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    let rng = Rng::derive(session.preset.seed, "text-sample", session.epoch as u64);
    let (length, temperature) = EPOCH_SAMPLE;
    if let Some(sample) = sample_now(session, EPOCH_PROMPT, length, temperature, rng)? {
        out.push(Event::TextSample(sample));
    }
    if let Some(info) = session.data.text.as_ref() {
        if let Some(map) = embedding_map(&session.net, info, session.epoch)? {
            out.push(Event::Embedding(map));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_direction_of_largest_spread() {
        // points along (1, 1, 0) with a little spread along (0, 0, 1)
        let vectors: Vec<Vec<f32>> =
            (0..20).map(|i| i as f32 - 10.0).map(|t| vec![t, t, 0.1 * (t * 7.0).sin()]).collect();
        let points = pca2(&vectors, 3);
        let spread = |k: usize| points.iter().map(|p| p[k] * p[k]).sum::<f32>();
        assert!(spread(0) > 100.0 * spread(1), "{} vs {}", spread(0), spread(1));
        // the first coordinate orders the points as t does (up to sign)
        let sign = points[19][0].signum();
        assert!(points.windows(2).all(|w| (w[1][0] - w[0][0]) * sign > 0.0));
    }
}
