//! Matrix products: MatMul (NumPy's `matmul`, batched and broadcast) and Gemm.

use super::{check_output, Attrs};
use crate::graph::value::Value;
use crate::kernels::gemm::{matmul as gemm, MatRef};
use crate::tensor::broadcast_shapes;
use crate::{Error, Result, Tensor};

/// `a @ b` as NumPy computes it: 1-D operands become a row or a column, leading
/// dimensions broadcast.
pub fn matmul(a: &Value, b: &Value) -> Result<Value> {
    const OP: &str = "MatMul";
    let (a, b) = (a.tensor(OP)?, b.tensor(OP)?);
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(Error::shape(OP, "operands must have at least one dimension"));
    }
    let a_shape = if a.ndim() == 1 { vec![1, a.shape()[0]] } else { a.shape().to_vec() };
    let b_shape = if b.ndim() == 1 { vec![b.shape()[0], 1] } else { b.shape().to_vec() };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (k2, n) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    if k != k2 {
        return Err(Error::shape(OP, format!("{:?} @ {:?}: inner sizes {k} and {k2} differ", a.shape(), b.shape())));
    }
    let batch = broadcast_shapes(OP, &a_shape[..a_shape.len() - 2], &b_shape[..b_shape.len() - 2])?;
    let mut shape = batch.clone();
    shape.extend([m, n]);
    let len = check_output(OP, &shape)?;
    let count: usize = batch.iter().product();
    // which matrix of each operand every output matrix takes (broadcast indices)
    let pick = |own: &[usize]| -> Vec<usize> {
        let own_batch = &own[..own.len() - 2];
        let index: Vec<usize> = (0..own_batch.iter().product()).collect();
        crate::tensor::broadcast_map(&index, own_batch, &[0usize], &[], &batch, |i, _| i)
    };
    let (ia, ib) = (pick(&a_shape), pick(&b_shape));
    let mut y = vec![0.0f32; len];
    for (i, c) in y.chunks_mut((m * n).max(1)).enumerate().take(count) {
        let am = MatRef::new(&a.data()[ia[i] * m * k..], m, k);
        let bm = MatRef::new(&b.data()[ib[i] * k * n..], k, n);
        gemm(am, bm, c, false, true);
    }
    // 1-D operands lose the dimension they were given
    let mut out = batch;
    if a.ndim() > 1 {
        out.push(m);
    }
    if b.ndim() > 1 {
        out.push(n);
    }
    Ok(Value::float(Tensor::from_parts(out, y)))
}

/// Gemm: `y = alpha · A' B' + beta · C`, A' and B' optionally transposed, C broadcast.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Gemm {
    pub(super) fn from_node(a: &Attrs) -> Result<Gemm> {
        Ok(Gemm {
            alpha: a.float("alpha", 1.0)?,
            beta: a.float("beta", 1.0)?,
            trans_a: a.int("transA", 0)? != 0,
            trans_b: a.int("transB", 0)? != 0,
        })
    }

    pub(super) fn run(&self, a: &Value, b: &Value, c: Option<&Value>) -> Result<Value> {
        const OP: &str = "Gemm";
        let (a, b) = (a.tensor(OP)?, b.tensor(OP)?);
        if a.ndim() != 2 || b.ndim() != 2 {
            return Err(Error::shape(OP, format!("expects matrices, got {:?} and {:?}", a.shape(), b.shape())));
        }
        let (ar, ac) = (a.shape()[0], a.shape()[1]);
        let (br, bc) = (b.shape()[0], b.shape()[1]);
        let mut am = MatRef::new(a.data(), ar, ac);
        let mut bm = MatRef::new(b.data(), br, bc);
        let (m, k) = if self.trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if self.trans_b { (bc, br) } else { (br, bc) };
        if self.trans_a {
            am = am.t();
        }
        if self.trans_b {
            bm = bm.t();
        }
        if k != k2 {
            return Err(Error::shape(OP, format!("A' is {m}x{k} but B' is {k2}x{n}")));
        }
        let len = check_output(OP, &[m, n])?;
        let mut y = vec![0.0f32; len];
        gemm(am, bm, &mut y, false, true);
        if self.alpha != 1.0 {
            y.iter_mut().for_each(|v| *v *= self.alpha);
        }
        if let Some(c) = c.filter(|_| self.beta != 0.0) {
            let c = c.tensor(OP)?;
            if broadcast_shapes(OP, c.shape(), &[m, n])? != [m, n] {
                return Err(Error::shape(OP, format!("C {:?} does not broadcast to {m}x{n}", c.shape())));
            }
            let beta = self.beta;
            y = crate::tensor::broadcast_map(&y, &[m, n], c.data(), c.shape(), &[m, n], |v, c| v + beta * c);
        }
        Ok(Value::float(Tensor::from_parts(vec![m, n], y)))
    }
}
