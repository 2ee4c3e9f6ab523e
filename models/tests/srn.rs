//! The Set Refiner Network module: its outer gradient through the inner steps (unrolled, and the approximate
//! implicit mode against its definition), the S0 flag, evaluation mode, equivariance and that the inner loss
//! goes down.

use autograd::check::{check_grad_order, test_fn, uniform, Tolerance};
use autograd::{Tape, Var};
use models::{InnerGradient, Linear, Module, Param, Scope, SetEncoder, Srn, SrnConfig};
use ndarray::{ArrayD, Axis};
use rand::{rngs::StdRng, SeedableRng};
use std::rc::Rc;

/// A small permutation-invariant encoder: `sum_i tanh(W s_i + b)`.
struct SumEncoder {
    lin: Linear<f64>,
}

impl Module<f64> for SumEncoder {
    fn params(&self) -> Vec<(String, Param<f64>)> {
        models::prefixed("lin", self.lin.params())
    }
}

impl SetEncoder<f64> for SumEncoder {
    fn encode<'t>(&self, scope: &Scope<'t, f64>, set: Var<'t, f64>, _sizes: Option<&[usize]>) -> Var<'t, f64> {
        self.lin.forward(scope, set).tanh().sum_axes(&[1], false)
    }
}

fn srn(config: SrnConfig) -> Srn<SumEncoder> {
    Srn::new(SumEncoder { lin: Linear::new(3, 4, &mut StdRng::seed_from_u64(3)) }, config)
}

const CONFIG: SrnConfig =
    SrnConfig { steps: 3, alpha: 0.2, momentum: 0.5, learn_s0: true, gradient: InnerGradient::Unrolled };

#[test]
fn outer_gradient_matches_finite_differences_of_the_unrolled_refinement() {
    // Inputs: z, S0, then the encoder's weight and bias (bound in place of the parameters).
    let net = Rc::new(srn(CONFIG));
    let f = test_fn(move |tape, x| {
        let scope = Scope::new(tape);
        scope.bind(&net.encoder.lin.weight, x[2]);
        scope.bind(net.encoder.lin.bias.as_ref().unwrap(), x[3]);
        let s = net.refine(&scope, x[1], x[0], None).last();
        (s * s.sin_like()).sum_axes(&[2], false)
    });
    let inputs = [
        uniform(&[2, 4], -1.0, 1.0, 1),
        uniform(&[2, 5, 3], -1.0, 1.0, 2),
        uniform(&[4, 3], -1.0, 1.0, 3),
        uniform(&[4], -0.5, 0.5, 4),
    ];
    check_grad_order(f, &inputs, 1, Tolerance::default()).unwrap_or_else(|e| panic!("{e}"));
}

/// A smooth non-linear outer function for the test above.
trait SinLike<'t> {
    fn sin_like(self) -> Var<'t, f64>;
}
impl<'t> SinLike<'t> for Var<'t, f64> {
    fn sin_like(self) -> Var<'t, f64> {
        (self * 1.3).tanh()
    }
}

fn outer_grads(config: SrnConfig) -> (ArrayD<f64>, Vec<ArrayD<f64>>) {
    let net = srn(config);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let z = tape.leaf(uniform(&[2, 4], -1.0, 1.0, 1));
    let s0 = tape.leaf(uniform(&[2, 5, 3], -1.0, 1.0, 2));
    let s = net.refine(&scope, s0, z, None).last();
    let loss = s.square().sum();
    let g_s0 = tape.grad(&[loss], &[s0], false)[0];
    let grads = net.grads(&scope, &[loss]);
    let params = net.params().into_iter().map(|(_, p)| grads.get(&p).unwrap().clone()).collect();
    ((*g_s0.value()).clone(), params)
}

#[test]
fn s0_learns_through_the_refinement_only_when_asked() {
    let (detached, params) = outer_grads(SrnConfig { learn_s0: false, ..CONFIG });
    assert!(detached.iter().all(|&v| v == 0.0), "a detached S0 must get no gradient");
    assert!(params.iter().all(|g| g.iter().any(|&v| v != 0.0)), "H_agg learns through the inner steps");
    let (learned, _) = outer_grads(CONFIG);
    assert!(learned.iter().any(|&v| v != 0.0));
}

#[test]
fn evaluation_takes_inner_gradients_without_recording_the_outer_graph() {
    let net = srn(CONFIG);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let z = tape.constant(uniform(&[2, 4], -1.0, 1.0, 1));
    let s0 = tape.constant(uniform(&[2, 5, 3], -1.0, 1.0, 2));
    let trained = net.refine(&scope, s0, z, None);
    let evaluation = Scope::evaluation(&tape);
    let evaluated = tape.no_grad(|| net.refine(&evaluation, s0, z, None));
    assert!(!evaluated.last().requires_grad());
    assert_eq!(trained.losses, evaluated.losses);
    let (a, b) = (trained.last().value(), evaluated.last().value());
    assert!(a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() < 1e-12));
}

#[test]
fn the_inner_loss_goes_down_and_the_set_moves() {
    let net = srn(SrnConfig { steps: 8, alpha: 0.05, ..CONFIG });
    let tape = Tape::new();
    let scope = Scope::evaluation(&tape);
    let z = tape.constant(uniform(&[2, 4], -1.0, 1.0, 1));
    let s0 = tape.constant(uniform(&[2, 5, 3], -1.0, 1.0, 2));
    let r = net.refine(&scope, s0, z, None);
    assert_eq!(r.sets.len(), 9);
    assert!(r.losses.last().unwrap() < &(r.losses[0] * 0.9), "inner losses {:?}", r.losses);
}

#[test]
fn refinement_is_equivariant_to_permuting_the_initial_set() {
    let net = srn(CONFIG);
    let perm = [3, 0, 4, 1, 2];
    let s0 = uniform(&[2, 5, 3], -1.0, 1.0, 2);
    let run = |s0: ArrayD<f64>| {
        let tape = Tape::new();
        let scope = Scope::evaluation(&tape);
        let z = tape.constant(uniform(&[2, 4], -1.0, 1.0, 1));
        let out = net.refine(&scope, tape.constant(s0), z, None).last();
        (*out.value()).clone()
    };
    let plain = run(s0.clone());
    let permuted = run(s0.select(Axis(1), &perm));
    let expected = plain.select(Axis(1), &perm);
    assert!(permuted.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
}

const IMPLICIT: SrnConfig = SrnConfig { steps: 4, learn_s0: false, gradient: InnerGradient::Implicit, ..CONFIG };

/// The implicit mode's outer loss and its gradient by (z, W, b) at `inputs`, through `Srn::refine`.
fn implicit_grads(inputs: &[ArrayD<f64>; 4]) -> (f64, Vec<ArrayD<f64>>) {
    let net = srn(IMPLICIT);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let (z, s0) = (tape.leaf(inputs[0].clone()), tape.constant(inputs[1].clone()));
    let (w, b) = (tape.leaf(inputs[2].clone()), tape.leaf(inputs[3].clone()));
    scope.bind(&net.encoder.lin.weight, w);
    scope.bind(net.encoder.lin.bias.as_ref().unwrap(), b);
    let s = net.refine(&scope, s0, z, None).last();
    let loss = (s * s.sin_like()).sum();
    let grads = tape.grad(&[loss], &[z, w, b], false);
    (loss.item(), grads.iter().map(|g| (*g.value()).clone()).collect())
}

/// The implicit mode's definition, by value: `S_{r-1}` and the momentum buffer are those of `theta0`'s
/// unrecorded steps, held fixed; only the last step `S_r = S_{r-1} - alpha (m buf + dL/dS(S_{r-1}; theta))`
/// depends on `theta = (z, W, b)`.
fn implicit_definition(theta0: &[ArrayD<f64>; 4], theta: &[ArrayD<f64>; 4]) -> f64 {
    let SrnConfig { steps, alpha, momentum, .. } = IMPLICIT;
    let eval = |inputs: &[ArrayD<f64>; 4], steps: usize| -> Vec<ArrayD<f64>> {
        let net = srn(SrnConfig { steps, ..IMPLICIT });
        net.encoder.lin.weight.set(inputs[2].clone());
        net.encoder.lin.bias.as_ref().unwrap().set(inputs[3].clone());
        let tape = Tape::new();
        let scope = Scope::evaluation(&tape);
        let (z, s0) = (tape.constant(inputs[0].clone()), tape.constant(inputs[1].clone()));
        let r = tape.no_grad(|| net.refine(&scope, s0, z, None));
        r.sets.iter().map(|v| (*v.value()).clone()).collect()
    };
    let sets = eval(theta0, steps - 1);
    let (s_prev, s_last) = (&sets[steps - 2], &sets[steps - 1]);
    let buf = (s_prev - s_last) / alpha;
    let net = srn(IMPLICIT);
    net.encoder.lin.weight.set(theta[2].clone());
    net.encoder.lin.bias.as_ref().unwrap().set(theta[3].clone());
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let s = tape.leaf(s_last.clone());
    let inner = (net.encoder.encode(&scope, s, None) - tape.constant(theta[0].clone())).square().sum();
    let g = (*tape.grad(&[inner], &[s], false)[0].value()).clone();
    let next = tape.constant(s_last - &((buf * momentum + g) * alpha));
    (next * next.sin_like()).sum().item()
}

#[test]
fn implicit_gradient_matches_finite_differences_of_its_definition() {
    let theta0 = [
        uniform(&[2, 4], -1.0, 1.0, 1),
        uniform(&[2, 5, 3], -1.0, 1.0, 2),
        uniform(&[4, 3], -1.0, 1.0, 3),
        uniform(&[4], -0.5, 0.5, 4),
    ];
    let (loss, grads) = implicit_grads(&theta0);
    assert!((loss - implicit_definition(&theta0, &theta0)).abs() < 1e-12, "same forward value");
    let h = 1e-6;
    for (k, input) in [0usize, 2, 3].into_iter().enumerate() {
        for i in 0..theta0[input].len() {
            let at = |d: f64| {
                let mut theta = theta0.clone();
                theta[input].as_slice_mut().unwrap()[i] += d;
                implicit_definition(&theta0, &theta)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let analytic = grads[k].as_slice().unwrap()[i];
            assert!(
                (numeric - analytic).abs() < 1e-6 * (1.0 + numeric.abs()),
                "input {input} element {i}: finite differences {numeric}, implicit gradient {analytic}"
            );
        }
    }
    // And it is not the unrolled gradient (which also sees how S_{r-1} depends on W).
    let unrolled = outer_grads(SrnConfig { steps: 4, learn_s0: false, ..CONFIG });
    assert!(unrolled.1[0].iter().zip(grads[1].iter()).any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn implicit_mode_refines_to_the_same_set_and_its_tape_does_not_grow_with_r() {
    let nodes = |config: SrnConfig| {
        let net = srn(config);
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let z = tape.leaf(uniform(&[2, 4], -1.0, 1.0, 1));
        let s0 = tape.constant(uniform(&[2, 5, 3], -1.0, 1.0, 2));
        let r = net.refine(&scope, s0, z, None);
        (tape.len(), (*r.last().value()).clone(), r.losses)
    };
    let (implicit2, s_implicit, losses_implicit) = nodes(SrnConfig { steps: 2, ..IMPLICIT });
    let (unrolled2, s_unrolled, losses_unrolled) = nodes(SrnConfig { steps: 2, ..CONFIG });
    assert!(s_implicit.iter().zip(s_unrolled.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
    assert_eq!(losses_implicit.len(), 2);
    assert!(losses_implicit.iter().zip(&losses_unrolled).all(|(a, b)| (a - b).abs() < 1e-12));
    let (implicit8, _, _) = nodes(SrnConfig { steps: 8, ..IMPLICIT });
    let (unrolled8, _, _) = nodes(SrnConfig { steps: 8, ..CONFIG });
    // Six more steps: six more constant sets on the implicit tape, against six recorded steps unrolled.
    assert_eq!(implicit8 - implicit2, 6);
    assert!(unrolled8 - unrolled2 > 60, "unrolled: {unrolled2} -> {unrolled8} nodes");
}

#[test]
fn padded_elements_take_no_part_and_stay_where_they_were() {
    // FSEncoder masks the padding: the padded elements get no inner gradient, the real ones move.
    let encoder = models::FSEncoder::<f64>::new(3, 8, 4, 5, &mut StdRng::seed_from_u64(7));
    let net = Srn::new(encoder, SrnConfig { steps: 4, ..CONFIG });
    let full = uniform(&[1, 5, 3], -1.0, 1.0, 8);
    let real = full.slice(ndarray::s![.., 0..3, ..]).to_owned();
    let z = uniform(&[1, 4], -1.0, 1.0, 9);
    let run = |set: &ArrayD<f64>, sizes: Option<&[usize]>| {
        let tape = Tape::new();
        let scope = Scope::evaluation(&tape);
        let r = tape.no_grad(|| net.refine(&scope, tape.constant(set.clone()), tape.constant(z.clone()), sizes));
        (*r.last().value()).clone()
    };
    let padded = run(&full, Some(&[3]));
    assert_eq!(padded.slice(ndarray::s![.., 3.., ..]), full.slice(ndarray::s![.., 3.., ..]));
    assert!(padded.slice(ndarray::s![.., 0..3, ..]).iter().zip(real.iter()).any(|(a, b)| a != b), "real ones move");
}
