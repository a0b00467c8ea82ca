//! ONNX export: a model's layers written as ONNX nodes (opset 17), its parameters as
//! initializers under their `state_dict` names, the batch dimension left free. Each layer
//! writes itself ([`crate::nn::Module::export`]); this file holds what they share.

use crate::io::onnx::{self, Attribute, AttributeValue, Dim, Model, Node, TensorData, ValueInfo};
use crate::nn::Module;
use crate::{Error, Result, Tensor};

/// The operator set exported models import.
pub const OPSET: i64 = 17;

/// The nodes and initializers of a model being exported.
#[derive(Default)]
pub struct Exporter {
    nodes: Vec<Node>,
    initializers: Vec<TensorData>,
}

impl Exporter {
    /// Adds a node `op` named `name` reading `inputs` (`""`: an optional input left out);
    /// returns its output's name (the node's name).
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attributes: Vec<(&str, AttributeValue)>) -> String {
        // unique names, even where a layer writes several nodes under one path
        let taken = |n: &str| self.nodes.iter().any(|x| x.name == n);
        let base = if name.is_empty() { op.to_lowercase() } else { name.to_string() };
        let mut out = base.clone();
        let mut k = 1;
        while taken(&out) {
            out = format!("{base}/{k}");
            k += 1;
        }
        self.nodes.push(Node {
            name: out.clone(),
            op_type: op.to_string(),
            domain: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![out.clone()],
            attributes: attributes.into_iter().map(|(name, value)| Attribute { name: name.into(), value }).collect(),
        });
        out
    }

    /// Adds the weight `t` under `name` (its `state_dict` name) and returns that name.
    pub fn weight(&mut self, name: &str, t: &Tensor) -> String {
        self.initializers.push(TensorData::from_tensor(name, t));
        name.to_string()
    }

    /// Adds an int64 constant (a shape, pads) and returns its name.
    pub fn ints(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorData::from_i64s(name, &[values.len()], values));
        name.to_string()
    }
}

/// An INTS attribute.
pub fn ints(values: impl IntoIterator<Item = usize>) -> AttributeValue {
    AttributeValue::Ints(values.into_iter().map(|v| v as i64).collect())
}

/// `model` as an ONNX model taking a batch of `input`-shaped samples (the batch free) as
/// `input` and giving `output`.
pub fn export(model: &dyn Module, input: &[usize], producer: &str) -> Result<Model> {
    let mut shape = vec![1];
    shape.extend_from_slice(input);
    model.output_shape(&shape)?;
    let mut ex = Exporter::default();
    let out = model.export("", "input", &shape, &mut ex)?;
    // the output under a fixed name
    let out = ex.node("Identity", "output", &[&out], vec![]);
    let dims = |shape: &[usize]| {
        let mut d = vec![Dim::Param("batch".into())];
        d.extend(shape.iter().map(|&s| Dim::Value(s as i64)));
        Some(d)
    };
    let out_shape = model.output_shape(&shape)?;
    let mut m = Model {
        ir_version: 8,
        producer_name: producer.to_string(),
        opsets: vec![(String::new(), OPSET)],
        ..Model::default()
    };
    m.graph.name = producer.to_string();
    m.graph.nodes = ex.nodes;
    m.graph.initializers = ex.initializers;
    m.graph.inputs = vec![ValueInfo { name: "input".into(), elem_type: onnx::data_type::FLOAT, dims: dims(input) }];
    m.graph.outputs = vec![ValueInfo { name: out, elem_type: onnx::data_type::FLOAT, dims: dims(&out_shape[1..]) }];
    m.graph.check().map_err(|e| Error::Invalid(format!("the exported graph is broken: {e}")))?;
    Ok(m)
}
