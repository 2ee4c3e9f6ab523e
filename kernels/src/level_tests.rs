//! The multiversioned kernels at every level this CPU has: each level's result against the portable build's
//! (the `multiversion!` body compiled without target features). Each computation runs on a one-thread rayon
//! pool with the level forced on that thread, so that the parallel loops inside it run at that level too.
//! Where no f32 product is involved the results must be bit-identical (the same operations in the same order:
//! Rust does not contract or reassociate floating point whatever the target features); with f32 products, the
//! sgemm kernels of the levels sum in different orders, hence a tolerance.

use crate::conv::{conv2d, conv2d_weight_grad, conv_transpose2d, ConvGeom};
use crate::elementwise::{add_assign_serial, map_serial, sum_serial, zip_serial};
use crate::{at_level, detected_level, fspool, levels, lstm, Float, Level};
use ndarray::{Array2, Array4};
use std::mem::MaybeUninit;

/// `f()` at each level, lowest (scalar) first.
fn on_each_level<R: Send>(f: impl Fn() -> R + Sync) -> Vec<(Level, R)> {
    levels()
        .into_iter()
        .map(|level| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
            (level, pool.install(|| at_level(level, &f)))
        })
        .collect()
}

fn values<T: Float>(len: usize, seed: usize) -> Vec<T> {
    (0..len).map(|i| T::of(((i * 37 + seed * 11) % 61) as f64 / 7.0 - 4.3)).collect()
}

fn written<T: Float>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    crate::elementwise::new_with(len, fill)
}

#[test]
fn every_level_this_cpu_has_is_tested() {
    let all = levels();
    assert_eq!(all[0], Level::Scalar);
    assert_eq!(*all.last().unwrap(), detected_level());
    for (level, seen) in on_each_level(crate::level) {
        assert_eq!(level, seen);
    }
}

#[test]
fn srn_isa_names_parse_loosely_and_nothing_else_does() {
    assert_eq!(Level::parse("avx2"), Some(Level::Avx2));
    assert_eq!(Level::parse(" AVX512\n"), Some(Level::Avx512));
    assert_eq!(Level::parse("Scalar"), Some(Level::Scalar));
    for bad in ["", "avx", "sse2", "avx-512"] {
        assert_eq!(Level::parse(bad), None, "{bad:?}");
    }
    assert!(Level::Scalar < Level::Avx2 && Level::Avx2 < Level::Avx512, "forcing compares levels by this order");
}

/// The element-wise loops, on lengths around the vector widths, bit for bit.
fn elementwise_at_each_level<T: Float>() {
    for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000] {
        let (x, y) = (values::<T>(len, 1), values::<T>(len, 2));
        let results = on_each_level(|| {
            let f = |v: T| v.exp_v() + v.tanh_v() * v.sigmoid_v();
            let mapped = written(len, |out| map_serial(&x, out, &f));
            let zipped = written(len, |out| zip_serial(&x, &y, out, &|a: T, b: T| a * b + a.exp_v()));
            let mut acc = x.clone();
            add_assign_serial(&mut acc, &y);
            (mapped, zipped, acc, sum_serial(&x))
        });
        let (_, want) = &results[0];
        for (level, got) in &results[1..] {
            assert!(got == want, "{} {level:?} length {len}", T::NAME);
        }
    }
}

#[test]
fn elementwise_loops_agree_bit_for_bit() {
    elementwise_at_each_level::<f32>();
    elementwise_at_each_level::<f64>();
}

/// Convolution, its transpose and its weight gradient (the unfolding, folding and plane splitting loops), in
/// f64 (products on matrixmultiply at every level: bit for bit) and f32 (on each level's sgemm).
#[test]
fn convolution_loops_agree_across_levels() {
    let geoms = [ConvGeom::new(1, 1, 1), ConvGeom::strided(2, 1), ConvGeom::per_axis([1, 3], [0, 2], [2, 1])];
    for g in &geoms {
        let x = Array4::from_shape_vec((2, 3, 9, 11), values::<f64>(2 * 3 * 9 * 11, 3)).unwrap();
        let w = Array4::from_shape_vec((4, 3, 3, 3), values::<f64>(4 * 3 * 3 * 3, 4)).unwrap();
        let run64 = || {
            let y = conv2d(x.view(), w.view(), g);
            let back = conv_transpose2d(y.view(), w.view(), g, [0, 0]);
            let dw = conv2d_weight_grad(x.view(), y.view(), [3, 3], g);
            (y, back, dw)
        };
        let results = on_each_level(run64);
        for (level, got) in &results[1..] {
            assert!(got == &results[0].1, "f64 {g:?} at {level:?}");
        }
        let (x32, w32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32));
        let results = on_each_level(|| {
            let y = conv2d(x32.view(), w32.view(), g);
            let back = conv_transpose2d(y.view(), w32.view(), g, [0, 0]);
            (y, back)
        });
        let close = |a: &Array4<f32>, b: &Array4<f32>| {
            a.dim() == b.dim() && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs()))
        };
        for (level, (y, back)) in &results[1..] {
            let (y0, back0) = &results[0].1;
            assert!(close(y, y0) && close(back, back0), "f32 {g:?} at {level:?}");
        }
    }
}

/// FSPool's ranking (AVX-512's compare-and-popcount rows, the multiversioned counting loop elsewhere) gives the
/// stable descending order at every level.
#[test]
fn fspool_ranks_agree_across_levels() {
    for (n, modulus) in [(16, 5), (16, 1000), (9, 3), (40, 7)] {
        let x: Vec<f32> = (0..300 * n).map(|i| ((i * 37 + 11) % modulus) as f32 - (modulus / 2) as f32).collect();
        let size_of = |r: usize| r % (n + 1);
        let results = on_each_level(|| fspool::sort_desc(&x, n, size_of));
        for r in 0..300 {
            let (row, m) = (&x[r * n..][..n], size_of(r));
            let mut want: Vec<usize> = (0..m).collect();
            want.sort_by(|&p, &q| row[q].partial_cmp(&row[p]).unwrap());
            want.extend(m..n);
            for (level, perm) in &results {
                assert_eq!(&perm[r * n..][..n], &want[..], "{level:?} n {n} row {r}");
            }
        }
    }
}

/// The LSTM's fused cell loops, forward and backward, in f32 (each level's sgemm for the step products).
#[test]
fn lstm_cells_agree_across_levels() {
    let d = lstm::Seq { batch: 3, steps: 5, hidden: 24, lengths: vec![5, 2, 4], reverse: false };
    let (b, t, h) = (d.batch, d.steps, d.hidden);
    let scaled = |len, seed| values::<f32>(len, seed).iter().map(|v| v * 0.3).collect::<Vec<_>>();
    let proj = scaled(b * t * 4 * h, 1);
    let w = Array2::from_shape_vec((4 * h, h), scaled(4 * h * h, 2)).unwrap();
    let (h0, c0, gs) = (scaled(b * h, 3), scaled(b * h, 4), scaled(b * t * 2 * h, 5));
    let results = on_each_level(|| {
        let (s, acts) = lstm::forward(&d, &proj, w.view(), &h0, &c0, true);
        let (dp, dw, dh0, dc0) = lstm::backward(&d, &gs, &s, &acts, w.view(), &h0, &c0, true);
        [s, acts, dp, dw, dh0, dc0]
    });
    for (level, got) in &results[1..] {
        for (i, (a, b)) in got.iter().zip(&results[0].1).enumerate() {
            assert!(
                a.len() == b.len() && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs())),
                "output {i} at {level:?}"
            );
        }
    }
}
