//! The Sort-of-CLEVR models: shapes, the per-object evaluation of g's first layer against the reference's
//! pair matrix, the RN's invariance to the order of the objects, the SRN's equivariance, gradients through
//! the refinement, the Figure 4 decoder's shape, and an overfitting check.

mod common;

use autograd::ops::loss::cross_entropy;
use autograd::Tape;
use common::{close, permutation, refined};
use experiments::sort_of_clevr::model::{
    coordinates, reconstruction_decoder, relation_g, RnConfig, RnModel, ANSWERS, CELLS, G_WIDTH, OBJECT_DIM,
    QUESTION_DIM,
};
use models::{Adam, AdamConfig, Module, Optimizer, Scope};
use ndarray::{ArrayD, Axis};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || rng.gen_range(lo..hi))
}

fn images(b: usize, seed: u64) -> ArrayD<f32> {
    uniform(&[b, 3, 75, 75], 0.0, 1.0, seed)
}

/// Questions as the generator makes them: a colour one-hot, a type flag and a subtype one-hot.
fn questions(b: usize, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut q = ArrayD::zeros(vec![b, QUESTION_DIM]);
    for i in 0..b {
        q[[i, rng.gen_range(0..6)]] = 1.0;
        q[[i, rng.gen_range(6..8)]] = 1.0;
        q[[i, rng.gen_range(8..11)]] = 1.0;
    }
    q
}

fn model(config: RnConfig, seed: u64) -> RnModel {
    RnModel::new(&config, &mut StdRng::seed_from_u64(seed))
}

/// A smaller SRN (fewer inner steps) for the slower tests.
fn small_srn_config() -> RnConfig {
    let mut c = RnConfig::rn_srn();
    c.srn.as_mut().unwrap().steps = 2;
    c.hagg_width = 32;
    c
}

#[test]
fn parameter_shapes_are_the_references() {
    let m = model(RnConfig::rn(), 0);
    let shapes: Vec<(String, Vec<usize>)> = m.params().into_iter().map(|(n, p)| (n, p.shape())).collect();
    let mut expected = Vec::new();
    for i in 0..4 {
        let cin = if i == 0 { 3 } else { 24 };
        expected.push((format!("perception.convs.{i}.weight"), vec![24, cin, 3, 3]));
        expected.push((format!("perception.convs.{i}.bias"), vec![24]));
    }
    for i in 0..4 {
        expected.push((format!("perception.norms.{i}.weight"), vec![24]));
        expected.push((format!("perception.norms.{i}.bias"), vec![24]));
    }
    for (i, inputs) in [63, 256, 256, 256].into_iter().enumerate() {
        expected.push((format!("g.mlp.{i}.weight"), vec![256, inputs]));
        expected.push((format!("g.mlp.{i}.bias"), vec![256]));
    }
    for (i, outputs) in [256, 256, 10].into_iter().enumerate() {
        expected.push((format!("f.mlp.{i}.weight"), vec![outputs, 256]));
        expected.push((format!("f.mlp.{i}.bias"), vec![outputs]));
    }
    assert_eq!(shapes, expected);
    let srn = model(RnConfig::rn_srn(), 0);
    let names: Vec<String> = srn.params().into_iter().map(|(n, _)| n).collect();
    for name in ["embed.weight", "srn.encoder.mlp.0.weight", "srn.encoder.pool.weight"] {
        assert!(names.iter().any(|n| n == name), "RN + SRN lacks {name}");
    }
    assert_eq!(srn.embed.as_ref().unwrap().weight.shape(), vec![64, 600]);
}

#[test]
fn coordinates_name_row_and_column() {
    let c = coordinates(1);
    // Cell 7 is row 1, column 2; cell 24 is row 4, column 4.
    assert_eq!((c[[0, 7, 0]], c[[0, 7, 1]]), (-0.5, 0.0));
    assert_eq!((c[[0, 24, 0]], c[[0, 24, 1]]), (1.0, 1.0));
    assert_eq!((c[[0, 0, 0]], c[[0, 0, 1]]), (-1.0, -1.0));
}

#[test]
fn output_shapes() {
    for (config, inner) in [(RnConfig::rn(), 0), (small_srn_config(), 2)] {
        let m = model(config, 1);
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let (img, q) = (tape.constant(images(2, 2)), tape.constant(questions(2, 3)));
        let p = m.perceive(&scope, img);
        assert_eq!(p.set.shape(), vec![2, CELLS, OBJECT_DIM]);
        assert_eq!(p.s0.shape(), vec![2, CELLS, OBJECT_DIM]);
        assert_eq!(p.inner_losses.len(), inner);
        // The last two values of every object are its coordinates.
        let s0 = p.s0.value();
        assert_eq!(s0[[1, 7, 24]], -0.5);
        assert_eq!(s0[[1, 7, 25]], 0.0);
        let (logits, losses) = m.forward(&scope, img, q, 4);
        assert_eq!(logits.shape(), vec![2, ANSWERS]);
        assert_eq!(losses.len(), inner);
        assert!(logits.value().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn zero_inner_steps_leave_s0_unchanged() {
    let mut m = model(small_srn_config(), 5);
    m.set_inner_steps(0);
    assert_eq!(m.srn.as_ref().unwrap().config.steps, 0);
    let tape = Tape::new();
    let scope = Scope::evaluation(&tape);
    let p = tape.no_grad(|| m.perceive(&scope, tape.constant(images(2, 6))));
    assert!(p.inner_losses.is_empty());
    assert_eq!(*p.set.value(), *p.s0.value());
}

/// The fast g and the reference's pair matrix: values, and gradients for g's parameters, the set and the
/// questions.
fn check_fast_g_matches_naive(seed: u64, b: usize) {
    let g = relation_g(&mut StdRng::seed_from_u64(seed));
    let set = uniform(&[b, CELLS, OBJECT_DIM], -1.0, 1.0, seed + 1);
    let q = questions(b, seed + 2);
    let seedw = uniform(&[b, G_WIDTH], -1.0, 1.0, seed + 3);
    let run = |naive: bool| {
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let (s, qv) = (tape.leaf(set.clone()), tape.leaf(q.clone()));
        let out = if naive { g.forward_naive(&scope, s, qv) } else { g.forward(&scope, s, qv) };
        let loss = (out * tape.constant(seedw.clone())).sum();
        let mut grads: Vec<ArrayD<f32>> =
            tape.grad(&[loss], &[s, qv], false).iter().map(|v| (*v.value()).clone()).collect();
        let pg = g.grads(&scope, &[loss]);
        grads.extend(g.params().iter().map(|(_, p)| pg.get(p).unwrap().clone()));
        ((*out.value()).clone(), grads)
    };
    let (fast, fast_grads) = run(false);
    let (naive, naive_grads) = run(true);
    assert_eq!(fast.shape(), &[b, G_WIDTH]);
    assert!(close(&fast, &naive, 1e-5), "values differ");
    assert_eq!(fast_grads.len(), 2 + 8);
    for (i, (a, n)) in fast_grads.iter().zip(&naive_grads).enumerate() {
        assert!(n.iter().any(|v| *v != 0.0), "gradient {i} is all zero");
        assert!(close(a, n, 1e-5), "gradient {i} differs");
    }
}

#[test]
fn fast_g_equals_the_pair_matrix_formulation() {
    for seed in 0..3 {
        check_fast_g_matches_naive(10 * seed, 1 + seed as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn rn_is_invariant_to_object_order(seed in 0u64..1000, pseed in 0u64..1000) {
        let m = model(RnConfig::rn(), seed);
        let set = uniform(&[2, CELLS, OBJECT_DIM], -1.0, 1.0, seed + 1);
        let q = questions(2, seed + 2);
        let relate = |s: ArrayD<f32>| {
            let tape = Tape::new();
            let scope = Scope::new(&tape);
            let out = tape.no_grad(|| m.relate(&scope, tape.constant(s), tape.constant(q.clone()), 0));
            (*out.value()).clone()
        };
        let permuted = set.select(Axis(1), &permutation(CELLS, pseed));
        prop_assert!(close(&relate(set), &relate(permuted), 1e-4));
    }

    #[test]
    fn srn_refinement_is_equivariant_to_object_order(seed in 0u64..1000, pseed in 0u64..1000) {
        let m = model(small_srn_config(), seed);
        let srn = m.srn.as_ref().unwrap();
        let set = uniform(&[2, CELLS, OBJECT_DIM], -1.0, 1.0, seed + 1);
        let z = uniform(&[2, 64], -1.0, 1.0, seed + 2);
        let refine = |s: ArrayD<f32>| refined(srn, &s, &z);
        let perm = permutation(CELLS, pseed);
        let refined = refine(set.clone());
        prop_assert!(!close(&refined, &set, 1e-6), "the refinement moved nothing");
        prop_assert!(close(&refine(set.select(Axis(1), &perm)), &refined.select(Axis(1), &perm), 1e-4));
    }
}

/// A training forward and backward: every parameter's gradient is finite and somewhere nonzero; for RN +
/// SRN that includes H_agg's, which reach the outer loss only through the inner gradients.
#[test]
fn training_gradients_are_finite_and_reach_every_parameter() {
    for config in [RnConfig::rn(), small_srn_config()] {
        let m = model(config, 7);
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let (img, q) = (tape.constant(images(3, 8)), tape.constant(questions(3, 9)));
        let (logits, _) = m.forward(&scope, img, q, 10);
        let loss = cross_entropy(logits, &[1, 4, 9]);
        let grads = m.grads(&scope, &[loss]);
        for (name, p) in m.params() {
            let g = grads.get(&p).unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{name}: non-finite gradient");
            assert!(g.iter().any(|v| *v != 0.0), "{name}: zero gradient");
        }
    }
}

#[test]
fn dropout_depends_on_the_seed_only_in_training() {
    let m = model(RnConfig::rn(), 11);
    let tape = Tape::new();
    let (training, evaluation) = (Scope::new(&tape), Scope::evaluation(&tape));
    let set = tape.constant(uniform(&[2, CELLS, OBJECT_DIM], -1.0, 1.0, 12));
    let q = tape.constant(questions(2, 13));
    let out = |training_scope: bool, seed| {
        let scope = if training_scope { &training } else { &evaluation };
        (*tape.no_grad(|| m.relate(scope, set, q, seed)).value()).clone()
    };
    assert_eq!(out(true, 1), out(true, 1));
    assert_ne!(out(true, 1), out(true, 2));
    assert_eq!(out(false, 1), out(false, 2));
}

#[test]
fn reconstruction_decoder_makes_75_pixel_images() {
    let decoder = reconstruction_decoder(8, &mut StdRng::seed_from_u64(14));
    assert_eq!(decoder.out_side(), 75);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let set = tape.constant(uniform(&[2, CELLS, OBJECT_DIM], -1.0, 1.0, 15));
    let d = decoder.forward(&scope, set);
    assert_eq!(d.image.shape(), vec![2, 3, 75, 75]);
    assert_eq!(d.elements.shape(), vec![2, CELLS, 3, 75, 75]);
    assert!(d.image.value().iter().all(|v| (0.0..=1.0).contains(v)));
    // The image is the elements' sum, clamped.
    let sum = d.elements.value().sum_axis(Axis(1)).mapv(|v| v.clamp(0.0, 1.0));
    assert!(close(&sum, &d.image.value(), 1e-5));
}

/// A few Adam steps on one fixed batch reduce its cross-entropy (same dropout mask every step).
#[test]
fn adam_steps_overfit_a_small_batch() {
    for config in [RnConfig::rn(), small_srn_config()] {
        let m = model(config, 16);
        let mut opt = Adam::new(m.params(), AdamConfig { lr: 1e-3, ..Default::default() });
        let (img, q) = (images(4, 17), questions(4, 18));
        let labels = [0, 3, 5, 8];
        let mut losses = Vec::new();
        for _ in 0..12 {
            let tape = Tape::new();
            let scope = Scope::new(&tape);
            let (logits, _) = m.forward(&scope, tape.constant(img.clone()), tape.constant(q.clone()), 19);
            let loss = cross_entropy(logits, &labels);
            losses.push(loss.item());
            opt.step(&scope.grads(&[loss]));
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.5 * first, "cross-entropy {first} -> {last}: {losses:?}");
    }
}
