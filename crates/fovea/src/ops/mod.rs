//! Differentiable operations on [`Var`](crate::Var)s, one file per family, each op's
//! forward and backward side by side. Shapes are checked at the op boundary and errors
//! name the op and the shapes.

mod activation;
mod arith;
mod conv;
mod loss;
mod matmul;
mod methods;
mod norm;
mod pool;

pub use activation::{dropout, leaky_relu, log_softmax, relu, relu6, sigmoid, softmax, tanh};
pub use arith::{
    add, add_scalar, concat, div, exp, flatten, index_select, log, mean, mul, mul_scalar, narrow, neg, pad, permute,
    pow_scalar, reshape, sqrt, sub, sum, sum_dim,
};
pub(crate) use conv::per_dim;
pub use conv::{conv, conv1d, conv2d, conv3d, conv_output_shape, conv_output_size, ConvOptions, Padding};
pub use loss::{bce_with_logits, cross_entropy, mse_loss, triplet_loss};
pub use matmul::{linear, linear_output_shape, matmul};
pub use norm::{batch_norm, l2_normalize};
pub use pool::{adaptive_avg_pool, adaptive_avg_pool_shape, avg_pool, global_avg_pool, max_pool, PoolOptions};
