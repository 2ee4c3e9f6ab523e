//! The Graph Refiner Network: the complete graph and masks, the message-passing encoder's gradients (first and
//! second order) and invariance, the refinement's outer gradient through every inner step reaching the edge
//! weights at first and second order, its equivariance to permuting the nodes, that padding takes no part,
//! evaluation against training, and the relation network's pair weights.

use autograd::check::{check_grad_order, test_fn, uniform, Tolerance};
use autograd::{concat, Tape, Var};
use models::{
    complete_graph, node_mask, GraphEncoder, Grn, InnerGradient, MessagePassing, Module, PairRelation, Scope, SrnConfig,
};
use ndarray::{ArrayD, Axis};
use rand::{rngs::StdRng, SeedableRng};
use std::rc::Rc;

const B: usize = 2;
const N: usize = 4;
const D: usize = 3;
const HIDDEN: usize = 4;
const OUT: usize = 3;

const CONFIG: SrnConfig =
    SrnConfig { steps: 2, alpha: 0.3, momentum: 0.5, learn_s0: true, gradient: InnerGradient::Unrolled };

fn encoder(seed: u64) -> MessagePassing<f64> {
    MessagePassing::new(D, HIDDEN, OUT, &mut StdRng::seed_from_u64(seed))
}

fn grn(config: SrnConfig) -> Grn<MessagePassing<f64>> {
    Grn::new(encoder(3), config)
}

/// A scope on `tape` with the parameters of `m` bound, in order, to `xs`.
fn bound<'t, M: Module<f64>>(tape: &'t Tape<f64>, m: &M, xs: &[Var<'t, f64>]) -> Scope<'t, f64> {
    let scope = Scope::new(tape);
    let params = m.params();
    assert_eq!(params.len(), xs.len(), "one input per parameter");
    for ((_, p), v) in params.iter().zip(xs) {
        scope.bind(p, *v);
    }
    scope
}

/// The parameters' current values (PyTorch's random initialisation: no ReLU input sits at a kink).
fn param_values<M: Module<f64>>(m: &M) -> Vec<ArrayD<f64>> {
    m.params().iter().map(|(_, p)| (*p.value()).clone()).collect()
}

fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Permute nodes (axis 1) and, for edges, rows and columns alike.
fn permute_nodes(s: &ArrayD<f64>, perm: &[usize]) -> ArrayD<f64> {
    s.select(Axis(1), perm)
}

fn permute_edges(e: &ArrayD<f64>, perm: &[usize]) -> ArrayD<f64> {
    e.select(Axis(1), perm).select(Axis(2), perm)
}

#[test]
fn the_complete_graph_has_no_self_loops_and_no_padded_edges() {
    let e: ArrayD<f64> = complete_graph(2, 3, Some(&[3, 2]));
    assert_eq!(e.shape(), &[2, 3, 3]);
    let expected0 = [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]];
    let expected1 = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(e[[0, i, j]], expected0[i][j], "sample 0 edge ({i}, {j})");
            assert_eq!(e[[1, i, j]], expected1[i][j], "sample 1 edge ({i}, {j})");
        }
    }
    let m: ArrayD<f64> = node_mask(2, 3, Some(&[3, 2]));
    assert_eq!(m.as_slice().unwrap(), &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    let full: ArrayD<f64> = complete_graph(1, 2, None);
    assert_eq!(full.as_slice().unwrap(), &[0.0, 1.0, 1.0, 0.0]);
}

/// The encoder's gradients by nodes, edges and every parameter, first and second order, with padding.
#[test]
fn encoder_gradients_match_finite_differences_to_second_order() {
    let enc = Rc::new(encoder(1));
    let f = {
        let enc = enc.clone();
        test_fn(move |tape, x| {
            let scope = bound(tape, &*enc, &x[2..]);
            enc.encode(&scope, x[0], x[1], Some(&[4, 3]))
        })
    };
    let mut inputs = vec![uniform(&[B, N, D], -1.0, 1.0, 11), uniform(&[B, N, N], 0.2, 1.5, 12)];
    inputs.extend(param_values(&*enc));
    for order in [1, 2] {
        check_grad_order(f.clone(), &inputs, order, Tolerance::default()).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// `(S_r, E_r)` from the refinement of `x = [z, S0, E0, params..]` on a training scope, as one output
/// `[B, N d + N N]` through a smooth non-linear function.
fn refined_output<'t>(net: &Grn<MessagePassing<f64>>, tape: &'t Tape<f64>, x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let scope = bound(tape, &net.encoder, &x[3..]);
    let r = net.refine(&scope, x[1], x[2], x[0], Some(&[4, 3]));
    let (s, e) = (r.last_nodes(), r.last_edges());
    let s = (s * (s * 1.3).tanh()).reshape(&[B, N * D]);
    let e = (e * (e * 0.7).tanh()).reshape(&[B, N * N]);
    concat(&[s, e], 1)
}

fn refinement_inputs(net: &Grn<MessagePassing<f64>>) -> Vec<ArrayD<f64>> {
    let mut e0 = complete_graph(B, N, Some(&[4, 3]));
    e0 += &(uniform(&[B, N, N], -0.3, 0.3, 23) * &e0);
    let mut inputs = vec![uniform(&[B, OUT], -1.0, 1.0, 21), uniform(&[B, N, D], -1.0, 1.0, 22), e0];
    inputs.extend(param_values(&net.encoder));
    inputs
}

/// The outer gradient through both unrolled inner steps (each taken with `create_graph`) by z, S0, E0 and
/// H_agg's parameters, at first order and at second order: the edge weights are an input at both.
#[test]
fn outer_gradient_through_the_refinement_matches_finite_differences() {
    let net = Rc::new(grn(CONFIG));
    let inputs = refinement_inputs(&net);
    let f = {
        let net = net.clone();
        test_fn(move |tape, x| refined_output(&net, tape, x))
    };
    let tol = Tolerance { eps: 1e-6, atol: 1e-5, rtol: 1e-4 };
    for order in [1, 2] {
        check_grad_order(f.clone(), &inputs, order, tol).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The checks above are not vacuous: with an outer loss on the refined nodes alone, the edge weights reach it
/// only through the inner steps, and its gradient by E0 and the second-order one (the gradient of
/// `<v, dL/dE0>`) are nonzero on the real edges and zero on the diagonal and the padded edges.
#[test]
fn the_gradient_reaches_the_edge_weights_at_first_and_second_order() {
    let net = grn(CONFIG);
    let inputs = refinement_inputs(&net);
    let mask = complete_graph::<f64>(B, N, Some(&[4, 3]));
    let tape = Tape::new();
    let xs: Vec<_> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let scope = bound(&tape, &net.encoder, &xs[3..]);
    let s = net.refine(&scope, xs[1], xs[2], xs[0], Some(&[4, 3])).last_nodes();
    let loss = (s * (s * 1.3).tanh()).sum();
    let g_e0 = tape.grad(&[loss], &[xs[2]], true)[0];
    let hvp = (g_e0 * tape.constant(uniform(&[B, N, N], -1.0, 1.0, 32))).sum();
    let second = tape.grad(&[hvp], &[xs[2]], false)[0].value();
    for (name, g) in [("first", g_e0.value()), ("second", second)] {
        for ((ix, v), m) in g.indexed_iter().zip(mask.iter()) {
            if *m == 0.0 {
                assert_eq!(*v, 0.0, "{name}-order gradient at masked edge {ix:?}");
            }
        }
        let real = g.iter().zip(mask.iter()).filter(|(v, m)| **m == 1.0 && v.abs() > 1e-8).count();
        assert_eq!(real, 18, "{name}-order gradient by E0 is zero on {} of 18 real edges", 18 - real);
    }
}

/// `(S_r, E_r)` at evaluation.
fn refine_values(
    net: &Grn<MessagePassing<f64>>,
    s0: &ArrayD<f64>,
    e0: &ArrayD<f64>,
    z: &ArrayD<f64>,
    sizes: Option<&[usize]>,
) -> (ArrayD<f64>, ArrayD<f64>, Vec<f64>) {
    let tape = Tape::new();
    let scope = Scope::evaluation(&tape);
    let r = tape.no_grad(|| {
        net.refine(&scope, tape.constant(s0.clone()), tape.constant(e0.clone()), tape.constant(z.clone()), sizes)
    });
    assert!(!r.last_nodes().requires_grad(), "evaluation records no outer graph");
    ((*r.last_nodes().value()).clone(), (*r.last_edges().value()).clone(), r.losses)
}

#[test]
fn refinement_is_equivariant_to_permuting_the_nodes() {
    let net = grn(SrnConfig { steps: 3, ..CONFIG });
    let n = 5;
    let perm = [3, 0, 4, 1, 2];
    let s0 = uniform(&[B, n, D], -1.0, 1.0, 41);
    let z = uniform(&[B, OUT], -1.0, 1.0, 42);
    let random_graph = complete_graph(B, n, None) * uniform(&[B, n, n], 0.2, 1.5, 43);
    for e0 in [complete_graph(B, n, None), random_graph] {
        let (s, e, _) = refine_values(&net, &s0, &e0, &z, None);
        assert!(max_diff(&s, &s0) > 1e-3 && max_diff(&e, &e0) > 1e-3, "the refinement moved nothing");
        let (ps, pe, _) = refine_values(&net, &permute_nodes(&s0, &perm), &permute_edges(&e0, &perm), &z, None);
        assert!(max_diff(&ps, &permute_nodes(&s, &perm)) < 1e-12, "nodes not permuted alike");
        assert!(max_diff(&pe, &permute_edges(&e, &perm)) < 1e-12, "edges not permuted alike");
    }
}

/// Padded nodes and edges: whatever their values, the real ones refine the same, and they never move.
#[test]
fn padding_takes_no_part_and_does_not_move() {
    let net = grn(SrnConfig { steps: 3, ..CONFIG });
    let (n, sizes) = (5, [3, 5]);
    let s0 = uniform(&[B, n, D], -1.0, 1.0, 51);
    let z = uniform(&[B, OUT], -1.0, 1.0, 52);
    let e0 = complete_graph(B, n, Some(&sizes));
    let (s, e, _) = refine_values(&net, &s0, &e0, &z, Some(&sizes));
    // Other values on sample 0's padded nodes 3 and 4, on their edges and on the diagonal.
    let (mut s0b, mut e0b) = (s0.clone(), e0.clone());
    let noise = uniform(&[n, n], -2.0, 2.0, 53);
    for i in 0..n {
        for j in 0..n {
            if i >= 3 || j >= 3 || i == j {
                e0b[[0, i, j]] = noise[[i, j]];
            }
        }
        if i >= 3 {
            for k in 0..D {
                s0b[[0, i, k]] = noise[[k, i]] * 3.0;
            }
        }
    }
    let (sb, eb, _) = refine_values(&net, &s0b, &e0b, &z, Some(&sizes));
    assert!(max_diff(&s0, &s0b) > 0.1 && max_diff(&e0, &e0b) > 0.1, "the padding was not changed");
    for i in 0..n {
        for k in 0..D {
            let (x, y) = (s[[0, i, k]], sb[[0, i, k]]);
            if i < 3 {
                assert_eq!(x, y, "real node {i} depends on the padding");
            } else {
                assert_eq!(y, s0b[[0, i, k]], "padded node {i} moved");
            }
        }
        for j in 0..n {
            if i < 3 && j < 3 && i != j {
                assert_eq!(e[[0, i, j]], eb[[0, i, j]], "real edge ({i}, {j}) depends on the padding");
            } else {
                assert_eq!(eb[[0, i, j]], e0b[[0, i, j]], "masked edge ({i}, {j}) moved");
            }
        }
    }
    // Sample 1 has no padding, and its refinement is the same as without sizes.
    let (s_all, e_all, _) = refine_values(&net, &s0, &e0, &z, None);
    let pick = |a: &ArrayD<f64>| a.index_axis(Axis(0), 1).to_owned();
    assert!(max_diff(&pick(&s), &pick(&s_all)) < 1e-12 && max_diff(&pick(&e), &pick(&e_all)) < 1e-12);
}

#[test]
fn the_encoder_is_invariant_to_permuting_the_nodes() {
    let enc = encoder(61);
    let (n, perm) = (5, [2, 4, 0, 3, 1]);
    let s = uniform(&[B, n, D], -1.0, 1.0, 62);
    let e = complete_graph(B, n, None) * uniform(&[B, n, n], 0.0, 2.0, 63);
    let run = |s: ArrayD<f64>, e: ArrayD<f64>| {
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        (*enc.encode(&scope, tape.constant(s), tape.constant(e), None).value()).clone()
    };
    let y = run(s.clone(), e.clone());
    assert_eq!(y.shape(), &[B, OUT]);
    assert!(max_diff(&y, &run(permute_nodes(&s, &perm), permute_edges(&e, &perm))) < 1e-12);
    // The edges matter: a different graph encodes differently.
    assert!(max_diff(&y, &run(s, e * 0.5)) > 1e-4);
}

#[test]
fn the_inner_loss_goes_down_and_evaluation_matches_training() {
    let net = grn(SrnConfig { steps: 6, alpha: 1.0, ..CONFIG });
    let s0 = uniform(&[B, N, D], -1.0, 1.0, 71);
    let z = uniform(&[B, OUT], -1.0, 1.0, 72);
    let e0 = complete_graph(B, N, None);
    let (s, e, losses) = refine_values(&net, &s0, &e0, &z, None);
    assert_eq!(losses.len(), 6);
    assert!(losses[5] < 0.9 * losses[0], "inner losses {losses:?}");
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let r = net.refine(&scope, tape.constant(s0), tape.constant(e0), tape.constant(z), None);
    assert_eq!(r.nodes.len(), 7);
    assert_eq!(r.edges.len(), 7);
    assert_eq!(r.losses, losses);
    assert!(max_diff(&r.last_nodes().value(), &s) < 1e-12 && max_diff(&r.last_edges().value(), &e) < 1e-12);
}

#[test]
fn parameters_are_named_by_path() {
    let names: Vec<String> = grn(CONFIG).params().into_iter().map(|(n, _)| n).collect();
    let expected = ["phi.0.weight", "phi.0.bias", "phi.1.weight", "phi.1.bias", "psi.0.weight", "psi.0.bias"];
    for (name, want) in names.iter().zip(expected) {
        assert_eq!(name, &format!("encoder.{want}"));
    }
    assert_eq!(names.len(), 8);
    let enc = encoder(0);
    assert_eq!((enc.input_dim(), enc.hidden(), enc.output_dim()), (D, HIDDEN, OUT));
}

#[test]
#[should_panic(expected = "only the unrolled inner gradient")]
fn the_implicit_gradient_is_refused() {
    grn(SrnConfig { gradient: InnerGradient::Implicit, ..CONFIG });
}

/// The relation network's pair weights: 0/1 weights over the first `k` elements give g on those `k` elements
/// alone, and weights scale each pair's term (checked against the reference's pair matrix, pair by pair).
#[test]
fn pair_weights_leave_out_padding_and_scale_pairs() {
    let g = PairRelation::<f64>::new(D, 2, 5, 3, &mut StdRng::seed_from_u64(81));
    let (n, k) = (4, 3);
    let set = uniform(&[1, n, D], -1.0, 1.0, 82);
    let q = uniform(&[1, 2], -1.0, 1.0, 83);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let (sv, qv) = (tape.constant(set.clone()), tape.constant(q));
    let mask = tape.constant(ArrayD::from_shape_fn(vec![1, n, n], |ix| if ix[1] < k && ix[2] < k { 1.0 } else { 0.0 }));
    let weighted = g.forward_weighted(&scope, sv, qv, Some(mask)).value();
    let truncated = g.forward(&scope, tape.constant(set.slice_axis(Axis(1), (0..k).into()).to_owned()), qv).value();
    assert!(max_diff(&weighted, &truncated) < 1e-12, "masked pairs took part");
    assert!(max_diff(&weighted, &g.forward(&scope, sv, qv).value()) > 1e-6, "the mask changed nothing");
    // Weights w: sum_ij w_ij g(pair ij), each pair's g from a one-hot weight.
    let w = uniform(&[1, n, n], -1.0, 2.0, 84);
    let out = g.forward_weighted(&scope, sv, qv, Some(tape.constant(w.clone()))).value();
    let mut sum = ArrayD::zeros(out.shape());
    for i in 0..n {
        for j in 0..n {
            let one = ArrayD::from_shape_fn(vec![1, n, n], |ix| if ix[1] == i && ix[2] == j { 1.0 } else { 0.0 });
            sum = sum + &*g.forward_weighted(&scope, sv, qv, Some(tape.constant(one))).value() * w[[0, i, j]];
        }
    }
    assert!(max_diff(&out, &sum) < 1e-12);
}
