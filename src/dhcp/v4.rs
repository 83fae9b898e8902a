//! The DHCPv4 side of the generic driver (`driver.rs`): the packet socket (broadcasts)
//! and a UDP socket (unicast renewals), the address conflict check (`conflict.rs`), and
//! how a lease reaches the kernel (address, routes, MTU over rtnetlink), resolv.conf
//! and the lease store. Protocol decisions live in `netbond_proto::dhcp4`; this file
//! only carries them out.

use crate::dhcp::conflict::Probe;
use crate::dhcp::driver::{maybe, Driver, Family};
use crate::dhcp::routes4::{wanted_routes, Route};
use crate::dhcp::shared::{Dns4, Shared};
use crate::logging::{debug, info, warn};
use crate::net::arp::Arp;
use crate::net::hwaddr::{current_mac, fmt_mac};
use crate::net::packet::{PacketSocket, Received};
use crate::net::udp4::Udp4Socket;
use crate::state::captive::Source;
use crate::state::store::SavedLease4;
use netbond_proto::dhcp4::{
    Client, ClientId, Config as EngineConfig, Event4, Lease4, ReconfirmCause, State, Transmit4,
};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::{Engine, Instant};
use serde_json::{json, Value};
use std::io;
use std::net::Ipv4Addr;

/// The `dhcp4` object of `netbond status --json`.
type Client4Status = crate::daemon::status_json::Client<crate::daemon::status_json::Lease4Status>;

/// How long a first MTU change waits for the interface's own MTU to reach the disk.
const MTU_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The DHCPv4 driver of one interface.
pub type V4Driver = Driver<V4>;

/// What the DHCPv4 sockets deliver.
pub enum Input4 {
    /// A frame on the packet socket (or its error).
    Packet(io::Result<Received>),
    /// An ARP packet during a conflict check (or its error).
    Arp(io::Result<Arp>),
}

/// DHCPv4's own state beside the engine: sockets and what is in the kernel.
pub struct V4 {
    packet: Option<PacketSocket>,
    /// The lease whose address, routes and MTU are in the kernel now.
    applied: Option<Lease4>,
    applied_routes: Vec<Route>,
    /// A saved lease to put back on the interface at the first pump (restart).
    restore: Option<Lease4>,
    /// The saved lease's address was still on the interface at start (netbond was
    /// restarted, not the host): it counts as online while it is being confirmed.
    kept: bool,
    /// When the engine began re-confirming (after a MAC change or a carrier return), to
    /// log how long it took.
    reconfirm_since: Option<std::time::Instant>,
    probe: Option<Probe>,
    /// The interface's MAC as the engine was last told it (ARP probes are sent with it).
    mac: Option<[u8; 6]>,
    /// Where the last packet came from, for the log line of an engine drop.
    last_from: Option<Ipv4Addr>,
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
    if sh.cfg.dhcp4.captive_portal && !c.extra_request.contains(&114) {
        // RFC 8910: ask for the captive portal URI.
        c.extra_request.push(114);
    }
    c.ipv6_only_preferred = sh.cfg.dhcp4.ipv6_only_preferred;
    c.min_v6only_wait = min_v6only_wait();
    c.seed = rand::random();
    c
}

/// RFC 8925's MIN_V6ONLY_WAIT (300 s), unless NETBOND_TEST_MIN_V6ONLY_WAIT (seconds,
/// 1 to 300) lowers it. That variable is for the tests only (they cannot wait five
/// minutes for DHCPv4 to come back); it is not a configuration key on purpose.
fn min_v6only_wait() -> std::time::Duration {
    let min = netbond_proto::dhcp4::MIN_V6ONLY_WAIT;
    match std::env::var("NETBOND_TEST_MIN_V6ONLY_WAIT")
        .ok()
        .map(|v| v.parse::<u64>())
    {
        None => min,
        Some(Ok(s @ 1..=300)) => {
            warn!("NETBOND_TEST_MIN_V6ONLY_WAIT: the RFC 8925 minimum wait is {s} s, not 300 s (a test setting)");
            std::time::Duration::from_secs(s)
        }
        Some(_) => {
            warn!("NETBOND_TEST_MIN_V6ONLY_WAIT is not 1 to 300 seconds: ignored");
            min
        }
    }
}

impl Driver<V4> {
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
        let fam = V4 {
            packet: None,
            applied: None,
            applied_routes: Vec::new(),
            restore: engine.lease().cloned(),
            kept: false,
            reconfirm_since: None,
            probe: None,
            mac: None,
            last_from: None,
            original_mtu: sh.store.load_original_mtu(&sh.ifname),
            fallbacks: crate::dhcp::fallback::Fallbacks::new(&sh.cfg.dhcp4),
        };
        Driver::with(engine, fam)
    }

    /// A reloaded configuration: the engine takes the new options it sends (hostname,
    /// vendor class) and its timing from the next packet or timer on. The client
    /// identifier is not among them (it is what the server knows this client by).
    pub fn reconfigure(&mut self, sh: &Shared, duid: &Duid, iaid: Iaid) {
        self.engine.set_config(engine_config(sh, duid, iaid));
    }
}

impl Family for V4 {
    const NAME: &'static str = "dhcp4";
    const STOPPED: State = State::Stopped;
    type Engine = Client;
    type Input = Input4;
    type Lease = Lease4;
    type Status = Client4Status;

    fn open(&mut self, ifindex: u32, ifname: &str, _now: Instant) {
        match PacketSocket::open(ifindex) {
            Ok(s) => self.packet = Some(s),
            Err(e) => warn!("dhcp4: {ifname}: {e}"),
        }
    }

    fn needs_open(&self) -> bool {
        self.packet.is_none()
    }

    fn interface_gone(&mut self, engine: &Client) {
        self.packet = None;
        self.applied = None;
        self.applied_routes.clear();
        // A re-created interface starts from its own MTU.
        self.original_mtu = None;
        self.fallbacks.interface_gone();
        // Whatever the engine holds must be put back when the interface returns.
        self.restore = engine.lease().cloned();
    }

    fn hw_address(&mut self, mac: [u8; 6]) {
        self.mac = Some(mac);
    }

    async fn input(&self) -> Input4 {
        // The conflict check's ARP socket, else the link-local fallback's.
        let arp = (self.probe.as_ref().map(Probe::socket)).or_else(|| self.fallbacks.arp_socket());
        tokio::select! {
            rx = maybe(self.packet.as_ref().map(|s| s.recv())) => Input4::Packet(rx),
            a = maybe(arp.map(|s| s.recv())) => Input4::Arp(a),
        }
    }

    fn on_input(&mut self, engine: &mut Client, now: Instant, sh: &Shared, input: Input4) {
        let ifname = sh.ifname.as_str();
        match input {
            Input4::Packet(Ok(rx)) => {
                self.last_from = Some(rx.src_ip);
                engine.handle_packet(now, &rx.payload);
            }
            // The link went down under the socket: a one-off pending error.
            Input4::Packet(Err(e)) if e.kind() == io::ErrorKind::NetworkDown => {
                debug!("dhcp4: {ifname}: {e}");
            }
            Input4::Packet(Err(e)) => {
                warn!(
                    "dhcp4: {ifname}: packet socket failed: {e}; reopening when the link is back"
                );
                self.packet = None;
            }
            Input4::Arp(rx) => {
                let Some(p) = self.probe.as_ref() else {
                    return self.fallbacks.on_arp(now, ifname, &sh.host_macs, rx);
                };
                let (decline, go_on) = p.on_arp(ifname, &sh.host_macs, rx);
                if !go_on {
                    self.probe = None;
                }
                if let Some(addr) = decline {
                    engine.decline(now, addr);
                }
            }
        }
    }

    fn deadline(&self, _engine: &Client) -> Option<Instant> {
        [
            self.probe.as_ref().map(Probe::deadline),
            self.fallbacks.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn prepare(&mut self, _engine: &mut Client, sh: &mut Shared) {
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
        self.run_probe(sh, sh.clock.now());
    }

    async fn transmit(&mut self, engine: &mut Client, sh: &mut Shared, now: Instant) {
        // A wakeup with nothing due (a stray packet, say) needs no MAC read.
        if engine.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        // The MAC comes from netlink (RTM_NEWLINK -> daemon -> iface ->
        // Driver::hw_address_changed). This read is only the fallback for the moment no
        // event can have reached us yet: the kernel has just changed the MAC and its
        // RTM_NEWLINK is still queued behind this wakeup. A packet built with the old
        // chaddr would then be lost (the server, or the AP, hears only the new MAC).
        match current_mac(&sh.ifname) {
            Ok(mac) => {
                if self.mac.is_some_and(|m| m != mac) {
                    debug!(
                        "dhcp4: {}: MAC {} read before a transmit, ahead of its netlink event",
                        sh.ifname,
                        fmt_mac(&mac)
                    );
                }
                self.mac = Some(mac);
                engine.hw_address_changed(now, mac);
            }
            Err(_) => {
                // No interface: run timers (expiry) but send nothing.
                engine.handle_timeout(now);
                return;
            }
        }
        while let Some(tx) = engine.poll_transmit(now) {
            self.send(sh, &tx).await;
        }
    }

    async fn on_event(
        &mut self,
        _engine: &Client,
        sh: &mut Shared,
        ev: Event4,
        prev: Option<State>,
    ) {
        // A saved lease confirmed (INIT-REBOOT) is told to hooks as dhclient does: REBOOT.
        let rebooted = prev == Some(State::Rebooting);
        self.on_event4(sh, ev, rebooted).await;
    }

    fn lost(ev: Event4) -> Option<Lease4> {
        match ev {
            Event4::Lost { lease, .. } => Some(lease),
            _ => None,
        }
    }

    async fn stopped(
        &mut self,
        sh: &mut Shared,
        lost: Option<Lease4>,
        release: bool,
        deconfigure: bool,
    ) {
        if deconfigure {
            self.fallbacks.drop_all(sh, "stopped").await;
        }
        let Some(lease) = lost else { return };
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

    /// A lease a server confirmed, or one whose address was kept on the interface
    /// across a restart while it is being confirmed.
    fn online(&self, engine: &Client) -> bool {
        engine.lease().is_some()
            && (self.kept
                || matches!(
                    engine.state(),
                    State::Bound | State::Renewing | State::Rebinding | State::Reconfirming
                ))
    }

    fn has_lease(engine: &Client) -> bool {
        engine.lease().is_some()
    }

    fn short_status(engine: &Client) -> String {
        match engine.lease() {
            Some(l) => format!("v4 {}/{}", l.address, l.prefix_len),
            None => format!("v4 {}", engine.state()),
        }
    }

    fn status_json(&self, engine: &Client, now: Instant) -> Client4Status {
        let mut c = crate::daemon::status_json::dhcp4(engine.state().as_str(), engine.lease(), now);
        c.fallbacks = Some(self.fallbacks.status_json());
        c.ipv6_only_secs_left = engine.ipv6_only_until().map(|t| (t - now).as_secs());
        c
    }

    async fn before_events(&mut self, engine: &Client, sh: &mut Shared) {
        // Before the events: a fallback is dropped before a new lease is applied (the
        // lease's router may be the fallback's, whose route must not go after it).
        let (state, leased) = (engine.state().as_str(), engine.lease().is_some());
        self.fallbacks.pump(sh, state, leased).await;
    }

    fn log_status(engine: &Client, ifname: &str, now: Instant) {
        match engine.lease() {
            Some(l) => info!(
                "status: {ifname}: dhcp4 {} {}/{} from {}, {} s left",
                engine.state(),
                l.address,
                l.prefix_len,
                l.server,
                l.remaining_secs(now)
                    .map_or("infinite".to_string(), |s| s.to_string())
            ),
            None => info!("status: {ifname}: dhcp4 {} (no lease)", engine.state()),
        }
    }
}

impl V4 {
    fn run_probe(&mut self, sh: &Shared, now: Instant) {
        if let Some(p) = self.probe.as_mut() {
            if !p.run(sh, now, self.mac) {
                self.probe = None;
            }
        }
    }

    fn start_probe(&mut self, sh: &Shared, addr: Ipv4Addr) {
        self.probe = Probe::start(sh, addr);
        self.run_probe(sh, sh.clock.now());
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

    async fn on_event4(&mut self, sh: &mut Shared, ev: Event4, rebooted: bool) {
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
            }
            Event4::Renewed(l) => self.on_renewed(sh, l, rebooted).await,
            Event4::Changed { old, new } => {
                info!(
                    "dhcp4: {}: address changed {} -> {}/{}",
                    sh.ifname, old.address, new.address, new.prefix_len
                );
                self.apply(sh, &new, false).await;
                self.start_probe(sh, new.address);
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
            ev => self.log_event(sh, ev),
        }
    }

    /// The same address confirmed: a renewal, a saved lease confirmed (REBOOT for the
    /// hooks, as dhclient says), or a re-confirmation after a MAC change.
    async fn on_renewed(&mut self, sh: &mut Shared, l: Lease4, rebooted: bool) {
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

    /// Events that only need a log line (and for some, a monitor event).
    fn log_event(&mut self, sh: &Shared, ev: Event4) {
        match ev {
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
            // The engine re-confirms the lease it holds; the address stays. Timed from
            // here to the ACK (the `Renewed` above) for the log and the event.
            Event4::Reconfirming(cause) => {
                match cause {
                    ReconfirmCause::MacChanged { old, new } => info!(
                        "dhcp4: {}: MAC changed from {} to {}; re-confirming the lease",
                        sh.ifname,
                        fmt_mac(&old),
                        fmt_mac(&new)
                    ),
                    ReconfirmCause::LinkUp => debug!(
                        "dhcp4: {}: carrier back; re-confirming the lease",
                        sh.ifname
                    ),
                }
                if self.reconfirm_since.is_none() {
                    self.reconfirm_since = Some(std::time::Instant::now());
                }
            }
            Event4::Dropped(why) => {
                // Formatted only when debug is on: a flood of bogus packets must stay cheap.
                let from = self.last_from.unwrap_or(Ipv4Addr::UNSPECIFIED);
                debug!("dhcp4: {}: dropped a packet from {from}: {why}", sh.ifname);
            }
            Event4::IgnoredOption(why) => {
                let from = self.last_from.unwrap_or(Ipv4Addr::UNSPECIFIED);
                warn!("dhcp4: {}: ignored an option from {from}: {why}", sh.ifname);
            }
            Event4::Ipv6OnlyPreferred { server, wait } => {
                info!(
                    "dhcp4: {}: {server} prefers IPv6-only (RFC 8925): no IPv4 address, DHCPv4 paused for {} s",
                    sh.ifname,
                    wait.as_secs()
                );
                let ev = json!({"server": server.to_string(), "wait_secs": wait.as_secs()});
                crate::daemon::events::emit("dhcp4-ipv6-only", Some(&sh.ifname), ev);
            }
            _ => {}
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
                        // Kept on the writer thread, not on the loop, and on disk
                        // before the MTU changes: a process killed right after the
                        // change must still find it to put it back after a restart.
                        if now_mtu.is_some() {
                            sh.leases.original_mtu(&sh.ifname, now_mtu);
                            if !sh.leases.flush(MTU_RECORD_WAIT).await {
                                warn!(
                                    "dhcp4: {}: the original MTU is not on disk yet; a restart \
                                     now could not put it back",
                                    sh.ifname
                                );
                            }
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
        let portal = l
            .captive_portal
            .as_deref()
            .filter(|_| sh.cfg.dhcp4.captive_portal);
        crate::state::captive::set(&sh.ifname, Source::Dhcp4, portal);
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
        crate::state::captive::set(&sh.ifname, Source::Dhcp4, None);
    }
}

fn fmt_lease(secs: Option<u32>) -> String {
    match secs {
        Some(s) => format!("{s} s"),
        None => "infinite".into(),
    }
}
