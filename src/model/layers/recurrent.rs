//! `rnn` (tanh), `lstm` and `gru`: recurrent layers with PyTorch's equations, weight names
//! (`weight_ih_l0`, `weight_hh_l0_reverse`, ...) and gate order, stacked (`layers`) and
//! bidirectional. Each direction of each layer is one call to [`crate::model::recurrent`],
//! the fast CPU op (or its candle-composed form off the CPU).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{checked, field_error, kaiming, Mode, ParamSpec, Planned, RunLayer};
use crate::error::Result;
use crate::export::layout::RefLayer;
use crate::model::recurrent::{sequence, Cell};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrentSpec {
    /// Units of the hidden state.
    pub hidden: usize,
    /// Give every step's state (for another recurrent layer, attention or a per-step head);
    /// otherwise the last state (the first state too for the backward direction).
    pub return_sequences: bool,
    pub bidirectional: bool,
    /// Stacked layers (PyTorch's `num_layers`).
    pub layers: usize,
}

impl Default for RecurrentSpec {
    fn default() -> Self {
        Self { hidden: 32, return_sequences: false, bidirectional: false, layers: 1 }
    }
}

impl RecurrentSpec {
    fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    pub fn describe(&self, kind: &str) -> String {
        let mut s = format!("{kind} {}", self.hidden);
        if self.layers > 1 {
            s.push_str(&format!(" x {} layers", self.layers));
        }
        if self.bidirectional {
            s.push_str(", bidirectional");
        }
        s.push_str(if self.return_sequences { ", every step" } else { ", last state" });
        s
    }

    pub fn plan(&self, key: &str, name: &str, input: &[usize], cell: Cell) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        let &[time, features] = input else {
            return Err(field_error(
                key,
                "",
                format!("a recurrent layer reads a sequence (time x features) but gets {input:?}; put an embedding before it"),
            ));
        };
        if self.hidden == 0 {
            return Err(field_error(key, "hidden", "must be at least 1"));
        }
        if self.layers == 0 {
            return Err(field_error(key, "layers", "must be at least 1"));
        }
        let g = cell.gates();
        let rows = checked(key, "hidden", vec![g, self.hidden], "the gates")?.iter().product::<usize>();
        let width = checked(key, "hidden", vec![self.hidden, self.directions()], "the output")?.iter().product();
        checked(key, "hidden", vec![rows, features.max(width)], "the weights")?;
        checked(key, "layers", vec![rows, width, self.layers, self.directions()], "the weights")?;
        checked(key, "hidden", vec![time, width, g], "the saved gates")?;
        let mut params = Vec::new();
        for layer in 0..self.layers {
            let inputs = if layer == 0 { features } else { width };
            for suffix in ["", "_reverse"].iter().take(self.directions()) {
                let p = |what: &str, shape: Vec<usize>| {
                    kaiming(format!("{name}.{what}_l{layer}{suffix}"), shape, self.hidden)
                };
                params.push(p("weight_ih", vec![rows, inputs]));
                params.push(p("weight_hh", vec![rows, self.hidden]));
                params.push(p("bias_ih", vec![rows]));
                params.push(p("bias_hh", vec![rows]));
            }
        }
        let out = if self.return_sequences { vec![time, width] } else { vec![width] };
        Ok((out, params))
    }

    /// `portable`: the cells composed from candle ops even on the CPU (`cpu-portable`).
    pub fn build(&self, cell: Cell, params: &[Tensor], portable: bool) -> Result<Box<dyn RunLayer>> {
        Ok(Box::new(Recurrent {
            cell,
            portable,
            hidden: self.hidden,
            directions: self.directions(),
            return_sequences: self.return_sequences,
            weights: params.chunks(4).map(<[Tensor]>::to_vec).collect(),
        }))
    }

    pub fn reference(&self, kind: &str, p: &Planned) -> Vec<RefLayer> {
        vec![RefLayer::Recurrent {
            module: match kind {
                "lstm" => "LSTM",
                "gru" => "GRU",
                _ => "RNN",
            }
            .into(),
            input_size: p.input[1],
            hidden_size: self.hidden,
            num_layers: self.layers,
            bidirectional: self.bidirectional,
            batch_first: true,
            output: if self.return_sequences { "sequence" } else { "last" }.into(),
            prefix: p.name.clone(),
        }]
    }
}

struct Recurrent {
    cell: Cell,
    hidden: usize,
    directions: usize,
    return_sequences: bool,
    /// `[w_ih, w_hh, b_ih, b_hh]` per layer and direction, in PyTorch's order.
    weights: Vec<Vec<Tensor>>,
    /// The composed cells even on the CPU (off the CPU they always are).
    portable: bool,
}

impl RunLayer for Recurrent {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        let portable = self.portable || !x.device().is_cpu();
        let mut x = x.clone();
        for layer in self.weights.chunks(self.directions) {
            let outs = layer
                .iter()
                .enumerate()
                .map(|(d, w)| sequence(self.cell, &x, &w[0], &w[1], &w[2], &w[3], d == 1, portable))
                .collect::<Result<Vec<_>>>()?;
            x = if outs.len() == 1 { outs.into_iter().next().expect("one direction") } else { Tensor::cat(&outs, 2)? };
        }
        if self.return_sequences {
            return Ok(x);
        }
        let time = x.dim(1)?;
        let forward = x.narrow(2, 0, self.hidden)?.narrow(1, time - 1, 1)?.squeeze(1)?;
        if self.directions == 1 {
            return Ok(forward);
        }
        // the backward direction ends at the first step (PyTorch's h_n)
        let backward = x.narrow(2, self.hidden, self.hidden)?.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(Tensor::cat(&[forward, backward], 1)?)
    }

    fn kind(&self) -> &'static str {
        match self.cell {
            Cell::Rnn => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }
}
