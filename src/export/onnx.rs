//! ONNX export: the card's reference layers as an ONNX graph, written with the protobuf model
//! generated from onnx.proto (`onnx-protobuf`), weights as initializers.
//!
//! Opset 17 (IR version 8), read by ONNX Runtime since 1.13, PyTorch and tract. GELU has no op
//! before opset 20, so it is written as `0.5 * x * (1 + erf(x / sqrt 2))`, the exact GELU
//! Gradlab trains with. Dropout is the identity at inference and is left out. Normalisation stays
//! outside the graph: like Gradlab's own `eval`, callers apply the card's normalisation to raw
//! inputs; the metadata says how.

use std::collections::HashMap;

use candle_core::Tensor;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::layout::{CardLayer, RefLayer};
use super::ModelCard;
use crate::error::{Error, Result};

pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";
pub const OPSET: i64 = 17;
const IR_VERSION: i64 = 8;
/// The free batch dimension of input and output.
const BATCH: &str = "N";

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), type_: AttributeType::INT.into(), i: value, ..Default::default() }
}

fn text(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: name.into(), type_: AttributeType::FLOAT.into(), f: value, ..Default::default() }
}

fn int64_tensor(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: DataType::INT64 as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut shape = vec![Dimension { value: Some(dimension::Value::DimParam(BATCH.into())), ..Default::default() }];
    shape.extend(
        dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() }),
    );
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(TensorShapeProto { dim: shape, ..Default::default() }).into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }).into(),
        ..Default::default()
    }
}

fn meta(key: &str, value: String) -> StringStringEntryProto {
    StringStringEntryProto { key: key.into(), value, ..Default::default() }
}

/// Builds the graph node by node; each node's output feeds the next.
struct Builder<'a> {
    graph: GraphProto,
    tensors: &'a HashMap<String, Tensor>,
    current: String,
}

impl Builder<'_> {
    fn node(&mut self, op: &str, extra_inputs: &[&str], attributes: Vec<AttributeProto>) {
        let name = format!("{}_{}", op.to_lowercase(), self.graph.node.len());
        let mut input = vec![self.current.clone()];
        input.extend(extra_inputs.iter().map(|s| s.to_string()));
        self.graph.node.push(NodeProto {
            name: name.clone(),
            op_type: op.into(),
            input,
            output: vec![name.clone()],
            attribute: attributes,
            ..Default::default()
        });
        self.current = name;
    }

    /// A tensor of the export as an initializer (once).
    fn weight(&mut self, name: &str) -> Result<()> {
        if self.graph.initializer.iter().any(|t| t.name == name) {
            return Ok(());
        }
        let t = self.tensors.get(name).ok_or_else(|| {
            Error::Other(format!("ONNX export: the card names tensor `{name}` but the model has none"))
        })?;
        let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
        self.graph.initializer.push(float_tensor(name, t.dims(), &values));
        Ok(())
    }

    fn scalar(&mut self, name: &str, value: f32) {
        if !self.graph.initializer.iter().any(|t| t.name == name) {
            self.graph.initializer.push(float_tensor(name, &[], &[value]));
        }
    }

    fn gelu(&mut self) {
        self.scalar("gelu_sqrt2", std::f32::consts::SQRT_2);
        self.scalar("gelu_one", 1.0);
        self.scalar("gelu_half", 0.5);
        let x = self.current.clone();
        self.node("Div", &["gelu_sqrt2"], vec![]);
        self.node("Erf", &[], vec![]);
        self.node("Add", &["gelu_one"], vec![]);
        self.node("Mul", &[x.as_str()], vec![]);
        self.node("Mul", &["gelu_half"], vec![]);
    }

    fn layer(&mut self, layer: &RefLayer) -> Result<()> {
        match layer {
            RefLayer::Conv2d { kernel_size: k, stride: s, padding: p, weight, bias, .. } => {
                self.weight(weight)?;
                self.weight(bias)?;
                let attrs = vec![
                    ints("kernel_shape", &[*k, *k]),
                    ints("strides", &[*s, *s]),
                    ints("pads", &[*p, *p, *p, *p]),
                    ints("dilations", &[1, 1]),
                    int("group", 1),
                ];
                self.node("Conv", &[weight.as_str(), bias.as_str()], attrs);
            }
            RefLayer::Relu => self.node("Relu", &[], vec![]),
            RefLayer::Tanh => self.node("Tanh", &[], vec![]),
            RefLayer::Sigmoid => self.node("Sigmoid", &[], vec![]),
            RefLayer::Gelu { .. } => self.gelu(),
            RefLayer::LeakyRelu { negative_slope } => {
                self.node("LeakyRelu", &[], vec![float("alpha", *negative_slope)])
            }
            RefLayer::MaxPool2d { kernel_size: k, stride: s } => {
                self.node("MaxPool", &[], vec![ints("kernel_shape", &[*k, *k]), ints("strides", &[*s, *s])]);
            }
            RefLayer::Flatten { start_dim } => self.node("Flatten", &[], vec![int("axis", *start_dim as i64)]),
            RefLayer::Linear { weight, bias, .. } => {
                self.weight(weight)?;
                self.weight(bias)?;
                self.node("Gemm", &[weight.as_str(), bias.as_str()], vec![int("transB", 1)]);
            }
            RefLayer::Dropout { .. } | RefLayer::Dropout2d { .. } => {}
            RefLayer::BatchNorm { eps, momentum, weight, bias, running_mean, running_var, .. } => {
                for name in [weight, bias, running_mean, running_var] {
                    self.weight(name)?;
                }
                let attrs = vec![float("epsilon", *eps as f32), float("momentum", 1.0 - *momentum as f32)];
                let inputs = [weight.as_str(), bias.as_str(), running_mean.as_str(), running_var.as_str()];
                self.node("BatchNormalization", &inputs, attrs);
            }
            RefLayer::ConvTranspose2d {
                kernel_size: k,
                stride: s,
                padding: p,
                output_padding: op,
                weight,
                bias,
                ..
            } => {
                self.weight(weight)?;
                self.weight(bias)?;
                let attrs = vec![
                    ints("kernel_shape", &[*k, *k]),
                    ints("strides", &[*s, *s]),
                    ints("pads", &[*p, *p, *p, *p]),
                    ints("output_padding", &[*op, *op]),
                    ints("dilations", &[1, 1]),
                    int("group", 1),
                ];
                self.node("ConvTranspose", &[weight.as_str(), bias.as_str()], attrs);
            }
            RefLayer::Upsample { scale_factor, .. } => {
                // PyTorch's nearest: source index floor(i / scale)
                let name = format!("upsample_scales_{}", self.graph.node.len());
                let s = *scale_factor as f32;
                self.graph.initializer.push(float_tensor(&name, &[4], &[1.0, 1.0, s, s]));
                let attrs = vec![
                    text("mode", "nearest"),
                    text("coordinate_transformation_mode", "asymmetric"),
                    text("nearest_mode", "floor"),
                ];
                self.node("Resize", &["", name.as_str()], attrs);
            }
            RefLayer::Unflatten { unflattened_size, .. } => {
                let name = format!("unflatten_shape_{}", self.graph.node.len());
                // 0: the batch dimension as it is
                let mut shape = vec![0i64];
                shape.extend(unflattened_size.iter().map(|&d| d as i64));
                self.graph.initializer.push(int64_tensor(&name, &shape));
                self.node("Reshape", &[name.as_str()], vec![]);
            }
            RefLayer::AvgPool2d { kernel_size: k, stride: s } => {
                self.node("AveragePool", &[], vec![ints("kernel_shape", &[*k, *k]), ints("strides", &[*s, *s])]);
            }
            other => {
                let name = serde_json::to_value(other).ok().and_then(|v| v["type"].as_str().map(String::from));
                return Err(Error::Other(format!(
                    "ONNX export does not cover {} layers yet; export as safetensors (`--format safetensors`), whose card describes them for PyTorch",
                    name.unwrap_or_else(|| "these".into())
                )));
            }
        }
        Ok(())
    }
}

/// The model of a version-2 card (reference layers) with its reference-layout tensors, as the
/// bytes of an ONNX file.
pub fn to_onnx(card: &ModelCard, tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut b = Builder { graph: GraphProto::default(), tensors, current: INPUT.into() };
    b.graph.name = "gradlab".into();
    for layer in &card.layers {
        match layer {
            CardLayer::Reference(l) => b.layer(l)?,
            CardLayer::Described(d) => {
                return Err(Error::Other(format!("ONNX export needs reference layers; the card lists `{d}`")))
            }
        }
    }
    // the last node's output is the model's
    let last = b.graph.node.last_mut().ok_or_else(|| Error::Other("ONNX export: the model has no layers".into()))?;
    last.output = vec![OUTPUT.into()];
    b.graph.input.push(value_info(INPUT, &card.input_shape));
    b.graph.output.push(value_info(OUTPUT, &[card.class_names.len()]));

    let n = &card.normalization;
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }],
        producer_name: "gradlab".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} ({}), exported by Gradlab", card.title, card.source),
        graph: Some(b.graph).into(),
        metadata_props: vec![
            meta("title", card.title.clone()),
            meta("source", card.source.clone()),
            meta("class_names", json(&card.class_names)),
            meta("input_name", INPUT.into()),
            meta("input_layout", if card.input_shape.len() == 3 { "NCHW" } else { "NC" }.into()),
            meta("input_shape", json(&card.input_shape)),
            meta("output_name", OUTPUT.into()),
            meta("normalization", json(n)),
            meta(
                "preprocessing",
                "not in the graph: feed (raw * scale - mean[i % len(mean)]) / std[i % len(std)] for each \
                 flattened input value i, with scale, mean and std from `normalization` (one mean and std \
                 for images, one per feature for tables)"
                    .into(),
            ),
        ],
        ..Default::default()
    };
    model.write_to_bytes().map_err(|e| Error::Other(format!("ONNX export: cannot encode the model: {e}")))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}
