//! One managed interface: its DHCPv4 and DHCPv6 drivers and the task that runs them.
//!
//! The daemon (`daemon.rs`) owns everything process-wide (signals, netlink event
//! streams, the control socket, the bond, Wi-Fi) and hands each interface what
//! concerns it as [`Mail`]. Each interface task waits on its own sockets, its engines'
//! next deadline and its mailbox, so one process serves one interface or hundreds, and
//! a quiet interface costs no wakeups. What a task holds while idle is small: the two
//! engines, a few sockets and a mailbox (receives share one buffer per thread, see
//! `sock::with_recv_buf`), which keeps an extra interface at a few KiB.

use crate::config::Config;
use crate::daemon::control::Family;
use crate::dhcp::shared::Shared;
use crate::dhcp::v4::V4Driver;
use crate::dhcp::v6::V6Driver;
use crate::net::apply::Applier;
use crate::net::link::{self, LinkInfo};
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use netbond_proto::{Duid, Iaid, Instant};
use std::future::Future;
use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

/// What the daemon tells one interface. Data flows one way: the daemon routes events
/// here; replies go back only on the oneshot channels of requests.
pub enum Mail {
    /// RTM_NEWLINK for this interface's name (its current state).
    Link(Box<LinkInfo>),
    /// The index this interface had now carries another name.
    RenamedAway(String),
    /// The interface was deleted.
    Deleted,
    /// Duplicate address detection failed for a DHCPv6 address.
    DadFailed(Ipv6Addr),
    /// Renew now (control socket, SIGUSR2).
    Renew(Family, oneshot::Sender<Vec<&'static str>>),
    /// Release and deconfigure; the client stays stopped until `Start`.
    Stop(Family, oneshot::Sender<Vec<&'static str>>),
    /// Start stopped clients.
    Start(Family, oneshot::Sender<Vec<&'static str>>),
    /// A Wi-Fi port under this interface became authorised: resend in-flight DHCPv4.
    ResendNow,
    /// SIGUSR1: log the state.
    LogStatus,
    /// The status object (`netbond status`).
    Status(oneshot::Sender<crate::daemon::status_json::IfaceStatus>),
    /// A reloaded configuration (only its live keys take effect).
    Config(Arc<Config>),
    /// Daemon stopping: release/deconfigure as configured, then end the task.
    Shutdown {
        release: bool,
        deconfigure: bool,
        done: oneshot::Sender<()>,
    },
}

/// The one-line states of every interface, for systemd's STATUS= (only kept when
/// systemd listens).
#[derive(Default)]
pub struct StatusBoard {
    /// Per interface: name, one-line state, whether it holds a lease.
    lines: Mutex<Vec<(String, String, bool)>>,
}

impl StatusBoard {
    /// A board with one slot per interface.
    pub fn new(names: &[String]) -> Arc<Self> {
        Arc::new(StatusBoard {
            lines: Mutex::new(
                names
                    .iter()
                    .map(|n| (n.clone(), String::new(), false))
                    .collect(),
            ),
        })
    }

    /// Update slot `slot`; tells systemd when the summary changed.
    fn set(&self, slot: usize, status: String, leased: bool) {
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        let Some(entry) = lines.get_mut(slot) else {
            return;
        };
        if entry.1 == status {
            return;
        }
        entry.1 = status;
        entry.2 = leased;
        let text = summary(&lines);
        crate::daemon::notify::notify(&format!("STATUS={text}"));
    }
}

/// The STATUS= text: the interface's line, or with several a count of those with a
/// lease and the first one's line.
fn summary(lines: &[(String, String, bool)]) -> String {
    match lines {
        [(name, status, _)] => format!("{name}: {status}"),
        [(name, status, _), ..] => format!(
            "{} of {} interfaces have a lease; {name}: {status}",
            lines.iter().filter(|l| l.2).count(),
            lines.len()
        ),
        [] => String::new(),
    }
}

/// The daemon's side of an interface task.
pub struct IfaceHandle {
    /// The interface name.
    pub name: String,
    /// Its kernel index as last routed to it (for routing events by index).
    pub index: Option<u32>,
    mail: UnboundedSender<Mail>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl IfaceHandle {
    /// Send mail; a task that has ended (it only ends on Shutdown) ignores it.
    pub fn send(&self, m: Mail) {
        let _ = self.mail.unbounded_send(m);
    }

    /// Ask something with a reply; `None` if the task is gone.
    pub async fn ask<T>(&self, m: impl FnOnce(oneshot::Sender<T>) -> Mail) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(m(tx));
        rx.await.ok()
    }

    /// Shut the task down and wait until it has released/deconfigured.
    pub async fn shutdown(&mut self, release: bool, deconfigure: bool) {
        let _ = self
            .ask(|done| Mail::Shutdown {
                release,
                deconfigure,
                done,
            })
            .await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// One interface's drivers and state.
pub struct Iface {
    sh: Shared,
    v4: Option<V4Driver>,
    v6: Option<V6Driver>,
    carrier: bool,
    duid: Duid,
    iaid: Iaid,
    slot: usize,
    board: Option<Arc<StatusBoard>>,
    /// Where this interface says whether it is online (READY=1, `wait-online`).
    online: Option<crate::daemon::online::Board>,
}

/// Await `f` if there is one, otherwise never complete.
async fn maybe<F: Future>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// What woke an interface task.
enum Wake {
    Mail(Option<Mail>),
    V4(std::io::Result<crate::net::packet::Received>),
    V6(std::io::Result<(std::net::SocketAddrV6, Vec<u8>)>),
    Ra(std::io::Result<crate::net::ra::RaFlags>),
    Arp(std::io::Result<crate::net::arp::Arp>),
    Timer,
    /// A slot in the start window was granted.
    Slot(crate::dhcp::pace::Permit),
    /// The first exchange took longer than the window's loss timeout.
    Lost,
}

impl Iface {
    /// Drivers for `sh.ifname` (starting from saved leases when valid). `slot` is the
    /// interface's position in the daemon's list (for STATUS=).
    pub fn new(
        sh: Shared,
        duid: Duid,
        iaid: Iaid,
        slot: usize,
        board: Option<Arc<StatusBoard>>,
    ) -> Self {
        let v4 = sh
            .cfg
            .dhcp4
            .enabled
            .then(|| V4Driver::new(&sh, &duid, iaid));
        let v6 = sh
            .cfg
            .dhcp6
            .enabled
            .then(|| V6Driver::new(&sh, &duid, iaid));
        Iface {
            sh,
            v4,
            v6,
            carrier: false,
            duid,
            iaid,
            slot,
            board,
            online: None,
        }
    }

    /// Report this interface's online state to `board` (in slot `slot` given to new).
    pub fn report_online(&mut self, board: crate::daemon::online::Board) {
        self.online = Some(board);
    }

    /// The interface exists (at start or after re-creation): open sockets on its index.
    /// Called before the task starts for interfaces present at start, so their sockets
    /// are open before privileges are dropped.
    pub fn attach(&mut self, info: &LinkInfo) {
        info!(
            "{}: index {}, MAC {}, {}",
            info.name,
            info.index,
            info.mac
                .map(|m| crate::net::hwaddr::fmt_mac(&m))
                .unwrap_or_else(|| "none".into()),
            if info.carrier {
                "carrier up"
            } else {
                "no carrier"
            }
        );
        let sh = &mut self.sh;
        sh.ifindex = Some(info.index);
        sh.applier = Some(Applier::new(
            sh.handle.clone(),
            info.index,
            info.name.clone(),
            sh.route_metric,
        ));
        self.carrier = info.carrier;
        let now = sh.clock.now();
        if !info.up {
            // Bring it up: a DHCP client on a down interface can only wait.
            let handle = sh.handle.clone();
            let index = info.index;
            let name = info.name.clone();
            tokio::spawn(async move {
                if let Err(e) = link::set_link_up(&handle, index).await {
                    warn!("{name}: could not set the interface up: {e}");
                }
            });
        }
        if let Some(d) = self.v4.as_mut() {
            d.note_link_mac(info.mac);
            d.open(info.index, &info.name);
            d.link_changed(now, info.carrier, info.index, &info.name);
        }
        if let Some(d) = self.v6.as_mut() {
            d.open(info.index, &info.name, now);
            d.link_changed(now, info.carrier, info.index, &info.name);
        }
    }

    /// Start the task; the daemon keeps the handle.
    pub fn spawn(self) -> IfaceHandle {
        let (tx, rx) = unbounded();
        let name = self.sh.ifname.clone();
        let index = self.sh.ifindex;
        let task = tokio::spawn(self.run(rx));
        IfaceHandle {
            name,
            index,
            mail: tx,
            task: Some(task),
        }
    }

    async fn run(mut self, mut mail: UnboundedReceiver<Mail>) {
        // Many interfaces on one server (a container host) would otherwise send their
        // first DISCOVERs in one burst and overflow the server's socket: with several,
        // each waits for a slot in the shared window of exchanges in flight
        // (`pace.rs`) before its drivers run, and gives it back at its first lease or
        // when that exchange counts as lost. Mail is handled meanwhile.
        let mut gate = self.sh.pacer.clone().map(|p| Box::pin(p.acquire()));
        let mut permit: Option<crate::dhcp::pace::Permit> = None;
        loop {
            if gate.is_none() {
                if let Some(d) = self.v4.as_mut() {
                    d.pump(&mut self.sh).await;
                }
                if let Some(d) = self.v6.as_mut() {
                    d.pump(&mut self.sh).await;
                }
                if permit.is_some() && self.first_exchange_done() {
                    if let Some(p) = permit.take() {
                        p.leased();
                    }
                }
            }
            if let Some(board) = &self.board {
                board.set(self.slot, self.short_status(), self.has_lease());
            }
            if let Some(o) = &self.online {
                o.set(self.slot, self.online4(), self.online6());
            }
            let deadline = [
                self.v4.as_ref().and_then(V4Driver::deadline),
                self.v6.as_ref().and_then(V6Driver::deadline),
            ]
            .into_iter()
            .flatten()
            .min()
            .filter(|_| gate.is_none());
            let sleep = deadline.map(|d| tokio::time::sleep_until(self.sh.clock.tokio_instant(d)));
            let lost = permit
                .as_ref()
                .map(|p| tokio::time::sleep_until(p.deadline().into()));
            let (v4, v6) = (self.v4.as_ref(), self.v6.as_ref());
            let wake = tokio::select! {
                m = mail.next() => Wake::Mail(m),
                p = maybe(gate.as_mut()) => Wake::Slot(p),
                _ = maybe(lost) => Wake::Lost,
                rx = maybe(v4.and_then(V4Driver::socket).map(|s| s.recv())) => Wake::V4(rx),
                rx = maybe(v6.and_then(V6Driver::socket).map(|s| s.recv())) => Wake::V6(rx),
                ra = maybe(v6.and_then(V6Driver::ra_socket).map(|s| s.next())) => Wake::Ra(ra),
                a = maybe(v4.and_then(V4Driver::arp_socket).map(|s| s.recv())) => Wake::Arp(a),
                _ = maybe(sleep) => Wake::Timer,
            };
            let now = self.sh.clock.now();
            let ifname = self.sh.ifname.as_str();
            match wake {
                Wake::Mail(None) => return,
                Wake::Mail(Some(Mail::Shutdown {
                    release,
                    deconfigure,
                    done,
                })) => {
                    self.stop_clients(Family::Both, release, deconfigure).await;
                    if deconfigure {
                        if let Some(r) = self.sh.resolv.as_mut() {
                            r.restore();
                        }
                    }
                    let _ = done.send(());
                    return;
                }
                Wake::Mail(Some(m)) => self.on_mail(m, now).await,
                Wake::V4(rx) => {
                    if let Some(d) = self.v4.as_mut() {
                        d.on_receive(now, ifname, rx);
                    }
                }
                Wake::V6(rx) => {
                    if let Some(d) = self.v6.as_mut() {
                        d.on_receive(now, ifname, rx);
                    }
                }
                Wake::Ra(ra) => {
                    if let Some(d) = self.v6.as_mut() {
                        d.on_ra(now, ifname, ra);
                    }
                }
                Wake::Arp(a) => {
                    if let Some(d) = self.v4.as_mut() {
                        d.on_arp(now, ifname, &self.sh.host_macs, a);
                    }
                }
                Wake::Timer => {}
                Wake::Slot(p) => {
                    gate = None;
                    permit = Some(p);
                }
                Wake::Lost => {
                    // No lease within a few round trips: the server dropped or did
                    // not get the message. Free the slot (the window shrinks) and
                    // send again now rather than at the 4 s retransmission.
                    if let Some(p) = permit.take() {
                        p.lost();
                        debug!("{ifname}: no answer within the pacing window's loss timeout; resending");
                        if let Some(d) = self.v4.as_mut() {
                            d.resend_now(now);
                        }
                    }
                }
            }
        }
    }

    async fn on_mail(&mut self, m: Mail, now: Instant) {
        match m {
            Mail::Link(info) => self.on_link(&info, now),
            Mail::RenamedAway(new) => {
                info!(
                    "{} was renamed to {new}; waiting for {} to appear",
                    self.sh.ifname, self.sh.ifname
                );
                self.detach(now);
            }
            Mail::Deleted => {
                info!("{}: removed; waiting for it to come back", self.sh.ifname);
                self.detach(now);
            }
            Mail::DadFailed(a) => {
                if let Some(d) = self.v6.as_mut() {
                    d.dad_failed(now, &self.sh.ifname, a);
                }
            }
            Mail::Renew(family, reply) => {
                let mut done = Vec::new();
                if family != Family::V6 {
                    if let Some(d) = self.v4.as_mut() {
                        d.renew(now);
                        done.push("dhcp4");
                    }
                }
                if family != Family::V4 {
                    if let Some(d) = self.v6.as_mut() {
                        d.renew(now);
                        done.push("dhcp6");
                    }
                }
                let _ = reply.send(done);
            }
            Mail::Stop(family, reply) => {
                let done = self.stop_clients(family, true, true).await;
                let _ = reply.send(done);
            }
            Mail::Start(family, reply) => {
                let mut done = Vec::new();
                if family != Family::V6 {
                    if let Some(d) = self.v4.as_mut() {
                        d.start(now);
                        done.push("dhcp4");
                    }
                }
                if family != Family::V4 {
                    if let Some(d) = self.v6.as_mut() {
                        if d.is_stopped() {
                            d.start(&self.sh, &self.duid, self.iaid);
                        }
                        done.push("dhcp6");
                    }
                }
                let _ = reply.send(done);
            }
            Mail::ResendNow => {
                // A Wi-Fi port has carrier as soon as it associates, before the 4-way
                // handshake lets data through: a DISCOVER or REQUEST sent in that gap
                // is lost. Now that the port is authorised, send again (same xid).
                debug!(
                    "{}: a Wi-Fi port is authorised; resending any DHCPv4 message in flight",
                    self.sh.ifname
                );
                if let Some(d) = self.v4.as_mut() {
                    d.resend_now(now);
                }
            }
            Mail::LogStatus => self.log_status(),
            Mail::Status(reply) => {
                let _ = reply.send(self.status_json());
            }
            Mail::Config(cfg) => self.reconfigure(cfg),
            Mail::Shutdown { .. } => unreachable!("handled by run"),
        }
    }

    /// A reloaded configuration: the drivers read most live keys from `sh.cfg` when
    /// they next need them; the DHCPv4 engine's options and timing are handed over
    /// now, and DNS is rewritten at once when a family's `use_dns` changed.
    fn reconfigure(&mut self, cfg: Arc<Config>) {
        let dns_changed = cfg.dhcp4.use_dns != self.sh.cfg.dhcp4.use_dns
            || cfg.dhcp6.use_dns != self.sh.cfg.dhcp6.use_dns;
        self.sh.cfg = cfg;
        if let Some(d) = self.v4.as_mut() {
            d.reconfigure(&self.sh, &self.duid, self.iaid);
        }
        if dns_changed {
            self.sh.update_dns();
        }
    }

    fn on_link(&mut self, info: &LinkInfo, now: Instant) {
        if let Some(d) = self.v4.as_mut() {
            d.note_link_mac(info.mac);
        }
        if self.sh.ifindex != Some(info.index) {
            if self.sh.ifindex.is_some() {
                info!("{}: re-created with index {}", info.name, info.index);
            }
            self.attach(info);
            return;
        }
        if info.carrier != self.carrier {
            info!(
                "{}: carrier {}",
                info.name,
                if info.carrier { "up" } else { "down" }
            );
            self.carrier = info.carrier;
            if let Some(d) = self.v4.as_mut() {
                d.link_changed(now, info.carrier, info.index, &info.name);
            }
            if let Some(d) = self.v6.as_mut() {
                d.link_changed(now, info.carrier, info.index, &info.name);
            }
        }
        // A MAC change needs no handling here: the DHCPv4 driver reads the MAC before
        // every transmit and the engine re-confirms on a difference. Waking the task
        // (which this mail did) is what makes it happen at once.
    }

    fn detach(&mut self, now: Instant) {
        self.sh.ifindex = None;
        self.sh.applier = None;
        if let Some(d) = self.v4.as_mut() {
            d.interface_gone(now);
        }
        if let Some(d) = self.v6.as_mut() {
            d.interface_gone(now);
        }
    }

    async fn stop_clients(
        &mut self,
        family: Family,
        release: bool,
        deconfigure: bool,
    ) -> Vec<&'static str> {
        let mut done = Vec::new();
        if family != Family::V6 {
            if let Some(d) = self.v4.as_mut() {
                d.shutdown(&mut self.sh, release, deconfigure).await;
                done.push("dhcp4");
            }
        }
        if family != Family::V4 {
            if let Some(d) = self.v6.as_mut() {
                d.shutdown(&mut self.sh, release, deconfigure).await;
                done.push("dhcp6");
            }
        }
        done
    }

    fn online4(&self) -> bool {
        self.v4.as_ref().is_some_and(V4Driver::online)
    }

    fn online6(&self) -> bool {
        self.v6.as_ref().is_some_and(V6Driver::online)
    }

    /// The exchange a start-window slot was taken for has ended with a lease: DHCPv4
    /// bound (a saved lease being confirmed does not count until it is), or, without
    /// DHCPv4, a DHCPv6 address.
    fn first_exchange_done(&self) -> bool {
        match &self.v4 {
            Some(d) => matches!(d.state_name(), "BOUND" | "RENEWING" | "REBINDING"),
            None => self.has_lease(),
        }
    }

    /// A lease of either family.
    fn has_lease(&self) -> bool {
        self.v4.as_ref().and_then(V4Driver::lease).is_some()
            || self
                .v6
                .as_ref()
                .and_then(V6Driver::lease)
                .is_some_and(|l| !l.addresses.is_empty())
    }

    /// One line for systemd's STATUS=.
    fn short_status(&self) -> String {
        let (v4, v6) = (self.v4.as_ref(), self.v6.as_ref());
        let a = match v4.and_then(V4Driver::lease) {
            Some(l) => format!("v4 {}/{}", l.address, l.prefix_len),
            None => format!("v4 {}", v4.map_or("off", V4Driver::state_name)),
        };
        let b = match v6.and_then(V6Driver::lease) {
            Some(l) if !l.addresses.is_empty() => format!("v6 {}", l.addresses[0].addr),
            _ => format!("v6 {}", v6.map_or("off", V6Driver::state_name)),
        };
        format!("{a}, {b}")
    }

    /// This interface's part of `netbond status --json` (see README).
    fn status_json(&self) -> crate::daemon::status_json::IfaceStatus {
        let now = self.sh.clock.now();
        let mac = crate::net::hwaddr::current_mac(&self.sh.ifname).ok();
        let mut st = crate::daemon::status_json::iface(
            &self.sh.ifname,
            self.sh.ifindex,
            mac,
            (&self.duid, self.iaid),
            self.v4.as_ref().map(|d| d.status_json(now)),
            self.v6.as_ref().map(|d| d.status_json(now)),
        );
        st.captive_portal = crate::state::captive::status(&self.sh.ifname);
        st
    }

    /// SIGUSR1: one log line per client with its state and lease.
    fn log_status(&self) {
        let ifname = &self.sh.ifname;
        if let Some(d) = &self.v4 {
            match d.lease() {
                Some(l) => info!(
                    "status: {ifname}: dhcp4 {} {}/{} from {}, {} s left",
                    d.state_name(),
                    l.address,
                    l.prefix_len,
                    l.server,
                    l.remaining_secs(self.sh.clock.now())
                        .map_or("infinite".to_string(), |s| s.to_string())
                ),
                None => info!("status: {ifname}: dhcp4 {} (no lease)", d.state_name()),
            }
        }
        if let Some(d) = &self.v6 {
            let addrs: Vec<String> = d
                .lease()
                .map(|l| l.addresses.iter().map(|a| a.addr.to_string()).collect())
                .unwrap_or_default();
            info!(
                "status: {ifname}: dhcp6 {} [{}]",
                d.state_name(),
                addrs.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_summary_counts_leases_of_either_family() {
        let line = |n: &str, s: &str, l: bool| (n.to_string(), s.to_string(), l);
        assert_eq!(
            super::summary(&[line("eth0", "v4 10.0.0.5/24, v6 off", true)]),
            "eth0: v4 10.0.0.5/24, v6 off"
        );
        let many = [
            line("c0", "v4 SELECTING, v6 SOLICIT", false),
            line("c1", "v4 off, v6 fd00::5", true),
            line("c2", "v4 10.0.0.6/24, v6 off", true),
        ];
        assert_eq!(
            super::summary(&many),
            "2 of 3 interfaces have a lease; c0: v4 SELECTING, v6 SOLICIT"
        );
    }
}
