//! One container attachment: the DHCPv4 (and DHCPv6) engines for one interface in one
//! container network namespace, run as a task on the daemon's single event loop.
//!
//! The IPAM plugin never configures the interface (the main plugin does, from the
//! result), so unlike the host drivers in `v4.rs`/`v6.rs` this only talks DHCP, keeps
//! the lease record on disk, and takes the link down when a lease is lost.

mod lease;
mod result;
mod send;

pub use result::result_json;
pub use send::release_orphan;

use super::config::{Broadcast, Ipv6Mode};
use super::netns;
use super::store::{Key, Record};
use super::{code, CniError};
use crate::daemon::clock::Clock;
use crate::logging::{debug, info, warn};
use crate::net::hwaddr::current_mac;
use crate::net::packet::PacketSocket;
use crate::net::udp4::Udp4Socket;
use crate::net::udp6::Udp6Socket;
use netbond_proto::dhcp4::{self, Client, ClientId};
use netbond_proto::dhcp6::{self, Client as Client6, Transmit6};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::{Engine, Instant};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
    /// Writes the records off the event loop.
    pub writer: super::writer::Writer,
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
    let mut v4 = match rec.lease4.clone() {
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
    // The container's MAC does not change under an attachment: read once above.
    v4.hw_address_changed(now, mac);
    let v6 = v6.then(|| match rec.lease6.clone() {
        Some(s) => {
            let mut l = s.lease;
            l.acquired = ctx.clock.engine_from_unix(s.acquired_unix);
            info!("cni: {key}: resuming the DHCPv6 lease");
            Client6::from_saved(cfg6.clone(), ctx.duid.clone(), l, now)
        }
        None => Client6::new(cfg6.clone(), ctx.duid.clone(), now),
    });
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
        last_src4: None,
        v4,
        v6,
        pkt: Some(pkt),
        udp6,
        udp4: None,
        held6: None,
        waiters: Vec::new(),
        saving: None,
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
    /// Where the last DHCPv4 packet came from, for the log line of an engine drop.
    last_src4: Option<std::net::Ipv4Addr>,
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
    /// The record's last queued save, until ADD has waited for it.
    saving: Option<oneshot::Receiver<()>>,
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
                    self.last_src4 = Some(rx.src_ip);
                    self.v4.handle_packet(now, &rx.payload);
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
            && matches!(
                self.v4.state(),
                dhcp4::State::Bound | dhcp4::State::Renewing | dhcp4::State::Rebinding
            )
    }

    fn bound6(&self) -> bool {
        self.v6.is_none() || self.rec.lease6.is_some()
    }

    async fn pump(&mut self) {
        let now = self.ctx.clock.now();
        while let Some(tx) = self.v4.poll_transmit(now) {
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
                // The lease is on disk before the runtime hears of it, so that a
                // crash right after ADD still resumes it.
                if let Some(rx) = self.saving.take() {
                    super::writer::Writer::durable(rx).await;
                }
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
                        format!("DHCPv4 (state {})", self.v4.state())
                    } else {
                        format!(
                            "DHCPv6 (state {}, last socket error: {})",
                            self.v6.as_ref().map_or("-", |c| c.state().as_str()),
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
}
