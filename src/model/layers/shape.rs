//! Layers without parameters: `flatten`, `dropout`, `activation`, `global_mean`.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{elements, field_error, Mode, RunLayer};
use crate::error::Result;
use crate::model::spec::Activation;

pub fn flatten(key: &str, input: &[usize]) -> Result<Vec<usize>> {
    match elements(input) {
        Some(n) => Ok(vec![n]),
        None => Err(field_error(key, "", format!("the {input:?} input is too large to flatten"))),
    }
}

pub fn global_mean(key: &str, input: &[usize]) -> Result<Vec<usize>> {
    match input {
        [_, f] => Ok(vec![*f]),
        other => Err(field_error(
            key,
            "",
            format!("the mean over time needs a sequence (time x features) but gets {other:?}; put it after an embedding, a recurrent layer with return_sequences = true or attention"),
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropoutSpec {
    /// The share of values zeroed while training (`p` in PyTorch).
    #[serde(alias = "p")]
    pub rate: f64,
}

impl Default for DropoutSpec {
    fn default() -> Self {
        Self { rate: 0.2 }
    }
}

impl DropoutSpec {
    pub fn plan(&self, key: &str, input: &[usize]) -> Result<Vec<usize>> {
        // the `kind = "mlp" | "cnn"` form has one dropout for all layers
        let field = if key.starts_with("model.layers[") { "rate" } else { "" };
        if !(0.0..1.0).contains(&self.rate) {
            return Err(field_error(key, field, format!("{} is not a probability in [0, 1)", self.rate)));
        }
        Ok(input.to_vec())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationSpec {
    pub activation: Activation,
}

pub struct Flatten;

impl RunLayer for Flatten {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        Ok(x.flatten_from(1)?)
    }

    fn kind(&self) -> &'static str {
        "flatten"
    }
}

pub struct Dropout {
    pub rate: f64,
}

impl RunLayer for Dropout {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        match mode {
            Mode::Train(rng) if self.rate > 0.0 => crate::model::network::dropout(x, self.rate, rng),
            _ => Ok(x.clone()),
        }
    }

    fn kind(&self) -> &'static str {
        "dropout"
    }
}

pub struct Activate {
    pub activation: Activation,
}

impl RunLayer for Activate {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        crate::model::network::activate(x, self.activation)
    }

    fn kind(&self) -> &'static str {
        "activation"
    }

    fn activation(&self) -> Option<crate::model::Activation> {
        Some(self.activation)
    }
}

pub struct GlobalMean;

impl RunLayer for GlobalMean {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        Ok(x.mean(1)?)
    }

    fn kind(&self) -> &'static str {
        "mean over time"
    }
}
