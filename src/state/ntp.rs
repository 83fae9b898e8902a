//! NTP servers learned by DHCP (v4 option 42, v6 option 56/31), per interface, handed
//! to chrony: `<[ntp] chrony_dir>/<interface>.sources` (Debian's chrony.conf has
//! `sourcedir /run/chrony-dhcp`), removed when no lease names a server. Files are
//! written by one task in order, off the event loop; then `chronyc reload sources`
//! is run when chronyc is installed. Each change is also an `ntp-changed` event.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Where chronyc usually is (it is not run when absent).
const CHRONYC: &str = "/usr/bin/chronyc";

/// A file to write (`Some`) or remove (`None`).
type Job = (PathBuf, Option<String>);

#[derive(Default)]
struct Ntp {
    dir: Option<PathBuf>,
    /// Per interface: (from DHCPv4, from DHCPv6).
    servers: HashMap<String, (Vec<IpAddr>, Vec<IpAddr>)>,
    tx: Option<mpsc::UnboundedSender<Job>>,
}

static NTP: Mutex<Option<Ntp>> = Mutex::new(None);

/// Start (once, at daemon start): `chrony_dir` as configured (`"none"`: no file).
pub fn configure(chrony_dir: &str) {
    let dir = (!matches!(chrony_dir, "" | "none")).then(|| PathBuf::from(chrony_dir));
    let tx = dir.as_ref().map(|_| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(rx));
        tx
    });
    *NTP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Ntp {
        dir,
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
    if let (Some(dir), Some(tx)) = (&n.dir, &n.tx) {
        let path = dir.join(format!("{iface}.sources"));
        let body = (!after.is_empty()).then(|| sources(iface, &after));
        let _ = tx.send((path, body));
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

async fn writer(mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some((path, body)) = rx.recv().await {
        let p = path.clone();
        let res = tokio::task::spawn_blocking(move || apply(&p, body.as_deref()))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match res {
            Ok(true) => {
                info!("ntp: updated {}", path.display());
                reload_chrony().await;
            }
            Ok(false) => {}
            Err(e) => warn!(
                "ntp: cannot update {}: {e}; chrony does not get these servers (check [ntp] chrony_dir)",
                path.display()
            ),
        }
    }
}

/// Write (atomically) or remove; `Ok(false)` when there was nothing to do.
fn apply(path: &Path, body: Option<&str>) -> std::io::Result<bool> {
    match body {
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Some(text) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // The temporary name does not end in `.sources`: chrony never reads it.
            crate::state::atomic::write_file_atomic(path, text.as_bytes(), 0o644)?;
            Ok(true)
        }
    }
}

async fn reload_chrony() {
    if !Path::new(CHRONYC).exists() {
        return;
    }
    let run = tokio::process::Command::new(CHRONYC)
        .args(["reload", "sources"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(o)) if o.status.success() => debug!("ntp: chronyc reload sources: done"),
        Ok(Ok(o)) => debug!(
            "ntp: chronyc reload sources: {} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(Err(e)) => debug!("ntp: chronyc: {e}"),
        Err(_) => debug!("ntp: chronyc did not answer within 5 s"),
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
}
