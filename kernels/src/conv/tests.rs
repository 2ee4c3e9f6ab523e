//! Convolutions against direct loops, adjoint identities, and the unfolding against straightforward loops.
use super::*;
use ndarray::Array;

fn filled(shape: [usize; 4], seed: usize) -> Array4<f64> {
    Array::from_shape_fn(shape, |(a, b, c, d)| {
        ((a * 131 + b * 71 + c * 37 + d * 11 + seed * 7) % 29) as f64 / 14.0 - 1.0
    })
}

/// Direct convolution, for reference.
fn naive(x: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom) -> Array4<f64> {
    let [b, c, h, wd] = dims4(&x.view());
    let [co, _, kh, kw] = dims4(&w.view());
    let (oh, ow) = (g.conv_out(0, h, kh).unwrap(), g.conv_out(1, wd, kw).unwrap());
    Array4::from_shape_fn((b, co, oh, ow), |(bi, o, oi, oj)| {
        let mut acc = 0.0;
        for ci in 0..c {
            for ki in 0..kh {
                for kj in 0..kw {
                    let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                    let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                    if ii >= 0 && jj >= 0 && (ii as usize) < h && (jj as usize) < wd {
                        acc += x[[bi, ci, ii as usize, jj as usize]] * w[[o, ci, ki, kj]];
                    }
                }
            }
        }
        acc
    })
}

fn dot(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn chunked_batches_match_the_direct_convolution_and_its_adjoints() {
    let g = ConvGeom::new(2, 1, 1);
    let x = filled([5, 3, 7, 6], 1);
    let w = filled([4, 3, 3, 3], 2);
    let y = conv2d(x.view(), w.view(), &g);
    assert!(u_chunk_is_split(&x, &w, &g), "the test budget must force several chunks");
    let want = naive(&x, &w, &g);
    assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));
    let r = filled([5, 4, y.dim().2, y.dim().3], 3);
    let xt = conv_transpose2d(r.view(), w.view(), &g, [0, 1]);
    assert_eq!(xt.dim(), x.dim());
    assert!((dot(&y, &r) - dot(&x, &xt)).abs() < 1e-9);
    let dw = conv2d_weight_grad(x.view(), r.view(), [3, 3], &g);
    assert!((dot(&y, &r) - dot(&w, &dw)).abs() < 1e-9);
    let (y3, kept) = conv2d_keep(x.view(), w.view(), &g, true);
    assert_eq!(y3, y);
    let dw3 = conv2d_weight_grad_unfolded(&kept.unwrap(), r.view());
    assert!(dw3.iter().zip(&dw).all(|(a, b)| (a - b).abs() < 1e-12));
    let (y2, dw2) = conv2d_and_weight_grad(x.view(), w.view(), r.view(), &g);
    assert!(y2.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-12));
    assert!(dw2.iter().zip(&dw).all(|(a, b)| (a - b).abs() < 1e-12));
}

fn u_chunk_is_split(x: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom) -> bool {
    let [b, c, h, wd] = dims4(&x.view());
    let [_, _, kh, kw] = dims4(&w.view());
    let out = [g.conv_out(0, h, kh).unwrap(), g.conv_out(1, wd, kw).unwrap()];
    Unfold { c, h, w: wd, k: [kh, kw], out, g: *g }.chunk(b) < b
}

impl Unfold {
    /// Input row (or column) read by output index `o` at kernel offset `kk` along axis `a`, if inside.
    fn source(&self, a: usize, o: usize, kk: usize) -> Option<usize> {
        let extent = if a == 0 { self.h } else { self.w };
        let i = (o * self.g.stride[a] + kk * self.g.dilation[a]).checked_sub(self.g.padding[a])?;
        (i < extent).then_some(i)
    }
}

/// Every (column entry, image entry) pair the unfolding connects, as flat indices into `[rows, n * P]` columns
/// and `n` images: the definition both references below follow.
fn each_pair(u: &Unfold, n: usize, mut f: impl FnMut(usize, usize)) {
    let (p, kk) = (u.positions(), u.k[0] * u.k[1]);
    for row in 0..u.rows() {
        let (ci, ki, kj) = (row / kk, row % kk / u.k[1], row % u.k[1]);
        for i in 0..n {
            for oi in 0..u.out[0] {
                for oj in 0..u.out[1] {
                    if let (Some(ii), Some(jj)) = (u.source(0, oi, ki), u.source(1, oj, kj)) {
                        f(row * n * p + i * p + oi * u.out[1] + oj, i * u.image_len() + ci * u.h * u.w + ii * u.w + jj);
                    }
                }
            }
        }
    }
}

/// The straightforward unfolding: every column entry from `source`, zero where it is `None`.
fn reference_im2col(u: &Unfold, xs: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; u.rows() * n * u.positions()];
    each_pair(u, n, |col, img| out[col] = xs[img]);
    out
}

/// The straightforward folding: every column entry added at its `source`, dropped where it is `None`.
fn reference_col2im(u: &Unfold, cols: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * u.image_len()];
    each_pair(u, n, |col, img| out[img] += cols[col]);
    out
}

#[test]
fn unfolding_and_folding_match_the_straightforward_loops_on_every_geometry() {
    let geoms = [
        ([3, 3], ConvGeom::new(1, 1, 1)),
        ([4, 4], ConvGeom::new(2, 1, 1)),
        ([3, 3], ConvGeom::new(2, 0, 2)),
        ([4, 4], ConvGeom::new(4, 0, 1)),
        ([4, 4], ConvGeom::new(4, 1, 1)),
        ([3, 2], ConvGeom::per_axis([1, 3], [2, 0], [2, 1])),
        ([5, 5], ConvGeom::new(1, 4, 1)), // padding beyond the kernel offsets: whole rows of padding
        ([1, 1], ConvGeom::new(3, 0, 1)),
        ([2, 3], ConvGeom::per_axis([2, 1], [1, 2], [3, 2])),
        ([2, 2], ConvGeom::per_axis([1, 5], [0, 2], [1, 1])), // a column stride beyond the image's width
    ];
    let mut cases = 0;
    // Even and odd widths (rows split by column phase end in a padded run when odd), and a 3-wide image.
    for (c, h, w, n) in [(2, 7, 6, 3), (2, 6, 7, 3), (3, 5, 3, 2)] {
        for (case, (k, g)) in geoms.into_iter().enumerate() {
            let out = match (g.conv_out(0, h, k[0]), g.conv_out(1, w, k[1])) {
                (Some(a), Some(b)) => [a, b],
                _ => continue,
            };
            for out in [out, [out[0].saturating_sub(1).max(1), out[1]]] {
                cases += 1;
                let at = format!("case {case} image {h}x{w} out {out:?}");
                let u = Unfold { c, h, w, k, out, g };
                let xs: Vec<f64> = (0..n * c * h * w).map(|i| ((i * 37) % 23) as f64 - 11.0).collect();
                let cols = u.im2col(&xs, n);
                let want = reference_im2col(&u, &xs, n);
                assert_eq!(cols.as_slice().unwrap(), &want[..], "im2col {at}");
                let r: Vec<f64> = (0..want.len()).map(|i| ((i * 13) % 17) as f64 - 8.0).collect();
                let rv = ArrayView2::from_shape(cols.dim(), &r).unwrap();
                let folded = new_with(xs.len(), |slots| u.col2im(rv, n, slots));
                assert_eq!(folded, reference_col2im(&u, &r, n), "col2im {at}");
                // One image at a time, on the calling thread (the per-image path), gives the same columns.
                let (p, len) = (u.positions(), u.image_len());
                let (mut one, mut split, mut acc) = (Vec::new(), Vec::new(), Vec::new());
                for i in 0..n {
                    u.im2col_image(&xs[i * len..][..len], &mut one, &mut split);
                    let want_i = cols.slice(ndarray::s![.., i * p..(i + 1) * p]);
                    assert!(want_i.iter().eq(one.iter()), "im2col_image {at} image {i}");
                    let ri = rv.slice(ndarray::s![.., i * p..(i + 1) * p]).as_standard_layout().into_owned();
                    let fi = new_with(len, |slots| u.col2im_image(ri.as_slice().unwrap(), slots, &mut acc));
                    assert_eq!(fi, folded[i * len..][..len], "col2im_image {at} image {i}");
                }
            }
        }
    }
    assert!(cases > 40, "only {cases} cases ran");
}

/// Direct transposed convolution (the adjoint of `naive`), for reference: `y` `[B, C_y, H', W']`, `w`
/// `[C_y, C_x, KH, KW]`, output `[B, C_x, size]`.
fn naive_transpose(y: &Array4<f64>, w: &Array4<f64>, g: &ConvGeom, size: [usize; 2]) -> Array4<f64> {
    let b = y.dim().0;
    let [_, cx, kh, kw] = dims4(&w.view());
    let mut x = Array4::zeros((b, cx, size[0], size[1]));
    for ((bi, o, oi, oj), &v) in y.indexed_iter() {
        for ci in 0..cx {
            for ki in 0..kh {
                for kj in 0..kw {
                    let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                    let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                    if ii >= 0 && jj >= 0 && (ii as usize) < size[0] && (jj as usize) < size[1] {
                        x[[bi, ci, ii as usize, jj as usize]] += v * w[[o, ci, ki, kj]];
                    }
                }
            }
        }
    }
    x
}

/// Direct weight gradient, for reference: `gy` may cover a leading part of the output grid.
fn naive_weight_grad(x: &Array4<f64>, gy: &Array4<f64>, kernel: [usize; 2], g: &ConvGeom) -> Array4<f64> {
    let [_, c, h, wd] = dims4(&x.view());
    let co = gy.dim().1;
    let mut dw = Array4::zeros((co, c, kernel[0], kernel[1]));
    for ((bi, o, oi, oj), &v) in gy.indexed_iter() {
        for ci in 0..c {
            for ki in 0..kernel[0] {
                for kj in 0..kernel[1] {
                    let ii = (oi * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                    let jj = (oj * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                    if ii >= 0 && jj >= 0 && (ii as usize) < h && (jj as usize) < wd {
                        dw[[o, ci, ki, kj]] += v * x[[bi, ci, ii as usize, jj as usize]];
                    }
                }
            }
        }
    }
    dw
}

fn assert_close(got: &Array4<f64>, want: &Array4<f64>, what: &str) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-10, "{what}: off by {worst}");
}

/// The cases of `both_paths_match_the_direct_loops`: image size, kernel, geometry.
const PATH_CASES: [([usize; 2], [usize; 2], ConvGeom); 6] = [
    ([7, 6], [3, 3], ConvGeom { stride: [1, 1], padding: [1, 1], dilation: [1, 1] }), // 42 positions
    ([7, 9], [4, 4], ConvGeom { stride: [2, 2], padding: [1, 1], dilation: [1, 1] }), // 12, odd width
    ([5, 5], [3, 3], ConvGeom { stride: [2, 2], padding: [1, 1], dilation: [1, 1] }), // 9
    ([8, 7], [2, 3], ConvGeom { stride: [1, 3], padding: [0, 1], dilation: [1, 2] }), // 14, column stride 3
    ([6, 6], [4, 4], ConvGeom { stride: [4, 4], padding: [1, 1], dilation: [1, 1] }), // 4
    ([9, 10], [3, 3], ConvGeom { stride: [2, 2], padding: [0, 0], dilation: [2, 2] }), // 9, dilated
];

/// Every public convolution function on both paths (per image, from `PER_IMAGE_MIN_POSITIONS` output
/// positions per image, and chunks of images below), on one and two threads, against the direct loops.
#[test]
fn both_paths_match_the_direct_loops() {
    let cases = PATH_CASES;
    let (mut per_image_cases, mut chunk_cases) = (0, 0);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            for (case, &(size, k, g)) in cases.iter().enumerate() {
                let (b, c, co) = (5, 3, 4);
                let x = filled([b, c, size[0], size[1]], case);
                let w = filled([co, c, k[0], k[1]], case + 10);
                let y = naive(&x, &w, &g);
                let p = y.dim().2 * y.dim().3;
                if per_image(b, p) {
                    per_image_cases += 1;
                } else {
                    chunk_cases += 1;
                }
                let at = |what: &str| format!("{what}: case {case} ({p} positions) on {threads} threads");
                assert_close(&conv2d(x.view(), w.view(), &g), &y, &at("conv2d"));
                let (y_kept, kept) = conv2d_keep(x.view(), w.view(), &g, true);
                assert_close(&y_kept, &y, &at("conv2d_keep"));
                let gy = filled([b, co, y.dim().2, y.dim().3], case + 20);
                let dw = naive_weight_grad(&x, &gy, k, &g);
                assert_close(&conv2d_weight_grad(x.view(), gy.view(), k, &g), &dw, &at("conv2d_weight_grad"));
                let dw_kept = conv2d_weight_grad_unfolded(&kept.unwrap(), gy.view());
                assert_close(&dw_kept, &dw, &at("conv2d_weight_grad_unfolded"));
                let (y2, dw2) = conv2d_and_weight_grad(x.view(), w.view(), gy.view(), &g);
                assert_close(&y2, &y, &at("conv2d_and_weight_grad (output)"));
                assert_close(&dw2, &dw, &at("conv2d_and_weight_grad (weight gradient)"));
                // The input gradient, with the output padding that gives back x's size.
                let grid = [y.dim().2, y.dim().3];
                let size_of = |a: usize| g.transpose_out(a, grid[a], k[a], 0).unwrap();
                let pad = [size[0] - size_of(0), size[1] - size_of(1)];
                let dx = conv_transpose2d(gy.view(), w.view(), &g, pad);
                assert_close(&dx, &naive_transpose(&gy, &w, &g, size), &at("conv_transpose2d"));
                // A gradient on a leading part of the grid (the rest counts as zero).
                let (oh, ow) = (y.dim().2.saturating_sub(1).max(1), y.dim().3);
                let part = gy.slice(ndarray::s![.., .., ..oh, ..ow]).to_owned();
                let dw_part = conv2d_weight_grad(x.view(), part.view(), k, &g);
                assert_close(&dw_part, &naive_weight_grad(&x, &part, k, &g), &at("conv2d_weight_grad (part)"));
            }
        });
    }
    assert!(per_image_cases >= 6 && chunk_cases >= 6, "{per_image_cases} per-image and {chunk_cases} chunked cases");
}

/// The f32 products (the AVX-512 kernel where the CPU has it, writing into unzeroed buffers) agree with f64 on
/// both paths.
#[test]
fn f32_matches_f64_on_both_paths() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| {
        for (case, &(size, k, g)) in PATH_CASES.iter().enumerate() {
            let x = filled([5, 3, size[0], size[1]], case);
            let w = filled([4, 3, k[0], k[1]], case + 10);
            let (y, kept) = conv2d_keep(x.view(), w.view(), &g, true);
            let gy = filled([5, 4, y.dim().2, y.dim().3], case + 20);
            let (x32, w32, gy32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32), gy.mapv(|v| v as f32));
            let close = |a: &Array4<f32>, b: &Array4<f64>, what: &str| {
                let worst = a.iter().zip(b).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-4, "{what}: case {case}: f32 off by {worst}");
            };
            let (y32, kept32) = conv2d_keep(x32.view(), w32.view(), &g, true);
            close(&y32, &y, "conv2d_keep");
            let dw = conv2d_weight_grad_unfolded(&kept.unwrap(), gy.view());
            close(&conv2d_weight_grad_unfolded(&kept32.unwrap(), gy32.view()), &dw, "conv2d_weight_grad_unfolded");
            close(&conv2d_weight_grad(x32.view(), gy32.view(), k, &g), &dw, "conv2d_weight_grad");
            let (y2, dw2) = conv2d_and_weight_grad(x32.view(), w32.view(), gy32.view(), &g);
            close(&y2, &y, "conv2d_and_weight_grad (output)");
            close(&dw2, &dw, "conv2d_and_weight_grad (weight gradient)");
            let dx = conv_transpose2d(gy.view(), w.view(), &g, [0, 0]);
            close(&conv_transpose2d(gy32.view(), w32.view(), &g, [0, 0]), &dx, "conv_transpose2d");
        }
    });
}

/// Weight gradients are sums over images; on the per-image path they are summed in fixed runs added in image
/// order, so they are the same bit for bit on any number of threads and from run to run (a training run must
/// not depend on scheduling: an interrupted and resumed run repeats a straight one exactly).
#[test]
fn weight_gradients_do_not_depend_on_threads() {
    let (k, g) = ([4, 4], ConvGeom::strided(2, 1));
    let b = 37;
    // A per-image case and a chunked one.
    for (case, size) in [[20, 22], [6, 6]].into_iter().enumerate() {
        let x = filled([b, 3, size[0], size[1]], 1).mapv(|v| v as f32 * 1.37);
        let w = filled([5, 3, k[0], k[1]], 2).mapv(|v| v as f32);
        let y = conv2d(x.view(), w.view(), &g);
        assert_eq!(per_image(b, y.dim().2 * y.dim().3), case == 0, "case {case} takes its path");
        let gy = filled([b, 5, y.dim().2, y.dim().3], 3).mapv(|v| v as f32 * 0.71);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (_, kept) = conv2d_keep(x.view(), w.view(), &g, true);
                let (_, dw3) = conv2d_and_weight_grad(x.view(), w.view(), gy.view(), &g);
                let dw1 = conv2d_weight_grad(x.view(), gy.view(), k, &g);
                (dw1, conv2d_weight_grad_unfolded(&kept.unwrap(), gy.view()), dw3)
            })
        };
        let first = run(1);
        for threads in [1, 2, 3, 4, 2] {
            let r = run(threads);
            assert_eq!(r.0, first.0, "case {case}: conv2d_weight_grad on {threads} threads");
            assert_eq!(r.1, first.1, "case {case}: conv2d_weight_grad_unfolded on {threads} threads");
            assert_eq!(r.2, first.2, "case {case}: conv2d_and_weight_grad on {threads} threads");
        }
    }
}
