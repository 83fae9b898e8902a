//! The event bus: what happened (a lease bound, a failover, the daemon stopping), told
//! to every `netbond monitor` and to the hooks (`hooks.rs`).
//!
//! Emitting is a synchronous call that never waits: each monitor has its own bounded
//! queue, filled with `try_send`; a monitor that does not keep up loses events (counted,
//! and told to that monitor as an `overflow` event once its queue has drained) while
//! the daemon, the other monitors and the hooks go on. The format is documented in the
//! README ("Events"); `v` is bumped on an incompatible change.

use crate::logging::debug;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The format version in every event (`"v"`).
pub const VERSION: u32 = 1;
/// Events queued for one monitor before it starts losing them.
pub const MONITOR_QUEUE: usize = 256;
/// The kernel buffer of a monitor's connection: with the queue, what one slow monitor
/// can hold of the daemon's memory.
const MONITOR_SNDBUF: usize = 16 * 1024;

struct Subscriber {
    tx: mpsc::Sender<Arc<str>>,
    /// Only events of this interface (and those of no interface).
    iface: Option<String>,
    /// Events lost since the last `overflow` report, and the last one's sequence number.
    lost: Arc<(AtomicU64, AtomicU64)>,
}

#[derive(Default)]
struct Bus {
    seq: u64,
    subscribers: Vec<Subscriber>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

static BUS: Mutex<Option<Bus>> = Mutex::new(None);

fn with_bus<T>(f: impl FnOnce(&mut Bus) -> T) -> T {
    let mut g = BUS.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Bus::default))
}

/// Tell the monitors and the hooks that `kind` happened on `iface` (`None`: the daemon
/// as a whole). `data` is an object whose fields are added to the event.
pub fn emit(kind: &str, iface: Option<&str>, data: Value) {
    let ev = with_bus(|bus| {
        bus.seq += 1;
        let mut ev = Map::new();
        ev.insert("v".into(), VERSION.into());
        ev.insert("seq".into(), bus.seq.into());
        ev.insert("time".into(), now_rfc3339().into());
        ev.insert("type".into(), kind.into());
        ev.insert("interface".into(), iface.map_or(Value::Null, Value::from));
        if let Value::Object(m) = data {
            for (k, v) in m {
                ev.entry(k).or_insert(v);
            }
        }
        let ev = Value::Object(ev);
        let line: Arc<str> = Arc::from(format!("{ev}\n"));
        let seq = bus.seq;
        bus.subscribers.retain(|s| {
            if let (Some(want), Some(have)) = (&s.iface, iface) {
                if want != have {
                    return !s.tx.is_closed();
                }
            }
            match s.tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.lost.0.fetch_add(1, Ordering::Relaxed);
                    s.lost.1.store(seq, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        ev
    });
    crate::daemon::hooks::dispatch(&ev);
}

/// Serve one `monitor` request on a control connection: the answer line, then one line
/// per event until the client goes away (or the daemon stops).
pub async fn serve_monitor(
    mut rd: tokio::net::unix::OwnedReadHalf,
    mut wr: tokio::net::unix::OwnedWriteHalf,
    iface: Option<String>,
) -> std::io::Result<()> {
    let _ = socket2::SockRef::from(wr.as_ref()).set_send_buffer_size(MONITOR_SNDBUF);
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(MONITOR_QUEUE);
    let lost = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let answer = json!({"ok": true, "message": "monitoring; one event per line follows"});
    wr.write_all(format!("{answer}\n").as_bytes()).await?;
    with_bus(|bus| {
        bus.subscribers.push(Subscriber {
            tx,
            iface: iface.clone(),
            lost: lost.clone(),
        })
    });
    let writer = async move {
        while let Some(line) = rx.recv().await {
            wr.write_all(line.as_bytes()).await?;
            // The queue is empty: whatever was lost came after everything written.
            if rx.is_empty() {
                let n = lost.0.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let o = overflow(n, lost.1.load(Ordering::Relaxed), iface.as_deref());
                    wr.write_all(o.as_bytes()).await?;
                }
            }
        }
        wr.shutdown().await
    };
    // The client sends nothing more: a read that ends means it went away.
    let gone = async move {
        let mut buf = [0u8; 64];
        while rd.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    let task = tokio::spawn(async move {
        tokio::select! {
            r = writer => if let Err(e) = r { debug!("monitor: {e}") },
            _ = gone => {}
        }
    });
    with_bus(|bus| {
        bus.writers.retain(|w| !w.is_finished());
        bus.writers.push(task);
    });
    Ok(())
}

fn overflow(lost: u64, last_seq: u64, iface: Option<&str>) -> String {
    let ev = json!({
        "v": VERSION,
        "seq": last_seq,
        "time": now_rfc3339(),
        "type": "overflow",
        "interface": iface,
        "lost": lost,
    });
    format!("{ev}\n")
}

/// At daemon start, once it runs as its final user: hooks and NTP files.
pub fn start(cfg: &crate::config::Config) {
    crate::daemon::hooks::configure(&cfg.hooks);
    crate::state::ntp::configure(&cfg.ntp.chrony_dir, &cfg.ntp.timesyncd_dir);
}

/// `daemon-start`, once every interface task runs.
pub fn started(ifnames: &[String]) {
    emit(
        "daemon-start",
        None,
        json!({"version": env!("CARGO_PKG_VERSION"), "interfaces": ifnames}),
    );
}

/// `daemon-stop` as the last event, then [`shutdown`].
pub async fn stopped(why: &str, cfg: &crate::config::Config) {
    emit("daemon-stop", None, json!({ "signal": why }));
    shutdown(Duration::from_secs(cfg.hooks.timeout.min(10) + 1)).await;
}

/// At exit: let the monitors have what is queued (the `daemon-stop` event) and the
/// hooks finish, each within a bound.
pub async fn shutdown(hooks_for: Duration) {
    let writers = with_bus(|bus| {
        bus.subscribers.clear();
        std::mem::take(&mut bus.writers)
    });
    let _ = tokio::time::timeout(Duration::from_secs(1), futures::future::join_all(writers)).await;
    crate::daemon::hooks::drain(hooks_for).await;
}

/// UTC now as RFC 3339 with milliseconds (`2026-12-03T15:04:05.123Z`).
pub fn now_rfc3339() -> String {
    crate::utc::now(3)
}

fn strs<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// A DHCPv4 lease as it appears in events (`lease`, `old`).
pub fn lease4(l: &netbond_proto::dhcp4::Lease4) -> Value {
    json!({
        "address": l.address.to_string(),
        "prefix_len": l.prefix_len,
        "server": l.server.to_string(),
        "routers": strs(&l.routers),
        "dns": strs(&l.dns),
        "domain": l.domain,
        "search": l.search,
        "ntp": strs(&l.ntp),
        "hostname": l.hostname,
        "mtu": l.mtu,
        "lease_secs": l.lease_secs,
        "t1_secs": l.t1_secs,
        "t2_secs": l.t2_secs,
        "chaddr": crate::net::hwaddr::fmt_mac(&l.chaddr),
        "captive_portal": l.captive_portal,
    })
}

/// A DHCPv6 lease as it appears in events.
pub fn lease6(l: &netbond_proto::dhcp6::Lease6) -> Value {
    json!({
        "addresses": l.addresses.iter().map(|a| json!({
            "address": a.addr.to_string(), "preferred_secs": a.preferred, "valid_secs": a.valid,
        })).collect::<Vec<_>>(),
        "prefixes": l.prefixes.iter().map(|p| json!({
            "prefix": format!("{}/{}", p.prefix, p.len),
            "preferred_secs": p.preferred, "valid_secs": p.valid,
        })).collect::<Vec<_>>(),
        "dns": strs(&l.dns),
        "domains": l.domains,
        "ntp": strs(&l.ntp),
        "captive_portal": l.captive_portal,
        "t1_secs": l.t1,
        "t2_secs": l.t2,
    })
}

/// A DHCPv4 event: `lease` (the one now in use) and `old` (the one replaced or gone),
/// plus the fields of `extra`.
pub fn v4(
    kind: &str,
    iface: &str,
    lease: Option<&netbond_proto::dhcp4::Lease4>,
    old: Option<&netbond_proto::dhcp4::Lease4>,
    extra: Value,
) {
    with_leases(kind, iface, lease.map(lease4), old.map(lease4), extra);
}

/// A DHCPv6 event, like [`v4`].
pub fn v6(
    kind: &str,
    iface: &str,
    lease: Option<&netbond_proto::dhcp6::Lease6>,
    old: Option<&netbond_proto::dhcp6::Lease6>,
    extra: Value,
) {
    with_leases(kind, iface, lease.map(lease6), old.map(lease6), extra);
}

/// Emit `extra` (an object) with the rendered `lease` and `old` leases added.
fn with_leases(
    kind: &str,
    iface: &str,
    lease: Option<Value>,
    old: Option<Value>,
    mut extra: Value,
) {
    if !extra.is_object() {
        extra = json!({});
    }
    if let Some(l) = lease {
        extra["lease"] = l;
    }
    if let Some(l) = old {
        extra["old"] = l;
    }
    emit(kind, Some(iface), extra);
}

/// A lost lease's reason as events spell it (`nak`, `expired`, ...).
pub fn reason(r: impl std::fmt::Debug) -> Value {
    Value::from(format!("{r:?}").to_ascii_lowercase())
}

/// `dns-changed` when one family's DNS on `iface` differs from what it was.
pub fn dns_changed<T: PartialEq + std::fmt::Debug>(
    iface: &str,
    family: &str,
    old: &T,
    new: &T,
    servers: Vec<String>,
    domains: Vec<String>,
) {
    if old != new {
        emit(
            "dns-changed",
            Some(iface),
            json!({"family": family, "dns": servers, "domains": domains}),
        );
    }
}

/// `dns-changed` for DHCPv4's part of `sh`'s DNS, if `new` differs from it.
pub fn dns4(iface: &str, old: &crate::dhcp::shared::Dns4, new: &crate::dhcp::shared::Dns4) {
    let mut domains: Vec<String> = new.domain.iter().cloned().collect();
    domains.extend(new.search.iter().cloned());
    dns_changed(iface, "ipv4", old, new, strs(&new.servers), domains);
}

/// `dns-changed` for DHCPv6's part, if `new` differs.
pub fn dns6(iface: &str, old: &crate::dhcp::shared::Dns6, new: &crate::dhcp::shared::Dns6) {
    dns_changed(
        iface,
        "ipv6",
        old,
        new,
        strs(&new.servers),
        new.domains.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_loses_events_without_waiting_and_says_so() {
        let (tx, mut rx) = mpsc::channel(2);
        let lost = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        with_bus(|b| {
            b.subscribers.push(Subscriber {
                tx,
                iface: Some("unit-test0".into()),
                lost: lost.clone(),
            })
        });
        for _ in 0..5 {
            emit("unit-test", Some("unit-test0"), json!({}));
        }
        // Another interface's events do not reach this subscriber at all.
        emit("unit-test", Some("unit-test1"), json!({}));
        assert_eq!(lost.0.load(Ordering::Relaxed), 3);
        let first: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        let second: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(first["v"], 1);
        assert_eq!(first["type"], "unit-test");
        assert_eq!(first["interface"], "unit-test0");
        assert_eq!(
            second["seq"].as_u64().unwrap(),
            first["seq"].as_u64().unwrap() + 1
        );
        let o: Value = serde_json::from_str(overflow(3, 9, None).trim()).unwrap();
        assert_eq!(o["type"], "overflow");
        assert_eq!(o["lost"], 3);
        drop(rx);
        emit("unit-test", Some("unit-test0"), json!({}));
        assert!(with_bus(|b| b
            .subscribers
            .iter()
            .all(|s| !s.tx.is_closed())));
    }
}
