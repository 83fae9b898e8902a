//! DNS configuration: rendering and atomically writing `resolv.conf`, and restoring
//! the file found at start when netbond stops.
//!
//! Everything that ends up in the file is validated (in `content.rs`), whatever the
//! engines already checked: a DHCP server is untrusted input, and a newline in a domain
//! name would let it inject arbitrary resolver options (`options ndots:15`, extra
//! nameservers).
//!
//! Backends: a plain file, or systemd-resolved through its `resolvectl` command (per
//! link). Both run on the DNS writer thread ([`DnsWriter`]), never on the event loop;
//! `resolvectl` is killed after [`RESOLVECTL_TIMEOUT`]. With `resolv_conf = "none"`
//! DNS is left alone.

mod content;

use crate::state::worker::Worker;
pub use content::{
    nameservers, render, search_domains, DnsState, HEADER, MAX_NAMESERVERS, MAX_SEARCH,
};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Replace `path` with `content` atomically, mode 0644: readers see the old file or
/// the new one, never a partial one, even across a crash (temp file in the same
/// directory, fsync, rename, fsync of the directory).
pub fn write_atomic(path: &Path, content: &str) -> io::Result<()> {
    write_bytes(path, content.as_bytes())
}

/// [`write_atomic`] for bytes (the original file put back on stop may not be UTF-8).
fn write_bytes(path: &Path, content: &[u8]) -> io::Result<()> {
    match crate::state::atomic::write_file_atomic(path, content, 0o644) {
        Ok(()) => Ok(()),
        // The directory is read-only but the file itself may be writable (systemd's
        // ProtectSystem=strict with ReadWritePaths=/etc/resolv.conf bind-mounts just the
        // file; a rename over a mount point is EBUSY): rewrite it in place instead.
        Err(e)
            if path.exists()
                && matches!(
                    e.kind(),
                    io::ErrorKind::ReadOnlyFilesystem
                        | io::ErrorKind::ResourceBusy
                        | io::ErrorKind::PermissionDenied
                ) =>
        {
            write_in_place(path, content).map_err(|e2| {
                io::Error::new(
                    e2.kind(),
                    format!("{e}; rewriting it in place failed too: {e2}"),
                )
            })
        }
        Err(e) => Err(e),
    }
}

fn write_in_place(path: &Path, content: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

/// What was at the path before netbond first wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Original {
    /// Nothing: restoring removes our file.
    Missing,
    /// A regular file with these contents.
    File(Vec<u8>),
    /// A symbolic link (e.g. to systemd-resolved's stub file) with this target; it is
    /// recreated as a link, not as a copy of what it pointed to.
    Symlink(PathBuf),
}

/// A resolv.conf netbond manages and puts back as it found it on stop.
#[derive(Debug)]
pub struct ResolvConf {
    path: PathBuf,
    /// `None` until the first write: the original is captured as late as possible so
    /// that whatever was configured before netbond actually needed DNS is preserved.
    original: Option<Original>,
    /// What netbond last wrote, to skip rewriting identical content.
    last: Option<String>,
    /// Where the original is kept between runs (in the state dir): a stop that keeps
    /// the network leaves netbond's file in place, and the next run must still know
    /// what to put back on a releasing stop.
    saved: Option<PathBuf>,
}

/// The original as kept in the state dir, with the path it belongs to.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedOriginal {
    path: PathBuf,
    original: Original,
}

impl ResolvConf {
    /// Manage the file at `path`. Nothing is read or written yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ResolvConf {
            path: path.into(),
            original: None,
            last: None,
            saved: None,
        }
    }

    /// Keep the original in `saved` too, so that it survives a restart of netbond.
    pub fn keeping_original_in(mut self, saved: impl Into<PathBuf>) -> Self {
        self.saved = Some(saved.into());
        self
    }

    /// The original a previous run saved, when the file is still the one netbond wrote.
    fn saved_original(&self, current: &Original) -> Option<Original> {
        let ours = matches!(current, Original::File(b) if b.starts_with(HEADER.as_bytes()));
        if !ours {
            // Someone else wrote the file since: that is the original now.
            return None;
        }
        let text = fs::read(self.saved.as_ref()?).ok()?;
        let saved: SavedOriginal = serde_json::from_slice(&text).ok()?;
        (saved.path == self.path).then_some(saved.original)
    }

    fn capture_original(&mut self) -> io::Result<()> {
        if self.original.is_some() {
            return Ok(());
        }
        let orig = match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Original::Missing,
            Err(e) => return Err(e),
            Ok(m) if m.file_type().is_symlink() => Original::Symlink(fs::read_link(&self.path)?),
            Ok(_) => Original::File(fs::read(&self.path)?),
        };
        let orig = match self.saved_original(&orig) {
            Some(saved) => saved,
            None => {
                if let Some(saved) = &self.saved {
                    let keep = SavedOriginal {
                        path: self.path.clone(),
                        original: orig.clone(),
                    };
                    let json = serde_json::to_vec(&keep).map_err(io::Error::other)?;
                    crate::state::atomic::write_file_atomic(saved, &json, 0o600)?;
                }
                orig
            }
        };
        self.original = Some(orig);
        Ok(())
    }

    /// Write the file for `state`. Returns `Ok(false)` when the content is what netbond
    /// last wrote (nothing is written).
    pub fn update(&mut self, state: &DnsState) -> io::Result<bool> {
        let content = render(state);
        if self.last.as_deref() == Some(content.as_str()) {
            return Ok(false);
        }
        self.capture_original()?;
        write_atomic(&self.path, &content)?;
        self.last = Some(content);
        Ok(true)
    }

    /// Put back what was there before the first [`update`](Self::update). Does nothing
    /// if netbond never wrote the file. Safe to call twice.
    pub fn restore(&mut self) -> io::Result<()> {
        let Some(orig) = self.original.take() else {
            return Ok(());
        };
        self.last = None;
        if let Some(saved) = &self.saved {
            let _ = fs::remove_file(saved);
        }
        match orig {
            Original::Missing => match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            // Like a write: in place when only the file is writable (the unit's
            // ReadWritePaths=/etc/resolv.conf under ProtectSystem=strict).
            Original::File(bytes) => write_bytes(&self.path, &bytes),
            Original::Symlink(target) => {
                crate::state::atomic::replace_with_symlink(&self.path, &target)
            }
        }
    }
}

/// Where DNS settings go: a resolv.conf file, or systemd-resolved through `resolvectl`
/// (per-link servers and domains; `resolvectl revert` on stop). Both get only the
/// validated servers and domains of [`nameservers`] and [`search_domains`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DnsTarget {
    /// Write this file; keep its original also in the second path (the state dir), so
    /// that a stop that keeps the network and a later releasing stop still put back the
    /// file from before netbond.
    File(PathBuf, Option<PathBuf>),
    /// Hand the data to systemd-resolved for this link.
    Resolved(String),
}

impl DnsTarget {
    /// Where the data goes, for messages.
    pub fn describe(&self) -> String {
        match self {
            DnsTarget::File(p, _) => p.display().to_string(),
            DnsTarget::Resolved(ifname) => format!("systemd-resolved (link {ifname})"),
        }
    }
}

/// One queued DNS change.
enum DnsJob {
    /// Apply this state.
    Set(DnsState),
    /// Put back what was there before netbond (restore the file, revert the link).
    Restore,
}

/// The longest a `resolvectl` run may take before it is killed: systemd-resolved
/// answers in milliseconds; one that does not is hung, and DNS is then left as it was
/// (retried at the next change) rather than waited for.
pub const RESOLVECTL_TIMEOUT: Duration = Duration::from_secs(5);

/// Run `resolvectl ARGS` (no shell; every argument is one validated address, domain or
/// the configured interface name), killed after [`RESOLVECTL_TIMEOUT`].
fn resolvectl(args: &[&str]) -> io::Result<()> {
    run_bounded("resolvectl", args, RESOLVECTL_TIMEOUT)
}

/// Run `prog ARGS` without a shell, killed after `timeout`; its stderr is the error.
fn run_bounded(prog: &str, args: &[&str], timeout: Duration) -> io::Result<()> {
    let what = || format!("{prog} {}", args.join(" "));
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", what())))?;
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not finish within {} ms (is systemd-resolved hung?); killed it",
                    what(),
                    timeout.as_millis()
                ),
            ));
        }
        // Only while resolvectl runs, on the DNS writer thread.
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.take(4096).read_to_string(&mut err);
    }
    Err(io::Error::other(format!("{}: {}", what(), err.trim())))
}

/// The servers and domains as handed to systemd-resolved.
type Handed = (Vec<String>, Vec<String>);

/// What the DNS writer thread keeps between jobs.
#[derive(Default)]
struct DnsBackends {
    files: HashMap<PathBuf, ResolvConf>,
    /// Per link, what was last handed over (to skip no-op runs and to know whether a
    /// revert is due).
    links: HashMap<String, Handed>,
}

impl DnsBackends {
    fn run(&mut self, target: &DnsTarget, job: DnsJob) -> io::Result<()> {
        match (target, job) {
            (DnsTarget::File(p, saved), DnsJob::Set(state)) => self
                .files
                .entry(p.clone())
                .or_insert_with(|| match saved {
                    Some(s) => ResolvConf::new(p).keeping_original_in(s),
                    None => ResolvConf::new(p),
                })
                .update(&state)
                .map(|_| ()),
            (DnsTarget::File(p, _), DnsJob::Restore) => match self.files.get_mut(p) {
                Some(r) => r.restore(),
                None => Ok(()),
            },
            (DnsTarget::Resolved(ifname), DnsJob::Set(state)) => {
                let servers: Vec<String> = nameservers(&state)
                    .into_iter()
                    .map(|s| s.split('%').next().unwrap_or_default().to_string())
                    .collect();
                let domains = search_domains(&state);
                let now = (servers, domains);
                if self.links.get(ifname) == Some(&now) {
                    return Ok(());
                }
                let mut a = vec!["dns", ifname.as_str()];
                a.extend(now.0.iter().map(String::as_str));
                resolvectl(&a)?;
                let mut a = vec!["domain", ifname.as_str()];
                a.extend(now.1.iter().map(String::as_str));
                resolvectl(&a)?;
                self.links.insert(ifname.clone(), now);
                Ok(())
            }
            (DnsTarget::Resolved(ifname), DnsJob::Restore) => {
                if self.links.remove(ifname).is_some() {
                    resolvectl(&["revert", ifname.as_str()])?;
                }
                Ok(())
            }
        }
    }
}

/// The DNS writer: resolv.conf rewrites (with their fsyncs) and `resolvectl` runs,
/// on a background thread, coalesced per file or link (the newest state wins), so
/// neither a slow disk nor a hung systemd-resolved stalls DHCP. One per daemon.
#[derive(Clone)]
pub struct DnsWriter {
    worker: Worker<DnsTarget, DnsJob>,
}

impl Default for DnsWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DnsWriter {
    /// A writer (its thread starts at the first job).
    pub fn new() -> Self {
        let mut b = DnsBackends::default();
        DnsWriter {
            worker: Worker::new("netbond-dns", move |target: DnsTarget, job| {
                if let Err(e) = b.run(&target, job) {
                    crate::logging::warn!(
                        "could not update DNS in {}: {e}; DNS settings are not applied (will retry on the next change)",
                        target.describe()
                    );
                }
            }),
        }
    }

    /// Counters for `netbond status`.
    pub fn stats(&self) -> crate::state::worker::Stats {
        self.worker.stats()
    }

    /// Wait until every queued change is applied (at most `timeout`), without blocking
    /// the loop: at stop, so the original resolv.conf is back before the process ends.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout).await
    }
}

/// One interface's handle on where its DNS goes.
pub struct DnsSink {
    target: DnsTarget,
    writer: DnsWriter,
}

impl DnsSink {
    /// DNS for `target`, written by `writer`.
    pub fn new(target: DnsTarget, writer: DnsWriter) -> Self {
        DnsSink { target, writer }
    }

    /// Queue `state` to be applied (errors are logged by the writer thread).
    pub fn update(&mut self, state: &DnsState) {
        self.writer
            .worker
            .submit(self.target.clone(), DnsJob::Set(state.clone()));
    }

    /// Queue the undo: restore the original file, or revert the link in
    /// systemd-resolved.
    pub fn restore(&mut self) {
        self.writer
            .worker
            .submit(self.target.clone(), DnsJob::Restore);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tmpdir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "netbond-resolv-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    #[test]
    fn a_hung_helper_is_killed_at_the_timeout() {
        let t = Instant::now();
        let e = run_bounded("sleep", &["30"], Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(run_bounded("true", &[], Duration::from_secs(5)).is_ok());
        let e = run_bounded(
            "sh",
            &["-c", "echo no such link >&2; exit 1"],
            RESOLVECTL_TIMEOUT,
        )
        .unwrap_err();
        assert!(e.to_string().ends_with(": no such link"), "{e}");
    }

    #[test]
    fn write_atomic_mode_and_no_temp_left() {
        let d = tmpdir("atomic");
        let p = d.join("resolv.conf");
        write_atomic(&p, "a\n").unwrap();
        write_atomic(&p, "b\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "b\n");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn update_skips_unchanged_and_restore_puts_original_back() {
        let d = tmpdir("restore");
        let p = d.join("resolv.conf");
        fs::write(&p, "nameserver 9.9.9.9\n").unwrap();
        let mut rc = ResolvConf::new(&p);
        let st = DnsState {
            v4_servers: vec![v4("192.0.2.1")],
            ..Default::default()
        };
        assert!(rc.update(&st).unwrap());
        assert!(!rc.update(&st).unwrap());
        // Someone else edits the file meanwhile: the original stays the first one.
        let st2 = DnsState {
            v4_servers: vec![v4("192.0.2.2")],
            ..Default::default()
        };
        assert!(rc.update(&st2).unwrap());
        assert!(fs::read_to_string(&p).unwrap().contains("192.0.2.2"));
        rc.restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "nameserver 9.9.9.9\n");
        rc.restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "nameserver 9.9.9.9\n");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_original_survives_a_restart_that_kept_the_network() {
        let d = tmpdir("kept");
        let p = d.join("resolv.conf");
        let saved = d.join("resolv.conf.original");
        fs::write(&p, "nameserver 9.9.9.9\n").unwrap();
        let st = DnsState {
            v4_servers: vec![v4("192.0.2.1")],
            ..Default::default()
        };
        // First run: writes, then stops keeping the network (no restore).
        let mut first = ResolvConf::new(&p).keeping_original_in(&saved);
        first.update(&st).unwrap();
        drop(first);
        // Second run: finds its own file in place; a releasing stop puts back the
        // file from before the first run, not the first run's.
        let mut second = ResolvConf::new(&p).keeping_original_in(&saved);
        let st2 = DnsState {
            v4_servers: vec![v4("192.0.2.2")],
            ..Default::default()
        };
        second.update(&st2).unwrap();
        second.restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "nameserver 9.9.9.9\n");
        assert!(!saved.exists(), "the saved original outlived the restore");
        // A file someone else wrote meanwhile is the original, not the saved one.
        let mut third = ResolvConf::new(&p).keeping_original_in(&saved);
        third.update(&st).unwrap();
        drop(third);
        fs::write(&p, "nameserver 8.8.4.4\n").unwrap();
        let mut fourth = ResolvConf::new(&p).keeping_original_in(&saved);
        fourth.update(&st).unwrap();
        fourth.restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "nameserver 8.8.4.4\n");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn restore_removes_file_that_did_not_exist_and_keeps_symlinks() {
        let d = tmpdir("missing");
        let p = d.join("resolv.conf");
        let mut rc = ResolvConf::new(&p);
        rc.restore().unwrap(); // never written: no-op
        rc.update(&DnsState::default()).unwrap();
        assert!(p.exists());
        rc.restore().unwrap();
        assert!(!p.exists());

        let target = d.join("stub-resolv.conf");
        fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
        symlink(&target, &p).unwrap();
        let mut rc = ResolvConf::new(&p);
        rc.update(&DnsState::default()).unwrap();
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(
            fs::read_to_string(&target).unwrap(),
            "nameserver 127.0.0.53\n"
        );
        rc.restore().unwrap();
        assert_eq!(fs::read_link(&p).unwrap(), target);
        fs::remove_dir_all(&d).unwrap();
    }
}
