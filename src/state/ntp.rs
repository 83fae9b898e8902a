//! NTP servers learned by DHCP (v4 option 42, v6 option 56/31), per interface, handed
//! to the time daemons:
//!
//! - chrony: `<[ntp] chrony_dir>/<interface>.sources` (Debian's chrony.conf has
//!   `sourcedir /run/chrony-dhcp`), then `chronyc reload sources` when chronyc is
//!   installed;
//! - systemd-timesyncd: a runtime drop-in `<[ntp] timesyncd_dir>/netbond-<interface>.conf`
//!   with `[Time] NTP=...` (timesyncd reads `/run/systemd/timesyncd.conf.d/*.conf` at
//!   start and appends every `NTP=` it finds), then `systemctl --no-block try-restart
//!   systemd-timesyncd.service`, which restarts it only if it runs, as Debian's own
//!   dhclient exit hook for timesyncd does. timesyncd only reads its configuration at
//!   start, and its D-Bus alternative (`timedatectl ntp-servers`) goes through
//!   systemd-networkd, which does not manage these links.
//!
//! Each file is removed when no lease names a server. Files are written by one task in
//! order, off the event loop (the writes on the blocking pool, the commands as child
//! processes awaited asynchronously, bounded by a timeout). Each change is also an
//! `ntp-changed` event.

use crate::logging::{debug, info, warn};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where chronyc usually is (it is not run when absent).
const CHRONYC: &str = "/usr/bin/chronyc";
/// systemctl, run only when systemd is the init system (`/run/systemd/system`).
const SYSTEMCTL: &str = "/usr/bin/systemctl";

/// Which time daemon a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Chrony,
    Timesyncd,
}

/// A file to write (`Some`) or remove (`None`).
struct Job {
    sink: Sink,
    path: PathBuf,
    body: Option<String>,
}

#[derive(Default)]
struct Ntp {
    /// The configured directories (the ones not set to "none").
    dirs: Vec<(Sink, PathBuf)>,
    /// Per interface: (from DHCPv4, from DHCPv6).
    servers: HashMap<String, (Vec<IpAddr>, Vec<IpAddr>)>,
    tx: Option<mpsc::UnboundedSender<Job>>,
}

static NTP: Mutex<Option<Ntp>> = Mutex::new(None);

/// Start (once, at daemon start): the directories as configured (`"none"`: no file).
pub fn configure(chrony_dir: &str, timesyncd_dir: &str) {
    let dirs: Vec<(Sink, PathBuf)> = [(Sink::Chrony, chrony_dir), (Sink::Timesyncd, timesyncd_dir)]
        .into_iter()
        .filter(|(_, d)| !matches!(*d, "" | "none"))
        .map(|(s, d)| (s, PathBuf::from(d)))
        .collect();
    let tx = (!dirs.is_empty()).then(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(rx));
        tx
    });
    *NTP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Ntp {
        dirs,
        servers: HashMap::new(),
        tx,
    });
}

/// The servers `family` (4 or 6) now gives `iface` (empty: none, the lease is gone).
pub fn set<A: Into<IpAddr> + Copy>(iface: &str, family: u8, new: &[A]) {
    let new: Vec<IpAddr> = new.iter().map(|a| (*a).into()).collect();
    let mut g = NTP.lock().unwrap_or_else(|e| e.into_inner());
    let Some(n) = g.as_mut() else { return };
    let entry = n.servers.entry(iface.to_string()).or_default();
    let before = merged(entry);
    if family == 4 {
        entry.0 = new;
    } else {
        entry.1 = new;
    }
    let after = merged(entry);
    if after == before {
        return;
    }
    if let Some(tx) = &n.tx {
        for (sink, dir) in &n.dirs {
            let (path, body) = match sink {
                Sink::Chrony => (dir.join(format!("{iface}.sources")), sources(iface, &after)),
                Sink::Timesyncd => (
                    dir.join(format!("netbond-{iface}.conf")),
                    timesyncd_dropin(iface, &after),
                ),
            };
            let body = (!after.is_empty()).then_some(body);
            let _ = tx.send(Job {
                sink: *sink,
                path,
                body,
            });
        }
    }
    drop(g);
    let list: Vec<String> = after.iter().map(ToString::to_string).collect();
    crate::daemon::events::emit(
        "ntp-changed",
        Some(iface),
        serde_json::json!({ "servers": list }),
    );
}

/// `family`'s lease on `iface` is gone: it names no server any more.
pub fn clear(iface: &str, family: u8) {
    set::<IpAddr>(iface, family, &[]);
}

fn merged(e: &(Vec<IpAddr>, Vec<IpAddr>)) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for a in e.0.iter().chain(e.1.iter()) {
        if !out.contains(a) {
            out.push(*a);
        }
    }
    out
}

/// The file chrony reads: one `server` line per address.
fn sources(iface: &str, servers: &[IpAddr]) -> String {
    let mut s = format!(
        "# Written by netbond: NTP servers from DHCP on {iface}. Removed when the lease goes.\n"
    );
    for a in servers {
        s.push_str(&format!("server {a} iburst\n"));
    }
    s
}

/// The drop-in timesyncd reads: every server on one `NTP=` line.
fn timesyncd_dropin(iface: &str, servers: &[IpAddr]) -> String {
    let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
    format!(
        "# Written by netbond: NTP servers from DHCP on {iface}. Removed when the lease goes.\n\
         [Time]\nNTP={}\n",
        list.join(" ")
    )
}

async fn writer(mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(Job { sink, path, body }) = rx.recv().await {
        let p = path.clone();
        let res = tokio::task::spawn_blocking(move || apply(sink, &p, body.as_deref()))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match (res, sink) {
            (Ok(true), Sink::Chrony) => {
                info!("ntp: updated {}", path.display());
                if Path::new(CHRONYC).exists() {
                    run_bounded(CHRONYC, &["reload", "sources"]).await;
                }
            }
            (Ok(true), Sink::Timesyncd) => {
                info!("ntp: updated {}", path.display());
                // Only where systemd is the init system (sd_booted's test).
                if Path::new("/run/systemd/system").is_dir() && Path::new(SYSTEMCTL).exists() {
                    // --no-block: queue the job, never wait for timesyncd to stop.
                    let args = ["--no-block", "try-restart", "systemd-timesyncd.service"];
                    run_bounded(SYSTEMCTL, &args).await;
                }
            }
            (Ok(false), _) => {}
            (Err(e), Sink::Chrony) => warn!(
                "ntp: cannot update {}: {e}; chrony does not get these servers (check [ntp] chrony_dir)",
                path.display()
            ),
            (Err(e), Sink::Timesyncd) => warn!(
                "ntp: cannot update {}: {e}; systemd-timesyncd does not get these servers \
                 (check [ntp] timesyncd_dir, or set it to \"none\")",
                path.display()
            ),
        }
    }
}

/// Write (atomically) or remove; `Ok(false)` when there was nothing to do. chrony's
/// directory is made as needed; timesyncd's only when its parent exists (`/run/systemd`
/// is there only on a systemd host: elsewhere nothing is written).
fn apply(sink: Sink, path: &Path, body: Option<&str>) -> std::io::Result<bool> {
    match body {
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Some(text) => {
            if let Some(dir) = path.parent() {
                match sink {
                    Sink::Chrony => std::fs::create_dir_all(dir)?,
                    Sink::Timesyncd if dir.is_dir() => {}
                    Sink::Timesyncd if dir.parent().is_some_and(Path::is_dir) => {
                        std::fs::create_dir(dir)?
                    }
                    Sink::Timesyncd => {
                        debug!("ntp: no {}: not a systemd host", dir.display());
                        return Ok(false);
                    }
                }
            }
            // The temporary names end in neither `.sources` nor `.conf`: the time
            // daemons never read them.
            crate::state::atomic::write_file_atomic(path, text.as_bytes(), 0o644)?;
            Ok(true)
        }
    }
}

/// Run `program args` with an empty environment, at most 5 s; the outcome is logged at
/// debug level (a time daemon that is not running is not netbond's error).
async fn run_bounded(program: &str, args: &[&str]) {
    let run = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let what = format!("{program} {}", args.join(" "));
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(o)) if o.status.success() => debug!("ntp: {what}: done"),
        Ok(Ok(o)) => debug!(
            "ntp: {what}: {} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(Err(e)) => debug!("ntp: {what}: {e}"),
        Err(_) => debug!("ntp: {what}: no answer within 5 s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sources_file_has_one_server_line_each() {
        let s = super::sources(
            "eth0",
            &["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
        );
        assert!(s.starts_with('#'));
        assert!(s.contains("\nserver 10.0.0.1 iburst\nserver fd00::1 iburst\n"));
    }

    #[test]
    fn timesyncd_dropin_has_one_ntp_line() {
        let s = super::timesyncd_dropin(
            "eth0",
            &["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
        );
        assert!(s.starts_with('#'));
        assert!(s.ends_with("\n[Time]\nNTP=10.0.0.1 fd00::1\n"), "{s}");
    }

    #[test]
    fn timesyncd_dir_is_made_only_under_an_existing_parent() {
        use super::{apply, Sink};
        let base = std::env::temp_dir().join(format!("netbond-ntp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let f = base.join("timesyncd.conf.d/netbond-eth0.conf");
        assert!(apply(Sink::Timesyncd, &f, Some("x\n")).unwrap());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x\n");
        assert!(apply(Sink::Timesyncd, &f, None).unwrap());
        assert!(!f.exists());
        // No parent (as /run/systemd on a host without systemd): nothing written.
        let g = base.join("no-systemd/timesyncd.conf.d/netbond-eth0.conf");
        assert!(!apply(Sink::Timesyncd, &g, Some("x\n")).unwrap());
        assert!(!g.parent().unwrap().exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
