//! Packing: copying a block of an operand into the layout the micro-kernel reads, one contiguous stream per
//! tile, with the vector moves of the instruction set `K`. Where the source runs along the wrong axis (A
//! row-major, or B stored transposed, as in `x W^T`), blocks of `LANES x LANES` are transposed in registers
//! instead of written one scalar at a time (3x faster on a 256 x 256 A with AVX-512).

use super::kernel::Isa;
use super::Mat;

/// Pack rows `i0..i0+mc`, columns `p0..p0+kc` of A into panels of `R` rows: panel `r` holds, for each k, the
/// values of its rows, `R` per k; the last panel, when `mc` is not a multiple of `R`, holds only its `mc % R`
/// rows per k (the kernel for that height reads it), so no row is padded.
///
/// # Safety
/// `a` must address the block; `dst` must hold `mc * kc` values; `R <= K::LANES`; the CPU must have `K`'s level.
pub(super) unsafe fn pack_a<K: Isa, const R: usize>(
    mc: usize,
    kc: usize,
    a: Mat,
    i0: usize,
    p0: usize,
    dst: &mut [f32],
) {
    let w = K::LANES;
    for r in 0..mc.div_ceil(R) {
        let rows = R.min(mc - r * R);
        let panel = &mut dst[r * R * kc..r * R * kc + rows * kc];
        let base = a.ptr.offset((i0 + r * R) as isize * a.rs + p0 as isize * a.cs);
        if a.cs == 1 {
            // Row-major A: `LANES` k at a time, `rows` rows transposed in registers.
            let whole = kc / w * w;
            for p in (0..whole).step_by(w) {
                K::transpose(base.add(p), a.rs, rows, panel.as_mut_ptr().add(p * rows), rows as isize);
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
                K::copy(base.offset(p as isize * a.cs), panel.as_mut_ptr().add(p * rows), rows);
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
/// `b` must address the block; `dst` must hold `nc.div_ceil(NR) * NR * kc` values; the CPU must have `K`'s
/// level.
pub(super) unsafe fn pack_b<K: Isa>(kc: usize, nc: usize, b: Mat, p0: usize, j0: usize, dst: &mut [f32]) {
    let nr = K::NR;
    for (q, panel) in dst[..nc.div_ceil(nr) * nr * kc].chunks_exact_mut(nr * kc).enumerate() {
        pack_b_panel::<K>(kc, nr.min(nc - q * nr), b, p0, j0 + q * nr, panel);
    }
}

/// One panel of [`pack_b`]: `cols <= NR` columns from `j0`.
///
/// # Safety
/// As [`pack_b`], with `panel` holding `NR * kc` values.
pub(super) unsafe fn pack_b_panel<K: Isa>(kc: usize, cols: usize, b: Mat, p0: usize, j0: usize, panel: &mut [f32]) {
    let (nr, w) = (K::NR, K::LANES);
    let base = b.ptr.offset(p0 as isize * b.rs + j0 as isize * b.cs);
    if b.cs == 1 {
        // `NR / LANES` masked vectors per k, zero past `cols`.
        for p in 0..kc {
            let (src, dst) = (base.offset(p as isize * b.rs), panel.as_mut_ptr().add(p * nr));
            for v in (0..nr).step_by(w) {
                K::copy_padded(src.add(v), dst.add(v), cols.saturating_sub(v).min(w));
            }
        }
        return;
    }
    if cols < nr {
        panel.fill(0.0);
    }
    if b.rs == 1 {
        // B stored transposed (`x W^T`): each column is contiguous in k; `LANES` columns x `LANES` k transposed
        // at once.
        let whole = kc / w * w;
        for j in (0..cols).step_by(w) {
            let width = w.min(cols - j);
            let src = base.offset(j as isize * b.cs);
            for p in (0..whole).step_by(w) {
                K::transpose(src.add(p), b.cs, width, panel.as_mut_ptr().add(p * nr + j), nr as isize);
            }
            for p in whole..kc {
                for jj in 0..width {
                    panel[p * nr + j + jj] = *src.offset(jj as isize * b.cs + p as isize);
                }
            }
        }
        return;
    }
    for j in 0..cols {
        let col = base.offset(j as isize * b.cs);
        for p in 0..kc {
            panel[p * nr + j] = *col.offset(p as isize * b.rs);
        }
    }
}
