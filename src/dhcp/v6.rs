//! The DHCPv6 side of the generic driver (`driver.rs`): the UDP 546 socket, the router
//! advertisement watcher (which picks stateful or stateless mode, and carries RFC 8106
//! DNS), and how a lease reaches the kernel (addresses over rtnetlink), resolv.conf and
//! the lease store. Protocol decisions live in `netbond_proto::dhcp6`.

use crate::dhcp::driver::{maybe, Driver, Family};
use crate::dhcp::shared::{Dns6, Shared};
use crate::logging::{debug, info, warn};
use crate::net::ra::{RaFlags, RaWatcher};
use crate::net::udp6::{is_address_not_ready, Udp6Socket};
use crate::state::captive::Source;
use crate::state::store::SavedLease6;
use netbond_proto::dhcp6::{
    Addr6, Client, Config as EngineConfig, Event6, Lease6, ModeSetting, State, Transmit6,
};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::{Engine, Instant};
use serde_json::{json, Value};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;

/// Router solicitations sent while waiting for the first RA (RFC 4861: 3).
const MAX_RS: u32 = 3;
/// RFC 4861 RTR_SOLICITATION_INTERVAL.
const RS_INTERVAL: Duration = Duration::from_secs(4);
/// How soon to retry a send refused because the link-local address is still tentative.
/// First retry after a send refused because the link cannot carry IPv6 yet (the link
/// just came up: its multicast route or link-local address is a moment away); doubled
/// on each refusal up to [`NOT_READY_MAX`].
const NOT_READY_RETRY: Duration = Duration::from_millis(2);
/// Longest wait between such retries.
const NOT_READY_MAX: Duration = Duration::from_millis(200);

fn engine_config(sh: &Shared, iaid: Iaid) -> EngineConfig {
    let c = &sh.cfg.dhcp6;
    let iaid_pd = c
        .iaid_pd
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Iaid(iaid.0.wrapping_add(1)));
    EngineConfig {
        iaid_na: c.ia_na.then_some(iaid),
        iaid_pd: c.ia_pd.then_some(iaid_pd),
        rapid_commit: c.rapid_commit,
        mode: c.mode,
        solicit_delay: c.solicit_delay,
        request_ntp: c.request_ntp,
        fqdn: c
            .send_hostname
            .then(|| crate::state::identity::host_name(&sh.cfg))
            .flatten(),
        user_class: c.user_class.as_ref().map(|u| u.as_bytes().to_vec()),
        // RFC 8910: ask for the captive portal URI (option 103).
        extra_request: c
            .request
            .iter()
            .copied()
            .chain(c.captive_portal.then_some(103))
            .collect(),
        vendor_class: sh.cfg.dhcp6_vendor_class(),
        extra_options: sh.cfg.dhcp6_send().unwrap_or_default(),
        seed: rand::random(),
    }
}

fn to_saved(sh: &Shared, l: &Lease6) -> SavedLease6 {
    SavedLease6 {
        acquired_unix: sh.clock.unix_time(l.acquired),
        lease: l.clone(),
    }
}

/// A saved lease on this process's engine timeline.
fn from_saved(sh: &Shared, s: SavedLease6) -> Option<Lease6> {
    Some(Lease6 {
        acquired: sh.clock.engine_from_unix(s.acquired_unix),
        ..s.lease
    })
}

/// Seconds left of a lifetime counted from `acquired` (None = infinite).
fn left(acquired: Instant, now: Instant, secs: u32) -> Option<u32> {
    if secs == u32::MAX {
        return None;
    }
    let gone = (now - acquired).as_secs();
    Some(u64::from(secs).saturating_sub(gone) as u32)
}

/// The `dhcp6` object of `netbond status --json`.
type Client6Status = crate::daemon::status_json::Client<crate::daemon::status_json::Lease6Status>;

/// The DHCPv6 driver of one interface.
pub type V6Driver = Driver<V6>;

/// What the DHCPv6 sockets deliver.
pub enum Input6 {
    /// A datagram on UDP 546 (or its error).
    Udp(io::Result<(SocketAddrV6, Vec<u8>)>),
    /// A router advertisement (or the watcher's error).
    Ra(io::Result<RaFlags>),
}

/// DHCPv6's own state beside the engine: sockets, router advertisements and what is
/// in the kernel.
pub struct V6 {
    /// Router solicitations are only worth sending when the RA decides the mode.
    follow_ra: bool,
    udp: Option<Udp6Socket>,
    ra: Option<RaWatcher>,
    /// Addresses now in the kernel.
    applied: Vec<Addr6>,
    restore: Option<Lease6>,
    /// The saved lease's addresses were still on the interface at start (a restart of
    /// netbond): online while the Confirm runs.
    kept: bool,
    rs_sent: u32,
    next_rs: Option<Instant>,
    seen_ra: bool,
    /// A transmit that failed because no link-local address was usable yet.
    held: Option<(Transmit6, Instant)>,
    /// The current wait for a not-ready link (see [`NOT_READY_RETRY`]).
    not_ready_wait: Duration,
    /// DNS from DHCPv6 (merged with the RA's into `Shared::dns6`).
    dhcp_dns: Dns6,
    /// RFC 8106 servers and domains from RAs, each until its expiry (`None`: never).
    ra_dns: Vec<(Ipv6Addr, Option<Instant>)>,
    ra_domains: Vec<(String, Option<Instant>)>,
    /// The RA DNS changed since it was last merged.
    ra_dns_dirty: bool,
    /// The delegated prefix handed on to downstream interfaces (`pd.rs`).
    pd: crate::dhcp::pd::Delegation,
    /// `[dhcp6] captive_portal`: show the RA's and DHCPv6's portal URI.
    captive_portal: bool,
}

impl Driver<V6> {
    /// A driver, starting with Confirm (or Rebind, with delegated prefixes) when a saved
    /// lease is still valid.
    pub fn new(sh: &Shared, duid: &Duid, iaid: Iaid) -> Self {
        let cfg = engine_config(sh, iaid);
        let now = sh.clock.now();
        let saved = sh
            .store
            .load_lease6(&sh.ifname)
            .and_then(|s| from_saved(sh, s));
        let engine = match saved {
            Some(l) if !l.addresses.is_empty() || !l.prefixes.is_empty() => {
                info!(
                    "dhcp6: {}: saved lease with {} address(es) and {} prefix(es): {} it",
                    sh.ifname,
                    l.addresses.len(),
                    l.prefixes.len(),
                    // RFC 8415 18.2.12 (see Client::from_saved).
                    if l.prefixes.is_empty() || !sh.cfg.dhcp6.ia_pd {
                        "confirming"
                    } else {
                        "rebinding"
                    }
                );
                Client::from_saved(cfg, duid.clone(), l, now)
            }
            _ => Client::new(cfg, duid.clone(), now),
        };
        let fam = V6 {
            follow_ra: sh.cfg.dhcp6.mode == ModeSetting::Auto,
            udp: None,
            ra: None,
            applied: Vec::new(),
            restore: engine.lease().cloned(),
            kept: false,
            rs_sent: 0,
            next_rs: None,
            seen_ra: false,
            held: None,
            not_ready_wait: NOT_READY_RETRY,
            dhcp_dns: Dns6::default(),
            ra_dns: Vec::new(),
            ra_domains: Vec::new(),
            ra_dns_dirty: false,
            pd: crate::dhcp::pd::Delegation::new(sh),
            captive_portal: sh.cfg.dhcp6.captive_portal,
        };
        Driver::with(engine, fam)
    }

    /// A kernel report that DAD failed for one of our addresses.
    pub fn dad_failed(&mut self, now: Instant, ifname: &str, addr: Ipv6Addr) {
        if self.fam.applied.iter().any(|a| a.addr == addr) {
            warn!("dhcp6: {ifname}: duplicate address detection failed for {addr}: declining it");
            self.fam.applied.retain(|a| a.addr != addr);
            self.engine.decline(now, addr);
            crate::daemon::events::emit(
                "dhcp6-conflict",
                Some(ifname),
                json!({"address": addr.to_string()}),
            );
        }
    }
}

impl Family for V6 {
    const NAME: &'static str = "dhcp6";
    const STOPPED: State = State::Stopped;
    type Engine = Client;
    type Input = Input6;
    type Lease = Lease6;
    type Status = Client6Status;

    fn open(&mut self, ifindex: u32, ifname: &str, now: Instant) {
        match Udp6Socket::open(ifindex, ifname) {
            Ok(s) => self.udp = Some(s),
            Err(e) => warn!("dhcp6: {ifname}: {e}"),
        }
        match RaWatcher::open(ifindex, ifname) {
            Ok(s) => self.ra = Some(s),
            Err(e) => warn!("dhcp6: {ifname}: cannot watch router advertisements: {e}"),
        }
        self.rs_sent = 0;
        self.seen_ra = false;
        self.next_rs = self.follow_ra.then_some(now);
    }

    fn needs_open(&self) -> bool {
        self.udp.is_none() || self.ra.is_none()
    }

    fn interface_gone(&mut self, engine: &Client) {
        self.udp = None;
        self.ra = None;
        self.next_rs = None;
        self.held = None;
        self.applied.clear();
        self.restore = engine.lease().cloned();
    }

    fn link_up(&mut self, now: Instant) {
        self.rs_sent = 0;
        self.next_rs = self.follow_ra.then_some(now);
    }

    async fn input(&self) -> Input6 {
        tokio::select! {
            rx = maybe(self.udp.as_ref().map(|s| s.recv())) => Input6::Udp(rx),
            ra = maybe(self.ra.as_ref().map(|s| s.next())) => Input6::Ra(ra),
        }
    }

    fn on_input(&mut self, engine: &mut Client, now: Instant, sh: &Shared, input: Input6) {
        let ifname = sh.ifname.as_str();
        match input {
            Input6::Udp(Ok((_, bytes))) => engine.handle_packet(now, &bytes),
            Input6::Udp(Err(e)) if e.kind() == io::ErrorKind::NetworkDown => {
                debug!("dhcp6: {ifname}: {e}")
            }
            Input6::Udp(Err(e)) => {
                warn!("dhcp6: {ifname}: socket failed: {e}; reopening when the link is back");
                self.udp = None;
            }
            Input6::Ra(Ok(f)) => {
                if !self.seen_ra {
                    info!(
                        "dhcp6: {ifname}: router {} advertises managed={} other={}",
                        f.router, f.managed, f.other
                    );
                }
                self.seen_ra = true;
                self.next_rs = None;
                engine.ra_flags(now, f.managed, f.other);
                self.learn_ra_dns(now, &f);
                if let Some(why) = f.captive_refused {
                    warn!(
                        "dhcp6: {ifname}: ignored the captive portal URI of router {}: {why}",
                        f.router
                    );
                }
                let uri = f.captive_portal.as_deref().filter(|_| self.captive_portal);
                crate::state::captive::ra(ifname, f.router, uri);
            }
            Input6::Ra(Err(e)) => debug!("dhcp6: {ifname}: RA socket: {e}"),
        }
    }

    /// A pending RS, a held transmit, an RA DNS expiry; nothing while stopped.
    fn deadline(&self, engine: &Client) -> Option<Instant> {
        if engine.state() == State::Stopped {
            return None;
        }
        [
            self.next_rs,
            self.held.as_ref().map(|h| h.1),
            self.ra_dns_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn prepare(&mut self, engine: &mut Client, sh: &mut Shared) {
        if engine.state() == State::Stopped {
            return;
        }
        let now = sh.clock.now();
        self.expire_ra_dns(now);
        if self.ra_dns_dirty {
            let dhcp = self.dhcp_dns.clone();
            self.set_dns(sh, dhcp);
        }
        if let Some(lease) = self.restore.take() {
            if let (Some(index), true) = (sh.ifindex, sh.applier.is_some()) {
                // After a restart the addresses are still there: keep them (replaced in
                // place, never removed) while the Confirm runs.
                let present = crate::net::apply::list_addrs6(&sh.handle, index)
                    .await
                    .map(|v| lease.addresses.iter().all(|a| v.contains(&a.addr)))
                    .unwrap_or(false);
                self.kept = present;
                info!(
                    "dhcp6: {}: {} {} while it is confirmed",
                    sh.ifname,
                    if present { "keeping" } else { "restoring" },
                    fmt_addrs(&lease)
                );
                self.apply(sh, &lease, true).await;
            } else {
                self.restore = Some(lease);
            }
        }
        if self.next_rs.is_some_and(|t| now >= t) {
            self.send_rs(sh, now).await;
        }
    }

    async fn transmit(&mut self, engine: &mut Client, sh: &mut Shared, now: Instant) {
        if let Some((tx, at)) = self.held.take() {
            if now >= at {
                self.send(sh, tx, now).await;
            } else {
                self.held = Some((tx, at));
            }
        }
        while self.held.is_none() {
            let Some(tx) = engine.poll_transmit(now) else {
                break;
            };
            self.send(sh, tx, now).await;
        }
    }

    async fn on_event(&mut self, engine: &Client, sh: &mut Shared, ev: Event6, _: Option<State>) {
        self.on_event6(engine, sh, ev).await;
    }

    fn lost(ev: Event6) -> Option<Lease6> {
        match ev {
            Event6::Lost { lease, .. } => Some(lease),
            _ => None,
        }
    }

    async fn stopped(
        &mut self,
        sh: &mut Shared,
        lost: Option<Lease6>,
        release: bool,
        deconfigure: bool,
    ) {
        // Nothing goes out while stopped: not a held message, not a solicitation.
        self.held = None;
        self.next_rs = None;
        if release && lost.is_some() {
            sh.leases.remove(6, &sh.ifname);
        }
        if release || deconfigure {
            let why = if release { "released" } else { "stopped" };
            self.pd.clear(sh, why).await;
        }
        if deconfigure {
            let applied = self.applied.clone();
            self.remove(sh, &applied).await;
            self.ra_dns.clear();
            self.ra_domains.clear();
            self.set_dns(sh, Dns6::default());
            crate::state::ntp::clear(&sh.ifname, 6);
            crate::state::captive::set(&sh.ifname, Source::Dhcp6, None);
            crate::state::captive::set(&sh.ifname, Source::Ra, None);
        }
        if let Some(l) = lost {
            let kind = if release {
                "dhcp6-released"
            } else {
                "dhcp6-stopped"
            };
            let how = json!({"deconfigured": deconfigure});
            crate::daemon::events::v6(kind, &sh.ifname, None, Some(&l), how);
        }
    }

    fn restarted(&mut self, now: Instant) {
        self.restore = None;
        self.seen_ra = false;
        self.rs_sent = 0;
        self.next_rs = self.follow_ra.then_some(now);
    }

    /// An address a server confirmed, or one kept on the interface across a restart
    /// while the Confirm runs.
    fn online(&self, engine: &Client) -> bool {
        engine.state() != State::Stopped
            && engine.lease().is_some_and(|l| !l.addresses.is_empty())
            && (self.kept
                || matches!(
                    engine.state(),
                    State::Bound | State::Renewing | State::Rebinding
                ))
    }

    fn has_lease(engine: &Client) -> bool {
        engine.lease().is_some_and(|l| !l.addresses.is_empty())
    }

    fn short_status(engine: &Client) -> String {
        match engine.lease() {
            Some(l) if !l.addresses.is_empty() => format!("v6 {}", l.addresses[0].addr),
            _ => format!("v6 {}", engine.state()),
        }
    }

    fn status_json(&self, engine: &Client, now: Instant) -> Client6Status {
        let mut c = crate::daemon::status_json::dhcp6(engine.state().as_str(), engine.lease(), now);
        c.delegated = Some(self.pd.status_json());
        c
    }

    /// The delegated prefix follows the lease, except while stopped: the stop itself
    /// cleared it when it released or deconfigured, and a plain stop keeps it.
    async fn after_events(&mut self, engine: &Client, sh: &mut Shared) {
        if engine.state() != State::Stopped {
            self.pd.sync(sh, engine.lease()).await;
        }
    }

    fn log_status(engine: &Client, ifname: &str, _now: Instant) {
        let addrs: Vec<String> = engine
            .lease()
            .map(|l| l.addresses.iter().map(|a| a.addr.to_string()).collect())
            .unwrap_or_default();
        info!(
            "status: {ifname}: dhcp6 {} [{}]",
            engine.state(),
            addrs.join(", ")
        );
    }
}

impl V6 {
    /// Set DHCPv6's DNS and write the merge with the RA's: DHCPv6 servers and domains
    /// first, then those of RAs not already there.
    fn set_dns(&mut self, sh: &mut Shared, dhcp: Dns6) {
        self.dhcp_dns = dhcp;
        self.ra_dns_dirty = false;
        let mut merged = self.dhcp_dns.clone();
        for (a, _) in &self.ra_dns {
            if !merged.servers.contains(a) {
                merged.servers.push(*a);
            }
        }
        for (d, _) in &self.ra_domains {
            if !merged.domains.contains(d) {
                merged.domains.push(d.clone());
            }
        }
        crate::daemon::events::dns6(&sh.ifname, &sh.dns6, &merged);
        sh.dns6 = merged;
        sh.update_dns();
    }

    /// Take an RA's RDNSS/DNSSL: a lifetime of 0 removes an entry, others (re)start it.
    fn learn_ra_dns(&mut self, now: Instant, f: &RaFlags) {
        fn upsert<T: PartialEq + Clone>(
            list: &mut Vec<(T, Option<Instant>)>,
            new: &[(T, u32)],
            now: Instant,
        ) -> bool {
            let mut changed = false;
            for (v, life) in new {
                let pos = list.iter().position(|x| x.0 == *v);
                match (pos, *life) {
                    (Some(i), 0) => {
                        list.remove(i);
                        changed = true;
                    }
                    (None, 0) => {}
                    (pos, life) => {
                        let until =
                            (life != u32::MAX).then(|| now + Duration::from_secs(u64::from(life)));
                        match pos {
                            Some(i) => list[i].1 = until,
                            None if list.len() < 8 => {
                                list.push((v.clone(), until));
                                changed = true;
                            }
                            None => {}
                        }
                    }
                }
            }
            changed
        }
        let a = upsert(&mut self.ra_dns, &f.rdnss, now);
        let b = upsert(&mut self.ra_domains, &f.dnssl, now);
        self.ra_dns_dirty |= a || b;
    }

    /// Drop RA DNS entries whose lifetime ran out.
    fn expire_ra_dns(&mut self, now: Instant) {
        let live = |e: &Option<Instant>| e.is_none_or(|t| t > now);
        let before = self.ra_dns.len() + self.ra_domains.len();
        self.ra_dns.retain(|x| live(&x.1));
        self.ra_domains.retain(|x| live(&x.1));
        if self.ra_dns.len() + self.ra_domains.len() != before {
            self.ra_dns_dirty = true;
        }
    }

    /// When the next RA DNS entry expires.
    fn ra_dns_deadline(&self) -> Option<Instant> {
        let a = self.ra_dns.iter().filter_map(|x| x.1);
        let b = self.ra_domains.iter().filter_map(|x| x.1);
        a.chain(b).min()
    }

    /// The wait before retrying a send the link refused, doubling each time.
    fn backoff_not_ready(&mut self) -> Duration {
        let w = self.not_ready_wait;
        self.not_ready_wait = (w * 2).min(NOT_READY_MAX);
        w
    }

    async fn send_rs(&mut self, sh: &Shared, now: Instant) {
        let Some(ra) = &self.ra else {
            self.next_rs = None;
            return;
        };
        match ra.send_router_solicitation().await {
            Ok(()) => {
                self.rs_sent += 1;
                debug!("dhcp6: {}: sent router solicitation", sh.ifname);
                self.next_rs = (self.rs_sent < MAX_RS).then(|| now + RS_INTERVAL);
            }
            // No usable link-local address yet (DAD still running): try again soon.
            Err(e) if not_ready(&e) => self.next_rs = Some(now + self.backoff_not_ready()),
            Err(e) => {
                debug!("dhcp6: {}: router solicitation: {e}", sh.ifname);
                self.next_rs = None;
            }
        }
    }

    async fn send(&mut self, sh: &Shared, tx: Transmit6, now: Instant) {
        let Some(udp) = &self.udp else { return };
        match udp.send(&tx.payload).await {
            Ok(()) => {
                self.not_ready_wait = NOT_READY_RETRY;
                debug!("dhcp6: {}: sent {:?}", sh.ifname, tx.msg_type)
            }
            Err(e) if not_ready(&e) => {
                // No usable link-local address yet (tentative, or the link just came
                // up): try again shortly rather than waiting out a retransmission.
                let wait = self.backoff_not_ready();
                self.held = Some((tx, now + wait));
            }
            Err(e) => warn!(
                "dhcp6: {}: could not send {:?}: {e}",
                sh.ifname, tx.msg_type
            ),
        }
    }

    async fn on_event6(&mut self, engine: &Client, sh: &mut Shared, ev: Event6) {
        match ev {
            Event6::Bound(l) => {
                info!("dhcp6: {}: bound {}", sh.ifname, fmt_addrs(&l));
                self.apply(sh, &l, false).await;
                crate::daemon::events::v6("dhcp6-bound", &sh.ifname, Some(&l), None, Value::Null);
            }
            Event6::Renewed(l) => {
                info!("dhcp6: {}: renewed {}", sh.ifname, fmt_addrs(&l));
                self.apply(sh, &l, false).await;
                crate::daemon::events::v6("dhcp6-renewed", &sh.ifname, Some(&l), None, Value::Null);
            }
            Event6::Lost { lease, reason } => {
                info!(
                    "dhcp6: {}: lost {} ({reason:?})",
                    sh.ifname,
                    fmt_addrs(&lease)
                );
                self.remove(sh, &lease.addresses).await;
                let why = json!({"reason": crate::daemon::events::reason(reason)});
                crate::daemon::events::v6("dhcp6-lost", &sh.ifname, None, Some(&lease), why);
                if engine.lease().is_none() {
                    self.kept = false;
                    self.set_dns(sh, Dns6::default());
                    crate::state::ntp::clear(&sh.ifname, 6);
                    crate::state::captive::set(&sh.ifname, Source::Dhcp6, None);
                    sh.leases.remove(6, &sh.ifname);
                }
            }
            Event6::Info(i) => {
                info!(
                    "dhcp6: {}: stateless configuration: {} DNS server(s), {} domain(s)",
                    sh.ifname,
                    i.dns.len(),
                    i.domains.len()
                );
                let dns = Dns6 {
                    servers: i.dns.clone(),
                    domains: i.domains.clone(),
                };
                let info = json!({"dns": dns.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "domains": i.domains, "ntp": i.ntp.iter().map(ToString::to_string).collect::<Vec<_>>()});
                crate::daemon::events::emit("dhcp6-info", Some(&sh.ifname), info);
                self.set_dns(sh, dns);
                crate::state::ntp::set(&sh.ifname, 6, &i.ntp);
                let portal = i.captive_portal.as_deref().filter(|_| self.captive_portal);
                crate::state::captive::set(&sh.ifname, Source::Dhcp6, portal);
            }
            Event6::Dropped(why) => debug!("dhcp6: {}: dropped: {why}", sh.ifname),
            Event6::Backoff {
                failures,
                wait,
                reason,
            } => {
                if wait.is_zero() {
                    info!("dhcp6: {}: no lease: {reason}; soliciting again", sh.ifname);
                } else {
                    warn!(
                        "dhcp6: {}: no lease: {reason} ({failures} failures in a row); backing off {:.1} s before the next Solicit",
                        sh.ifname,
                        wait.as_secs_f32()
                    );
                }
            }
        }
    }

    async fn apply(&mut self, sh: &mut Shared, l: &Lease6, restoring: bool) {
        // Saved first, as in v4: a crash after the addresses are added must not leave
        // addresses the next start does not know it holds.
        if !restoring {
            // On the writer thread; only this interface's task waits for it.
            sh.leases.save6(&sh.ifname, to_saved(sh, l)).await;
        }
        let now = sh.clock.now();
        if let Some(a) = sh.applier.as_ref() {
            for addr in &l.addresses {
                let valid = left(l.acquired, now, addr.valid);
                let preferred = left(l.acquired, now, addr.preferred);
                if valid == Some(0) {
                    continue;
                }
                if let Err(e) = a
                    .add_or_replace_addr6(addr.addr, 128, valid, preferred, true)
                    .await
                {
                    warn!("dhcp6: {}: {e}", sh.ifname);
                }
            }
        }
        let gone: Vec<Addr6> = self
            .applied
            .iter()
            .filter(|old| !l.addresses.iter().any(|a| a.addr == old.addr))
            .copied()
            .collect();
        self.remove(sh, &gone).await;
        self.applied = l.addresses.clone();
        let dns = Dns6 {
            servers: l.dns.clone(),
            domains: l.domains.clone(),
        };
        self.set_dns(sh, dns);
        crate::state::ntp::set(&sh.ifname, 6, &l.ntp);
        let portal = l.captive_portal.as_deref().filter(|_| self.captive_portal);
        crate::state::captive::set(&sh.ifname, Source::Dhcp6, portal);
    }

    async fn remove(&mut self, sh: &Shared, addrs: &[Addr6]) {
        if let Some(a) = sh.applier.as_ref() {
            for addr in addrs {
                if let Err(e) = a.del_addr6(addr.addr, 128).await {
                    warn!("dhcp6: {}: {e}", sh.ifname);
                }
            }
        }
        self.applied
            .retain(|x| !addrs.iter().any(|a| a.addr == x.addr));
    }
}

/// The link cannot send IPv6 yet: its link-local address is tentative
/// (EADDRNOTAVAIL) or it has just come up (ENETUNREACH until the kernel adds the
/// link-local route).
fn not_ready(e: &io::Error) -> bool {
    is_address_not_ready(e) || e.kind() == io::ErrorKind::NetworkUnreachable
}

fn fmt_addrs(l: &Lease6) -> String {
    let mut parts: Vec<String> = l
        .addresses
        .iter()
        .map(|a| format!("{}/128", a.addr))
        .collect();
    parts.extend(
        l.prefixes
            .iter()
            .map(|p| format!("prefix {}/{}", p.prefix, p.len)),
    );
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}
