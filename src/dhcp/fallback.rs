//! What an interface uses while DHCPv4 has no lease (issue 17 item 6): an RFC 3927
//! link-local address (`ipv4ll.rs`) and/or a static fallback address, router and DNS,
//! each after its own time without a lease and each dropped when a lease is bound.
//!
//! The DHCPv4 driver holds one [`Fallbacks`] and calls it from a few places (its pump
//! before the engine's events are handled, its deadline, its ARP socket, stop and
//! interface loss); the DHCP client goes on trying all along. Dropping runs before the
//! new lease is applied, so the lease's default route and DNS never collide with the
//! fallback's.

use crate::config::Dhcp4Config;
use crate::daemon::events::emit;
use crate::dhcp::ipv4ll::LinkLocal;
use crate::dhcp::shared::{Dns4, Shared};
use crate::logging::{info, warn};
use crate::net::arp::{Arp, ArpSocket};
use crate::net::hwaddr::HostMacs;
use netbond_proto::dhcp4::prefix_to_mask;
use netbond_proto::Instant;
use serde_json::{json, Value};
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The static fallback, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    /// Address and prefix length.
    pub address: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Default router.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
}

/// Parse the `[dhcp4] fallback_*` keys; `Ok(None)` when no fallback is configured.
/// Errors name the key.
pub fn parse_static(c: &Dhcp4Config) -> Result<Option<Static>, (&'static str, String)> {
    let Some(text) = c.fallback_address.as_deref() else {
        if c.fallback_router.is_some() || !c.fallback_dns.is_empty() {
            let key = if c.fallback_router.is_some() {
                "fallback_router"
            } else {
                "fallback_dns"
            };
            return Err((key, "needs fallback_address as well".into()));
        }
        return Ok(None);
    };
    let bad = || {
        (
            "fallback_address",
            format!("{text:?} is not an address with a prefix length, e.g. \"192.168.1.50/24\""),
        )
    };
    let (a, l) = text.split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let prefix_len: u8 = l.parse().map_err(|_| bad())?;
    if !(1..=32).contains(&prefix_len) || address.is_unspecified() || address.is_multicast() {
        return Err(bad());
    }
    let router = match c.fallback_router.as_deref() {
        None => None,
        Some(r) => {
            let r: Ipv4Addr = r
                .parse()
                .map_err(|_| ("fallback_router", format!("{r:?} is not an IPv4 address")))?;
            let mask = prefix_to_mask(prefix_len);
            if u32::from(r) & mask != u32::from(address) & mask || r == address {
                return Err((
                    "fallback_router",
                    format!(
                        "{r} is not another address inside {text}: the kernel could not reach it"
                    ),
                ));
            }
            Some(r)
        }
    };
    let mut dns = Vec::new();
    for d in &c.fallback_dns {
        dns.push(
            d.parse()
                .map_err(|_| ("fallback_dns", format!("{d:?} is not an IPv4 address")))?,
        );
    }
    Ok(Some(Static {
        address,
        prefix_len,
        router,
        dns,
    }))
}

/// Config-load check of the `[dhcp4]` fallback keys: `(key, message)` on error.
pub fn validate(c: &Dhcp4Config) -> Result<(), (&'static str, String)> {
    if !matches!(c.link_local.as_str(), "off" | "fallback") {
        return Err((
            "link_local",
            format!("{:?}: must be \"off\" or \"fallback\"", c.link_local),
        ));
    }
    if c.link_local_after > 86_400 {
        return Err(("link_local_after", "at most 86400 seconds".into()));
    }
    if c.fallback_after > 86_400 {
        return Err(("fallback_after", "at most 86400 seconds".into()));
    }
    parse_static(c).map(|_| ())
}

/// The fallbacks of one interface.
pub struct Fallbacks {
    /// `[dhcp4] link_local_after` when link-local is on.
    ll_after: Option<Duration>,
    /// The static fallback and its `fallback_after`, when configured.
    fixed: Option<(Static, Duration)>,
    /// Since when DHCPv4 has had no lease (`None` while it has one).
    since: Option<Instant>,
    ll: Option<LinkLocal>,
    /// The static fallback is on the interface.
    static_on: bool,
}

impl Fallbacks {
    /// Nothing in use yet. The keys are read once (they need a restart, see reload.rs).
    pub fn new(c: &Dhcp4Config) -> Self {
        Fallbacks {
            ll_after: (c.link_local == "fallback").then(|| Duration::from_secs(c.link_local_after)),
            fixed: parse_static(c)
                .ok()
                .flatten()
                .map(|f| (f, Duration::from_secs(c.fallback_after))),
            since: None,
            ll: None,
            static_on: false,
        }
    }

    /// When the link-local address and the static fallback are due (while not in use).
    fn starts(&self) -> (Option<Instant>, Option<Instant>) {
        let Some(since) = self.since else {
            return (None, None);
        };
        let ll = self
            .ll_after
            .filter(|_| self.ll.is_none())
            .map(|d| since + d);
        let st = self
            .fixed
            .as_ref()
            .filter(|_| !self.static_on)
            .map(|f| since + f.1);
        (ll, st)
    }

    /// The next moment something is due.
    pub fn deadline(&self) -> Option<Instant> {
        let (ll, st) = self.starts();
        [ll, st, self.ll.as_ref().and_then(LinkLocal::deadline)]
            .into_iter()
            .flatten()
            .min()
    }

    /// The link-local ARP socket, if probing or holding.
    pub fn arp_socket(&self) -> Option<&ArpSocket> {
        self.ll.as_ref().and_then(LinkLocal::socket)
    }

    /// An ARP packet for the link-local engine.
    pub fn on_arp(&mut self, now: Instant, ifname: &str, host: &HostMacs, rx: io::Result<Arp>) {
        if let Some(ll) = self.ll.as_mut() {
            ll.on_arp(now, ifname, host, rx);
        }
    }

    /// Called by the DHCPv4 driver's pump: `state` is the engine's state name and
    /// `leased` whether it holds a lease (one being bound counts).
    pub async fn pump(&mut self, sh: &mut Shared, state: &str, leased: bool) {
        let now = sh.clock.now();
        // RFC 8925: while the network prefers IPv6-only, no IPv4 address at all.
        let v6only = state == "IPV6-ONLY";
        if leased || v6only || state == "STOPPED" || sh.ifindex.is_none() {
            self.since = None;
            if leased || v6only {
                self.drop_all(sh, if leased { "lease" } else { "ipv6-only" })
                    .await;
            }
            return;
        }
        self.since.get_or_insert(now);
        let (ll, st) = self.starts();
        if ll.is_some_and(|t| now >= t) {
            self.ll = LinkLocal::start(sh, now);
        }
        if let Some(ll) = self.ll.as_mut() {
            ll.pump(sh, now).await;
        }
        if st.is_some_and(|t| now >= t) {
            self.static_up(sh).await;
        }
    }

    /// Remove what is in use (a lease came, DHCPv4 stops, netbond stops).
    pub async fn drop_all(&mut self, sh: &mut Shared, why: &str) {
        if let Some(mut ll) = self.ll.take() {
            ll.stop(sh, why).await;
        }
        if std::mem::take(&mut self.static_on) {
            self.static_down(sh, why).await;
        }
    }

    /// The interface is gone, and its addresses with it.
    pub fn interface_gone(&mut self) {
        self.since = None;
        self.ll = None;
        self.static_on = false;
    }

    async fn static_up(&mut self, sh: &mut Shared) {
        let (Some(a), Some((f, _))) = (sh.applier.as_ref(), self.fixed.as_ref()) else {
            return;
        };
        let bcast = Ipv4Addr::from(u32::from(f.address) | !prefix_to_mask(f.prefix_len));
        if let Err(e) = a
            .add_or_replace_addr4(f.address, f.prefix_len, bcast, None, None)
            .await
        {
            warn!("fallback: {}: {e}", sh.ifname);
            return;
        }
        if let Some(r) = f.router {
            if let Err(e) = a
                .replace_route4(Ipv4Addr::UNSPECIFIED, 0, Some(r), Some(f.address))
                .await
            {
                warn!("fallback: {}: {e}", sh.ifname);
            }
        }
        info!(
            "fallback: {}: no DHCPv4 lease; using the static fallback {}/{}",
            sh.ifname, f.address, f.prefix_len
        );
        if !f.dns.is_empty() {
            let dns = Dns4 {
                servers: f.dns.clone(),
                ..Dns4::default()
            };
            crate::daemon::events::dns4(&sh.ifname, &sh.dns4, &dns);
            sh.dns4 = dns;
            sh.update_dns();
        }
        emit(
            "fallback-configured",
            Some(&sh.ifname),
            static_json(f, None),
        );
        self.static_on = true;
    }

    async fn static_down(&mut self, sh: &mut Shared, why: &str) {
        let Some((f, _)) = self.fixed.as_ref() else {
            return;
        };
        if let Some(a) = sh.applier.as_ref() {
            if let Some(r) = f.router {
                if let Err(e) = a.del_route4(Ipv4Addr::UNSPECIFIED, 0, Some(r)).await {
                    warn!("fallback: {}: {e}", sh.ifname);
                }
            }
            if let Err(e) = a.del_addr4(f.address, f.prefix_len).await {
                warn!("fallback: {}: {e}", sh.ifname);
            }
        }
        if !f.dns.is_empty() && sh.dns4.servers == f.dns {
            crate::daemon::events::dns4(&sh.ifname, &sh.dns4, &Dns4::default());
            sh.dns4 = Dns4::default();
            sh.update_dns();
        }
        info!(
            "fallback: {}: dropped the static fallback {}/{} ({why})",
            sh.ifname, f.address, f.prefix_len
        );
        emit(
            "fallback-dropped",
            Some(&sh.ifname),
            static_json(f, Some(why)),
        );
    }

    /// For `netbond status` (under `dhcp4`).
    pub fn status_json(&self) -> Value {
        json!({
            "link_local": self.ll.as_ref().map(LinkLocal::status_json),
            "static": self.fixed.as_ref().filter(|_| self.static_on).map(|f| static_json(&f.0, None)),
        })
    }
}

fn static_json(f: &Static, why: Option<&str>) -> Value {
    let mut v = json!({
        "address": f.address.to_string(),
        "prefix_len": f.prefix_len,
        "router": f.router.map(|r| r.to_string()),
        "dns": f.dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    if let Some(w) = why {
        v["reason"] = w.into();
    }
    v
}

/// The status lines of the fallbacks (text form of `netbond status`).
pub fn render(o: &mut String, d4: &Value) {
    use std::fmt::Write;
    let f = &d4["fallbacks"];
    let ll = &f["link_local"];
    if !ll.is_null() {
        let _ = writeln!(
            o,
            "           link-local {} {} ({} conflicts)",
            ll["address"].as_str().unwrap_or("-"),
            ll["state"].as_str().unwrap_or("-"),
            ll["conflicts"]
        );
    }
    let st = &f["static"];
    if !st.is_null() {
        let _ = writeln!(
            o,
            "           static fallback {}/{} router {}",
            st["address"].as_str().unwrap_or("-"),
            st["prefix_len"],
            st["router"].as_str().unwrap_or("-")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(addr: Option<&str>, router: Option<&str>, dns: &[&str]) -> Dhcp4Config {
        Dhcp4Config {
            fallback_address: addr.map(Into::into),
            fallback_router: router.map(Into::into),
            fallback_dns: dns.iter().map(|s| s.to_string()).collect(),
            ..Dhcp4Config::default()
        }
    }

    #[test]
    fn static_fallback_keys_are_checked_and_errors_name_the_key() {
        assert_eq!(parse_static(&cfg(None, None, &[])), Ok(None));
        let ok = parse_static(&cfg(
            Some("192.168.1.50/24"),
            Some("192.168.1.1"),
            &["9.9.9.9"],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(ok.address, Ipv4Addr::new(192, 168, 1, 50));
        assert_eq!(ok.prefix_len, 24);
        assert_eq!(ok.router, Some(Ipv4Addr::new(192, 168, 1, 1)));
        let key = |c: Dhcp4Config| parse_static(&c).unwrap_err().0;
        assert_eq!(
            key(cfg(Some("192.168.1.50"), None, &[])),
            "fallback_address"
        );
        assert_eq!(
            key(cfg(Some("192.168.1.50/33"), None, &[])),
            "fallback_address"
        );
        assert_eq!(key(cfg(Some("nonsense/24"), None, &[])), "fallback_address");
        assert_eq!(
            key(cfg(Some("192.168.1.50/24"), Some("10.0.0.1"), &[])),
            "fallback_router"
        );
        assert_eq!(key(cfg(None, Some("10.0.0.1"), &[])), "fallback_router");
        assert_eq!(
            key(cfg(Some("192.168.1.50/24"), None, &["dns.example"])),
            "fallback_dns"
        );
        let c = Dhcp4Config {
            link_local: "on".into(),
            ..Dhcp4Config::default()
        };
        assert_eq!(validate(&c).unwrap_err().0, "link_local");
    }

    #[test]
    fn a_bad_key_fails_the_whole_file_with_the_key_named() {
        let e = crate::config::Config::parse(
            "[dhcp4]\nfallback_address = \"10.0.0.5/24\"\nfallback_router = \"10.9.0.1\"\n",
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("fallback_router"), "{e}");
        let e = crate::config::Config::parse("[dhcp4]\nlink_local = \"yes\"\n", None).unwrap_err();
        assert!(e.to_string().contains("link_local"), "{e}");
    }

    #[test]
    fn status_text_shows_the_fallbacks_and_the_delegated_prefix() {
        let v = json!({
            "interface": {"name": "c0", "index": 2, "mac": null},
            "identity": {"duid": "00:04", "iaid": "0x1"},
            "dhcp4": {"state": "SELECTING", "lease": null, "fallbacks": {
                "link_local": {"state": "bound", "address": "169.254.7.9", "configured": true, "conflicts": 1},
                "static": {"address": "192.168.1.50", "prefix_len": 24, "router": "192.168.1.1", "dns": []}}},
            "dhcp6": {"state": "bound", "lease": null, "delegated": {"prefix": "fd99::/56",
                "assignments": [{"interface": "br0", "prefix": "fd99::/64", "address": "fd99::1"}]}},
            "bond": null
        });
        let out = crate::dhcp::status::render(&v);
        assert!(
            out.contains("link-local 169.254.7.9 bound (1 conflicts)"),
            "{out}"
        );
        assert!(
            out.contains("static fallback 192.168.1.50/24 router 192.168.1.1"),
            "{out}"
        );
        assert!(out.contains("prefix fd99::/56 -> br0 fd99::1"), "{out}");
    }
}
