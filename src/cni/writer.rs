//! The attachments' records written off the event loop. Every attachment runs on the
//! daemon's one thread, so an fsync there would hold up every other attachment's DHCP
//! exchange (16 ADDs at once each waited for the others' saves). The loop queues a
//! record here and goes on; the writer thread (`state/worker.rs`, started at the first
//! job) writes a batch of records, each file fsynced, then the directory once. Per
//! attachment the newest job wins. ADD and DEL still answer only once their record is
//! on disk: only the attachment that asked waits, not the loop.

use super::store::{Key, Record, Store};
use crate::logging::{debug, warn};
use crate::state::worker::Worker;
use std::time::Duration;
use tokio::sync::oneshot;

/// The longest ADD or DEL waits for its record before answering anyway: a hung disk
/// must not hold the container runtime.
const DURABLE_WAIT: Duration = Duration::from_secs(2);

/// One record's job.
pub enum Job {
    /// Write the record; tell the sender once it is durable.
    Save(Box<Record>, oneshot::Sender<()>),
    /// Delete it; tell the sender once that is durable.
    Remove(oneshot::Sender<()>),
}

/// The record writer (cheap to clone).
#[derive(Clone)]
pub struct Writer {
    worker: Worker<Key, Job>,
}

impl Writer {
    /// A writer for `store`.
    pub fn new(store: Store) -> Self {
        let worker = Worker::new_batched("netbond-cni-records", move |batch| {
            write_batch(&store, batch)
        });
        Writer { worker }
    }

    /// Queue a save of `rec`; the receiver hears once it is on disk (or failed, which
    /// is logged), or is dropped when a newer job for the same attachment replaced it.
    pub fn save(&self, rec: &Record) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.worker
            .submit(rec.key.clone(), Job::Save(Box::new(rec.clone()), tx));
        rx
    }

    /// Queue the removal of `key`'s record.
    pub fn remove(&self, key: &Key) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.worker.submit(key.clone(), Job::Remove(tx));
        rx
    }

    /// Wait (this task only) until a queued job is durable, at most [`DURABLE_WAIT`].
    pub async fn durable(rx: oneshot::Receiver<()>) {
        if tokio::time::timeout(DURABLE_WAIT, rx).await.is_err() {
            debug!(
                "cni: a record is not on disk after {} s; answering anyway",
                DURABLE_WAIT.as_secs()
            );
        }
    }

    /// At stop: wait until every queued record is on disk (at most `timeout`).
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout).await
    }
}

/// Each file written and fsynced, then one directory fsync for all their renames and
/// removals; only then is anyone told.
fn write_batch(store: &Store, batch: Vec<(Key, Job)>) {
    let mut done = Vec::with_capacity(batch.len());
    let mut wrote = false;
    for (key, job) in batch {
        let (res, what, tx) = match job {
            Job::Save(rec, tx) => (store.save_unsynced(&rec), "save", tx),
            Job::Remove(tx) => (store.remove_unsynced(&key), "remove", tx),
        };
        match res {
            Ok(()) => wrote = true,
            Err(e) => warn!(
                "cni: {key}: could not {what} the record in {}: {e}; a restart will not know it",
                store.dir().display()
            ),
        }
        done.push(tx);
    }
    if wrote {
        if let Err(e) = store.sync_dir() {
            warn!(
                "cni: could not sync {}: {e}; the last records may not survive a crash",
                store.dir().display()
            );
        }
    }
    for tx in done {
        let _ = tx.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::attach::Settings;
    use crate::cni::config::{Broadcast, Ipv6Mode};

    #[tokio::test(flavor = "current_thread")]
    async fn records_are_written_and_removed_off_the_loop() {
        let dir = std::env::temp_dir().join(format!("netbond-cni-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let w = Writer::new(store.clone());
        let key = |c: &str| Key {
            network: "lan".into(),
            container_id: c.into(),
            ifname: "eth0".into(),
        };
        let spec = Settings {
            cni_version: "1.0.0".into(),
            ipv6: Ipv6Mode::None,
            client_id: vec![1],
            iaid: 1,
            hostname: None,
            timeout: 30,
            broadcast: Broadcast::Auto,
            request: vec![],
        };
        let a = Record::new(key("a"), "/run/netns/a".into(), spec.clone());
        let b = Record::new(key("b"), "/run/netns/b".into(), spec);
        let (ra, rb) = (w.save(&a), w.save(&b));
        Writer::durable(ra).await;
        Writer::durable(rb).await;
        let keys: Vec<Key> = store.load_all().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![key("a"), key("b")]);
        Writer::durable(w.remove(&key("a"))).await;
        let keys: Vec<Key> = store.load_all().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![key("b")]);
        assert!(w.flush(Duration::from_secs(5)).await);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
