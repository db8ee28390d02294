//! `dense`: a fully connected layer (`nn.Linear`), on a feature vector or on every step of a
//! sequence, with an optional activation.

use serde::{Deserialize, Serialize};

use super::{checked, field_error, kaiming, ParamSpec, PlanContext, Planned};
use crate::error::Result;
use crate::export::layout::RefLayer;
use crate::model::spec::{Activation, MAX_TENSOR_ELEMENTS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenseSpec {
    /// Outputs; the last layer may leave it out: one per class (or per token of the vocabulary).
    /// (Left out of a file it is `None`, not the editor's default of 64.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

impl Default for DenseSpec {
    fn default() -> Self {
        Self { units: Some(64), activation: None }
    }
}

impl DenseSpec {
    pub fn describe(&self) -> String {
        let units = self.units.map_or("one per class".to_string(), |u| u.to_string());
        match self.activation {
            Some(a) => format!("dense {units}, {}", a.title()),
            None => format!("dense {units}"),
        }
    }

    pub fn plan(
        &self,
        key: &str,
        name: &str,
        input: &[usize],
        cx: &PlanContext,
    ) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let units = match self.units {
            Some(0) => return Err(field_error(key, "units", "a layer needs at least 1 unit")),
            Some(u) => u,
            None if cx.last => cx.outputs(),
            None => {
                return Err(field_error(
                    key,
                    "units",
                    "give the number of units (only the last layer may leave it out, for one per class)",
                ))
            }
        };
        let (inputs, out) = match input {
            [f] => (*f, vec![units]),
            [t, f] => (*f, vec![*t, units]),
            other => {
                return Err(field_error(
                    key,
                    "",
                    format!(
                        "a dense layer takes features or a sequence, not a {other:?} image; add a flatten before it"
                    ),
                ))
            }
        };
        let weights = inputs.checked_add(1).and_then(|i| i.checked_mul(units)).filter(|&n| n <= MAX_TENSOR_ELEMENTS);
        if units > MAX_TENSOR_ELEMENTS || weights.is_none() {
            return Err(field_error(
                key,
                "units",
                format!("makes the weights of {name} ({inputs} x {units}) too large to address"),
            ));
        }
        let out = checked(key, "units", out, "the layer's output")?;
        let params = vec![
            kaiming(format!("{name}.weight"), vec![units, inputs], inputs),
            kaiming(format!("{name}.bias"), vec![units], inputs),
        ];
        Ok((out, params))
    }

    pub fn reference(&self, p: &Planned) -> Vec<RefLayer> {
        let (out_features, in_features) = (p.params[0].shape[0], p.params[0].shape[1]);
        let mut layers = vec![RefLayer::Linear {
            in_features,
            out_features,
            weight: p.params[0].name.clone(),
            bias: p.params[1].name.clone(),
        }];
        layers.extend(self.activation.map(RefLayer::activation));
        layers
    }
}
