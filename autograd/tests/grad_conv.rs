//! Convolution ops: first- and second-order gradient checks over several geometries, a third-order check, the
//! adjoint identities that tie conv2d, conv_transpose2d, conv2d_weight_grad and im2col/col2im together, and the
//! kernel against a direct 7-loop convolution.

use autograd::check::{check_grad_order, test_fn, uniform, Tolerance};
use autograd::{grad_tests, ConvGeom, Tape};
use kernels::conv;
use ndarray::{Array2, Array4, ArrayD, Ix4};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn g(stride: usize, padding: usize, dilation: usize) -> ConvGeom {
    ConvGeom::new(stride, padding, dilation)
}

fn mixed() -> ConvGeom {
    ConvGeom::per_axis([2, 1], [1, 0], [1, 2])
}

grad_tests! {
    conv2d_plain: |t, x| x[0].conv2d(x[1], ConvGeom::default()),
        [uniform(&[1, 2, 4, 5], -1.0, 1.0, 1), uniform(&[3, 2, 2, 3], -1.0, 1.0, 2)];
    conv2d_stride2_batch2: |t, x| x[0].conv2d(x[1], g(2, 0, 1)).tanh(),
        [uniform(&[2, 2, 6, 5], -1.0, 1.0, 3), uniform(&[2, 2, 3, 3], -1.0, 1.0, 4)];
    conv2d_padding1: |t, x| x[0].conv2d(x[1], g(1, 1, 1)).tanh(),
        [uniform(&[1, 2, 3, 4], -1.0, 1.0, 5), uniform(&[2, 2, 3, 3], -1.0, 1.0, 6)];
    conv2d_stride2_padding1: |t, x| x[0].conv2d(x[1], ConvGeom::strided(2, 1)),
        [uniform(&[2, 1, 5, 4], -1.0, 1.0, 7), uniform(&[2, 1, 4, 4], -1.0, 1.0, 8)];
    conv2d_dilation2: |t, x| x[0].conv2d(x[1], g(1, 0, 2)).tanh(),
        [uniform(&[1, 1, 5, 6], -1.0, 1.0, 9), uniform(&[2, 1, 2, 2], -1.0, 1.0, 10)];
    conv2d_mixed_axes: |t, x| x[0].conv2d(x[1], mixed()),
        [uniform(&[2, 2, 5, 6], -1.0, 1.0, 11), uniform(&[3, 2, 3, 2], -1.0, 1.0, 12)];
    conv2d_stride_over_kernel: |t, x| x[0].conv2d(x[1], g(3, 0, 1)).tanh(),
        [uniform(&[1, 1, 7, 5], -1.0, 1.0, 13), uniform(&[2, 1, 2, 2], -1.0, 1.0, 14)];
    conv2d_with_bias: |t, x| (x[0].conv2d(x[1], g(1, 1, 1)) + x[2]).tanh(),
        [uniform(&[2, 1, 3, 3], -1.0, 1.0, 15), uniform(&[2, 1, 2, 2], -1.0, 1.0, 16),
         uniform(&[1, 2, 1, 1], -1.0, 1.0, 17)];

    conv_t_stride2_pad1_op1: |t, x| x[0].conv_transpose2d(x[1], g(2, 1, 1), [1, 1]).tanh(),
        [uniform(&[2, 2, 3, 3], -1.0, 1.0, 20), uniform(&[2, 3, 3, 3], -1.0, 1.0, 21)];
    conv_t_plain: |t, x| x[0].conv_transpose2d(x[1], ConvGeom::default(), [0, 0]),
        [uniform(&[1, 2, 2, 3], -1.0, 1.0, 22), uniform(&[2, 2, 2, 3], -1.0, 1.0, 23)];
    conv_t_dilation2: |t, x| x[0].conv_transpose2d(x[1], g(1, 0, 2), [0, 0]).tanh(),
        [uniform(&[1, 2, 3, 4], -1.0, 1.0, 24), uniform(&[2, 1, 2, 3], -1.0, 1.0, 25)];
    // output_padding >= stride (allowed since it is below the dilation): the grids no longer match exactly.
    conv_t_op_over_stride: |t, x| x[0].conv_transpose2d(x[1], g(1, 1, 2), [1, 1]).tanh(),
        [uniform(&[1, 1, 3, 3], -1.0, 1.0, 26), uniform(&[1, 2, 2, 2], -1.0, 1.0, 27)];
    conv_t_mixed_axes: |t, x| x[0].conv_transpose2d(x[1], ConvGeom::per_axis([2, 3], [0, 1], [1, 1]), [1, 2]),
        [uniform(&[2, 1, 2, 3], -1.0, 1.0, 28), uniform(&[1, 2, 3, 2], -1.0, 1.0, 29)];
    conv_t_stride4: |t, x| x[0].conv_transpose2d(x[1], g(4, 0, 1), [0, 0]),
        [uniform(&[1, 2, 2, 2], -1.0, 1.0, 30), uniform(&[2, 1, 4, 4], -1.0, 1.0, 31)];

    weight_grad_plain: |t, x| x[0].conv2d_weight_grad(x[1], [2, 3], ConvGeom::default()),
        [uniform(&[2, 2, 4, 5], -1.0, 1.0, 40), uniform(&[2, 3, 3, 3], -1.0, 1.0, 41)];
    weight_grad_stride2_pad1: |t, x| x[0].conv2d_weight_grad(x[1], [3, 3], g(2, 1, 1)).tanh(),
        [uniform(&[1, 2, 5, 5], -1.0, 1.0, 42), uniform(&[1, 2, 3, 3], -1.0, 1.0, 43)];
    weight_grad_dilation2: |t, x| x[0].conv2d_weight_grad(x[1], [2, 2], g(1, 0, 2)).tanh(),
        [uniform(&[1, 1, 6, 5], -1.0, 1.0, 44), uniform(&[1, 2, 4, 3], -1.0, 1.0, 45)];
    weight_grad_mixed_axes: |t, x| x[0].conv2d_weight_grad(x[1], [3, 2], mixed()),
        [uniform(&[2, 1, 5, 6], -1.0, 1.0, 46), uniform(&[2, 2, 3, 4], -1.0, 1.0, 47)];
    // The gradient covers only part of the output grid (a 2x2 corner of the full 3x4 grid).
    weight_grad_partial_grid: |t, x| x[0].conv2d_weight_grad(x[1], [2, 2], ConvGeom::default()).tanh(),
        [uniform(&[1, 2, 4, 5], -1.0, 1.0, 48), uniform(&[1, 1, 2, 2], -1.0, 1.0, 49)];

    // A small encoder-decoder chain: every op's backward runs through the other two.
    conv_then_conv_t: |t, x| x[0].conv2d(x[1], g(2, 1, 1)).tanh().conv_transpose2d(x[2], g(2, 1, 1), [1, 1]),
        [uniform(&[1, 1, 4, 4], -1.0, 1.0, 50), uniform(&[2, 1, 3, 3], -1.0, 1.0, 51),
         uniform(&[2, 1, 3, 3], -1.0, 1.0, 52)];
}

#[test]
fn third_order_through_a_conv_chain() {
    let f = test_fn(|_, x| x[0].conv2d(x[1], g(2, 1, 1)).tanh());
    let inputs = [uniform(&[1, 2, 4, 3], -1.0, 1.0, 60), uniform(&[2, 2, 2, 2], -1.0, 1.0, 61)];
    check_grad_order(f, &inputs, 3, Tolerance { eps: 1e-4, atol: 1e-5, rtol: 1e-3 }).unwrap();
}

#[test]
fn third_order_through_conv_transpose() {
    let f = test_fn(|_, x| x[0].conv_transpose2d(x[1], g(2, 0, 1), [1, 0]).tanh());
    let inputs = [uniform(&[1, 1, 2, 2], -1.0, 1.0, 62), uniform(&[1, 2, 2, 2], -1.0, 1.0, 63)];
    check_grad_order(f, &inputs, 3, Tolerance { eps: 1e-4, atol: 1e-5, rtol: 1e-3 }).unwrap();
}

fn rand4(rng: &mut StdRng, shape: [usize; 4]) -> Array4<f64> {
    Array4::from_shape_simple_fn(shape, || rng.gen_range(-1.0..1.0))
}

fn dot<D: ndarray::Dimension>(a: &ndarray::Array<f64, D>, b: &ndarray::Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A random geometry, kernel and input size for which the convolution is defined.
struct Case {
    geom: ConvGeom,
    x: [usize; 4],
    w: [usize; 4],
    out: [usize; 2],
}

fn random_case(rng: &mut StdRng) -> Case {
    loop {
        let geom = ConvGeom::per_axis(
            [rng.gen_range(1..=3), rng.gen_range(1..=3)],
            [rng.gen_range(0..=2), rng.gen_range(0..=2)],
            [rng.gen_range(1..=2), rng.gen_range(1..=2)],
        );
        let x = [rng.gen_range(1..=2), rng.gen_range(1..=3), rng.gen_range(1..=7), rng.gen_range(1..=7)];
        let w = [rng.gen_range(1..=3), x[1], rng.gen_range(1..=3), rng.gen_range(1..=3)];
        if let (Some(oh), Some(ow)) = (geom.conv_out(0, x[2], w[2]), geom.conv_out(1, x[3], w[3])) {
            return Case { geom, x, w, out: [oh, ow] };
        }
    }
}

/// The direct definition: 7 nested loops, zero padding by bounds checks.
fn naive_conv2d(x: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom, out: [usize; 2]) -> Array4<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let mut y = Array4::zeros((xs[0], ws[0], out[0], out[1]));
    for b in 0..xs[0] {
        for o in 0..ws[0] {
            for i in 0..out[0] {
                for j in 0..out[1] {
                    for c in 0..xs[1] {
                        for ki in 0..ws[2] {
                            for kj in 0..ws[3] {
                                let r = (i * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                                let s = (j * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                                if r >= 0 && s >= 0 && (r as usize) < xs[2] && (s as usize) < xs[3] {
                                    y[[b, o, i, j]] += w[[o, c, ki, kj]] * x[[b, c, r as usize, s as usize]];
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

#[test]
fn kernel_conv2d_matches_the_direct_definition() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..60 {
        let c = random_case(&mut rng);
        let (x, w) = (rand4(&mut rng, c.x), rand4(&mut rng, c.w));
        let got = conv::conv2d(x.view(), w.view(), &c.geom);
        let want = naive_conv2d(&x, &w, &c.geom, c.out);
        assert_eq!(got.shape(), want.shape(), "{:?}", c.geom);
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "conv2d differs from the direct loop by {err} for {:?}, x {:?}, w {:?}", c.geom, c.x, c.w);
    }
}

#[test]
fn conv_transpose_and_weight_grad_are_adjoints_of_conv2d() {
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..60 {
        let c = random_case(&mut rng);
        let (x, w) = (rand4(&mut rng, c.x), rand4(&mut rng, c.w));
        let y = rand4(&mut rng, [c.x[0], c.w[0], c.out[0], c.out[1]]);
        // The output padding that recovers x's extent.
        let op = [0, 1].map(|a| {
            let span = c.geom.dilation[a] * (c.w[2 + a] - 1) + 1;
            (c.x[2 + a] + 2 * c.geom.padding[a] - span) % c.geom.stride[a]
        });
        let lhs = dot(&conv::conv2d(x.view(), w.view(), &c.geom), &y);
        let xt = conv::conv_transpose2d(y.view(), w.view(), &c.geom, op);
        assert_eq!(xt.shape(), x.shape(), "{:?}", c.geom);
        let rhs = dot(&x, &xt);
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "<conv x, y> {lhs} != <x, conv_t y> {rhs}");
        let dw = conv::conv2d_weight_grad(x.view(), y.view(), [c.w[2], c.w[3]], &c.geom);
        let rhs = dot(&w, &dw);
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "<conv x, y> {lhs} != <w, dw(x, y)> {rhs}");
    }
}

#[test]
fn the_ops_are_adjoint_on_the_tape_too() {
    // Same identity through the Var methods, including a transposed convolution with output padding.
    let tape = Tape::<f64>::new();
    let geom = g(2, 1, 1);
    let x = tape.leaf(uniform(&[2, 3, 6, 6], -1.0, 1.0, 70));
    let w = tape.leaf(uniform(&[4, 3, 3, 3], -1.0, 1.0, 71));
    let y = tape.leaf(uniform(&[2, 4, 3, 3], -1.0, 1.0, 72));
    let lhs = (x.conv2d(w, geom) * y).sum().item();
    let rhs = (x * y.conv_transpose2d(w, geom, [1, 1])).sum().item();
    assert!((lhs - rhs).abs() < 1e-10, "{lhs} != {rhs}");
}

#[test]
fn im2col_and_col2im_are_adjoints() {
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..60 {
        let c = random_case(&mut rng);
        let (ch, h, wd) = (c.x[1], c.x[2], c.x[3]);
        let k = [c.w[2], c.w[3]];
        let img = Array2::from_shape_simple_fn((ch, h * wd), || rng.gen_range(-1.0..1.0));
        let cols = Array2::from_shape_simple_fn((ch * k[0] * k[1], c.out[0] * c.out[1]), || rng.gen_range(-1.0..1.0));
        let lhs = dot(&conv::im2col(img.view(), ch, h, wd, k, c.out, &c.geom), &cols);
        let back = conv::col2im(cols.view(), ch, h, wd, k, c.out, &c.geom);
        let rhs: f64 = img.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "<im2col x, c> {lhs} != <x, col2im c> {rhs}");
    }
}

#[test]
fn shapes_follow_pytorch() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(ArrayD::zeros(vec![2, 3, 64, 64]));
    let w = tape.leaf(ArrayD::zeros(vec![8, 3, 4, 4]));
    let y = x.conv2d(w, ConvGeom::strided(2, 1));
    assert_eq!(y.shape(), [2, 8, 32, 32]);
    let w4 = tape.leaf(ArrayD::zeros(vec![8, 5, 4, 4]));
    assert_eq!(y.conv2d(tape.leaf(ArrayD::zeros(vec![5, 8, 4, 4])), ConvGeom::strided(4, 1)).shape(), [2, 5, 8, 8]);
    // Decoder shapes of the experiments: 4x4 s2 p1 doubles, 4x4 s4 p0 quadruples.
    let z = tape.leaf(ArrayD::zeros(vec![2, 8, 4, 4]));
    assert_eq!(z.conv_transpose2d(w4, ConvGeom::strided(2, 1), [0, 0]).shape(), [2, 5, 8, 8]);
    assert_eq!(z.conv_transpose2d(w4, ConvGeom::strided(4, 0), [0, 0]).shape(), [2, 5, 16, 16]);
    let dw = x.conv2d_weight_grad(y, [4, 4], ConvGeom::strided(2, 1));
    assert_eq!(dw.shape(), [8, 3, 4, 4]);
    let _: ndarray::ArrayView4<f32> = dw.value().view().into_dimensionality::<Ix4>().unwrap();
}

#[test]
#[should_panic(expected = "conv2d: input of shape [1, 3, 5, 5] has 3 channels but weight of shape [2, 2, 3, 3]")]
fn conv2d_rejects_a_channel_mismatch() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::zeros(vec![1, 3, 5, 5]));
    x.conv2d(tape.leaf(ArrayD::zeros(vec![2, 2, 3, 3])), ConvGeom::default());
}

#[test]
#[should_panic(expected = "conv2d: input of shape [1, 1, 2, 5] with padding [0, 0] is smaller than the kernel")]
fn conv2d_rejects_a_too_small_input() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::zeros(vec![1, 1, 2, 5]));
    x.conv2d(tape.leaf(ArrayD::zeros(vec![1, 1, 2, 2])), g(1, 0, 2));
}

#[test]
#[should_panic(expected = "conv2d: input of shape [1, 4, 4] is not 4-D")]
fn conv2d_rejects_a_3d_input() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::zeros(vec![1, 4, 4]));
    x.conv2d(tape.leaf(ArrayD::zeros(vec![1, 1, 2, 2])), ConvGeom::default());
}

#[test]
#[should_panic(expected = "conv2d: stride [0, 0]")]
fn conv2d_rejects_a_zero_stride() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::zeros(vec![1, 1, 4, 4]));
    x.conv2d(tape.leaf(ArrayD::zeros(vec![1, 1, 2, 2])), g(0, 0, 1));
}

#[test]
#[should_panic(expected = "conv_transpose2d: output_padding [2, 0] must be smaller than the stride [2, 2]")]
fn conv_transpose2d_rejects_a_large_output_padding() {
    let tape = Tape::<f64>::new();
    let y = tape.leaf(ArrayD::zeros(vec![1, 2, 3, 3]));
    y.conv_transpose2d(tape.leaf(ArrayD::zeros(vec![2, 1, 3, 3])), g(2, 1, 1), [2, 0]);
}

#[test]
#[should_panic(
    expected = "conv_transpose2d: input of shape [1, 2, 3, 3] has 2 channels but weight of shape [3, 1, 3, 3]"
)]
fn conv_transpose2d_rejects_a_channel_mismatch() {
    let tape = Tape::<f64>::new();
    let y = tape.leaf(ArrayD::zeros(vec![1, 2, 3, 3]));
    y.conv_transpose2d(tape.leaf(ArrayD::zeros(vec![3, 1, 3, 3])), g(1, 0, 1), [0, 0]);
}

#[test]
#[should_panic(expected = "conv_transpose2d: input of shape [1, 1, 1, 1] with weight of shape [1, 1, 1, 1], padding")]
fn conv_transpose2d_rejects_an_empty_output() {
    let tape = Tape::<f64>::new();
    let y = tape.leaf(ArrayD::zeros(vec![1, 1, 1, 1]));
    y.conv_transpose2d(tape.leaf(ArrayD::zeros(vec![1, 1, 1, 1])), g(1, 1, 1), [0, 0]);
}

#[test]
#[should_panic(
    expected = "conv2d_weight_grad: output gradient of shape [1, 2, 4, 4] does not fit the output grid [3, 3]"
)]
fn weight_grad_rejects_a_gradient_larger_than_the_grid() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(ArrayD::zeros(vec![1, 1, 4, 4]));
    x.conv2d_weight_grad(tape.leaf(ArrayD::zeros(vec![1, 2, 4, 4])), [2, 2], ConvGeom::default());
}
