//! Data-parallel training across processes started by an MPI launcher
//! (`mpirun -np N fovea train ...`).
//!
//! Every process (rank) holds the same model and takes its part, its *shard*, of each
//! global batch ([`World::shard`]). After backward the ranks' gradients are summed with
//! MPI allreduce, each shard's gradient weighted by its share of the global batch, so that
//! every rank ends the step with the gradient of the whole batch, the one a single process
//! computes, up to the order of the sum. [`GradientSync`] groups the parameters into
//! buckets, last layers first, and starts each bucket's allreduce as soon as backward has
//! finished its gradients, while backward goes on with the layers before (PyTorch DDP's
//! reducer, Horovod's tensor fusion).
//!
//! MPI needs the cargo feature `mpi` (Open MPI or MPICH, and libclang to build the
//! bindings). Without it, or without a launcher, the world is this process alone and every
//! collective is a no-op; a build without the feature started by a launcher with several
//! processes refuses to run, rather than train N unconnected copies into one folder.
//!
//! All MPI calls are made on one thread of this module's own, so the kernels' threads
//! never wait on MPI and MPI needs no thread support beyond `MPI_THREAD_FUNNELED`. Each
//! collective waits at most [`timeout`] for the other ranks: a rank that died or hangs
//! makes the others stop with an error naming the collective instead of waiting forever.

#[cfg(feature = "mpi")]
mod comm;

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The processes training together; see the module's documentation.
pub struct World {
    rank: usize,
    size: usize,
    sync_batch_norm: AtomicBool,
    #[cfg(feature = "mpi")]
    comm: Option<comm::Comm>,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The number of processes an MPI launcher (Open MPI, MPICH, Intel MPI, Slurm's PMIx) says
/// it started, from the environment it gives each of them; 1 without a launcher.
pub fn launched_size() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(1)
}

/// The number of processes the MPI launcher started on this machine (they share its
/// cores); 1 without a launcher.
pub fn local_size() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(1)
}

/// How long a collective waits for the other ranks before it gives up:
/// `FOVEA_DIST_TIMEOUT` seconds, 300 by default (enough for a rank writing a checkpoint
/// or loading a data set while the others wait); a value that is not a number of seconds
/// from 0.001 to a year is refused.
pub fn timeout() -> Result<Duration> {
    let Ok(given) = std::env::var("FOVEA_DIST_TIMEOUT") else {
        return Ok(Duration::from_secs(300));
    };
    match given.trim().parse::<f64>() {
        Ok(s) if (0.001..=365.0 * 86400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(Error::Invalid(format!(
            "FOVEA_DIST_TIMEOUT='{given}': must be a number of seconds from 0.001 to 31536000"
        ))),
    }
}

/// Joins the processes the MPI launcher started, once per process (later calls return the
/// same world). Without a launcher the world is this process alone.
pub fn init() -> Result<&'static World> {
    let size = launched_size();
    if let Some(world) = WORLD.get() {
        if world.size != size {
            return Err(Error::Invalid(format!(
                "dist::init came after dist::world: this process runs alone, but the launcher started {size}"
            )));
        }
        return Ok(world);
    }
    let world = if size <= 1 {
        World::single()
    } else {
        #[cfg(feature = "mpi")]
        {
            let comm = comm::Comm::start(timeout()?)?;
            let (rank, size) = (comm.rank, comm.size);
            World { comm: Some(comm), ..World::with(rank, size) }
        }
        #[cfg(not(feature = "mpi"))]
        return Err(Error::Invalid(format!(
            "started by an MPI launcher as one of {size} processes, but this fovea was built without MPI; build \
             it with `cargo build --release --features mpi` (needs Open MPI's libopenmpi-dev and libclang-dev)"
        )));
    };
    Ok(WORLD.get_or_init(|| world))
}

/// The world [`init`] joined; this process alone if it was not called.
pub fn world() -> &'static World {
    WORLD.get_or_init(World::single)
}

/// Leaves the world (`MPI_Finalize`) when the program is done, so that the launcher sees a
/// clean exit; after a collective timed out it does nothing (the other ranks are gone).
pub fn finish() {
    #[cfg(feature = "mpi")]
    if let Some(comm) = WORLD.get().and_then(|w| w.comm.as_ref()) {
        comm.finish();
    }
}

impl World {
    fn single() -> World {
        World::with(0, 1)
    }

    /// Rank `rank` of `size`, not connected to the others (yet).
    fn with(rank: usize, size: usize) -> World {
        World {
            rank,
            size,
            sync_batch_norm: AtomicBool::new(false),
            #[cfg(feature = "mpi")]
            comm: None,
        }
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The number of processes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Whether this is rank 0, the one that writes checkpoints, metrics and progress.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Synchronised batch norm (`--sync-bn`, PyTorch's `SyncBatchNorm`): from now on batch
    /// norm in training normalises with the statistics of the global batch, summed over the
    /// ranks in its forward and backward passes (three small allreduces per layer and step),
    /// so that a network with batch norm trains as on one process. Off by default: each rank
    /// normalises its own shard, as DDP does.
    pub fn sync_batch_norm(&self, on: bool) {
        self.sync_batch_norm.store(on, Ordering::Relaxed);
    }
    /// Whether batch norm is synchronised ([`World::sync_batch_norm`]).
    pub fn syncs_batch_norm(&self) -> bool {
        self.sync_batch_norm.load(Ordering::Relaxed)
    }

    /// This rank's rows of a global batch of `len`: consecutive, in rank order, sizes
    /// differing by at most one (the first `len % size` ranks take one more). With more ranks
    /// than rows some shards are empty.
    pub fn shard(&self, len: usize) -> Range<usize> {
        let at = |rank: usize| rank * (len / self.size) + rank.min(len % self.size);
        at(self.rank)..at(self.rank + 1)
    }

    /// Sums `values` over the ranks, in place (every rank gets the sum).
    pub fn sum_f64(&self, values: &mut [f64], what: &str) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(comm) = &self.comm {
            let sum = comm.sum_f64(values.to_vec(), what)?;
            values.copy_from_slice(&sum);
        }
        let _ = (values, what);
        Ok(())
    }

    /// Sums `values` over the ranks (every rank gets the sum).
    pub fn sum_f32(&self, values: Vec<f32>, what: &str) -> Result<Vec<f32>> {
        #[cfg(feature = "mpi")]
        if let Some(comm) = &self.comm {
            return comm.start_sum_f32(values, what).wait();
        }
        let _ = what;
        Ok(values)
    }

    /// Rank 0's `bytes`, on every rank (each rank passes its own; only rank 0's count).
    pub fn broadcast(&self, bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
        #[cfg(feature = "mpi")]
        if let Some(comm) = &self.comm {
            return comm.broadcast(bytes, what);
        }
        let _ = what;
        Ok(bytes)
    }

    /// Makes every rank's result the same kind: `Ok` where every rank succeeded; where any
    /// failed, each failed rank keeps its own error and the others get one saying which rank
    /// failed (its message is in that rank's output). What every rank calls after a step
    /// that can fail on one rank alone (a folder to write, a file to read), so that no rank
    /// goes on into a collective the others never reach.
    pub fn agree<T>(&self, local: Result<T>, what: &str) -> Result<T> {
        if self.size == 1 {
            return local;
        }
        // per rank, 1 where it failed: the lowest failed rank is named
        let mut failed = vec![0.0; self.size];
        failed[self.rank] = if local.is_err() { 1.0 } else { 0.0 };
        // this rank's own error first, if the sum fails too
        let summed = self.sum_f64(&mut failed, what);
        let local = local?;
        summed?;
        match failed.iter().position(|&f| f > 0.0) {
            None => Ok(local),
            Some(rank) => Err(Error::Invalid(format!(
                "{what}: rank {rank} stopped with an error (see its output); so did this one"
            ))),
        }
    }

    /// The rows of every rank's `local` (`[rows, ...]`, this rank's shard of a global batch
    /// of `total` rows, as [`World::shard`] splits it), in rank order: `[total, ...]` on every
    /// rank. Its backward hands `local` the gradient of its own rows: what a loss that couples
    /// the whole batch (triplets mined in it), computed alike on every rank, needs.
    pub fn all_gather_rows(&self, local: &Var, total: usize) -> Result<Var> {
        if self.size == 1 {
            return Ok(local.clone());
        }
        let shape = local.shape();
        let shard = self.shard(total);
        if shape.first() != Some(&shard.len()) {
            return Err(Error::shape(
                "all_gather_rows",
                format!("this rank's shard of {total} rows has {} rows, not {shape:?}", shard.len()),
            ));
        }
        let row: usize = shape[1..].iter().product();
        // each rank's rows in place in a zero matrix, summed
        let mut all = vec![0.0; total * row];
        all[shard.start * row..shard.end * row].copy_from_slice(local.value().data());
        let all = self.sum_f32(all, "the rows' gather")?;
        let mut whole = shape.clone();
        whole[0] = total;
        let own = shard.start * row..shard.end * row;
        Ok(Var::from_op(
            Tensor::new(&whole, all)?,
            &[local],
            Box::new(move |g, _| vec![Some(Tensor::new(&shape, g.data()[own.clone()].to_vec()).expect("shape"))]),
        ))
    }

    /// [`World::agree`] on `local` and [`World::sum_f64`] of `values` in one collective: a
    /// training step's figures, summed only where every rank's forward pass succeeded.
    pub fn sum_agreed<T>(&self, local: Result<T>, values: &mut [f64], what: &str) -> Result<T> {
        if self.size == 1 {
            return local;
        }
        let mut all = values.to_vec();
        all.push(if local.is_err() { 1.0 } else { 0.0 });
        let summed = self.sum_f64(&mut all, what);
        let local = local?;
        summed?;
        if all[values.len()] > 0.0 {
            return Err(Error::Invalid(format!("{what}: another rank stopped with an error (see its output)")));
        }
        values.copy_from_slice(&all[..values.len()]);
        Ok(local)
    }

    /// Refuses replicas that differ: the model's tensors must be bit for bit rank 0's on
    /// every rank (checked by a hash of their bits). What data-parallel training keeps true
    /// at every step; checked at every checkpoint, and after every step with
    /// `FOVEA_CHECK_REPLICAS=1`.
    pub fn check_replicas(&self, tensors: &[(String, Var)]) -> Result<()> {
        if self.size == 1 {
            return Ok(());
        }
        let hash = tensors.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, (_, v)| {
            v.value().data().iter().fold(h, |h, x| (h ^ x.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3))
        });
        let root = self.broadcast(hash.to_le_bytes().to_vec(), "the replica check")?;
        let root = root.try_into().map(u64::from_le_bytes).unwrap_or(!hash);
        let same = if root == hash {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "rank {}'s model differs from rank 0's (hash {hash:016x}, rank 0 {root:016x}): the replicas diverged",
                self.rank
            )))
        };
        self.agree(same, "the replica check")
    }

    /// Makes `tensors` (a model's buffers: batch norm's running statistics) rank 0's on every
    /// rank, as DDP does (before each forward pass; fovea after each step, so that the ranks
    /// are equal between steps): each rank updates its own from its shard.
    pub fn broadcast_tensors(&self, tensors: &[(String, Var)]) -> Result<()> {
        if self.size == 1 || tensors.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for (_, v) in tensors {
            bytes.extend(v.value().data().iter().flat_map(|x| x.to_le_bytes()));
        }
        let own = bytes.len();
        let root = self.broadcast(bytes, "the buffers' broadcast")?;
        if root.len() != own {
            return Err(Error::Invalid(format!(
                "rank 0's buffers hold {} bytes, rank {}'s {own}: the ranks do not train the same model",
                root.len(),
                self.rank
            )));
        }
        let mut at = 0;
        for (_, v) in tensors {
            let n = v.value().numel();
            let data =
                root[at..at + 4 * n].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            at += 4 * n;
            v.set_value(Tensor::new(&v.shape(), data)?);
        }
        Ok(())
    }
}

/// A step's gradients summed over the ranks while backward runs; see the module's
/// documentation.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub struct GradientSync {
    params: Vec<Var>,
    /// Parameter indices of each bucket, in the order backward finishes them (last layers
    /// first); the buckets are reduced in this order on every rank.
    buckets: Vec<Vec<usize>>,
    /// Bucket of each parameter, by node.
    bucket_of: HashMap<usize, usize>,
}

/// Floats per gradient bucket (4 MiB): large enough that a bucket's latency is small next
/// to its transfer, small enough that the first buckets go while backward has much left.
pub const BUCKET_FLOATS: usize = 1 << 20;

impl GradientSync {
    /// Buckets of about `bucket_floats` gradients for `params`, given in forward order
    /// (as [`crate::nn::trainable_parameters`] lists them).
    pub fn new(params: Vec<Var>, bucket_floats: usize) -> GradientSync {
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        let mut filled = usize::MAX;
        for i in (0..params.len()).rev() {
            let n = params[i].value().numel();
            if filled.saturating_add(n) > bucket_floats && filled > 0 {
                buckets.push(Vec::new());
                filled = 0;
            }
            buckets.last_mut().expect("made above").push(i);
            filled += n;
        }
        let mut bucket_of = HashMap::new();
        for (b, members) in buckets.iter().enumerate() {
            bucket_of.extend(members.iter().map(|&p| (params[p].id(), b)));
        }
        GradientSync { params, buckets, bucket_of }
    }

    /// Back-propagates this rank's `loss` (`None` for an empty shard), whose gradients count
    /// with `weight` (the shard's share of the global batch), and leaves in every parameter
    /// the weighted sum over the ranks: the global batch's gradient. A parameter no rank
    /// reached keeps none (the optimizer leaves it alone). On one process this is
    /// `loss.backward()`.
    pub fn backward(&self, loss: Option<&Var>, weight: f32) -> Result<()> {
        if let Some(loss) = loss.filter(|l| l.value().numel() != 1) {
            return Err(Error::shape("backward", format!("needs a scalar loss, got {:?}", loss.shape())));
        }
        #[cfg(feature = "mpi")]
        if let Some(comm) = &world().comm {
            return self.backward_over(comm, loss, weight);
        }
        // one process: the plain backward pass (the gradients come out weighted)
        loss.map_or(Ok(()), |loss| loss.backward_with(Tensor::full(&loss.shape(), weight)))
    }

    #[cfg(feature = "mpi")]
    fn backward_over(&self, comm: &comm::Comm, loss: Option<&Var>, weight: f32) -> Result<()> {
        let mut owed: Vec<usize> = self.buckets.iter().map(Vec::len).collect();
        let mut sent = Vec::with_capacity(self.buckets.len());
        // a bucket: its gradients, then per parameter 1 where this rank reached it
        let send = |b: usize, sent: &mut Vec<_>| {
            let params = &self.buckets[b];
            let len: usize = params.iter().map(|&p| self.params[p].value().numel()).sum();
            let mut flat = Vec::with_capacity(len + params.len());
            let mut reached = Vec::with_capacity(params.len());
            for &p in params {
                let param = &self.params[p];
                let grad = param.grad();
                match &grad {
                    Some(g) => flat.extend_from_slice(g.data()),
                    None => flat.resize(flat.len() + param.value().numel(), 0.0),
                }
                reached.push(if grad.is_some() { 1.0 } else { 0.0 });
            }
            flat.extend(reached);
            sent.push(comm.start_sum_f32(flat, "the gradients' allreduce"));
        };
        if let Some(loss) = loss {
            // the gradients come out weighted: d(weight * loss)
            loss.backward_notify(Tensor::full(&loss.shape(), weight), &mut |leaf| {
                let Some(&b) = self.bucket_of.get(&leaf.id()) else { return };
                owed[b] -= 1;
                // buckets go in order, each once all of its gradients are done
                while sent.len() < self.buckets.len() && owed[sent.len()] == 0 {
                    send(sent.len(), &mut sent);
                }
            })?;
        }
        while sent.len() < self.buckets.len() {
            send(sent.len(), &mut sent);
        }
        for (b, pending) in sent.into_iter().enumerate() {
            let sum = pending.wait()?;
            let params = &self.buckets[b];
            let reached = &sum[sum.len() - params.len()..];
            let mut at = 0;
            for (&p, &reached) in params.iter().zip(reached) {
                let param = &self.params[p];
                let shape = param.shape();
                let n: usize = shape.iter().product();
                // a parameter no rank reached keeps no gradient, as on one process
                if reached > 0.0 {
                    param.set_grad(Tensor::new(&shape, sum[at..at + n].to_vec())?);
                }
                at += n;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_rank_order() {
        for size in 1..6 {
            for len in 0..20 {
                let ranges: Vec<Range<usize>> = (0..size).map(|rank| World::with(rank, size).shard(len)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[size - 1].end, len);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn buckets_hold_the_last_layers_first() {
        let params: Vec<Var> = [10, 3, 5, 2, 7].iter().map(|&n| Var::param(Tensor::zeros(&[n]))).collect();
        let sync = GradientSync::new(params, 8);
        assert_eq!(sync.buckets, vec![vec![4], vec![3, 2], vec![1], vec![0]]);
    }
}
