//! The AVX-512 kernel: a 14 x 32 tile (28 accumulators; each k costs 2 vector loads and 14 broadcasts for 28
//! FMAs, which keeps both FMA pipes busy: 95% of one core's peak on operands in L1), and 16-lane packing moves.

use super::kernel::Isa;
use crate::Level;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(super) struct Avx512;

impl Isa for Avx512 {
    const LEVEL: Level = Level::Avx512;
    const LANES: usize = 16;
    const MR: usize = 14;
    /// A product with few rows (an LSTM step: 16) uses an 8-row tile instead, which wastes none of them (14
    /// would pad 16 rows to 28).
    const MR_SHORT: usize = 8;
    /// Two 16-lane vectors.
    const NR: usize = 32;
    /// `KC * NR * 4` = 32 KiB.
    const KC: usize = 256;
    /// `MC * KC * 4` = 224 KiB.
    const MC: usize = 224;
    /// `KC * NC * 4` = 2 MiB.
    const NC: usize = 32 * 64;

    unsafe fn kernel(
        h: usize,
        kc: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
    ) {
        macro_rules! by_height {
            ($($h:literal)*) => {
                match h {
                    $($h => kernel_avx512::<$h>(kc, alpha, a, b, beta, c, rsc),)*
                    _ => unreachable!("tile height {h} above {}", Self::MR),
                }
            };
        }
        by_height!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    }

    unsafe fn copy(src: *const f32, dst: *mut f32, n: usize) {
        copy_16(src, dst, n)
    }

    unsafe fn copy_padded(src: *const f32, dst: *mut f32, n: usize) {
        copy_16_padded(src, dst, n)
    }

    unsafe fn transpose(src: *const f32, src_stride: isize, rows: usize, dst: *mut f32, dst_stride: isize) {
        transpose_16(src, src_stride, rows, dst, dst_stride)
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
        b = b.add(32);
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

/// `dst[..n] = src[..n]` for `n <= 16` (nothing else read or written).
#[target_feature(enable = "avx512f")]
unsafe fn copy_16(src: *const f32, dst: *mut f32, n: usize) {
    let mask: __mmask16 = if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
    _mm512_mask_storeu_ps(dst, mask, _mm512_maskz_loadu_ps(mask, src));
}

/// `dst[..16] = src[..n]` followed by zeros, for `n <= 16` (only `src[..n]` read).
#[target_feature(enable = "avx512f")]
unsafe fn copy_16_padded(src: *const f32, dst: *mut f32, n: usize) {
    let mask: __mmask16 = if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
    _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(mask, src));
}

/// Read `rows <= 16` rows of 16 contiguous values (row `i` at `src + i * src_stride`) and write the transpose:
/// for each of the 16 columns `j`, its `rows` values to `dst + j * dst_stride` (only those: lanes past `rows`
/// are masked off).
#[target_feature(enable = "avx512f")]
unsafe fn transpose_16(src: *const f32, src_stride: isize, rows: usize, dst: *mut f32, dst_stride: isize) {
    let mut r = [_mm512_setzero_ps(); 16];
    for (i, v) in r.iter_mut().enumerate().take(rows) {
        *v = _mm512_loadu_ps(src.offset(i as isize * src_stride));
    }
    // Within each 128-bit lane: pairs of rows interleaved, then pairs of pairs, leaving `u[4g + c]` with rows
    // 4g..4g+4 at column 4L + c in lane L.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * g + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * g + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        u[4 * g + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    // Across lanes: column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
    let mask: __mmask16 = if rows >= 16 { 0xffff } else { (1u16 << rows) - 1 };
    for c in 0..4 {
        let x0 = _mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]);
        let x1 = _mm512_shuffle_f32x4::<0xEE>(u[c], u[4 + c]);
        let x2 = _mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]);
        let x3 = _mm512_shuffle_f32x4::<0xEE>(u[8 + c], u[12 + c]);
        let cols = [
            _mm512_shuffle_f32x4::<0x88>(x0, x2),
            _mm512_shuffle_f32x4::<0xDD>(x0, x2),
            _mm512_shuffle_f32x4::<0x88>(x1, x3),
            _mm512_shuffle_f32x4::<0xDD>(x1, x3),
        ];
        for (l, &v) in cols.iter().enumerate() {
            _mm512_mask_storeu_ps(dst.offset((4 * l + c) as isize * dst_stride), mask, v);
        }
    }
}
