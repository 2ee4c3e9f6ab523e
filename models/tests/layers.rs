//! Conv2d and ConvTranspose2d: values against direct loops, first- and second-order gradient checks with the
//! parameters as inputs, the Circles encoder and decoder stacks' shapes, and PyTorch's init bounds.

use autograd::check::uniform;
use autograd::{grad_tests, ConvGeom, Tape, Var};
use models::{Activation, BatchNorm, Conv2d, ConvTranspose2d, Linear, Module, Scope};
use ndarray::{ArrayD, IxDyn};
use rand::{rngs::StdRng, SeedableRng};

fn rng() -> StdRng {
    StdRng::seed_from_u64(3)
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

fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (p, q) in a.iter().zip(b) {
        assert!((p - q).abs() <= tol, "{p} vs {q}");
    }
}

/// Cross-correlation from the definition: `y[b,o,i,j] = bias[o] + sum w[o,c,u,v] x[b,c,i s+u-p, j s+v-p]`.
fn conv_direct(x: &ArrayD<f64>, w: &ArrayD<f64>, bias: &ArrayD<f64>, s: usize, p: usize) -> ArrayD<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (batch, cin, h, wd, cout, k) = (xs[0], xs[1], xs[2], xs[3], ws[0], ws[2]);
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
    let mut y = ArrayD::zeros(IxDyn(&[batch, cout, oh, ow]));
    for b in 0..batch {
        for o in 0..cout {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias[[o]];
                    for c in 0..cin {
                        for u in 0..k {
                            for v in 0..k {
                                let (r, q) = ((i * s + u) as isize - p as isize, (j * s + v) as isize - p as isize);
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                                    acc += w[[o, c, u, v]] * x[[b, c, r as usize, q as usize]];
                                }
                            }
                        }
                    }
                    y[[b, o, i, j]] = acc;
                }
            }
        }
    }
    y
}

/// Transposed convolution from the definition: every input pixel scatters `x[b,c,i,j] w[c,o,u,v]` to
/// `(i s + u - p, j s + v - p)` of an output of extent `(H-1) s - 2p + k + op`, plus the bias.
fn conv_t_direct(x: &ArrayD<f64>, w: &ArrayD<f64>, bias: &ArrayD<f64>, s: usize, p: usize, op: usize) -> ArrayD<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (batch, cin, h, wd, cout, k) = (xs[0], xs[1], xs[2], xs[3], ws[1], ws[2]);
    let (oh, ow) = ((h - 1) * s + k + op - 2 * p, (wd - 1) * s + k + op - 2 * p);
    let mut y = ArrayD::zeros(IxDyn(&[batch, cout, oh, ow]));
    for b in 0..batch {
        for o in 0..cout {
            for i in 0..oh {
                for j in 0..ow {
                    y[[b, o, i, j]] = bias[[o]];
                }
            }
            for c in 0..cin {
                for i in 0..h {
                    for j in 0..wd {
                        for u in 0..k {
                            for v in 0..k {
                                let (r, q) = ((i * s + u) as isize - p as isize, (j * s + v) as isize - p as isize);
                                if r >= 0 && q >= 0 && (r as usize) < oh && (q as usize) < ow {
                                    y[[b, o, r as usize, q as usize]] += x[[b, c, i, j]] * w[[c, o, u, v]];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

fn run_conv(layer: &Conv2d<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    (*layer.forward(&Scope::new(&tape), tape.constant(x.clone())).value()).clone()
}

fn run_conv_t(layer: &ConvTranspose2d<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    (*layer.forward(&Scope::new(&tape), tape.constant(x.clone())).value()).clone()
}

#[test]
fn conv2d_matches_the_definition() {
    for (s, p, k) in [(1, 0, 3), (2, 1, 4), (4, 1, 4), (1, 2, 2)] {
        let layer = Conv2d::<f64>::new(3, 2, k, ConvGeom::strided(s, p), true, &mut rng());
        let x = uniform(&[2, 3, 7, 6], -1.0, 1.0, 1);
        let bias = layer.bias.as_ref().unwrap().value();
        let want = conv_direct(&x, &layer.weight.value(), &bias, s, p);
        assert_close(&run_conv(&layer, &x), &want, 1e-12);
    }
    // Without a bias: the same as with a zero bias.
    let layer = Conv2d::<f64>::new(2, 3, 3, ConvGeom::strided(1, 1), false, &mut rng());
    let x = uniform(&[1, 2, 4, 4], -1.0, 1.0, 2);
    let want = conv_direct(&x, &layer.weight.value(), &ArrayD::zeros(IxDyn(&[3])), 1, 1);
    assert_close(&run_conv(&layer, &x), &want, 1e-12);
    assert_eq!(layer.params().len(), 1);
}

#[test]
fn conv_transpose2d_matches_the_definition() {
    for (s, p, k, op) in [(2, 1, 4, 0), (2, 1, 3, 1), (4, 0, 4, 0), (1, 0, 2, 0), (3, 1, 3, 2)] {
        let layer = ConvTranspose2d::<f64>::new(3, 2, k, ConvGeom::strided(s, p), op, true, &mut rng());
        let x = uniform(&[2, 3, 3, 4], -1.0, 1.0, 3);
        let bias = layer.bias.as_ref().unwrap().value();
        let want = conv_t_direct(&x, &layer.weight.value(), &bias, s, p, op);
        assert_close(&run_conv_t(&layer, &x), &want, 1e-12);
    }
}

#[test]
fn bound_variables_replace_the_parameters() {
    // The gradient checks bind their inputs as the parameters: the forward must really use them.
    let (w, b) = (uniform(&[2, 3, 3, 3], -1.0, 1.0, 5), uniform(&[2], -1.0, 1.0, 6));
    let x = uniform(&[1, 3, 5, 5], -1.0, 1.0, 7);
    let conv = Conv2d::<f64>::new(3, 2, 3, ConvGeom::strided(2, 1), true, &mut rng());
    let tape = Tape::new();
    let s = bound(&tape, &conv, &[tape.leaf(w.clone()), tape.leaf(b.clone())]);
    assert_close(&conv.forward(&s, tape.constant(x.clone())).value(), &conv_direct(&x, &w, &b, 2, 1), 1e-12);
    let (w, b) = (uniform(&[3, 2, 3, 3], -1.0, 1.0, 8), uniform(&[2], -1.0, 1.0, 9));
    let convt = ConvTranspose2d::<f64>::new(3, 2, 3, ConvGeom::strided(2, 1), 1, true, &mut rng());
    let s = bound(&tape, &convt, &[tape.leaf(w.clone()), tape.leaf(b.clone())]);
    let want = conv_t_direct(&x, &w, &b, 2, 1, 1);
    assert_close(&convt.forward(&s, tape.constant(x)).value(), &want, 1e-12);
}

#[test]
fn names_shapes_and_channel_counts() {
    let c = Conv2d::<f32>::new(3, 8, 4, ConvGeom::strided(2, 1), true, &mut rng());
    let t = ConvTranspose2d::<f32>::new(8, 5, 3, ConvGeom::strided(2, 1), 1, true, &mut rng());
    let shapes = |m: &dyn Module<f32>| m.params().into_iter().map(|(n, p)| (n, p.shape())).collect::<Vec<_>>();
    assert_eq!(shapes(&c), [("weight".to_string(), vec![8, 3, 4, 4]), ("bias".to_string(), vec![8])]);
    assert_eq!(shapes(&t), [("weight".to_string(), vec![8, 5, 3, 3]), ("bias".to_string(), vec![5])]);
    assert_eq!((c.in_channels(), c.out_channels(), c.kernel()), (3, 8, 4));
    assert_eq!((t.in_channels(), t.out_channels(), t.kernel()), (8, 5, 3));
}

#[test]
#[should_panic(expected = "Conv2d(3 -> 8, kernel 4): input of shape [1, 2, 8, 8] is not [B, 3, H, W]")]
fn conv2d_names_itself_on_a_wrong_channel_count() {
    let c = Conv2d::<f64>::new(3, 8, 4, ConvGeom::strided(2, 1), true, &mut rng());
    run_conv(&c, &ArrayD::zeros(IxDyn(&[1, 2, 8, 8])));
}

#[test]
#[should_panic(expected = "ConvTranspose2d(4 -> 2, kernel 4): input of shape [3, 4, 4] is not [B, 4, H, W]")]
fn conv_transpose2d_names_itself_on_a_wrong_rank() {
    let c = ConvTranspose2d::<f64>::new(4, 2, 4, ConvGeom::strided(2, 1), 0, true, &mut rng());
    run_conv_t(&c, &ArrayD::zeros(IxDyn(&[3, 4, 4])));
}

#[test]
fn init_bounds_follow_pytorch() {
    // Conv2d: weight [out, in, k, k] and bias U(-1/sqrt(in k k), ..).
    let c = Conv2d::<f64>::new(16, 64, 3, ConvGeom::default(), true, &mut rng());
    let bound = 1.0 / (16.0 * 9.0f64).sqrt();
    let (w, b) = (c.weight.value(), c.bias.as_ref().unwrap().value());
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.99 * bound, "{} vs {bound}", max_abs(&w));
    assert!(max_abs(&b) <= bound && max_abs(&b) > 0.8 * bound, "{} vs {bound}", max_abs(&b));
    // ConvTranspose2d: weight [in, out, k, k]; PyTorch's fan in is dim 1 times k k, i.e. out k k.
    let t = ConvTranspose2d::<f64>::new(64, 4, 4, ConvGeom::strided(2, 1), 0, true, &mut rng());
    let bound = 1.0 / (4.0 * 16.0f64).sqrt();
    let (w, b) = (t.weight.value(), t.bias.as_ref().unwrap().value());
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.99 * bound, "{} vs {bound}", max_abs(&w));
    assert!(max_abs(&b) <= bound, "{} vs {bound}", max_abs(&b));
    let wide = ConvTranspose2d::<f64>::new(4, 64, 4, ConvGeom::strided(2, 1), 0, true, &mut rng());
    let b = wide.bias.as_ref().unwrap().value();
    let bound = 1.0 / (64.0 * 16.0f64).sqrt();
    assert!(max_abs(&b) <= bound && max_abs(&b) > 0.8 * bound, "{} vs {bound}", max_abs(&b));
    // The variance of U(-b, b) is b^2 / 3.
    let n = w.len() as f64;
    let var = w.iter().map(|v| v * v).sum::<f64>() / n;
    assert!((var / (1.0 / 64.0 / 3.0) - 1.0).abs() < 0.1, "variance {var}");
    // Deterministic per seed, weight drawn before bias as in PyTorch.
    let again = Conv2d::<f64>::new(16, 64, 3, ConvGeom::default(), true, &mut rng());
    assert_eq!(*again.weight.value(), *c.weight.value());
    let w_only: ArrayD<f64> = models::init::default_weight(&[64, 16, 3, 3], &mut rng());
    assert_eq!(*c.weight.value(), w_only);
}

/// `[B, 3, 64, 64]` through the released Circles encoder: four 4x4 convolutions without bias, 3 -> 64 (s2 p1)
/// ReLU, 64 -> 128 (s2 p1) BN ReLU, 128 -> 256 (s2 p1) BN ReLU, 256 -> 512 (s4 p1) BN ReLU.
#[test]
fn circles_encoder_stack_shapes() {
    let mut r = rng();
    let widths = [3, 64, 128, 256, 512];
    let strides = [2, 2, 2, 4];
    let convs: Vec<Conv2d<f32>> = (0..4)
        .map(|i| Conv2d::new(widths[i], widths[i + 1], 4, ConvGeom::strided(strides[i], 1), false, &mut r))
        .collect();
    let bns: Vec<BatchNorm<f32>> = widths[2..].iter().map(|&c| BatchNorm::new(c)).collect();
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let mut h = tape.constant(ArrayD::from_shape_simple_fn(IxDyn(&[2, 3, 64, 64]), || 0.5f32));
    let expected = [[2, 64, 32, 32], [2, 128, 16, 16], [2, 256, 8, 8], [2, 512, 2, 2]];
    for (i, conv) in convs.iter().enumerate() {
        h = conv.forward(&s, h);
        if i > 0 {
            h = bns[i - 1].forward(&s, h);
        }
        h = h.relu();
        assert_eq!(h.shape(), expected[i], "after conv {i}");
    }
    assert_eq!(convs.num_params(), 16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512));
}

/// The Circles decoder per element, at reduced widths (the shapes do not depend on them): Linear(10 -> 16 C0)
/// BN ReLU -> [C0, 4, 4]; ConvT(C0 -> C1, 4, s2, p1) BN ReLU -> 8x8; ConvT(C1 -> C2, 4, s2, p1) BN ReLU ->
/// 16x16; ConvT(C2 -> 3, 4, s4, p0) -> 64x64.
#[test]
fn circles_decoder_stack_shapes() {
    let mut r = rng();
    let (c0, c1, c2) = (32, 16, 8);
    let lin = Linear::<f32>::new(10, 16 * c0, &mut r);
    let bn0 = BatchNorm::new(16 * c0);
    let up = [
        ConvTranspose2d::new(c0, c1, 4, ConvGeom::strided(2, 1), 0, true, &mut r),
        ConvTranspose2d::new(c1, c2, 4, ConvGeom::strided(2, 1), 0, true, &mut r),
        ConvTranspose2d::new(c2, 3, 4, ConvGeom::strided(4, 0), 0, true, &mut r),
    ];
    let bns = [BatchNorm::new(c1), BatchNorm::new(c2)];
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let elements = 6; // batch times set size
    let z = tape.constant(uniform(&[elements, 10], -1.0, 1.0, 4).mapv(|v| v as f32));
    let mut h = Activation::Relu.apply(bn0.forward(&s, lin.forward(&s, z))).reshape(&[elements, c0, 4, 4]);
    let expected = [[elements, c1, 8, 8], [elements, c2, 16, 16], [elements, 3, 64, 64]];
    for (i, layer) in up.iter().enumerate() {
        h = layer.forward(&s, h);
        if i < 2 {
            h = bns[i].forward(&s, h).relu();
        }
        assert_eq!(h.shape(), expected[i], "after transposed conv {i}");
    }
}

grad_tests! {
    conv2d_s1_p1: |t, x| {
        let m = Conv2d::<f64>::new(2, 3, 3, ConvGeom::strided(1, 1), true, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0])
    }, [uniform(&[2, 2, 4, 4], -1.0, 1.0, 10), uniform(&[3, 2, 3, 3], -0.5, 0.5, 11), uniform(&[3], -0.5, 0.5, 12)];
    conv2d_s2_p1_tanh: |t, x| {
        let m = Conv2d::<f64>::new(2, 2, 4, ConvGeom::strided(2, 1), true, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0]).tanh()
    }, [uniform(&[1, 2, 5, 5], -1.0, 1.0, 13), uniform(&[2, 2, 4, 4], -0.5, 0.5, 14), uniform(&[2], -0.5, 0.5, 15)];
    conv2d_no_bias: |t, x| {
        let m = Conv2d::<f64>::new(1, 2, 2, ConvGeom::per_axis([1, 2], [0, 1], [1, 1]), false, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0]).square()
    }, [uniform(&[2, 1, 3, 4], -1.0, 1.0, 16), uniform(&[2, 1, 2, 2], -1.0, 1.0, 17)];
    conv_transpose2d_s2_p1: |t, x| {
        let m = ConvTranspose2d::<f64>::new(3, 2, 4, ConvGeom::strided(2, 1), 0, true, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0])
    }, [uniform(&[1, 3, 3, 3], -1.0, 1.0, 20), uniform(&[3, 2, 4, 4], -0.5, 0.5, 21), uniform(&[2], -0.5, 0.5, 22)];
    conv_transpose2d_output_padding_tanh: |t, x| {
        let m = ConvTranspose2d::<f64>::new(2, 2, 3, ConvGeom::strided(2, 1), 1, true, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0]).tanh()
    }, [uniform(&[2, 2, 2, 3], -1.0, 1.0, 23), uniform(&[2, 2, 3, 3], -0.5, 0.5, 24), uniform(&[2], -0.5, 0.5, 25)];
    conv_transpose2d_s4_p0: |t, x| {
        let m = ConvTranspose2d::<f64>::new(2, 1, 4, ConvGeom::strided(4, 0), 0, true, &mut rng());
        m.forward(&bound(t, &m, &x[1..]), x[0]).square()
    }, [uniform(&[1, 2, 2, 2], -1.0, 1.0, 26), uniform(&[2, 1, 4, 4], -0.5, 0.5, 27), uniform(&[1], -0.5, 0.5, 28)];
    encoder_then_decoder: |t, x| {
        let enc = Conv2d::<f64>::new(1, 2, 2, ConvGeom::strided(2, 0), true, &mut rng());
        let dec = ConvTranspose2d::<f64>::new(2, 1, 2, ConvGeom::strided(2, 0), 0, true, &mut rng());
        let s = bound(t, &enc, &x[1..3]);
        for ((_, p), v) in dec.params().iter().zip(&x[3..]) {
            s.bind(p, *v);
        }
        dec.forward(&s, enc.forward(&s, x[0]).tanh())
    }, [uniform(&[1, 1, 4, 4], -1.0, 1.0, 30), uniform(&[2, 1, 2, 2], -1.0, 1.0, 31), uniform(&[2], -0.5, 0.5, 32),
        uniform(&[2, 1, 2, 2], -1.0, 1.0, 33), uniform(&[1], -0.5, 0.5, 34)];
}
