//! The common ops as methods on [`Var`], so that a forward pass reads left to right:
//! `x.conv2d(&w, Some(&b), &opts)?.relu()?.max_pool(&pool)?`. Each is the free function of
//! the same name in [`crate::ops`], with the same `Result`.

use super::*;
use crate::autograd::Var;
use crate::error::Result;
use crate::tensor::Tensor;

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $( $(#[$doc])* pub fn $name(&self) -> Result<Var> { $name(self) } )*
    };
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $( $(#[$doc])* pub fn $name(&self, other: &Var) -> Result<Var> { $name(self, other) } )*
    };
}

impl Var {
    unary_methods! {
        /// [`relu`]: max(0, x).
        relu;
        /// [`relu6`]: min(max(0, x), 6).
        relu6;
        /// [`sigmoid`]: 1 / (1 + e^-x).
        sigmoid;
        /// [`tanh`].
        tanh;
        /// [`exp`]: e^x.
        exp;
        /// [`log`]: the natural logarithm.
        log;
        /// [`sqrt`].
        sqrt;
        /// [`neg`]: -x.
        neg;
        /// [`sum`] of all elements (a scalar).
        sum;
        /// [`mean`] of all elements (a scalar).
        mean;
        /// [`flatten`]: `[N, ...]` to `[N, rest]`.
        flatten;
        /// [`global_avg_pool`]: the mean of each channel.
        global_avg_pool;
    }

    binary_methods! {
        /// [`add`], broadcasting.
        add;
        /// [`sub`], broadcasting.
        sub;
        /// [`mul`], broadcasting.
        mul;
        /// [`div`], broadcasting.
        div;
        /// [`matmul`]: the matrix product.
        matmul;
    }

    /// [`leaky_relu`]: x for x > 0, else `slope` · x.
    pub fn leaky_relu(&self, slope: f32) -> Result<Var> {
        leaky_relu(self, slope)
    }
    /// [`add_scalar`]: x + s.
    pub fn add_scalar(&self, s: f32) -> Result<Var> {
        add_scalar(self, s)
    }
    /// [`mul_scalar`]: x · s.
    pub fn mul_scalar(&self, s: f32) -> Result<Var> {
        mul_scalar(self, s)
    }
    /// [`pow_scalar`]: x^p.
    pub fn pow_scalar(&self, p: f32) -> Result<Var> {
        pow_scalar(self, p)
    }
    /// [`softmax`] along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Var> {
        softmax(self, dim)
    }
    /// [`log_softmax`] along `dim`.
    pub fn log_softmax(&self, dim: isize) -> Result<Var> {
        log_softmax(self, dim)
    }
    /// [`sum_dim`]: the sum over `dim`.
    pub fn sum_dim(&self, dim: isize, keepdim: bool) -> Result<Var> {
        sum_dim(self, dim, keepdim)
    }
    /// [`reshape`] to `shape`.
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        reshape(self, shape)
    }
    /// [`permute`] the axes.
    pub fn permute(&self, dims: &[usize]) -> Result<Var> {
        permute(self, dims)
    }
    /// [`narrow`]: `len` entries of `dim` from `start`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Var> {
        narrow(self, dim, start, len)
    }
    /// [`conv2d`] with weight `w`, optional bias `b`.
    pub fn conv2d(&self, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
        conv2d(self, w, b, opts)
    }
    /// [`conv`] of any of 1 to 3 spatial dimensions.
    pub fn conv(&self, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
        conv(self, w, b, opts)
    }
    /// [`linear`]: x·wᵀ + b.
    pub fn linear(&self, w: &Var, b: Option<&Var>) -> Result<Var> {
        linear(self, w, b)
    }
    /// [`max_pool`].
    pub fn max_pool(&self, opts: &PoolOptions) -> Result<Var> {
        max_pool(self, opts)
    }
    /// [`avg_pool`].
    pub fn avg_pool(&self, opts: &PoolOptions) -> Result<Var> {
        avg_pool(self, opts)
    }
    /// [`l2_normalize`] along `dim`.
    pub fn l2_normalize(&self, dim: isize, eps: f32) -> Result<Var> {
        l2_normalize(self, dim, eps)
    }
    /// [`cross_entropy`] of these logits against class `targets`.
    pub fn cross_entropy(&self, targets: &[usize]) -> Result<Var> {
        cross_entropy(self, targets)
    }
    /// [`mse_loss`] against `target`.
    pub fn mse_loss(&self, target: &Tensor) -> Result<Var> {
        mse_loss(self, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// A method is its free function: the same values, the same gradient.
    #[test]
    fn methods_equal_the_free_functions() {
        let mut rng = Rng::new(1);
        let x = Var::param(Tensor::randn(&[2, 3, 6, 6], 1.0, &mut rng));
        let w = Var::param(Tensor::randn(&[4, 3, 3, 3], 0.3, &mut rng));
        let opts = ConvOptions::default().padding(Padding::Same);
        let pool = PoolOptions::new(2);
        let chained = x.conv2d(&w, None, &opts).unwrap().relu().unwrap().max_pool(&pool).unwrap();
        let free = max_pool(&relu(&conv2d(&x, &w, None, &opts).unwrap()).unwrap(), &pool).unwrap();
        assert_eq!(chained.value().data(), free.value().data());
        chained.mean().unwrap().backward().unwrap();
        let g = w.grad().unwrap();
        w.zero_grad();
        mean(&free).unwrap().backward().unwrap();
        assert_eq!(g.data(), w.grad().unwrap().data());
    }
}
