//! The packed B of a threaded product, shared by its threads: each panel is packed once, by the first thread
//! that needs it, in the same dispatch as the multiplication (no pass that packs B before the threads start).
//!
//! A panel is unclaimed, being packed, or ready. A thread that needs a panel claims it (and packs it) if it is
//! unclaimed, or waits while another thread packs it: the packer is running, and packing waits on nothing, so
//! the wait ends. The threads visit the panels of a block from different starting points, so that each first
//! packs its own share and finds the others' ready when it gets there.

use super::pack::pack_b_panel;
use super::{Mat, KC, NC, NR};
use std::sync::atomic::{AtomicU8, Ordering};

const UNCLAIMED: u8 = 0;
const PACKING: u8 = 1;
const READY: u8 = 2;

pub(super) struct SharedB {
    b: Mat,
    k: usize,
    n: usize,
    /// The packed panels, in the layout of [`super::PackedB`]: blocks of (`NC` columns, `KC` rows) in the
    /// product's order, each a run of `NR x kc` panels.
    data: Vec<f32>,
    /// Where `data` starts, for writes from any thread (`data` itself is not touched until `into_buffer`).
    base: *mut f32,
    /// Offset in `data` of each block, and the index of its first panel in `state`.
    blocks: Vec<(usize, usize)>,
    state: Vec<AtomicU8>,
}

// The panels are written through `base` by the one thread that claimed each, and read only once `READY` is
// published with release ordering (and acquired by the reader); `b` is only read.
unsafe impl Sync for SharedB {}

impl SharedB {
    /// A `k x n` operand `b`, to be packed into `buffer`'s memory (grown as needed) as the product goes.
    pub(super) fn new(mut buffer: Vec<f32>, k: usize, n: usize, b: Mat) -> Self {
        let (mut blocks, mut len, mut panels) = (Vec::new(), 0, 0);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for p0 in (0..k).step_by(KC) {
                blocks.push((len, panels));
                len += nc.div_ceil(NR) * NR * KC.min(k - p0);
                panels += nc.div_ceil(NR);
            }
        }
        buffer.resize(len, 0.0);
        let base = buffer.as_mut_ptr();
        let state = (0..panels).map(|_| AtomicU8::new(UNCLAIMED)).collect();
        SharedB { b, k, n, data: buffer, base, blocks, state }
    }

    /// Panel `q` of block `block` (the block of columns from `j0`, rows from `p0`), packed.
    ///
    /// # Safety
    /// The block and panel must exist; `b` must address the `k x n` elements given to `new`.
    pub(super) unsafe fn panel(&self, block: usize, q: usize, p0: usize, j0: usize) -> *const f32 {
        let kc = KC.min(self.k - p0);
        let (offset, first) = self.blocks[block];
        let ptr = self.base.add(offset + q * NR * kc);
        let state = &self.state[first + q];
        if state.load(Ordering::Acquire) != READY {
            match state.compare_exchange(UNCLAIMED, PACKING, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    let jr = j0 + q * NR;
                    let panel = std::slice::from_raw_parts_mut(ptr, NR * kc);
                    pack_b_panel(kc, NR.min(self.n - jr), self.b, p0, jr, panel);
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
        self.data
    }
}
