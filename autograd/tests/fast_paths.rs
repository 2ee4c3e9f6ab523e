//! The engine's fast paths (flat loops for same-shape, scalar, row and column broadcasts; run-wise sums and
//! broadcasts) against ndarray's general broadcasting and axis sums, on shapes that hit every pattern and the
//! general fallback.

use autograd::check::uniform;
use autograd::Tape;
use ndarray::{ArrayD, Axis, IxDyn, Zip};

fn close(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
}

#[test]
fn binary_ops_match_general_broadcasting() {
    let pairs: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[]),
        (&[], &[2, 5]),
        (&[1], &[2, 5]),
        (&[2, 3, 4], &[4]),
        (&[2, 3, 4], &[3, 4]),
        (&[2, 3, 4], &[1, 3, 4]),
        (&[2, 3, 4], &[2, 3, 1]),
        (&[2, 3, 4], &[2, 1, 1]),
        (&[3, 1], &[3, 4]),
        (&[1, 4], &[3, 4]),
        (&[2, 3, 4], &[2, 1, 4]), // a hole in the middle: general path
        (&[2, 3, 4], &[1, 3, 1]), // per-channel: one value per row, repeating
        (&[1, 3, 1, 1], &[5, 3, 4, 4]),
        (&[4, 7, 5, 6], &[7, 1, 1]),
        (&[2, 3, 4, 5], &[1, 3, 4, 1]),
        (&[40, 30, 9, 9], &[1, 30, 1, 1]), // per-channel, long enough for the parallel loops
        (&[3, 1], &[1, 4]),                // both broadcast: general path
        (&[1, 1, 5], &[5]),
        (&[300, 260], &[260]), // long enough for the parallel loops
        (&[300, 260], &[300, 1]),
        (&[300, 260], &[300, 260]),
        (&[0, 3], &[3]),
    ];
    for (i, &(sa, sb)) in pairs.iter().enumerate() {
        let a = uniform(sa, 0.5, 2.0, 2 * i as u64);
        let b = uniform(sb, 0.5, 2.0, 2 * i as u64 + 1);
        let tape = Tape::<f64>::new();
        let (va, vb) = (tape.constant(a.clone()), tape.constant(b.clone()));
        let shape = autograd::ops::elementwise::broadcast_shape("test", sa, sb);
        let (ba, bb) = (a.broadcast(IxDyn(&shape)).unwrap(), b.broadcast(IxDyn(&shape)).unwrap());
        let want = |f: fn(f64, f64) -> f64| Zip::from(&ba).and(&bb).map_collect(|&x, &y| f(x, y));
        assert!(close(&(va + vb).value(), &want(|x, y| x + y)), "add {sa:?} {sb:?}");
        assert!(close(&(va - vb).value(), &want(|x, y| x - y)), "sub {sa:?} {sb:?}");
        assert!(close(&(vb - va).value(), &want(|x, y| y - x)), "sub swapped {sa:?} {sb:?}");
        assert!(close(&(va * vb).value(), &want(|x, y| x * y)), "mul {sa:?} {sb:?}");
        assert!(close(&(va / vb).value(), &want(|x, y| x / y)), "div {sa:?} {sb:?}");
        assert!(close(&(vb / va).value(), &want(|x, y| y / x)), "div swapped {sa:?} {sb:?}");
        assert!(close(&va.maximum(vb).value(), &want(f64::max)), "maximum {sa:?} {sb:?}");
        assert!(close(&va.minimum(vb).value(), &want(f64::min)), "minimum {sa:?} {sb:?}");
    }
}

#[test]
fn sums_sum_to_and_broadcast_to_match_ndarray() {
    let x = uniform(&[3, 4, 5, 6], -1.0, 1.0, 9);
    let tape = Tape::<f64>::new();
    let v = tape.constant(x.clone());
    for axes in [vec![0], vec![3], vec![1, 2], vec![0, 2], vec![0, 1, 3], vec![0, 1, 2, 3]] {
        let mut want = x.clone();
        for &a in axes.iter().rev() {
            want = want.sum_axis(Axis(a));
        }
        assert!(close(&v.sum_axes(&axes, false).value(), &want), "sum {axes:?}");
        let mut kept = want.clone();
        for &a in &axes {
            kept.insert_axis_inplace(Axis(a));
        }
        assert!(close(&v.sum_axes(&axes, true).value(), &kept), "sum keepdim {axes:?}");
    }
    for target in [vec![6], vec![1, 6], vec![4, 1, 6], vec![3, 1, 5, 1], vec![1, 1, 1, 1], vec![5, 1]] {
        let got = v.sum_to(&target).value();
        assert_eq!(got.shape(), &target[..]);
        // sum_to's adjoint identity: <sum_to(x), y> = <x, broadcast(y)>.
        let y = uniform(&target, -1.0, 1.0, 3);
        let lhs: f64 = got.iter().zip(&y).map(|(a, b)| a * b).sum();
        let yb = y.broadcast(IxDyn(&[3, 4, 5, 6])).unwrap();
        let rhs: f64 = x.iter().zip(yb.iter()).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-9, "sum_to {target:?}");
        let vy = tape.constant(y.clone());
        assert!(close(&vy.broadcast_to(&[3, 4, 5, 6]).value(), &yb.to_owned()), "broadcast_to from {target:?}");
    }
}

#[test]
fn unary_ops_match_scalar_formulas_on_long_inputs() {
    let x = uniform(&[70_001], -3.0, 3.0, 5);
    let tape = Tape::<f64>::new();
    let v = tape.constant(x.clone());
    let check = |got: ArrayD<f64>, f: &dyn Fn(f64) -> f64| {
        assert!(close(&got, &x.mapv(f)));
    };
    check((*v.relu().value()).clone(), &|a| a.max(0.0));
    check((*v.leaky_relu(0.1).value()).clone(), &|a| if a > 0.0 { a } else { 0.1 * a });
    check((*v.tanh().value()).clone(), &f64::tanh);
    check((*v.sigmoid().value()).clone(), &|a| 1.0 / (1.0 + (-a).exp()));
    check((*v.exp().value()).clone(), &f64::exp);
    check((*v.abs().value()).clone(), &f64::abs);
    check((*v.clamp(-1.0, 0.5).value()).clone(), &|a| a.clamp(-1.0, 0.5));
    check((*(v * 3.0 + 1.0).value()).clone(), &|a| a * 3.0 + 1.0);
    check((*v.softplus().value()).clone(), &|a| (1.0 + a.exp()).ln());
    check((*v.map_const(|a| a * a).value()).clone(), &|a| a * a);
}
