//! Synchronous data parallelism over MPI (docs/mpi.md): the layer a training loop calls.
//!
//! Every rank holds the whole model and draws the same, seed-determined global batches; each takes its
//! contiguous [`World::shard`] of every global batch, computes gradients on it, and [`all_reduce_grads`]
//! sums them over the ranks before every optimiser step, so every rank takes the same step. Parameters start
//! equal on every rank by [`broadcast_module`] from rank 0 (at the start and after a resume).
//!
//! Without the cargo feature `mpi`, or built with it but not started by an MPI launcher (`mpirun`), the
//! [`World`] is a single process: rank 0 of 1, every collective a no-op (a copy for [`World::gather`]), so a
//! training loop written against it behaves exactly as one written without it.
//!
//! # The loss of a shard: sums, so that N ranks take the 1-rank step
//!
//! [`all_reduce_grads`] **sums** the ranks' gradients. The step equals the 1-rank step on the global batch
//! when each rank's loss is the global batch's loss restricted to its shard:
//!
//! - a loss that is a *sum* over the examples (Circles: the squared error summed over the batch) needs
//!   nothing: the shards' sums add up to the global sum;
//! - a loss that is a *mean* over the batch (Sort-of-CLEVR's `cross_entropy`) must be multiplied by
//!   [`World::loss_weight`]`(global batch size)` = shard size / global batch size, i.e. be the shard's sum
//!   divided by the *global* batch size. (The mean over a shard divided by the number of ranks would be wrong
//!   whenever the shards are unequal.)
//!
//! What is computed per example (the SRN's inner loss is a sum over the examples, so each example's inner
//! gradient is its own) does not depend on the shard. BatchNorm's batch statistics do: they are taken over
//! each rank's shard, as PyTorch's DistributedDataParallel without SyncBatchNorm does. Gradient clipping
//! ([`models::clip_grad_norm`]) comes after [`all_reduce_grads`], on the summed gradients, which are the same
//! on every rank.
//!
//! # Threads
//!
//! MPI is initialised with `MPI_THREAD_SERIALIZED` (checked): calls may come from any thread (the binary runs
//! its commands on a rayon thread, see `kernels::on_pool`), one at a time, which a lock inside [`World`]
//! enforces. [`World::init`] must be called on the main thread (it becomes MPI's main thread), before the
//! rayon pool runs the command, and the [`World`] dropped there at the end (that calls `MPI_Finalize`).
//!
//! # Failure
//!
//! Under MPI with more than one rank, [`World::init`] installs a panic hook that prints
//! `rank R of N: <panic message>` and calls `MPI_Abort`, so the whole job exits (non-zero) instead of the
//! other ranks waiting forever in their next collective. [`World::abort`] does the same for an error.

use autograd::Float;
use models::{unique, Grads, Module};
use std::ops::Range;

/// A number type the collectives carry (MPI's built-in types).
#[cfg(feature = "mpi")]
pub trait Element: Copy + Default + Send + Sync + 'static + mpi::traits::Equivalence {}
/// A number type the collectives carry (MPI's built-in types).
#[cfg(not(feature = "mpi"))]
pub trait Element: Copy + Default + Send + Sync + 'static {}

impl Element for f32 {}
impl Element for f64 {}
impl Element for u8 {}
impl Element for u32 {}
impl Element for u64 {}
impl Element for i32 {}
impl Element for i64 {}

/// The processes of a data-parallel run: this process's rank among `size`. See the module documentation.
pub struct World {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<backend::Mpi>,
}

impl World {
    /// A world of one process, without MPI: every collective is a no-op.
    pub fn single() -> World {
        World {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The world this process was started in: under an MPI launcher (`mpirun`; built with the feature
    /// `mpi`), MPI initialised with `MPI_THREAD_SERIALIZED` and, with more than one rank, the panic hook
    /// that aborts the job; otherwise [`World::single`]. Call once, on the main thread, and keep the world
    /// until the end of `main` (dropping it finalises MPI).
    ///
    /// Panics if MPI was initialised before, or cannot give `MPI_THREAD_SERIALIZED`.
    pub fn init() -> World {
        #[cfg(feature = "mpi")]
        if backend::launched_by_mpi() {
            let (mpi, rank, size) = backend::Mpi::init();
            let world = World { rank, size, mpi: Some(mpi) };
            if size > 1 {
                backend::install_panic_hook(rank, size);
            }
            return world;
        }
        World::single()
    }

    /// This process's rank, 0 to `size() - 1`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the one that writes checkpoints, tables, figures and progress.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Whether MPI is in use (started under `mpirun`, even with one rank).
    pub fn is_mpi(&self) -> bool {
        #[cfg(feature = "mpi")]
        return self.mpi.is_some();
        #[cfg(not(feature = "mpi"))]
        false
    }

    /// `"rank R of N"`, for messages.
    pub fn describe(&self) -> String {
        format!("rank {} of {}", self.rank, self.size)
    }

    /// This rank's part of `0..len`: contiguous, in rank order, the first `len % size` ranks one element
    /// longer than the rest (10 over 4 ranks: 3, 3, 2, 2). The shards of all ranks, concatenated in rank
    /// order, are `0..len`. A rank's shard is empty when `len < size`; it must still take part in every
    /// collective (with zero gradients, [`zero_grads`]).
    pub fn shard_range(&self, len: usize) -> Range<usize> {
        shard_range(len, self.rank, self.size)
    }

    /// This rank's part of a global batch (see [`World::shard_range`]), e.g. of the batch's example indices.
    pub fn shard<'a, T>(&self, global: &'a [T]) -> &'a [T] {
        &global[self.shard_range(global.len())]
    }

    /// Shard size / global batch size: the factor by which a loss that is a *mean* over this rank's shard
    /// must be multiplied so that the summed gradients are those of the mean over the global batch. 0 for
    /// an empty shard.
    pub fn loss_weight(&self, global_len: usize) -> f64 {
        if global_len == 0 {
            return 0.0;
        }
        self.shard_range(global_len).len() as f64 / global_len as f64
    }

    /// Sum `values` element-wise over the ranks, in place; every rank gets the sum. The same length on every
    /// rank. One MPI_Allreduce (the order of the float sum is MPI's).
    pub fn all_reduce_sum<T: Element>(&self, values: &mut [T]) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|_| self.size > 1) {
            mpi.all_reduce(values, backend::Op::Sum);
        }
        #[cfg(not(feature = "mpi"))]
        let _ = values;
    }

    /// Element-wise maximum over the ranks, in place.
    pub fn all_reduce_max<T: Element>(&self, values: &mut [T]) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|_| self.size > 1) {
            mpi.all_reduce(values, backend::Op::Max);
        }
        #[cfg(not(feature = "mpi"))]
        let _ = values;
    }

    /// Whether `flag` holds on any rank (every rank gets the same answer): for a decision all ranks must
    /// take at the same step, such as stopping after Ctrl-C, which may reach the ranks at different steps.
    pub fn any(&self, flag: bool) -> bool {
        let mut v = [u8::from(flag)];
        self.all_reduce_max(&mut v);
        v[0] != 0
    }

    /// Overwrite `buffer` on every rank with rank 0's. The same length on every rank.
    pub fn broadcast_from_root<T: Element>(&self, buffer: &mut [T]) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|_| self.size > 1) {
            mpi.broadcast(buffer);
        }
        #[cfg(not(feature = "mpi"))]
        let _ = buffer;
    }

    /// Rank 0's `bytes` on every rank (the others pass anything, e.g. an empty vector): a checkpoint read by
    /// rank 0 alone, parsed by every rank. Two broadcasts: the length, then the bytes.
    pub fn broadcast_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.size == 1 {
            return bytes;
        }
        let mut len = [bytes.len() as u64];
        self.broadcast_from_root(&mut len);
        let mut bytes = if self.is_root() { bytes } else { vec![0u8; len[0] as usize] };
        // MPI counts are C ints: large buffers go in pieces.
        for chunk in bytes.chunks_mut(1 << 30) {
            self.broadcast_from_root(chunk);
        }
        bytes
    }

    /// Read the file at `path` on rank 0 and give its contents, or rank 0's error, to every rank alike (so that
    /// a missing file is an error on every rank rather than a hang on the others). For resuming: every rank
    /// then parses the same bytes (`models::Checkpoint::from_bytes`), so model and optimiser state agree.
    pub fn read_on_root(&self, path: &std::path::Path) -> Result<Vec<u8>, String> {
        let read = if self.is_root() {
            std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
        } else {
            Ok(Vec::new())
        };
        let mut failed = [u8::from(read.is_err())];
        self.broadcast_from_root(&mut failed);
        match read {
            Ok(bytes) if failed[0] == 0 => Ok(self.broadcast_bytes(bytes)),
            Ok(_) => Err(String::from_utf8_lossy(&self.broadcast_bytes(Vec::new())).into_owned()),
            Err(message) => Err(String::from_utf8_lossy(&self.broadcast_bytes(message.into_bytes())).into_owned()),
        }
    }

    /// Every rank's `local` (lengths may differ), concatenated in rank order, on rank 0 (`None` elsewhere).
    /// For evaluation split with [`World::shard`]: the concatenation of per-example results is in the
    /// global order. Meant for small results (metrics, per-example errors), not tensors.
    pub fn gather<T: Element>(&self, local: &[T]) -> Option<Vec<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|_| self.size > 1) {
            return mpi.gather(local, self.rank == 0);
        }
        Some(local.to_vec())
    }

    /// Wait until every rank gets here (e.g. until rank 0 has written a checkpoint the others will read).
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|_| self.size > 1) {
            mpi.barrier();
        }
    }

    /// End the whole job after printing `rank R of N: <message>`: `MPI_Abort` under MPI (the other ranks are
    /// killed instead of waiting in a collective), `exit(code)` otherwise.
    pub fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("{}: {message}", self.describe());
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            mpi.abort(code);
        }
        std::process::exit(code)
    }
}

/// The process's world, set once in `main` ([`install`]) and read by the training loop ([`world`]), as MPI
/// itself is one per process.
static INSTALLED: std::sync::RwLock<Option<std::sync::Arc<World>>> = std::sync::RwLock::new(None);

/// Make `world` the process's [`world`] until the returned guard is dropped at the end of `main` (dropping
/// the last handle finalises MPI).
#[must_use = "the world is uninstalled (and MPI finalised) when the guard is dropped"]
pub fn install(world: World) -> Installed {
    *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = Some(std::sync::Arc::new(world));
    Installed(())
}

/// Keeps the installed world; see [`install`].
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        let world = INSTALLED.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(world);
    }
}

/// The process's world: the one `main` installed, or a single process (tests, examples, library use).
pub fn world() -> std::sync::Arc<World> {
    INSTALLED.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_else(|| std::sync::Arc::new(World::single()))
}

/// `0..len` divided among `size` ranks: see [`World::shard_range`].
pub fn shard_range(len: usize, rank: usize, size: usize) -> Range<usize> {
    assert!(rank < size, "shard_range: rank {rank} of {size}");
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Sum the ranks' gradients in place (see the module documentation for how the loss must be scaled so that
/// the sum is the 1-rank gradient). Every rank must hold gradients of the same shapes in the same order (as
/// [`Module::grads`] gives them: the module's parameters in order, a zero for an unused one); that is checked
/// first, and a mismatch panics on every rank (and so aborts the job). All gradients travel in one buffer.
/// Nothing happens in a world of one process.
pub fn all_reduce_grads<T: Float + Element>(world: &World, grads: &mut Grads<T>) {
    if world.size() == 1 {
        return;
    }
    let layout = Fingerprint::new().shapes(grads.iter().map(|(_, g)| g.shape()));
    check_same(world, layout.0, "all_reduce_grads: the gradients' shapes differ between ranks");
    let mut flat: Vec<T> = Vec::with_capacity(grads.iter().map(|(_, g)| g.len()).sum());
    for (_, g) in grads.iter() {
        flat.extend(g.iter().copied());
    }
    world.all_reduce_sum(&mut flat);
    let mut rest = &flat[..];
    for (_, g) in grads.iter_mut() {
        let (mine, tail) = rest.split_at(g.len());
        g.iter_mut().zip(mine).for_each(|(a, b)| *a = *b);
        rest = tail;
    }
}

/// Make every rank's parameters and buffers rank 0's: the module's state ([`Module::state`]), sorted by name
/// (a tensor listed under two names once), flattened into one buffer and broadcast. For the start of a run
/// and after a resume. The names and shapes are checked to agree first (a mismatch panics on every rank).
pub fn broadcast_module<T: Float + Element, M: Module<T> + ?Sized>(world: &World, module: &M) {
    if world.size() == 1 {
        return;
    }
    let state = sorted_state(module);
    let layout = state.iter().fold(Fingerprint::new(), |f, (name, p)| f.bytes(name.as_bytes()).shape(&p.shape()));
    check_same(world, layout.0, "broadcast_module: the modules' parameter names or shapes differ between ranks");
    let mut flat: Vec<T> = Vec::with_capacity(state.iter().map(|(_, p)| p.len()).sum());
    if world.is_root() {
        for (_, p) in &state {
            flat.extend(p.value().iter().copied());
        }
    } else {
        flat.resize(flat.capacity(), T::zero());
    }
    world.broadcast_from_root(&mut flat);
    if !world.is_root() {
        let mut rest = &flat[..];
        for (_, p) in &state {
            let (mine, tail) = rest.split_at(p.len());
            p.update(|v| v.iter_mut().zip(mine).for_each(|(a, b)| *a = *b));
            rest = tail;
        }
    }
}

/// Zero gradients for every parameter of `module`, in [`Module::grads`]'s order: what a rank with an empty
/// shard contributes to [`all_reduce_grads`].
pub fn zero_grads<T: Float, M: Module<T> + ?Sized>(module: &M) -> Grads<T> {
    let mut grads = Grads::new();
    for (_, p) in unique(module.params()) {
        grads.insert(&p, ndarray::ArrayD::zeros(p.shape()));
    }
    grads
}

/// Whether every rank holds bit-for-bit the same parameters and buffers: an error naming the ranks'
/// disagreement otherwise (a check for after a resume, or at a checkpoint; costs one small all-reduce and a
/// pass over the parameters).
pub fn check_in_sync<T: Float, M: Module<T> + ?Sized>(world: &World, module: &M) -> Result<(), String> {
    if world.size() == 1 {
        return Ok(());
    }
    let mut f = Fingerprint::new();
    for (name, p) in sorted_state(module) {
        f = f.bytes(name.as_bytes());
        for x in p.value().iter() {
            f = f.bytes(&x.to_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
        }
    }
    let (low, high) = min_max(world, f.0);
    if low == high {
        Ok(())
    } else {
        Err(format!("the ranks' parameters differ ({}: fingerprint {:016x})", world.describe(), f.0))
    }
}

/// The module's state sorted by name, each tensor once.
fn sorted_state<T: Float, M: Module<T> + ?Sized>(module: &M) -> Vec<(String, models::Param<T>)> {
    let mut state = unique(module.state());
    state.sort_by(|a, b| a.0.cmp(&b.0));
    state
}

/// The minimum and maximum of `value` over the ranks, in one all-reduce (the maximum of its complement is
/// the complement of the minimum).
fn min_max(world: &World, value: u64) -> (u64, u64) {
    let mut v = [value, !value];
    world.all_reduce_max(&mut v);
    (!v[1], v[0])
}

/// Panic on every rank unless `value` is the same on all.
fn check_same(world: &World, value: u64, what: &str) {
    let (low, high) = min_max(world, value);
    assert!(low == high, "{what} ({}: {value:016x}, others from {low:016x} to {high:016x})", world.describe());
}

/// FNV-1a, 64 bits: the same on every rank and every run.
#[derive(Clone, Copy)]
struct Fingerprint(u64);

impl Fingerprint {
    fn new() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    fn shape(self, shape: &[usize]) -> Self {
        shape.iter().fold(self.bytes(&(shape.len() as u64).to_le_bytes()), |f, &d| f.bytes(&(d as u64).to_le_bytes()))
    }
    fn shapes<'a>(self, shapes: impl Iterator<Item = &'a [usize]>) -> Self {
        shapes.fold(self, |f, s| f.shape(s))
    }
}

#[cfg(feature = "mpi")]
mod backend;

#[cfg(test)]
mod tests {
    use super::*;
    use models::{Linear, Param, Scope};
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn shards_are_contiguous_in_rank_order_and_differ_by_at_most_one() {
        for len in 0..20 {
            for size in 1..6 {
                let shards: Vec<_> = (0..size).map(|r| shard_range(len, r, size)).collect();
                assert_eq!(shards.first().unwrap().start, 0);
                assert_eq!(shards.last().unwrap().end, len);
                for w in shards.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() == w[1].len() || w[0].len() == w[1].len() + 1, "{len} over {size}: {shards:?}");
                }
            }
        }
        assert_eq!((0..4).map(|r| shard_range(10, r, 4).len()).collect::<Vec<_>>(), [3, 3, 2, 2]);
    }

    #[test]
    fn a_single_process_world_changes_nothing() {
        let world = World::init();
        assert_eq!((world.rank(), world.size(), world.is_root(), world.is_mpi()), (0, 1, true, false));
        let mut v = vec![1.5f32, -2.0];
        world.all_reduce_sum(&mut v);
        world.all_reduce_max(&mut v);
        world.broadcast_from_root(&mut v);
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(world.gather(&[3.0f64, 4.0]), Some(vec![3.0, 4.0]));
        assert!(world.any(true) && !world.any(false));
        assert_eq!(world.shard(&[1, 2, 3]), &[1, 2, 3]);
        assert_eq!(world.loss_weight(8), 1.0);
        world.barrier();

        let layer = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0));
        let before: Vec<_> = layer.params().iter().map(|(_, p)| (*p.value()).clone()).collect();
        broadcast_module(&world, &layer);
        let tape = autograd::Tape::new();
        let scope = Scope::new(&tape);
        let y = layer.forward(&scope, tape.constant(ndarray::ArrayD::ones(vec![4, 3]))).sum();
        let mut grads = layer.grads(&scope, &[y]);
        let expected: Vec<_> = grads.iter().map(|(_, g)| g.clone()).collect();
        all_reduce_grads(&world, &mut grads);
        assert_eq!(grads.iter().map(|(_, g)| g.clone()).collect::<Vec<_>>(), expected);
        let after: Vec<_> = layer.params().iter().map(|(_, p)| (*p.value()).clone()).collect();
        assert_eq!(before, after);
        assert!(check_in_sync(&world, &layer).is_ok());
    }

    #[test]
    fn zero_grads_cover_every_parameter_once_in_module_order() {
        let layer = Linear::<f64>::new(3, 2, &mut StdRng::seed_from_u64(1));
        let shared: Vec<(String, Param<f64>)> = layer.params().into_iter().chain(layer.params()).collect();
        struct Twice(Vec<(String, Param<f64>)>);
        impl Module<f64> for Twice {
            fn params(&self) -> Vec<(String, Param<f64>)> {
                self.0.clone()
            }
        }
        let grads = zero_grads(&Twice(shared));
        assert_eq!(grads.len(), 2);
        let shapes: Vec<_> = grads.iter().map(|(_, g)| g.shape().to_vec()).collect();
        assert_eq!(shapes, [vec![2, 3], vec![2]]);
        assert!(grads.iter().all(|(_, g)| g.iter().all(|&x| x == 0.0)));
    }
}
