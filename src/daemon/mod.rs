//! The daemon: what is process-wide, for one interface or many.
//!
//! This loop owns the signals, the netlink link and address event streams, the control
//! socket, the bond and the Wi-Fi supplicants. Each managed interface runs in its own
//! task (`iface.rs`) with its sockets, engines and deadline; this loop routes to it the
//! events that concern it (by name and index) and the control requests. All of it runs
//! on one thread. With bound leases and quiet links nothing is pending but the renewal
//! deadlines: no periodic wakeups.

pub mod clock;
pub mod control;
pub mod events;
pub mod hooks;
pub mod iface;
pub mod notify;
pub mod online;
pub mod privs;
pub mod reload;

use crate::config::Config;
use crate::daemon::clock::Clock;
use crate::daemon::control::{Family, Request, Response};
use crate::daemon::iface::{Iface, IfaceHandle, Mail, StatusBoard};
use crate::dhcp::shared::{Dns4, Dns6, Shared};
use crate::net::apply::{addr_events, AddrEvent};
use crate::net::bond::BondManager;
use crate::net::link::{self, LinkEvent};
use crate::state::identity;
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::{DnsSink, DnsTarget, DnsWriter};
use crate::state::store::Store;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

/// Everything `netbond run` needs to start.
pub struct RunOptions {
    /// The interfaces to manage, in order of preference (the first one gets the lowest
    /// route metric and, with a resolv.conf file, writes DNS).
    pub ifnames: Vec<String>,
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
    Control(Option<crate::daemon::control::Pending>),
    Watchdog,
    Wifi(Option<String>),
    /// A bond port whose enslave failed is due to be tried again.
    BondRetry,
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
        ifnames,
        config_path,
        cfg,
        overrides,
    } = opts;
    let clock = Clock::new();
    // From here on a durable write on this thread is counted (status `saves_on_loop`).
    crate::state::store::mark_loop_thread();
    let store = Store::open(&cfg.daemon.state_dir).map_err(|e| {
        format!(
            "cannot use the state directory {}: {e} (set --state-dir to a writable directory)",
            cfg.daemon.state_dir.display()
        )
    })?;
    let duid = identity::load_or_create_duid(&cfg, &store);
    match ifnames.as_slice() {
        [one] => info!(
            "netbond {} on {one}: DUID {duid}, IAID {}",
            env!("CARGO_PKG_VERSION"),
            identity::iaid(&cfg, one)
        ),
        many => info!(
            "netbond {} on {} interfaces ({}): DUID {duid}",
            env!("CARGO_PKG_VERSION"),
            many.len(),
            abbreviate(many)
        ),
    }

    // Subscribe before the first lookup so no change in between is missed.
    let (link_conn, mut link_stream) =
        link::link_events().map_err(|e| format!("cannot listen to netlink link events: {e}"))?;
    tokio::spawn(link_conn);
    let (addr_conn, mut addr_stream) =
        addr_events().map_err(|e| format!("cannot listen to netlink address events: {e}"))?;
    tokio::spawn(addr_conn);
    let (conn, handle) = link::connect().map_err(|e| format!("cannot open netlink: {e}"))?;
    tokio::spawn(conn);

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
    let mut sigusr2 = signal(SignalKind::user_defined2()).map_err(|e| e.to_string())?;

    let mut bond = cfg
        .bond
        .clone()
        .map(|b| BondManager::new(b, handle.clone()));
    if let Some(b) = bond.as_mut() {
        b.ensure().await?;
    }
    // One dump for every interface (after the bond exists and has its ports).
    let links = link::list_links(&handle)
        .await
        .map_err(|e| format!("cannot list network interfaces: {e}"))?;
    // Wireless ports: start a supplicant for each that exists now (after the bond has
    // enslaved it); hot-plugged ones follow on link events.
    let mut wifi = crate::wifi::WifiManager::new(cfg.wifi.clone(), cfg.daemon.run_dir.clone());
    if !wifi.is_empty() {
        wifi.start_existing(&links);
    }

    let group = match cfg.control.group.as_deref() {
        Some(g) => Some(gid_of(g).ok_or_else(|| {
            format!("[control] group {g:?} does not exist; create it or remove the setting")
        })?),
        None => None,
    };
    let mut control = match crate::daemon::control::listen(&cfg.daemon.run_dir, group) {
        Ok(rx) => Some(rx),
        Err(e) => {
            return Err(format!(
                "cannot open the control socket in {}: {e}",
                cfg.daemon.run_dir.display()
            ))
        }
    };

    // Only when systemd asked for a watchdog does netbond wake up periodically.
    let mut watchdog = crate::daemon::notify::watchdog_interval().map(tokio::time::interval);
    // STATUS= lines are only worth building when systemd listens.
    let board = std::env::var_os("NOTIFY_SOCKET")
        .is_some()
        .then(|| StatusBoard::new(&ifnames));

    // Whether each interface is online: READY=1, `wait-online` and status read it.
    let online = crate::daemon::online::Board::new(&ifnames);

    let host_macs = Arc::new(crate::net::hwaddr::HostMacs::default());
    for l in &links {
        host_macs.set(l.index, l.mac);
    }
    // Every interface's drivers, attached (sockets open) before privileges go.
    let mut cfg = Arc::new(cfg);
    let mut pending = Vec::with_capacity(ifnames.len());
    // Disk writes and resolvectl runs leave the loop: one writer thread each.
    let leases = LeaseWriter::new(store.clone());
    let dns = DnsWriter::new();
    let pacer = (ifnames.len() > 1).then(crate::dhcp::pace::Pacer::new);
    for (slot, name) in ifnames.iter().enumerate() {
        let target = match cfg.dns.resolv_conf.as_str() {
            "none" | "" => None,
            // systemd-resolved keeps DNS per link: every interface reports its own.
            "resolvectl" => Some(DnsTarget::Resolved(name.clone())),
            // One resolv.conf: the first interface listed owns it.
            // The original is kept in the state dir as well: a stop that keeps the
            // network leaves netbond's file, and a later releasing stop must still put
            // back the one from before.
            p if slot == 0 => Some(DnsTarget::File(
                p.into(),
                Some(store.dir().join("resolv.conf.original")),
            )),
            _ => None,
        };
        let resolv = target.map(|t| DnsSink::new(t, dns.clone()));
        let sh = Shared {
            ifname: name.clone(),
            ifindex: None,
            handle: handle.clone(),
            applier: None,
            store: store.clone(),
            leases: leases.clone(),
            clock,
            cfg: cfg.clone(),
            route_metric: cfg
                .dhcp4
                .route_metric
                .saturating_add(u32::try_from(slot).unwrap_or(u32::MAX)),
            host_macs: host_macs.clone(),
            dns4: Dns4::default(),
            dns6: Dns6::default(),
            resolv,
            pacer: pacer.clone(),
        };
        let iaid = identity::iaid(&cfg, name);
        if ifnames.len() > 1 {
            debug!("{name}: IAID {iaid}");
        }
        let mut iface = Iface::new(sh, duid.clone(), iaid, slot, board.clone());
        iface.report_online(online.clone());
        match links.iter().find(|l| l.name == *name) {
            Some(info) => iface.attach(info),
            None => info!("{name} does not exist yet; waiting for it to appear"),
        }
        pending.push(iface);
    }
    drop(links);

    if cfg.daemon.drop_privileges {
        let user = cfg.daemon.user.clone();
        if let Some(name) = &user {
            hand_dirs_to(&cfg, name);
        }
        crate::daemon::privs::drop_privileges(user.as_deref())?;
        debug!(
            "privileges dropped; effective capabilities {:#x}",
            crate::daemon::privs::effective_caps().unwrap_or(0)
        );
    }
    crate::daemon::events::start(&cfg);
    let mut ifaces: Vec<IfaceHandle> = pending.into_iter().map(Iface::spawn).collect();
    let mut slaac = Slaac::default();
    slaac.reread(&handle, &ifaces, &online).await;
    start_readiness(&cfg, &online, &ifnames);
    crate::daemon::events::started(&ifnames);
    loop {
        let wake = tokio::select! {
            _ = sigterm.recv() => Wake::Stop("SIGTERM"),
            _ = sigint.recv() => Wake::Stop("SIGINT"),
            _ = sighup.recv() => Wake::Reload,
            _ = sigusr1.recv() => Wake::Status,
            _ = sigusr2.recv() => Wake::Renew,
            ev = link_stream.next() => Wake::Link(ev),
            ev = addr_stream.next() => Wake::Addr(ev),
            req = maybe(control.as_mut().map(|c| c.recv())) => Wake::Control(req),
            _ = maybe(watchdog.as_mut().map(|w| w.tick())) => Wake::Watchdog,
            w = wifi.next_connected() => Wake::Wifi(w),
            _ = maybe(bond.as_ref().and_then(BondManager::next_retry).map(tokio::time::sleep_until)) => Wake::BondRetry,
        };
        match wake {
            Wake::Stop(sig) => {
                let how = if cfg.daemon.on_stop == "release" {
                    info!("{sig}: stopping (on_stop = \"release\": releasing the leases and removing the configuration)");
                    StopHow {
                        release: cfg.daemon.release_on_stop,
                        deconfigure: cfg.daemon.deconfigure_on_stop,
                        delete_bond: true,
                    }
                } else {
                    info!("{sig}: stopping; the network stays as it is (on_stop = \"keep\"): the next start confirms the saved leases");
                    StopHow::KEEP
                };
                // Requests still queued are answered "netbond is stopping".
                drop(control.take());
                stop_all(
                    how,
                    &online,
                    &mut ifaces,
                    &mut wifi,
                    bond.as_mut(),
                    &cfg,
                    (&leases, &dns),
                )
                .await;
                crate::daemon::control::drain(std::time::Duration::from_millis(500)).await;
                info!("stopped");
                crate::daemon::events::stopped(sig, &cfg).await;
                return Ok(());
            }
            Wake::Reload => {
                reload(&mut cfg, &ifaces, config_path.as_deref(), &overrides);
            }
            Wake::Status => {
                for h in &ifaces {
                    h.send(Mail::LogStatus);
                }
            }
            Wake::Renew => {
                // Both families, like `netbond renew` without --v4/--v6: the signal is
                // for "the network changed, check the leases now".
                info!("SIGUSR2: renewing now (DHCPv4 and DHCPv6)");
                for h in &ifaces {
                    let (tx, _) = tokio::sync::oneshot::channel();
                    h.send(Mail::Renew(Family::Both, tx));
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
                    route_link(&handle, &mut ifaces, &host_macs, ev).await;
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
            })) => {
                for h in ifaces.iter().filter(|h| h.index == Some(ifindex)) {
                    h.send(Mail::DadFailed(a));
                }
            }
            Wake::Addr(Some(AddrEvent::Overrun)) => slaac.reread(&handle, &ifaces, &online).await,
            Wake::Addr(Some(ev)) => slaac.on_event(&ev, &ifaces, &online),
            Wake::Watchdog => crate::daemon::notify::notify("WATCHDOG=1"),
            Wake::BondRetry => {
                if let Some(b) = bond.as_mut() {
                    b.retry_due().await;
                }
            }
            Wake::Wifi(None) => {}
            Wake::Wifi(Some(port)) => {
                // The port's own interface when it is managed, else the bond it is in.
                let bond_name = bond.as_ref().map(|b| b.name().to_string());
                for h in ifaces
                    .iter()
                    .filter(|h| h.name == port || Some(&h.name) == bond_name.as_ref())
                {
                    h.send(Mail::ResendNow);
                }
            }
            Wake::Control(None) => control = None,
            Wake::Control(Some((Request::Shutdown { release }, reply))) => {
                let how = if release {
                    info!("netbond stop --release: releasing the leases, removing the configuration, stopping");
                    StopHow {
                        release: true,
                        deconfigure: true,
                        delete_bond: true,
                    }
                } else {
                    info!("netbond stop: stopping; the network stays as it is");
                    StopHow::KEEP
                };
                // Requests still queued are answered "netbond is stopping".
                drop(control.take());
                stop_all(
                    how,
                    &online,
                    &mut ifaces,
                    &mut wifi,
                    bond.as_mut(),
                    &cfg,
                    (&leases, &dns),
                )
                .await;
                let _ = reply.send(Response::done(if release {
                    "released, deconfigured and stopped"
                } else {
                    "stopped; the network was left as it is"
                }));
                crate::daemon::control::drain(std::time::Duration::from_secs(1)).await;
                info!("stopped");
                return Ok(());
            }
            Wake::Control(Some((
                Request::WaitOnline {
                    policy,
                    iface,
                    family,
                    timeout_ms,
                },
                reply,
            ))) => {
                let q = crate::daemon::online::Query {
                    policy: policy.unwrap_or_else(|| {
                        crate::daemon::online::Policy::from_config(&cfg.daemon.online)
                    }),
                    iface,
                    family,
                };
                let online_rx = online.subscribe();
                match q.check(&online.snapshot()) {
                    Err(e) => {
                        let _ = reply.send(Response::fail(e));
                    }
                    Ok(()) if WAITERS.load(Ordering::Relaxed) >= MAX_WAITERS => {
                        let _ = reply.send(Response::fail(format!(
                            "{MAX_WAITERS} wait-online requests are already waiting; try again later"
                        )));
                    }
                    // Answered from its own task, so the loop goes on meanwhile.
                    Ok(()) => {
                        WAITERS.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            answer_when_online(online_rx, q, timeout_ms, reply).await;
                            WAITERS.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                }
            }
            Wake::Control(Some((req, reply))) => {
                let resp = match req {
                    Request::Reload => Response::done(reload(
                        &mut cfg,
                        &ifaces,
                        config_path.as_deref(),
                        &overrides,
                    )),
                    Request::Status { iface } => match select(&ifaces, iface.as_deref()) {
                        Err(e) => Response::fail(e),
                        Ok(chosen) => {
                            let mut all = Vec::with_capacity(chosen.len());
                            let snap = online.snapshot();
                            for h in chosen {
                                if let Some(mut st) = h.ask(Mail::Status).await {
                                    st["online"] = snap
                                        .ifaces
                                        .iter()
                                        .any(|i| i.name == h.name && i.online(None))
                                        .into();
                                    all.push(st);
                                }
                            }
                            let bond_status = match bond.as_ref() {
                                Some(b) => Some(b.status_json().await),
                                None => None,
                            };
                            let q = crate::daemon::online::Query {
                                policy: crate::daemon::online::Policy::from_config(
                                    &cfg.daemon.online,
                                ),
                                iface: iface.clone(),
                                family: None,
                            };
                            let mut r = Response::done("status");
                            let mut st = status_json(all, bond_status, wifi.status_json());
                            st["online"] = q.is_online(&snap).into();
                            st["stats"] = writer_stats(&leases, &dns, pacer.as_deref());
                            r.status = Some(st);
                            r
                        }
                    },
                    Request::Renew { family, iface } => {
                        ask_each(&ifaces, iface.as_deref(), "renewing", |tx| {
                            Mail::Renew(family, tx)
                        })
                        .await
                    }
                    Request::Release { family, iface } | Request::Stop { family, iface } => {
                        ask_each(&ifaces, iface.as_deref(), "released and stopped", |tx| {
                            Mail::Stop(family, tx)
                        })
                        .await
                    }
                    Request::Start { family, iface } => {
                        ask_each(&ifaces, iface.as_deref(), "started", |tx| {
                            Mail::Start(family, tx)
                        })
                        .await
                    }
                    Request::Monitor { .. } => Response::fail("served by the control socket"),
                    Request::Wifi { iface, action } => match wifi.command(&iface, action).await {
                        Ok(m) => Response::done(m),
                        Err(e) => Response::fail(e),
                    },
                    Request::Shutdown { .. } | Request::WaitOnline { .. } => {
                        unreachable!("handled above")
                    }
                };
                let _ = reply.send(resp);
            }
        }
    }
}

/// The SLAAC addresses of the managed interfaces (online counts them as IPv6; netbond
/// does not make them, the kernel does from router advertisements).
#[derive(Default)]
struct Slaac {
    by_index: std::collections::HashMap<u32, std::collections::HashSet<std::net::Ipv6Addr>>,
}

impl Slaac {
    /// Read them all again (at start, and when address events were lost).
    async fn reread(
        &mut self,
        handle: &rtnetlink::Handle,
        ifaces: &[IfaceHandle],
        online: &crate::daemon::online::Board,
    ) {
        self.by_index.clear();
        for (slot, h) in ifaces.iter().enumerate() {
            let Some(index) = h.index else { continue };
            match crate::net::apply::list_ra_addrs6(handle, index).await {
                Ok(v) => {
                    online.set_ra6(slot, !v.is_empty());
                    self.by_index.insert(index, v.into_iter().collect());
                }
                Err(e) => debug!("{}: cannot list IPv6 addresses: {e}", h.name),
            }
        }
    }

    /// An address event: keep the sets, tell the board when a set (un)empties.
    fn on_event(
        &mut self,
        ev: &AddrEvent,
        ifaces: &[IfaceHandle],
        online: &crate::daemon::online::Board,
    ) {
        let (ifindex, addr, usable) = match ev {
            AddrEvent::New {
                ifindex,
                addr: IpAddr::V6(a),
                tentative,
                from_ra,
                ..
            } => (*ifindex, *a, *from_ra && !*tentative),
            AddrEvent::Deleted {
                ifindex,
                addr: IpAddr::V6(a),
                ..
            } => (*ifindex, *a, false),
            _ => return,
        };
        let Some(slot) = ifaces.iter().position(|h| h.index == Some(ifindex)) else {
            return;
        };
        let set = self.by_index.entry(ifindex).or_default();
        if usable {
            set.insert(addr);
        } else {
            set.remove(&addr);
        }
        let any = !set.is_empty();
        if !any {
            self.by_index.remove(&ifindex);
        }
        online.set_ra6(slot, any);
    }
}

/// What a stop does to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StopHow {
    /// Send RELEASE / Release.
    release: bool,
    /// Remove addresses, routes, DNS (and restore what was changed).
    deconfigure: bool,
    /// Delete the bond (unless `[bond] keep_on_stop`).
    delete_bond: bool,
}

impl StopHow {
    /// A restart's stop: everything stays, the leases are kept for the next start.
    const KEEP: StopHow = StopHow {
        release: false,
        deconfigure: false,
        delete_bond: false,
    };
}

/// Stop every interface, the supplicants and (when so told) the bond.
async fn stop_all(
    how: StopHow,
    online: &crate::daemon::online::Board,
    ifaces: &mut [IfaceHandle],
    wifi: &mut crate::wifi::WifiManager,
    bond: Option<&mut BondManager>,
    cfg: &Config,
    (leases, dns): (&LeaseWriter, &DnsWriter),
) {
    crate::daemon::notify::notify("STOPPING=1");
    // `wait-online` callers get their answer now.
    online.set_stopping();
    futures::future::join_all(
        ifaces
            .iter_mut()
            .map(|h| h.shutdown(how.release, how.deconfigure)),
    )
    .await;
    // What the interfaces queued (last saves, resolv.conf put back) is done before the
    // process ends.
    flush_writers(leases, dns).await;
    let _ = std::fs::remove_file(crate::daemon::control::socket_path(&cfg.daemon.run_dir));
    // Supplicants stop after the leases were released (the classic units were ordered
    // the same way), before the bond goes.
    wifi.shutdown().await;
    if let Some(b) = bond {
        if how.delete_bond {
            b.teardown().await;
        } else {
            info!("{}: left in place for the next start", b.name());
        }
    }
}

/// READY=1 for systemd once online per `[daemon] online`, or at `online_timeout`
/// with a STATUS= saying what is missing. Runs beside the loop.
fn start_readiness(cfg: &Config, online: &crate::daemon::online::Board, ifnames: &[String]) {
    let timeout = cfg.daemon.online_timeout;
    if timeout == 0 {
        crate::daemon::notify::notify(&format!(
            "READY=1\nSTATUS=running on {} (online_timeout = 0: ready at once)",
            abbreviate(ifnames)
        ));
        return;
    }
    let q = crate::daemon::online::Query {
        policy: crate::daemon::online::Policy::from_config(&cfg.daemon.online),
        iface: None,
        family: None,
    };
    let rx = online.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
    tokio::spawn(async move {
        let out = crate::daemon::online::wait(rx, &q, Some(deadline)).await;
        match &out {
            crate::daemon::online::Outcome::Online(why) => info!("{why}"),
            crate::daemon::online::Outcome::TimedOut(why) => warn!(
                "{why} after {timeout} s (online_timeout); telling systemd the service is ready anyway"
            ),
            crate::daemon::online::Outcome::Stopping => return,
        }
        crate::daemon::notify::notify(&crate::daemon::online::ready_message(&out, timeout));
    });
}

/// `wait-online` requests being waited on; each holds a task and a connection, so a
/// local client cannot pile up more than [`MAX_WAITERS`].
static WAITERS: AtomicUsize = AtomicUsize::new(0);
const MAX_WAITERS: usize = 256;

/// Answer one `wait-online` request: when online, at its timeout, or at a stop.
async fn answer_when_online(
    rx: tokio::sync::watch::Receiver<crate::daemon::online::Snapshot>,
    q: crate::daemon::online::Query,
    timeout_ms: u64,
    reply: tokio::sync::oneshot::Sender<Response>,
) {
    use crate::daemon::online::Outcome;
    let limit = std::time::Duration::from_millis(timeout_ms.min(86_400_000));
    let deadline = tokio::time::Instant::now() + limit;
    let resp = match crate::daemon::online::wait(rx, &q, Some(deadline)).await {
        Outcome::Online(m) => Response::done(m),
        Outcome::TimedOut(m) => Response::fail(format!(
            "not online after {:.1} s: {m}",
            limit.as_secs_f64()
        )),
        Outcome::Stopping => Response::fail("netbond is stopping"),
    };
    let _ = reply.send(resp);
}

/// How long a stop waits for the writer threads (a hung disk or resolved must not
/// keep the process from ending; systemd's stop timeout is 90 s by default).
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wait for the lease and DNS writers to finish what was queued.
async fn flush_writers(leases: &LeaseWriter, dns: &DnsWriter) {
    if !leases.flush(FLUSH_TIMEOUT).await {
        warn!(
            "lease files were still being written after {} s; stopping anyway",
            FLUSH_TIMEOUT.as_secs()
        );
    }
    if !dns.flush(FLUSH_TIMEOUT).await {
        warn!(
            "DNS settings were still being applied after {} s; stopping anyway",
            FLUSH_TIMEOUT.as_secs()
        );
    }
}

/// `stats` of `netbond status --json`: what the writer threads did, and how many
/// durable writes ran on the event loop (`saves_on_loop`, always 0 unless something
/// regressed).
fn writer_stats(
    leases: &LeaseWriter,
    dns: &DnsWriter,
    pacer: Option<&crate::dhcp::pace::Pacer>,
) -> serde_json::Value {
    let w = |s: crate::state::worker::Stats| serde_json::json!({ "done": s.done, "coalesced": s.coalesced, "pending": s.pending });
    serde_json::json!({
        "saves_on_loop": crate::state::store::writes_on_loop(),
        "lease_writes": w(leases.stats()),
        "dns_writes": w(dns.stats()),
        "start_window": pacer.map(|p| {
            let s = p.stats();
            serde_json::json!({
                "window": s.window, "max_window": s.max_window, "ok": s.ok, "lost": s.lost,
            })
        }),
    })
}

/// "a, b, c" for a few names, "a, b, c, ... (N)" for many (log lines stay short).
fn abbreviate(names: &[String]) -> String {
    if names.len() <= 4 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..3].join(", "), names.len())
    }
}

/// The interfaces a control request is about: the named one, or all.
fn select<'a>(
    ifaces: &'a [IfaceHandle],
    name: Option<&str>,
) -> Result<Vec<&'a IfaceHandle>, String> {
    match name {
        None => Ok(ifaces.iter().collect()),
        Some(n) => match ifaces.iter().find(|h| h.name == n) {
            Some(h) => Ok(vec![h]),
            None => Err(format!(
                "netbond does not manage {n:?}; it manages {}",
                abbreviate(&ifaces.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
            )),
        },
    }
}

/// Send one request to each chosen interface and summarise what was done.
async fn ask_each(
    ifaces: &[IfaceHandle],
    name: Option<&str>,
    what: &str,
    mail: impl Fn(tokio::sync::oneshot::Sender<Vec<&'static str>>) -> Mail,
) -> Response {
    let chosen = match select(ifaces, name) {
        Ok(c) => c,
        Err(e) => return Response::fail(e),
    };
    let mut done: Vec<&'static str> = Vec::new();
    let mut count = 0usize;
    for h in &chosen {
        if let Some(d) = h.ask(&mail).await {
            count += usize::from(!d.is_empty());
            for c in d {
                if !done.contains(&c) {
                    done.push(c);
                }
            }
        }
    }
    if done.is_empty() {
        Response::fail("that client is disabled in the configuration")
    } else if chosen.len() == 1 {
        Response::done(format!("{}: {what}", done.join(", ")))
    } else {
        Response::done(format!("{}: {what} on {count} interfaces", done.join(", ")))
    }
}

/// Hand a link event to the interfaces it concerns: by name (the interface, whatever
/// its index now) and by index (a rename away from a managed name). Keeps `host_macs`
/// current on the way.
async fn route_link(
    handle: &rtnetlink::Handle,
    ifaces: &mut [IfaceHandle],
    host_macs: &crate::net::hwaddr::HostMacs,
    ev: LinkEvent,
) {
    match ev {
        LinkEvent::New(info) => {
            host_macs.set(info.index, info.mac);
            for h in ifaces.iter_mut() {
                if h.name == info.name {
                    h.index = Some(info.index);
                    // Carrier and MAC: the task passes a new MAC to the engines'
                    // hw_address_changed (a bond failover re-confirms at once).
                    h.send(Mail::Link(Box::new(info.clone())));
                } else if h.index == Some(info.index) {
                    h.index = None;
                    h.send(Mail::RenamedAway(info.name.clone()));
                }
            }
        }
        LinkEvent::Deleted { index, .. } => {
            host_macs.remove(index);
            for h in ifaces.iter_mut().filter(|h| h.index == Some(index)) {
                h.index = None;
                h.send(Mail::Deleted);
            }
        }
        LinkEvent::Overrun => {
            warn!("netlink link events were lost; re-reading the interfaces");
            match link::list_links(handle).await {
                Ok(links) => {
                    for l in &links {
                        host_macs.set(l.index, l.mac);
                    }
                    for h in ifaces.iter_mut() {
                        match links.iter().find(|l| l.name == h.name) {
                            Some(info) => {
                                h.index = Some(info.index);
                                h.send(Mail::Link(Box::new(info.clone())));
                            }
                            None if h.index.is_some() => {
                                h.index = None;
                                h.send(Mail::Deleted);
                            }
                            None => {}
                        }
                    }
                }
                Err(e) => error!("cannot list network interfaces after lost events: {e}"),
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

/// Give the state and run dirs to the unprivileged user netbond is about to become.
fn hand_dirs_to(cfg: &Config, user: &str) {
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
    for dir in [&cfg.daemon.state_dir, &cfg.daemon.run_dir] {
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

/// `netbond status --json`: a stable, documented shape (see README). The top-level
/// `interface`, `identity`, `dhcp4` and `dhcp6` are the first (or the chosen)
/// interface's, as in single-interface mode; `interfaces` lists every one.
fn status_json(
    ifaces: Vec<serde_json::Value>,
    bond: Option<serde_json::Value>,
    wifi: serde_json::Value,
) -> serde_json::Value {
    let mut st = ifaces
        .first()
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    st["version"] = env!("CARGO_PKG_VERSION").into();
    st["bond"] = bond.unwrap_or(serde_json::Value::Null);
    st["wifi"] = wifi;
    st["interfaces"] = serde_json::Value::Array(ifaces);
    st
}

/// SIGHUP or `netbond reload`: re-read the file, take what can change live into the
/// running configuration and hand it to every interface; name what needs a restart.
/// Returns the summary for the control socket's reply.
fn reload(
    cfg: &mut Arc<Config>,
    ifaces: &[IfaceHandle],
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> String {
    let (live, summary) = reloaded(cfg, path, overrides);
    if let Some(live) = live {
        *cfg = Arc::new(live);
        for h in ifaces {
            h.send(Mail::Config(cfg.clone()));
        }
    }
    summary
}

/// The running configuration with the file's live keys (`None` when nothing could be
/// read), and one line saying what was done. Which key is live and which needs a
/// restart is decided in one place, `reload::KEYS`.
fn reloaded(
    old: &Config,
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> (Option<Config>, String) {
    let Some(path) = path else {
        let m = "no configuration file in use; nothing to reload".to_string();
        info!("reload: {m}");
        return (None, m);
    };
    let mut new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("reload: keeping the running configuration: {e}");
            return (None, format!("keeping the running configuration: {e}"));
        }
    };
    overrides.apply(&mut new);
    let plan = crate::daemon::reload::plan(old, &new);
    let mut applied = Vec::new();
    let mut not_used = Vec::new();
    let level_pinned = plan.applies("daemon.log_level")
        && crate::logging::set_file_level(&plan.running.daemon.log_level)
            == crate::logging::LevelChange::Pinned;
    for (key, when) in &plan.live {
        let name = crate::daemon::reload::display(key);
        if key == "daemon.log_level" && level_pinned {
            not_used.push(format!("{name} (--log-level or RUST_LOG sets the level)"));
            continue;
        }
        applied.push(format!("{name} ({when})"));
    }
    let restart: Vec<String> = plan
        .restart
        .iter()
        .map(|k| crate::daemon::reload::display(k))
        .collect();
    let mut parts = Vec::new();
    if !applied.is_empty() {
        parts.push(format!("applied {}", applied.join(", ")));
    }
    if !not_used.is_empty() {
        parts.push(format!("not used: {}", not_used.join(", ")));
    }
    if !restart.is_empty() {
        parts.push(format!(
            "these changes need a restart and are not in effect: {}",
            restart.join(", ")
        ));
    }
    let summary = if parts.is_empty() {
        format!("configuration reloaded from {}: no changes", path.display())
    } else {
        format!(
            "configuration reloaded from {}: {}",
            path.display(),
            parts.join("; ")
        )
    };
    if restart.is_empty() {
        info!("reload: {summary}");
    } else {
        warn!("reload: {summary}");
    }
    (Some(plan.running), summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::link::LinkInfo;

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
