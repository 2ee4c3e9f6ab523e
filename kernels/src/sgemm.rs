//! Single-precision GEMM with an AVX-512 micro-kernel, for x86-64 CPUs that have AVX-512F (checked at run
//! time; `available()` says whether it can be used, and callers fall back to matrixmultiply otherwise).
//!
//! The structure is the classic one of GotoBLAS/BLIS: `C = alpha A B + beta C` is cut into `KC`-deep slices of
//! `A` and `B`; each slice of `B` is packed into `NR`-column panels (`KC x NR`, row by row) and each `MC`-row
//! block of `A` into `MR`-row panels (`MR` values per k). The micro-kernel multiplies one `MR x KC` panel by one
//! `KC x NR` panel with the `MR x NR` tile of `C` held in registers: `MR = 14` rows of two 16-lane vectors, 28
//! accumulators, which keeps both FMA pipes busy (each k costs 2 vector loads and 14 broadcasts for 28 FMAs;
//! matrixmultiply's 16x16 AVX-512 kernel spends 17 loads on 16 FMAs and is load-bound). Edges are padded with
//! zeros in the packed panels and written back through a temporary tile. Arbitrary (also negative) strides.
//!
//! Threads: the product is cut into as many row (or column) blocks as rayon has threads, each computed by
//! one task with its own packing buffers (`par_sgemm`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Rows of the register tile. A product with few rows (an LSTM step: 16) uses an 8-row tile instead, which
/// wastes none of them (14 would pad 16 rows to 28).
pub const MR: usize = 14;
/// The short tile's rows.
const MR_SHORT: usize = 8;
/// Columns of the register tile (two 16-lane vectors).
pub const NR: usize = 32;
/// Depth of one packed slice: an `NR`-column panel of B (`KC * NR * 4` = 32 KiB) stays in L1.
const KC: usize = 256;
/// Rows of A packed at once (`MC * KC * 4` = 224 KiB, in L2; a multiple of both tile heights).
const MC: usize = 224;
/// Columns of B packed at once (`KC * NC * 4` = 2 MiB, in L3).
const NC: usize = NR * 64;

/// Whether this CPU can run the AVX-512 kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A strided matrix operand: element `(i, j)` is at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// A strided output matrix.
#[derive(Clone, Copy)]
pub struct MatMut {
    pub ptr: *mut f32,
    pub rs: isize,
    pub cs: isize,
}

// The raw pointers are only dereferenced inside `sgemm`, whose callers guarantee disjoint output blocks.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}
unsafe impl Send for MatMut {}
unsafe impl Sync for MatMut {}

thread_local! {
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `C (m x n) = alpha A (m x k) B (k x n) + beta C` on the calling thread. With `beta == 0`, C is not read.
///
/// # Safety
/// The operands must address `m x k`, `k x n` and `m x n` valid elements; `c` must not alias `a` or `b`;
/// `available()` must be true.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    if m == 0 || n == 0 {
        return;
    }
    // The kernel writes rows of C as vectors: make C's unit stride the column stride (C^T = B^T A^T).
    if c.cs.unsigned_abs() > c.rs.unsigned_abs() {
        let (at, bt) = (Mat { ptr: b.ptr, rs: b.cs, cs: b.rs }, Mat { ptr: a.ptr, rs: a.cs, cs: a.rs });
        return sgemm(n, m, k, alpha, at, bt, beta, MatMut { ptr: c.ptr, rs: c.cs, cs: c.rs });
    }
    if k == 0 || alpha == 0.0 {
        scale(m, n, beta, c);
        return;
    }
    // Padded rows cost as much as real ones: take the tile height that wastes fewer (14 rows are ~10% faster
    // per row than 8 when neither wastes any).
    tiles(m, n, k, alpha, a, Rhs::Strided(b), beta, c);
}

/// A right-hand operand packed once for many products (an LSTM's recurrent weight, used at every step).
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
    /// Offset in `data` of the packed `(NC column block, KC row block)`, blocks in loop order.
    offsets: Vec<usize>,
}

impl PackedB {
    /// Pack the `k x n` matrix `b`.
    ///
    /// # Safety
    /// `b` must address `k x n` valid elements.
    pub unsafe fn new(k: usize, n: usize, b: Mat) -> Self {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                offsets.push(data.len());
                data.resize(data.len() + nc.div_ceil(NR) * NR * kc, 0.0);
                let start = offsets[offsets.len() - 1];
                pack_b(kc, nc, b, p0, j0, &mut data[start..]);
            }
        }
        PackedB { k, n, data, offsets }
    }

    /// `(k, n)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// `C (m x n) = alpha A B + beta C` with B packed beforehand.
///
/// # Safety
/// As [`sgemm`], with `b`'s shape `k x n`.
pub unsafe fn sgemm_packed(m: usize, alpha: f32, a: Mat, b: &PackedB, beta: f32, c: MatMut) {
    let (k, n) = b.dim();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        scale(m, n, beta, c);
        return;
    }
    tiles(m, n, k, alpha, a, Rhs::Packed(b), beta, c);
}

/// Where the kernel's B panels come from.
#[derive(Clone, Copy)]
enum Rhs<'a> {
    Strided(Mat),
    Packed(&'a PackedB),
}

/// Pick the tile height and run.
#[allow(clippy::too_many_arguments)]
unsafe fn tiles(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Rhs<'_>, beta: f32, c: MatMut) {
    let padded = |mr: usize| (m.div_ceil(mr) * mr) as f64;
    if padded(MR_SHORT) * 1.1 < padded(MR) {
        sgemm_tiles::<MR_SHORT>(m, n, k, alpha, a, b, beta, c);
    } else {
        sgemm_tiles::<MR>(m, n, k, alpha, a, b, beta, c);
    }
}

/// `sgemm` with `R`-row register tiles.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_tiles<const R: usize>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Rhs<'_>,
    beta: f32,
    c: MatMut,
) {
    BUFFERS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (pa, pb) = &mut *bufs;
        let kc_max = KC.min(k);
        pa.resize(MC.min(m).div_ceil(R) * R * kc_max + 16, 0.0);
        if let Rhs::Strided(_) = b {
            pb.resize(NC.min(n).div_ceil(NR) * NR * kc_max + 16, 0.0);
        }
        let pa = align64(pa);
        let pb_buf = align64(pb);
        let mut block = 0;
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let beta_here = if p0 == 0 { beta } else { 1.0 };
                let pb: &[f32] = match b {
                    Rhs::Strided(b) => {
                        pack_b(kc, nc, b, p0, j0, pb_buf);
                        pb_buf
                    }
                    Rhs::Packed(p) => &p.data[p.offsets[block]..],
                };
                block += 1;
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    pack_a::<R>(mc, kc, a, i0, p0, pa);
                    for jr in (0..nc).step_by(NR) {
                        let nr = NR.min(nc - jr);
                        let bp = pb.as_ptr().add(jr * kc);
                        for ir in (0..mc).step_by(R) {
                            let mr = R.min(mc - ir);
                            let ap = pa.as_ptr().add(ir * kc);
                            let cp = c.ptr.offset((i0 + ir) as isize * c.rs + (j0 + jr) as isize * c.cs);
                            let tile = MatMut { ptr: cp, rs: c.rs, cs: c.cs };
                            kernel::<R>(kc, alpha, ap, bp, beta_here, tile, mr, nr);
                        }
                    }
                }
            }
        }
    });
}

/// `c = beta c` (zero when `beta == 0`, whatever c held).
unsafe fn scale(m: usize, n: usize, beta: f32, c: MatMut) {
    for i in 0..m {
        for j in 0..n {
            let p = c.ptr.offset(i as isize * c.rs + j as isize * c.cs);
            *p = if beta == 0.0 { 0.0 } else { *p * beta };
        }
    }
}

/// The part of `v` that starts on a 64-byte boundary (`v` has 16 spare elements).
fn align64(v: &mut [f32]) -> &mut [f32] {
    let off = v.as_ptr().align_offset(64).min(16).min(v.len());
    &mut v[off..]
}

/// Pack rows `i0..i0+mc`, columns `p0..p0+kc` of A into `MR`-row panels: panel `r` holds, for each k, the
/// `MR` values of rows `r*MR..` (zero past `mc`).
unsafe fn pack_a<const MR: usize>(mc: usize, kc: usize, a: Mat, i0: usize, p0: usize, dst: &mut [f32]) {
    for (r, panel) in dst[..mc.div_ceil(MR) * MR * kc].chunks_exact_mut(MR * kc).enumerate() {
        let rows = MR.min(mc - r * MR);
        let base = a.ptr.offset((i0 + r * MR) as isize * a.rs + p0 as isize * a.cs);
        if a.cs == 1 {
            for i in 0..rows {
                let src = std::slice::from_raw_parts(base.offset(i as isize * a.rs), kc);
                for (p, &v) in src.iter().enumerate() {
                    *panel.get_unchecked_mut(p * MR + i) = v;
                }
            }
        } else if a.rs == 1 {
            // A stored transposed (a^T g in a backward pass): each k's MR values are contiguous.
            for p in 0..kc {
                let src = std::slice::from_raw_parts(base.offset(p as isize * a.cs), rows);
                for (d, &v) in panel[p * MR..p * MR + rows].iter_mut().zip(src) {
                    *d = v;
                }
            }
        } else {
            for p in 0..kc {
                for i in 0..rows {
                    *panel.get_unchecked_mut(p * MR + i) = *base.offset(i as isize * a.rs + p as isize * a.cs);
                }
            }
        }
        if rows < MR {
            for p in 0..kc {
                panel[p * MR + rows..(p + 1) * MR].fill(0.0);
            }
        }
    }
}

/// Pack rows `p0..p0+kc`, columns `j0..j0+nc` of B into `NR`-column panels: panel `q` holds, for each k, the
/// `NR` values of columns `q*NR..` (zero past `nc`).
unsafe fn pack_b(kc: usize, nc: usize, b: Mat, p0: usize, j0: usize, dst: &mut [f32]) {
    for (q, panel) in dst[..nc.div_ceil(NR) * NR * kc].chunks_exact_mut(NR * kc).enumerate() {
        let cols = NR.min(nc - q * NR);
        let base = b.ptr.offset(p0 as isize * b.rs + (j0 + q * NR) as isize * b.cs);
        if b.cs == 1 {
            for p in 0..kc {
                let src = std::slice::from_raw_parts(base.offset(p as isize * b.rs), cols);
                panel[p * NR..p * NR + cols].copy_from_slice(src);
                panel[p * NR + cols..(p + 1) * NR].fill(0.0);
            }
        } else {
            if cols < NR {
                panel.fill(0.0);
            }
            for j in 0..cols {
                let col = base.offset(j as isize * b.cs);
                for p in 0..kc {
                    *panel.get_unchecked_mut(p * NR + j) = *col.offset(p as isize * b.rs);
                }
            }
        }
    }
}

/// One `MR x NR` tile: `C[..mr, ..nr] = alpha * A_panel B_panel + beta * C` (C not read when `beta == 0`).
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const MR: usize>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: MatMut,
    mr: usize,
    nr: usize,
) {
    if mr == MR && nr == NR && c.cs == 1 {
        kernel_avx512::<MR>(kc, alpha, a, b, beta, c.ptr, c.rs);
        return;
    }
    // Edge tile (or C with a non-unit column stride): compute into a local tile, then copy the valid part.
    let mut tile = [0f32; MR_MAX * NR];
    kernel_avx512::<MR>(kc, 1.0, a, b, 0.0, tile.as_mut_ptr(), NR as isize);
    for i in 0..mr {
        for j in 0..nr {
            let p = c.ptr.offset(i as isize * c.rs + j as isize * c.cs);
            let v = alpha * tile[i * NR + j];
            *p = if beta == 0.0 { v } else { v + beta * *p };
        }
    }
}

/// The tallest tile.
const MR_MAX: usize = MR;

#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const MR: usize>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let b0 = _mm512_loadu_ps(b);
        let b1 = _mm512_loadu_ps(b.add(16));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.add(i));
            row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(MR);
        b = b.add(NR);
    }
    let va = _mm512_set1_ps(alpha);
    let vb = _mm512_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let cr = c.offset(i as isize * rsc);
        for (h, &v) in row.iter().enumerate() {
            let p = cr.add(16 * h);
            let out = if beta == 0.0 {
                _mm512_mul_ps(v, va)
            } else {
                _mm512_fmadd_ps(v, va, _mm512_mul_ps(_mm512_loadu_ps(p), vb))
            };
            _mm512_storeu_ps(p, out);
        }
    }
}

#[cfg(test)]
mod tests {
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
        let shapes = [
            (1, 1, 1),
            (14, 32, 5),
            (15, 33, 257),
            (13, 31, 3),
            (MC + 3, NC + 5, KC * 2 + 1),
            (100, 7, 600),
            (3, 70, 40),
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
                    let mut c: Vec<f32> =
                        if trans_c { (0..n * m).map(|q| c0[(q % m) * n + q / m]).collect() } else { c0.clone() };
                    let cm = if trans_c {
                        MatMut { ptr: c.as_mut_ptr(), rs: 1, cs: m as isize }
                    } else {
                        MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 }
                    };
                    unsafe { sgemm(m, n, k, alpha, am, bm, beta, cm) };
                    for i in 0..m {
                        for j in 0..n {
                            let got = if trans_c { c[j * m + i] } else { c[i * n + j] } as f64;
                            let expect = alpha as f64 * want[i * n + j] + beta as f64 * c0[i * n + j] as f64;
                            assert!(
                                (got - expect).abs() < 1e-3 * (1.0 + expect.abs()),
                                "{m}x{n}x{k} trans {trans_a} {trans_b} {trans_c} alpha {alpha} beta {beta} at ({i}, {j}): {got} vs {expect}"
                            );
                        }
                    }
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
}
