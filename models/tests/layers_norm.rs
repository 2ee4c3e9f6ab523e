//! BatchNorm and LayerNorm: values against hand computations, running statistics in training and their use in
//! evaluation, train/eval switching through containers, checkpoint round trips of parameters and buffers, and
//! first- and second-order gradient checks with the parameters as inputs.

use autograd::check::uniform;
use autograd::{grad_tests, ConvGeom, Tape, Var};
use models::{load_module, prefixed, save_module, BatchNorm, Checkpoint, Conv2d, LayerNorm, Module, Param, Scope};
use ndarray::{ArrayD, Axis, IxDyn};
use rand::{rngs::StdRng, SeedableRng};
use std::fs;
use std::path::PathBuf;

/// A scope on `t` with the parameters of `m` bound, in order, to `xs`.
fn bound<'t, M: Module<f64>>(t: &'t Tape<f64>, m: &M, xs: &[Var<'t, f64>]) -> Scope<'t, f64> {
    let s = Scope::new(t);
    let params = m.params();
    assert_eq!(params.len(), xs.len(), "one input per parameter");
    for ((_, p), v) in params.iter().zip(xs) {
        s.bind(p, *v);
    }
    s
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (p, q) in a.iter().zip(b) {
        assert!((p - q).abs() <= tol, "{p} vs {q}");
    }
}

fn run(bn: &BatchNorm<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    (*bn.forward(&Scope::new(&tape), tape.constant(x.clone())).value()).clone()
}

/// Per-channel (axis 1) mean and biased variance, by plain loops over the values.
fn channel_stats(x: &ArrayD<f64>) -> (Vec<f64>, Vec<f64>, usize) {
    let c = x.shape()[1];
    let mut vals = vec![Vec::new(); c];
    for (idx, &v) in x.indexed_iter() {
        vals[idx[1]].push(v);
    }
    let n = vals[0].len();
    let mean: Vec<f64> = vals.iter().map(|v| v.iter().sum::<f64>() / n as f64).collect();
    let var = vals.iter().zip(&mean).map(|(v, m)| v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / n as f64);
    let var: Vec<f64> = var.collect();
    (mean, var, n)
}

/// `(x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]` element by element.
fn normalise(x: &ArrayD<f64>, mean: &[f64], var: &[f64], gamma: &[f64], beta: &[f64]) -> ArrayD<f64> {
    let mut y = x.clone();
    for (idx, v) in y.indexed_iter_mut() {
        let c = idx[1];
        *v = (*v - mean[c]) / (var[c] + 1e-5).sqrt() * gamma[c] + beta[c];
    }
    y
}

/// Values with a different mean and spread per channel.
fn data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut x = uniform(shape, -1.0, 1.0, seed);
    for (idx, v) in x.indexed_iter_mut() {
        *v = *v * (1.0 + idx[1] as f64) + 2.0 * idx[1] as f64 - 1.0;
    }
    x
}

fn vec_of(p: &Param<f64>) -> Vec<f64> {
    p.value().iter().copied().collect()
}

#[test]
fn training_normalises_with_batch_statistics_and_updates_running_ones() {
    let bn = BatchNorm::<f64>::new(3);
    assert!(bn.training(), "a new layer is in training mode, as in PyTorch");
    let (gamma, beta) = ([0.5, 2.0, -1.0], [0.1, -0.2, 0.3]);
    bn.weight.set(ArrayD::from_shape_vec(vec![3], gamma.to_vec()).unwrap());
    bn.bias.set(ArrayD::from_shape_vec(vec![3], beta.to_vec()).unwrap());
    let x1 = data(&[4, 3, 2, 3], 1);
    let (m1, v1, n) = channel_stats(&x1);
    assert_close(&run(&bn, &x1), &normalise(&x1, &m1, &v1, &gamma, &beta), 1e-12);
    // running = 0.9 running + 0.1 batch, with the unbiased variance; starting from mean 0 and variance 1.
    let unbiased = |v: &[f64]| v.iter().map(|v| v * n as f64 / (n - 1) as f64).collect::<Vec<_>>();
    let rm1: Vec<f64> = m1.iter().map(|m| 0.1 * m).collect();
    let rv1: Vec<f64> = unbiased(&v1).iter().map(|v| 0.9 + 0.1 * v).collect();
    assert_close(&bn.running_mean.value(), &ArrayD::from_shape_vec(vec![3], rm1.clone()).unwrap(), 1e-12);
    assert_close(&bn.running_var.value(), &ArrayD::from_shape_vec(vec![3], rv1.clone()).unwrap(), 1e-12);
    assert_eq!(bn.batches_tracked(), 1);
    // A second batch moves them again.
    let x2 = data(&[4, 3, 2, 3], 2);
    let (m2, v2, _) = channel_stats(&x2);
    run(&bn, &x2);
    for c in 0..3 {
        assert!((vec_of(&bn.running_mean)[c] - (0.9 * rm1[c] + 0.1 * m2[c])).abs() < 1e-12);
        assert!((vec_of(&bn.running_var)[c] - (0.9 * rv1[c] + 0.1 * unbiased(&v2)[c])).abs() < 1e-12);
    }
    assert_eq!(bn.batches_tracked(), 2);
    assert_eq!(bn.num_batches_tracked.shape(), Vec::<usize>::new());
}

#[test]
fn training_on_flat_features_normalises_each_column() {
    // BatchNorm1d on [B, C]: zero mean and unit (biased) variance per column, up to eps.
    let bn = BatchNorm::<f64>::new(4);
    let x = data(&[6, 4], 3);
    let y = run(&bn, &x);
    for c in 0..4 {
        let col = y.index_axis(Axis(1), c);
        let mean = col.sum() / 6.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-4, "column {c}: mean {mean}, variance {var}");
    }
    assert!(vec_of(&bn.running_mean).iter().all(|&m| m != 0.0));
}

#[test]
fn evaluation_uses_the_running_statistics_and_leaves_them_alone() {
    let bn = BatchNorm::<f64>::new(2);
    let (rm, rv, gamma, beta) = ([0.5, -1.0], [2.0, 0.25], [1.5, -0.5], [0.2, 0.4]);
    bn.running_mean.set(ArrayD::from_shape_vec(vec![2], rm.to_vec()).unwrap());
    bn.running_var.set(ArrayD::from_shape_vec(vec![2], rv.to_vec()).unwrap());
    bn.weight.set(ArrayD::from_shape_vec(vec![2], gamma.to_vec()).unwrap());
    bn.bias.set(ArrayD::from_shape_vec(vec![2], beta.to_vec()).unwrap());
    bn.set_training(false);
    assert!(!bn.training());
    let x = data(&[3, 2, 2, 2], 4);
    assert_close(&run(&bn, &x), &normalise(&x, &rm, &rv, &gamma, &beta), 1e-12);
    assert_eq!(vec_of(&bn.running_mean), rm);
    assert_eq!(vec_of(&bn.running_var), rv);
    assert_eq!(bn.batches_tracked(), 0);
    // Each sample on its own (one value per channel, which training refuses) gives the same rows.
    let one = x.index_axis(Axis(0), 1).insert_axis(Axis(0)).to_owned();
    assert_close(&run(&bn, &one), &run(&bn, &x).index_axis(Axis(0), 1).insert_axis(Axis(0)).to_owned(), 1e-15);
    // Back in training mode, batch statistics again (so the output differs) and the buffers move.
    bn.set_training(true);
    assert!((run(&bn, &x) - normalise(&x, &rm, &rv, &gamma, &beta)).iter().any(|d| d.abs() > 1e-3));
    assert_eq!(bn.batches_tracked(), 1);
}

#[test]
#[should_panic(expected = "more than 1 value per channel")]
fn training_on_one_value_per_channel_panics() {
    run(&BatchNorm::<f64>::new(3), &ArrayD::zeros(IxDyn(&[1, 3])));
}

#[test]
#[should_panic(expected = "BatchNorm(3): input of shape [2, 4, 5] is not [B, 3, ..]")]
fn a_wrong_channel_count_names_the_layer() {
    run(&BatchNorm::<f64>::new(3), &ArrayD::zeros(IxDyn(&[2, 4, 5])));
}

#[test]
fn names_defaults_and_mode_switching_through_containers() {
    let bn = BatchNorm::<f32>::new(5);
    let names = |v: Vec<(String, Param<f32>)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(bn.params()), ["weight", "bias"]);
    assert_eq!(names(bn.buffers()), ["running_mean", "running_var", "num_batches_tracked"]);
    assert_eq!(bn.num_params(), 10);
    assert!(bn.weight.value().iter().all(|&v| v == 1.0) && bn.bias.value().iter().all(|&v| v == 0.0));
    assert!(bn.running_var.value().iter().all(|&v| v == 1.0) && bn.running_mean.value().iter().all(|&v| v == 0.0));
    assert_eq!((bn.momentum, bn.eps), (0.1, 1e-5));
    // A Vec forwards the mode to every child; a clone is the same layer.
    let stack = vec![bn.clone(), BatchNorm::new(2)];
    stack.set_training(false);
    assert!(!bn.training() && !stack[1].training());
    assert_eq!(names(stack.buffers())[3], "1.running_mean");
    stack[0].set_training(true);
    assert!(bn.training());
    // Modules without state accept the call.
    models::Mlp::<f32>::new(&[2, 2], &mut StdRng::seed_from_u64(0)).set_training(false);
}

#[test]
fn layer_norm_matches_a_hand_computation() {
    let ln = LayerNorm::<f64>::new(&[2, 3]);
    assert_eq!(ln.normalized_shape(), [2, 3]);
    let gamma = uniform(&[2, 3], 0.5, 1.5, 5);
    let beta = uniform(&[2, 3], -0.5, 0.5, 6);
    ln.weight.set(gamma.clone());
    ln.bias.set(beta.clone());
    let x = uniform(&[4, 2, 3], -2.0, 2.0, 7);
    let tape = Tape::new();
    let y = ln.forward(&Scope::new(&tape), tape.constant(x.clone()));
    for b in 0..4 {
        let row: Vec<f64> = x.index_axis(Axis(0), b).iter().copied().collect();
        let mean = row.iter().sum::<f64>() / 6.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
        for (k, (g, be)) in gamma.iter().zip(beta.iter()).enumerate() {
            let want = (row[k] - mean) / (var + 1e-5).sqrt() * g + be;
            assert!((y.value()[[b, k / 3, k % 3]] - want).abs() < 1e-12);
        }
    }
    assert_eq!(ln.params().len(), 2);
}

#[test]
#[should_panic(expected = "LayerNorm([4]): input of shape [2, 3] does not end in [4]")]
fn layer_norm_names_a_wrong_trailing_shape() {
    let tape = Tape::new();
    LayerNorm::<f64>::new(&[4]).forward(&Scope::new(&tape), tape.constant(ArrayD::zeros(IxDyn(&[2, 3]))));
}

/// A conv block with batch norm, as in the Circles encoder.
struct Block {
    conv: Conv2d<f32>,
    bn: BatchNorm<f32>,
}

impl Block {
    fn new(seed: u64) -> Self {
        let conv = Conv2d::new(2, 3, 3, ConvGeom::strided(1, 1), true, &mut StdRng::seed_from_u64(seed));
        Block { conv, bn: BatchNorm::new(3) }
    }

    fn forward(&self, x: &ArrayD<f32>) -> ArrayD<f32> {
        let tape = Tape::new();
        let s = Scope::new(&tape);
        (*self.bn.forward(&s, self.conv.forward(&s, tape.constant(x.clone()))).relu().value()).clone()
    }
}

impl Module<f32> for Block {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = prefixed("conv", self.conv.params());
        p.extend(prefixed("bn", self.bn.params()));
        p
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        prefixed("bn", self.bn.buffers())
    }
    fn set_training(&self, training: bool) {
        self.bn.set_training(training);
    }
}

fn bits(m: &impl Module<f32>) -> Vec<(String, Vec<u32>)> {
    m.state().into_iter().map(|(n, p)| (n, p.value().iter().map(|x| x.to_bits()).collect())).collect()
}

#[test]
fn checkpoint_round_trip_keeps_parameters_and_running_statistics() {
    let dir = std::env::temp_dir().join(format!("models-layers-norm-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("block.safetensors");
    let block = Block::new(1);
    let x = |seed| uniform(&[2, 2, 4, 4], -1.0, 2.0, seed).mapv(|v| v as f32);
    for seed in 0..3 {
        block.forward(&x(seed));
    }
    block.bn.weight.update(|w| w.mapv_inplace(|v| v * 1.5));
    assert_eq!(block.bn.batches_tracked(), 3);
    let names: Vec<String> = block.state().into_iter().map(|(n, _)| n).collect();
    let want = ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"];
    assert_eq!(names[..6], want);
    assert_eq!(names[6], "bn.num_batches_tracked");
    save_module(&path, &block).unwrap();

    let fresh = Block::new(2);
    assert_ne!(bits(&fresh), bits(&block));
    load_module(&path, &fresh).unwrap();
    assert_eq!(bits(&fresh), bits(&block), "parameters and buffers bit-identical");
    assert_eq!(fresh.bn.batches_tracked(), 3);
    // Evaluation depends on the running statistics: identical outputs after the load.
    block.set_training(false);
    fresh.set_training(false);
    assert_eq!(fresh.forward(&x(9)), block.forward(&x(9)));
    // Under a prefix, with everything accounted for.
    let mut ck = Checkpoint::new();
    ck.put_module("model", &block);
    let other = Block::new(3);
    ck.load_module("model", &other).unwrap();
    ck.finish().unwrap();
    assert_eq!(bits(&other), bits(&block));
    fs::remove_dir_all(&dir).unwrap();
}

grad_tests! {
    batch_norm_train_flat: |t, x| {
        let m = BatchNorm::<f64>::new(3);
        m.forward(&bound(t, &m, &x[1..]), x[0])
    }, [uniform(&[5, 3], -1.0, 1.0, 10), uniform(&[3], 0.5, 1.5, 11), uniform(&[3], -0.5, 0.5, 12)];
    batch_norm_train_images_tanh: |t, x| {
        let m = BatchNorm::<f64>::new(2);
        m.forward(&bound(t, &m, &x[1..]), x[0]).tanh()
    }, [uniform(&[2, 2, 2, 3], -1.0, 1.0, 13), uniform(&[2], 0.5, 1.5, 14), uniform(&[2], -0.5, 0.5, 15)];
    batch_norm_train_twice: |t, x| {
        let m = BatchNorm::<f64>::new(2);
        let s = bound(t, &m, &x[1..]);
        m.forward(&s, m.forward(&s, x[0]).tanh() * x[0])
    }, [uniform(&[4, 2], -1.0, 1.0, 16), uniform(&[2], 0.5, 1.5, 17), uniform(&[2], -0.5, 0.5, 18)];
    batch_norm_eval: |t, x| {
        let m = BatchNorm::<f64>::new(2);
        m.running_mean.set(uniform(&[2], -1.0, 1.0, 19));
        m.running_var.set(uniform(&[2], 0.5, 2.0, 20));
        m.set_training(false);
        m.forward(&bound(t, &m, &x[1..]), x[0]).square()
    }, [uniform(&[3, 2, 2], -1.0, 1.0, 21), uniform(&[2], 0.5, 1.5, 22), uniform(&[2], -0.5, 0.5, 23)];
    layer_norm_last_axis: |t, x| {
        let m = LayerNorm::<f64>::new(&[4]);
        m.forward(&bound(t, &m, &x[1..]), x[0])
    }, [uniform(&[2, 3, 4], -1.0, 1.0, 24), uniform(&[4], 0.5, 1.5, 25), uniform(&[4], -0.5, 0.5, 26)];
    layer_norm_two_axes_tanh: |t, x| {
        let m = LayerNorm::<f64>::new(&[2, 3]);
        m.forward(&bound(t, &m, &x[1..]), x[0]).tanh()
    }, [uniform(&[2, 2, 3], -1.0, 1.0, 27), uniform(&[2, 3], 0.5, 1.5, 28), uniform(&[2, 3], -0.5, 0.5, 29)];
}
