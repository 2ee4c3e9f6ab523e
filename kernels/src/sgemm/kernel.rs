//! The micro-kernel: one panel of `H` rows of A times one `NR`-column panel of B, the `H x NR` tile of C held
//! in registers (`H = 14`: 28 accumulators; each k costs 2 vector loads and 14 broadcasts for 28 FMAs, which
//! keeps both FMA pipes busy: 95% of one core's peak on operands in L1). Heights below the tile's are their
//! own kernels (the last rows of a product are computed, not padded).

use super::{MatMut, NR};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The tallest tile.
pub(super) const H_MAX: usize = 14;

/// `C[..h, ..nr] = alpha * A_panel B_panel + beta * C` for an A panel of `h <= H_MAX` rows (`h` values per k)
/// and a B panel of `NR` columns (C not read when `beta == 0`).
///
/// # Safety
/// The panels must hold `kc` steps; `c` must address `h x nr` elements; the CPU must have AVX-512F.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    h: usize,
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: MatMut,
    nr: usize,
) {
    // The micro-kernel for this height, writing to `(ptr, row stride)`.
    let run = |alpha: f32, beta: f32, ptr: *mut f32, rsc: isize| {
        macro_rules! by_height {
            ($($h:literal)*) => {
                match h {
                    $($h => kernel_avx512::<$h>(kc, alpha, a, b, beta, ptr, rsc),)*
                    _ => unreachable!("tile height {h} above {H_MAX}"),
                }
            };
        }
        by_height!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    };
    if nr == NR && c.cs == 1 {
        run(alpha, beta, c.ptr, c.rs);
        return;
    }
    // Edge columns (or C with a non-unit column stride): compute into a local tile, then copy the valid part.
    let mut tile = [0f32; H_MAX * NR];
    run(1.0, 0.0, tile.as_mut_ptr(), NR as isize);
    for i in 0..h {
        for j in 0..nr {
            let p = c.ptr.offset(i as isize * c.rs + j as isize * c.cs);
            let v = alpha * tile[i * NR + j];
            *p = if beta == 0.0 { v } else { v + beta * *p };
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const H: usize>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; H];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let b0 = _mm512_loadu_ps(b);
        let b1 = _mm512_loadu_ps(b.add(16));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.add(i));
            row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(H);
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
