//! One container attachment: the DHCPv4 (and DHCPv6) engines for one interface in one
//! container network namespace, run as a task on the daemon's single event loop.
//!
//! The IPAM plugin never configures the interface (the main plugin does, from the
//! result), so unlike the host drivers in `v4.rs`/`v6.rs` this only talks DHCP, keeps
//! the lease record on disk, and takes the link down when a lease is lost.

use super::config::{Broadcast, Ipv6Mode};
use super::events as cev;
use super::netns;
use super::store::{Key, Record, SavedLease6};
use super::{code, CniError};
use crate::daemon::clock::Clock;
use crate::daemon::events as ev;
use crate::net::hwaddr::current_mac;
use crate::net::packet::PacketSocket;
use crate::net::udp4::Udp4Socket;
use crate::net::udp6::Udp6Socket;
use crate::state::store::SavedLease4;
use netbond_proto::dhcp4::{self, Client, ClientId, Event4, Lease4, Transmit4};
use netbond_proto::dhcp6::{self, Client as Client6, Event6, Lease6, Transmit6};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::Instant;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How the attachment was configured at ADD (kept in its record so that a restarted
/// daemon resumes it the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub cni_version: String,
    pub ipv6: Ipv6Mode,
    /// Option 61 as sent.
    pub client_id: Vec<u8>,
    /// The IAID of this attachment (in the client-id and the IA_NA).
    pub iaid: u32,
    pub hostname: Option<String>,
    /// ADD's wait for the leases, seconds.
    pub timeout: u64,
    /// The BOOTP broadcast flag: on, off, or on for ipvlan (shared MAC).
    pub broadcast: Broadcast,
    /// Extra option codes for the parameter request list (`ipam.request`); defaulted
    /// so records written before the key existed still resume.
    #[serde(default)]
    pub request: Vec<u8>,
}

/// What every attachment shares.
pub struct Ctx {
    pub clock: Clock,
    pub store: super::store::Store,
    pub duid: Duid,
}

enum Cmd {
    Wait(oneshot::Sender<Result<Value, CniError>>),
    Check(oneshot::Sender<Result<(), CniError>>),
    Release(oneshot::Sender<()>),
    Status(oneshot::Sender<Value>),
}

/// The daemon's handle on a running attachment.
pub struct Handle {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The container's namespace (for the events).
    pub netns: PathBuf,
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// The CNI result once every configured family is bound (or the timeout error).
    pub async fn wait(&self) -> Result<Value, CniError> {
        self.ask(Cmd::Wait).await.unwrap_or_else(|| Err(gone()))
    }

    /// CHECK: the leases are held and their addresses are on the interface.
    pub async fn check(&self) -> Result<(), CniError> {
        self.ask(Cmd::Check).await.unwrap_or_else(|| Err(gone()))
    }

    /// Release the leases and end the attachment.
    pub async fn release(&self) {
        let _ = self.ask(Cmd::Release).await;
    }

    /// For `netbond cni status`.
    pub async fn status(&self) -> Value {
        self.ask(Cmd::Status).await.unwrap_or(Value::Null)
    }
}

fn gone() -> CniError {
    CniError::new(
        code::IO_FAILURE,
        "the attachment's task ended",
        "see the daemon's log",
    )
}

/// Open the attachment's sockets inside its namespace and start its task. `saved`
/// resumes the leases of a record (daemon restart).
pub async fn start(
    ctx: Rc<Ctx>,
    key: Key,
    netns_path: PathBuf,
    settings: Settings,
    saved: Option<Record>,
) -> Result<Handle, CniError> {
    let ifname = key.ifname.clone();
    let v6 = settings.ipv6 != Ipv6Mode::None;
    let opened = netns::run_in(&netns_path, move || {
        let ifindex = netns::ifindex(&ifname)?;
        // The stock plugin sets the link up too: the main plugin leaves it down until
        // it has the result, and DHCP needs it up.
        netns::set_up(&ifname, true)?;
        let mac = current_mac(&ifname)?;
        let driver = netns::driver(&ifname).unwrap_or_default();
        let pkt = PacketSocket::open(ifindex)?;
        let udp6 = if v6 {
            Some(Udp6Socket::open(ifindex, &ifname)?)
        } else {
            None
        };
        Ok((mac, driver, pkt, udp6))
    })
    .await;
    let (mac, driver, pkt, udp6) = opened.map_err(|e| {
        let c = if e.kind() == io::ErrorKind::NotFound {
            code::UNKNOWN_CONTAINER
        } else {
            code::IO_FAILURE
        };
        CniError::new(
            c,
            format!("cannot run DHCP on {}: {e}", key.ifname),
            "the interface must exist in CNI_NETNS when the IPAM plugin runs",
        )
    })?;
    let now = ctx.clock.now();
    let mut cfg4 = dhcp4::Config::new(ClientId::Raw(settings.client_id.clone()));
    cfg4.hostname = settings.hostname.clone();
    cfg4.extra_request = settings.request.clone();
    cfg4.seed = rand::random();
    // An ipvlan port shares its parent's MAC, so the kernel cannot hand it a reply
    // unicast to an address it does not have yet.
    cfg4.broadcast_flag = match settings.broadcast {
        Broadcast::On => true,
        Broadcast::Off => false,
        Broadcast::Auto => driver == "ipvlan",
    };
    if cfg4.broadcast_flag {
        debug!(
            "cni: {key}: {} ({driver}): asking for broadcast replies",
            key.ifname
        );
    }
    let cfg6 = dhcp6::Config {
        iaid_na: Some(Iaid(settings.iaid)),
        mode: dhcp6::ModeSetting::Stateful,
        seed: rand::random(),
        ..dhcp6::Config::default()
    };
    let mut rec =
        saved.unwrap_or_else(|| Record::new(key.clone(), netns_path.clone(), settings.clone()));
    rec.netns = netns_path.clone();
    let v4 = match rec.lease4.clone() {
        Some(s) => {
            let mut l = s.lease;
            l.acquired = ctx.clock.engine_from_unix(s.acquired_unix);
            info!(
                "cni: {key}: resuming {}/{} (INIT-REBOOT)",
                l.address, l.prefix_len
            );
            Client::from_saved(cfg4, l, now)
        }
        None => Client::new(cfg4, now),
    };
    let v6 = v6.then(|| match rec.lease6.clone() {
        Some(s) => {
            let mut l = s.lease;
            l.acquired = ctx.clock.engine_from_unix(s.acquired_unix);
            info!("cni: {key}: resuming the DHCPv6 lease");
            Client6::from_saved(cfg6.clone(), ctx.duid.clone(), l, now)
        }
        None => Client6::new(cfg6.clone(), ctx.duid.clone(), now),
    });
    if let Err(e) = ctx.store.save(&rec) {
        warn!("cni: {key}: could not save the attachment: {e}; it will not survive a restart");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = Handle {
        tx,
        netns: netns_path.clone(),
    };
    let att = Attachment {
        ctx,
        key,
        netns: netns_path,
        settings,
        mac,
        v4,
        v6,
        pkt: Some(pkt),
        udp6,
        udp4: None,
        held6: None,
        waiters: Vec::new(),
        rec,
        down: false,
        ra: None,
        ra_retry: None,
        ra_until: None,
        last6_error: None,
    };
    tokio::task::spawn_local(att.run(rx));
    Ok(handle)
}

struct Attachment {
    ctx: Rc<Ctx>,
    key: Key,
    netns: PathBuf,
    settings: Settings,
    mac: [u8; 6],
    v4: Client,
    v6: Option<Client6>,
    pkt: Option<PacketSocket>,
    udp6: Option<Udp6Socket>,
    /// The unicast socket, bound to the leased address inside the namespace.
    udp4: Option<(Ipv4Addr, Udp4Socket)>,
    /// A DHCPv6 message the link could not send yet (tentative link-local), and when
    /// to try again.
    held6: Option<(Transmit6, Instant)>,
    waiters: Vec<(Instant, oneshot::Sender<Result<Value, CniError>>)>,
    rec: Record,
    /// The link was taken down after a lost lease.
    down: bool,
    /// `dhcpv6+ra`: the on-link prefix length and default router the container's kernel
    /// learnt from RAs, once found; when to look again; when to stop waiting for them.
    ra: Option<(Option<u8>, Option<Ipv6Addr>)>,
    ra_retry: Option<Instant>,
    ra_until: Option<Instant>,
    /// The last DHCPv6 socket error, for the ADD timeout message.
    last6_error: Option<String>,
}

enum Wake {
    Cmd(Option<Cmd>),
    P4(io::Result<crate::net::packet::Received>),
    P6(io::Result<(std::net::SocketAddrV6, Vec<u8>)>),
    Timer,
}

/// How long ADD waits for an RA's prefix in `dhcpv6+ra` mode.
const RA_WAIT: Duration = Duration::from_secs(5);

/// Wait 200 ms before retrying a DHCPv6 send the link refused (DAD of the link-local
/// address takes about a second after the link comes up).
const NOT_READY_RETRY: Duration = Duration::from_millis(200);

impl Attachment {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            self.pump().await;
            let deadline = [
                self.v4.poll_timeout(),
                self.v6.as_ref().and_then(|c| c.poll_timeout()),
                self.held6.as_ref().map(|h| h.1),
                self.ra_retry,
                self.waiters.iter().map(|w| w.0).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep_until = deadline.map(|d| self.ctx.clock.tokio_instant(d));
            let wake = tokio::select! {
                c = rx.recv() => Wake::Cmd(c),
                r = async {
                    match &self.pkt {
                        Some(p) => p.recv().await,
                        None => std::future::pending().await,
                    }
                } => Wake::P4(r),
                r = async {
                    match &self.udp6 {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                } => Wake::P6(r),
                _ = async {
                    match sleep_until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => Wake::Timer,
            };
            let now = self.ctx.clock.now();
            match wake {
                // The daemon is stopping: keep the leases (the record stays on disk and
                // the next start resumes them).
                Wake::Cmd(None) => return,
                Wake::Cmd(Some(c)) => {
                    if self.on_cmd(c).await {
                        return;
                    }
                }
                Wake::P4(Ok(rx)) => {
                    self.v4.handle_packet(now, &rx.payload);
                    if let Some(why) = self.v4.last_drop() {
                        debug!(
                            "cni: {}: dropped a DHCPv4 packet from {}: {why}",
                            self.key, rx.src_ip
                        );
                    }
                }
                Wake::P4(Err(e)) => {
                    if e.kind() != io::ErrorKind::NetworkDown {
                        warn!(
                            "cni: {}: DHCPv4 socket failed: {e}; DHCPv4 stops for this attachment",
                            self.key
                        );
                        self.pkt = None;
                    }
                }
                Wake::P6(Ok((_, data))) => {
                    if let Some(c) = self.v6.as_mut() {
                        c.handle_packet(now, &data);
                    }
                }
                // A link change leaves a one-off error on the socket: keep it.
                Wake::P6(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NetworkDown
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                            | io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    debug!("cni: {}: DHCPv6 socket: {e}", self.key);
                    self.last6_error = Some(e.to_string());
                }
                Wake::P6(Err(e)) => {
                    warn!(
                        "cni: {}: DHCPv6 socket failed: {e}; DHCPv6 stops for this attachment",
                        self.key
                    );
                    self.last6_error = Some(e.to_string());
                    self.udp6 = None;
                }
                Wake::Timer => {}
            }
        }
    }

    fn bound4(&self) -> bool {
        self.rec.lease4.is_some()
            && matches!(self.v4.state_name(), "BOUND" | "RENEWING" | "REBINDING")
    }

    fn bound6(&self) -> bool {
        self.v6.is_none() || self.rec.lease6.is_some()
    }

    async fn pump(&mut self) {
        let now = self.ctx.clock.now();
        while let Some(tx) = self.v4.poll_transmit(now, self.mac) {
            self.send4(&tx, false).await;
        }
        while let Some(ev) = self.v4.poll_event() {
            self.on_event4(ev).await;
        }
        if let Some((tx, at)) = self.held6.take() {
            if now >= at {
                self.send6(tx, now).await;
            } else {
                self.held6 = Some((tx, at));
            }
        }
        while self.held6.is_none() {
            let Some(tx) = self.v6.as_mut().and_then(|c| c.poll_transmit(now)) else {
                break;
            };
            self.send6(tx, now).await;
        }
        while let Some(ev) = self.v6.as_mut().and_then(|c| c.poll_event()) {
            self.on_event6(ev).await;
        }
        // Answer ADDs.
        if !self.waiters.is_empty() {
            if self.bound4() && self.bound6() && self.ra_ready(now).await {
                let r = self.result();
                for (_, w) in self.waiters.drain(..) {
                    let _ = w.send(Ok(r.clone()));
                }
            } else {
                let (late, keep): (Vec<_>, Vec<_>) =
                    self.waiters.drain(..).partition(|w| w.0 <= now);
                self.waiters = keep;
                for (_, w) in late {
                    let missing = if !self.bound4() {
                        format!("DHCPv4 (state {})", self.v4.state_name())
                    } else {
                        format!(
                            "DHCPv6 (state {}, last socket error: {})",
                            self.v6.as_ref().map_or("-", |c| c.state_name()),
                            self.last6_error.as_deref().unwrap_or("none")
                        )
                    };
                    warn!(
                        "cni: {}: no {missing} lease within {} s",
                        self.key, self.settings.timeout
                    );
                    let _ = w.send(Err(CniError::new(
                        code::TRY_AGAIN,
                        format!(
                            "no {missing} lease for {} within {} s",
                            self.key.ifname, self.settings.timeout
                        ),
                        "is a DHCP server reachable on this network? the daemon keeps trying until DEL",
                    )));
                }
            }
        }
    }

    /// With `dhcpv6+ra`, the result waits (up to [`RA_WAIT`]) until the container's
    /// kernel has the on-link prefix of the DHCPv6 address from an RA, so that the
    /// address is reported with that prefix length and the router as its gateway.
    async fn ra_ready(&mut self, now: Instant) -> bool {
        if self.settings.ipv6 != Ipv6Mode::Dhcpv6Ra || self.ra.is_some() {
            return true;
        }
        if self.ra_retry.is_some_and(|t| now < t) {
            return false;
        }
        let until = *self.ra_until.get_or_insert(now + RA_WAIT);
        let Some(addr) = self
            .rec
            .lease6
            .as_ref()
            .and_then(|s| s.lease.addresses.first())
            .map(|a| a.addr)
        else {
            return true;
        };
        let ifname = self.key.ifname.clone();
        let found = netns::run_in(&self.netns, move || netns::ra_routes(&ifname, addr)).await;
        match found {
            Ok((Some(plen), router)) => {
                debug!(
                    "cni: {}: RA: {addr} is on a /{plen}, router {router:?}",
                    self.key
                );
                self.ra = Some((Some(plen), router));
                self.ra_retry = None;
                true
            }
            other if now >= until => {
                warn!(
                    "cni: {}: no on-link prefix for {addr} from a Router Advertisement within {} s ({other:?}); reporting it as /128",
                    self.key,
                    RA_WAIT.as_secs()
                );
                self.ra = Some((None, None));
                self.ra_retry = None;
                true
            }
            _ => {
                self.ra_retry = Some(now + NOT_READY_RETRY);
                false
            }
        }
    }

    async fn send4(&mut self, tx: &Transmit4, releasing: bool) {
        let what = format!("{:?}", tx.kind).to_uppercase();
        let r = if tx.is_broadcast() {
            match &self.pkt {
                Some(p) => p.send(tx.chaddr, tx.src, tx.dst, &tx.payload).await,
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no packet socket",
                )),
            }
        } else {
            match self.unicast4(tx.src).await {
                Ok(s) => s.send(tx.dst, &tx.payload).await,
                Err(e) => Err(e),
            }
        };
        match r {
            Ok(()) => debug!("cni: {}: sent {what} to {}", self.key, tx.dst),
            Err(e) if releasing => {
                // The interface is gone (Debian's bridge plugin deletes the veth before
                // it calls IPAM DEL): tell the server from the daemon's namespace, with
                // ciaddr and the client-id that name the lease.
                match send_from_host(tx.dst, &tx.payload).await {
                    Ok(()) => info!(
                        "cni: {}: {what} sent from the daemon's namespace ({e})",
                        self.key
                    ),
                    Err(e2) => warn!("cni: {}: could not send {what}: {e}; {e2}", self.key),
                }
            }
            Err(e) => warn!(
                "cni: {}: could not send {what} to {}: {e}",
                self.key, tx.dst
            ),
        }
    }

    /// The socket bound to `src`:68 inside the namespace, opened once per address.
    async fn unicast4(&mut self, src: Ipv4Addr) -> io::Result<&Udp4Socket> {
        if self.udp4.as_ref().map(|u| u.0) != Some(src) {
            self.udp4 = None;
            let ifname = self.key.ifname.clone();
            let s = netns::run_in(&self.netns, move || Udp4Socket::open(&ifname, src)).await?;
            self.udp4 = Some((src, s));
        }
        Ok(&self.udp4.as_ref().expect("just set").1)
    }

    async fn send6(&mut self, tx: Transmit6, now: Instant) {
        let Some(s) = &self.udp6 else { return };
        match s.send(&tx.payload).await {
            Ok(()) => debug!("cni: {}: sent DHCPv6 {:?}", self.key, tx.msg_type),
            Err(e)
                if crate::net::udp6::is_address_not_ready(&e)
                    || e.kind() == io::ErrorKind::NetworkUnreachable =>
            {
                debug!("cni: {}: {e}; retrying", self.key);
                self.last6_error = Some(e.to_string());
                self.held6 = Some((tx, now + NOT_READY_RETRY));
            }
            Err(e) => {
                warn!("cni: {}: {e}", self.key);
                self.last6_error = Some(e.to_string());
            }
        }
    }

    fn save(&self) {
        if let Err(e) = self.ctx.store.save(&self.rec) {
            warn!(
                "cni: {}: could not save the lease in {}: {e}; it will not survive a restart",
                self.key,
                self.ctx.store.dir().display()
            );
        }
    }

    fn keep4(&mut self, l: &Lease4) {
        self.rec.lease4 = Some(SavedLease4 {
            lease: l.clone(),
            acquired_unix: self.ctx.clock.unix_time(l.acquired),
        });
        self.save();
    }

    async fn on_event4(&mut self, ev: Event4) {
        match ev {
            Event4::Bound(l) => {
                info!(
                    "cni: {}: bound {}/{} from {} (lease {:?} s)",
                    self.key, l.address, l.prefix_len, l.server, l.lease_secs
                );
                self.keep4(&l);
                ev::v4(
                    "dhcp4-bound",
                    &self.key.ifname,
                    Some(&l),
                    None,
                    self.data(json!({})),
                );
            }
            Event4::Renewed(l) => {
                info!(
                    "cni: {}: renewed {} (lease {:?} s)",
                    self.key, l.address, l.lease_secs
                );
                self.keep4(&l);
                ev::v4(
                    "dhcp4-renewed",
                    &self.key.ifname,
                    Some(&l),
                    None,
                    self.data(json!({})),
                );
            }
            Event4::Changed { old, new } => {
                // The main plugin configured the old address from our result; nothing
                // here can move the container to the new one.
                warn!(
                    "cni: {}: the server moved the lease from {} to {}; the container keeps {} until it is re-added",
                    self.key, old.address, new.address, old.address
                );
                self.keep4(&new);
                let e = self.data(json!({}));
                ev::v4("dhcp4-changed", &self.key.ifname, Some(&new), Some(&old), e);
            }
            Event4::Lost { lease, reason } => {
                self.rec.lease4 = None;
                self.save();
                let kind = match reason {
                    dhcp4::LostReason::Released => "dhcp4-released",
                    dhcp4::LostReason::Stopped => "dhcp4-stopped",
                    _ => "dhcp4-lost",
                };
                let e = json!({ "reason": crate::daemon::events::reason(reason) });
                ev::v4(kind, &self.key.ifname, None, Some(&lease), self.data(e));
                if !matches!(
                    reason,
                    dhcp4::LostReason::Released | dhcp4::LostReason::Stopped
                ) {
                    warn!(
                        "cni: {}: lost {} ({reason:?}); taking {} down",
                        self.key, lease.address, self.key.ifname
                    );
                    self.link_down().await;
                }
            }
            Event4::Timeout => {}
            Event4::Backoff {
                failures,
                wait,
                reason,
                server,
            } => {
                let from = server.map(|s| format!(" from {s}")).unwrap_or_default();
                warn!(
                    "cni: {}: no DHCPv4 lease: {reason}{from} ({failures} failures in a row); next DISCOVER in {:.1} s",
                    self.key,
                    wait.as_secs_f32()
                );
            }
        }
    }

    async fn on_event6(&mut self, ev: Event6) {
        let kind = if matches!(ev, Event6::Bound(_)) {
            "dhcp6-bound"
        } else {
            "dhcp6-renewed"
        };
        match ev {
            Event6::Bound(l) | Event6::Renewed(l) => {
                info!("cni: {}: DHCPv6 {}", self.key, fmt6(&l));
                ev::v6(kind, &self.key.ifname, Some(&l), None, self.data(json!({})));
                self.rec.lease6 = Some(SavedLease6 {
                    acquired_unix: self.ctx.clock.unix_time(l.acquired),
                    lease: l,
                });
                self.save();
            }
            Event6::Lost { lease, reason } => {
                self.rec.lease6 = None;
                self.save();
                let kind = if reason == dhcp6::LostReason::Released {
                    "dhcp6-released"
                } else {
                    "dhcp6-lost"
                };
                let e = json!({ "reason": crate::daemon::events::reason(reason) });
                ev::v6(kind, &self.key.ifname, None, Some(&lease), self.data(e));
                if reason != dhcp6::LostReason::Released {
                    warn!(
                        "cni: {}: lost DHCPv6 {} ({reason:?}); taking {} down",
                        self.key,
                        fmt6(&lease),
                        self.key.ifname
                    );
                    self.link_down().await;
                }
            }
            Event6::Info(_) => {}
            Event6::Dropped(why) => debug!("cni: {}: DHCPv6: {why}", self.key),
            Event6::Backoff {
                failures,
                wait,
                reason,
            } => warn!(
                "cni: {}: no DHCPv6 lease: {reason} ({failures} failures in a row); next Solicit in {:.1} s",
                self.key,
                wait.as_secs_f32()
            ),
        }
    }

    async fn link_down(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        self.rec.down = true;
        self.save();
        // As the stock plugin: the attachment is dead until DEL and ADD. Stop the
        // engines too, or they would retry on a link that cannot carry anything.
        let now = self.ctx.clock.now();
        self.v4.stop();
        if let Some(c) = self.v6.as_mut() {
            c.link_changed(now, false);
        }
        let ifname = self.key.ifname.clone();
        if let Err(e) = netns::run_in(&self.netns, move || netns::set_up(&ifname, false)).await {
            warn!("cni: {}: could not take the link down: {e}", self.key);
        }
    }

    /// Returns true when the attachment is over.
    async fn on_cmd(&mut self, c: Cmd) -> bool {
        match c {
            Cmd::Wait(tx) => {
                let until = self.ctx.clock.now() + Duration::from_secs(self.settings.timeout);
                self.waiters.push((until, tx));
                false
            }
            Cmd::Check(tx) => {
                let _ = tx.send(self.check().await);
                false
            }
            Cmd::Status(tx) => {
                let _ = tx.send(self.status());
                false
            }
            Cmd::Release(tx) => {
                self.release().await;
                let _ = tx.send(());
                true
            }
        }
    }

    async fn check(&self) -> Result<(), CniError> {
        let not_held = |what: String| {
            CniError::new(
                code::LEASE_NOT_HELD,
                what,
                "DEL and ADD the attachment again",
            )
        };
        if !self.bound4() {
            return Err(not_held(format!("{}: no DHCPv4 lease held", self.key)));
        }
        if !self.bound6() {
            return Err(not_held(format!("{}: no DHCPv6 lease held", self.key)));
        }
        let ifname = self.key.ifname.clone();
        let have = netns::run_in(&self.netns, move || netns::addresses(&ifname))
            .await
            .map_err(|e| not_held(format!("{}: {e}", self.key)))?;
        for a in self.leased() {
            if !have.contains(&a) {
                return Err(not_held(format!(
                    "{}: the leased address {a} is not on {}",
                    self.key, self.key.ifname
                )));
            }
        }
        Ok(())
    }

    fn leased(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        if let Some(s) = &self.rec.lease4 {
            out.push(IpAddr::V4(s.lease.address));
        }
        if let Some(s) = &self.rec.lease6 {
            out.extend(s.lease.addresses.iter().map(|a| IpAddr::V6(a.addr)));
        }
        out
    }

    async fn release(&mut self) {
        let now = self.ctx.clock.now();
        self.waiters.clear();
        let had4 = self.v4.lease().is_some();
        self.released_events();
        self.v4.release(now);
        while let Some(tx) = self.v4.poll_transmit(now, self.mac) {
            self.send4(&tx, true).await;
        }
        while self.v4.poll_event().is_some() {}
        if let Some(c) = self.v6.as_mut() {
            c.release(now);
            // One Release, no retransmission: the attachment ends now.
            if let Some(tx) = c.poll_transmit(now) {
                if let Some(s) = &self.udp6 {
                    if let Err(e) = s.send(&tx.payload).await {
                        info!("cni: {}: DHCPv6 Release not sent: {e}", self.key);
                    }
                }
            }
        }
        info!(
            "cni: {}: released{}",
            self.key,
            if had4 {
                ""
            } else {
                " (no DHCPv4 lease was held)"
            }
        );
        if let Err(e) = self.ctx.store.remove(&self.key) {
            warn!("cni: {}: could not remove the record: {e}", self.key);
        }
    }

    /// An event's data naming this attachment.
    fn data(&self, extra: Value) -> Value {
        cev::with_attachment(&self.key, &self.netns, extra)
    }

    /// `dhcp4-released` / `dhcp6-released` for the leases DEL gives back.
    fn released_events(&self) {
        let name = &self.key.ifname;
        if let Some(s) = &self.rec.lease4 {
            let e = self.data(json!({"deconfigured": false}));
            ev::v4("dhcp4-released", name, None, Some(&s.lease), e);
        }
        if let Some(s) = &self.rec.lease6 {
            let e = self.data(json!({"deconfigured": false}));
            ev::v6("dhcp6-released", name, None, Some(&s.lease), e);
        }
    }

    fn status(&self) -> Value {
        let now = self.ctx.clock.now();
        let mut addrs = Vec::new();
        if let Some(s) = &self.rec.lease4 {
            addrs.push(format!("{}/{}", s.lease.address, s.lease.prefix_len));
        }
        if let Some(s) = &self.rec.lease6 {
            addrs.extend(s.lease.addresses.iter().map(|a| format!("{}/128", a.addr)));
        }
        json!({
            "network": self.key.network,
            "container_id": self.key.container_id,
            "ifname": self.key.ifname,
            "netns": self.netns.display().to_string(),
            "state": self.v4.state_name(),
            "state6": self.v6.as_ref().map(|c| c.state_name()),
            "addresses": addrs,
            "remaining_secs": self.v4.lease().and_then(|l| l.remaining_secs(now)),
        })
    }

    /// The CNI result (the IPAM part: ips, routes, dns).
    fn result(&self) -> Value {
        let (plen, router) = self.ra.unwrap_or((None, None));
        result_json(
            &self.settings.cni_version,
            self.rec.lease4.as_ref().map(|s| &s.lease),
            self.rec.lease6.as_ref().map(|s| &s.lease),
            plen,
            router,
        )
    }
}

/// Build the IPAM result from the leases; `plen6` and `router6` come from RAs
/// (`dhcpv6+ra`: the prefix length and the gateway of the DHCPv6 addresses), else the
/// DHCPv6 addresses are /128 with no gateway.
pub fn result_json(
    version: &str,
    l4: Option<&Lease4>,
    l6: Option<&Lease6>,
    plen6: Option<u8>,
    router6: Option<Ipv6Addr>,
) -> Value {
    let old = version.starts_with("0.");
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut domain = None;
    if let Some(l) = l4 {
        let mut ip = json!({ "address": format!("{}/{}", l.address, l.prefix_len) });
        if let Some(g) = l.routers.first() {
            ip["gateway"] = json!(g.to_string());
        }
        if old {
            ip["version"] = json!("4");
        }
        ips.push(ip);
        // RFC 3442: with option 121 the routers option (and option 33, which the engine
        // already leaves empty then) is ignored.
        if l.routes.is_empty() {
            if let Some(g) = l.routers.first() {
                routes.push(json!({ "dst": "0.0.0.0/0", "gw": g.to_string() }));
            }
            for r in &l.static_routes {
                routes.push(json!({
                    "dst": format!("{}/{}", r.dest, r.prefix_len),
                    "gw": r.gateway.to_string(),
                }));
            }
        } else {
            for r in &l.routes {
                let mut route = json!({ "dst": format!("{}/{}", r.dest, r.prefix_len) });
                if !r.gateway.is_unspecified() {
                    route["gw"] = json!(r.gateway.to_string());
                }
                routes.push(route);
            }
        }
        servers.extend(l.dns.iter().map(ToString::to_string));
        domain = l.domain.clone();
        search.extend(l.search.iter().cloned());
    }
    if let Some(l) = l6 {
        for a in &l.addresses {
            let mut ip = json!({ "address": format!("{}/{}", a.addr, plen6.unwrap_or(128)) });
            if let Some(g) = router6 {
                ip["gateway"] = json!(g.to_string());
            }
            if old {
                ip["version"] = json!("6");
            }
            ips.push(ip);
        }
        // No ::/0 route: the container's kernel already has the RA's default route,
        // and a main plugin adding it again fails with "file exists".
        servers.extend(l.dns.iter().map(ToString::to_string));
        for d in &l.domains {
            if !search.contains(d) {
                search.push(d.clone());
            }
        }
    }
    let mut dns = json!({});
    if !servers.is_empty() {
        dns["nameservers"] = json!(servers);
    }
    if let Some(d) = domain {
        dns["domain"] = json!(d);
    }
    if !search.is_empty() {
        dns["search"] = json!(search);
    }
    json!({ "cniVersion": version, "ips": ips, "routes": routes, "dns": dns })
}

fn fmt6(l: &Lease6) -> String {
    l.addresses
        .iter()
        .map(|a| a.addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Send a DHCPv4 message to `dst`:67 from the daemon's own namespace (the attachment's
/// interface is gone).
async fn send_from_host(dst: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
    let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
    s.send_to(payload, (dst, 67)).await.map(|_| ())
}

/// Release a record whose namespace is gone (found at daemon start, or at DEL/GC for
/// an attachment that is not running): the DHCPv4 RELEASE goes out from the daemon's
/// namespace with ciaddr and client-id set. DHCPv6 needs the link, so that lease is
/// left to expire.
pub async fn release_orphan(ctx: &Ctx, rec: &Record) {
    if let Some(s) = &rec.lease4 {
        let now = ctx.clock.now();
        let mut l = s.lease.clone();
        l.acquired = ctx.clock.engine_from_unix(s.acquired_unix);
        let mut cfg = dhcp4::Config::new(ClientId::Raw(rec.spec.client_id.clone()));
        cfg.seed = rand::random();
        let mut c = Client::from_saved(cfg, l.clone(), now);
        c.release(now);
        let mut sent = false;
        while let Some(tx) = c.poll_transmit(now, l.chaddr) {
            match send_from_host(tx.dst, &tx.payload).await {
                Ok(()) => sent = true,
                Err(e) => warn!(
                    "cni: {}: could not send RELEASE for {}: {e}",
                    rec.key, l.address
                ),
            }
        }
        let e = json!({"deconfigured": false, "sent": sent});
        let e = cev::with_attachment(&rec.key, &rec.netns, e);
        ev::v4("dhcp4-released", &rec.key.ifname, None, Some(&l), e);
        if sent {
            info!(
                "cni: {}: released {} (its namespace is gone)",
                rec.key, l.address
            );
        }
    }
    if let Err(e) = ctx.store.remove(&rec.key) {
        warn!("cni: {}: could not remove the record: {e}", rec.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbond_proto::dhcp4::Route4;

    fn lease4() -> Lease4 {
        Lease4 {
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix_len: 24,
            server: Ipv4Addr::new(10, 0, 0, 1),
            routers: vec![Ipv4Addr::new(10, 0, 0, 1)],
            dns: vec![Ipv4Addr::new(10, 0, 0, 2)],
            domain: Some("example.org".into()),
            search: vec!["a.example.org".into()],
            hostname: None,
            mtu: None,
            ntp: vec![],
            routes: vec![],
            static_routes: vec![],
            lease_secs: Some(120),
            t1_secs: 60,
            t2_secs: 105,
            acquired: Instant::ZERO,
            chaddr: [2, 0, 0, 0, 0, 1],
        }
    }

    #[test]
    fn result_uses_the_router_without_option_121_and_only_121_with_it() {
        let mut l = lease4();
        let r = result_json("1.0.0", Some(&l), None, None, None);
        assert_eq!(r["ips"][0]["address"], "10.0.0.5/24");
        assert_eq!(r["ips"][0]["gateway"], "10.0.0.1");
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]));
        assert_eq!(r["dns"]["nameservers"], json!(["10.0.0.2"]));
        assert_eq!(r["dns"]["domain"], "example.org");
        // Option 33 routes come after the default route when there is no option 121.
        l.static_routes = vec![Route4 {
            dest: Ipv4Addr::new(172, 16, 0, 0),
            prefix_len: 16,
            gateway: Ipv4Addr::new(10, 0, 0, 7),
        }];
        let r = result_json("1.0.0", Some(&l), None, None, None);
        assert_eq!(
            r["routes"],
            json!([
                {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
                {"dst": "172.16.0.0/16", "gw": "10.0.0.7"}
            ])
        );
        l.routes = vec![Route4 {
            dest: Ipv4Addr::new(192, 168, 1, 0),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 9),
        }];
        let r = result_json("0.4.0", Some(&l), None, None, None);
        assert_eq!(
            r["routes"],
            json!([{"dst": "192.168.1.0/24", "gw": "10.0.0.9"}])
        );
        assert_eq!(r["ips"][0]["version"], "4");
        assert_eq!(r["cniVersion"], "0.4.0");
    }
}
