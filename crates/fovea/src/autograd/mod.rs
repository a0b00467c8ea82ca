//! Define-by-run reverse-mode autograd.
//!
//! Every differentiable op takes `Var`s and returns a `Var` that remembers its parents and
//! a backward function. `loss.backward()` orders the graph topologically and hands each
//! node's gradient to its backward function, which returns one gradient per parent (or
//! `None` where a parent needs none). Ops are coarse (a whole convolution), so the graph is
//! small and its overhead is negligible next to the arithmetic.

mod gradcheck;

pub use gradcheck::{gradcheck, GradcheckReport};

use crate::error::Result;
use crate::tensor::Tensor;
use std::cell::{Cell, Ref, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

/// Computes the gradients of an op's parents from the gradient of its output.
/// `needs[i]` says whether parent `i` wants a gradient, so unneeded work can be skipped.
pub type BackwardFn = Box<dyn Fn(&Tensor, &[bool]) -> Vec<Option<Tensor>>>;

struct Node {
    value: RefCell<Tensor>,
    grad: RefCell<Option<Tensor>>,
    requires_grad: Cell<bool>,
    parents: Vec<Var>,
    backward: Option<BackwardFn>,
}

/// A tensor in the autograd graph: a leaf (input or parameter) or an op's result.
#[derive(Clone)]
pub struct Var(Rc<Node>);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` without recording a graph (inference, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?}, requires_grad={})", self.value(), self.requires_grad())
    }
}

impl Var {
    /// A leaf that receives no gradient (data, targets, buffers).
    pub fn constant(value: Tensor) -> Var {
        Var::leaf(value, false)
    }

    /// A leaf that receives a gradient (parameters, or inputs being optimised).
    pub fn param(value: Tensor) -> Var {
        Var::leaf(value, true)
    }

    fn leaf(value: Tensor, requires_grad: bool) -> Var {
        Var(Rc::new(Node {
            value: RefCell::new(value),
            grad: RefCell::new(None),
            requires_grad: Cell::new(requires_grad),
            parents: Vec::new(),
            backward: None,
        }))
    }

    /// The result of an op. Records the graph only if gradients are enabled and some parent
    /// requires a gradient; otherwise the result is a constant.
    pub fn from_op(value: Tensor, parents: &[&Var], backward: BackwardFn) -> Var {
        let requires_grad = is_grad_enabled() && parents.iter().any(|p| p.requires_grad());
        if !requires_grad {
            return Var::constant(value);
        }
        Var(Rc::new(Node {
            value: RefCell::new(value),
            grad: RefCell::new(None),
            requires_grad: Cell::new(true),
            parents: parents.iter().map(|&p| p.clone()).collect(),
            backward: Some(backward),
        }))
    }

    pub fn value(&self) -> Ref<'_, Tensor> {
        self.0.value.borrow()
    }
    /// A cheap copy of the value (the buffer is shared).
    pub fn tensor(&self) -> Tensor {
        self.0.value.borrow().clone()
    }
    pub fn shape(&self) -> Vec<usize> {
        self.0.value.borrow().shape().to_vec()
    }
    /// Replaces the value (optimizer updates, loading checkpoints). The graph is unaffected.
    pub fn set_value(&self, value: Tensor) {
        *self.0.value.borrow_mut() = value;
    }
    /// Applies `f` to the value in place.
    pub fn update(&self, f: impl FnOnce(&mut Tensor)) {
        f(&mut self.0.value.borrow_mut())
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }
    /// Freezes (`false`) or unfreezes a leaf.
    pub fn set_requires_grad(&self, on: bool) {
        self.0.requires_grad.set(on);
    }
    pub fn is_leaf(&self) -> bool {
        self.0.backward.is_none()
    }

    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// Whether two handles refer to the same node.
    pub fn same(&self, other: &Var) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Back-propagates from this scalar: leaves that require a gradient accumulate d(self)/d(leaf).
    pub fn backward(&self) -> Result<()> {
        let n = self.value().numel();
        if n != 1 {
            return Err(crate::Error::shape(
                "backward",
                format!("needs a scalar loss, got a tensor of shape {:?}", self.shape()),
            ));
        }
        self.backward_with(Tensor::ones(&self.shape()))
    }

    /// Back-propagates a given output gradient, which must have the value's shape.
    pub fn backward_with(&self, grad: Tensor) -> Result<()> {
        if grad.shape() != self.shape().as_slice() {
            return Err(crate::Error::shape(
                "backward",
                format!("gradient {:?} does not match the output {:?}", grad.shape(), self.shape()),
            ));
        }
        if !self.requires_grad() {
            return Ok(());
        }
        let order = self.topological_order();
        accumulate(&self.0.grad, grad);
        for var in order.iter().rev() {
            let node = &var.0;
            let Some(backward) = &node.backward else {
                continue;
            };
            // Intermediate gradients are dropped as soon as they are used.
            let Some(g) = node.grad.borrow_mut().take() else {
                continue;
            };
            let needs: Vec<bool> = node.parents.iter().map(|p| p.requires_grad()).collect();
            let grads = backward(&g, &needs);
            for ((parent, pg), need) in node.parents.iter().zip(grads).zip(&needs) {
                if let (Some(pg), true) = (pg, need) {
                    accumulate(&parent.0.grad, pg);
                }
            }
        }
        Ok(())
    }

    /// Nodes reachable from self, parents before children (iterative DFS: deep nets are fine).
    fn topological_order(&self) -> Vec<Var> {
        let mut order = Vec::new();
        let mut visited: HashSet<*const Node> = HashSet::new();
        let mut stack: Vec<(Var, bool)> = vec![(self.clone(), false)];
        while let Some((v, expanded)) = stack.pop() {
            if expanded {
                order.push(v);
                continue;
            }
            if !visited.insert(Rc::as_ptr(&v.0)) {
                continue;
            }
            stack.push((v.clone(), true));
            for p in &v.0.parents {
                if p.requires_grad() && !visited.contains(&Rc::as_ptr(&p.0)) {
                    stack.push((p.clone(), false));
                }
            }
        }
        order
    }
}

fn accumulate(slot: &RefCell<Option<Tensor>>, g: Tensor) {
    let mut slot = slot.borrow_mut();
    match slot.as_mut() {
        Some(existing) => existing.add_assign(&g).expect("gradient shapes agree by construction"),
        None => *slot = Some(g),
    }
}
