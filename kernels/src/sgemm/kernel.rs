//! What the driver (`mod.rs`) needs from an instruction set ([`Isa`]): its tile and blocking sizes, its
//! micro-kernel and the vector moves packing uses. The micro-kernel multiplies one panel of `h` rows of A by
//! one `NR`-column panel of B with the `h x NR` tile of C held in registers; [`tile`] adds the edge handling
//! every instruction set shares. Heights below the tile's are their own kernels (the last rows of a product
//! are computed, not padded).

use super::MatMut;
use crate::Level;

/// One instruction set's kernel and sizes. Implemented by zero-sized types (`Avx512`, `Avx2`) that the driver
/// is generic over, so each set gets its own compiled driver with its sizes as constants.
pub(super) trait Isa: Copy + Send + Sync + 'static {
    /// The level whose CPUs can run it.
    const LEVEL: Level;
    /// Lanes of one vector: packing moves and transposes blocks of `LANES` values.
    const LANES: usize;
    /// Rows of the register tile (at most `LANES`: A is packed by `LANES x LANES` transposes of `MR` rows).
    const MR: usize;
    /// Rows of the tile for products with few rows (see `tiles` in `mod.rs`).
    const MR_SHORT: usize;
    /// Columns of the register tile (a whole number of vectors).
    const NR: usize;
    /// Depth of one packed slice (an `NR`-column panel of B, `KC * NR * 4` bytes, stays in L1).
    const KC: usize;
    /// Rows of A packed at once (`MC * KC * 4` bytes, in L2; a multiple of both tile heights, so that only a
    /// product's last block has a short tile).
    const MC: usize;
    /// Columns of B packed at once (`KC * NC * 4` bytes, in L3; a multiple of `NR`).
    const NC: usize;

    /// `c[..h, ..NR] = alpha * A_panel B_panel + beta * c` (row stride `rsc`, unit column stride; c not read
    /// when `beta == 0`) for an A panel of `h <= MR` rows (`h` values per k) and a B panel of `NR` columns.
    ///
    /// # Safety
    /// The panels must hold `kc` steps; `c` must address `h x NR` elements; the CPU must have `LEVEL`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(h: usize, kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: isize);

    /// `dst[..n] = src[..n]` for `n <= LANES` (nothing else read or written).
    ///
    /// # Safety
    /// Both must address `n` values; the CPU must have `LEVEL`.
    unsafe fn copy(src: *const f32, dst: *mut f32, n: usize);

    /// `dst[..LANES] = src[..n]` followed by zeros, for `n <= LANES` (only `src[..n]` read).
    ///
    /// # Safety
    /// As `copy`, with `dst` addressing `LANES` values.
    unsafe fn copy_padded(src: *const f32, dst: *mut f32, n: usize);

    /// Read `rows <= LANES` rows of `LANES` contiguous values (row `i` at `src + i * src_stride`) and write the
    /// transpose: for each of the `LANES` columns `j`, its `rows` values to `dst + j * dst_stride` (only those).
    ///
    /// # Safety
    /// The rows and the written values must be addressable; the CPU must have `LEVEL`.
    unsafe fn transpose(src: *const f32, src_stride: isize, rows: usize, dst: *mut f32, dst_stride: isize);
}

/// The largest tile of any instruction set (AVX-512's 14 x 32), for the edge tile's buffer.
const TILE_MAX: usize = 14 * 32;

/// `C[..h, ..nr] = alpha * A_panel B_panel + beta * C` for `h <= K::MR`, `nr <= K::NR`, C of any strides.
///
/// # Safety
/// As [`Isa::kernel`], with `c` addressing `h x nr` elements.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile<K: Isa>(
    h: usize,
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: MatMut,
    nr: usize,
) {
    const { assert!(K::MR * K::NR <= TILE_MAX && K::MR_SHORT <= K::MR && K::MR <= K::LANES) };
    if nr == K::NR && c.cs == 1 {
        K::kernel(h, kc, alpha, a, b, beta, c.ptr, c.rs);
        return;
    }
    // Edge columns (or C with a non-unit column stride): compute into a local tile, then copy the valid part.
    let mut tile = [0f32; TILE_MAX];
    K::kernel(h, kc, 1.0, a, b, 0.0, tile.as_mut_ptr(), K::NR as isize);
    for i in 0..h {
        for j in 0..nr {
            let p = c.ptr.offset(i as isize * c.rs + j as isize * c.cs);
            let v = alpha * tile[i * K::NR + j];
            *p = if beta == 0.0 { v } else { v + beta * *p };
        }
    }
}
