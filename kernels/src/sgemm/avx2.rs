//! The AVX2 + FMA kernel, for CPUs without AVX-512 (AMD Zen 1-3, Intel before Skylake-X): a 6 x 16 tile in
//! the 16 ymm registers (12 accumulators, 2 vectors of B and a broadcast of A; each k costs 2 loads and 6
//! broadcasts from memory for 12 FMAs, within two load ports' reach while both FMA pipes stay busy), and
//! 8-lane packing moves (masked loads and stores by `vmaskmov`, whose masked-off lanes do not fault).

use super::kernel::Isa;
use crate::Level;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(super) struct Avx2;

impl Isa for Avx2 {
    const LEVEL: Level = Level::Avx2;
    const LANES: usize = 8;
    const MR: usize = 6;
    /// No shorter tile: a product's last rows run on the kernel of their own height, and with 6-row tiles
    /// the rows left over waste less than a shorter tile would.
    const MR_SHORT: usize = 6;
    /// Two 8-lane vectors.
    const NR: usize = 16;
    /// `KC * NR * 4` = 16 KiB: half of Zen 1's L1, with room for the A panel (6 KiB).
    const KC: usize = 256;
    /// `MC * KC * 4` = 144 KiB, in Zen 1's 512 KiB L2.
    const MC: usize = 144;
    /// `KC * NC * 4` = 2 MiB.
    const NC: usize = 16 * 128;

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
        match h {
            1 => kernel_avx2::<1>(kc, alpha, a, b, beta, c, rsc),
            2 => kernel_avx2::<2>(kc, alpha, a, b, beta, c, rsc),
            3 => kernel_avx2::<3>(kc, alpha, a, b, beta, c, rsc),
            4 => kernel_avx2::<4>(kc, alpha, a, b, beta, c, rsc),
            5 => kernel_avx2::<5>(kc, alpha, a, b, beta, c, rsc),
            6 => kernel_avx2::<6>(kc, alpha, a, b, beta, c, rsc),
            _ => unreachable!("tile height {h} above {}", Self::MR),
        }
    }

    unsafe fn copy(src: *const f32, dst: *mut f32, n: usize) {
        copy_8(src, dst, n)
    }

    unsafe fn copy_padded(src: *const f32, dst: *mut f32, n: usize) {
        copy_8_padded(src, dst, n)
    }

    unsafe fn transpose(src: *const f32, src_stride: isize, rows: usize, dst: *mut f32, dst_stride: isize) {
        transpose_8(src, src_stride, rows, dst, dst_stride)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2<const H: usize>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
) {
    // C's rows are written after the k loop: fetch them meanwhile. Rows of a large power-of-two stride (1024
    // floats) share one L1 set, and a tile's 12 lines would otherwise miss one after another at the end.
    for i in 0..H {
        let row = c.offset(i as isize * rsc) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(row);
        _mm_prefetch::<_MM_HINT_T0>(row.add(60));
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; H];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let b0 = _mm256_loadu_ps(b);
        let b1 = _mm256_loadu_ps(b.add(8));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_ss(&*a.add(i));
            row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(H);
        b = b.add(16);
    }
    let va = _mm256_set1_ps(alpha);
    let vb = _mm256_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let cr = c.offset(i as isize * rsc);
        for (h, &v) in row.iter().enumerate() {
            let p = cr.add(8 * h);
            let out = if beta == 0.0 {
                _mm256_mul_ps(v, va)
            } else {
                _mm256_fmadd_ps(v, va, _mm256_mul_ps(_mm256_loadu_ps(p), vb))
            };
            _mm256_storeu_ps(p, out);
        }
    }
}

/// The mask of the first `n <= 8` lanes (all bits set in each), for `vmaskmov`.
#[target_feature(enable = "avx2")]
unsafe fn first_lanes(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// `dst[..n] = src[..n]` for `n <= 8` (nothing else read or written).
#[target_feature(enable = "avx2")]
unsafe fn copy_8(src: *const f32, dst: *mut f32, n: usize) {
    let mask = first_lanes(n);
    _mm256_maskstore_ps(dst, mask, _mm256_maskload_ps(src, mask));
}

/// `dst[..8] = src[..n]` followed by zeros, for `n <= 8` (only `src[..n]` read).
#[target_feature(enable = "avx2")]
unsafe fn copy_8_padded(src: *const f32, dst: *mut f32, n: usize) {
    let v = if n >= 8 { _mm256_loadu_ps(src) } else { _mm256_maskload_ps(src, first_lanes(n)) };
    _mm256_storeu_ps(dst, v);
}

/// Read `rows <= 8` rows of 8 contiguous values (row `i` at `src + i * src_stride`) and write the transpose:
/// for each of the 8 columns `j`, its `rows` values to `dst + j * dst_stride` (only those).
#[target_feature(enable = "avx2")]
unsafe fn transpose_8(src: *const f32, src_stride: isize, rows: usize, dst: *mut f32, dst_stride: isize) {
    let mut r = [_mm256_setzero_ps(); 8];
    for (i, v) in r.iter_mut().enumerate().take(rows) {
        *v = _mm256_loadu_ps(src.offset(i as isize * src_stride));
    }
    // Within each 128-bit lane: pairs of rows interleaved (`t[2p]` holds columns 0, 1 | 4, 5 of rows 2p, 2p+1,
    // `t[2p+1]` columns 2, 3 | 6, 7), then pairs of pairs (`u[4q + c]` holds rows 4q..4q+4 of columns c | 4+c).
    let mut t = [_mm256_setzero_ps(); 8];
    for p in 0..4 {
        t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    let mut u = [_mm256_setzero_ps(); 8];
    for q in 0..2 {
        let (lo01, hi01, lo23, hi23) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        u[4 * q] = _mm256_shuffle_ps::<0x44>(lo01, lo23);
        u[4 * q + 1] = _mm256_shuffle_ps::<0xEE>(lo01, lo23);
        u[4 * q + 2] = _mm256_shuffle_ps::<0x44>(hi01, hi23);
        u[4 * q + 3] = _mm256_shuffle_ps::<0xEE>(hi01, hi23);
    }
    // Across lanes: column c is the low halves of u[c] and u[4 + c], column 4 + c their high halves.
    let mask = first_lanes(rows);
    for c in 0..4 {
        let lo = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
        let hi = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
        _mm256_maskstore_ps(dst.offset(c as isize * dst_stride), mask, lo);
        _mm256_maskstore_ps(dst.offset((4 + c) as isize * dst_stride), mask, hi);
    }
}
