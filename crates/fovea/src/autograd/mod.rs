//! Define-by-run reverse-mode autograd.
//!
//! Every differentiable op takes `Var`s and returns a `Var` that remembers its parents and
//! a backward function. `loss.backward()` orders the graph topologically and hands each
//! node's gradient to its backward function, which returns one gradient per parent (or
//! `None` where a parent needs none). Ops are coarse (a whole convolution), so the graph is
//! small and its overhead is negligible next to the arithmetic.
//!
//! As in PyTorch, `backward()` consumes the graph: each node's backward function, the
//! tensors it saved and its links to its parents are freed as soon as the node is done,
//! so activations do not outlive the step and the optimizer updates weights in place.
//! Backward through the same graph a second time is an error. A `Var` is `Send + Sync`:
//! a model's parameters can be shared by threads that run it in evaluation mode.

mod gradcheck;

pub use gradcheck::{gradcheck, GradcheckReport};

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Computes the gradients of an op's parents from the gradient of its output.
/// `needs[i]` says whether parent `i` wants a gradient, so unneeded work can be skipped.
/// It runs once: what it captured is freed when it returns.
pub type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>> + Send>;

/// How a node came to be, and whether backward has passed through it yet.
enum Origin {
    Leaf,
    Op {
        parents: Vec<Var>,
        backward: BackwardFn,
    },
    /// An op's result whose backward has run: its parents and saved tensors are freed.
    Consumed,
}

struct Node {
    value: RwLock<Tensor>,
    grad: Mutex<Option<Tensor>>,
    requires_grad: AtomicBool,
    origin: Mutex<Origin>,
}

/// A tensor in the autograd graph: a leaf (input or parameter) or an op's result.
#[derive(Clone)]
pub struct Var(Arc<Node>);

// A lock is only poisoned by a panic while it was held; the data is still whole.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static GRAD_ENABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Runs `f` without recording a graph (inference, optimizer updates). Per thread, as in
/// PyTorch.
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

/// Whether ops on this thread record a graph (false inside [`no_grad`]).
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
        Var::new(value, false, Origin::Leaf)
    }

    /// A leaf that receives a gradient (parameters, or inputs being optimised).
    pub fn param(value: Tensor) -> Var {
        Var::new(value, true, Origin::Leaf)
    }

    fn new(value: Tensor, requires_grad: bool, origin: Origin) -> Var {
        Var(Arc::new(Node {
            value: RwLock::new(value),
            grad: Mutex::new(None),
            requires_grad: AtomicBool::new(requires_grad),
            origin: Mutex::new(origin),
        }))
    }

    /// The result of an op. Records the graph only if gradients are enabled and some parent
    /// requires a gradient; otherwise the result is a constant.
    pub fn from_op(value: Tensor, parents: &[&Var], backward: BackwardFn) -> Var {
        if !(is_grad_enabled() && parents.iter().any(|p| p.requires_grad())) {
            return Var::constant(value);
        }
        let parents = parents.iter().map(|&p| p.clone()).collect();
        Var::new(value, true, Origin::Op { parents, backward })
    }

    /// The value, borrowed (a read lock: do not hold it across [`Var::set_value`]).
    pub fn value(&self) -> RwLockReadGuard<'_, Tensor> {
        read(&self.0.value)
    }
    /// A cheap copy of the value (the buffer is shared).
    pub fn tensor(&self) -> Tensor {
        self.value().clone()
    }
    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.value().shape().to_vec()
    }
    /// Replaces the value (optimizer updates, loading checkpoints). The graph is unaffected.
    pub fn set_value(&self, value: Tensor) {
        *write(&self.0.value) = value;
    }
    /// Applies `f` to the value in place. The buffer is copied first only if some other
    /// tensor still shares it (a graph that was not run backward, a caller's copy).
    pub fn update(&self, f: impl FnOnce(&mut Tensor)) {
        f(&mut write(&self.0.value))
    }

    /// Whether backward computes a gradient for this node: a parameter that is not frozen, or
    /// an op's result that depends on one.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Freezes (`false`) or unfreezes a leaf.
    pub fn set_requires_grad(&self, on: bool) {
        self.0.requires_grad.store(on, Ordering::Relaxed);
    }
    /// Whether this is a leaf (an input, a parameter, or an op's result made without recording
    /// a graph) rather than a recorded op's result.
    pub fn is_leaf(&self) -> bool {
        matches!(*lock(&self.0.origin), Origin::Leaf)
    }

    /// The gradient accumulated by backward passes since [`Var::zero_grad`], or `None` if no
    /// backward pass reached this node. Only leaves keep theirs.
    pub fn grad(&self) -> Option<Tensor> {
        lock(&self.0.grad).clone()
    }
    /// Clears the gradient (to `None`, as PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        *lock(&self.0.grad) = None;
    }
    /// Replaces the gradient (with gradients summed over processes, see [`crate::dist`]).
    pub fn set_grad(&self, grad: Tensor) {
        *lock(&self.0.grad) = Some(grad);
    }

    /// The node's identity while it lives (two handles to one node share it).
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Whether two handles refer to the same node.
    pub fn same(&self, other: &Var) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Back-propagates from this scalar: leaves that require a gradient accumulate d(self)/d(leaf).
    /// Consumes the graph (see the module's documentation).
    pub fn backward(&self) -> Result<()> {
        let n = self.value().numel();
        if n != 1 {
            return Err(Error::shape(
                "backward",
                format!("needs a scalar loss, got a tensor of shape {:?}", self.shape()),
            ));
        }
        self.backward_with(Tensor::ones(&self.shape()))
    }

    /// Back-propagates a given output gradient, which must have the value's shape.
    pub fn backward_with(&self, grad: Tensor) -> Result<()> {
        self.backward_notify(grad, &mut |_| {})
    }

    /// [`Var::backward_with`] that calls `on_ready(leaf)` for each leaf reached, as soon as
    /// its gradient is complete (every op that uses it has passed it its part): what lets
    /// gradients be sent to other processes while backward goes on, as PyTorch DDP's hooks.
    pub fn backward_notify(&self, grad: Tensor, on_ready: &mut dyn FnMut(&Var)) -> Result<()> {
        if grad.shape() != self.shape().as_slice() {
            return Err(Error::shape(
                "backward",
                format!("gradient {:?} does not match the output {:?}", grad.shape(), self.shape()),
            ));
        }
        if !self.requires_grad() {
            return Ok(());
        }
        let mut order = self.topological_order();
        if order.iter().any(|v| matches!(*lock(&v.0.origin), Origin::Consumed)) {
            return Err(Error::Invalid(
                "backward: the graph was already used by a backward pass; run the forward pass again".into(),
            ));
        }
        accumulate(&self.0.grad, grad);
        // how many ops still owe each leaf a part of its gradient
        let mut owed: HashMap<*const Node, usize> = HashMap::new();
        for var in &order {
            if let Origin::Op { parents, .. } = &*lock(&var.0.origin) {
                for p in parents.iter().filter(|p| p.requires_grad() && p.is_leaf()) {
                    *owed.entry(Arc::as_ptr(&p.0)).or_default() += 1;
                }
            }
        }
        if self.is_leaf() {
            on_ready(self);
        }
        // Children first; each handle is dropped once its node is done, so a node's value
        // is freed as soon as nothing else holds it.
        while let Some(var) = order.pop() {
            let Some((parents, backward)) = var.take_op() else {
                continue;
            };
            // Intermediate gradients are dropped as soon as they are used.
            let needs: Vec<bool> = parents.iter().map(|p| p.requires_grad()).collect();
            if let Some(g) = lock(&var.0.grad).take() {
                let grads = backward(&g, &needs);
                for ((parent, pg), need) in parents.iter().zip(grads).zip(&needs) {
                    if let (Some(pg), true) = (pg, need) {
                        accumulate(&parent.0.grad, pg);
                    }
                }
            }
            for (parent, _) in parents.iter().zip(&needs).filter(|(p, &need)| need && p.is_leaf()) {
                let left = owed.get_mut(&Arc::as_ptr(&parent.0)).expect("counted above");
                *left -= 1;
                if *left == 0 {
                    on_ready(parent);
                }
            }
        }
        Ok(())
    }

    /// An op's parents and backward function, leaving the node consumed; `None` for a leaf.
    fn take_op(&self) -> Option<(Vec<Var>, BackwardFn)> {
        let mut origin = lock(&self.0.origin);
        if !matches!(*origin, Origin::Op { .. }) {
            return None;
        }
        match std::mem::replace(&mut *origin, Origin::Consumed) {
            Origin::Op { parents, backward } => Some((parents, backward)),
            _ => None,
        }
    }

    /// Nodes reachable from self through parents that require a gradient, parents before
    /// children (iterative DFS: deep nets are fine).
    fn topological_order(&self) -> Vec<Var> {
        let mut order = Vec::new();
        let mut visited: HashSet<*const Node> = HashSet::new();
        let mut stack: Vec<(Var, bool)> = vec![(self.clone(), false)];
        while let Some((v, expanded)) = stack.pop() {
            if expanded {
                order.push(v);
                continue;
            }
            if !visited.insert(Arc::as_ptr(&v.0)) {
                continue;
            }
            stack.push((v.clone(), true));
            if let Origin::Op { parents, .. } = &*lock(&v.0.origin) {
                for p in parents {
                    if p.requires_grad() && !visited.contains(&Arc::as_ptr(&p.0)) {
                        stack.push((p.clone(), false));
                    }
                }
            }
        }
        order
    }
}

fn accumulate(slot: &Mutex<Option<Tensor>>, g: Tensor) {
    let mut slot = lock(slot);
    match slot.as_mut() {
        Some(existing) => existing.add_assign(&g).expect("gradient shapes agree by construction"),
        None => *slot = Some(g),
    }
}
