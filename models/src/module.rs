//! The `Module` trait: a model's named parameters and buffers, as PyTorch's `state_dict` names them.
//!
//! Names are dotted paths: a module lists its own tensors by short name ("weight", "bias") and a container
//! lists its children's under their field name or index with [`prefixed`] ("encoder.0.weight"). Forward
//! passes are not part of the trait (their signatures differ from layer to layer); by convention they take a
//! [`crate::Scope`] and read parameters with `scope.param(&self.weight)`.

use crate::param::{Param, ParamId};
use crate::scope::{Grads, Scope};
use autograd::Float;
use autograd::Var;
use std::collections::HashSet;

/// Something with named parameters (trained) and named buffers (saved, not trained).
pub trait Module<T: Float> {
    /// Trainable tensors with dotted names, in a fixed order.
    fn params(&self) -> Vec<(String, Param<T>)>;

    /// Non-trainable state that belongs in a checkpoint (batch-norm running statistics). None by default.
    fn buffers(&self) -> Vec<(String, Param<T>)> {
        Vec::new()
    }

    /// Switch between training and evaluation behaviour (PyTorch's `train()` / `eval()`): batch norm uses
    /// batch statistics and updates its running ones in training, and uses the running ones in evaluation.
    /// Nothing by default; a container forwards the call to every child.
    fn set_training(&self, _training: bool) {}

    /// Parameters then buffers: everything a checkpoint of this module holds (PyTorch's `state_dict`).
    fn state(&self) -> Vec<(String, Param<T>)> {
        let mut s = self.params();
        s.extend(self.buffers());
        s
    }

    /// Number of trainable scalars (a parameter shared between submodules counts once).
    fn num_params(&self) -> usize {
        unique(self.params()).iter().map(|(_, p)| p.len()).sum()
    }

    /// Gradients of the sum of `outputs` for this module's parameters: zero for a parameter the scope never
    /// used (so every parameter of the module has an entry), summed over uses for the others.
    fn grads<'t>(&self, scope: &Scope<'t, T>, outputs: &[Var<'t, T>]) -> Grads<T> {
        let all = scope.grads(outputs);
        let mut out = Grads::new();
        for (_, p) in unique(self.params()) {
            let g = all.get(&p).cloned().unwrap_or_else(|| ndarray::ArrayD::zeros(p.shape()));
            out.insert(&p, g);
        }
        out
    }
}

/// `items` with every name prefixed by `prefix.` (nothing added for an empty prefix).
pub fn prefixed<T: Float>(prefix: &str, items: Vec<(String, Param<T>)>) -> Vec<(String, Param<T>)> {
    items.into_iter().map(|(n, p)| (join(prefix, &n), p)).collect()
}

/// `prefix.name`, or `name` for an empty prefix.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `items` without repeats of a parameter (the first name of a shared parameter is kept).
pub fn unique<T: Float>(items: Vec<(String, Param<T>)>) -> Vec<(String, Param<T>)> {
    let mut seen: HashSet<ParamId> = HashSet::new();
    items.into_iter().filter(|(_, p)| seen.insert(p.id())).collect()
}

/// A list of modules, named by index ("0.weight", "1.weight", ..) as `nn.Sequential` and `nn.ModuleList` do.
impl<T: Float, M: Module<T>> Module<T> for Vec<M> {
    fn params(&self) -> Vec<(String, Param<T>)> {
        self.iter().enumerate().flat_map(|(i, m)| prefixed(&i.to_string(), m.params())).collect()
    }
    fn buffers(&self) -> Vec<(String, Param<T>)> {
        self.iter().enumerate().flat_map(|(i, m)| prefixed(&i.to_string(), m.buffers())).collect()
    }
    fn set_training(&self, training: bool) {
        for m in self {
            m.set_training(training);
        }
    }
}
