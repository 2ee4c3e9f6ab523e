//! Every kernel this CPU can run (AVX-512 and AVX2 on an AVX-512 machine) against a naive f64 product: each
//! test runs once per level, on shapes cut at that level's own tile and block sizes.

use super::*;
use crate::{at_level, levels};

/// The levels with an sgemm kernel on this CPU (none on a CPU without AVX2: the tests then check nothing,
/// and the products run on matrixmultiply, tested by `gemm`'s tests).
fn kernel_levels() -> Vec<Level> {
    levels().into_iter().filter(|&l| l >= Level::Avx2).collect()
}

/// A level's sizes: `(MR, NR, KC, MC, NC)`.
fn sizes(level: Level) -> (usize, usize, usize, usize, usize) {
    fn of<K: Isa>() -> (usize, usize, usize, usize, usize) {
        (K::MR, K::NR, K::KC, K::MC, K::NC)
    }
    with_isa!(level, of())
}

fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        }
    }
    c
}

/// Run `product` into a copy of `c0` (`m x n`, stored transposed when `trans_c`) and check every element
/// against `alpha want + beta c0`.
fn check_into(
    (m, n): (usize, usize),
    c0: &[f32],
    trans_c: bool,
    want: &[f64],
    (alpha, beta): (f32, f32),
    what: &str,
    product: impl FnOnce(MatMut),
) {
    let mut c: Vec<f32> = if trans_c { (0..n * m).map(|q| c0[(q % m) * n + q / m]).collect() } else { c0.to_vec() };
    let cm = if trans_c {
        MatMut { ptr: c.as_mut_ptr(), rs: 1, cs: m as isize }
    } else {
        MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 }
    };
    product(cm);
    for i in 0..m {
        for j in 0..n {
            let got = if trans_c { c[j * m + i] } else { c[i * n + j] } as f64;
            let expect = alpha as f64 * want[i * n + j] + beta as f64 * c0[i * n + j] as f64;
            assert!((got - expect).abs() < 1e-3 * (1.0 + expect.abs()), "{what} at ({i}, {j}): {got} vs {expect}");
        }
    }
}

fn filled(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 37 + seed * 11) % 29) as f32 / 14.0 - 1.0).collect()
}

/// Every edge case, at each level: m, n and k of 1, one below, at and one above the tile (and the slice for
/// k), several slices of k, m and n across blocks; operands and output stored transposed; alpha and beta.
#[test]
fn matches_the_naive_product_on_edges_strides_alpha_and_beta() {
    for level in kernel_levels() {
        let (mr, nr, kc, mc, nc) = sizes(level);
        let shapes = [
            (1, 1, 1),
            (mr - 1, nr + 1, kc - 1),
            (mr, nr, kc),
            (mr + 1, nr - 1, kc + 1),
            (2 * mr + 1, 3 * nr + 3, 5),
            (mc + 3, nc + 5, kc * 2 + 1),
            (100, 7, 600),
            (3, 70, 40),
            (mc, 1, 9),
            (1, 2 * nr, 1),
        ];
        for &(m, n, k) in &shapes {
            let (a, b) = (filled(m * k, 1), filled(k * n, 2));
            let want = naive(m, n, k, &a, &b);
            let c0 = filled(m * n, 3);
            for (trans_a, trans_b, trans_c) in [(false, false, false), (true, false, false), (false, true, true)] {
                for (alpha, beta) in [(1.0f32, 0.0f32), (0.5, 2.0)] {
                    // Operands stored transposed when asked, and addressed through swapped strides.
                    let at: Vec<f32> =
                        if trans_a { (0..k * m).map(|q| a[(q % m) * k + q / m]).collect() } else { a.clone() };
                    let bt: Vec<f32> =
                        if trans_b { (0..n * k).map(|q| b[(q % k) * n + q / k]).collect() } else { b.clone() };
                    let am = if trans_a {
                        Mat { ptr: at.as_ptr(), rs: 1, cs: m as isize }
                    } else {
                        Mat { ptr: at.as_ptr(), rs: k as isize, cs: 1 }
                    };
                    let bm = if trans_b {
                        Mat { ptr: bt.as_ptr(), rs: 1, cs: k as isize }
                    } else {
                        Mat { ptr: bt.as_ptr(), rs: n as isize, cs: 1 }
                    };
                    let what =
                        format!("{level:?} {m}x{n}x{k} trans {trans_a} {trans_b} {trans_c} alpha {alpha} beta {beta}");
                    check_into((m, n), &c0, trans_c, &want, (alpha, beta), &what, |cm| {
                        at_level(level, || unsafe { sgemm(m, n, k, alpha, am, bm, beta, cm) })
                    });
                }
            }
        }
    }
}

#[test]
fn prepacked_operands_match_the_strided_path() {
    for level in kernel_levels() {
        let (mr, nr, kc, _, nc) = sizes(level);
        for &(m, n, k) in &[(16, 400, 100), (30, 33, 300), (5, nc + 40, kc + 3), (1, 1, 1), (mr + 1, nr - 1, kc)] {
            let (a, b) = (filled(m * k, 4), filled(k * n, 5));
            let am = Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
            let bm = Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 };
            let packed = at_level(level, || unsafe { PackedB::new(k, n, bm) });
            assert_eq!(packed.level, level);
            let (mut c1, mut c2) = (filled(m * n, 6), filled(m * n, 6));
            at_level(level, || unsafe {
                sgemm(m, n, k, 0.5, am, bm, 2.0, MatMut { ptr: c1.as_mut_ptr(), rs: n as isize, cs: 1 });
            });
            // Not forced: the packed operand carries its level.
            unsafe { sgemm_packed(m, 0.5, am, &packed, 2.0, MatMut { ptr: c2.as_mut_ptr(), rs: n as isize, cs: 1 }) };
            assert_eq!(c1, c2, "{level:?} {m}x{n}x{k}");
        }
        // On a thread whose packing buffers were never used.
        std::thread::spawn(move || {
            let (a, b) = (filled(16 * 40, 1), filled(40 * 50, 2));
            let bm = Mat { ptr: b.as_ptr(), rs: 50, cs: 1 };
            let packed = at_level(level, || unsafe { PackedB::new(40, 50, bm) });
            let mut c = vec![0.0f32; 16 * 50];
            let am = Mat { ptr: a.as_ptr(), rs: 40, cs: 1 };
            unsafe { sgemm_packed(16, 1.0, am, &packed, 0.0, MatMut { ptr: c.as_mut_ptr(), rs: 50, cs: 1 }) };
            let want = naive(16, 50, 40, &a, &b);
            assert!(c.iter().zip(&want).all(|(x, y)| (*x as f64 - y).abs() < 1e-3), "{level:?}");
        })
        .join()
        .unwrap();
    }
}

#[test]
fn beta_zero_ignores_nan_in_c_and_k_zero_scales() {
    for level in kernel_levels() {
        let (m, n, k) = (20, 40, 9);
        let (a, b) = (filled(m * k, 1), filled(k * n, 2));
        let mut c = vec![f32::NAN; m * n];
        let cm = MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 };
        let (am, bm) = (Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 }, Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 });
        at_level(level, || unsafe { sgemm(m, n, k, 1.0, am, bm, 0.0, cm) });
        assert!(c.iter().all(|v| v.is_finite()), "{level:?}");
        let mut c = vec![2.0f32; m * n];
        let cm = MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 };
        let am = Mat { ptr: a.as_ptr(), rs: 0, cs: 1 };
        at_level(level, || unsafe { sgemm(m, n, 0, 1.0, am, bm, 0.5, cm) });
        assert!(c.iter().all(|&v| v == 1.0), "{level:?}");
    }
}

/// The threaded product, on 1, 2 and 3 threads, by rows (shared packed B) and by columns, against the naive
/// one, at each level (forced on the pool's thread that dispatches; the others run the kernel it chose).
#[test]
fn parallel_product_matches_the_naive_one_by_rows_and_by_columns() {
    for level in kernel_levels() {
        let (mr, nr, kc, _, nc) = sizes(level);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let shapes =
                [(300, 70, 40), (20, 500, 33), (mr * 4 * 3 + 1, nc + 7, kc + 17), (129, 31, 300), (8 * mr, nr + 1, 3)];
            for &(m, n, k) in &shapes {
                let (a, b) = (filled(m * k, 7), filled(k * n, 8));
                let want = naive(m, n, k, &a, &b);
                let c0 = filled(m * n, 9);
                for trans_c in [false, true] {
                    let am = Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
                    let bm = Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 };
                    let what = format!("{level:?} {threads} threads, {m}x{n}x{k}, trans_c {trans_c}");
                    check_into((m, n), &c0, trans_c, &want, (0.5, 2.0), &what, |cm| {
                        pool.install(|| at_level(level, || unsafe { par_sgemm(m, n, k, 0.5, am, bm, 2.0, cm) }))
                    });
                }
            }
        }
    }
}

/// The packing moves of each level: the transpose moves every value and writes nothing past the rows; the
/// copies write `n` values (and the padded one zeros after them) and nothing else.
#[test]
fn packing_moves_write_exactly_their_values() {
    fn check<K: Isa>() {
        let w = K::LANES;
        let src: Vec<f32> = (0..w * 20).map(|i| i as f32).collect();
        for rows in [1, w / 2 - 1, K::MR, w - 1, w] {
            let stride = w + 1;
            let mut dst = vec![-1.0f32; w * stride];
            unsafe { K::transpose(src.as_ptr(), 20, rows, dst.as_mut_ptr(), stride as isize) };
            for j in 0..w {
                for i in 0..stride {
                    let want = if i < rows { src[i * 20 + j] } else { -1.0 };
                    assert_eq!(dst[j * stride + i], want, "{:?} rows {rows} column {j} lane {i}", K::LEVEL);
                }
            }
        }
        for n in [0, 1, w - 1, w] {
            let mut dst = vec![-1.0f32; w + 2];
            unsafe { K::copy(src.as_ptr(), dst.as_mut_ptr().add(1), n) };
            let want: Vec<f32> = (0..w + 2).map(|i| if (1..=n).contains(&i) { src[i - 1] } else { -1.0 }).collect();
            assert_eq!(dst, want, "{:?} copy {n}", K::LEVEL);
            let mut dst = vec![-1.0f32; w + 2];
            unsafe { K::copy_padded(src.as_ptr(), dst.as_mut_ptr().add(1), n) };
            let want: Vec<f32> = (0..w + 2)
                .map(|i| {
                    if (1..=n).contains(&i) {
                        src[i - 1]
                    } else if (1..=w).contains(&i) {
                        0.0
                    } else {
                        -1.0
                    }
                })
                .collect();
            assert_eq!(dst, want, "{:?} copy_padded {n}", K::LEVEL);
        }
    }
    for level in kernel_levels() {
        with_isa!(level, check())
    }
}

#[test]
fn availability_follows_the_level() {
    for level in levels() {
        assert_eq!(at_level(level, available), level >= Level::Avx2, "{level:?}");
    }
}
