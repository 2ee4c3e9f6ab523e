//! FSPool: first- and second-order gradient checks with and without set sizes, values against a direct loop
//! computation, padding that cannot leak into the result, and (proptest) invariance to the order of the set.

use autograd::check::{distinct, uniform};
use autograd::ops::fspool::fspool;
use autograd::{grad_tests, Tape};
use ndarray::{s, ArrayD};
use proptest::prelude::*;

grad_tests! {
    no_sizes: |t, x| fspool(x[0], x[1], None).0, [distinct(&[2, 3, 4], 0.1, 1), uniform(&[3, 5], -1.0, 1.0, 2)];
    many_pieces: |t, x| fspool(x[0], x[1], None).0, [distinct(&[2, 2, 3], 0.1, 3), uniform(&[2, 8], -1.0, 1.0, 4)];
    sizes_1_n_and_between: |t, x| fspool(x[0], x[1], Some(&[1, 4, 3])).0,
        [distinct(&[3, 2, 4], 0.1, 5), uniform(&[2, 4], -1.0, 1.0, 6)];
    sizes_with_empty: |t, x| fspool(x[0], x[1], Some(&[0, 2])).0,
        [distinct(&[2, 3, 3], 0.1, 7), uniform(&[3, 3], -1.0, 1.0, 8)];
    composed: |t, x| fspool(x[0].tanh(), x[1].square(), Some(&[2, 3])).0.square(),
        [distinct(&[2, 2, 3], 0.15, 9), uniform(&[2, 4], -1.0, 1.0, 10)];
}

/// FSPool straight from the definition, in plain loops.
fn fspool_by_hand(x: &ArrayD<f64>, w: &ArrayD<f64>, sizes: &[usize]) -> ArrayD<f64> {
    let (batch, channels) = (x.shape()[0], x.shape()[1]);
    let k = w.shape()[1] - 1;
    let mut y = ArrayD::zeros(vec![batch, channels]);
    for b in 0..batch {
        let n = sizes[b];
        for c in 0..channels {
            let mut vals: Vec<f64> = (0..n).map(|j| x[[b, c, j]]).collect();
            vals.sort_by(|p, q| q.partial_cmp(p).unwrap());
            let mut acc = 0.0;
            for (j, v) in vals.iter().enumerate() {
                let r = j as f64 / (n.max(2) - 1) as f64;
                let idx = (k as f64 * r).floor() as usize;
                let frac = k as f64 * r - idx as f64;
                let wj = (1.0 - frac) * w[[c, idx]] + frac * w[[c, (idx + 1).min(k)]];
                acc += wj * v;
            }
            y[[b, c]] = acc;
        }
    }
    y
}

/// Output, input gradient and weight gradient of `<r, fspool(x, w)>`.
fn run(x: &ArrayD<f64>, w: &ArrayD<f64>, sizes: Option<&[usize]>) -> (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>) {
    let tape = Tape::<f64>::new();
    let (xv, wv) = (tape.leaf(x.clone()), tape.leaf(w.clone()));
    let (y, perm) = fspool(xv, wv, sizes);
    assert_eq!(perm.shape(), x.shape());
    let r = uniform(&y.shape(), 0.5, 1.5, 99);
    let g = tape.grad(&[(y * y.constant(r)).sum()], &[xv, wv], false);
    ((*y.value()).clone(), (*g[0].value()).clone(), (*g[1].value()).clone())
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (p, q) in a.iter().zip(b) {
        assert!((p - q).abs() <= tol, "{what}: {a} vs {b}");
    }
}

#[test]
fn values_match_the_definition() {
    let x = distinct(&[3, 2, 5], 0.1, 20);
    for (k, sizes) in [(20, vec![5, 5, 5]), (3, vec![1, 5, 2]), (4, vec![4, 3, 1]), (1, vec![0, 5, 2])] {
        let w = uniform(&[2, k + 1], -1.0, 1.0, 21 + k as u64);
        let want = fspool_by_hand(&x, &w, &sizes);
        assert_close(&run(&x, &w, Some(&sizes)).0, &want, 1e-12, "with sizes");
        if sizes.iter().all(|&n| n == 5) {
            assert_close(&run(&x, &w, None).0, &want, 1e-12, "without sizes");
        }
    }
}

#[test]
fn permutation_sorts_each_channel_descending() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(distinct(&[2, 3, 4], 0.1, 30));
    let (_, perm) = fspool(x, tape.leaf(uniform(&[3, 3], -1.0, 1.0, 31)), Some(&[4, 2]));
    let sorted = x.gather(2, &perm).value();
    for b in 0..2 {
        let n = [4, 2][b];
        for c in 0..3 {
            let row = sorted.slice(s![b, c, ..n]);
            assert!(row.windows(2).into_iter().all(|w| w[0] > w[1]), "descending: {row}");
            assert_eq!(perm.slice(s![b, c, n..]).to_vec(), (n..4).collect::<Vec<_>>(), "padding stays in place");
        }
    }
}

/// A set of one element is pooled with W[:, 0] alone (the released code's mask also admitted position 1).
#[test]
fn a_set_of_one_uses_the_first_weight_only() {
    let x = distinct(&[1, 3, 4], 0.1, 40);
    let w = uniform(&[3, 6], -1.0, 1.0, 41);
    let y = run(&x, &w, Some(&[1])).0;
    for c in 0..3 {
        assert!((y[[0, c]] - w[[c, 0]] * x[[0, c, 0]]).abs() < 1e-15);
    }
}

/// Padded positions, whatever their values, change neither the output nor the gradients, and get zero
/// gradient; each sample equals pooling its valid elements alone.
#[test]
fn padding_does_not_leak() {
    let sizes = [1usize, 3, 4, 2];
    let w = uniform(&[2, 5], -1.0, 1.0, 50);
    let base = distinct(&[4, 2, 4], 0.1, 51);
    let padded = |fill: f64| {
        let mut x = base.clone();
        for (b, &n) in sizes.iter().enumerate() {
            x.slice_mut(s![b, .., n..]).fill(fill);
        }
        x
    };
    let (y0, gx0, gw0) = run(&padded(0.0), &w, Some(&sizes));
    for fill in [1e6, -1e6, 0.05] {
        let (y, gx, gw) = run(&padded(fill), &w, Some(&sizes));
        assert_eq!(y, y0, "output with padding {fill}");
        assert_eq!(gx, gx0, "input gradient with padding {fill}");
        assert_eq!(gw, gw0, "weight gradient with padding {fill}");
    }
    for (b, &n) in sizes.iter().enumerate() {
        assert!(gx0.slice(s![b, .., n..]).iter().all(|&g| g == 0.0), "zero gradient at padding");
        let tape = Tape::<f64>::new();
        let alone = tape.leaf(base.slice(s![b..b + 1, .., ..n]).to_owned().into_dyn());
        let y = fspool(alone, tape.leaf(w.clone()), None).0.value();
        assert_close(&y0.slice(s![b..b + 1, ..]).to_owned().into_dyn(), &y, 1e-12, "sample alone");
    }
}

#[test]
#[should_panic(expected = "fspool: sizes")]
fn sizes_beyond_the_set_are_rejected() {
    let tape = Tape::<f64>::new();
    fspool(tape.leaf(uniform(&[2, 1, 3], 0.0, 1.0, 60)), tape.leaf(uniform(&[1, 3], 0.0, 1.0, 61)), Some(&[3, 4]));
}

/// A random case: values, weights, sizes and a shuffle of the set elements of every sample.
fn case() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>, Vec<usize>, Vec<Vec<usize>>)> {
    (1usize..4, 1usize..4, 1usize..7, 0usize..6).prop_flat_map(|(batch, channels, n, k)| {
        (
            prop::collection::vec(-5.0f64..5.0, batch * channels * n),
            prop::collection::vec(-1.0f64..1.0, channels * (k + 1)),
            prop::collection::vec(0..=n, batch),
            prop::collection::vec(Just((0..n).collect::<Vec<usize>>()).prop_shuffle(), batch),
        )
            .prop_map(move |(x, w, sizes, shuffles)| {
                let x = ArrayD::from_shape_vec(vec![batch, channels, n], x).unwrap();
                let w = ArrayD::from_shape_vec(vec![channels, k + 1], w).unwrap();
                (x, w, sizes, shuffles)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Permuting the elements of each set leaves the output and the weight gradient unchanged and permutes
    /// the input gradient the same way.
    #[test]
    fn invariant_to_the_order_of_the_set((x, w, sizes, shuffles) in case(), use_sizes in any::<bool>()) {
        let (batch, channels, n) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let sizes = if use_sizes { sizes } else { vec![n; batch] };
        // Sample b's permutation: the shuffle restricted to its valid elements, padding left in place.
        let perms: Vec<Vec<usize>> = shuffles
            .iter()
            .zip(&sizes)
            .map(|(sh, &m)| sh.iter().copied().filter(|&p| p < m).chain(m..n).collect())
            .collect();
        for b in 0..batch {
            for c in 0..channels {
                let mut vals: Vec<f64> = (0..sizes[b]).map(|j| x[[b, c, j]]).collect();
                vals.sort_by(|p, q| p.partial_cmp(q).unwrap());
                prop_assume!(vals.windows(2).all(|w| w[1] - w[0] > 1e-9), "no ties");
            }
        }
        let mut xp = x.clone();
        for b in 0..batch {
            for c in 0..channels {
                for j in 0..n {
                    xp[[b, c, j]] = x[[b, c, perms[b][j]]];
                }
            }
        }
        let sz = if use_sizes { Some(&sizes[..]) } else { None };
        let (y, gx, gw) = run(&x, &w, sz);
        let (yp, gxp, gwp) = run(&xp, &w, sz);
        assert_close(&y, &yp, 1e-12, "output");
        assert_close(&gw, &gwp, 1e-12, "weight gradient");
        for b in 0..batch {
            for c in 0..channels {
                for j in 0..n {
                    prop_assert!((gxp[[b, c, j]] - gx[[b, c, perms[b][j]]]).abs() <= 1e-12, "input gradient");
                }
            }
        }
        assert_close(&y, &fspool_by_hand(&x, &w, &sizes), 1e-12, "definition");
    }
}
