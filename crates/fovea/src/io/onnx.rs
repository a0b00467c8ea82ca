//! ONNX models as their files hold them: the protobuf messages of `onnx.proto` (model,
//! graph, node, attribute, tensor, value info) read from the wire format, with tensors
//! stored in external data files resolved beside the model. No generated code and no
//! build-time tool: a reader of the wire format and of the fields an inference runtime
//! needs; other fields are skipped, as every protobuf reader skips fields it does not know.
//!
//! Everything read is bounded by the file: the file is read whole within the memory budget,
//! every length is checked against the bytes left before anything is taken, repeated
//! fields hold no more items than their bytes, graphs nest at most [`MAX_DEPTH`] deep, and
//! external data must lie beside the model, its size checked against the budget.

use crate::{Error, Result};
use std::path::{Component, Path};

/// How deep graphs may nest inside attributes (the branches of `If`, the body of `Loop`).
pub const MAX_DEPTH: usize = 32;

/// An ONNX model: its versions, the operator sets it uses and its graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// The IR version of the file format.
    pub ir_version: i64,
    /// The program that wrote it (`pytorch`, `tf2onnx`, ...).
    pub producer_name: String,
    /// The operator sets imported: (domain, version); the default domain is `""`.
    pub opsets: Vec<(String, i64)>,
    /// The main graph.
    pub graph: Graph,
}

impl Model {
    /// The version of the operator set imported for `domain` (`""` and `"ai.onnx"` are
    /// both ONNX's own), if the model imports it.
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let onnx = |d: &str| d.is_empty() || d == "ai.onnx";
        self.opsets.iter().find(|(d, _)| d == domain || (onnx(d) && onnx(domain))).map(|(_, v)| *v)
    }

    /// Every operator the model uses, in its graph and the graphs nested in attributes:
    /// (domain, op_type), each once, sorted.
    pub fn operators(&self) -> std::collections::BTreeSet<(String, String)> {
        let mut found = std::collections::BTreeSet::new();
        collect_operators(&self.graph, &mut found);
        found
    }
}

fn collect_operators(graph: &Graph, found: &mut std::collections::BTreeSet<(String, String)>) {
    for node in &graph.nodes {
        found.insert((node.domain.clone(), node.op_type.clone()));
        for a in &node.attributes {
            match &a.value {
                AttributeValue::Graph(g) => collect_operators(g, found),
                AttributeValue::Graphs(gs) => gs.iter().for_each(|g| collect_operators(g, found)),
                _ => {}
            }
        }
    }
}

impl Graph {
    /// The inputs a run must be given: the declared inputs that no initializer fills
    /// (older exporters list every weight as an input too).
    pub fn runtime_inputs(&self) -> Vec<&ValueInfo> {
        self.inputs.iter().filter(|i| !self.initializers.iter().any(|t| t.name == i.name)).collect()
    }

    /// Checks that the graph can run as written: every value a node reads is a graph
    /// input, an initializer, or made by an earlier node (ONNX requires the nodes in
    /// topological order, so a cycle shows up as a value read before it is made); no value
    /// is made twice; every graph output is made. Graphs nested in attributes are checked
    /// too, seeing the values of the graphs around them. Lists every problem (the first 20).
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut problems = Vec::new();
        check_graph(self, &std::collections::HashSet::new(), &mut problems);
        if problems.is_empty() {
            return Ok(());
        }
        let more = problems.len().saturating_sub(20);
        problems.truncate(20);
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        Err(problems.join("; "))
    }
}

fn check_graph(graph: &Graph, outer: &std::collections::HashSet<String>, problems: &mut Vec<String>) {
    let mut known: std::collections::HashSet<String> = outer.clone();
    known.extend(graph.inputs.iter().map(|v| v.name.clone()));
    known.extend(graph.initializers.iter().map(|t| t.name.clone()));
    let made_by: std::collections::HashMap<&str, usize> =
        graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.as_str(), i))).collect();
    let mut made = std::collections::HashSet::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let what = format!("node {i} ({} {:?})", node.op_type, node.name);
        for input in node.inputs.iter().filter(|v| !v.is_empty()) {
            if known.contains(input) {
                continue;
            }
            problems.push(match made_by.get(input.as_str()) {
                Some(&j) if j >= i => format!(
                    "{what} reads {input:?}, made only by node {j} after it (the nodes are out of order, or form a cycle)"
                ),
                _ => format!("{what} reads {input:?}, which is no input, initializer or node output"),
            });
        }
        for a in &node.attributes {
            match &a.value {
                AttributeValue::Graph(g) => check_graph(g, &known, problems),
                AttributeValue::Graphs(gs) => gs.iter().for_each(|g| check_graph(g, &known, problems)),
                _ => {}
            }
        }
        for output in node.outputs.iter().filter(|v| !v.is_empty()) {
            if !made.insert(output.clone()) {
                problems.push(format!("{what} makes {output:?}, which an earlier node already made"));
            }
            known.insert(output.clone());
        }
    }
    for output in &graph.outputs {
        if !known.contains(&output.name) {
            problems.push(format!("graph {:?} has output {:?}, which nothing makes", graph.name, output.name));
        }
    }
}

/// A graph: nodes in topological order, constant tensors, inputs and outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Its name.
    pub name: String,
    /// The nodes, in the order the file gives (ONNX requires a topological one).
    pub nodes: Vec<Node>,
    /// The constant tensors (weights), by name.
    pub initializers: Vec<TensorData>,
    /// The graph's inputs (initializers may be listed among them too).
    pub inputs: Vec<ValueInfo>,
    /// The graph's outputs.
    pub outputs: Vec<ValueInfo>,
}

/// One operator application.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Its name (may be empty).
    pub name: String,
    /// The operator (`Conv`, `Relu`, ...).
    pub op_type: String,
    /// The operator's domain (`""` for ONNX's own).
    pub domain: String,
    /// The names of its inputs; `""` for an optional input left out.
    pub inputs: Vec<String>,
    /// The names of its outputs.
    pub outputs: Vec<String>,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
}

impl Node {
    /// The attribute called `name`, if given.
    pub fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.attributes.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

/// A named attribute of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: AttributeValue,
}

/// An attribute's value, of one of ONNX's attribute types.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// FLOAT
    Float(f32),
    /// INT
    Int(i64),
    /// STRING (bytes, UTF-8 by convention)
    String(Vec<u8>),
    /// TENSOR
    Tensor(TensorData),
    /// GRAPH
    Graph(Graph),
    /// FLOATS
    Floats(Vec<f32>),
    /// INTS
    Ints(Vec<i64>),
    /// STRINGS
    Strings(Vec<Vec<u8>>),
    /// TENSORS
    Tensors(Vec<TensorData>),
    /// GRAPHS
    Graphs(Vec<Graph>),
}

/// The element types of ONNX tensors that fovea reads (`TensorProto.DataType`).
pub mod data_type {
    /// 32-bit float
    pub const FLOAT: i32 = 1;
    /// unsigned 8-bit integer
    pub const UINT8: i32 = 2;
    /// signed 8-bit integer
    pub const INT8: i32 = 3;
    /// unsigned 16-bit integer
    pub const UINT16: i32 = 4;
    /// signed 16-bit integer
    pub const INT16: i32 = 5;
    /// signed 32-bit integer
    pub const INT32: i32 = 6;
    /// signed 64-bit integer
    pub const INT64: i32 = 7;
    /// boolean
    pub const BOOL: i32 = 9;
    /// IEEE half precision
    pub const FLOAT16: i32 = 10;
    /// 64-bit float
    pub const DOUBLE: i32 = 11;
    /// unsigned 32-bit integer
    pub const UINT32: i32 = 12;
    /// unsigned 64-bit integer
    pub const UINT64: i32 = 13;
    /// bfloat16: the upper half of a 32-bit float
    pub const BFLOAT16: i32 = 16;
    /// float8, 4 exponent bits, 3 mantissa bits, no infinity ([`crate::io::narrow`])
    pub const FLOAT8E4M3FN: i32 = 17;
    /// float8 E4M3 without negative zero
    pub const FLOAT8E4M3FNUZ: i32 = 18;
    /// float8, 5 exponent bits, 2 mantissa bits, with infinities
    pub const FLOAT8E5M2: i32 = 19;
    /// float8 E5M2 without negative zero or infinities
    pub const FLOAT8E5M2FNUZ: i32 = 20;
    /// unsigned 4-bit integer, two per byte
    pub const UINT4: i32 = 21;
    /// signed 4-bit integer, two per byte
    pub const INT4: i32 = 22;
    /// float4, 2 exponent bits, 1 mantissa bit, two per byte
    pub const FLOAT4E2M1: i32 = 23;
    /// a power of two: 8 exponent bits only
    pub const FLOAT8E8M0: i32 = 24;
    /// unsigned 2-bit integer, four per byte
    pub const UINT2: i32 = 25;
    /// signed 2-bit integer, four per byte
    pub const INT2: i32 = 26;
}

/// A tensor as the file stores it: its shape, element type and contents (in `raw_data`,
/// or in the typed field for its type, or in an external file, already read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorData {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub dims: Vec<i64>,
    /// Its element type ([`data_type`]).
    pub data_type: i32,
    raw: Option<Vec<u8>>,
    floats: Vec<f32>,
    int32s: Vec<i32>,
    int64s: Vec<i64>,
    doubles: Vec<f64>,
    uint64s: Vec<u64>,
    external: Vec<(String, String)>,
}

impl TensorData {
    /// The number of elements its shape holds.
    pub fn len(&self) -> Result<usize> {
        self.dims.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d)
                .ok()
                .and_then(|d| n.checked_mul(d))
                .ok_or_else(|| Error::Invalid(format!("ONNX tensor {:?}: impossible shape {:?}", self.name, self.dims)))
        })
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Its values as 64-bit floats (exact for every type but the 64-bit integers beyond
    /// 2^53), checked to fill its shape.
    pub fn to_f64s(&self) -> Result<Vec<f64>> {
        use data_type::*;
        let n = self.len()?;
        let invalid = |what: String| Error::Invalid(format!("ONNX tensor {:?}: {what}", self.name));
        if super::narrow::is_narrow(self.data_type) {
            // packed bytes; the typed field holds one byte per entry
            let typed: Vec<u8>;
            let bytes = match &self.raw {
                Some(raw) => raw.as_slice(),
                None => {
                    typed = self.int32s.iter().map(|&v| v as u8).collect();
                    &typed
                }
            };
            return super::narrow::decode(self.data_type, bytes, n).ok_or_else(|| {
                invalid(format!(
                    "{} bytes of data for {n} elements of {} bits (shape {:?})",
                    bytes.len(),
                    super::narrow::bits(self.data_type),
                    self.dims
                ))
            });
        }
        let values: Vec<f64> = match &self.raw {
            Some(raw) => {
                let size = match self.data_type {
                    BOOL | UINT8 | INT8 => 1,
                    UINT16 | INT16 | FLOAT16 | BFLOAT16 => 2,
                    FLOAT | INT32 | UINT32 => 4,
                    INT64 | DOUBLE | UINT64 => 8,
                    t => return Err(invalid(format!("element type {t} is not one fovea reads"))),
                };
                if raw.len() != n.saturating_mul(size) {
                    return Err(invalid(format!(
                        "{} bytes of data for {n} elements of {size} bytes (shape {:?})",
                        raw.len(),
                        self.dims
                    )));
                }
                raw.chunks_exact(size).map(|b| element(self.data_type, b)).collect()
            }
            None => match self.data_type {
                FLOAT => self.floats.iter().map(|&v| v as f64).collect(),
                FLOAT16 => self.int32s.iter().map(|&v| half_to_f32(v as u16) as f64).collect(),
                BFLOAT16 => self.int32s.iter().map(|&v| f32::from_bits((v as u32) << 16) as f64).collect(),
                BOOL | UINT8 | INT8 | UINT16 | INT16 | INT32 => self.int32s.iter().map(|&v| v as f64).collect(),
                INT64 => self.int64s.iter().map(|&v| v as f64).collect(),
                DOUBLE => self.doubles.clone(),
                UINT32 | UINT64 => self.uint64s.iter().map(|&v| v as f64).collect(),
                t => return Err(invalid(format!("element type {t} is not one fovea reads"))),
            },
        };
        if values.len() != n {
            return Err(invalid(format!("{} values for shape {:?} ({n} elements)", values.len(), self.dims)));
        }
        Ok(values)
    }

    /// Its values as 64-bit integers (shapes, axes, indices); of another type, checked to
    /// be whole numbers.
    pub fn to_i64s(&self) -> Result<Vec<i64>> {
        if self.data_type != data_type::INT64 {
            return self
                .to_f64s()?
                .into_iter()
                .map(|v| {
                    (v.fract() == 0.0 && v.abs() < 9.2e18).then_some(v as i64).ok_or_else(|| {
                        Error::Invalid(format!("ONNX tensor {:?}: {v} is not a whole number", self.name))
                    })
                })
                .collect();
        }
        let n = self.len()?;
        let values: Vec<i64> = match &self.raw {
            Some(raw) if raw.len() == n.saturating_mul(8) => {
                raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
            }
            Some(raw) => Vec::with_capacity(raw.len().min(n)),
            None => self.int64s.clone(),
        };
        if values.len() != n {
            return Err(Error::Invalid(format!(
                "ONNX tensor {:?}: data for shape {:?} does not fill it",
                self.name, self.dims
            )));
        }
        Ok(values)
    }

    /// Its values as a fovea tensor of its shape (f32; every type converts).
    pub fn to_tensor(&self) -> Result<crate::Tensor> {
        let n = self.len()?;
        crate::budget::check(&format!("ONNX tensor {:?}", self.name), (n as u64).saturating_mul(4))?;
        let shape: Vec<usize> = self.dims.iter().map(|&d| d as usize).collect();
        match &self.raw {
            // weights: straight from their bytes, with no f64 copy on the way
            Some(raw) if self.data_type == data_type::FLOAT && raw.len() == 4 * n => {
                let values = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                crate::Tensor::new(&shape, values)
            }
            _ => crate::Tensor::new(&shape, self.to_f64s()?.into_iter().map(|v| v as f32).collect()),
        }
    }

    /// An int64 tensor named `name` of shape `dims` (shapes, axes, indices in a model built
    /// in code).
    pub fn from_i64s(name: &str, dims: &[usize], values: &[i64]) -> TensorData {
        TensorData {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::INT64,
            raw: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..TensorData::default()
        }
    }

    /// A float tensor named `name` holding `t` (to build or complete a model in code).
    pub fn from_tensor(name: &str, t: &crate::Tensor) -> TensorData {
        TensorData {
            name: name.to_string(),
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            raw: Some(t.data().iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..TensorData::default()
        }
    }
}

/// One little-endian element of type `t` from its bytes.
fn element(t: i32, b: &[u8]) -> f64 {
    use data_type::*;
    match t {
        BOOL | UINT8 => b[0] as f64,
        INT8 => b[0] as i8 as f64,
        UINT16 => u16::from_le_bytes([b[0], b[1]]) as f64,
        INT16 => i16::from_le_bytes([b[0], b[1]]) as f64,
        FLOAT16 => half_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64,
        BFLOAT16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16) as f64,
        FLOAT => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        INT32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        UINT32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        INT64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        UINT64 => u64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        _ => f64::from_le_bytes(b.try_into().expect("8 bytes")),
    }
}

/// IEEE half precision to single.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = ((h >> 10) & 0x1f) as i32;
    let fraction = (h & 0x3ff) as f32;
    sign * match exponent {
        0 => fraction * 2f32.powi(-24),
        31 if fraction == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + fraction / 1024.0) * 2f32.powi(e - 15),
    }
}

/// A graph input's or output's name, element type and shape (a dimension is a number, or
/// a name such as `"batch"`, or unknown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueInfo {
    /// Its name.
    pub name: String,
    /// Its element type ([`data_type`]); 0 when not a tensor or not given.
    pub elem_type: i32,
    /// Its dimensions, if the file gives a shape.
    pub dims: Option<Vec<Dim>>,
}

/// One dimension of a value's shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    /// A known size.
    Value(i64),
    /// A symbolic size (`"N"`, `"batch"`).
    Param(String),
    /// Neither given.
    Unknown,
}

/// Reads the ONNX model at `path`, with any tensors it stores in external data files
/// (which must lie in the model's folder or below it). Errors name the file.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = crate::budget::read_file(path)?;
    let mut model = parse(&bytes).map_err(|e| Error::format(path, format!("not a readable ONNX model: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    resolve_external(&mut model.graph, dir).map_err(|e| e.in_file(path))?;
    Ok(model)
}

/// A model from the bytes of an ONNX file; tensors in external files are left unread
/// ([`load`] reads them).
pub fn parse(bytes: &[u8]) -> std::result::Result<Model, String> {
    let mut model = Model { ir_version: 0, producer_name: String::new(), opsets: Vec::new(), graph: Graph::default() };
    let mut graph = None;
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 0) => model.ir_version = r.varint()? as i64,
            (2, 2) => model.producer_name = r.string()?,
            (7, 2) => graph = Some(read_graph(r.bytes()?, 0).map_err(|e| format!("graph: {e}"))?),
            (8, 2) => {
                let mut o = Reader::new(r.bytes()?);
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((f, w)) = o.key()? {
                    match (f, w) {
                        (1, 2) => domain = o.string()?,
                        (2, 0) => version = o.varint()? as i64,
                        _ => o.skip(w)?,
                    }
                }
                model.opsets.push((domain, version));
            }
            _ => r.skip(wire)?,
        }
    }
    model.graph = graph.ok_or("no graph in the file")?;
    Ok(model)
}

/// A tensor from the bytes of a serialized `TensorProto` (the `.pb` files of ONNX's test
/// data, `onnx.save_tensor`'s output).
pub fn parse_tensor(bytes: &[u8]) -> std::result::Result<TensorData, String> {
    read_tensor(bytes)
}

fn read_graph(bytes: &[u8], depth: usize) -> std::result::Result<Graph, String> {
    if depth >= MAX_DEPTH {
        return Err(format!("graphs nested more than {MAX_DEPTH} deep"));
    }
    let mut g = Graph::default();
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => {
                let i = g.nodes.len();
                g.nodes.push(read_node(r.bytes()?, depth).map_err(|e| format!("node {i}: {e}"))?);
            }
            (2, 2) => g.name = r.string()?,
            (5, 2) => {
                let i = g.initializers.len();
                g.initializers.push(read_tensor(r.bytes()?).map_err(|e| format!("initializer {i}: {e}"))?);
            }
            (11, 2) => g.inputs.push(read_value_info(r.bytes()?)?),
            (12, 2) => g.outputs.push(read_value_info(r.bytes()?)?),
            _ => r.skip(wire)?,
        }
    }
    Ok(g)
}

fn read_node(bytes: &[u8], depth: usize) -> std::result::Result<Node, String> {
    let mut n = Node::default();
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => n.inputs.push(r.string()?),
            (2, 2) => n.outputs.push(r.string()?),
            (3, 2) => n.name = r.string()?,
            (4, 2) => n.op_type = r.string()?,
            (7, 2) => n.domain = r.string()?,
            (5, 2) => n.attributes.push(read_attribute(r.bytes()?, depth)?),
            _ => r.skip(wire)?,
        }
    }
    Ok(n)
}

fn read_attribute(bytes: &[u8], depth: usize) -> std::result::Result<Attribute, String> {
    let mut name = String::new();
    let mut kind = 0;
    let (mut f, mut i, mut s, mut t, mut g) = (None, None, None, None, None);
    let (mut floats, mut ints, mut strings, mut tensors, mut graphs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        let named = |e: String| format!("attribute {name:?}: {e}");
        match (field, wire) {
            (1, 2) => name = r.string()?,
            (20, 0) => kind = r.varint()?,
            (2, 5) => f = Some(r.float()?),
            (3, 0) => i = Some(r.varint()? as i64),
            (4, 2) => s = Some(r.bytes()?.to_vec()),
            (5, 2) => t = Some(read_tensor(r.bytes()?).map_err(named)?),
            (6, 2) => g = Some(read_graph(r.bytes()?, depth + 1).map_err(named)?),
            (7, 2) => floats.extend(r.packed_floats()?),
            (7, 5) => floats.push(r.float()?),
            (8, 2) => ints.extend(r.packed_varints()?.into_iter().map(|v| v as i64)),
            (8, 0) => ints.push(r.varint()? as i64),
            (9, 2) => strings.push(r.bytes()?.to_vec()),
            (10, 2) => tensors.push(read_tensor(r.bytes()?).map_err(named)?),
            (11, 2) => graphs.push(read_graph(r.bytes()?, depth + 1).map_err(named)?),
            _ => r.skip(wire)?,
        }
    }
    let missing = || format!("attribute {name:?} of type {kind} has no value");
    // the type field (AttributeProto.AttributeType) says which value is meant
    let value = match kind {
        1 => AttributeValue::Float(f.ok_or_else(missing)?),
        2 => AttributeValue::Int(i.ok_or_else(missing)?),
        3 => AttributeValue::String(s.ok_or_else(missing)?),
        4 => AttributeValue::Tensor(t.ok_or_else(missing)?),
        5 => AttributeValue::Graph(g.ok_or_else(missing)?),
        6 => AttributeValue::Floats(floats),
        7 => AttributeValue::Ints(ints),
        8 => AttributeValue::Strings(strings),
        9 => AttributeValue::Tensors(tensors),
        10 => AttributeValue::Graphs(graphs),
        other => return Err(format!("attribute {name:?} has a type fovea does not read ({other})")),
    };
    Ok(Attribute { name, value })
}

fn read_tensor(bytes: &[u8]) -> std::result::Result<TensorData, String> {
    let mut t = TensorData::default();
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => t.dims.extend(r.packed_varints()?.into_iter().map(|v| v as i64)),
            (1, 0) => t.dims.push(r.varint()? as i64),
            (2, 0) => t.data_type = r.varint()? as i32,
            (4, 2) => t.floats.extend(r.packed_floats()?),
            (4, 5) => t.floats.push(r.float()?),
            (5, 2) => t.int32s.extend(r.packed_varints()?.into_iter().map(|v| v as i32)),
            (5, 0) => t.int32s.push(r.varint()? as i32),
            (7, 2) => t.int64s.extend(r.packed_varints()?.into_iter().map(|v| v as i64)),
            (7, 0) => t.int64s.push(r.varint()? as i64),
            (8, 2) => t.name = r.string()?,
            (9, 2) => t.raw = Some(r.bytes()?.to_vec()),
            (10, 2) => t.doubles.extend(r.packed_fixed64()?.into_iter().map(f64::from_bits)),
            (10, 1) => t.doubles.push(f64::from_bits(r.fixed64()?)),
            (11, 2) => t.uint64s.extend(r.packed_varints()?),
            (11, 0) => t.uint64s.push(r.varint()?),
            (13, 2) => {
                let mut e = Reader::new(r.bytes()?);
                let (mut key, mut value) = (String::new(), String::new());
                while let Some((f, w)) = e.key()? {
                    match (f, w) {
                        (1, 2) => key = e.string()?,
                        (2, 2) => value = e.string()?,
                        _ => e.skip(w)?,
                    }
                }
                t.external.push((key, value));
            }
            _ => r.skip(wire)?,
        }
    }
    if let Some(d) = t.dims.iter().find(|&&d| d < 0) {
        return Err(format!("tensor {:?} has a negative dimension ({d})", t.name));
    }
    Ok(t)
}

fn read_value_info(bytes: &[u8]) -> std::result::Result<ValueInfo, String> {
    let mut v = ValueInfo::default();
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => v.name = r.string()?,
            // TypeProto: tensor_type (1) holds elem_type (1) and shape (2)
            (2, 2) => {
                let mut ty = Reader::new(r.bytes()?);
                while let Some((f, w)) = ty.key()? {
                    if (f, w) != (1, 2) {
                        ty.skip(w)?;
                        continue;
                    }
                    let mut tensor = Reader::new(ty.bytes()?);
                    while let Some((f, w)) = tensor.key()? {
                        match (f, w) {
                            (1, 0) => v.elem_type = tensor.varint()? as i32,
                            (2, 2) => v.dims = Some(read_shape(tensor.bytes()?)?),
                            _ => tensor.skip(w)?,
                        }
                    }
                }
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(v)
}

fn read_shape(bytes: &[u8]) -> std::result::Result<Vec<Dim>, String> {
    let mut dims = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.key()? {
        if (field, wire) != (1, 2) {
            r.skip(wire)?;
            continue;
        }
        let mut d = Reader::new(r.bytes()?);
        let mut dim = Dim::Unknown;
        while let Some((f, w)) = d.key()? {
            match (f, w) {
                (1, 0) => dim = Dim::Value(d.varint()? as i64),
                (2, 2) => dim = Dim::Param(d.string()?),
                _ => d.skip(w)?,
            }
        }
        dims.push(dim);
    }
    Ok(dims)
}

/// Reads every tensor of `graph` (and of the graphs inside its attributes) that is stored
/// in an external file under `dir`.
fn resolve_external(graph: &mut Graph, dir: &Path) -> Result<()> {
    for t in &mut graph.initializers {
        read_external(t, dir)?;
    }
    for node in &mut graph.nodes {
        for a in &mut node.attributes {
            match &mut a.value {
                AttributeValue::Tensor(t) => read_external(t, dir)?,
                AttributeValue::Tensors(ts) => ts.iter_mut().try_for_each(|t| read_external(t, dir))?,
                AttributeValue::Graph(g) => resolve_external(g, dir)?,
                AttributeValue::Graphs(gs) => gs.iter_mut().try_for_each(|g| resolve_external(g, dir))?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn read_external(t: &mut TensorData, dir: &Path) -> Result<()> {
    if t.external.is_empty() {
        return Ok(());
    }
    let get = |key: &str| t.external.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let invalid = |what: String| Error::Invalid(format!("ONNX tensor {:?}: {what}", t.name));
    let location = get("location").ok_or_else(|| invalid("external data with no location".into()))?;
    // beside the model or below it, never elsewhere on the machine
    let relative = Path::new(location);
    if relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(invalid(format!("external data at {location:?}, outside the model's folder")));
    }
    let number = |key: &str| -> Result<Option<u64>> {
        get(key).map(|v| v.parse::<u64>().map_err(|_| invalid(format!("external data {key} {v:?}")))).transpose()
    };
    let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
    let path = dir.join(relative);
    let size = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
    let length = length.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(Error::format(
            &path,
            format!("tensor {:?} is said to be at bytes {offset}..+{length} of a {size}-byte file", t.name),
        ));
    }
    crate::budget::check(&format!("ONNX tensor {:?} in {}", t.name, path.display()), length)?;
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    file.seek(std::io::SeekFrom::Start(offset)).map_err(|e| Error::io(&path, e))?;
    let mut raw = vec![0u8; length as usize];
    file.read_exact(&mut raw).map_err(|e| Error::io(&path, e))?;
    t.raw = Some(raw);
    t.external.clear();
    Ok(())
}

/// Writes `model` to `path` (atomically: a temporary file renamed into place), every
/// tensor inside the file.
pub fn save(path: &Path, model: &Model) -> Result<()> {
    crate::io::write_atomic(path, &encode(model))
}

/// The bytes of `model` as a serialized `ModelProto` (the inverse of [`parse`]).
pub fn encode(model: &Model) -> Vec<u8> {
    let mut w = Writer::default();
    w.varint(1, model.ir_version as u64);
    w.string(2, &model.producer_name);
    w.message(7, encode_graph(&model.graph));
    for (domain, version) in &model.opsets {
        let mut o = Writer::default();
        o.string(1, domain);
        o.varint(2, *version as u64);
        w.message(8, o.0);
    }
    w.0
}

fn encode_graph(g: &Graph) -> Vec<u8> {
    let mut w = Writer::default();
    for n in &g.nodes {
        w.message(1, encode_node(n));
    }
    w.string(2, &g.name);
    for t in &g.initializers {
        w.message(5, encode_tensor(t));
    }
    for v in &g.inputs {
        w.message(11, encode_value_info(v));
    }
    for v in &g.outputs {
        w.message(12, encode_value_info(v));
    }
    w.0
}

fn encode_node(n: &Node) -> Vec<u8> {
    let mut w = Writer::default();
    // an empty name is an optional input left out: written, to keep the positions
    n.inputs.iter().for_each(|i| w.bytes(1, i.as_bytes()));
    n.outputs.iter().for_each(|o| w.bytes(2, o.as_bytes()));
    w.string(3, &n.name);
    w.string(4, &n.op_type);
    for a in &n.attributes {
        let mut e = Writer::default();
        e.string(1, &a.name);
        let kind = match &a.value {
            AttributeValue::Float(f) => {
                e.key(2, 5);
                e.0.extend(f.to_le_bytes());
                1
            }
            AttributeValue::Int(i) => {
                // written even when 0: an attribute's value is always present
                e.key(3, 0);
                e.raw_varint(*i as u64);
                2
            }
            AttributeValue::String(s) => {
                e.bytes(4, s);
                3
            }
            AttributeValue::Tensor(t) => {
                e.message(5, encode_tensor(t));
                4
            }
            AttributeValue::Graph(g) => {
                e.message(6, encode_graph(g));
                5
            }
            AttributeValue::Floats(v) => {
                e.bytes(7, &v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>());
                6
            }
            AttributeValue::Ints(v) => {
                e.packed_varints(8, v.iter().map(|&i| i as u64));
                7
            }
            AttributeValue::Strings(v) => {
                v.iter().for_each(|s| e.bytes(9, s));
                8
            }
            AttributeValue::Tensors(v) => {
                v.iter().for_each(|t| e.message(10, encode_tensor(t)));
                9
            }
            AttributeValue::Graphs(v) => {
                v.iter().for_each(|g| e.message(11, encode_graph(g)));
                10
            }
        };
        e.varint(20, kind);
        w.message(5, e.0);
    }
    w.string(7, &n.domain);
    w.0
}

fn encode_tensor(t: &TensorData) -> Vec<u8> {
    let mut w = Writer::default();
    w.packed_varints(1, t.dims.iter().map(|&d| d as u64));
    w.varint(2, t.data_type as u64);
    if !t.floats.is_empty() {
        w.bytes(4, &t.floats.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>());
    }
    w.packed_varints(5, t.int32s.iter().map(|&i| i as i64 as u64));
    w.packed_varints(7, t.int64s.iter().map(|&i| i as u64));
    w.string(8, &t.name);
    if let Some(raw) = &t.raw {
        w.bytes(9, raw);
    }
    if !t.doubles.is_empty() {
        w.bytes(10, &t.doubles.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>());
    }
    w.packed_varints(11, t.uint64s.iter().copied());
    w.0
}

fn encode_value_info(v: &ValueInfo) -> Vec<u8> {
    let mut tensor = Writer::default();
    tensor.varint(1, v.elem_type as u64);
    if let Some(dims) = &v.dims {
        let mut shape = Writer::default();
        for d in dims {
            let mut dim = Writer::default();
            match d {
                Dim::Value(x) => {
                    dim.key(1, 0);
                    dim.raw_varint(*x as u64);
                }
                Dim::Param(p) => dim.string(2, p),
                Dim::Unknown => {}
            }
            shape.message(1, dim.0);
        }
        tensor.message(2, shape.0);
    }
    let mut ty = Writer::default();
    ty.message(1, tensor.0);
    let mut w = Writer::default();
    w.string(1, &v.name);
    w.message(2, ty.0);
    w.0
}

/// Protobuf wire-format output: fields in the order written, zero values of scalar
/// fields left out (as proto3 does), messages and packed lists length-delimited.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.raw_varint(((field as u64) << 3) | wire as u64);
    }
    fn varint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.raw_varint(v);
        }
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn message(&mut self, field: u32, m: Vec<u8>) {
        self.bytes(field, &m);
    }
    fn packed_varints(&mut self, field: u32, values: impl Iterator<Item = u64>) {
        let mut packed = Writer::default();
        values.for_each(|v| packed.raw_varint(v));
        if !packed.0.is_empty() {
            self.bytes(field, &packed.0);
        }
    }
}

/// A cursor over protobuf wire-format bytes; every read is checked against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let &byte = self.bytes.get(self.pos).ok_or("cut off inside a number")?;
            self.pos += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number longer than 10 bytes".into())
    }

    /// The next field's number and wire type, or None at the end.
    fn key(&mut self) -> std::result::Result<Option<(u64, u8)>, String> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(format!("a field of {n} bytes where {left} are left (the file is cut off or damaged)"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A length-delimited field.
    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| format!("a field of {n} bytes"))?)
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a name that is not UTF-8".into())
    }

    fn float(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn fixed64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn packed_varints(&mut self) -> std::result::Result<Vec<u64>, String> {
        let mut inner = Reader::new(self.bytes()?);
        let mut out = Vec::new();
        while inner.pos < inner.bytes.len() {
            out.push(inner.varint()?);
        }
        Ok(out)
    }

    fn packed_floats(&mut self) -> std::result::Result<Vec<f32>, String> {
        let b = self.bytes()?;
        if b.len() % 4 != 0 {
            return Err(format!("{} bytes of packed floats", b.len()));
        }
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }

    fn packed_fixed64(&mut self) -> std::result::Result<Vec<u64>, String> {
        let b = self.bytes()?;
        if b.len() % 8 != 0 {
            return Err(format!("{} bytes of packed 64-bit values", b.len()));
        }
        Ok(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    /// Skips a field of wire type `wire` that fovea does not read.
    fn skip(&mut self, wire: u8) -> std::result::Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            w => Err(format!("wire type {w}, which ONNX files do not use")),
        }
    }
}
