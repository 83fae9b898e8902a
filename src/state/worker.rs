//! Blocking work kept off the event loop: a background thread with a keyed,
//! coalescing queue.
//!
//! Everything of every interface runs on one thread (`daemon.rs`), so a call that
//! blocks there (an fsync of a lease file, a rewrite of resolv.conf, a `resolvectl`
//! that waits for a hung systemd-resolved) delays every other interface's packets.
//! Such work is handed to a [`Worker`] instead: the loop only queues a job and goes
//! on. Jobs are keyed (a lease file, a resolv.conf, a link): a job queued while an
//! older one for the same key still waits replaces it, so a burst of changes costs one
//! write of the newest state, and a slow key never reorders another key's jobs behind
//! more than one of its own. Jobs of different keys run in the order first queued.
//!
//! The thread is started at the first job (a daemon that never writes has none) and
//! sleeps on a condition variable while the queue is empty: no periodic wakeups.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Job<K, J> = Box<dyn FnMut(Vec<(K, J)>) + Send>;

/// The most jobs handed to a batched runner at once.
const MAX_BATCH: usize = 256;

/// A background thread running jobs of type `J`, coalesced per key `K`.
pub struct Worker<K, J> {
    inner: Arc<Inner<K, J>>,
}

impl<K, J> Clone for Worker<K, J> {
    fn clone(&self) -> Self {
        Worker {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K, J> {
    name: &'static str,
    /// Jobs handed to the runner at once (1 unless batched).
    batch: usize,
    queue: Mutex<Queue<K, J>>,
    /// The thread waits here for jobs.
    wake: Condvar,
    /// [`Worker::wait_idle`] waits here for an empty queue.
    idle: Condvar,
    /// The job runner, until the thread takes it.
    run: Mutex<Option<Job<K, J>>>,
}

struct Queue<K, J> {
    jobs: HashMap<K, J>,
    order: VecDeque<K>,
    busy: bool,
    started: bool,
    stats: Stats,
}

/// What a worker has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs run to completion.
    pub done: u64,
    /// Jobs replaced by a newer one for the same key before they ran.
    pub coalesced: u64,
    /// Jobs waiting or running now.
    pub pending: u64,
}

impl<K, J> Worker<K, J>
where
    K: Eq + Hash + Clone + Send + 'static,
    J: Send + 'static,
{
    /// A worker named `name` (the thread's name) that runs each job with `run`.
    pub fn new(name: &'static str, mut run: impl FnMut(K, J) + Send + 'static) -> Self {
        Self::with_runner(
            name,
            1,
            Box::new(move |jobs: Vec<(K, J)>| {
                for (k, j) in jobs {
                    run(k, j);
                }
            }),
        )
    }

    /// A worker that hands `run` every job waiting (up to 256, in queue order) at
    /// once, for work that is cheaper in groups (one directory fsync for many files).
    pub fn new_batched(name: &'static str, run: impl FnMut(Vec<(K, J)>) + Send + 'static) -> Self {
        Self::with_runner(name, MAX_BATCH, Box::new(run))
    }

    fn with_runner(name: &'static str, batch: usize, run: Job<K, J>) -> Self {
        Worker {
            inner: Arc::new(Inner {
                name,
                batch,
                queue: Mutex::new(Queue {
                    jobs: HashMap::new(),
                    order: VecDeque::new(),
                    busy: false,
                    started: false,
                    stats: Stats::default(),
                }),
                wake: Condvar::new(),
                idle: Condvar::new(),
                run: Mutex::new(Some(run)),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<K, J>> {
        // A job that panicked cannot have left the queue half-updated (jobs run
        // outside the lock): carry on with it.
        self.inner.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `job` for `key`, replacing a job for the same key that has not started.
    /// Never blocks on the job itself.
    pub fn submit(&self, key: K, job: J) {
        let mut q = self.lock();
        if q.jobs.insert(key.clone(), job).is_some() {
            q.stats.coalesced += 1;
        } else {
            q.order.push_back(key);
        }
        if !q.started {
            q.started = true;
            drop(q);
            self.start();
        } else {
            drop(q);
        }
        self.inner.wake.notify_one();
    }

    fn start(&self) {
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name(self.inner.name.to_string())
            // The jobs are small (a file write, a process spawn).
            .stack_size(256 * 1024)
            .spawn(move || thread_main(&inner));
        if let Err(e) = spawned {
            // Without the thread nothing would ever be written: run the queue here,
            // once, and try again at the next job.
            crate::logging::error!(
                "cannot start the {} thread: {e}; doing its work on the event loop",
                self.inner.name
            );
            self.lock().started = false;
            self.drain_here();
        }
    }

    fn drain_here(&self) {
        let Some(mut run) = self.inner.run.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        loop {
            let jobs = take(&mut self.lock(), self.inner.batch);
            if jobs.is_empty() {
                break;
            }
            let n = jobs.len() as u64;
            run(jobs);
            self.lock().stats.done += n;
        }
        if let Ok(mut r) = self.inner.run.lock() {
            *r = Some(run);
        }
    }

    /// Counters for `netbond status`.
    pub fn stats(&self) -> Stats {
        let q = self.lock();
        Stats {
            pending: q.order.len() as u64 + u64::from(q.busy),
            ..q.stats
        }
    }

    /// Block until every job queued so far has run, or `timeout` passed. Returns
    /// whether the queue is empty. Not for the event loop: see [`Worker::flush`].
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut q = self.lock();
        while !q.order.is_empty() || q.busy {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = match self.inner.idle.wait_timeout(q, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// Wait (without blocking the loop) until every job queued so far has run, at most
    /// `timeout`; for a stop, so that what was saved is on disk before the process ends.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let w = self.clone();
        tokio::task::spawn_blocking(move || w.wait_idle(timeout))
            .await
            .unwrap_or(false)
    }
}

/// Up to `max` jobs from the front of the queue.
fn take<K: Eq + Hash, J>(q: &mut Queue<K, J>, max: usize) -> Vec<(K, J)> {
    let mut out = Vec::new();
    while out.len() < max {
        let Some(k) = q.order.pop_front() else { break };
        if let Some(j) = q.jobs.remove(&k) {
            out.push((k, j));
        }
    }
    out
}

fn thread_main<K: Eq + Hash + Clone, J>(inner: &Inner<K, J>) {
    let Some(mut run) = inner.run.lock().ok().and_then(|mut r| r.take()) else {
        return;
    };
    let lock = || inner.queue.lock().unwrap_or_else(|e| e.into_inner());
    let mut q = lock();
    loop {
        let jobs = take(&mut q, inner.batch);
        match jobs.len() as u64 {
            n @ 1.. => {
                q.busy = true;
                drop(q);
                run(jobs);
                q = lock();
                q.busy = false;
                q.stats.done += n;
            }
            0 => {
                inner.idle.notify_all();
                q = match inner.wake.wait(q) {
                    Ok(g) => g,
                    Err(e) => e.into_inner(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_off_the_calling_thread_newest_wins() {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g2 = gate.clone();
        let caller = std::thread::current().id();
        let w = Worker::new("test-worker", move |k: &'static str, v: u32| {
            let _g = g2.lock().unwrap();
            tx.send((k, v, std::thread::current().id() != caller))
                .unwrap();
        });
        // The first job blocks the thread (gate held); the next ones queue up.
        w.submit("a", 1);
        // Wait until the thread has taken a=1 (a fixed sleep is not enough on a loaded
        // machine: a=2 would then replace a=1 before it ran).
        let end = Instant::now() + Duration::from_secs(10);
        while !w.lock().busy {
            assert!(Instant::now() < end, "the worker thread never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        w.submit("b", 1);
        w.submit("a", 2);
        w.submit("a", 3); // replaces a=2
        w.submit("b", 2); // replaces b=1
        assert_eq!(w.stats().coalesced, 2);
        assert!(!w.wait_idle(Duration::from_millis(20)), "still blocked");
        drop(held);
        assert!(w.wait_idle(Duration::from_secs(5)));
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            got,
            vec![("a", 1, true), ("b", 2, true), ("a", 3, true)],
            "order of first queueing, newest job per key, never on the caller's thread"
        );
        let s = w.stats();
        assert_eq!((s.done, s.pending), (3, 0));
    }
}
