//! SGD and Adam against PyTorch's update formulas written out by hand, convergence on least squares,
//! and clip_grad_norm.

use autograd::check::uniform;
use autograd::Tape;
use models::{clip_grad_norm, Adam, AdamConfig, Grads, Linear, Module, Optimizer, Param, Scope, Sgd, SgdConfig};
use ndarray::{array, ArrayD};
use rand::{rngs::StdRng, SeedableRng};

/// `f(x) = 0.5 * sum(a * x^2)`, whose gradient is `a * x`, through the tape.
fn quadratic_grads(p: &Param<f64>, a: &[f64]) -> Grads<f64> {
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let x = s.param(p);
    let a = tape.constant(ArrayD::from_shape_vec(vec![a.len()], a.to_vec()).unwrap());
    let f = (a * x * x).sum() * 0.5;
    s.grads(&[f])
}

fn run<O: Optimizer<f64>>(
    make: impl FnOnce(Vec<(String, Param<f64>)>) -> O,
    x0: &[f64],
    a: &[f64],
    steps: usize,
) -> Vec<Vec<f64>> {
    let p = Param::new(ArrayD::from_shape_vec(vec![x0.len()], x0.to_vec()).unwrap());
    let mut opt = make(vec![("x".into(), p.clone())]);
    (0..steps)
        .map(|_| {
            opt.step(&quadratic_grads(&p, a));
            p.value().iter().copied().collect()
        })
        .collect()
}

fn assert_close(got: &[Vec<f64>], want: &[Vec<f64>], tol: f64) {
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (g, w)) in g.iter().zip(w).enumerate() {
            assert!((g - w).abs() <= tol * (1.0 + w.abs()), "step {t} element {i}: got {g}, want {w}");
        }
    }
}

/// PyTorch's SGD, element by element: `g = a x + wd x`; `buf = g` at the first step, else
/// `buf = momentum buf + (1 - dampening) g`; `g = g + momentum buf` (Nesterov) or `g = buf`; `x = x - lr g`.
fn sgd_by_hand(x0: &[f64], a: &[f64], c: SgdConfig, steps: usize) -> Vec<Vec<f64>> {
    let mut x = x0.to_vec();
    let mut buf = vec![0.0; x.len()];
    (0..steps)
        .map(|t| {
            for i in 0..x.len() {
                let mut g = a[i] * x[i] + c.weight_decay * x[i];
                if c.momentum != 0.0 {
                    buf[i] = if t == 0 { g } else { c.momentum * buf[i] + (1.0 - c.dampening) * g };
                    g = if c.nesterov { g + c.momentum * buf[i] } else { buf[i] };
                }
                x[i] -= c.lr * g;
            }
            x.clone()
        })
        .collect()
}

/// PyTorch's Adam, element by element, with the per-parameter step t = 1, 2, ..:
/// `g = a x + wd x`; `m = b1 m + (1 - b1) g`; `v = b2 v + (1 - b2) g^2`;
/// `x = x - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
fn adam_by_hand(x0: &[f64], a: &[f64], c: AdamConfig, steps: usize) -> Vec<Vec<f64>> {
    let (b1, b2) = c.betas;
    let mut x = x0.to_vec();
    let (mut m, mut v) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    (1..=steps)
        .map(|t| {
            for i in 0..x.len() {
                let g = a[i] * x[i] + c.weight_decay * x[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let denom = v[i].sqrt() / (1.0 - b2.powi(t as i32)).sqrt() + c.eps;
                x[i] -= c.lr / (1.0 - b1.powi(t as i32)) * m[i] / denom;
            }
            x.clone()
        })
        .collect()
}

#[test]
fn sgd_momentum_first_steps_by_hand() {
    // x0 = 1, f = x^2 (a = 2), lr 0.1, momentum 0.9:
    // g0 = 2,    buf = 2,                 x1 = 1 - 0.2     = 0.8
    // g1 = 1.6,  buf = 0.9*2 + 1.6 = 3.4,  x2 = 0.8 - 0.34  = 0.46
    // g2 = 0.92, buf = 3.06 + 0.92 = 3.98, x3 = 0.46 - 0.398 = 0.062
    let c = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };
    let got = run(|p| Sgd::new(p, c), &[1.0], &[2.0], 3);
    assert_close(&got, &[vec![0.8], vec![0.46], vec![0.062]], 1e-14);
}

#[test]
fn sgd_variants_follow_the_formula() {
    let (x0, a) = ([1.0, -2.0, 0.5], [2.0, 0.5, 3.0]);
    let configs = [
        SgdConfig { lr: 0.1, ..Default::default() },
        SgdConfig { lr: 0.1, momentum: 0.5, ..Default::default() }, // the SRN's inner optimiser
        SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.3, weight_decay: 0.01, ..Default::default() },
        SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.1, ..Default::default() },
    ];
    for c in configs {
        let got = run(|p| Sgd::new(p, c), &x0, &a, 6);
        assert_close(&got, &sgd_by_hand(&x0, &a, c, 6), 1e-12);
    }
}

#[test]
fn adam_first_step_by_hand() {
    // At t = 1 the bias corrections undo the averaging: m_hat = g, v_hat = g^2, so
    // x1 = x0 - lr * g / (|g| + eps) = 1 - 0.1 * 2 / (2 + 1e-8) = 0.9 + 5e-10 (to first order in eps).
    let c = AdamConfig { lr: 0.1, ..Default::default() };
    let got = run(|p| Adam::new(p, c), &[1.0], &[2.0], 1);
    assert!((got[0][0] - (0.9 + 5e-10)).abs() < 1e-15, "{}", got[0][0]);
}

#[test]
fn adam_follows_the_formula() {
    let (x0, a) = ([1.0, -2.0, 0.5, 3.0], [2.0, 0.5, 3.0, 1e-3]);
    let configs = [
        AdamConfig { lr: 0.1, ..Default::default() },
        AdamConfig { lr: 0.01, betas: (0.5, 0.9), eps: 1e-3, weight_decay: 0.1 },
    ];
    for c in configs {
        let got = run(|p| Adam::new(p, c), &x0, &a, 8);
        assert_close(&got, &adam_by_hand(&x0, &a, c, 8), 1e-12);
    }
}

#[test]
fn parameters_without_a_gradient_are_skipped() {
    let (p, q) = (Param::<f64>::new(array![1.0].into_dyn()), Param::<f64>::new(array![5.0].into_dyn()));
    let mut opt = Adam::new(vec![("p".into(), p.clone()), ("q".into(), q.clone())], AdamConfig::default());
    let mut g = Grads::new();
    g.insert(&p, array![1.0].into_dyn());
    opt.step(&g);
    assert_eq!(q.value()[[0]], 5.0);
    assert!(p.value()[[0]] < 1.0);
    let mut ck = models::Checkpoint::new();
    ck.put_optimizer("opt", &opt);
    assert!(ck.contains("opt.p.exp_avg") && !ck.contains("opt.q.exp_avg"), "{:?}", ck.names());
}

/// `y = X w + b` exactly; fit a Linear(3 -> 1) by mean squared error.
fn least_squares<O: Optimizer<f64>>(
    make: impl FnOnce(Vec<(String, Param<f64>)>) -> O,
    steps: usize,
) -> (f64, Linear<f64>) {
    let x = uniform(&[64, 3], -1.0, 1.0, 1);
    let w_true = array![[1.5], [-2.0], [0.5]];
    let y = x.clone().into_dimensionality::<ndarray::Ix2>().unwrap().dot(&w_true) + 0.3;
    let model = Linear::<f64>::new(3, 1, &mut StdRng::seed_from_u64(0));
    let mut opt = make(model.params());
    let mut loss = f64::INFINITY;
    for _ in 0..steps {
        let tape = Tape::new();
        let s = Scope::new(&tape);
        let l = (model.forward(&s, tape.constant(x.clone())) - tape.constant(y.clone().into_dyn())).square().mean();
        loss = l.item();
        opt.step(&s.grads(&[l]));
    }
    (loss, model)
}

fn assert_fitted(model: &Linear<f64>, tol: f64) {
    let w = model.weight.value();
    let b = model.bias.as_ref().unwrap().value();
    for (got, want) in w.iter().zip([1.5, -2.0, 0.5]) {
        assert!((got - want).abs() < tol, "weight {w:?}");
    }
    assert!((b[[0]] - 0.3).abs() < tol, "bias {b:?}");
}

#[test]
fn sgd_with_momentum_solves_least_squares() {
    let (loss, model) = least_squares(|p| Sgd::new(p, SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }), 400);
    assert!(loss < 1e-12, "loss {loss}");
    assert_fitted(&model, 1e-5);
}

#[test]
fn adam_solves_least_squares() {
    let (loss, model) = least_squares(|p| Adam::new(p, AdamConfig { lr: 0.02, ..Default::default() }), 1500);
    assert!(loss < 1e-8, "loss {loss}");
    assert_fitted(&model, 1e-3);
}

#[test]
fn clip_grad_norm_scales_to_the_max_norm() {
    let (p, q) = (Param::<f64>::new(ArrayD::zeros(vec![2])), Param::<f64>::new(ArrayD::zeros(vec![1])));
    let grads = || {
        let mut g = Grads::new();
        g.insert(&p, array![3.0, 4.0].into_dyn());
        g.insert(&q, array![12.0].into_dyn());
        g
    };
    // Total norm sqrt(9 + 16 + 144) = 13; clipping to 6.5 scales by 6.5 / (13 + 1e-6).
    let mut g = grads();
    assert_eq!(clip_grad_norm(&mut g, 6.5), 13.0);
    let coef = 6.5 / (13.0 + 1e-6);
    assert_eq!(g.get(&p).unwrap(), &array![3.0 * coef, 4.0 * coef].into_dyn());
    assert_eq!(g.get(&q).unwrap(), &array![12.0 * coef].into_dyn());
    // Under the limit: unchanged.
    let mut g = grads();
    assert_eq!(clip_grad_norm(&mut g, 20.0), 13.0);
    assert_eq!(g.get(&q).unwrap(), &array![12.0].into_dyn());
    // A non-finite norm is reported and leaves the gradients alone.
    let mut g = grads();
    g.insert(&q, array![f64::INFINITY].into_dyn());
    assert_eq!(clip_grad_norm(&mut g, 1.0), f64::INFINITY);
    assert_eq!(g.get(&p).unwrap(), &array![3.0, 4.0].into_dyn());
}

#[test]
fn f32_adam_tracks_f64() {
    let p32 = Param::<f32>::new(array![1.0f32, -2.0].into_dyn());
    let mut opt = Adam::new(vec![("x".into(), p32.clone())], AdamConfig { lr: 0.1, ..Default::default() });
    for _ in 0..5 {
        let mut g = Grads::new();
        g.insert(&p32, p32.value().mapv(|x| 2.0 * x));
        opt.step(&g);
    }
    let want = adam_by_hand(&[1.0, -2.0], &[2.0, 2.0], AdamConfig { lr: 0.1, ..Default::default() }, 5);
    for (g, w) in p32.value().iter().zip(&want[4]) {
        assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
    }
    assert_eq!(opt.steps(), 5);
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
}

#[test]
#[should_panic(expected = "Nesterov momentum requires a momentum and zero dampening")]
fn nesterov_needs_momentum() {
    Sgd::<f32>::new(vec![], SgdConfig { nesterov: true, ..Default::default() });
}
