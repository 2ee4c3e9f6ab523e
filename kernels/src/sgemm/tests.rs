//! The AVX-512 GEMM against a naive product.

use super::*;

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

/// Every edge case: tiles cut in rows and columns, k across several slices, m and n across blocks, transposed
/// operands and output, alpha and beta.
#[test]
fn matches_the_naive_product_on_edges_strides_alpha_and_beta() {
    if !available() {
        return;
    }
    let shapes =
        [(1, 1, 1), (14, 32, 5), (15, 33, 257), (13, 31, 3), (MC + 3, NC + 5, KC * 2 + 1), (100, 7, 600), (3, 70, 40)];
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
                let what = format!("{m}x{n}x{k} trans {trans_a} {trans_b} {trans_c} alpha {alpha} beta {beta}");
                check_into((m, n), &c0, trans_c, &want, (alpha, beta), &what, |cm| unsafe {
                    sgemm(m, n, k, alpha, am, bm, beta, cm)
                });
            }
        }
    }
}

#[test]
fn prepacked_operands_match_the_strided_path() {
    if !available() {
        return;
    }
    for &(m, n, k) in &[(16, 400, 100), (30, 33, 300), (5, NC + 40, KC + 3), (1, 1, 1)] {
        let (a, b) = (filled(m * k, 4), filled(k * n, 5));
        let am = Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
        let bm = Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 };
        let packed = unsafe { PackedB::new(k, n, bm) };
        let (mut c1, mut c2) = (filled(m * n, 6), filled(m * n, 6));
        unsafe {
            sgemm(m, n, k, 0.5, am, bm, 2.0, MatMut { ptr: c1.as_mut_ptr(), rs: n as isize, cs: 1 });
            sgemm_packed(m, 0.5, am, &packed, 2.0, MatMut { ptr: c2.as_mut_ptr(), rs: n as isize, cs: 1 });
        }
        assert_eq!(c1, c2, "{m}x{n}x{k}");
    }
    // On a thread whose packing buffers were never used.
    std::thread::spawn(|| {
        let (a, b) = (filled(16 * 40, 1), filled(40 * 50, 2));
        let packed = unsafe { PackedB::new(40, 50, Mat { ptr: b.as_ptr(), rs: 50, cs: 1 }) };
        let mut c = vec![0.0f32; 16 * 50];
        let am = Mat { ptr: a.as_ptr(), rs: 40, cs: 1 };
        unsafe { sgemm_packed(16, 1.0, am, &packed, 0.0, MatMut { ptr: c.as_mut_ptr(), rs: 50, cs: 1 }) };
        let want = naive(16, 50, 40, &a, &b);
        assert!(c.iter().zip(&want).all(|(x, y)| (*x as f64 - y).abs() < 1e-3));
    })
    .join()
    .unwrap();
}

#[test]
fn beta_zero_ignores_nan_in_c_and_k_zero_scales() {
    if !available() {
        return;
    }
    let (m, n, k) = (20, 40, 9);
    let (a, b) = (filled(m * k, 1), filled(k * n, 2));
    let mut c = vec![f32::NAN; m * n];
    let cm = MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 };
    unsafe {
        sgemm(
            m,
            n,
            k,
            1.0,
            Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 },
            Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 },
            0.0,
            cm,
        )
    };
    assert!(c.iter().all(|v| v.is_finite()));
    let mut c = vec![2.0f32; m * n];
    let cm = MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 };
    unsafe {
        sgemm(
            m,
            n,
            0,
            1.0,
            Mat { ptr: a.as_ptr(), rs: 0, cs: 1 },
            Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 },
            0.5,
            cm,
        )
    };
    assert!(c.iter().all(|&v| v == 1.0));
}

/// The threaded product, on 2 and 3 threads, by rows (shared packed B) and by columns, against the naive one.
#[test]
fn parallel_product_matches_the_naive_one_by_rows_and_by_columns() {
    if !available() {
        return;
    }
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for &(m, n, k) in &[(300, 70, 40), (20, 500, 33), (MR * 4 * 3 + 1, NC + 7, KC + 17), (129, 31, 300)] {
            let (a, b) = (filled(m * k, 7), filled(k * n, 8));
            let want = naive(m, n, k, &a, &b);
            let c0 = filled(m * n, 9);
            for trans_c in [false, true] {
                let am = Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
                let bm = Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 };
                let what = format!("{threads} threads, {m}x{n}x{k}, trans_c {trans_c}");
                check_into((m, n), &c0, trans_c, &want, (0.5, 2.0), &what, |cm| {
                    pool.install(|| unsafe { par_sgemm(m, n, k, 0.5, am, bm, 2.0, cm) })
                });
            }
        }
    }
}
