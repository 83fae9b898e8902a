//! Lease saves and removals off the event loop: the daemon queues them here and goes
//! on; a writer thread (`worker.rs`) writes them in batches with one directory fsync
//! per batch. Kept apart from `store.rs` (the files themselves), which the fuzz crate
//! builds alone.

use crate::state::store::{SavedLease4, SavedLease6, Store};
use std::io;
use tokio::sync::oneshot;

/// Write a batch of lease jobs: each file written and fsynced, then one fsync of the
/// directory for all their renames (group commit: under a burst of leases the disk does
/// one directory flush per batch instead of one per lease). A job counts as done only
/// after that directory fsync.
fn write_batch(store: &Store, batch: Vec<((u8, String), LeaseJob)>) {
    let mut written = Vec::with_capacity(batch.len());
    // Those waiting for their save are told after the directory's fsync: only then
    // does a save count as done.
    let mut durable = Vec::new();
    for ((family, ifname), job) in batch {
        let fam = if family == 4 { "dhcp4" } else { "dhcp6" };
        let (res, save) = match job {
            LeaseJob::Save4(l, d) => {
                durable.extend(d);
                (store.save_unsynced("4", &ifname, &l), true)
            }
            LeaseJob::Save6(l, d) => {
                durable.extend(d);
                (store.save_unsynced("6", &ifname, &l), true)
            }
            LeaseJob::Remove => {
                let f = if family == 4 { "4" } else { "6" };
                (store.remove_unsynced(f, &ifname), false)
            }
            LeaseJob::OriginalMtu(m) => {
                if let Err(e) = store.save_original_mtu(&ifname, m) {
                    crate::logging::warn!(
                        "dhcp4: {ifname}: could not keep the MTU to restore in {}: {e}; a restart will not know it",
                        store.dir().display()
                    );
                }
                continue;
            }
        };
        match res {
            Ok(()) => written.push((fam, ifname, save)),
            Err(e) => warn_lease(store, fam, &ifname, save, &e),
        }
    }
    if !written.is_empty() {
        if let Err(e) = store.sync_dir() {
            for (fam, ifname, save) in &written {
                warn_lease(store, fam, ifname, *save, &e);
            }
        }
    }
    for d in durable {
        let _ = d.send(());
    }
}

fn warn_lease(store: &Store, fam: &str, ifname: &str, save: bool, e: &io::Error) {
    if save {
        crate::logging::warn!(
            "{fam}: {ifname}: could not save the lease in {}: {e}; it will not survive a restart",
            store.dir().display()
        );
    } else {
        crate::logging::warn!(
            "{fam}: {ifname}: could not remove the saved lease in {}: {e}",
            store.dir().display()
        );
    }
}

/// What the [`LeaseWriter`] does with one lease file.
pub enum LeaseJob {
    /// Write this DHCPv4 lease (and say so on the channel, when there is one).
    Save4(SavedLease4, Option<Durable>),
    /// Write this DHCPv6 lease (and say so on the channel, when there is one).
    Save6(SavedLease6, Option<Durable>),
    /// Delete the file.
    Remove,
    /// Keep (Some) or forget (None) the MTU from before option 26.
    OriginalMtu(Option<u32>),
}

/// Told once a save is on disk (or failed); dropped unsent when a newer save for the
/// same file replaced it before it ran.
pub type Durable = oneshot::Sender<()>;

/// The longest an interface waits for its lease to be on disk before configuring it
/// anyway: a hung disk must not keep the address off the interface.
const DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Lease saves and removals, done on a background thread: the event loop queues them
/// and goes on, so an fsync never delays another interface's packets. Per file the
/// newest job wins (a lease renewed twice while the disk was busy is written once).
/// A save counts as done, as before, only once the file and its directory are fsynced;
/// [`LeaseWriter::flush`] waits for that at stop.
#[derive(Clone)]
pub struct LeaseWriter {
    worker: crate::state::worker::Worker<(u8, String), LeaseJob>,
}

impl LeaseWriter {
    /// A writer for `store` (its thread starts at the first job).
    pub fn new(store: Store) -> Self {
        let worker = crate::state::worker::Worker::new_batched(
            "netbond-leases",
            move |batch: Vec<((u8, String), LeaseJob)>| write_batch(&store, batch),
        );
        LeaseWriter { worker }
    }

    /// Queue a save of `ifname`'s DHCPv4 lease; the receiver hears once it is on disk.
    pub fn queue4(&self, ifname: &str, lease: SavedLease4) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.worker
            .submit((4, ifname.to_string()), LeaseJob::Save4(lease, Some(tx)));
        rx
    }

    /// Queue a save of `ifname`'s DHCPv6 lease; the receiver hears once it is on disk.
    pub fn queue6(&self, ifname: &str, lease: SavedLease6) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.worker
            .submit((6, ifname.to_string()), LeaseJob::Save6(lease, Some(tx)));
        rx
    }

    /// Save `ifname`'s DHCPv4 lease on the writer thread and wait (without blocking
    /// the loop: only this interface's task waits) until it is on disk, so that a crash
    /// right after the address is configured still finds the lease on restart.
    pub async fn save4(&self, ifname: &str, lease: SavedLease4) {
        Self::durable(self.queue4(ifname, lease)).await;
    }

    /// [`LeaseWriter::save4`] for a DHCPv6 lease.
    pub async fn save6(&self, ifname: &str, lease: SavedLease6) {
        Self::durable(self.queue6(ifname, lease)).await;
    }

    /// Wait for a save's signal, at most [`DURABLE_WAIT`]. A dropped sender means a
    /// newer save replaced it: that one is what counts, and the caller goes on.
    async fn durable(rx: oneshot::Receiver<()>) {
        if tokio::time::timeout(DURABLE_WAIT, rx).await.is_err() {
            crate::logging::debug!(
                "lease save not on disk after {} s; configuring anyway",
                DURABLE_WAIT.as_secs()
            );
        }
    }

    /// Queue the removal of `ifname`'s lease of `family` (4 or 6).
    pub fn remove(&self, family: u8, ifname: &str) {
        self.worker
            .submit((family, ifname.to_string()), LeaseJob::Remove);
    }

    /// Queue keeping (Some) or forgetting (None) `ifname`'s MTU from before option 26
    /// (key 26: its own file, beside the lease files).
    pub fn original_mtu(&self, ifname: &str, mtu: Option<u32>) {
        self.worker
            .submit((26, ifname.to_string()), LeaseJob::OriginalMtu(mtu));
    }

    /// Counters for `netbond status`.
    pub fn stats(&self) -> crate::state::worker::Stats {
        self.worker.stats()
    }

    /// Wait until every queued job is on disk (at most `timeout`), without blocking
    /// the loop.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        self.worker.flush(timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::atomic::{mark_loop_thread, writes_on_loop};
    use crate::state::store::tests::{lease4, lease6, tmpdir};
    use std::fs;

    #[test]
    fn lease_writer_saves_off_the_loop_newest_wins() {
        let d = tmpdir("writer");
        let s = Store::open(&d).unwrap();
        let w = LeaseWriter::new(s.clone());
        let (w2, s2) = (w.clone(), s.clone());
        // This thread plays the event loop (the only test that marks one).
        let direct = std::thread::spawn(move || {
            mark_loop_thread();
            let before = writes_on_loop();
            for secs in [100, 200, 300] {
                let mut l = lease4();
                l.acquired_unix = secs;
                drop(w2.queue4("eth0", l));
            }
            drop(w2.queue6("eth0", lease6()));
            w2.remove(6, "eth0");
            assert!(w2.worker.wait_idle(std::time::Duration::from_secs(10)));
            let queued = writes_on_loop() - before;
            // A direct write here is what the counter exists to catch.
            s2.save_lease4("eth1", &lease4()).unwrap();
            (queued, writes_on_loop() - before)
        })
        .join()
        .unwrap();
        assert_eq!(direct, (0, 1), "queued saves never ran on the loop thread");
        // Durable and newest: the last of the three saves; the v6 save then removal.
        assert_eq!(s.load_lease4("eth0").unwrap().acquired_unix, 300);
        assert_eq!(s.load_lease6("eth0"), None);
        let st = w.stats();
        assert_eq!(st.pending, 0);
        assert_eq!(st.done + st.coalesced, 5, "{st:?}");
        fs::remove_dir_all(&d).unwrap();
    }
}
