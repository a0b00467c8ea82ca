//! The MPI side of [`super::World`]: one thread that makes every MPI call, fed by a queue.
//! Collectives run in the order they are queued, which is the same on every rank.

use crate::error::{Error, Result};
use ::mpi::collective::SystemOperation;
use ::mpi::datatype::Equivalence;
use ::mpi::request::{LocalScope, Request};
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

enum Job {
    SumF32(Vec<f32>, Sender<Result<Vec<f32>>>),
    SumF64(Vec<f64>, Sender<Result<Vec<f64>>>),
    Broadcast(Vec<u8>, Sender<Result<Vec<u8>>>),
    Finish(Sender<()>),
}

impl Job {
    /// Answers the job with an error instead of running it.
    fn fail(self, msg: String) {
        let e = Error::Invalid(msg);
        // (a caller that stopped waiting needs no answer)
        let _ = match self {
            Job::SumF32(_, reply) => reply.send(Err(e)).is_ok(),
            Job::SumF64(_, reply) => reply.send(Err(e)).is_ok(),
            Job::Broadcast(_, reply) => reply.send(Err(e)).is_ok(),
            Job::Finish(reply) => reply.send(()).is_ok(),
        };
    }
}

/// The queue to the MPI thread, and what it said at the start.
pub(super) struct Comm {
    pub(super) rank: usize,
    pub(super) size: usize,
    jobs: Mutex<Sender<(Job, String)>>,
    /// Set when a collective timed out: the MPI thread is stuck with it, and every later
    /// collective fails at once.
    broken: Arc<AtomicBool>,
    /// The longest wait for the other ranks.
    timeout: Duration,
}

/// A collective queued on the MPI thread; [`Pending::wait`] gives its result.
pub(super) struct Pending<T>(Receiver<Result<T>>);

impl<T> Pending<T> {
    pub(super) fn wait(self) -> Result<T> {
        self.0.recv().unwrap_or_else(|_| Err(Error::Invalid("the MPI thread stopped".into())))
    }
}

impl Comm {
    /// Starts the MPI thread, which initialises MPI and reports the rank and size.
    pub(super) fn start(timeout: Duration) -> Result<Comm> {
        let (jobs, queue) = channel::<(Job, String)>();
        let (told, hear) = channel();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        std::thread::Builder::new()
            .name("fovea-mpi".into())
            .spawn(move || serve(queue, told, timeout, flag))
            .map_err(|e| Error::Invalid(format!("cannot start the MPI thread: {e}")))?;
        let (rank, size) = hear.recv().map_err(|_| Error::Invalid("MPI did not start".into()))??;
        Ok(Comm { rank, size, jobs: Mutex::new(jobs), broken, timeout })
    }

    fn queue<T>(&self, what: &str, make: impl FnOnce(Sender<Result<T>>) -> Job) -> Pending<T> {
        let (reply, result) = channel();
        if self.broken.load(Ordering::Acquire) {
            let _ = reply.send(Err(Error::Invalid(format!("{what}: an earlier collective timed out"))));
        } else {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let _ = jobs.send((make(reply), what.to_string()));
        }
        Pending(result)
    }

    pub(super) fn start_sum_f32(&self, data: Vec<f32>, what: &str) -> Pending<Vec<f32>> {
        self.queue(what, |reply| Job::SumF32(data, reply))
    }

    pub(super) fn sum_f64(&self, data: Vec<f64>, what: &str) -> Result<Vec<f64>> {
        self.queue(what, |reply| Job::SumF64(data, reply)).wait()
    }

    pub(super) fn broadcast(&self, data: Vec<u8>, what: &str) -> Result<Vec<u8>> {
        self.queue(what, |reply| Job::Broadcast(data, reply)).wait()
    }

    /// `MPI_Finalize`, unless a collective timed out (it would wait for the ranks that are gone).
    pub(super) fn finish(&self) {
        if self.broken.load(Ordering::Acquire) {
            return;
        }
        let (reply, done) = channel();
        let _ = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send((Job::Finish(reply), String::new()));
        let _ = done.recv_timeout(self.timeout);
    }
}

/// The MPI thread: initialises MPI, then runs the queued collectives one by one.
fn serve(
    queue: Receiver<(Job, String)>,
    told: Sender<Result<(usize, usize)>>,
    timeout: Duration,
    broken: Arc<AtomicBool>,
) {
    let Some((universe, _)) = ::mpi::initialize_with_threading(::mpi::Threading::Funneled) else {
        let _ = told.send(Err(Error::Invalid("MPI was already initialised".into())));
        return;
    };
    let world = universe.world();
    let _ = told.send(Ok((world.rank() as usize, world.size() as usize)));
    while let Ok((job, what)) = queue.recv() {
        // past the timeout: this job and every later one fail, and this thread stays with
        // the unfinished request for good (MPI still owns its buffers)
        let give_up = |job: Job| -> ! {
            broken.store(true, Ordering::Release);
            job.fail(format!(
                "{what}: no answer from the other ranks in {:.0} s (FOVEA_DIST_TIMEOUT); a rank has died or hangs",
                timeout.as_secs_f64()
            ));
            for (job, what) in queue.iter() {
                job.fail(format!("{what}: an earlier collective timed out"));
            }
            loop {
                std::thread::park();
            }
        };
        match job {
            Job::SumF32(data, reply) => {
                let sum = all_sum(&world, &data, timeout, || give_up(Job::SumF32(Vec::new(), reply.clone())));
                let _ = reply.send(Ok(sum));
            }
            Job::SumF64(data, reply) => {
                let sum = all_sum(&world, &data, timeout, || give_up(Job::SumF64(Vec::new(), reply.clone())));
                let _ = reply.send(Ok(sum));
            }
            Job::Broadcast(mut data, reply) => {
                let root = world.process_at_rank(0);
                let mut len = data.len() as u64;
                ::mpi::request::scope(|scope| {
                    if !finish(root.immediate_broadcast_into(scope, &mut len), timeout) {
                        give_up(Job::Broadcast(Vec::new(), reply.clone()));
                    }
                });
                data.resize(len as usize, 0);
                ::mpi::request::scope(|scope| {
                    if !finish(root.immediate_broadcast_into(scope, &mut data[..]), timeout) {
                        give_up(Job::Broadcast(Vec::new(), reply.clone()));
                    }
                });
                let _ = reply.send(Ok(data));
            }
            Job::Finish(reply) => {
                drop(universe);
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// The sum of `data` over the ranks; past `timeout`, `give_up`, and this thread stays
/// with the unfinished request for good.
fn all_sum<T: Equivalence + Copy + Default>(
    world: &SimpleCommunicator,
    data: &[T],
    timeout: Duration,
    give_up: impl FnOnce(),
) -> Vec<T> {
    let mut sum = vec![T::default(); data.len()];
    ::mpi::request::scope(|scope| {
        let request = world.immediate_all_reduce_into(scope, data, &mut sum[..], SystemOperation::sum());
        if !finish(request, timeout) {
            give_up();
            loop {
                std::thread::park();
            }
        }
    });
    sum
}

/// Waits for `request`, testing it in a loop for its first 50 µs (a small sum is done by
/// then), then with growing pauses (MPI progresses a non-blocking collective only inside
/// MPI calls; a thread spinning on it for long would take a core from the kernels).
/// False past `timeout`, with the request left unfinished: the caller must not
/// return (the request may not be dropped while MPI owns its buffers).
#[must_use]
fn finish<'a, D: ?Sized>(mut request: Request<'a, D, &LocalScope<'a>>, timeout: Duration) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(2);
    loop {
        match request.test() {
            Ok(_) => return true,
            Err(pending) => request = pending,
        }
        let waited = start.elapsed();
        if waited > timeout {
            // kept alive by the caller, which never returns
            std::mem::forget(request);
            return false;
        }
        if waited > Duration::from_micros(50) {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_micros(200));
        }
    }
}
