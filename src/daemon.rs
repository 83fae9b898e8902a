//! The daemon loop for one interface (single-interface mode: the dhclient replacement
//! and container case).
//!
//! One current-thread task waits on every source at once: the packet socket, UDP 546,
//! router advertisements, link and address events from netlink, signals, and the
//! engines' next deadline. Each wakeup becomes an input to an engine; then both engines
//! are pumped (transmits first, then configuration events). With a bound lease and a
//! quiet link nothing is pending but the renewal deadline: no periodic wakeups.

use crate::apply::{addr_events, AddrEvent, Applier};
use crate::bond::BondManager;
use crate::clock::Clock;
use crate::config::Config;
use crate::control::{Family, Request, Response};
use crate::identity;
use crate::link::{self, LinkEvent, LinkInfo};
use crate::resolv::{DnsSink, ResolvConf};
use crate::shared::{Dns4, Dns6, Shared};
use crate::store::Store;
use crate::v4::V4Driver;
use crate::v6::V6Driver;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

/// Everything `netbond run` needs to start.
pub struct RunOptions {
    /// The interface to manage.
    pub ifname: String,
    /// The configuration file, for SIGHUP reloads.
    pub config_path: Option<PathBuf>,
    /// The effective configuration (file + command line).
    pub cfg: Config,
    /// Overrides from the command line, re-applied after a reload.
    pub overrides: Overrides,
}

/// Command-line settings that win over the file, also after a reload.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--state-dir`
    pub state_dir: Option<PathBuf>,
    /// `--run-dir`
    pub run_dir: Option<PathBuf>,
    /// `--resolv-conf`
    pub resolv_conf: Option<String>,
    /// `--no-dhcp4`
    pub no_dhcp4: bool,
    /// `--no-dhcp6`
    pub no_dhcp6: bool,
}

impl Overrides {
    /// Apply these to a configuration.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(d) = &self.state_dir {
            cfg.daemon.state_dir = d.clone();
        }
        if let Some(d) = &self.run_dir {
            cfg.daemon.run_dir = d.clone();
        }
        if let Some(r) = &self.resolv_conf {
            cfg.dns.resolv_conf = r.clone();
        }
        if self.no_dhcp4 {
            cfg.dhcp4.enabled = false;
        }
        if self.no_dhcp6 {
            cfg.dhcp6.enabled = false;
        }
    }
}

/// What woke the loop.
enum Wake {
    Stop(&'static str),
    Reload,
    Status,
    Renew,
    Link(Option<LinkEvent>),
    Addr(Option<AddrEvent>),
    V4(std::io::Result<crate::packet::Received>),
    V6(std::io::Result<(std::net::SocketAddrV6, Vec<u8>)>),
    Ra(std::io::Result<crate::ra::RaFlags>),
    Timer,
    Control(Option<crate::control::Pending>),
    Watchdog,
    Wifi(Option<String>),
    Arp(std::io::Result<crate::arp::Arp>),
}

/// Await `f` if there is one, otherwise never complete.
async fn maybe<F: Future>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Run until SIGTERM/SIGINT. Errors are setup failures, already phrased for the user.
pub async fn run(opts: RunOptions) -> Result<(), String> {
    let RunOptions {
        ifname,
        config_path,
        cfg,
        overrides,
    } = opts;
    let clock = Clock::new();
    let store = Store::open(&cfg.daemon.state_dir).map_err(|e| {
        format!(
            "cannot use the state directory {}: {e} (set --state-dir to a writable directory)",
            cfg.daemon.state_dir.display()
        )
    })?;
    let duid = identity::load_or_create_duid(&cfg, &store);
    let iaid = identity::iaid(&cfg, &ifname);
    info!(
        "netbond {} on {ifname}: DUID {duid}, IAID {iaid}",
        env!("CARGO_PKG_VERSION")
    );

    // Subscribe before the first lookup so no change in between is missed.
    let (link_conn, mut link_stream) =
        link::link_events().map_err(|e| format!("cannot listen to netlink link events: {e}"))?;
    tokio::spawn(link_conn);
    let (addr_conn, mut addr_stream) =
        addr_events().map_err(|e| format!("cannot listen to netlink address events: {e}"))?;
    tokio::spawn(addr_conn);
    let (conn, handle) = link::connect().map_err(|e| format!("cannot open netlink: {e}"))?;
    tokio::spawn(conn);

    let resolv = match cfg.dns.resolv_conf.as_str() {
        "none" | "" => None,
        "resolvectl" => Some(DnsSink::Resolved {
            ifname: ifname.clone(),
            last: None,
        }),
        p => Some(DnsSink::File(ResolvConf::new(p))),
    };
    let mut sh = Shared {
        ifname: ifname.clone(),
        ifindex: None,
        handle: handle.clone(),
        applier: None,
        store,
        clock,
        cfg,
        dns4: Dns4::default(),
        dns6: Dns6::default(),
        resolv,
    };
    let mut v4 = sh
        .cfg
        .dhcp4
        .enabled
        .then(|| V4Driver::new(&sh, &duid, iaid));
    let mut v6 = sh
        .cfg
        .dhcp6
        .enabled
        .then(|| V6Driver::new(&sh, &duid, iaid));

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
    let mut sigusr2 = signal(SignalKind::user_defined2()).map_err(|e| e.to_string())?;

    let mut bond = sh
        .cfg
        .bond
        .clone()
        .map(|b| BondManager::new(b, handle.clone()));
    if let Some(b) = bond.as_mut() {
        b.ensure().await?;
    }
    // Wireless ports: start a supplicant for each that exists now (after the bond has
    // enslaved it); hot-plugged ones follow on link events.
    let mut wifi =
        crate::wifi::WifiManager::new(sh.cfg.wifi.clone(), sh.cfg.daemon.run_dir.clone());
    if !wifi.is_empty() {
        match link::list_links(&handle).await {
            Ok(links) => wifi.start_existing(&links),
            Err(e) => warn!("cannot list interfaces for [[wifi]]: {e}"),
        }
    }

    let group = match sh.cfg.control.group.as_deref() {
        Some(g) => Some(gid_of(g).ok_or_else(|| {
            format!("[control] group {g:?} does not exist; create it or remove the setting")
        })?),
        None => None,
    };
    let mut control = match crate::control::listen(&sh.cfg.daemon.run_dir, group) {
        Ok(rx) => Some(rx),
        Err(e) => {
            return Err(format!(
                "cannot open the control socket in {}: {e}",
                sh.cfg.daemon.run_dir.display()
            ))
        }
    };

    // Only when systemd asked for a watchdog does netbond wake up periodically.
    let mut watchdog = crate::notify::watchdog_interval().map(tokio::time::interval);

    let mut carrier = false;
    match link::get_link_by_name(&handle, &ifname).await {
        Ok(Some(info)) => {
            attach(&mut sh, &mut v4, &mut v6, &info);
            carrier = info.carrier;
        }
        Ok(None) => info!("{ifname} does not exist yet; waiting for it to appear"),
        Err(e) => return Err(format!("cannot look up {ifname}: {e}")),
    }

    if sh.cfg.daemon.drop_privileges {
        let user = sh.cfg.daemon.user.clone();
        if let Some(name) = &user {
            hand_dirs_to(&sh, name);
        }
        crate::privs::drop_privileges(user.as_deref())?;
        debug!(
            "privileges dropped; effective capabilities {:#x}",
            crate::privs::effective_caps().unwrap_or(0)
        );
    }
    crate::notify::notify(&format!("READY=1\nSTATUS=running on {ifname}"));
    let mut last_status = String::new();
    // STATUS= lines are only worth building when systemd listens.
    let notify_status = std::env::var_os("NOTIFY_SOCKET").is_some();
    loop {
        if let Some(d) = v4.as_mut() {
            d.pump(&mut sh).await;
        }
        if let Some(d) = v6.as_mut() {
            d.pump(&mut sh).await;
        }
        if notify_status {
            let status = short_status(v4.as_ref(), v6.as_ref());
            if status != last_status {
                crate::notify::notify(&format!("STATUS={ifname}: {status}"));
                last_status = status;
            }
        }
        let deadline = [
            v4.as_ref().and_then(V4Driver::deadline),
            v6.as_ref().and_then(V6Driver::deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = deadline.map(|d| tokio::time::sleep_until(sh.clock.tokio_instant(d)));
        let wake = tokio::select! {
            _ = sigterm.recv() => Wake::Stop("SIGTERM"),
            _ = sigint.recv() => Wake::Stop("SIGINT"),
            _ = sighup.recv() => Wake::Reload,
            _ = sigusr1.recv() => Wake::Status,
            _ = sigusr2.recv() => Wake::Renew,
            ev = link_stream.next() => Wake::Link(ev),
            ev = addr_stream.next() => Wake::Addr(ev),
            rx = maybe(v4.as_ref().and_then(V4Driver::socket).map(|s| s.recv())) => Wake::V4(rx),
            rx = maybe(v6.as_ref().and_then(V6Driver::socket).map(|s| s.recv())) => Wake::V6(rx),
            ra = maybe(v6.as_ref().and_then(V6Driver::ra_socket).map(|s| s.next())) => Wake::Ra(ra),
            _ = maybe(sleep) => Wake::Timer,
            req = maybe(control.as_mut().map(|c| c.recv())) => Wake::Control(req),
            _ = maybe(watchdog.as_mut().map(|w| w.tick())) => Wake::Watchdog,
            w = wifi.next_connected() => Wake::Wifi(w),
            a = maybe(v4.as_ref().and_then(V4Driver::arp_socket).map(|s| s.recv())) => Wake::Arp(a),
        };
        let now = sh.clock.now();
        match wake {
            Wake::Stop(sig) => {
                info!("{sig}: stopping");
                crate::notify::notify("STOPPING=1");
                let (release, deconfigure) = (
                    sh.cfg.daemon.release_on_stop,
                    sh.cfg.daemon.deconfigure_on_stop,
                );
                if let Some(d) = v4.as_mut() {
                    d.shutdown(&mut sh, release, deconfigure).await;
                }
                if let Some(d) = v6.as_mut() {
                    d.shutdown(&mut sh, release, deconfigure).await;
                }
                let _ = std::fs::remove_file(crate::control::socket_path(&sh.cfg.daemon.run_dir));
                // Supplicants stop after the leases were released (the classic units
                // were ordered the same way), before the bond goes.
                wifi.shutdown().await;
                if let Some(b) = bond.as_mut() {
                    b.teardown().await;
                }
                if sh.cfg.daemon.deconfigure_on_stop {
                    if let Some(r) = sh.resolv.as_mut() {
                        if let Err(e) = r.restore() {
                            warn!("could not restore {}: {e}", r.describe());
                        }
                    }
                }
                info!("stopped");
                return Ok(());
            }
            Wake::Reload => reload(&mut sh, config_path.as_deref(), &overrides),
            Wake::Status => log_status(&sh, v4.as_ref(), v6.as_ref()),
            Wake::Renew => {
                info!("SIGUSR2: renewing now");
                if let Some(d) = v4.as_mut() {
                    d.renew(now);
                }
            }
            Wake::Link(None) => {
                return Err("the netlink link event stream ended; restart netbond".into());
            }
            Wake::Link(Some(first)) => {
                // Take every event already queued and coalesce: a burst (a flapping
                // cable, a bond enslaving ports) costs one pass, and the backlog (and
                // the memory it holds) cannot build up behind slow per-event work.
                let mut batch = vec![first];
                while batch.len() < 4096 {
                    match link_stream.next().now_or_never() {
                        Some(Some(ev)) => batch.push(ev),
                        _ => break,
                    }
                }
                for ev in coalesce(batch) {
                    if let Some(b) = bond.as_mut() {
                        if b.on_link(&ev).await {
                            // Deleted from outside: build it again, as a restart would.
                            if let Err(e) = b.recreate().await {
                                error!("{e}");
                            }
                        }
                    }
                    wifi.on_link(&ev);
                    on_link(&mut sh, &mut v4, &mut v6, &mut carrier, ev).await
                }
            }
            Wake::Addr(None) => {
                return Err("the netlink address event stream ended; restart netbond".into());
            }
            Wake::Addr(Some(AddrEvent::Deleted {
                ifindex,
                addr: IpAddr::V6(a),
                dad_failed: true,
                ..
            })) if Some(ifindex) == sh.ifindex => {
                if let Some(d) = v6.as_mut() {
                    d.dad_failed(now, &ifname, a);
                }
            }
            Wake::Addr(Some(_)) => {}
            Wake::V4(rx) => {
                if let Some(d) = v4.as_mut() {
                    d.on_receive(now, &ifname, rx);
                }
            }
            Wake::V6(rx) => {
                if let Some(d) = v6.as_mut() {
                    d.on_receive(now, &ifname, rx);
                }
            }
            Wake::Ra(ra) => {
                if let Some(d) = v6.as_mut() {
                    d.on_ra(now, &ifname, ra);
                }
            }
            Wake::Timer => {}
            Wake::Watchdog => crate::notify::notify("WATCHDOG=1"),
            Wake::Arp(a) => {
                if let Some(d) = v4.as_mut() {
                    d.on_arp(now, &ifname, a);
                }
            }
            Wake::Wifi(None) => {}
            Wake::Wifi(Some(port)) => {
                // A Wi-Fi port has carrier as soon as it associates, before the 4-way
                // handshake lets data through: a DISCOVER or REQUEST sent in that gap is
                // lost. Now that the port is authorised, send again at once (same xid).
                debug!("wifi: {port}: authorised; resending any DHCPv4 message in flight");
                if let Some(d) = v4.as_mut() {
                    d.resend_now(now);
                }
            }
            Wake::Control(None) => control = None,
            Wake::Control(Some((req, reply))) => {
                let resp = match req {
                    Request::Reload => {
                        reload(&mut sh, config_path.as_deref(), &overrides);
                        Response::done(
                            "configuration reloaded (see the log for what needs a restart)",
                        )
                    }
                    Request::Status => {
                        let mut r = Response::done("status");
                        let bond_status = match bond.as_ref() {
                            Some(b) => Some(b.status_json().await),
                            None => None,
                        };
                        let mut st =
                            status_json(&sh, &duid, iaid, v4.as_ref(), v6.as_ref(), bond_status);
                        st["wifi"] = wifi.status_json();
                        r.status = Some(st);
                        r
                    }
                    Request::Renew { family } => {
                        let mut done = Vec::new();
                        if family != Family::V6 {
                            if let Some(d) = v4.as_mut() {
                                d.renew(now);
                                done.push("dhcp4");
                            }
                        }
                        if family != Family::V4 {
                            if let Some(d) = v6.as_mut() {
                                d.renew(now);
                                done.push("dhcp6");
                            }
                        }
                        done_or_disabled(done, "renewing")
                    }
                    Request::Release { family } | Request::Stop { family } => {
                        let mut done = Vec::new();
                        if family != Family::V6 {
                            if let Some(d) = v4.as_mut() {
                                d.shutdown(&mut sh, true, true).await;
                                done.push("dhcp4");
                            }
                        }
                        if family != Family::V4 {
                            if let Some(d) = v6.as_mut() {
                                d.shutdown(&mut sh, true, true).await;
                                done.push("dhcp6");
                            }
                        }
                        done_or_disabled(done, "released and stopped")
                    }
                    Request::Wifi { iface, action } => match wifi.command(&iface, action).await {
                        Ok(m) => Response::done(m),
                        Err(e) => Response::fail(e),
                    },
                    Request::Start { family } => {
                        let mut done = Vec::new();
                        if family != Family::V6 {
                            if let Some(d) = v4.as_mut() {
                                d.start(now);
                                done.push("dhcp4");
                            }
                        }
                        if family != Family::V4 {
                            if let Some(d) = v6.as_mut() {
                                if d.is_stopped() {
                                    d.start(&sh, &duid, iaid);
                                }
                                done.push("dhcp6");
                            }
                        }
                        done_or_disabled(done, "started")
                    }
                };
                let _ = reply.send(resp);
            }
        }
    }
}

/// Coalesce a burst of link events. The kernel sends an interface's full state each
/// time, so a run of `New` events for the same interface collapses to its last one,
/// except that a carrier change inside the run is kept as one down/up (or up/down)
/// pair: the engines must still see that the link flapped. Deletions and events of
/// other interfaces keep their order.
fn coalesce(batch: Vec<LinkEvent>) -> Vec<LinkEvent> {
    let mut out: Vec<LinkEvent> = Vec::with_capacity(batch.len().min(64));
    for ev in batch {
        if let LinkEvent::New(info) = &ev {
            let same = |e: &LinkEvent| matches!(e, LinkEvent::New(p) if p.index == info.index);
            let carrier = |e: &LinkEvent| matches!(e, LinkEvent::New(p) if p.carrier);
            if let Some(prev) = out.last() {
                if same(prev) && carrier(prev) == info.carrier {
                    out.pop();
                } else if same(prev) && out.len() >= 2 && same(&out[out.len() - 2]) {
                    // [x, prev, ev] with x.carrier == ev.carrier: x is superseded.
                    let n = out.len();
                    if carrier(&out[n - 2]) == info.carrier {
                        out.remove(n - 2);
                    }
                }
            }
        }
        out.push(ev);
    }
    out
}

/// The interface exists (at start or after re-creation): open sockets on its index.
fn attach(sh: &mut Shared, v4: &mut Option<V4Driver>, v6: &mut Option<V6Driver>, info: &LinkInfo) {
    info!(
        "{}: index {}, MAC {}, {}",
        info.name,
        info.index,
        info.mac
            .map(|m| crate::hwaddr::fmt_mac(&m))
            .unwrap_or_else(|| "none".into()),
        if info.carrier {
            "carrier up"
        } else {
            "no carrier"
        }
    );
    sh.ifindex = Some(info.index);
    sh.applier = Some(Applier::new(
        sh.handle.clone(),
        info.index,
        info.name.clone(),
        sh.cfg.dhcp4.route_metric,
    ));
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
    if let Some(d) = v4.as_mut() {
        d.note_link_mac(info.mac);
        d.open(info.index, &info.name);
        d.link_changed(now, info.carrier, info.index, &info.name);
    }
    if let Some(d) = v6.as_mut() {
        d.open(info.index, &info.name, now);
        d.link_changed(now, info.carrier, info.index, &info.name);
    }
}

async fn on_link(
    sh: &mut Shared,
    v4: &mut Option<V4Driver>,
    v6: &mut Option<V6Driver>,
    carrier: &mut bool,
    ev: LinkEvent,
) {
    let now = sh.clock.now();
    match ev {
        LinkEvent::New(info) if info.name == sh.ifname => {
            if let Some(d) = v4.as_mut() {
                d.note_link_mac(info.mac);
            }
            if sh.ifindex != Some(info.index) {
                if sh.ifindex.is_some() {
                    info!("{}: re-created with index {}", info.name, info.index);
                }
                attach(sh, v4, v6, &info);
                *carrier = info.carrier;
                return;
            }
            if info.carrier != *carrier {
                info!(
                    "{}: carrier {}",
                    info.name,
                    if info.carrier { "up" } else { "down" }
                );
                *carrier = info.carrier;
                if let Some(d) = v4.as_mut() {
                    d.link_changed(now, info.carrier, info.index, &info.name);
                }
                if let Some(d) = v6.as_mut() {
                    d.link_changed(now, info.carrier, info.index, &info.name);
                }
            }
            // A MAC change needs no handling here: the DHCPv4 driver reads the MAC before
            // every transmit and the engine re-confirms on a difference. Waking the loop
            // (which this event did) is what makes it happen at once.
        }
        LinkEvent::New(info) if Some(info.index) == sh.ifindex => {
            // Renamed away from our name: treat as gone.
            info!(
                "{} was renamed to {}; waiting for {} to appear",
                sh.ifname, info.name, sh.ifname
            );
            detach(sh, v4, v6, now);
        }
        LinkEvent::Deleted { index, name } if Some(index) == sh.ifindex => {
            info!("{name}: removed; waiting for it to come back");
            detach(sh, v4, v6, now);
        }
        LinkEvent::Overrun => {
            warn!("netlink link events were lost; re-reading {}", sh.ifname);
            match link::get_link_by_name(&sh.handle, &sh.ifname).await {
                Ok(Some(info)) if Some(info.index) != sh.ifindex => attach(sh, v4, v6, &info),
                Ok(Some(info)) => {
                    if let Some(d) = v4.as_mut() {
                        d.note_link_mac(info.mac);
                    }
                }
                Ok(None) if sh.ifindex.is_some() => detach(sh, v4, v6, now),
                Ok(_) => {}
                Err(e) => error!("{e}"),
            }
        }
        _ => {}
    }
}

fn detach(
    sh: &mut Shared,
    v4: &mut Option<V4Driver>,
    v6: &mut Option<V6Driver>,
    now: netbond_proto::Instant,
) {
    sh.ifindex = None;
    sh.applier = None;
    if let Some(d) = v4.as_mut() {
        d.interface_gone(now);
    }
    if let Some(d) = v6.as_mut() {
        d.interface_gone(now);
    }
}

/// Give the state and run dirs to the unprivileged user netbond is about to become.
fn hand_dirs_to(sh: &Shared, user: &str) {
    let c = match std::ffi::CString::new(user) {
        Ok(c) => c,
        Err(_) => return,
    };
    // SAFETY: getpwnam with a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return;
    }
    // SAFETY: non-null result of getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    for dir in [&sh.cfg.daemon.state_dir, &sh.cfg.daemon.run_dir] {
        let mut paths = vec![dir.clone()];
        if let Ok(rd) = std::fs::read_dir(dir) {
            paths.extend(rd.flatten().map(|e| e.path()));
        }
        for p in paths {
            if let Err(e) = std::os::unix::fs::chown(&p, Some(uid), Some(gid)) {
                warn!("cannot hand {} to {user}: {e}", p.display());
            }
        }
    }
}

/// One line for systemd's STATUS=.
fn short_status(v4: Option<&V4Driver>, v6: Option<&V6Driver>) -> String {
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

fn done_or_disabled(done: Vec<&str>, what: &str) -> Response {
    if done.is_empty() {
        Response::fail("that client is disabled in the configuration")
    } else {
        Response::done(format!("{}: {what}", done.join(", ")))
    }
}

/// The numeric gid of a group name.
fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam takes a valid C string and returns NULL or a pointer into
    // static storage that we read at once, before any other call could reuse it.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        None
    } else {
        // SAFETY: non-null result of getgrnam.
        Some(unsafe { (*gr).gr_gid })
    }
}

/// `netbond status --json`: a stable, documented shape (see README).
fn status_json(
    sh: &Shared,
    duid: &netbond_proto::Duid,
    iaid: netbond_proto::Iaid,
    v4: Option<&V4Driver>,
    v6: Option<&V6Driver>,
    bond: Option<serde_json::Value>,
) -> serde_json::Value {
    let now = sh.clock.now();
    let mac = crate::hwaddr::current_mac(&sh.ifname).ok();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "interface": {
            "name": sh.ifname,
            "index": sh.ifindex,
            "mac": mac.map(|m| crate::hwaddr::fmt_mac(&m)),
        },
        "identity": { "duid": duid.to_string(), "iaid": iaid.to_string() },
        "dhcp4": v4.map(|d| d.status_json(now)),
        "dhcp6": v6.map(|d| d.status_json(now)),
        "bond": bond,
    })
}

/// SIGUSR1: one log line per client with its state and lease (until the control
/// socket's `netbond status` exists).
fn log_status(sh: &Shared, v4: Option<&V4Driver>, v6: Option<&V6Driver>) {
    if let Some(d) = v4 {
        match d.lease() {
            Some(l) => info!(
                "status: dhcp4 {} {}/{} from {}, {} s left",
                d.state_name(),
                l.address,
                l.prefix_len,
                l.server,
                l.remaining_secs(sh.clock.now())
                    .map_or("infinite".to_string(), |s| s.to_string())
            ),
            None => info!("status: dhcp4 {} (no lease)", d.state_name()),
        }
    }
    if let Some(d) = v6 {
        let addrs: Vec<String> = d
            .lease()
            .map(|l| l.addresses.iter().map(|a| a.addr.to_string()).collect())
            .unwrap_or_default();
        info!("status: dhcp6 {} [{}]", d.state_name(), addrs.join(", "));
    }
}

/// SIGHUP: re-read the file; apply what can change live, say what needs a restart.
fn reload(sh: &mut Shared, path: Option<&std::path::Path>, overrides: &Overrides) {
    let Some(path) = path else {
        info!("SIGHUP: no configuration file in use; nothing to reload");
        return;
    };
    let mut new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("SIGHUP: keeping the running configuration: {e}");
            return;
        }
    };
    overrides.apply(&mut new);
    let old = &sh.cfg;
    let mut restart = Vec::new();
    if new.identity != old.identity {
        restart.push("[identity]");
    }
    if new.dhcp4.enabled != old.dhcp4.enabled || new.dhcp6 != old.dhcp6 {
        restart.push("enabling/disabling a client or [dhcp6]");
    }
    if new.dhcp4.client_id != old.dhcp4.client_id
        || new.dhcp4.hostname != old.dhcp4.hostname
        || new.dhcp4.initial_interval != old.dhcp4.initial_interval
        || new.dhcp4.max_interval != old.dhcp4.max_interval
        || new.dhcp4.timeout != old.dhcp4.timeout
        || new.dhcp4.route_metric != old.dhcp4.route_metric
    {
        restart.push("[dhcp4] identity/timing/metric keys");
    }
    if new.daemon.state_dir != old.daemon.state_dir
        || new.daemon.run_dir != old.daemon.run_dir
        || new.dns.resolv_conf != old.dns.resolv_conf
    {
        restart.push("paths");
    }
    // Live: release/deconfigure on stop, use_* policies, wide routes (next renewal).
    sh.cfg.daemon.release_on_stop = new.daemon.release_on_stop;
    sh.cfg.daemon.deconfigure_on_stop = new.daemon.deconfigure_on_stop;
    sh.cfg.dhcp4.use_dns = new.dhcp4.use_dns;
    sh.cfg.dhcp4.use_routes = new.dhcp4.use_routes;
    sh.cfg.dhcp4.use_mtu = new.dhcp4.use_mtu;
    sh.cfg.dhcp4.accept_wide_routes = new.dhcp4.accept_wide_routes;
    if restart.is_empty() {
        info!("SIGHUP: configuration reloaded from {}", path.display());
    } else {
        warn!(
            "SIGHUP: reloaded {}; these changes take effect only after a restart: {}",
            path.display(),
            restart.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(index: u32, carrier: bool) -> LinkEvent {
        LinkEvent::New(LinkInfo {
            index,
            name: format!("if{index}"),
            mac: None,
            up: true,
            carrier,
            mtu: 1500,
            controller: None,
            is_port: false,
            kind: None,
            bond: None,
            bond_port: None,
        })
    }

    fn carriers(v: &[LinkEvent]) -> Vec<(u32, bool)> {
        v.iter()
            .map(|e| match e {
                LinkEvent::New(i) => (i.index, i.carrier),
                LinkEvent::Deleted { index, .. } => (*index, false),
                LinkEvent::Overrun => (0, false),
            })
            .collect()
    }

    #[test]
    fn a_burst_of_flaps_becomes_one_flap() {
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.push(new(2, false));
            burst.push(new(2, true));
        }
        assert_eq!(carriers(&coalesce(burst)), vec![(2, false), (2, true)]);
        // Same state repeated: one event.
        let same = vec![new(2, true), new(2, true), new(2, true)];
        assert_eq!(carriers(&coalesce(same)), vec![(2, true)]);
        // Other interfaces and deletions keep their place.
        let mixed = vec![
            new(2, true),
            new(3, true),
            new(2, false),
            LinkEvent::Deleted {
                index: 3,
                name: "if3".into(),
            },
        ];
        assert_eq!(coalesce(mixed).len(), 4);
    }
}
