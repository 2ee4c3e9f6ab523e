//! The C-SWM models: the contrastive hinge loss against a hand-computed case, the transition GNN against a
//! per-object evaluation of the reference's formula and its equivariance to permuting the objects (copied
//! actions), per-object actions, the SRN's equivariance inside the model, parameter names and the reference's
//! initialisation, a few Adam steps lowering the loss on a tiny shapes batch, and the evaluation's metrics.

mod common;

use autograd::{concat, Tape};
use common::{close, permutation, refined};
use experiments::cswm::data::Batch;
use experiments::cswm::metrics::evaluate_ranking;
use experiments::cswm::model::{
    action_inputs, contrastive_loss, edges, ActionMode, Cswm, CswmConfig, Extractor, TransitionGnn,
};
use experiments::cswm::shapes;
use models::{evaluate, Adam, AdamConfig, Module, Optimizer, Scope};
use ndarray::{array, ArrayD, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || rng.gen_range(lo..hi))
}

/// A narrow model for fast debug-build tests.
fn tiny(config: CswmConfig) -> CswmConfig {
    CswmConfig { hidden: 32, extractor_width: 8, z_dim: 16, hagg_width: 16, ..config }
}

fn permute_objects(x: &ArrayD<f32>, perm: &[usize]) -> ArrayD<f32> {
    x.select(Axis(1), perm)
}

#[test]
fn the_hinge_loss_matches_a_hand_computed_case() {
    let tape = Tape::new();
    // B = 2, K = 2, D = 2; sigma 0.5, so E = 2 mean_k ||.||^2.
    let s = tape.constant(array![[[0.0f32, 0.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]]].into_dyn());
    let d = tape.constant(array![[[1.0f32, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]].into_dyn());
    let n = tape.constant(array![[[1.0f32, 1.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]]].into_dyn());
    // Positive: sample 0's prediction misses by (0, -1) on object 0: E = 2 (1 + 0) / 2 = 1; sample 1: 0.
    // Negatives [0, 0]: sample 0 against itself, E = 0, hinge 1; sample 1 against sample 0:
    // E = 2 (4 + 2) / 2 = 6, hinge max(0, 1 - 6) = 0.
    let (loss, pos, neg) = contrastive_loss(s, d, n, &[0, 0], 0.5, 1.0);
    assert!((pos.item() - 0.5).abs() < 1e-6, "{}", pos.item());
    assert!((neg.item() - 0.5).abs() < 1e-6, "{}", neg.item());
    assert!((loss.item() - 1.0).abs() < 1e-6);
    // Margin 10: (10 + (10 - 6)) / 2 = 7. Sigma 1: E = mean_k ||.||^2 / 2, the positive a quarter: 0.125.
    let (_, _, neg) = contrastive_loss(s, d, n, &[0, 0], 0.5, 10.0);
    assert!((neg.item() - 7.0).abs() < 1e-6);
    let (_, pos, _) = contrastive_loss(s, d, n, &[0, 0], 1.0, 1.0);
    assert!((pos.item() - 0.125).abs() < 1e-6);
}

/// The reference's node update, object by object: `node_mlp([s_i, a_i, sum_{j != i} edge_mlp([s_i, s_j])])`.
fn per_object(gnn: &TransitionGnn, states: &ArrayD<f32>, actions: &[usize]) -> ArrayD<f32> {
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let (b, k) = (states.shape()[0], states.shape()[1]);
    let a = action_inputs(actions, k, gnn.action_dim, gnn.action_mode);
    let mut out = ArrayD::zeros(states.shape().to_vec());
    for bi in 0..b {
        for i in 0..k {
            let si = tape.constant(states.index_axis(Axis(0), bi).index_axis(Axis(0), i).to_owned().into_dyn());
            let mut agg = None;
            for j in (0..k).filter(|&j| j != i) {
                let sj = tape.constant(states.index_axis(Axis(0), bi).index_axis(Axis(0), j).to_owned().into_dyn());
                let e = gnn.edge_mlp.forward(&scope, concat(&[si, sj], 0).reshape(&[1, 2 * states.shape()[2]]));
                agg = Some(match agg {
                    None => e,
                    Some(acc) => acc + e,
                });
            }
            let ai = tape.constant(a.index_axis(Axis(0), bi).index_axis(Axis(0), i).to_owned().into_dyn());
            let x = concat(&[si.reshape(&[1, si.len()]), ai.reshape(&[1, ai.len()]), agg.unwrap()], 1);
            let y = gnn.node_mlp.forward(&scope, x).value();
            out.index_axis_mut(Axis(0), bi).index_axis_mut(Axis(0), i).assign(&y.index_axis(Axis(0), 0));
        }
    }
    out
}

#[test]
fn the_transition_model_is_the_reference_graph_network() {
    let mut rng = StdRng::seed_from_u64(3);
    for mode in [ActionMode::Copy, ActionMode::PerObject] {
        let gnn = TransitionGnn::new(3, 16, 4, mode, &mut rng);
        let states = uniform(&[2, 4, 3], -1.0, 1.0, 4);
        let actions = [3, if mode == ActionMode::Copy { 1 } else { 13 }];
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let fast = gnn.forward(&scope, tape.constant(states.clone()), &actions).value();
        assert!(close(&fast, &per_object(&gnn, &states, &actions), 1e-5), "{mode:?}");
    }
    assert_eq!(edges(3), (vec![0, 0, 1, 1, 2, 2], vec![1, 2, 0, 2, 0, 1]));
}

#[test]
fn copied_actions_go_to_every_object_and_per_object_actions_to_theirs() {
    let copy = action_inputs(&[2, 0], 3, 4, ActionMode::Copy);
    assert_eq!(copy.shape(), &[2, 3, 4]);
    assert!((0..3).all(|k| copy[[0, k, 2]] == 1.0 && copy[[1, k, 0]] == 1.0));
    assert_eq!(copy.sum(), 6.0);
    // Shapes: action 13 = object 3, direction 1.
    let own = action_inputs(&[13, 0], 5, 4, ActionMode::PerObject);
    assert_eq!((own[[0, 3, 1]], own[[1, 0, 0]], own.sum()), (1.0, 1.0, 2.0));
}

#[test]
fn the_transition_model_is_equivariant_to_permuting_the_objects() {
    let mut rng = StdRng::seed_from_u64(5);
    let gnn = TransitionGnn::new(4, 24, 6, ActionMode::Copy, &mut rng);
    let states = uniform(&[3, 5, 4], -2.0, 2.0, 6);
    let actions = [0, 5, 2];
    let run = |s: &ArrayD<f32>| {
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        (*gnn.forward(&scope, tape.constant(s.clone()), &actions).value()).clone()
    };
    let base = run(&states);
    for seed in 0..4 {
        let perm = permutation(5, seed);
        let moved = run(&permute_objects(&states, &perm));
        assert!(close(&moved, &permute_objects(&base, &perm), 1e-5), "permutation {perm:?}");
    }
    // Not trivially: the objects' updates differ.
    assert!(base.index_axis(Axis(1), 0) != base.index_axis(Axis(1), 1));
}

#[test]
fn the_srn_refinement_is_equivariant_to_permuting_the_state_vectors() {
    let model = Cswm::new(tiny(CswmConfig::atari(4).with_srn()), &mut StdRng::seed_from_u64(7));
    let srn = model.srn.as_ref().unwrap();
    let s0 = uniform(&[3, 4, 4], -1.0, 1.0, 8);
    let z = uniform(&[3, 16], -1.0, 1.0, 9);
    let base = refined(srn, &s0, &z);
    assert!(!close(&base, &s0, 1e-3), "the refinement moves the set");
    for seed in 0..3 {
        let perm = permutation(4, seed);
        let moved = refined(srn, &permute_objects(&s0, &perm), &z);
        assert!(close(&moved, &permute_objects(&base, &perm), 1e-4), "permutation {perm:?}");
    }
}

/// Relabel the model's object slots: output channel `perm[k]` of the extractor becomes channel `k`, and
/// `H_embed`'s input blocks follow. The same observations then give the same states, permuted.
fn relabel_slots(model: &Cswm, perm: &[usize]) {
    let conv = &model.extractor.conv2;
    conv.weight.set(conv.weight.value().select(Axis(0), perm));
    let bias = conv.bias.as_ref().unwrap();
    bias.set(bias.value().select(Axis(0), perm));
    if let Some(embed) = &model.embed {
        let m = model.config.mask_len();
        let cols: Vec<usize> = perm.iter().flat_map(|&k| (k * m)..(k + 1) * m).collect();
        embed.weight.set(embed.weight.value().select(Axis(1), &cols));
    }
}

#[test]
fn the_whole_model_is_equivariant_to_relabelling_its_object_slots() {
    for config in [CswmConfig::atari(3), CswmConfig::atari(3).with_srn()] {
        let config = tiny(config);
        let obs = uniform(&[2, 6, 50, 50], 0.0, 1.0, 10);
        let encode =
            |m: &Cswm| evaluate(m, |scope| (*m.encode(scope, scope.tape().constant(obs.clone())).set.value()).clone());
        let a = Cswm::new(config, &mut StdRng::seed_from_u64(11));
        let b = Cswm::new(config, &mut StdRng::seed_from_u64(11));
        let perm = vec![2, 0, 1];
        relabel_slots(&b, &perm);
        let (sa, sb) = (encode(&a), encode(&b));
        assert!(close(&sb, &permute_objects(&sa, &perm), 1e-4), "srn: {}", config.srn.is_some());
        assert!(!close(&sb, &sa, 1e-3));
    }
}

#[test]
fn parameters_have_dotted_names_and_the_reference_initialisation() {
    let model = Cswm::new(tiny(CswmConfig::shapes().with_srn()), &mut StdRng::seed_from_u64(12));
    let names: Vec<String> = model.params().into_iter().map(|(n, _)| n).collect();
    for expected in [
        "extractor.conv1.weight",
        "extractor.norm.weight",
        "extractor.conv2.bias",
        "encoder.mlp.fc1.weight",
        "encoder.mlp.ln.bias",
        "transition.edge_mlp.fc3.weight",
        "transition.node_mlp.fc1.weight",
        "embed.weight",
        "srn.encoder.mlp.0.weight",
        "srn.encoder.pool.weight",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    let buffers: Vec<String> = model.buffers().into_iter().map(|(n, _)| n).collect();
    assert!(buffers.contains(&"extractor.norm.running_mean".to_string()));
    // Shapes: conv 10x10 stride 10 from 3 channels, 1x1 to K = 5; node input D + A + H = 2 + 4 + 32.
    assert_eq!(model.extractor.conv1.weight.shape(), vec![8, 3, 10, 10]);
    assert_eq!(model.extractor.conv2.weight.shape(), vec![5, 8, 1, 1]);
    assert_eq!(model.transition.node_mlp.fc1.weight.shape(), vec![32, 38]);
    assert_eq!(model.encoder.mlp.fc1.weight.shape(), vec![32, 25]);
    // Xavier-uniform: bound sqrt(6 / (fan_in + fan_out)) = sqrt(6 / (300 + 800)); biases zero.
    let bound = (6.0f32 / 1100.0).sqrt();
    let w = model.extractor.conv1.weight.value();
    assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.8 * bound));
    assert!(model.extractor.conv1.bias.as_ref().unwrap().value().iter().all(|&v| v == 0.0));
    let medium = Cswm::new(tiny(CswmConfig::atari(3)), &mut StdRng::seed_from_u64(12));
    assert_eq!(medium.config.extractor, Extractor::Medium);
    assert_eq!(medium.extractor.conv2.weight.shape(), vec![3, 8, 5, 5]);
    assert_eq!(medium.encoder.mlp.fc1.weight.shape(), vec![32, 100]);
}

fn shapes_batch(n: usize) -> Batch {
    let data = shapes::generate(4, 10, 13);
    data.batch(&(0..n).map(|i| (i * 7) % data.len()).collect::<Vec<_>>())
}

fn adam_lowers_the_loss(config: CswmConfig) {
    let model = Cswm::new(config, &mut StdRng::seed_from_u64(14));
    let batch = shapes_batch(16);
    let negatives: Vec<usize> = (0..16).map(|i| (i + 5) % 16).collect();
    let mut adam = Adam::new(model.params(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });
    let mut losses = Vec::new();
    for _ in 0..15 {
        let tape = Tape::new();
        let scope = Scope::new(&tape);
        let out = model.loss(&scope, &batch, &negatives);
        assert!(out.loss.item().is_finite());
        assert_eq!(out.inner_losses.len(), 2 * config.srn.map_or(0, |s| s.steps));
        losses.push(out.loss.item());
        adam.step(&model.grads(&scope, &[out.loss]));
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.8 * first, "srn {}: losses {losses:?}", config.srn.is_some());
}

#[test]
fn adam_steps_lower_the_loss_on_a_tiny_shapes_batch() {
    adam_lowers_the_loss(tiny(CswmConfig::shapes()));
}

#[test]
fn adam_steps_lower_the_srn_models_loss_on_a_tiny_shapes_batch() {
    let config = tiny(CswmConfig::shapes().with_srn());
    // Every parameter, the object encoder's included (S0 is learned), gets a gradient.
    let model = Cswm::new(config, &mut StdRng::seed_from_u64(14));
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let out = model.loss(&scope, &shapes_batch(8), &[1, 2, 3, 4, 5, 6, 7, 0]);
    let grads = model.grads(&scope, &[out.loss]);
    for (name, p) in model.params() {
        assert!(grads.get(&p).unwrap().iter().any(|&g| g != 0.0), "{name} gets no gradient");
    }
    adam_lowers_the_loss(config);
}

#[test]
fn the_evaluation_ranks_every_episode_at_each_horizon() {
    let data = shapes::generate(6, 5, 15);
    for config in [CswmConfig::shapes(), CswmConfig::shapes().with_srn()] {
        let model = Cswm::new(tiny(config), &mut StdRng::seed_from_u64(16));
        let m = evaluate_ranking(&model, &data, &[1, 3, 5], 4);
        assert_eq!(m.iter().map(|s| (s.steps, s.episodes)).collect::<Vec<_>>(), vec![(1, 6), (3, 6), (5, 6)]);
        for s in &m {
            assert!((0.0..=1.0).contains(&s.hits_at_1) && s.mrr >= s.hits_at_1 && s.mrr <= 1.0, "{s:?}");
            assert!(s.mrr >= 1.0 / 6.0);
        }
        assert!(model.extractor.norm.training(), "evaluation restores training mode");
    }
}

#[test]
fn the_evaluation_ranks_one_step_predictions_against_all_targets() {
    let data = shapes::generate(7, 3, 17);
    let model = Cswm::new(tiny(CswmConfig::shapes()), &mut StdRng::seed_from_u64(18));
    // A few training steps' batch statistics, so evaluation mode's running statistics are not the defaults.
    for _ in 0..3 {
        let tape = Tape::new();
        let _ = model.loss(&Scope::new(&tape), &shapes_batch(8), &[1, 2, 3, 4, 5, 6, 7, 0]);
    }
    // By hand: all 7 episodes in one batch, prediction s0 + T(s0, a0) against every encoded observation 1.
    let (pred, target) = evaluate(&model, |scope| {
        let tape = scope.tape();
        let obs = |t: usize| tape.constant(data.observations(&(0..7).map(|e| (e, t)).collect::<Vec<_>>()));
        let s = model.encode(scope, obs(0)).set;
        let actions: Vec<usize> = (0..7).map(|e| data.action(e, 0)).collect();
        let p = (s + model.transition(scope, s, &actions)).value();
        let t = model.encode(scope, obs(1)).set.value();
        (p.to_shape((7, 10)).unwrap().to_owned(), t.to_shape((7, 10)).unwrap().to_owned())
    });
    let r = experiments::cswm::metrics::ranks(pred.view(), target.view());
    let hits = r.iter().filter(|&&x| x == 0).count() as f64 / 7.0;
    let mrr = r.iter().map(|&x| 1.0 / (x as f64 + 1.0)).sum::<f64>() / 7.0;
    // The driver, in batches of 3 (7 = 3 + 3 + 1).
    let m = evaluate_ranking(&model, &data, &[1], 3)[0];
    assert!((m.hits_at_1 - hits).abs() < 1e-12 && (m.mrr - mrr).abs() < 1e-9, "{m:?} vs {hits}, {mrr}");
}
