//! The kernel bond: create or adopt it, enslave matching ports as they appear, release
//! them when they go, report failovers, and tear it down on stop.
//!
//! Everything goes through rtnetlink; every decision is taken on a netlink event, never
//! after a sleep (the reference setup needed `ExecStartPre=sleep 8`).

use crate::config::{glob_match, BondConfig};
use crate::logging::{debug, info, warn};
use crate::net::hwaddr::fmt_mac;
use crate::net::link::{self, LinkEvent, LinkInfo, NlError};
use crate::net::netlink::attr::{AF_UNSPEC, IFF_UP, IFLA_MASTER, NLM_F_CREATE, NLM_F_EXCL};
use crate::net::netlink::attr::{RTM_DELLINK, RTM_NEWLINK};
use crate::net::netlink::{msg, Handle};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// First wait before trying a failed enslave again; doubled per failure up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts on a port that keeps failing.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// When another interface is deleted, pending ports are tried again early (what held
/// them may be gone), but not sooner than this after their last attempt.
const RETRY_MIN_GAP: Duration = Duration::from_secs(1);

/// The wait after the `attempts`-th failure: 1, 2, 4 ... 60 s.
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// A matching port that is not enslaved yet: the enslave failed (`busy` false), or the
/// port belongs to another controller (`busy` true: it is taken when it is freed).
#[derive(Debug, Clone)]
struct Pending {
    /// The port as it was at the last attempt.
    seen: Seen,
    name: String,
    attempts: u32,
    last: Instant,
    next: Instant,
    error: String,
    busy: bool,
}

/// What about a pending port, when it changes, makes a new attempt worthwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    name: String,
    mac: Option<[u8; 6]>,
    controller: Option<u32>,
    is_port: bool,
}

impl Seen {
    fn of(l: &LinkInfo) -> Self {
        Seen {
            name: l.name.clone(),
            mac: l.mac,
            controller: l.controller,
            is_port: l.is_port,
        }
    }
}

/// Why an adopted bond's settings differ from the configuration, one entry per setting.
pub fn adopt_differences(cfg: &BondConfig, b: &crate::net::link::BondInfo) -> Vec<String> {
    let mut diffs = Vec::new();
    if b.mode != Some(1) {
        diffs.push(format!("mode is {:?}, not active-backup (1)", b.mode));
    }
    if b.fail_over_mac != Some(cfg.fail_over_mac_value()) {
        diffs.push(format!(
            "fail_over_mac is {:?}, not {} (it can only be changed while the bond has no ports)",
            b.fail_over_mac, cfg.fail_over_mac
        ));
    }
    if b.miimon != Some(cfg.miimon) {
        diffs.push(format!("miimon is {:?}, not {}", b.miimon, cfg.miimon));
    }
    if b.primary_reselect != Some(cfg.primary_reselect_value()) {
        let name = |v: Option<u8>| match v {
            Some(0) => "always".to_string(),
            Some(1) => "better".to_string(),
            Some(2) => "failure".to_string(),
            other => format!("{other:?}"),
        };
        diffs.push(format!(
            "primary_reselect is {}, not {}",
            name(b.primary_reselect),
            cfg.primary_reselect
        ));
    }
    diffs
}

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
    /// Matching ports not enslaved yet, tried again with backoff: index -> state.
    pending: BTreeMap<u32, Pending>,
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
            pending: BTreeMap::new(),
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
        let diffs = adopt_differences(&self.cfg, &b);
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
        let msg = msg::bond_create(
            &name,
            self.cfg.fail_over_mac_value(),
            self.cfg.miimon,
            self.cfg.primary_reselect_value(),
        );
        if let Err(f) = self
            .handle
            .ack(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &msg)
            .await
        {
            let e = NlError::new("create bond", name.clone(), f);
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

    /// Enslave `l` if it matches, is free, and was not enslaved before. A port that
    /// cannot be enslaved now is kept in `pending` and tried again (see
    /// [`BondManager::next_retry`]).
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
        let now = Instant::now();
        if let Some(p) = self.pending.get(&l.index) {
            // Before the backoff is over, only an event that shows the port changed
            // (released by another controller, renamed, new MAC) is worth an attempt.
            // Up/down and carrier do not count: a failed attempt itself takes the port
            // down and up again, and retrying on those events would loop.
            if now < p.next && p.seen == Seen::of(l) {
                return;
            }
        }
        if let Some(c) = l.controller {
            if c != bond {
                let first = !self.pending.contains_key(&l.index);
                self.note_pending(
                    l,
                    now,
                    format!("belongs to another controller (index {c})"),
                    true,
                );
                if first {
                    warn!(
                        "{}: {} matches the port list but belongs to another controller (index {c}); taking it when it is released",
                        self.cfg.name, l.name
                    );
                }
                return;
            }
        }
        match self.enslave(l).await {
            Ok(()) => {
                match self.pending.remove(&l.index) {
                    Some(p) if !p.busy => info!(
                        "{}: enslaved {} (after {} failed attempt(s))",
                        self.cfg.name, l.name, p.attempts
                    ),
                    _ => info!("{}: enslaved {}", self.cfg.name, l.name),
                }
                self.tried.insert(l.index, l.name.clone());
                self.ports.insert(l.index, l.name.clone());
            }
            Err(e) => {
                let attempts = self.note_pending(l, now, e.to_string(), false);
                let wait = retry_delay(attempts);
                // Logged for the first few and then every tenth: a port that never
                // works must not fill the log.
                if attempts <= 3 || attempts % 10 == 0 {
                    warn!(
                        "{}: could not enslave {} (attempt {attempts}): {e}; trying again in {} s or when it changes",
                        self.cfg.name,
                        l.name,
                        wait.as_secs()
                    );
                } else {
                    debug!(
                        "{}: could not enslave {} (attempt {attempts}): {e}",
                        self.cfg.name, l.name
                    );
                }
            }
        }
    }

    /// Record a port that could not be enslaved; returns its failure count.
    fn note_pending(&mut self, l: &LinkInfo, now: Instant, error: String, busy: bool) -> u32 {
        let p = self.pending.entry(l.index).or_insert_with(|| Pending {
            seen: Seen::of(l),
            name: l.name.clone(),
            attempts: 0,
            last: now,
            next: now,
            error: String::new(),
            busy,
        });
        if busy {
            // Not an attempt: nothing was sent to the kernel. Look again now and then
            // in case the release went unseen.
            p.next = now + RETRY_MAX;
        } else {
            p.attempts += 1;
            p.next = now + retry_delay(p.attempts);
        }
        p.seen = Seen::of(l);
        p.name = l.name.clone();
        p.last = now;
        p.error = error;
        p.busy = busy;
        p.attempts
    }

    /// When the next pending port is due to be tried again.
    pub fn next_retry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next).min()
    }

    /// Try the pending ports whose wait is over.
    pub async fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(i, _)| *i)
            .collect();
        for index in due {
            match link::get_link_by_index(&self.handle, index).await {
                Ok(Some(l)) => {
                    self.consider(&l).await;
                    // Still due means `consider` passed it over (renamed out of the
                    // port list, now a port of the bond, ...): no longer pending, and
                    // a past deadline left in place would wake the loop at once, again.
                    if self.pending.get(&index).is_some_and(|p| p.next <= now) {
                        self.pending.remove(&index);
                    }
                    self.set_primary_if_due().await;
                }
                Ok(None) => {
                    self.pending.remove(&index);
                }
                Err(e) => {
                    debug!("{}: {e}", self.cfg.name);
                    if let Some(p) = self.pending.get_mut(&index) {
                        p.next = now + RETRY_MAX;
                    }
                }
            }
        }
    }

    /// Down, flush addresses (the bond carries them now), set controller, up.
    async fn enslave(&self, l: &LinkInfo) -> Result<(), NlError> {
        let Some(bond) = self.index else {
            return Ok(());
        };
        let h = &self.handle;
        let name = l.name.clone();
        link::change_link(h, &msg::ifinfo(l.index, 0, IFF_UP), "set link down", name).await?;
        self.flush_addresses(l).await;
        let mut body = msg::ifinfo(l.index, 0, 0);
        crate::net::netlink::attr::put_u32(&mut body, IFLA_MASTER, bond);
        let op = format!("enslave to {}", self.cfg.name);
        if let Err(e) = link::change_link(h, &body, &op, l.name.clone()).await {
            // Leave the port as it was found (up), not down and useless until the retry.
            if l.up {
                let _ = link::set_link_up(h, l.index).await;
            }
            return Err(e);
        }
        let up = msg::ifinfo(l.index, IFF_UP, IFF_UP);
        link::change_link(h, &up, "set link up", l.name.clone()).await
    }

    async fn flush_addresses(&self, l: &LinkInfo) {
        let addrs = match crate::net::apply::dump_addrs(&self.handle, l.index, AF_UNSPEC).await {
            Ok(a) => a,
            Err(e) => {
                warn!("{e}");
                return;
            }
        };
        for a in addrs {
            let Some(addr) = a.local else { continue };
            let link_local = match addr {
                std::net::IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
                std::net::IpAddr::V4(_) => false,
            };
            if link_local {
                continue;
            }
            if let Err(f) =
                crate::net::apply::del_addr(&self.handle, l.index, addr, a.prefix_len).await
            {
                let e = NlError::new("flush an address before enslaving", l.name.clone(), f);
                warn!("{e}");
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
        let body = msg::bond_primary(bond, port);
        match link::change_link(&self.handle, &body, "set primary", self.cfg.name.clone()).await {
            Ok(()) => {
                info!(
                    "{}: primary is {}",
                    self.cfg.name,
                    self.ports.get(&port).map(String::as_str).unwrap_or("?")
                );
                self.primary_set = Some(port);
            }
            Err(e) => warn!("{e}"),
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
            crate::daemon::events::emit(
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
                    // Enslaved by someone else while pending: nothing left to retry.
                    self.pending.remove(&info.index);
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
                self.pending.clear();
                true
            }
            LinkEvent::Deleted { index, name } => {
                self.tried.remove(index);
                self.pending.remove(index);
                // What held a pending port busy may be what just went (a macvlan or
                // VLAN on it): try those soon, not at the end of their backoff.
                let soon = Instant::now();
                for p in self.pending.values_mut().filter(|p| !p.busy) {
                    p.next = p.next.min(soon.max(p.last + RETRY_MIN_GAP));
                }
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
    pub async fn status_json(&self) -> crate::daemon::status_json::BondStatus {
        use crate::daemon::status_json as sj;
        let links = link::list_links(&self.handle).await.unwrap_or_default();
        let bond = links.iter().find(|l| Some(l.index) == self.index);
        let b = bond.and_then(|l| l.bond.clone()).unwrap_or_default();
        let name_of = |i: Option<u32>| {
            i.and_then(|i| links.iter().find(|l| l.index == i))
                .map(|l| l.name.clone())
        };
        let mut ports: Vec<_> = links
            .iter()
            .filter(|l| l.controller.is_some() && l.controller == self.index)
            .map(sj::bond_port)
            .collect();
        let now = Instant::now();
        // Matching ports that are not in the bond yet, and why.
        ports.extend(self.pending.values().map(|p| {
            let retry = p.next.saturating_duration_since(now).as_secs();
            sj::bond_pending(&p.name, p.busy, &p.error, p.attempts, retry)
        }));
        let (primary, active) = (name_of(b.primary), name_of(b.active_port));
        sj::bond(&self.cfg.name, bond, primary, active, ports)
    }

    /// The bond vanished: make it again (and re-enslave) unless we are stopping.
    pub async fn recreate(&mut self) -> Result<(), String> {
        self.tried.clear();
        self.ports.clear();
        self.pending.clear();
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
        match self
            .handle
            .ack(RTM_DELLINK, 0, &msg::ifinfo(index, 0, 0))
            .await
        {
            Ok(()) => info!("{}: deleted; ports released", self.cfg.name),
            Err(f) => warn!("{}", NlError::new("delete bond", self.cfg.name.clone(), f)),
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
    fn failed_enslaves_back_off_from_1_to_60_s() {
        let secs: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
        assert_eq!(retry_delay(0), RETRY_FIRST);
    }

    #[test]
    fn only_a_real_change_of_a_pending_port_retries_early() {
        let a = link("eth3", [2, 0, 0, 0, 0, 3]);
        // Down/up and carrier, which the failed attempt itself causes, are no change.
        let mut b = a.clone();
        b.up = false;
        b.carrier = false;
        assert_eq!(Seen::of(&a), Seen::of(&b));
        // Released by another controller, or a new MAC: worth an attempt now.
        let mut c = a.clone();
        c.controller = Some(9);
        assert_ne!(Seen::of(&a), Seen::of(&c));
        let mut d = a.clone();
        d.mac = Some([2, 0, 0, 0, 0, 4]);
        assert_ne!(Seen::of(&a), Seen::of(&d));
    }

    #[test]
    fn adopting_compares_primary_reselect_too() {
        let cfg = BondConfig::default();
        let same = crate::net::link::BondInfo {
            mode: Some(1),
            fail_over_mac: Some(1),
            miimon: Some(100),
            primary_reselect: Some(0),
            ..Default::default()
        };
        assert!(adopt_differences(&cfg, &same).is_empty());
        let other = crate::net::link::BondInfo {
            primary_reselect: Some(1),
            ..same.clone()
        };
        let d = adopt_differences(&cfg, &other);
        assert_eq!(d, ["primary_reselect is better, not always"]);
        let cfg = BondConfig {
            primary_reselect: "failure".into(),
            ..BondConfig::default()
        };
        let d = adopt_differences(&cfg, &same);
        assert_eq!(d, ["primary_reselect is always, not failure"]);
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
