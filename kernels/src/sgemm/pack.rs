//! Packing: copying a block of an operand into the layout the micro-kernel reads, one contiguous stream per
//! tile. Where the source runs along the wrong axis (A row-major, or B stored transposed, as in `x W^T`), blocks
//! of 16 x 16 are transposed in registers instead of written one scalar at a time (3x faster on a 256 x 256 A).

use super::{Mat, NR};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Pack rows `i0..i0+mc`, columns `p0..p0+kc` of A into panels of `R` rows: panel `r` holds, for each k, the
/// values of its rows, `R` per k; the last panel, when `mc` is not a multiple of `R`, holds only its `mc % R`
/// rows per k (the kernel for that height reads it), so no row is padded.
///
/// # Safety
/// `a` must address the block; `dst` must hold `mc * kc` values; the CPU must have AVX-512F.
pub(super) unsafe fn pack_a<const R: usize>(mc: usize, kc: usize, a: Mat, i0: usize, p0: usize, dst: &mut [f32]) {
    for r in 0..mc.div_ceil(R) {
        let rows = R.min(mc - r * R);
        let panel = &mut dst[r * R * kc..r * R * kc + rows * kc];
        let base = a.ptr.offset((i0 + r * R) as isize * a.rs + p0 as isize * a.cs);
        if a.cs == 1 {
            // Row-major A: 16 k at a time, `rows` rows transposed in registers.
            let whole = kc / 16 * 16;
            for p in (0..whole).step_by(16) {
                transpose_16(base.add(p), a.rs, rows, panel.as_mut_ptr().add(p * rows), rows as isize);
            }
            for p in whole..kc {
                for i in 0..rows {
                    panel[p * rows + i] = *base.offset(i as isize * a.rs + p as isize);
                }
            }
        } else if a.rs == 1 {
            // A stored transposed (a^T g in a backward pass): each k's values are contiguous, one masked
            // vector (a call to memcpy per 14 values cost more than the copy).
            for p in 0..kc {
                copy_16(base.offset(p as isize * a.cs), panel.as_mut_ptr().add(p * rows), rows);
            }
        } else {
            for p in 0..kc {
                for i in 0..rows {
                    panel[p * rows + i] = *base.offset(i as isize * a.rs + p as isize * a.cs);
                }
            }
        }
    }
}

/// Pack rows `p0..p0+kc`, columns `j0..j0+nc` of B into `NR`-column panels: panel `q` holds, for each k, the
/// `NR` values of columns `q*NR..` (zero past `nc`).
///
/// # Safety
/// `b` must address the block; `dst` must hold `nc.div_ceil(NR) * NR * kc` values; the CPU must have AVX-512F.
pub(super) unsafe fn pack_b(kc: usize, nc: usize, b: Mat, p0: usize, j0: usize, dst: &mut [f32]) {
    for (q, panel) in dst[..nc.div_ceil(NR) * NR * kc].chunks_exact_mut(NR * kc).enumerate() {
        pack_b_panel(kc, NR.min(nc - q * NR), b, p0, j0 + q * NR, panel);
    }
}

/// One panel of [`pack_b`]: `cols <= NR` columns from `j0`.
///
/// # Safety
/// As [`pack_b`], with `panel` holding `NR * kc` values.
pub(super) unsafe fn pack_b_panel(kc: usize, cols: usize, b: Mat, p0: usize, j0: usize, panel: &mut [f32]) {
    let base = b.ptr.offset(p0 as isize * b.rs + j0 as isize * b.cs);
    if b.cs == 1 {
        // Two masked vectors per k, zero past `cols`.
        let (lo, hi) = (cols.min(16), cols.saturating_sub(16));
        for p in 0..kc {
            let (src, dst) = (base.offset(p as isize * b.rs), panel.as_mut_ptr().add(p * NR));
            copy_16_padded(src, dst, lo);
            copy_16_padded(src.add(16), dst.add(16), hi);
        }
        return;
    }
    if cols < NR {
        panel.fill(0.0);
    }
    if b.rs == 1 {
        // B stored transposed (`x W^T`): each column is contiguous in k; 16 columns x 16 k transposed at once.
        let whole = kc / 16 * 16;
        for j in (0..cols).step_by(16) {
            let width = 16.min(cols - j);
            let src = base.offset(j as isize * b.cs);
            for p in (0..whole).step_by(16) {
                transpose_16(src.add(p), b.cs, width, panel.as_mut_ptr().add(p * NR + j), NR as isize);
            }
            for p in whole..kc {
                for jj in 0..width {
                    panel[p * NR + j + jj] = *src.offset(jj as isize * b.cs + p as isize);
                }
            }
        }
        return;
    }
    for j in 0..cols {
        let col = base.offset(j as isize * b.cs);
        for p in 0..kc {
            panel[p * NR + j] = *col.offset(p as isize * b.rs);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_16_moves_every_value_and_writes_nothing_past_the_rows() {
        if !super::super::available() {
            return;
        }
        let src: Vec<f32> = (0..16 * 20).map(|i| i as f32).collect();
        for rows in [1, 5, 14, 16] {
            let stride = 17isize;
            let mut dst = vec![-1.0f32; 16 * stride as usize];
            unsafe { transpose_16(src.as_ptr(), 20, rows, dst.as_mut_ptr(), stride) };
            for j in 0..16 {
                for i in 0..stride as usize {
                    let want = if i < rows { src[i * 20 + j] } else { -1.0 };
                    assert_eq!(dst[j * stride as usize + i], want, "rows {rows} column {j} lane {i}");
                }
            }
        }
    }
}
