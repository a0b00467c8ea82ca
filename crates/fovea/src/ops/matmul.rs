//! Matrix products: `matmul` (2-D, or batched 3-D) and `linear` (x·Wᵀ + b).

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::gemm::{matmul as gemm, MatRef};
use crate::tensor::{fmt_shape, Tensor};

/// `a·b` for `[M, K]·[K, N]`, or batch-wise for `[B, M, K]·[B, K, N]`.
pub fn matmul(a: &Var, b: &Var) -> Result<Var> {
    let (ta, tb) = (a.tensor(), b.tensor());
    let (sa, sb) = (ta.shape().to_vec(), tb.shape().to_vec());
    let ok = match (sa.len(), sb.len()) {
        (2, 2) => sa[1] == sb[0],
        (3, 3) => sa[0] == sb[0] && sa[2] == sb[1],
        _ => false,
    };
    if !ok {
        return Err(Error::shape(
            "matmul",
            format!("cannot multiply {} by {} (inner dimensions must agree)", fmt_shape(&sa), fmt_shape(&sb)),
        ));
    }
    let batched = sa.len() == 3;
    let (batch, m, k, n) = if batched { (sa[0], sa[1], sa[2], sb[2]) } else { (1, sa[0], sa[1], sb[1]) };
    let mut out = vec![0.0f32; batch * m * n];
    for i in 0..batch {
        let a_i = MatRef::new(&ta.data()[i * m * k..], m, k);
        let b_i = MatRef::new(&tb.data()[i * k * n..], k, n);
        gemm(a_i, b_i, &mut out[i * m * n..(i + 1) * m * n], false, true);
    }
    let out_shape = if batched { vec![batch, m, n] } else { vec![m, n] };
    Ok(Var::from_op(
        Tensor::new(&out_shape, out)?,
        &[a, b],
        Box::new(move |g, needs| {
            let mut ga = needs[0].then(|| vec![0.0f32; batch * m * k]);
            let mut gb = needs[1].then(|| vec![0.0f32; batch * k * n]);
            for i in 0..batch {
                let g_i = MatRef::new(&g.data()[i * m * n..], m, n);
                if let Some(ga) = ga.as_mut() {
                    // dA = dY·Bᵀ
                    gemm(g_i, MatRef::new(&tb.data()[i * k * n..], k, n).t(), &mut ga[i * m * k..], false, true);
                }
                if let Some(gb) = gb.as_mut() {
                    // dB = Aᵀ·dY
                    gemm(MatRef::new(&ta.data()[i * m * k..], m, k).t(), g_i, &mut gb[i * k * n..], false, true);
                }
            }
            vec![
                ga.map(|v| Tensor::new(ta.shape(), v).expect("shape")),
                gb.map(|v| Tensor::new(tb.shape(), v).expect("shape")),
            ]
        }),
    ))
}

/// The output shape `[N, out]` of [`linear`] for an input of shape `input`, a weight of
/// shape `weight` and an optional bias of shape `bias`, or its error; computes nothing.
pub fn linear_output_shape(input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<Vec<usize>> {
    if input.len() != 2 || weight.len() != 2 || input[1] != weight[1] {
        return Err(Error::shape(
            "linear",
            format!(
                "input {} does not fit weight {} (expected [N, {}])",
                fmt_shape(input),
                fmt_shape(weight),
                weight.get(1).unwrap_or(&0)
            ),
        ));
    }
    if let Some(sb) = bias {
        if sb != [weight[0]] {
            return Err(Error::shape(
                "linear",
                format!("bias {} does not fit weight {}", fmt_shape(sb), fmt_shape(weight)),
            ));
        }
    }
    let out = vec![input[0], weight[0]];
    crate::tensor::shape_numel("linear", &out)?;
    Ok(out)
}

/// A fully connected layer: `x·Wᵀ + b` with `x [N, in]`, `W [out, in]`, `b [out]`.
pub fn linear(x: &Var, w: &Var, b: Option<&Var>) -> Result<Var> {
    let (tx, tw) = (x.tensor(), w.tensor());
    let tb = b.map(|b| b.tensor());
    crate::tensor::checked_numel(
        "linear",
        &linear_output_shape(tx.shape(), tw.shape(), tb.as_ref().map(|t| t.shape()))?,
    )?;
    let (n, k, m) = (tx.shape()[0], tx.shape()[1], tw.shape()[0]);
    let mut out = vec![0.0f32; n * m];
    if let Some(tb) = &tb {
        for row in out.chunks_mut(m) {
            row.copy_from_slice(tb.data());
        }
    }
    gemm(MatRef::new(tx.data(), n, k), MatRef::new(tw.data(), m, k).t(), &mut out, tb.is_some(), true);
    let mut parents = vec![x, w];
    parents.extend(b);
    Ok(Var::from_op(
        Tensor::new(&[n, m], out)?,
        &parents,
        Box::new(move |g, needs| {
            let gy = MatRef::new(g.data(), n, m);
            let gx = needs[0].then(|| {
                let mut v = vec![0.0f32; n * k];
                gemm(gy, MatRef::new(tw.data(), m, k), &mut v, false, true);
                Tensor::new(&[n, k], v).expect("shape")
            });
            let gw = needs[1].then(|| {
                let mut v = vec![0.0f32; m * k];
                gemm(gy.t(), MatRef::new(tx.data(), n, k), &mut v, false, true);
                Tensor::new(&[m, k], v).expect("shape")
            });
            let mut grads = vec![gx, gw];
            if needs.len() > 2 {
                grads.push(needs[2].then(|| g.sum_dim(0, false).expect("2-D")));
            }
            grads
        }),
    ))
}
