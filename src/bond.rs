//! The kernel bond: create or adopt it, enslave matching ports as they appear, release
//! them when they go, report failovers, and tear it down on stop.
//!
//! Everything goes through rtnetlink; every decision is taken on a netlink event, never
//! after a sleep (the reference setup needed `ExecStartPre=sleep 8`).

use crate::config::{glob_match, BondConfig};
use crate::hwaddr::fmt_mac;
use crate::link::{self, LinkEvent, LinkInfo, NlError};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{BondFailOverMac, BondMode, BondPrimaryReselect};
use rtnetlink::{Handle, LinkBond, LinkUnspec};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// Manages one bond.
pub struct BondManager {
    cfg: BondConfig,
    handle: Handle,
    index: Option<u32>,
    /// Ports we know are enslaved: index -> name.
    ports: BTreeMap<u32, String>,
    /// Interfaces we already tried to enslave (so a port an admin releases by hand is
    /// not grabbed back on its next state change).
    tried: BTreeMap<u32, String>,
    active: Option<u32>,
    mac: Option<[u8; 6]>,
    primary_set: Option<u32>,
}

/// True when `info` matches one of the `ports` patterns (name, glob or MAC).
pub fn port_matches(patterns: &[String], info: &LinkInfo) -> bool {
    let mac = info.mac.map(|m| fmt_mac(&m));
    let perm = info
        .bond_port
        .as_ref()
        .and_then(|p| p.perm_mac)
        .map(|m| fmt_mac(&m));
    patterns.iter().any(|p| {
        if p.len() == 17 && p.matches(':').count() == 5 {
            let p = p.to_ascii_lowercase();
            mac.as_deref() == Some(p.as_str()) || perm.as_deref() == Some(p.as_str())
        } else {
            glob_match(p, &info.name)
        }
    })
}

fn is_wired(name: &str) -> bool {
    name.starts_with("en") || name.starts_with("eth")
}

impl BondManager {
    /// A manager for the configured bond; nothing happens until [`BondManager::ensure`].
    pub fn new(cfg: BondConfig, handle: Handle) -> Self {
        BondManager {
            cfg,
            handle,
            index: None,
            ports: BTreeMap::new(),
            tried: BTreeMap::new(),
            active: None,
            mac: None,
            primary_set: None,
        }
    }

    /// The bond's interface name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Create the bond, or adopt an existing one per `existing`; then enslave every
    /// matching interface that exists already.
    pub async fn ensure(&mut self) -> Result<(), String> {
        let name = self.cfg.name.clone();
        match link::get_link_by_name(&self.handle, &name).await {
            Ok(Some(info)) => self.adopt(&info)?,
            Ok(None) => self.create().await?,
            Err(e) => return Err(format!("cannot look up {name}: {e}")),
        }
        let links = link::list_links(&self.handle)
            .await
            .map_err(|e| format!("cannot list interfaces: {e}"))?;
        for l in &links {
            if Some(l.index) == self.index {
                self.note_bond_state(l);
            }
        }
        // The primary first (then wired ports): the bond takes its MAC from the first
        // port, and starting on the primary's avoids a MAC change and a carrier blip.
        let mut links = links;
        let primary = self.cfg.primary.clone();
        links.sort_by_key(|l| {
            (
                primary.as_deref() != Some(l.name.as_str()),
                !is_wired(&l.name),
                l.index,
            )
        });
        for l in links {
            if l.controller.is_some() && l.controller == self.index {
                info!("{name}: {} is already a port", l.name);
                self.ports.insert(l.index, l.name.clone());
                self.tried.insert(l.index, l.name.clone());
            } else {
                self.consider(&l).await;
            }
        }
        self.set_primary_if_due().await;
        Ok(())
    }

    fn adopt(&mut self, info: &LinkInfo) -> Result<(), String> {
        let name = &self.cfg.name;
        if info.kind.as_deref() != Some("bond") {
            return Err(format!(
                "{name} exists but is not a bond ({}); remove it or set [bond] name to another name",
                info.kind.as_deref().unwrap_or("unknown kind")
            ));
        }
        let b = info.bond.clone().unwrap_or_default();
        let mut diffs = Vec::new();
        if b.mode != Some(1) {
            diffs.push(format!("mode is {:?}, not active-backup (1)", b.mode));
        }
        if b.fail_over_mac != Some(self.cfg.fail_over_mac_value()) {
            diffs.push(format!(
                "fail_over_mac is {:?}, not {} (it can only be changed while the bond has no ports)",
                b.fail_over_mac, self.cfg.fail_over_mac
            ));
        }
        if b.miimon != Some(self.cfg.miimon) {
            diffs.push(format!("miimon is {:?}, not {}", b.miimon, self.cfg.miimon));
        }
        if !diffs.is_empty() {
            let list = diffs.join("; ");
            if self.cfg.existing == "refuse" {
                return Err(format!(
                    "{name} exists with other settings: {list}. Delete it (ip link del {name}) or set [bond] existing = \"adopt\""
                ));
            }
            warn!("{name}: adopting the existing bond as it is: {list}");
        } else {
            info!("{name}: adopting the existing bond (index {})", info.index);
        }
        self.index = Some(info.index);
        Ok(())
    }

    async fn create(&mut self) -> Result<(), String> {
        let name = self.cfg.name.clone();
        let fom = match self.cfg.fail_over_mac_value() {
            0 => BondFailOverMac::None,
            2 => BondFailOverMac::Follow,
            _ => BondFailOverMac::Active,
        };
        let reselect = match self.cfg.primary_reselect_value() {
            1 => BondPrimaryReselect::Better,
            2 => BondPrimaryReselect::Failure,
            _ => BondPrimaryReselect::Always,
        };
        let msg = LinkBond::new(&name)
            .mode(BondMode::ActiveBackup)
            .fail_over_mac(fom)
            .miimon(self.cfg.miimon)
            .primary_reselect(reselect)
            .up()
            .build();
        if let Err(e) = self.handle.link().add(msg).execute().await {
            let e = NlError::from_rtnl("create bond", name.clone(), e);
            let hint = if e.is_errno(libc::EOPNOTSUPP) {
                " (this kernel has no bonding driver: load the `bonding` module or enable CONFIG_BONDING)"
            } else if e.is_errno(libc::EPERM) {
                " (needs CAP_NET_ADMIN)"
            } else {
                ""
            };
            return Err(format!("{e}{hint}"));
        }
        let info = link::get_link_by_name(&self.handle, &name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name} vanished right after it was created"))?;
        info!(
            "{name}: created (active-backup, fail_over_mac {}, miimon {} ms, index {})",
            self.cfg.fail_over_mac, self.cfg.miimon, info.index
        );
        self.index = Some(info.index);
        Ok(())
    }

    /// Enslave `l` if it matches, is free, and was not tried before.
    async fn consider(&mut self, l: &LinkInfo) {
        let Some(bond) = self.index else { return };
        if l.index == bond
            || l.kind.as_deref() == Some("bond")
            || l.name == "lo"
            || self.tried.contains_key(&l.index)
            || !port_matches(&self.cfg.ports, l)
        {
            return;
        }
        self.tried.insert(l.index, l.name.clone());
        if let Some(c) = l.controller {
            if c != bond {
                warn!(
                    "{}: {} matches the port list but belongs to another controller (index {c}); leaving it",
                    self.cfg.name, l.name
                );
                return;
            }
        }
        match self.enslave(l).await {
            Ok(()) => {
                info!("{}: enslaved {}", self.cfg.name, l.name);
                self.ports.insert(l.index, l.name.clone());
            }
            Err(e) => warn!("{}: could not enslave {}: {e}", self.cfg.name, l.name),
        }
    }

    /// Down, flush addresses (the bond carries them now), set controller, up.
    async fn enslave(&self, l: &LinkInfo) -> Result<(), NlError> {
        let Some(bond) = self.index else {
            return Ok(());
        };
        let h = &self.handle;
        h.link()
            .change(LinkUnspec::new_with_index(l.index).down().build())
            .execute()
            .await
            .map_err(|e| NlError::from_rtnl("set link down", l.name.clone(), e))?;
        self.flush_addresses(l).await;
        h.link()
            .change(LinkUnspec::new_with_index(l.index).controller(bond).build())
            .execute()
            .await
            .map_err(|e| {
                NlError::from_rtnl(format!("enslave to {}", self.cfg.name), l.name.clone(), e)
            })?;
        h.link()
            .change(LinkUnspec::new_with_index(l.index).up().build())
            .execute()
            .await
            .map_err(|e| NlError::from_rtnl("set link up", l.name.clone(), e))?;
        Ok(())
    }

    async fn flush_addresses(&self, l: &LinkInfo) {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(l.index)
            .execute();
        let mut doomed = Vec::new();
        while let Ok(Some(msg)) = stream.try_next().await {
            let link_local = msg.attributes.iter().any(|a| match a {
                AddressAttribute::Address(std::net::IpAddr::V6(v6)) => {
                    v6.segments()[0] & 0xffc0 == 0xfe80
                }
                _ => false,
            });
            if msg.header.index == l.index && !link_local {
                doomed.push(msg);
            }
        }
        for msg in doomed {
            if let Err(e) = self.handle.address().del(msg).execute().await {
                warn!(
                    "{}: could not flush an address before enslaving: {e}",
                    l.name
                );
            }
        }
    }

    async fn set_primary_if_due(&mut self) {
        let Some(bond) = self.index else { return };
        let want = match &self.cfg.primary {
            Some(p) => self.ports.iter().find(|(_, n)| *n == p).map(|(i, _)| *i),
            None => self
                .ports
                .iter()
                .find(|(_, n)| is_wired(n))
                .map(|(i, _)| *i),
        };
        let Some(port) = want else { return };
        if self.primary_set == Some(port) {
            return;
        }
        // By index only: a message that also names the bond reads as a rename, which
        // the kernel refuses for an up interface (EBUSY) after applying the option.
        let msg = rtnetlink::LinkMessageBuilder::<LinkBond>::new_with_info_kind(
            rtnetlink::packet_route::link::InfoKind::Bond,
        )
        .index(bond)
        .primary(port)
        .build();
        match self.handle.link().change(msg).execute().await {
            Ok(()) => {
                info!(
                    "{}: primary is {}",
                    self.cfg.name,
                    self.ports.get(&port).map(String::as_str).unwrap_or("?")
                );
                self.primary_set = Some(port);
            }
            Err(e) => warn!(
                "{}",
                NlError::from_rtnl("set primary", self.cfg.name.clone(), e)
            ),
        }
    }

    fn note_bond_state(&mut self, info: &LinkInfo) {
        let active = info.bond.as_ref().and_then(|b| b.active_port);
        if active != self.active {
            let name = active
                .and_then(|i| self.ports.get(&i).cloned())
                .unwrap_or_else(|| "none".into());
            info!(
                "{}: active port is now {name} (bond MAC {})",
                self.cfg.name,
                info.mac.map(|m| fmt_mac(&m)).unwrap_or_default()
            );
            let old = self.active.and_then(|i| self.ports.get(&i).cloned());
            let mac = info.mac.map(|m| fmt_mac(&m));
            crate::events::emit(
                "bond-active-changed",
                Some(&self.cfg.name),
                serde_json::json!({"bond": self.cfg.name, "active_port": active.map(|_| &name), "old_active_port": old, "mac": mac}),
            );
            self.active = active;
        } else if info.mac != self.mac && self.mac.is_some() {
            info!(
                "{}: MAC changed to {}",
                self.cfg.name,
                info.mac.map(|m| fmt_mac(&m)).unwrap_or_default()
            );
        }
        self.mac = info.mac;
    }

    /// React to a link event: enslave new matching ports, forget removed ones, log
    /// failovers. Returns true when the event was about the bond itself being deleted.
    pub async fn on_link(&mut self, ev: &LinkEvent) -> bool {
        match ev {
            LinkEvent::New(info) if Some(info.index) == self.index => {
                self.note_bond_state(info);
                false
            }
            LinkEvent::New(info) => {
                if info.controller.is_some() && info.controller == self.index {
                    if self.ports.insert(info.index, info.name.clone()).is_none() {
                        info!("{}: {} joined", self.cfg.name, info.name);
                    }
                } else if !info.is_port && self.ports.remove(&info.index).is_some() {
                    // While a port is being enslaved the kernel sends events with the
                    // port flag but no controller yet: only both missing means it left.
                    info!("{}: {} left the bond", self.cfg.name, info.name);
                } else {
                    self.consider(info).await;
                }
                self.set_primary_if_due().await;
                false
            }
            LinkEvent::Deleted { index, name } if Some(*index) == self.index => {
                warn!("{name}: the bond was deleted from outside netbond");
                self.index = None;
                self.ports.clear();
                true
            }
            LinkEvent::Deleted { index, name } => {
                self.tried.remove(index);
                if self.ports.remove(index).is_some() {
                    info!("{}: {name} removed; released", self.cfg.name);
                    if self.primary_set == Some(*index) {
                        self.primary_set = None;
                    }
                }
                false
            }
            LinkEvent::Overrun => false,
        }
    }

    /// The bond as `/proc/net/bonding` shows it, for `netbond status`.
    pub async fn status_json(&self) -> serde_json::Value {
        let links = link::list_links(&self.handle).await.unwrap_or_default();
        let bond = links.iter().find(|l| Some(l.index) == self.index);
        let b = bond.and_then(|l| l.bond.clone()).unwrap_or_default();
        let name_of = |i: Option<u32>| {
            i.and_then(|i| links.iter().find(|l| l.index == i))
                .map(|l| l.name.clone())
        };
        let ports: Vec<serde_json::Value> = links
            .iter()
            .filter(|l| l.controller.is_some() && l.controller == self.index)
            .map(|l| {
                let p = l.bond_port.clone().unwrap_or_default();
                serde_json::json!({
                    "name": l.name,
                    "state": if p.active { "active" } else { "backup" },
                    "mii_status": if p.mii_up { "up" } else { "down" },
                    "link_failures": p.link_failures,
                    "permanent_mac": p.perm_mac.map(|m| fmt_mac(&m)),
                    "mac": l.mac.map(|m| fmt_mac(&m)),
                })
            })
            .collect();
        serde_json::json!({
            "name": self.cfg.name,
            "exists": bond.is_some(),
            "mode": match b.mode { Some(1) => "active-backup".to_string(), Some(n) => n.to_string(), None => "unknown".into() },
            "fail_over_mac": match b.fail_over_mac { Some(0) => "none", Some(1) => "active", Some(2) => "follow", _ => "unknown" },
            "miimon_ms": b.miimon,
            "primary": name_of(b.primary),
            "active_port": name_of(b.active_port),
            "mac": bond.and_then(|l| l.mac).map(|m| fmt_mac(&m)),
            "ports": ports,
        })
    }

    /// The bond vanished: make it again (and re-enslave) unless we are stopping.
    pub async fn recreate(&mut self) -> Result<(), String> {
        self.tried.clear();
        self.ports.clear();
        self.primary_set = None;
        self.active = None;
        self.ensure().await
    }

    /// On stop: delete the bond (its ports are released by the kernel) unless
    /// configured to keep it.
    pub async fn teardown(&mut self) {
        let Some(index) = self.index else { return };
        if self.cfg.keep_on_stop {
            info!("{}: left in place (keep_on_stop)", self.cfg.name);
            return;
        }
        match self.handle.link().del(index).execute().await {
            Ok(()) => info!("{}: deleted; ports released", self.cfg.name),
            Err(e) => warn!(
                "{}",
                NlError::from_rtnl("delete bond", self.cfg.name.clone(), e)
            ),
        }
        self.index = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, mac: [u8; 6]) -> LinkInfo {
        LinkInfo {
            index: 3,
            name: name.into(),
            mac: Some(mac),
            up: true,
            carrier: true,
            mtu: 1500,
            controller: None,
            is_port: false,
            kind: None,
            bond: None,
            bond_port: None,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("en*", "enp3s0"));
        assert!(glob_match("wl*", "wlan0"));
        assert!(glob_match("eth?", "eth1"));
        assert!(!glob_match("eth?", "eth10"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("en*", "wlan0"));
        assert!(glob_match("a*b*c", "axxbyyc"));
    }

    #[test]
    fn ports_by_name_glob_or_mac() {
        let l = link("eth1", [2, 0, 0, 0, 0, 0xab]);
        assert!(port_matches(&["eth*".into()], &l));
        assert!(port_matches(&["02:00:00:00:00:AB".into()], &l));
        assert!(!port_matches(
            &["wl*".into(), "02:00:00:00:00:ac".into()],
            &l
        ));
    }
}
