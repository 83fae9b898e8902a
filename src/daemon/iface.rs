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
use crate::dhcp::driver::{maybe, Driver};
use crate::dhcp::shared::Shared;
use crate::dhcp::v4::{Input4, V4Driver};
use crate::dhcp::v6::{Input6, V6Driver};
use crate::logging::{debug, info, warn};
use crate::net::apply::Applier;
use crate::net::link::{self, LinkInfo};
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use netbond_proto::dhcp4::State;
use netbond_proto::{Duid, Iaid, Instant};
use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What the daemon tells one interface. Data flows one way: the daemon routes events
/// here; replies go back only on the oneshot channels of requests.
pub enum Mail {
    /// RTM_NEWLINK for this interface's name (its current state: carrier, and the MAC
    /// that goes to the engines' `hw_address_changed`).
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

/// Run `$body` once for each enabled driver that `$which` selects, DHCPv4 first. The
/// two families' drivers are one generic [`Driver`] with two type arguments, so this is
/// the one place that names both.
macro_rules! each_family {
    ($self:ident, $which:expr, |$d:ident| $body:expr) => {{
        let which: Family = $which;
        if which != Family::V6 {
            if let Some($d) = $self.v4.as_mut() {
                $body;
            }
        }
        if which != Family::V4 {
            if let Some($d) = $self.v6.as_mut() {
                $body;
            }
        }
    }};
}

/// One interface's drivers and state.
pub struct Iface {
    sh: Shared,
    v4: Option<V4Driver>,
    v6: Option<V6Driver>,
    carrier: bool,
    /// The MAC netlink last reported (for status).
    mac: Option<[u8; 6]>,
    duid: Duid,
    iaid: Iaid,
    slot: usize,
    board: Option<Arc<StatusBoard>>,
    /// Where this interface says whether it is online (READY=1, `wait-online`).
    online: Option<crate::daemon::online::Board>,
}

/// What woke an interface task.
enum Wake {
    Mail(Option<Mail>),
    V4(Input4),
    V6(Input6),
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
            mac: None,
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
        self.mac = info.mac;
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
        // Sockets, carrier, and the MAC netlink reported (the engines' one MAC source).
        each_family!(self, Family::Both, |d| d.attach(now, info));
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
                each_family!(self, Family::Both, |d| d.pump(&mut self.sh).await);
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
                self.v4.as_ref().and_then(Driver::deadline),
                self.v6.as_ref().and_then(Driver::deadline),
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
                i = maybe(v4.map(Driver::input)) => Wake::V4(i),
                i = maybe(v6.map(Driver::input)) => Wake::V6(i),
                _ = maybe(sleep) => Wake::Timer,
            };
            let now = self.sh.clock.now();
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
                Wake::V4(i) => {
                    if let Some(d) = self.v4.as_mut() {
                        d.on_input(now, &self.sh, i);
                    }
                }
                Wake::V6(i) => {
                    if let Some(d) = self.v6.as_mut() {
                        d.on_input(now, &self.sh, i);
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
                        let ifname = &self.sh.ifname;
                        debug!("{ifname}: no answer within the pacing window's loss timeout; resending");
                        // The window paces the first DHCPv4 exchange (see
                        // first_exchange_done): only that one is resent.
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
                each_family!(self, family, |d| {
                    d.renew(now);
                    done.push(d.name());
                });
                let _ = reply.send(done);
            }
            Mail::Stop(family, reply) => {
                let done = self.stop_clients(family, true, true).await;
                let _ = reply.send(done);
            }
            Mail::Start(family, reply) => {
                let mut done = Vec::new();
                each_family!(self, family, |d| {
                    d.start(now);
                    done.push(d.name());
                });
                let _ = reply.send(done);
            }
            Mail::ResendNow => {
                // A Wi-Fi port has carrier as soon as it associates, before the 4-way
                // handshake lets data through: a DISCOVER or REQUEST sent in that gap
                // is lost. Now that the port is authorised, send again (same xid).
                // (DHCPv6 retransmits its first Solicit after 1 s anyway.)
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
            each_family!(self, Family::Both, |d| d.link_changed(
                now,
                info.carrier,
                info.index,
                &info.name
            ));
        }
        // A MAC change (a bond failover with fail_over_mac=active): netlink is the one
        // source of the MAC. Each engine hears it (DHCPv6 ignores it); a DHCPv4 engine
        // holding a lease re-confirms it from the new MAC at once, in this task's next
        // pump.
        if let Some(mac) = info.mac.filter(|m| Some(*m) != self.mac) {
            self.mac = Some(mac);
            each_family!(self, Family::Both, |d| d.hw_address_changed(now, mac));
        }
    }

    fn detach(&mut self, now: Instant) {
        self.sh.ifindex = None;
        self.sh.applier = None;
        each_family!(self, Family::Both, |d| d.interface_gone(now));
    }

    async fn stop_clients(
        &mut self,
        family: Family,
        release: bool,
        deconfigure: bool,
    ) -> Vec<&'static str> {
        let mut done = Vec::new();
        each_family!(self, family, |d| {
            d.shutdown(&mut self.sh, release, deconfigure).await;
            done.push(d.name());
        });
        done
    }

    fn online4(&self) -> bool {
        self.v4.as_ref().is_some_and(Driver::online)
    }

    fn online6(&self) -> bool {
        self.v6.as_ref().is_some_and(Driver::online)
    }

    /// The exchange a start-window slot was taken for has ended with a lease: DHCPv4
    /// bound (a saved lease being confirmed does not count until it is), or, without
    /// DHCPv4, a DHCPv6 address.
    fn first_exchange_done(&self) -> bool {
        match &self.v4 {
            Some(d) => matches!(d.state(), State::Bound | State::Renewing | State::Rebinding),
            None => self.has_lease(),
        }
    }

    /// A lease of either family.
    fn has_lease(&self) -> bool {
        self.v4.as_ref().is_some_and(Driver::has_lease)
            || self.v6.as_ref().is_some_and(Driver::has_lease)
    }

    /// One line for systemd's STATUS=.
    fn short_status(&self) -> String {
        let a = self
            .v4
            .as_ref()
            .map_or("v4 off".into(), Driver::short_status);
        let b = self
            .v6
            .as_ref()
            .map_or("v6 off".into(), Driver::short_status);
        format!("{a}, {b}")
    }

    /// This interface's part of `netbond status --json` (see README).
    fn status_json(&self) -> crate::daemon::status_json::IfaceStatus {
        let now = self.sh.clock.now();
        let mac = self
            .mac
            .or_else(|| crate::net::hwaddr::current_mac(&self.sh.ifname).ok());
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
        let (ifname, now) = (&self.sh.ifname, self.sh.clock.now());
        if let Some(d) = &self.v4 {
            d.log_status(ifname, now);
        }
        if let Some(d) = &self.v6 {
            d.log_status(ifname, now);
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
