//! Single-precision GEMM with the engine's own micro-kernels: AVX-512 (`avx512.rs`) or AVX2 + FMA (`avx2.rs`),
//! picked at run time by [`crate::level()`] (the CPU's best, or lower if `SRN_ISA` says so). `available()`
//! says whether either can run; callers fall back to matrixmultiply otherwise (a CPU without AVX2, or
//! `SRN_ISA=scalar`, or another architecture).
//!
//! The structure is the classic one of GotoBLAS/BLIS: `C = alpha A B + beta C` is cut into `KC`-deep slices of
//! `A` and `B`; each slice of `B` is packed into `NR`-column panels (`KC x NR`, row by row, `pack.rs`) and each
//! `MC`-row block of `A` into `MR`-row panels (`MR` values per k). The micro-kernel multiplies one `MR x KC`
//! panel by one `KC x NR` panel with the `MR x NR` tile of `C` held in registers. The last rows of a product
//! are a shorter panel with a kernel of their own height; columns past the last full panel are zero-padded in
//! the packed B and written back through a temporary tile (`kernel.rs`). Arbitrary (also negative) strides.
//! The sizes are each instruction set's ([`kernel::Isa`]); everything else is one driver, generic over it.
//!
//! Threads ([`par_sgemm`]): B is packed once, its panels shared out among rayon's threads, then each thread
//! multiplies its own block of rows (a whole number of tiles, packing only its rows of A) by the shared panels.

// Elsewhere there is no kernel: the generic driver is compiled (and checked) but never called.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod kernel;
mod pack;
mod shared;

use crate::Level;
use kernel::{tile, Isa};
use pack::{pack_a, pack_b, pack_b_panel};
use rayon::prelude::*;
use shared::SharedB;
use std::cell::{Cell, RefCell};

/// `$f::<K>(args)` with `K` the kernel of the level `$level` (which must have one).
macro_rules! with_isa {
    ($level:expr, $f:ident($($arg:expr),*)) => {
        match $level {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => $f::<avx512::Avx512>($($arg),*),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => $f::<avx2::Avx2>($($arg),*),
            #[allow(unreachable_patterns)]
            level => panic!("sgemm: no kernel at level {level:?} (callers check `available()`)"),
        }
    };
}

/// Whether this CPU, at the level the kernels run at, has one of the engine's kernels (AVX2 + FMA or better).
pub fn available() -> bool {
    cfg!(target_arch = "x86_64") && crate::level() >= Level::Avx2
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

impl Mat {
    /// The submatrix from element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must be inside the matrix.
    unsafe fn at(self, i: usize, j: usize) -> Mat {
        Mat { ptr: self.ptr.offset(i as isize * self.rs + j as isize * self.cs), ..self }
    }
}

impl MatMut {
    /// The submatrix from element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must be inside the matrix.
    unsafe fn at(self, i: usize, j: usize) -> MatMut {
        MatMut { ptr: self.ptr.offset(i as isize * self.rs + j as isize * self.cs), ..self }
    }
}

// The raw pointers are only dereferenced inside `sgemm`, whose callers guarantee disjoint output blocks.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}
unsafe impl Send for MatMut {}
unsafe impl Sync for MatMut {}

thread_local! {
    /// Each thread's packing buffers for its own products (A's block, B's slice).
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// The packed B that a threaded product started on this thread shares with the others.
    static SHARED_B: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `C (m x n) = alpha A (m x k) B (k x n) + beta C` on the calling thread. With `beta == 0`, C is not read.
///
/// # Safety
/// The operands must address `m x k`, `k x n` and `m x n` valid elements; `c` must not alias `a` or `b`;
/// `available()` must be true.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    with_isa!(crate::level(), sgemm_k(m, n, k, alpha, a, b, beta, c))
}

/// [`sgemm`] with the kernel of `K`.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_k<K: Isa>(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    if m == 0 || n == 0 {
        return;
    }
    // The kernel writes rows of C as vectors: make C's unit stride the column stride (C^T = B^T A^T).
    if c.cs.unsigned_abs() > c.rs.unsigned_abs() {
        let (at, bt) = (Mat { ptr: b.ptr, rs: b.cs, cs: b.rs }, Mat { ptr: a.ptr, rs: a.cs, cs: a.rs });
        return sgemm_k::<K>(n, m, k, alpha, at, bt, beta, MatMut { ptr: c.ptr, rs: c.cs, cs: c.rs });
    }
    if k == 0 || alpha == 0.0 {
        scale(m, n, beta, c);
        return;
    }
    tiles::<K>(m, n, k, alpha, a, Rhs::Strided(b), beta, c);
}

/// A right-hand operand packed once for many products (an LSTM's recurrent weight, used at every step), in the
/// layout of the kernel of `level`.
pub struct PackedB {
    level: Level,
    k: usize,
    n: usize,
    data: Vec<f32>,
    /// Offset in `data` of the packed `(NC column block, KC row block)`, blocks in loop order.
    offsets: Vec<usize>,
}

impl PackedB {
    /// Pack the `k x n` matrix `b` on the calling thread.
    ///
    /// # Safety
    /// `b` must address `k x n` valid elements; `available()` must be true.
    pub unsafe fn new(k: usize, n: usize, b: Mat) -> Self {
        with_isa!(crate::level(), packed_b_k(k, n, b))
    }

    /// The layout for a `k x n` matrix, in `data` grown (with zeros) to its size: one block per `(NC columns,
    /// KC rows)`, in the order the product visits them.
    fn layout<K: Isa>(mut data: Vec<f32>, k: usize, n: usize) -> Self {
        let mut offsets = Vec::new();
        let mut len = 0;
        for j0 in (0..n).step_by(K::NC) {
            for p0 in (0..k).step_by(K::KC) {
                offsets.push(len);
                len += K::NC.min(n - j0).div_ceil(K::NR) * K::NR * K::KC.min(k - p0);
            }
        }
        data.resize(len, 0.0);
        PackedB { level: K::LEVEL, k, n, data, offsets }
    }

    /// Every panel's place in `data` with what goes there: `(panel, kc, p0, j0, columns)`.
    fn panels<K: Isa>(&mut self) -> Vec<(&mut [f32], usize, usize, usize, usize)> {
        let (k, n, nr) = (self.k, self.n, K::NR);
        let mut out = Vec::new();
        let mut rest = &mut self.data[..];
        for j0 in (0..n).step_by(K::NC) {
            for p0 in (0..k).step_by(K::KC) {
                let kc = K::KC.min(k - p0);
                for jr in (j0..j0 + K::NC.min(n - j0)).step_by(nr) {
                    let (panel, tail) = rest.split_at_mut(nr * kc);
                    out.push((panel, kc, p0, jr, nr.min(n - jr)));
                    rest = tail;
                }
            }
        }
        out
    }

    /// `(k, n)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// [`PackedB::new`] for the kernel of `K`.
unsafe fn packed_b_k<K: Isa>(k: usize, n: usize, b: Mat) -> PackedB {
    let mut packed = PackedB::layout::<K>(Vec::new(), k, n);
    for (panel, kc, p0, j0, cols) in packed.panels::<K>() {
        pack_b_panel::<K>(kc, cols, b, p0, j0, panel);
    }
    packed
}

/// `C (m x n) = alpha A (m x k) B (k x n) + beta C` on rayon's threads (see the module's documentation; a
/// product too short for a block of rows per thread is split by columns instead, each thread packing all of
/// A and its columns of B).
///
/// # Safety
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn par_sgemm(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    with_isa!(crate::level(), par_sgemm_k(m, n, k, alpha, a, b, beta, c))
}

/// [`par_sgemm`] with the kernel of `K` (on every thread).
#[allow(clippy::too_many_arguments)]
unsafe fn par_sgemm_k<K: Isa>(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    if c.cs.unsigned_abs() > c.rs.unsigned_abs() {
        let (at, bt) = (Mat { ptr: b.ptr, rs: b.cs, cs: b.rs }, Mat { ptr: a.ptr, rs: a.cs, cs: a.rs });
        return par_sgemm_k::<K>(n, m, k, alpha, at, bt, beta, MatMut { ptr: c.ptr, rs: c.cs, cs: c.rs });
    }
    let parts = rayon::current_num_threads();
    if m == 0 || n == 0 || k == 0 || alpha == 0.0 || parts == 1 {
        return sgemm_k::<K>(m, n, k, alpha, a, b, beta, c);
    }
    let mr = K::MR;
    if m >= parts * 4 * mr {
        // The calling thread's buffer for the packed B, taken for the call (a nested call allocates its own).
        let shared = SharedB::<K>::new(SHARED_B.take(), k, n, b);
        // Row blocks of whole tiles, as equal as tiles allow: each bound at the tile edge nearest to m t / parts.
        let bounds: Vec<usize> =
            (0..=parts).map(|t| if t == parts { m } else { (m * t / parts + mr / 2) / mr * mr }).collect();
        // SAFETY (of each task): the row blocks of C are disjoint; A and B are only read.
        bounds.par_windows(2).enumerate().for_each(|(part, w)| unsafe {
            let rhs = Rhs::Shared { b: &shared, part, parts };
            tiles::<K>(w[1] - w[0], n, k, alpha, a.at(w[0], 0), rhs, beta, c.at(w[0], 0))
        });
        SHARED_B.set(shared.into_buffer());
    } else {
        let step = n.div_ceil(parts).div_ceil(K::NR) * K::NR;
        // SAFETY (of each task): the column blocks of C are disjoint; A and B are only read.
        (0..n)
            .step_by(step)
            .collect::<Vec<_>>()
            .into_par_iter()
            .for_each(|j| unsafe { sgemm_k::<K>(m, step.min(n - j), k, alpha, a, b.at(0, j), beta, c.at(0, j)) });
    }
}

/// `C (m x n) = alpha A B + beta C` with B packed beforehand.
///
/// # Safety
/// As [`sgemm`], with `b`'s shape `k x n`.
pub unsafe fn sgemm_packed(m: usize, alpha: f32, a: Mat, b: &PackedB, beta: f32, c: MatMut) {
    with_isa!(b.level, sgemm_packed_k(m, alpha, a, b, beta, c))
}

/// [`sgemm_packed`] with the kernel of `K`, which `b` was packed for.
unsafe fn sgemm_packed_k<K: Isa>(m: usize, alpha: f32, a: Mat, b: &PackedB, beta: f32, c: MatMut) {
    let (k, n) = b.dim();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        scale(m, n, beta, c);
        return;
    }
    tiles::<K>(m, n, k, alpha, a, Rhs::Packed(b), beta, c);
}

/// Where the kernel's B panels come from.
#[derive(Clone, Copy)]
enum Rhs<'a, K: Isa> {
    Strided(Mat),
    Packed(&'a PackedB),
    /// Shared by the `parts` threads of one product, this being thread `part`.
    Shared {
        b: &'a SharedB<K>,
        part: usize,
        parts: usize,
    },
}

/// Pick the tile height and run: the one whose rows, rounded up to whole tiles, are fewer (short last tiles
/// are slower per row than full ones: with AVX-512, 16 rows run as 8 + 8 rather than 14 + 2), `MR` unless
/// `MR_SHORT` saves a tenth.
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<K: Isa>(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Rhs<'_, K>, beta: f32, c: MatMut) {
    let padded = |mr: usize| (m.div_ceil(mr) * mr) as f64;
    // The heights as const parameters: the two sets' (14, 8) and (6, 6).
    macro_rules! run {
        ($($r:literal)*) => {{
            let r = if padded(K::MR_SHORT) * 1.1 < padded(K::MR) { K::MR_SHORT } else { K::MR };
            match r {
                $($r => sgemm_tiles::<K, $r>(m, n, k, alpha, a, b, beta, c),)*
                _ => unreachable!("no tile of {r} rows"),
            }
        }};
    }
    run!(14 8 6)
}

/// `sgemm` with `R`-row register tiles.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_tiles<K: Isa, const R: usize>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Rhs<'_, K>,
    beta: f32,
    c: MatMut,
) {
    BUFFERS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (pa, pb) = &mut *bufs;
        let (kc_max, nr) = (K::KC.min(k), K::NR);
        pa.resize(K::MC.min(m).div_ceil(R) * R * kc_max + 16, 0.0);
        if let Rhs::Strided(_) = b {
            pb.resize(K::NC.min(n).div_ceil(nr) * nr * kc_max + 16, 0.0);
        }
        let pa = align64(pa);
        let pb_buf = align64(pb);
        let mut block = 0;
        for j0 in (0..n).step_by(K::NC) {
            let nc = K::NC.min(n - j0);
            for p0 in (0..k).step_by(K::KC) {
                let kc = K::KC.min(k - p0);
                let beta_here = if p0 == 0 { beta } else { 1.0 };
                let pb: *const f32 = match b {
                    Rhs::Strided(b) => {
                        pack_b::<K>(kc, nc, b, p0, j0, pb_buf);
                        pb_buf.as_ptr()
                    }
                    Rhs::Packed(p) => p.data[p.offsets[block]..].as_ptr(),
                    Rhs::Shared { .. } => std::ptr::null(),
                };
                let panels = nc.div_ceil(nr);
                // Threads sharing B start at different panels (see shared.rs).
                let start = if let Rhs::Shared { part, parts, .. } = b { panels * part / parts } else { 0 };
                for i0 in (0..m).step_by(K::MC) {
                    let mc = K::MC.min(m - i0);
                    pack_a::<K, R>(mc, kc, a, i0, p0, pa);
                    for q in (start..panels).chain(0..start) {
                        let jr = q * nr;
                        let bp = match b {
                            Rhs::Shared { b, .. } => b.panel(block, q, p0, j0),
                            _ => pb.add(jr * kc),
                        };
                        for ir in (0..mc).step_by(R) {
                            let mr = R.min(mc - ir);
                            let ap = pa.as_ptr().add(ir * kc);
                            let cp = c.ptr.offset((i0 + ir) as isize * c.rs + (j0 + jr) as isize * c.cs);
                            let cols = nr.min(nc - jr);
                            tile::<K>(mr, kc, alpha, ap, bp, beta_here, MatMut { ptr: cp, rs: c.rs, cs: c.cs }, cols);
                        }
                    }
                }
                block += 1;
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

#[cfg(test)]
mod tests;
