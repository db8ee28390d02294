//! `embedding` (token ids -> vectors, `nn.Embedding`) and `position` (learned position vectors
//! added to a sequence, as GPT-style transformers do).

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::{checked, field_error, Init, Mode, ParamSpec, PlanContext, Planned, RunLayer};
use crate::error::Result;
use crate::export::layout::RefLayer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingSpec {
    /// Rows of the table; left out: the data's vocabulary (with `<pad>` and `<unk>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    pub dim: usize,
}

impl Default for EmbeddingSpec {
    fn default() -> Self {
        Self { vocab: None, dim: 32 }
    }
}

impl EmbeddingSpec {
    pub fn describe(&self) -> String {
        match self.vocab {
            Some(v) => format!("embedding {v} x {}", self.dim),
            None => format!("embedding vocabulary x {}", self.dim),
        }
    }

    pub fn plan(
        &self,
        key: &str,
        name: &str,
        input: &[usize],
        cx: &PlanContext,
    ) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let (Some(data_vocab), &[time]) = (cx.vocab, input) else {
            return Err(field_error(
                key,
                "",
                format!("an embedding reads token ids from text data, as the first layer; this input is {input:?}"),
            ));
        };
        let vocab = self.vocab.unwrap_or(data_vocab);
        if vocab < data_vocab {
            return Err(field_error(
                key,
                "vocab",
                format!("{vocab} rows cannot hold the data's {data_vocab} tokens; use at least {data_vocab} (or leave it out)"),
            ));
        }
        if self.dim == 0 {
            return Err(field_error(key, "dim", "must be at least 1"));
        }
        checked(key, "dim", vec![vocab, self.dim], "the embedding table")?;
        let out = checked(key, "dim", vec![time, self.dim], "the layer's output")?;
        Ok((out, vec![ParamSpec::new(format!("{name}.weight"), vec![vocab, self.dim], Init::Normal(1.0))]))
    }
}

/// Learned position vectors, one per step of the input length.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PositionSpec {}

pub fn plan_position(key: &str, name: &str, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
    let &[time, dim] = input else {
        return Err(field_error(
            key,
            "",
            format!("position embeddings add to a sequence (time x features), not {input:?}"),
        ));
    };
    Ok((input.to_vec(), vec![ParamSpec::new(format!("{name}.weight"), vec![time, dim], Init::Normal(0.02))]))
}

pub fn reference_embedding(p: &Planned) -> Vec<RefLayer> {
    let w = &p.params[0];
    vec![RefLayer::Embedding { num_embeddings: w.shape[0], embedding_dim: w.shape[1], weight: w.name.clone() }]
}

pub fn reference_position(p: &Planned) -> Vec<RefLayer> {
    vec![RefLayer::PositionEmbedding { weight: p.params[0].name.clone() }]
}

/// Looks up `[batch, time]` ids (stored as f32, exact below 2^24) in the table.
pub struct Embedding {
    weight: Tensor,
}

pub fn build_embedding(params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
    Ok(Box::new(Embedding { weight: params[0].clone() }))
}

impl RunLayer for Embedding {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        let (batch, time) = x.dims2()?;
        let ids = x.to_dtype(DType::U32)?.flatten_all()?;
        let rows = self.weight.dim(0)?;
        // an id past the table (a hand-made input) is clamped to the last row, never out of bounds
        let ids = ids.minimum(&Tensor::full((rows as u32).saturating_sub(1), ids.shape(), ids.device())?)?;
        let dim = self.weight.dim(1)?;
        Ok(self.weight.index_select(&ids, 0)?.reshape((batch, time, dim))?)
    }

    fn kind(&self) -> &'static str {
        "embedding"
    }
}

/// Adds the first `time` rows of the position table.
pub struct Position {
    weight: Tensor,
}

pub fn build_position(params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
    Ok(Box::new(Position { weight: params[0].clone() }))
}

impl RunLayer for Position {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        let time = x.dim(1)?;
        Ok(x.broadcast_add(&self.weight.narrow(0, 0, time)?)?)
    }

    fn kind(&self) -> &'static str {
        "position"
    }
}
