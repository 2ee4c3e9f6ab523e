//! rsmpi behind [`super::World`]: initialisation, the serialising lock, the collectives, the abort.

use super::Element;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use mpi::Count;
use std::sync::{Mutex, MutexGuard};

/// Environment variables an MPI launcher sets in the processes it starts: Open MPI's `mpirun`, PMIx
/// launchers (Open MPI 5, Slurm's `srun`), and MPICH's Hydra.
const LAUNCHER_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"];

pub(super) fn launched_by_mpi() -> bool {
    LAUNCHER_VARIABLES.iter().any(|v| std::env::var_os(v).is_some())
}

pub(super) enum Op {
    Sum,
    Max,
}

/// MPI, initialised; finalised when dropped.
pub(super) struct Mpi {
    /// MPI_THREAD_SERIALIZED: one call at a time, from whichever thread.
    lock: Mutex<()>,
    _universe: Universe,
}

impl Mpi {
    pub(super) fn init() -> (Mpi, usize, usize) {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Serialized)
            .expect("World::init: MPI was initialised already (World::init is called once per process)");
        assert!(
            provided >= Threading::Serialized,
            "World::init: the MPI library gives thread level {provided:?}, and data-parallel training needs \
             Serialized (MPI is called from a rayon thread)"
        );
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        (Mpi { lock: Mutex::new(()), _universe: universe }, rank, size)
    }

    fn lock(&self) -> (MutexGuard<'_, ()>, SimpleCommunicator) {
        (self.lock.lock().unwrap_or_else(|e| e.into_inner()), SimpleCommunicator::world())
    }

    pub(super) fn all_reduce<T: Element>(&self, values: &mut [T], op: Op) {
        let op = match op {
            Op::Sum => SystemOperation::sum(),
            Op::Max => SystemOperation::max(),
        };
        let send = values.to_vec();
        let (_guard, world) = self.lock();
        world.all_reduce_into(&send[..], values, op);
    }

    pub(super) fn broadcast<T: Element>(&self, buffer: &mut [T]) {
        let (_guard, world) = self.lock();
        world.process_at_rank(0).broadcast_into(buffer);
    }

    pub(super) fn gather<T: Element>(&self, local: &[T], root: bool) -> Option<Vec<T>> {
        let (_guard, world) = self.lock();
        let at_root = world.process_at_rank(0);
        let count = Count::try_from(local.len()).expect("World::gather: more than 2^31 elements");
        if !root {
            at_root.gather_into(&count);
            at_root.gather_varcount_into(local);
            return None;
        }
        let mut counts = vec![0 as Count; world.size() as usize];
        at_root.gather_into_root(&count, &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0 as Count, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total = counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![T::default(); total];
        let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        at_root.gather_varcount_into_root(local, &mut partition);
        Some(all)
    }

    pub(super) fn barrier(&self) {
        let (_guard, world) = self.lock();
        world.barrier();
    }

    /// MPI_Abort on the world: no lock (another thread may be blocked in a collective holding it).
    pub(super) fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }
}

/// On a panic (on any thread): the usual report, then `rank R of N: <message>` and MPI_Abort, which ends
/// every rank of the job.
pub(super) fn install_panic_hook(rank: usize, size: usize) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        let location = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        eprintln!("rank {rank} of {size}: {message}{location}; aborting the MPI job");
        SimpleCommunicator::world().abort(101)
    }));
}
