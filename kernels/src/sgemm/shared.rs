//! The packed B of a threaded product, shared by its threads: each panel is packed once, by the first thread
//! that needs it, in the same dispatch as the multiplication (no pass that packs B before the threads start).
//!
//! A panel is unclaimed, being packed, or ready. A thread that needs a panel claims it (and packs it) if it is
//! unclaimed, or waits while another thread packs it: the packer is running, and packing waits on nothing, so
//! the wait ends. The threads visit the panels of a block from different starting points, so that each first
//! packs its own share and finds the others' ready when it gets there.

use super::kernel::Isa;
use super::pack::pack_b_panel;
use super::{Mat, PackedB};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};

const UNCLAIMED: u8 = 0;
const PACKING: u8 = 1;
const READY: u8 = 2;

/// B packed for the kernel of `K`.
pub(super) struct SharedB<K: Isa> {
    b: Mat,
    /// The packed panels, in [`PackedB`]'s layout (its `data` is not touched through it until `into_buffer`).
    packed: PackedB,
    /// Where the packed data starts, for writes from any thread.
    base: *mut f32,
    /// The index in `state` of each block's first panel.
    first_panel: Vec<usize>,
    state: Vec<AtomicU8>,
    isa: PhantomData<K>,
}

// The panels are written through `base` by the one thread that claimed each, and read only once `READY` is
// published with release ordering (and acquired by the reader); `b` is only read.
unsafe impl<K: Isa> Sync for SharedB<K> {}

impl<K: Isa> SharedB<K> {
    /// A `k x n` operand `b`, to be packed into `buffer`'s memory (grown as needed) as the product goes.
    pub(super) fn new(buffer: Vec<f32>, k: usize, n: usize, b: Mat) -> Self {
        let mut packed = PackedB::layout::<K>(buffer, k, n);
        let mut first_panel = Vec::new();
        let mut panels = 0;
        for j0 in (0..n).step_by(K::NC) {
            for _ in (0..k).step_by(K::KC) {
                first_panel.push(panels);
                panels += K::NC.min(n - j0).div_ceil(K::NR);
            }
        }
        let base = packed.data.as_mut_ptr();
        let state = (0..panels).map(|_| AtomicU8::new(UNCLAIMED)).collect();
        SharedB { b, packed, base, first_panel, state, isa: PhantomData }
    }

    /// Panel `q` of block `block` (the block of columns from `j0`, rows from `p0`), packed.
    ///
    /// # Safety
    /// The block and panel must exist; `b` must address the `k x n` elements given to `new`.
    pub(super) unsafe fn panel(&self, block: usize, q: usize, p0: usize, j0: usize) -> *const f32 {
        let (k, n) = self.packed.dim();
        let (kc, nr) = (K::KC.min(k - p0), K::NR);
        let ptr = self.base.add(self.packed.offsets[block] + q * nr * kc);
        let state = &self.state[self.first_panel[block] + q];
        if state.load(Ordering::Acquire) != READY {
            match state.compare_exchange(UNCLAIMED, PACKING, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    let jr = j0 + q * nr;
                    let panel = std::slice::from_raw_parts_mut(ptr, nr * kc);
                    pack_b_panel::<K>(kc, nr.min(n - jr), self.b, p0, jr, panel);
                    state.store(READY, Ordering::Release);
                }
                Err(_) => {
                    while state.load(Ordering::Acquire) != READY {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        ptr
    }

    /// The memory, for the next product.
    pub(super) fn into_buffer(self) -> Vec<f32> {
        self.packed.data
    }
}
