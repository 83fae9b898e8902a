//! The CNI daemon's events: the same bus, `v: 1` JSON lines and hooks as the host
//! daemon (`daemon/events.rs`, `daemon/hooks.rs`), with the attachment named in every
//! event. See README, "Containers (CNI)".
//!
//! Every event here carries `source: "cni"`, `attachment` (`network/container/ifname`,
//! unique on the host), `network`, `container_id` and `netns`; `interface` is the name
//! inside the container (`eth0` for most of them, so filter on `attachment`).

use super::store::Key;
use crate::daemon::events;
use serde_json::{json, Value};
use std::path::Path;

/// Why an attachment ended (`cni-del`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// The runtime's DEL.
    Del,
    /// GC: not in `cni.dev/valid-attachments`.
    Gc,
    /// Its namespace was gone at daemon start.
    NetnsGone,
    /// It could not be resumed at daemon start.
    NotResumed,
}

impl Gone {
    fn as_str(self) -> &'static str {
        match self {
            Gone::Del => "del",
            Gone::Gc => "gc",
            Gone::NetnsGone => "netns-gone",
            Gone::NotResumed => "not-resumed",
        }
    }
}

/// The keys naming the attachment, plus `extra`'s: the data of its DHCP events
/// (`daemon::events::v4`/`v6` with the container's interface name).
pub fn with_attachment(key: &Key, netns: &Path, mut extra: Value) -> Value {
    if !extra.is_object() {
        extra = json!({});
    }
    extra["source"] = json!("cni");
    extra["attachment"] = json!(key.to_string());
    extra["network"] = json!(key.network);
    extra["container_id"] = json!(key.container_id);
    extra["netns"] = json!(netns.display().to_string());
    extra
}

/// `cni-add`: an attachment now runs (a new ADD, or `resumed` after a daemon restart).
pub fn added(key: &Key, netns: &Path, resumed: bool) {
    let data = with_attachment(key, netns, json!({ "resumed": resumed }));
    events::emit("cni-add", Some(&key.ifname), data);
}

/// `cni-del`: an attachment ended and its record is gone.
pub fn removed(key: &Key, netns: &Path, why: Gone) {
    let data = with_attachment(key, netns, json!({ "reason": why.as_str() }));
    events::emit("cni-del", Some(&key.ifname), data);
}

/// `daemon-start` of the CNI daemon, once its socket listens.
pub fn started(attachments: usize) {
    events::emit(
        "daemon-start",
        None,
        json!({
            "source": "cni",
            "version": env!("CARGO_PKG_VERSION"),
            "attachments": attachments,
        }),
    );
}

/// `daemon-stop` as the last event; the monitors get it and the hooks finish (bounded).
pub async fn stopped(why: &str, hooks_timeout: u64) {
    events::emit("daemon-stop", None, json!({"source": "cni", "signal": why}));
    events::shutdown(std::time::Duration::from_secs(hooks_timeout.min(10) + 1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_names_its_attachment() {
        let key = Key {
            network: "lan".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        let v = with_attachment(&key, Path::new("/run/netns/c1"), json!({"reason": "gc"}));
        assert_eq!(v["source"], "cni");
        assert_eq!(v["attachment"], "lan/c1/eth0");
        assert_eq!(v["network"], "lan");
        assert_eq!(v["container_id"], "c1");
        assert_eq!(v["netns"], "/run/netns/c1");
        assert_eq!(v["reason"], "gc");
        assert_eq!(Gone::NetnsGone.as_str(), "netns-gone");
    }
}
