//! The DHCPv4 driver: connects the sans-IO engine to the packet socket, the UDP socket
//! for unicast renewals, rtnetlink (addresses, routes, MTU), resolv.conf and the lease
//! store. Protocol decisions live in `netbond_proto::dhcp4`; this file only carries them
//! out.

use crate::dhcp::shared::{Dns4, Shared};
use crate::net::apply::{classify_route, RoutePolicy};
use crate::net::hwaddr::{current_mac, fmt_mac};
use crate::net::packet::{PacketSocket, Received};
use crate::net::udp4::Udp4Socket;
use crate::state::store::SavedLease4;
use netbond_proto::dhcp4::{
    prefix_to_mask, Client, ClientId, Config as EngineConfig, Event4, Lease4, Transmit4,
};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::Instant;
use serde_json::{json, Value};
use std::io;
use std::net::Ipv4Addr;
use tracing::{debug, info, warn};

/// ARP probes sent for a new address (RFC 5227 PROBE_NUM).
const PROBES: u8 = 3;
/// Between probes (shorter than RFC 5227's 1-2 s: the address is already in use, the
/// probes only look for a conflict).
const PROBE_GAP: std::time::Duration = std::time::Duration::from_millis(300);
/// How long after the first probe answers count.
const PROBE_WINDOW: std::time::Duration = std::time::Duration::from_millis(1200);
/// The first probe waits a random 0..PROBE_WAIT (RFC 5227's PROBE_WAIT). The address
/// is already configured, so the wait delays nothing; it spreads the probes of many
/// interfaces bound at once. That matters when they share a LAN: Linux answers a probe
/// for a local address on every interface of the host, so each probe costs a flood
/// over the LAN and an answer from each sibling, which must not crowd out the other
/// interfaces' first exchanges (measured: 40 % of the loop's time at N = 256).
const PROBE_WAIT_MS: u64 = 1000;
/// While other interfaces of this process are still in their first exchange (the start
/// window is busy), the first probe is put off in steps of this, for at most
/// PROBE_DEFER_MAX: the conflict check is background work and the measured cost of its
/// floods and answers (40 % of the loop at N = 256) otherwise delays their leases.
const PROBE_DEFER: std::time::Duration = std::time::Duration::from_millis(100);
const PROBE_DEFER_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// A conflict check in progress for a newly bound address.
struct Probe {
    sock: crate::net::arp::ArpSocket,
    addr: Ipv4Addr,
    sent: u8,
    next: Option<Instant>,
    until: Instant,
    /// The first probe waits no longer than this for other interfaces' first exchanges.
    defer_until: Instant,
}

/// A route as installed: destination, prefix length, gateway.
type Route = (Ipv4Addr, u8, Option<Ipv4Addr>);

/// The DHCPv4 side of one interface.
pub struct V4Driver {
    engine: Client,
    packet: Option<PacketSocket>,
    /// The lease whose address, routes and MTU are in the kernel now.
    applied: Option<Lease4>,
    applied_routes: Vec<Route>,
    /// A saved lease to put back on the interface at the first pump (restart).
    restore: Option<Lease4>,
    /// The saved lease's address was still on the interface at start (netbond was
    /// restarted, not the host): it counts as online while it is being confirmed.
    kept: bool,
    /// When a MAC change started a re-confirmation, to log how long it took.
    reconfirm_since: Option<std::time::Instant>,
    last_state: &'static str,
    probe: Option<Probe>,
    /// The MAC netlink last reported for the interface, and the one last handed to the
    /// engine: when they agree and nothing is due, a wakeup (a stray packet, say) needs
    /// no MAC read and no transmit attempt.
    link_mac: Option<[u8; 6]>,
    engine_mac: Option<[u8; 6]>,
    /// The interface's MTU before option 26 changed it, put back when netbond
    /// deconfigures. Kept in the state dir too, so a restart that keeps the network
    /// still knows it.
    original_mtu: Option<u32>,
    /// Link-local and static fallback while there is no lease (`fallback.rs`).
    fallbacks: crate::dhcp::fallback::Fallbacks,
}

/// Build the engine's configuration from the file's.
pub fn engine_config(sh: &Shared, duid: &Duid, iaid: Iaid) -> EngineConfig {
    use crate::config::ClientIdSetting;
    let client_id = match sh.cfg.dhcp4_client_id() {
        Ok(ClientIdSetting::Duid) => ClientId::Raw(duid.as_bytes().to_vec()),
        Ok(ClientIdSetting::Raw(b)) => ClientId::Raw(b),
        _ => ClientId::Rfc4361 {
            iaid,
            duid: duid.clone(),
        },
    };
    let mut c = EngineConfig::new(client_id);
    let (initial, max, timeout, retry, reboot) = sh.cfg.dhcp4_timing();
    c.initial_interval = initial;
    c.max_interval = max;
    c.timeout = timeout;
    c.retry = retry;
    c.reboot = reboot;
    if sh.cfg.dhcp4.send_hostname {
        match crate::state::identity::host_name(&sh.cfg) {
            Some(h) if h.contains('.') => c.fqdn = Some(h),
            h => c.hostname = h,
        }
    }
    c.vendor_class = sh
        .cfg
        .dhcp4
        .vendor_class
        .as_ref()
        .map(|v| v.as_bytes().to_vec());
    c.user_class = sh
        .cfg
        .dhcp4
        .user_class
        .as_ref()
        .map(|u| u.as_bytes().to_vec());
    c.extra_request = sh.cfg.dhcp4.request.clone();
    c.rapid_commit = sh.cfg.dhcp4.rapid_commit;
    c.extra_options = sh.cfg.dhcp4_send().unwrap_or_default();
    c.seed = rand::random();
    c
}

impl V4Driver {
    /// A driver starting from the saved lease when there is a valid one.
    pub fn new(sh: &Shared, duid: &Duid, iaid: Iaid) -> Self {
        let cfg = engine_config(sh, duid, iaid);
        let now = sh.clock.now();
        let saved = sh.store.load_lease4(&sh.ifname).map(|s| {
            let mut lease = s.lease;
            lease.acquired = sh.clock.engine_from_unix(s.acquired_unix);
            lease
        });
        let engine = match saved {
            Some(lease) => {
                info!(
                    "dhcp4: {}: saved lease {}/{} from {}: confirming it (INIT-REBOOT)",
                    sh.ifname, lease.address, lease.prefix_len, lease.server
                );
                Client::from_saved(cfg, lease, now)
            }
            None => Client::new(cfg, now),
        };
        let restore = engine.lease().cloned();
        V4Driver {
            engine,
            packet: None,
            applied: None,
            applied_routes: Vec::new(),
            restore,
            kept: false,
            reconfirm_since: None,
            last_state: "",
            probe: None,
            link_mac: None,
            engine_mac: None,
            original_mtu: sh.store.load_original_mtu(&sh.ifname),
            fallbacks: crate::dhcp::fallback::Fallbacks::new(&sh.cfg.dhcp4),
        }
    }

    /// A reloaded configuration: the engine takes the new options it sends (hostname,
    /// vendor class) and its timing from the next packet or timer on. The client
    /// identifier is not among them (it is what the server knows this client by).
    pub fn reconfigure(&mut self, sh: &Shared, duid: &Duid, iaid: Iaid) {
        self.engine.set_config(engine_config(sh, duid, iaid));
    }

    /// Open the packet socket on a (new) interface index.
    pub fn open(&mut self, ifindex: u32, ifname: &str) {
        match PacketSocket::open(ifindex) {
            Ok(s) => self.packet = Some(s),
            Err(e) => warn!("dhcp4: {ifname}: {e}"),
        }
    }

    /// The interface vanished: its sockets and addresses are gone with it.
    pub fn interface_gone(&mut self, now: Instant) {
        self.packet = None;
        self.applied = None;
        self.applied_routes.clear();
        // A re-created interface starts from its own MTU.
        self.original_mtu = None;
        self.fallbacks.interface_gone();
        // Whatever the engine holds must be put back when the interface returns.
        self.restore = self.engine.lease().cloned();
        self.engine.link_changed(now, false);
    }

    /// The interface's MAC as netlink reports it (at attach and on every RTM_NEWLINK).
    pub fn note_link_mac(&mut self, mac: Option<[u8; 6]>) {
        self.link_mac = mac;
    }

    /// Carrier change; a socket that failed is reopened when the link comes up.
    pub fn link_changed(&mut self, now: Instant, up: bool, ifindex: u32, ifname: &str) {
        if up && self.packet.is_none() {
            self.open(ifindex, ifname);
        }
        self.engine.link_changed(now, up);
    }

    /// The socket to wait on, if open.
    pub fn socket(&self) -> Option<&PacketSocket> {
        self.packet.as_ref()
    }

    /// The next engine deadline (or probe step).
    pub fn deadline(&self) -> Option<Instant> {
        let probe = self
            .probe
            .as_ref()
            .map(|p| p.next.unwrap_or(p.until).min(p.until));
        [self.engine.poll_timeout(), probe, self.fallbacks.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The ARP socket of a conflict check in progress.
    pub fn arp_socket(&self) -> Option<&crate::net::arp::ArpSocket> {
        (self.probe.as_ref().map(|p| &p.sock)).or_else(|| self.fallbacks.arp_socket())
    }

    /// An ARP packet (or an error) during a conflict check.
    pub fn on_arp(
        &mut self,
        now: Instant,
        ifname: &str,
        host: &crate::net::hwaddr::HostMacs,
        rx: io::Result<crate::net::arp::Arp>,
    ) {
        let Some(p) = self.probe.as_ref() else {
            return self.fallbacks.on_arp(now, ifname, host, rx);
        };
        match rx {
            Ok(arp) => {
                // Another interface of this host answering for our address (Linux's
                // weak-host ARP) is not a conflict. On a LAN shared by many of this
                // host's interfaces every probe draws such an answer from each of
                // them: rule those out with the table first, and read our own MAC (a
                // socket and an ioctl) only for a packet that still looks like one.
                if arp.conflicts(p.addr, &[])
                    && !host.contains(&arp.sha)
                    && arp.conflicts(
                        p.addr,
                        &current_mac(ifname).ok().into_iter().collect::<Vec<_>>(),
                    )
                {
                    warn!(
                        "dhcp4: {ifname}: address conflict: {} is in use by {}; declining it",
                        p.addr,
                        fmt_mac(&arp.sha)
                    );
                    let addr = p.addr;
                    let (a, m) = (addr.to_string(), fmt_mac(&arp.sha));
                    crate::daemon::events::emit(
                        "dhcp4-conflict",
                        Some(ifname),
                        serde_json::json!({"address": a, "mac": m}),
                    );
                    self.probe = None;
                    self.engine.decline(now, addr);
                }
            }
            Err(e) => {
                debug!("dhcp4: {ifname}: ARP socket: {e}; conflict check abandoned");
                self.probe = None;
            }
        }
    }

    fn start_probe(&mut self, sh: &Shared, addr: Ipv4Addr) {
        self.probe = None;
        if !sh.cfg.dhcp4.conflict_detection {
            return;
        }
        let Some(index) = sh.ifindex else { return };
        match crate::net::arp::ArpSocket::open(index, addr) {
            Ok(sock) => {
                let first = sh.clock.now()
                    + std::time::Duration::from_millis(rand::random_range(0..PROBE_WAIT_MS));
                self.probe = Some(Probe {
                    sock,
                    addr,
                    sent: 0,
                    next: Some(first),
                    until: first + PROBE_WINDOW,
                    defer_until: first + PROBE_DEFER_MAX,
                });
            }
            Err(e) => debug!("dhcp4: {}: no conflict check: {e}", sh.ifname),
        }
    }

    fn run_probe(&mut self, sh: &Shared, now: Instant) {
        let Some(p) = self.probe.as_mut() else { return };
        if now >= p.until {
            debug!("dhcp4: {}: no conflict for {}", sh.ifname, p.addr);
            self.probe = None;
            return;
        }
        if p.next.is_some_and(|t| now >= t) {
            let others_starting = sh.pacer.as_ref().is_some_and(|x| x.busy());
            if p.sent == 0 && others_starting && now < p.defer_until {
                p.next = Some(now + PROBE_DEFER);
                p.until = now + PROBE_DEFER + PROBE_WINDOW;
                return;
            }
            if let Ok(mac) = current_mac(&sh.ifname) {
                if let Err(e) = p.sock.send(crate::net::arp::Arp::probe(mac, p.addr)) {
                    debug!("dhcp4: {}: ARP probe: {e}", sh.ifname);
                }
            }
            p.sent += 1;
            p.next = (p.sent < PROBES).then(|| now + PROBE_GAP);
        }
    }

    /// Engine state name, for status.
    pub fn state_name(&self) -> &'static str {
        self.engine.state_name()
    }

    /// The lease, for status.
    pub fn lease(&self) -> Option<&Lease4> {
        self.engine.lease()
    }

    /// Online (see `online.rs`): a lease a server confirmed, or one whose address was
    /// kept on the interface across a restart while it is being confirmed.
    pub fn online(&self) -> bool {
        self.engine.lease().is_some()
            && (self.kept
                || matches!(
                    self.engine.state_name(),
                    "BOUND" | "RENEWING" | "REBINDING" | "RECONFIRMING"
                ))
    }

    /// A frame arrived on the packet socket (or it failed).
    pub fn on_receive(&mut self, now: Instant, ifname: &str, rx: io::Result<Received>) {
        match rx {
            Ok(rx) => {
                self.engine.handle_packet(now, &rx.payload);
                if let Some(why) = self.engine.last_drop() {
                    debug!(
                        "dhcp4: {ifname}: dropped a packet from {}: {why}",
                        rx.src_ip
                    );
                } else {
                    for why in self.engine.ignored_options() {
                        warn!(
                            "dhcp4: {ifname}: ignored an option from {}: {why}",
                            rx.src_ip
                        );
                    }
                }
            }
            // The link went down under the socket: a one-off pending error.
            Err(e) if e.kind() == io::ErrorKind::NetworkDown => {
                debug!("dhcp4: {ifname}: {e}");
            }
            Err(e) => {
                warn!(
                    "dhcp4: {ifname}: packet socket failed: {e}; reopening when the link is back"
                );
                self.packet = None;
            }
        }
    }

    /// Send the message of the exchange in flight again now, keeping its xid (a Wi-Fi
    /// port just became able to carry it).
    pub fn resend_now(&mut self, now: Instant) {
        self.engine.resend_now(now);
    }

    /// Ask for a renewal now.
    pub fn renew(&mut self, now: Instant) {
        self.engine.renew(now);
    }

    /// Send what is due and apply what changed.
    pub async fn pump(&mut self, sh: &mut Shared) {
        if let Some(lease) = self.restore.take() {
            if let Some(index) = sh.ifindex {
                // After a crash or `kill -9` the address is still there: say so, since
                // keeping it (replace in place, never remove and re-add) is the point.
                let present = crate::net::apply::list_addrs4(&sh.handle, index)
                    .await
                    .map(|v| v.contains(&(lease.address, lease.prefix_len)))
                    .unwrap_or(false);
                self.kept = present;
                info!(
                    "dhcp4: {}: {} {}/{} while it is confirmed",
                    sh.ifname,
                    if present { "keeping" } else { "restoring" },
                    lease.address,
                    lease.prefix_len
                );
                self.apply(sh, &lease, true).await;
            } else {
                self.restore = Some(lease);
            }
        }
        let now = sh.clock.now();
        self.run_probe(sh, now);
        let due = self.engine.poll_timeout().is_some_and(|t| t <= now);
        let mac_moved = self.link_mac.is_some() && self.link_mac != self.engine_mac;
        let idle = !due && !mac_moved && self.engine_mac.is_some();
        if !idle {
            loop {
                // Re-read right before building: an RTM_NEWLINK may still be in flight.
                let mac = match current_mac(&sh.ifname) {
                    Ok(m) => m,
                    Err(_) => {
                        // No interface: run timers (expiry) but send nothing.
                        self.engine.handle_timeout(now);
                        break;
                    }
                };
                self.engine_mac = Some(mac);
                let Some(tx) = self.engine.poll_transmit(now, mac) else {
                    break;
                };
                self.send(sh, &tx).await;
            }
        }
        // A saved lease confirmed (INIT-REBOOT) is told to hooks as dhclient does: REBOOT.
        let rebooted = self.last_state == "REBOOTING";
        let state = self.engine.state_name();
        if state != self.last_state {
            debug!("dhcp4: {}: state {} -> {state}", sh.ifname, self.last_state);
            if state == "RECONFIRMING" && self.reconfirm_since.is_none() {
                self.reconfirm_since = Some(std::time::Instant::now());
            }
            self.last_state = state;
        }
        let (state, leased) = (self.engine.state_name(), self.engine.lease().is_some());
        self.fallbacks.pump(sh, state, leased).await;
        while let Some(ev) = self.engine.poll_event() {
            self.on_event(sh, ev, rebooted).await;
        }
    }

    async fn send(&mut self, sh: &Shared, tx: &Transmit4) {
        let what = format!("{:?}", tx.kind).to_uppercase();
        let result = if tx.is_broadcast() {
            match &self.packet {
                Some(p) => p.send(tx.chaddr, tx.src, tx.dst, &tx.payload).await,
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no packet socket",
                )),
            }
        } else {
            match Udp4Socket::open(&sh.ifname, tx.src) {
                Ok(s) => s.send(tx.dst, &tx.payload).await,
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => debug!(
                "dhcp4: {}: sent {what} to {} chaddr {}",
                sh.ifname,
                tx.dst,
                fmt_mac(&tx.chaddr)
            ),
            Err(e) => warn!(
                "dhcp4: {}: could not send {what} to {}: {e}",
                sh.ifname, tx.dst
            ),
        }
    }

    async fn on_event(&mut self, sh: &mut Shared, ev: Event4, rebooted: bool) {
        match ev {
            Event4::Bound(l) => {
                info!(
                    "dhcp4: {}: bound {}/{} from {} (lease {}) chaddr {}",
                    sh.ifname,
                    l.address,
                    l.prefix_len,
                    l.server,
                    fmt_lease(l.lease_secs),
                    fmt_mac(&l.chaddr)
                );
                self.apply(sh, &l, false).await;
                crate::daemon::events::v4("dhcp4-bound", &sh.ifname, Some(&l), None, Value::Null);
                self.start_probe(sh, l.address);
                self.run_probe(sh, sh.clock.now());
            }
            Event4::Renewed(l) => {
                let reconfirmed = self.reconfirm_since.map(|t| t.elapsed().as_millis());
                if let Some(t) = self.reconfirm_since.take() {
                    info!(
                        "dhcp4: {}: re-confirmed {} from new MAC {} in {} ms",
                        sh.ifname,
                        l.address,
                        fmt_mac(&l.chaddr),
                        t.elapsed().as_millis()
                    );
                } else {
                    info!(
                        "dhcp4: {}: renewed {}/{} from {} (lease {})",
                        sh.ifname,
                        l.address,
                        l.prefix_len,
                        l.server,
                        fmt_lease(l.lease_secs)
                    );
                }
                self.apply(sh, &l, false).await;
                let kind = match (reconfirmed, rebooted) {
                    (Some(_), _) => "dhcp4-reconfirmed",
                    (None, true) => "dhcp4-rebooted",
                    (None, false) => "dhcp4-renewed",
                };
                let extra = reconfirmed.map_or(Value::Null, |ms| json!({ "ms": ms }));
                crate::daemon::events::v4(kind, &sh.ifname, Some(&l), None, extra);
            }
            Event4::Changed { old, new } => {
                info!(
                    "dhcp4: {}: address changed {} -> {}/{}",
                    sh.ifname, old.address, new.address, new.prefix_len
                );
                self.apply(sh, &new, false).await;
                self.start_probe(sh, new.address);
                self.run_probe(sh, sh.clock.now());
                if let Some(a) = &sh.applier {
                    if let Err(e) = a.del_addr4(old.address, old.prefix_len).await {
                        warn!("dhcp4: {}: {e}", sh.ifname);
                    }
                }
                crate::daemon::events::v4(
                    "dhcp4-changed",
                    &sh.ifname,
                    Some(&new),
                    Some(&old),
                    Value::Null,
                );
            }
            Event4::Lost { lease, reason } => {
                self.reconfirm_since = None;
                self.kept = false;
                self.probe = None;
                info!("dhcp4: {}: lost {} ({reason:?})", sh.ifname, lease.address);
                self.deconfigure(sh, &lease).await;
                let why = json!({"reason": crate::daemon::events::reason(reason)});
                crate::daemon::events::v4("dhcp4-lost", &sh.ifname, None, Some(&lease), why);
                sh.leases.remove(4, &sh.ifname);
            }
            Event4::Backoff {
                failures,
                wait,
                reason,
                server,
            } => {
                let from = server.map(|s| format!(" from {s}")).unwrap_or_default();
                if wait.is_zero() {
                    info!(
                        "dhcp4: {}: no lease: {reason}{from}; starting over",
                        sh.ifname
                    );
                } else {
                    warn!(
                        "dhcp4: {}: no lease: {reason}{from} ({failures} failures in a row); backing off {:.1} s before the next DISCOVER",
                        sh.ifname,
                        wait.as_secs_f32()
                    );
                }
            }
            Event4::Timeout => {
                warn!(
                    "dhcp4: {}: no lease after the configured timeout; retrying in {} s",
                    sh.ifname, sh.cfg.dhcp4.retry
                );
                crate::daemon::events::emit("dhcp4-timeout", Some(&sh.ifname), Value::Null);
            }
        }
    }

    /// Put `l` in the kernel, replacing in place: an unchanged address is updated, never
    /// removed and re-added.
    async fn apply(&mut self, sh: &mut Shared, l: &Lease4, restoring: bool) {
        // Saved before anything is configured: a crash (kill -9, OOM) between the two
        // must not leave an address on the interface that the next start does not know
        // it holds (it would DISCOVER instead of confirming it).
        if !restoring {
            let saved = SavedLease4 {
                lease: l.clone(),
                acquired_unix: sh.clock.unix_time(l.acquired),
            };
            // On the writer thread (the fsyncs never run on the loop); this
            // interface's task waits for it, the others go on.
            sh.leases.save4(&sh.ifname, saved).await;
        }
        let now = sh.clock.now();
        let Some(a) = sh.applier.as_ref() else { return };
        let valid = l.remaining_secs(now);
        if let Err(e) = a
            .add_or_replace_addr4(l.address, l.prefix_len, l.broadcast(), valid, valid)
            .await
        {
            warn!("dhcp4: {}: {e}", sh.ifname);
        }
        // The same address under another prefix (a renewal with a new mask, or a lease
        // saved by an older netbond with a classful guess): the kernel holds both until
        // the old one is removed, after the new one is in place.
        if let Some(old) = self
            .applied
            .as_ref()
            .filter(|o| o.address == l.address && o.prefix_len != l.prefix_len)
        {
            if let Err(e) = a.del_addr4(old.address, old.prefix_len).await {
                warn!("dhcp4: {}: {e}", sh.ifname);
            }
        }
        if sh.cfg.dhcp4.use_mtu {
            if let Some(mtu) = l.mtu.map(u32::from) {
                let now_mtu = match sh.ifindex {
                    Some(i) => crate::net::link::get_link_by_index(&sh.handle, i)
                        .await
                        .ok()
                        .flatten()
                        .map(|l| l.mtu),
                    None => None,
                };
                if now_mtu != Some(mtu) {
                    if self.original_mtu.is_none() {
                        self.original_mtu = now_mtu;
                        // Kept on the writer thread, not on the loop.
                        if now_mtu.is_some() {
                            sh.leases.original_mtu(&sh.ifname, now_mtu);
                        }
                    }
                    if let Err(e) = a.set_mtu(mtu).await {
                        warn!("dhcp4: {}: {e}", sh.ifname);
                    }
                }
            }
        }
        let wanted = if sh.cfg.dhcp4.use_routes {
            wanted_routes(&sh.ifname, sh.cfg.dhcp4.accept_wide_routes, l)
        } else {
            Vec::new()
        };
        for r in &wanted {
            if let Err(e) = a.replace_route4(r.0, r.1, r.2, Some(l.address)).await {
                warn!("dhcp4: {}: {e}", sh.ifname);
            }
        }
        for old in &self.applied_routes {
            if !wanted.contains(old) {
                if let Err(e) = a.del_route4(old.0, old.1, old.2).await {
                    warn!("dhcp4: {}: {e}", sh.ifname);
                }
            }
        }
        self.applied_routes = wanted;
        self.applied = Some(l.clone());
        let dns = Dns4 {
            servers: l.dns.clone(),
            domain: l.domain.clone(),
            search: l.search.clone(),
        };
        crate::daemon::events::dns4(&sh.ifname, &sh.dns4, &dns);
        sh.dns4 = dns;
        sh.update_dns();
        crate::state::ntp::set(&sh.ifname, 4, &l.ntp);
    }

    async fn deconfigure(&mut self, sh: &mut Shared, lease: &Lease4) {
        if let Some(a) = sh.applier.as_ref() {
            for r in &self.applied_routes {
                if let Err(e) = a.del_route4(r.0, r.1, r.2).await {
                    debug!("dhcp4: {}: {e}", sh.ifname);
                }
            }
            if let Err(e) = a.del_addr4(lease.address, lease.prefix_len).await {
                warn!("dhcp4: {}: {e}", sh.ifname);
            }
            // The MTU the server set goes with its lease: put the interface's own back.
            if let Some(mtu) = self.original_mtu.take() {
                match a.set_mtu(mtu).await {
                    Ok(()) => info!("dhcp4: {}: MTU restored to {mtu}", sh.ifname),
                    Err(e) => warn!("dhcp4: {}: could not restore the MTU: {e}", sh.ifname),
                }
            }
        }
        if self.original_mtu.is_none() {
            sh.leases.original_mtu(&sh.ifname, None);
        }
        self.applied_routes.clear();
        self.applied = None;
        crate::daemon::events::dns4(&sh.ifname, &sh.dns4, &Dns4::default());
        sh.dns4 = Dns4::default();
        sh.update_dns();
        crate::state::ntp::clear(&sh.ifname, 4);
    }

    /// Stop: release (when configured) while the address is still there, then remove
    /// what was configured (when configured).
    pub async fn shutdown(&mut self, sh: &mut Shared, release: bool, deconfigure: bool) {
        let now = sh.clock.now();
        if release {
            self.engine.release(now);
            if let Ok(mac) = current_mac(&sh.ifname) {
                while let Some(tx) = self.engine.poll_transmit(now, mac) {
                    self.send(sh, &tx).await;
                }
            }
        } else {
            self.engine.stop();
        }
        if deconfigure {
            self.fallbacks.drop_all(sh, "stopped").await;
        }
        while let Some(ev) = self.engine.poll_event() {
            if let Event4::Lost { lease, .. } = ev {
                if deconfigure {
                    self.deconfigure(sh, &lease).await;
                }
                let kind = if release {
                    "dhcp4-released"
                } else {
                    "dhcp4-stopped"
                };
                let how = json!({"deconfigured": deconfigure});
                crate::daemon::events::v4(kind, &sh.ifname, None, Some(&lease), how);
                if release {
                    sh.leases.remove(4, &sh.ifname);
                }
            }
        }
    }

    /// Start again after [`V4Driver::shutdown`] (the `dhcp4 start` command).
    pub fn start(&mut self, now: Instant) {
        self.engine.start(now);
    }

    /// The lease as JSON for `netbond status`.
    pub fn status_json(
        &self,
        now: Instant,
    ) -> crate::daemon::status_json::Client<crate::daemon::status_json::Lease4Status> {
        let mut c =
            crate::daemon::status_json::dhcp4(self.engine.state_name(), self.engine.lease(), now);
        c.fallbacks = Some(self.fallbacks.status_json());
        c
    }
}

/// The routes a lease asks for, in install order.
fn wanted_routes(ifname: &str, accept_wide_routes: bool, l: &Lease4) -> Vec<Route> {
    let mut out = Vec::new();
    let listed = if l.routes.is_empty() {
        // RFC 3442: option 3 only when there is no option 121.
        if let Some(gw) = l.routers.iter().find(|g| **g != l.address) {
            // A /32 (what a lease without a subnet mask becomes: never a classful
            // guess) has no neighbours: reach the router with an on-link host route
            // first, as dhclient does for a /32. With a real mask, a router outside
            // the subnet is the server's error and is not made reachable.
            if l.prefix_len == 32 {
                out.push((*gw, 32, None));
            }
            out.push((Ipv4Addr::UNSPECIFIED, 0, Some(*gw)));
        }
        // Option 33 static routes (the engine leaves them empty when option 121 came,
        // per RFC 3442), installed as dhclient and networkd do, under the same policy
        // as option 121 routes.
        &l.static_routes
    } else {
        &l.routes
    };
    for r in listed {
        match classify_route(r.dest, r.prefix_len, accept_wide_routes) {
            RoutePolicy::Accept => {
                let gw = (!r.gateway.is_unspecified()).then_some(r.gateway);
                // A gateway outside our subnet needs an on-link host route first,
                // or the kernel refuses the route ("Nexthop has invalid gateway").
                if let Some(g) = gw {
                    let host = (g, 32, None);
                    if !on_subnet(l, g) && !out.contains(&host) {
                        out.push(host);
                    }
                }
                let route = (r.dest, r.prefix_len, gw);
                if !out.contains(&route) {
                    out.push(route);
                }
            }
            RoutePolicy::RefuseWide => warn!(
                "dhcp4: {ifname}: refused route {}/{} via {}: it would take over traffic beyond the local network (TunnelVision); set [dhcp4] accept_wide_routes = true to allow",
                r.dest, r.prefix_len, r.gateway
            ),
            RoutePolicy::Invalid => warn!(
                "dhcp4: {ifname}: ignored malformed route {}/{}",
                r.dest, r.prefix_len
            ),
        }
    }
    out
}

/// Whether `addr` is inside the lease's own subnet (always false for a /32).
fn on_subnet(l: &Lease4, addr: Ipv4Addr) -> bool {
    let mask = prefix_to_mask(l.prefix_len);
    u32::from(addr) & mask == u32::from(l.address) & mask
}

fn fmt_lease(secs: Option<u32>) -> String {
    match secs {
        Some(s) => format!("{s} s"),
        None => "infinite".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbond_proto::dhcp4::Route4;
    use netbond_proto::Instant;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn lease() -> Lease4 {
        Lease4 {
            address: ip("10.0.0.5"),
            prefix_len: 24,
            server: ip("10.0.0.1"),
            routers: vec![ip("10.0.0.1")],
            dns: vec![],
            domain: None,
            search: vec![],
            hostname: None,
            mtu: None,
            ntp: vec![],
            routes: vec![],
            static_routes: vec![Route4 {
                dest: ip("172.16.0.0"),
                prefix_len: 16,
                gateway: ip("10.0.0.7"),
            }],
            lease_secs: Some(120),
            t1_secs: 60,
            t2_secs: 105,
            acquired: Instant::ZERO,
            chaddr: [2, 0, 0, 0, 0, 1],
        }
    }

    #[test]
    fn option_33_routes_are_installed_after_the_default_route_and_not_with_121() {
        let mut l = lease();
        assert_eq!(
            wanted_routes("eth0", false, &l),
            vec![
                (Ipv4Addr::UNSPECIFIED, 0, Some(ip("10.0.0.1"))),
                (ip("172.16.0.0"), 16, Some(ip("10.0.0.7"))),
            ]
        );
        // With option 121, only its routes (the engine also clears option 33 then).
        l.routes = vec![Route4 {
            dest: ip("192.168.9.0"),
            prefix_len: 24,
            gateway: ip("10.0.0.1"),
        }];
        assert_eq!(
            wanted_routes("eth0", false, &l),
            vec![(ip("192.168.9.0"), 24, Some(ip("10.0.0.1")))]
        );
    }
}
