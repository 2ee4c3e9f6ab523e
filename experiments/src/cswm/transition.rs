//! C-SWM's transition model: a graph network over the K objects, fully connected without self-loops (see
//! [`super::model`] for the layers and the reference's conventions), and [`NormedMlp`], the shape of every
//! MLP of the reference's C-SWM.

use super::model::ActionMode;
use autograd::{concat, Var};
use models::{LayerNorm, Linear, Module, Param, Scope};
use ndarray::ArrayD;
use rand::Rng;

/// `in -> H ReLU -> H LayerNorm ReLU -> out`, the shape of every MLP of the reference's C-SWM.
pub struct NormedMlp {
    pub fc1: Linear<f32>,
    pub fc2: Linear<f32>,
    pub ln: LayerNorm<f32>,
    pub fc3: Linear<f32>,
}

impl NormedMlp {
    pub fn new(input: usize, hidden: usize, output: usize, rng: &mut impl Rng) -> Self {
        let fc1 = Linear::new(input, hidden, rng);
        let fc2 = Linear::new(hidden, hidden, rng);
        let fc3 = Linear::new(hidden, output, rng);
        NormedMlp { fc1, fc2, ln: LayerNorm::new(&[hidden]), fc3 }
    }

    /// Apply to `x [.., in]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        let h = self.fc1.forward(scope, x).relu();
        let h = self.ln.forward(scope, self.fc2.forward(scope, h)).relu();
        self.fc3.forward(scope, h)
    }
}

impl Module<f32> for NormedMlp {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("fc1", self.fc1.params());
        p.extend(models::prefixed("fc2", self.fc2.params()));
        p.extend(models::prefixed("ln", self.ln.params()));
        p.extend(models::prefixed("fc3", self.fc3.params()));
        p
    }
}

/// The fully connected graph network without self-loops (see the module documentation).
pub struct TransitionGnn {
    pub edge_mlp: NormedMlp,
    pub node_mlp: NormedMlp,
    pub action_dim: usize,
    pub action_mode: ActionMode,
}

/// The one-hot action inputs `[B, K, A]` (see [`ActionMode`]); panics on an action out of range.
pub fn action_inputs(actions: &[usize], objects: usize, action_dim: usize, mode: ActionMode) -> ArrayD<f32> {
    let mut out = ArrayD::zeros(vec![actions.len(), objects, action_dim]);
    for (b, &a) in actions.iter().enumerate() {
        match mode {
            ActionMode::Copy => {
                assert!(a < action_dim, "C-SWM: action {a} is not below {action_dim}");
                for k in 0..objects {
                    out[[b, k, a]] = 1.0;
                }
            }
            ActionMode::PerObject => {
                assert!(a < action_dim * objects, "C-SWM: action {a} is not below {}", action_dim * objects);
                out[[b, a / action_dim, a % action_dim]] = 1.0;
            }
        }
    }
    out
}

/// The ordered pairs `(i, j)`, `i != j`, of `k` objects, row-major (the reference's edge list).
pub fn edges(k: usize) -> (Vec<usize>, Vec<usize>) {
    (0..k).flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j))).unzip()
}

impl TransitionGnn {
    pub fn new(d: usize, hidden: usize, action_dim: usize, action_mode: ActionMode, rng: &mut impl Rng) -> Self {
        let edge_mlp = NormedMlp::new(2 * d, hidden, hidden, rng);
        let node_mlp = NormedMlp::new(d + action_dim + hidden, hidden, d, rng);
        TransitionGnn { edge_mlp, node_mlp, action_dim, action_mode }
    }

    /// States `[B, K, D]` and one action per sample to the updates `T(s, a)` `[B, K, D]`.
    pub fn forward<'t>(&self, scope: &Scope<'t, f32>, states: Var<'t, f32>, actions: &[usize]) -> Var<'t, f32> {
        let shape = states.shape();
        let (b, k) = (shape[0], shape[1]);
        assert_eq!(actions.len(), b, "TransitionGnn: {} actions for a batch of {b}", actions.len());
        let hidden = self.edge_mlp.fc3.out_features();
        let agg = if k > 1 {
            let (src, dst) = edges(k);
            let pairs = concat(&[states.index_select(1, &src), states.index_select(1, &dst)], 2);
            self.edge_mlp.forward(scope, pairs).index_add(1, &src, k)
        } else {
            states.constant(ArrayD::zeros(vec![b, k, hidden]))
        };
        let a = states.constant(action_inputs(actions, k, self.action_dim, self.action_mode));
        self.node_mlp.forward(scope, concat(&[states, a, agg], 2))
    }
}

impl Module<f32> for TransitionGnn {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = models::prefixed("edge_mlp", self.edge_mlp.params());
        p.extend(models::prefixed("node_mlp", self.node_mlp.params()));
        p
    }
}
