//! Lstm, Embedding, FSPool and FSEncoder: values against plain-loop references, PyTorch's initialisations and
//! names, first- and second-order gradient checks with the parameters as inputs, and (proptest) the
//! encoder's invariance to the order of the set's elements.

use autograd::check::{distinct, uniform};
use autograd::ops::fspool::fspool;
use autograd::{concat, grad_tests, Tape, Var};
use models::{Embedding, FSEncoder, FSPool, Lstm, Module, Param, Scope};
use ndarray::{array, ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

fn rng() -> StdRng {
    StdRng::seed_from_u64(5)
}

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

fn names<T: kernels::Float>(v: Vec<(String, Param<T>)>) -> Vec<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (p, q) in a.iter().zip(b) {
        assert!((p - q).abs() <= tol, "{p} vs {q}");
    }
}

fn mean_var(a: &ArrayD<f64>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    (mean, a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// One LSTM direction by plain loops, PyTorch's equations and packed-sequence semantics: outputs `[B, T, H]`
/// (zero past each length) and the final `(h, c)` `[B, H]` each.
fn lstm_reference(x: &ArrayD<f64>, p: &[Param<f64>], lengths: &[usize], reverse: bool) -> [ArrayD<f64>; 3] {
    let (w_ih, w_hh, b_ih, b_hh) = (p[0].value(), p[1].value(), p[2].value(), p[3].value());
    let (batch, steps, input, hid) = (x.shape()[0], x.shape()[1], x.shape()[2], w_hh.shape()[1]);
    let mut out = ArrayD::zeros(IxDyn(&[batch, steps, hid]));
    let mut h_n = ArrayD::zeros(IxDyn(&[batch, hid]));
    let mut c_n = ArrayD::zeros(IxDyn(&[batch, hid]));
    for b in 0..batch {
        let (mut h, mut c) = (vec![0.0; hid], vec![0.0; hid]);
        let order: Vec<usize> = if reverse { (0..lengths[b]).rev().collect() } else { (0..lengths[b]).collect() };
        for t in order {
            let gate = |k: usize| {
                let from_x: f64 = (0..input).map(|j| w_ih[[k, j]] * x[[b, t, j]]).sum();
                let from_h: f64 = (0..hid).map(|j| w_hh[[k, j]] * h[j]).sum();
                b_ih[[k]] + b_hh[[k]] + from_x + from_h
            };
            let g: Vec<f64> = (0..4 * hid).map(gate).collect();
            for u in 0..hid {
                let (i, f, gg, o) =
                    (sigmoid(g[u]), sigmoid(g[hid + u]), g[2 * hid + u].tanh(), sigmoid(g[3 * hid + u]));
                c[u] = f * c[u] + i * gg;
                h[u] = o * c[u].tanh();
            }
            for u in 0..hid {
                out[[b, t, u]] = h[u];
            }
        }
        for u in 0..hid {
            h_n[[b, u]] = h[u];
            c_n[[b, u]] = c[u];
        }
    }
    [out, h_n, c_n]
}

#[test]
fn lstm_matches_a_plain_loop_reference_both_ways_with_lengths() {
    let lstm = Lstm::<f64>::new(3, 2, true, &mut rng());
    let x = uniform(&[3, 4, 3], -1.0, 1.0, 1);
    let lengths = [4, 2, 0];
    let tape = Tape::new();
    let (out, (h_n, c_n)) = lstm.forward(&Scope::new(&tape), tape.constant(x.clone()), Some(&lengths));
    assert_eq!(out.shape(), [3, 4, 4]);
    assert_eq!(h_n.shape(), [2, 3, 2]);
    let params: Vec<Param<f64>> = lstm.params().into_iter().map(|(_, p)| p).collect();
    for (d, reverse) in [(0, false), (1, true)] {
        let [o, h, c] = lstm_reference(&x, &params[4 * d..4 * d + 4], &lengths, reverse);
        let half = out.value().slice_axis(Axis(2), (2 * d..2 * d + 2).into()).to_owned();
        assert_close(&half, &o, 1e-12);
        assert_close(&h_n.value().index_axis(Axis(0), d).to_owned(), &h, 1e-12);
        assert_close(&c_n.value().index_axis(Axis(0), d).to_owned(), &c, 1e-12);
    }
    // Without lengths every sequence is full; a unidirectional LSTM has one direction.
    let uni = Lstm::<f64>::new(3, 2, false, &mut rng());
    let (out, (h_n, _)) = uni.forward(&Scope::new(&tape), tape.constant(x.clone()), None);
    let params: Vec<Param<f64>> = uni.params().into_iter().map(|(_, p)| p).collect();
    let [o, h, _] = lstm_reference(&x, &params, &[4, 4, 4], false);
    assert_close(&out.value(), &o, 1e-12);
    assert_close(&h_n.value().index_axis(Axis(0), 0).to_owned(), &h, 1e-12);
    assert_eq!(uni.directions(), 1);
}

#[test]
fn lstm_names_and_init_follow_pytorch() {
    let lstm = Lstm::<f64>::new(5, 16, true, &mut rng());
    let want = [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    ];
    assert_eq!(names(lstm.params()), want);
    let shapes: Vec<Vec<usize>> = lstm.params().iter().map(|(_, p)| p.shape()).collect();
    assert_eq!(shapes[..4], [vec![64, 5], vec![64, 16], vec![64], vec![64]]);
    assert_eq!((lstm.input_size(), lstm.hidden_size(), lstm.directions()), (5, 16, 2));
    // Every tensor U(-1/sqrt(H), 1/sqrt(H)), drawn in the order above.
    let bound = 0.25;
    let all: Vec<f64> = lstm.params().iter().flat_map(|(_, p)| p.value().iter().copied().collect::<Vec<_>>()).collect();
    let max = all.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max <= bound && max > 0.99 * bound, "{max}");
    let var = all.iter().map(|v| v * v).sum::<f64>() / all.len() as f64;
    assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.1, "variance {var}");
    let first: ArrayD<f64> = models::init::uniform(&[64, 5], -bound, bound, &mut rng());
    assert_eq!(*lstm.fwd.weight_ih.value(), first);
    assert!(Lstm::<f32>::new(5, 16, false, &mut rng()).bwd.is_none());
}

#[test]
#[should_panic(expected = "Lstm(3 -> 2, 1 directions): input of shape [2, 4, 5] is not [B, T, 3]")]
fn lstm_names_itself_on_a_wrong_input_width() {
    let tape = Tape::new();
    Lstm::<f64>::new(3, 2, false, &mut rng()).forward(
        &Scope::new(&tape),
        tape.constant(ArrayD::zeros(vec![2, 4, 5])),
        None,
    );
}

#[test]
fn embedding_looks_up_rows_and_starts_standard_normal() {
    let emb = Embedding::<f64>::new(4, 3, &mut rng());
    let ids = array![[0, 2], [2, 3]].into_dyn();
    let tape = Tape::new();
    let y = emb.forward(&Scope::new(&tape), &ids);
    assert_eq!(y.shape(), [2, 2, 3]);
    let w = emb.weight.value();
    for ((i, j), &id) in [((0, 0), &0), ((0, 1), &2), ((1, 0), &2), ((1, 1), &3)] {
        assert_eq!(y.value().index_axis(Axis(0), i).index_axis(Axis(0), j), w.index_axis(Axis(0), id));
    }
    assert_eq!(names(emb.params()), ["weight"]);
    assert_eq!((emb.vocab(), emb.dim()), (4, 3));
    let big = Embedding::<f64>::new(1000, 50, &mut rng());
    let (mean, var) = mean_var(&big.weight.value());
    assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {mean}, variance {var}");
}

#[test]
fn fspool_layer_is_the_op_with_its_weight_and_starts_standard_normal() {
    let pool = FSPool::<f64>::new(3, 4, &mut rng());
    assert_eq!(pool.weight.shape(), [3, 5]);
    assert_eq!((pool.channels(), pool.pieces()), (3, 4));
    assert_eq!(names(pool.params()), ["weight"]);
    let x = distinct(&[2, 3, 5], 0.1, 2);
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let (y, perm) = pool.forward_with_perm(&s, tape.constant(x.clone()), Some(&[5, 3]));
    let (want, want_perm) = fspool(tape.constant(x), tape.constant((*pool.weight.value()).clone()), Some(&[5, 3]));
    assert_eq!(*y.value(), *want.value());
    assert_eq!(perm, want_perm);
    let big = FSPool::<f64>::new(200, 20, &mut rng());
    let (mean, var) = mean_var(&big.weight.value());
    assert!(mean.abs() < 0.07 && (var - 1.0).abs() < 0.1, "mean {mean}, variance {var}");
}

fn encode(enc: &FSEncoder<f64>, s: &ArrayD<f64>, sizes: Option<&[usize]>) -> ArrayD<f64> {
    let tape = Tape::new();
    (*enc.forward_sized(&Scope::new(&tape), tape.constant(s.clone()), sizes).value()).clone()
}

#[test]
fn fs_encoder_is_an_mlp_per_element_divided_by_n_then_fspool() {
    let enc = FSEncoder::<f64>::new(3, 8, 4, 5, &mut rng());
    let s = uniform(&[2, 6, 3], -1.0, 1.0, 3);
    // By hand: each element through the MLP (ReLU between layers, none after), divided by N = 6.
    let tape = Tape::new();
    let sc = Scope::new(&tape);
    let mut h = ArrayD::zeros(IxDyn(&[2, 4, 6]));
    for b in 0..2 {
        for n in 0..6 {
            let e = tape.constant(s.index_axis(Axis(0), b).index_axis(Axis(0), n).to_owned());
            let l = &enc.mlp.layers;
            let out = l[2].forward(&sc, l[1].forward(&sc, l[0].forward(&sc, e).relu()).relu());
            for c in 0..4 {
                h[[b, c, n]] = out.value()[[c]] / 6.0;
            }
        }
    }
    let (want, _) = fspool(tape.constant(h), tape.constant((*enc.pool.weight.value()).clone()), None);
    assert_close(&encode(&enc, &s, None), &want.value(), 1e-12);
    assert_eq!(enc.forward(&sc, tape.constant(s.clone())).shape(), [2, 4]);
    // The output depends on the set (the invariance test below could fail).
    assert!((encode(&enc, &s, None) - encode(&enc, &s.mapv(|v| v * 0.5 + 0.1), None)).iter().any(|d| d.abs() > 1e-6));
}

#[test]
fn fs_encoder_ignores_padded_elements() {
    let enc = FSEncoder::<f64>::new(2, 5, 3, 4, &mut rng());
    let s = uniform(&[2, 4, 2], -1.0, 1.0, 4);
    let mut other = s.clone();
    other[[0, 3, 0]] = 7.0; // sample 0 has 3 elements: its 4th is padding
    other[[1, 2, 1]] = -5.0; // sample 1 has 2
    other[[1, 3, 0]] = 3.0;
    let sizes = [3, 2];
    assert_close(&encode(&enc, &s, Some(&sizes)), &encode(&enc, &other, Some(&sizes)), 1e-15);
    assert!((encode(&enc, &s, None) - encode(&enc, &other, None)).iter().any(|d| d.abs() > 1e-6));
}

#[test]
fn fs_encoder_names_and_the_circles_size() {
    let enc = FSEncoder::<f32>::new(10, 512, 100, 20, &mut rng());
    let want =
        ["mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias", "mlp.2.weight", "mlp.2.bias", "pool.weight"];
    assert_eq!(names(enc.params()), want);
    assert_eq!(enc.num_params(), 10 * 512 + 512 + 512 * 512 + 512 + 512 * 100 + 100 + 100 * 21);
    assert_eq!((enc.input_dim(), enc.output_dim()), (10, 100));
    assert_eq!(enc.pool.weight.shape(), [100, 21]);
}

#[test]
#[should_panic(expected = "FSEncoder(3 -> 4): input of shape [2, 3] is not [B, N, 3] with N > 0")]
fn fs_encoder_names_itself_on_a_wrong_shape() {
    let enc = FSEncoder::<f64>::new(3, 8, 4, 5, &mut rng());
    encode(&enc, &ArrayD::zeros(IxDyn(&[2, 3])), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn fs_encoder_is_invariant_to_the_order_of_elements(
        (b, n, values, perm) in (1usize..4, 1usize..7).prop_flat_map(|(b, n)| (
            Just(b),
            Just(n),
            prop::collection::vec(-2.0f64..2.0, b * n * 3),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        )),
        seed in 0u64..1000,
    ) {
        let enc = FSEncoder::<f64>::new(3, 6, 4, 5, &mut StdRng::seed_from_u64(seed));
        let s = ArrayD::from_shape_vec(vec![b, n, 3], values).unwrap();
        let permuted = s.select(Axis(1), &perm);
        let (y, yp) = (encode(&enc, &s, None), encode(&enc, &permuted, None));
        for (p, q) in y.iter().zip(&yp) {
            prop_assert!((p - q).abs() <= 1e-12 * (1.0 + p.abs()), "{} vs {} for permutation {:?}", p, q, perm);
        }
    }
}

/// All of an LSTM's results in one vector: outputs, then `h_n`, then `c_n`.
fn lstm_flat<'t>(t: &'t Tape<f64>, x: &[Var<'t, f64>], bidirectional: bool, lengths: Option<&[usize]>) -> Var<'t, f64> {
    let m = Lstm::<f64>::new(2, 2, bidirectional, &mut rng());
    let (out, (h, c)) = m.forward(&bound(t, &m, &x[1..]), x[0], lengths);
    let flat = |v: Var<'t, f64>| v.reshape(&[v.value().len()]);
    concat(&[flat(out), flat(h), flat(c)], 0)
}

fn lstm_params(seed: u64, directions: usize) -> Vec<ArrayD<f64>> {
    let shapes: [&[usize]; 4] = [&[8, 2], &[8, 2], &[8], &[8]];
    (0..4 * directions).map(|i| uniform(shapes[i % 4], -0.7, 0.7, seed + i as u64)).collect()
}

/// `[4, 3]`, `[4]`, `[4, 4]`, `[4]`, `[2, 4]`, `[2]`, `[2, k+1]`: an FSEncoder(3, 4, 2, k)'s parameters.
fn encoder_params(seed: u64, k: usize) -> Vec<ArrayD<f64>> {
    let shapes: [&[usize]; 7] = [&[4, 3], &[4], &[4, 4], &[4], &[2, 4], &[2], &[2, k + 1]];
    shapes.iter().enumerate().map(|(i, s)| uniform(s, -1.0, 1.0, seed + i as u64)).collect()
}

// grad_tests! takes a fixed list of input expressions; these cases index into generated vectors.
grad_tests! {
    lstm_unidirectional: |t, x| lstm_flat(t, x, false, None),
        [uniform(&[2, 3, 2], -1.0, 1.0, 10), lstm_params(11, 1)[0].clone(), lstm_params(11, 1)[1].clone(),
         lstm_params(11, 1)[2].clone(), lstm_params(11, 1)[3].clone()];
    lstm_bidirectional_with_lengths: |t, x| lstm_flat(t, x, true, Some(&[3, 1])),
        [uniform(&[2, 3, 2], -1.0, 1.0, 20), lstm_params(21, 2)[0].clone(), lstm_params(21, 2)[1].clone(), lstm_params(21, 2)[2].clone(),
         lstm_params(21, 2)[3].clone(), lstm_params(21, 2)[4].clone(), lstm_params(21, 2)[5].clone(),
         lstm_params(21, 2)[6].clone(), lstm_params(21, 2)[7].clone()];
    embedding_repeated_ids: |t, x| {
        let m = Embedding::<f64>::new(4, 3, &mut rng());
        m.forward(&bound(t, &m, x), &array![[0, 2, 2], [3, 0, 0]].into_dyn()).square()
    }, [uniform(&[4, 3], -1.0, 1.0, 30)];
    fspool_layer_sizes: |t, x| {
        let m = FSPool::<f64>::new(3, 4, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0], Some(&[4, 2])).tanh()
    }, [distinct(&[2, 3, 4], 0.1, 31), uniform(&[3, 5], -1.0, 1.0, 32)];
    fs_encoder: |t, x| {
        let m = FSEncoder::<f64>::new(3, 4, 2, 3, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0])
    }, [uniform(&[2, 3, 3], -1.0, 1.0, 40), encoder_params(41, 3)[0].clone(), encoder_params(41, 3)[1].clone(),
        encoder_params(41, 3)[2].clone(), encoder_params(41, 3)[3].clone(), encoder_params(41, 3)[4].clone(),
        encoder_params(41, 3)[5].clone(), encoder_params(41, 3)[6].clone()];
    fs_encoder_sizes_squared: |t, x| {
        let m = FSEncoder::<f64>::new(3, 4, 2, 4, &mut rng());
        m.forward_sized(&bound(t, &m, &x[1..]), x[0], Some(&[2, 4])).square()
    }, [uniform(&[2, 4, 3], -1.0, 1.0, 50), encoder_params(51, 4)[0].clone(), encoder_params(51, 4)[1].clone(),
        encoder_params(51, 4)[2].clone(), encoder_params(51, 4)[3].clone(), encoder_params(51, 4)[4].clone(),
        encoder_params(51, 4)[5].clone(), encoder_params(51, 4)[6].clone()];
}
