//! Optimisers with PyTorch's update rules (`torch.optim.SGD`, `torch.optim.Adam`) and `clip_grad_norm_`.
//!
//! An optimiser is built from a module's named parameters and steps with a [`Grads`] map (from
//! [`crate::Scope::grads`]); a parameter with no gradient in the map is skipped, as PyTorch skips a
//! parameter whose `.grad` is `None`. Updates are in place ([`Param::update`]). State (momentum buffers, Adam
//! moments and per-parameter step counts) is saved to and restored from a [`Checkpoint`] under the
//! parameters' names, so training resumes exactly.
//!
//! ```
//! use models::{Adam, AdamConfig, Linear, Module, Optimizer, Scope};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let model = Linear::<f32>::new(4, 1, &mut StdRng::seed_from_u64(0));
//! let mut opt = Adam::new(model.params(), AdamConfig { lr: 1e-2, ..Default::default() });
//! let tape = autograd::Tape::new();
//! let scope = Scope::new(&tape);
//! let loss = model.forward(&scope, tape.constant(ndarray::ArrayD::ones(vec![8, 4]))).square().mean();
//! opt.step(&scope.grads(&[loss]));
//! assert_eq!(opt.steps(), 1);
//! ```

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::module::{join, unique};
use crate::param::Param;
use crate::scope::Grads;
use autograd::Float;
use ndarray::{ArrayD, Zip};

/// An optimiser over a fixed, named list of parameters.
pub trait Optimizer<T: Float> {
    /// Update every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &Grads<T>);
    /// The learning rate.
    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);
    /// Number of calls to `step` so far.
    fn steps(&self) -> u64;
    /// The parameters, with the names their state is saved under.
    fn params(&self) -> &[(String, Param<T>)];
    /// Write the state (not the hyper-parameters) into `ck` under `prefix`.
    fn save_state(&self, ck: &mut Checkpoint, prefix: &str);
    /// Restore the state from `ck`, taking its tensors out. Nothing is changed unless it all loads.
    fn load_state(&mut self, ck: &mut Checkpoint, prefix: &str) -> Result<(), CheckpointError>;
}

/// PyTorch's `clip_grad_norm_`: the total 2-norm over all gradients (as one vector); if it exceeds
/// `max_norm`, every gradient is scaled by `max_norm / (total + 1e-6)`. Returns the total norm before
/// clipping. The norm is accumulated in f64. A non-finite norm is returned as is and leaves the gradients
/// unchanged, so the caller can skip the step.
pub fn clip_grad_norm<T: Float>(grads: &mut Grads<T>, max_norm: f64) -> f64 {
    let total = grads.iter().flat_map(|(_, g)| g.iter()).map(|x| <T as Float>::to_f64(*x).powi(2)).sum::<f64>().sqrt();
    let coef = max_norm / (total + 1e-6);
    if total.is_finite() && coef < 1.0 {
        grads.scale(T::of(coef));
    }
    total
}

/// `lerp(a, b, w) = a + w (b - a)`, computed as `torch.lerp` does (from the nearer end for `w >= 0.5`).
fn lerp<T: Float>(a: T, b: T, w: T) -> T {
    if w < T::of(0.5) {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::one() - w)
    }
}

/// Hyper-parameters of [`Sgd`]; the defaults are PyTorch's (lr 1e-3, no momentum).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

/// Stochastic gradient descent with momentum, as `torch.optim.SGD`:
/// ```text
/// g = grad + weight_decay * p
/// if momentum != 0:
///     buf = g                                        (first step)
///     buf = momentum * buf + (1 - dampening) * g     (later steps)
///     g = g + momentum * buf  if nesterov  else  buf
/// p = p - lr * g
/// ```
pub struct Sgd<T: Float = f32> {
    pub config: SgdConfig,
    params: Vec<(String, Param<T>)>,
    momentum_buffers: Vec<Option<ArrayD<T>>>,
    steps: u64,
}

impl<T: Float> Sgd<T> {
    /// Over the given named parameters (a parameter listed twice is kept once, under its first name).
    pub fn new(params: Vec<(String, Param<T>)>, config: SgdConfig) -> Self {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening, got {config:?}"
        );
        let params = unique(params);
        let momentum_buffers = vec![None; params.len()];
        Sgd { config, params, momentum_buffers, steps: 0 }
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, grads: &Grads<T>) {
        let c = self.config;
        let (lr, mom, damp, wd) = (T::of(c.lr), T::of(c.momentum), T::of(1.0 - c.dampening), T::of(c.weight_decay));
        for ((_, p), buf) in self.params.iter().zip(&mut self.momentum_buffers) {
            let Some(grad) = grads.get(p) else { continue };
            p.update(|w| {
                let mut d = grad.clone();
                if c.weight_decay != 0.0 {
                    Zip::from(&mut d).and(&*w).for_each(|d, &w| *d += wd * w);
                }
                if c.momentum != 0.0 {
                    let b = match buf {
                        None => buf.insert(d.clone()),
                        Some(b) => {
                            Zip::from(&mut *b).and(&d).for_each(|b, &g| *b = *b * mom + damp * g);
                            b
                        }
                    };
                    if c.nesterov {
                        Zip::from(&mut d).and(&*b).for_each(|d, &b| *d += mom * b);
                    } else {
                        d.assign(b);
                    }
                }
                Zip::from(w).and(&d).for_each(|w, &d| *w += (-lr) * d);
            });
        }
        self.steps += 1;
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn params(&self) -> &[(String, Param<T>)] {
        &self.params
    }

    /// `{prefix}.steps`, and `{prefix}.{param}.momentum_buffer` for each parameter that has one.
    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        ck.put_count(&join(prefix, "steps"), self.steps);
        for ((name, _), buf) in self.params.iter().zip(&self.momentum_buffers) {
            if let Some(b) = buf {
                ck.put(&join(prefix, &format!("{name}.momentum_buffer")), b);
            }
        }
    }

    fn load_state(&mut self, ck: &mut Checkpoint, prefix: &str) -> Result<(), CheckpointError> {
        let steps = ck.take_count(&join(prefix, "steps"))?;
        let mut bufs = Vec::with_capacity(self.params.len());
        for (name, p) in &self.params {
            let key = join(prefix, &format!("{name}.momentum_buffer"));
            bufs.push(if ck.contains(&key) { Some(ck.take::<T>(&key, &p.shape())?) } else { None });
        }
        self.steps = steps;
        self.momentum_buffers = bufs;
        Ok(())
    }
}

/// Hyper-parameters of [`Adam`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// L2 penalty added to the gradient (Adam's, not AdamW's decoupled decay).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 }
    }
}

/// One parameter's Adam state.
#[derive(Clone, Debug)]
struct AdamState<T: Float> {
    step: u64,
    exp_avg: ArrayD<T>,
    exp_avg_sq: ArrayD<T>,
}

/// Adam, as `torch.optim.Adam` (amsgrad off), per parameter with its own step count `t`:
/// ```text
/// g = grad + weight_decay * p
/// m = lerp(m, g, 1 - beta1)            (= beta1 m + (1 - beta1) g)
/// v = beta2 v + (1 - beta2) g^2
/// p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
/// The bias corrections and the step size are computed in f64, as PyTorch computes them in Python floats.
pub struct Adam<T: Float = f32> {
    pub config: AdamConfig,
    params: Vec<(String, Param<T>)>,
    state: Vec<Option<AdamState<T>>>,
    steps: u64,
}

impl<T: Float> Adam<T> {
    /// Over the given named parameters (a parameter listed twice is kept once, under its first name).
    pub fn new(params: Vec<(String, Param<T>)>, config: AdamConfig) -> Self {
        let (b1, b2) = config.betas;
        assert!((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2), "Adam: betas must be in [0, 1), got {b1}, {b2}");
        let params = unique(params);
        let state = vec![None; params.len()];
        Adam { config, params, state, steps: 0 }
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, grads: &Grads<T>) {
        let c = self.config;
        let (beta1, beta2) = c.betas;
        let (w1, b2, w2, eps, wd) =
            (T::of(1.0 - beta1), T::of(beta2), T::of(1.0 - beta2), T::of(c.eps), T::of(c.weight_decay));
        for ((_, p), state) in self.params.iter().zip(&mut self.state) {
            let Some(grad) = grads.get(p) else { continue };
            let st = state.get_or_insert_with(|| AdamState {
                step: 0,
                exp_avg: ArrayD::zeros(p.shape()),
                exp_avg_sq: ArrayD::zeros(p.shape()),
            });
            st.step += 1;
            let t = st.step as i32;
            let bias_correction1 = 1.0 - beta1.powi(t);
            let bias_correction2_sqrt = (1.0 - beta2.powi(t)).sqrt();
            let neg_step_size = T::of(-c.lr / bias_correction1);
            let bc2 = T::of(bias_correction2_sqrt);
            p.update(|w| {
                Zip::from(w).and(&mut st.exp_avg).and(&mut st.exp_avg_sq).and(grad).for_each(|w, m, v, &g| {
                    let g = if c.weight_decay != 0.0 { g + wd * *w } else { g };
                    *m = lerp(*m, g, w1);
                    *v = *v * b2 + w2 * g * g;
                    let denom = v.sqrt() / bc2 + eps;
                    *w += neg_step_size * *m / denom;
                });
            });
        }
        self.steps += 1;
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn params(&self) -> &[(String, Param<T>)] {
        &self.params
    }

    /// `{prefix}.steps`, and for each parameter that has state `{prefix}.{param}.step`, `.exp_avg` and
    /// `.exp_avg_sq`.
    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        ck.put_count(&join(prefix, "steps"), self.steps);
        for ((name, _), st) in self.params.iter().zip(&self.state) {
            if let Some(st) = st {
                ck.put_count(&join(prefix, &format!("{name}.step")), st.step);
                ck.put(&join(prefix, &format!("{name}.exp_avg")), &st.exp_avg);
                ck.put(&join(prefix, &format!("{name}.exp_avg_sq")), &st.exp_avg_sq);
            }
        }
    }

    fn load_state(&mut self, ck: &mut Checkpoint, prefix: &str) -> Result<(), CheckpointError> {
        let steps = ck.take_count(&join(prefix, "steps"))?;
        let mut state = Vec::with_capacity(self.params.len());
        for (name, p) in &self.params {
            let key = |slot: &str| join(prefix, &format!("{name}.{slot}"));
            if !ck.contains(&key("step")) {
                state.push(None);
                continue;
            }
            let step = ck.take_count(&key("step"))?;
            let exp_avg = ck.take::<T>(&key("exp_avg"), &p.shape())?;
            let exp_avg_sq = ck.take::<T>(&key("exp_avg_sq"), &p.shape())?;
            state.push(Some(AdamState { step, exp_avg, exp_avg_sq }));
        }
        self.steps = steps;
        self.state = state;
        Ok(())
    }
}

/// Optimiser state in checkpoints: defined here, beside the optimisers, so that `checkpoint` need not know them.
impl Checkpoint {
    /// Store an optimiser's state under `prefix`.
    pub fn put_optimizer<T: Float, O: Optimizer<T> + ?Sized>(&mut self, prefix: &str, opt: &O) {
        opt.save_state(self, prefix);
    }

    /// Restore an optimiser's state from the tensors under `prefix`, removing them.
    pub fn load_optimizer<T: Float, O: Optimizer<T> + ?Sized>(
        &mut self,
        prefix: &str,
        opt: &mut O,
    ) -> Result<(), CheckpointError> {
        opt.load_state(self, prefix)
    }
}
