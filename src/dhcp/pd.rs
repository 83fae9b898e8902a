//! Prefix delegation handed on (issue 17 item 7): the prefix a DHCPv6 server delegates
//! (IA_PD, `[dhcp6] ia_pd = true`) is split into /64s, one per interface listed in
//! `[dhcp6] pd_downstream`, and each gets the address `<its /64>::1` with the delegated
//! prefix's lifetimes; the kernel adds the /64's on-link route with it. They are
//! removed with the lease (expiry, release, a new prefix) and told as events
//! (`dhcp6-prefix-delegated`, `dhcp6-prefix-withdrawn`) so a hook can drive radvd or
//! dnsmasq: netbond sends no router advertisements itself.
//!
//! `::1` rather than an EUI-64 or token: it is the same whatever the downstream
//! interface's MAC (a bridge's MAC changes as ports come and go), it is the address
//! clients on that LAN expect their router at, and a hook can compute it.

use crate::daemon::events::emit;
use crate::dhcp::shared::Shared;
use crate::logging::{info, warn};
use crate::net::apply::Applier;
use netbond_proto::dhcp6::{Lease6, Prefix6};
use netbond_proto::Instant;
use serde_json::{json, Value};
use std::net::Ipv6Addr;

/// Parse `pd_downstream`: each entry `"name"` or `"name/subnet-id"` (decimal, or hex
/// with 0x); an entry without an id gets its position in the list. Names and ids must
/// be unique.
pub fn downstream(list: &[String]) -> Result<Vec<(String, u16)>, String> {
    let mut out: Vec<(String, u16)> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let (name, id) = match e.split_once('/') {
            Some((n, id)) => {
                let parsed = match id.strip_prefix("0x") {
                    Some(h) => u16::from_str_radix(h, 16).ok(),
                    None => id.parse().ok(),
                };
                let id = parsed.ok_or_else(|| {
                    format!("{e:?}: the subnet id after '/' must be a number from 0 to 65535")
                })?;
                (n, id)
            }
            None => (e.as_str(), i as u16),
        };
        if !crate::net::ifname::valid_ifname(name) {
            return Err(format!("{name:?} is not an interface name"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("{name} is listed twice"));
        }
        if out.iter().any(|(_, x)| *x == id) {
            return Err(format!(
                "subnet id {id} is used twice (entries without an id get their position in the list)"
            ));
        }
        out.push((name.to_string(), id));
    }
    Ok(out)
}

/// The `id`-th /64 of `prefix/len`, or `None` when the prefix is longer than /64 or
/// too short of bits for `id`.
pub fn subnet64(prefix: Ipv6Addr, len: u8, id: u16) -> Option<Ipv6Addr> {
    if len > 64 {
        return None;
    }
    let free = 64 - u32::from(len);
    if free < 16 && u32::from(id) >= 1 << free {
        return None;
    }
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    Some(Ipv6Addr::from(
        u128::from(prefix) & mask | (u128::from(id) << 64),
    ))
}

/// One /64 given to a downstream interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assigned {
    iface: String,
    ifindex: u32,
    /// The /64.
    net: Ipv6Addr,
    /// `net` + 1, on the interface.
    addr: Ipv6Addr,
}

/// The delegated prefix's hand-out on one upstream interface.
pub struct Delegation {
    wanted: Vec<(String, u16)>,
    /// What is on the downstream interfaces now, and from which prefix.
    applied: Vec<Assigned>,
    from: Option<Prefix6>,
    /// The lease last handed out (prefix and when acquired), to do nothing on a
    /// wakeup that changed nothing.
    seen: Option<(Prefix6, Instant)>,
}

impl Delegation {
    /// From `[dhcp6] pd_downstream` (validated at load; read once).
    pub fn new(sh: &Shared) -> Self {
        Delegation {
            wanted: downstream(&sh.cfg.dhcp6.pd_downstream).unwrap_or_default(),
            applied: Vec::new(),
            from: None,
            seen: None,
        }
    }

    /// Follow the lease: assign /64s of its first delegated prefix, refresh their
    /// lifetimes on renewal, remove them when it has none.
    pub async fn sync(&mut self, sh: &Shared, lease: Option<&Lease6>) {
        if self.wanted.is_empty() {
            return;
        }
        let now = sh.clock.now();
        let current = lease.and_then(|l| {
            l.prefixes
                .iter()
                .find(|p| p.valid > 0)
                .map(|p| (*p, l.acquired))
        });
        if current == self.seen {
            return;
        }
        self.seen = current;
        let Some((p, acquired)) = current else {
            self.clear(sh, "lost").await;
            return;
        };
        let left = |secs: u32| {
            (secs != u32::MAX).then(|| {
                u64::from(secs).saturating_sub(now.saturating_duration_since(acquired).as_secs())
                    as u32
            })
        };
        let (valid, preferred) = (left(p.valid), left(p.preferred));
        let mut next = Vec::new();
        for (name, id) in &self.wanted {
            let Some(net) = subnet64(p.prefix, p.len, *id) else {
                warn!(
                    "dhcp6: {}: delegated prefix {}/{} has no /64 number {id} for {name}",
                    sh.ifname, p.prefix, p.len
                );
                continue;
            };
            let index = match crate::net::link::get_link_by_name(&sh.handle, name).await {
                Ok(Some(l)) => l.index,
                _ => {
                    warn!(
                        "dhcp6: {}: downstream interface {name} is missing; no prefix for it",
                        sh.ifname
                    );
                    continue;
                }
            };
            let addr = Ipv6Addr::from(u128::from(net) | 1);
            let a = Applier::new(sh.handle.clone(), index, name.clone(), sh.route_metric);
            if let Err(e) = a
                .add_or_replace_addr6(addr, 64, valid, preferred, false)
                .await
            {
                warn!("dhcp6: {}: {e}", sh.ifname);
                continue;
            }
            next.push(Assigned {
                iface: name.clone(),
                ifindex: index,
                net,
                addr,
            });
        }
        let gone: Vec<Assigned> = self
            .applied
            .iter()
            .filter(|o| !next.contains(o))
            .cloned()
            .collect();
        remove(sh, &gone).await;
        let changed =
            next != self.applied || self.from.map(|f| (f.prefix, f.len)) != Some((p.prefix, p.len));
        self.applied = next;
        self.from = Some(p);
        if changed {
            info!(
                "dhcp6: {}: delegated prefix {}/{} handed on: {}",
                sh.ifname,
                p.prefix,
                p.len,
                self.applied
                    .iter()
                    .map(|a| format!("{} {}/64", a.iface, a.net))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            emit("dhcp6-prefix-delegated", Some(&sh.ifname), self.json(None));
        }
    }

    /// Remove every downstream address (`why`: lost, released, stopped).
    pub async fn clear(&mut self, sh: &Shared, why: &str) {
        self.seen = None;
        if self.applied.is_empty() {
            self.from = None;
            return;
        }
        remove(sh, &self.applied).await;
        let ev = self.json(Some(why));
        self.applied.clear();
        info!(
            "dhcp6: {}: delegated prefix withdrawn from downstream interfaces ({why})",
            sh.ifname
        );
        emit("dhcp6-prefix-withdrawn", Some(&sh.ifname), ev);
        self.from = None;
    }

    /// The event (and status) object. Besides `assignments` (for JSON readers), the
    /// same as three parallel lists, which hooks get as space-separated variables
    /// (`NETBOND_DOWNSTREAM_INTERFACES`, `_PREFIXES`, `_ADDRESSES`).
    fn json(&self, why: Option<&str>) -> Value {
        let a = &self.applied;
        let mut v = json!({
            "prefix": self.from.map(|p| format!("{}/{}", p.prefix, p.len)),
            "valid_secs": self.from.map(|p| p.valid),
            "preferred_secs": self.from.map(|p| p.preferred),
            "assignments": a.iter().map(assigned_json).collect::<Vec<_>>(),
            "downstream_interfaces": a.iter().map(|x| x.iface.clone()).collect::<Vec<_>>(),
            "downstream_prefixes": a.iter().map(|x| format!("{}/64", x.net)).collect::<Vec<_>>(),
            "downstream_addresses": a.iter().map(|x| x.addr.to_string()).collect::<Vec<_>>(),
        });
        if let Some(w) = why {
            v["reason"] = w.into();
        }
        v
    }

    /// For `netbond status` (under `dhcp6`); null when nothing is handed on.
    pub fn status_json(&self) -> Value {
        if self.applied.is_empty() {
            Value::Null
        } else {
            self.json(None)
        }
    }
}

fn assigned_json(a: &Assigned) -> Value {
    json!({
        "interface": a.iface,
        "prefix": format!("{}/64", a.net),
        "address": a.addr.to_string(),
    })
}

async fn remove(sh: &Shared, gone: &[Assigned]) {
    for a in gone {
        let ap = Applier::new(
            sh.handle.clone(),
            a.ifindex,
            a.iface.clone(),
            sh.route_metric,
        );
        if let Err(e) = ap.del_addr6(a.addr, 64).await {
            warn!("dhcp6: {}: {e}", sh.ifname);
        }
    }
}

/// The status line of the hand-out (text form of `netbond status`).
pub fn render(o: &mut String, d6: &Value) {
    use std::fmt::Write;
    let d = &d6["delegated"];
    for a in d["assignments"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "           prefix {} -> {} {}",
            d["prefix"].as_str().unwrap_or("-"),
            a["interface"].as_str().unwrap_or("-"),
            a["address"].as_str().unwrap_or("-")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn downstream_entries_take_their_position_or_an_explicit_id() {
        let l = |v: &[&str]| downstream(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            l(&["br0", "lan0/5", "lan1/0x10"]).unwrap(),
            vec![("br0".into(), 0), ("lan0".into(), 5), ("lan1".into(), 16)]
        );
        assert!(l(&["br0", "br0"]).unwrap_err().contains("twice"));
        assert!(l(&["br0", "lan0/0"]).unwrap_err().contains("subnet id 0"));
        assert!(l(&["br0/x"]).unwrap_err().contains("subnet id"));
        assert!(l(&["br0/70000"]).is_err());
        assert!(l(&["bad name"]).unwrap_err().contains("interface name"));
        let e = crate::config::Config::parse("[dhcp6]\npd_downstream = [\"a\", \"a\"]\n", None)
            .unwrap_err();
        assert!(e.to_string().contains("pd_downstream"), "{e}");
    }

    #[test]
    #[cfg(feature = "hooks")] // the hook environment is the hooks module's
    fn hooks_get_the_downstream_lists_as_variables() {
        let d = Delegation {
            wanted: vec![],
            applied: vec![Assigned {
                iface: "br0".into(),
                ifindex: 7,
                net: v6("2001:db8:0:5::"),
                addr: v6("2001:db8:0:5::1"),
            }],
            from: Some(Prefix6 {
                prefix: v6("2001:db8::"),
                len: 56,
                preferred: 100,
                valid: 200,
            }),
            seen: None,
        };
        let mut ev = d.json(None);
        ev["type"] = "dhcp6-prefix-delegated".into();
        let env = crate::daemon::hooks::environment(&ev);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("REASON"), Some("DHCP6_PREFIX_DELEGATED"));
        assert_eq!(get("NETBOND_PREFIX"), Some("2001:db8::/56"));
        assert_eq!(get("NETBOND_DOWNSTREAM_INTERFACES"), Some("br0"));
        assert_eq!(
            get("NETBOND_DOWNSTREAM_PREFIXES"),
            Some("2001:db8:0:5::/64")
        );
        assert_eq!(get("NETBOND_DOWNSTREAM_ADDRESSES"), Some("2001:db8:0:5::1"));
        assert_eq!(
            get("NETBOND_ASSIGNMENTS"),
            None,
            "objects are for stdin only"
        );
    }

    #[test]
    fn a_delegated_prefix_is_split_into_64s() {
        assert_eq!(
            subnet64(v6("2001:db8:aa00:ff00::"), 56, 0),
            Some(v6("2001:db8:aa00:ff00::"))
        );
        assert_eq!(
            subnet64(v6("2001:db8:aa00:ff00::"), 56, 5),
            Some(v6("2001:db8:aa00:ff05::"))
        );
        assert_eq!(
            subnet64(v6("2001:db8:aa00:ff00::"), 56, 255),
            Some(v6("2001:db8:aa00:ffff::"))
        );
        assert_eq!(
            subnet64(v6("2001:db8:aa00:ff00::"), 56, 256),
            None,
            "a /56 has 256 /64s"
        );
        assert_eq!(
            subnet64(v6("2001:db8::"), 48, 0x1234),
            Some(v6("2001:db8:0:1234::"))
        );
        assert_eq!(
            subnet64(v6("2001:db8:0:7::"), 64, 0),
            Some(v6("2001:db8:0:7::"))
        );
        assert_eq!(subnet64(v6("2001:db8:0:7::"), 64, 1), None);
        assert_eq!(subnet64(v6("2001:db8::"), 72, 0), None, "longer than /64");
        // Host bits a server left set are cleared.
        assert_eq!(
            subnet64(v6("2001:db8:aa00:ff00::1"), 56, 1),
            Some(v6("2001:db8:aa00:ff01::"))
        );
    }
}
