//! The daemon's start: the state directory and identity, the netlink subscriptions and
//! signals, the bond and the supplicants, the control socket, every interface's task,
//! and the privilege drop once the sockets are open.

use super::{abbreviate, Daemon, Inputs, RunOptions};
use crate::config::Config;
use crate::daemon::clock::Clock;
use crate::daemon::iface::{Iface, IfaceHandle, StatusBoard};
use crate::dhcp::pace::Pacer;
use crate::dhcp::shared::{Dns4, Dns6, Shared};
use crate::logging::{debug, info, warn};
use crate::net::apply::addr_events;
use crate::net::bond::BondManager;
use crate::net::hwaddr::HostMacs;
use crate::net::link::{self, LinkInfo};
use crate::state::identity;
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::{DnsSink, DnsTarget, DnsWriter};
use crate::state::store::Store;
use netbond_proto::duid::Duid;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

impl Daemon {
    /// Open everything and spawn the interfaces' tasks. Errors are setup failures,
    /// already phrased for the user.
    pub(super) async fn start(opts: RunOptions) -> Result<(Daemon, Inputs), String> {
        let RunOptions {
            ifnames,
            config_path,
            cfg,
            overrides,
        } = opts;
        let clock = Clock::new();
        // From here on a durable write on this thread is counted (status `saves_on_loop`).
        crate::state::atomic::mark_loop_thread();
        let store = Store::open(&cfg.daemon.state_dir).map_err(|e| {
            format!(
                "cannot use the state directory {}: {e} (set --state-dir to a writable directory)",
                cfg.daemon.state_dir.display()
            )
        })?;
        let duid = identity::load_or_create_duid(&cfg, &store);
        log_identity(&cfg, &ifnames, &duid);

        // Subscribe before the first lookup so no change in between is missed.
        let (inputs, handle) = Inputs::subscribe()?;

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

        let control = open_control(&cfg)?;

        // Only when systemd asked for a watchdog does netbond wake up periodically.
        let watchdog = crate::daemon::notify::watchdog_interval().map(tokio::time::interval);
        // STATUS= lines are only worth building when systemd listens.
        let board = std::env::var_os("NOTIFY_SOCKET")
            .is_some()
            .then(|| StatusBoard::new(&ifnames));

        // Whether each interface is online: READY=1, `wait-online` and status read it.
        let online = crate::daemon::online::Board::new(&ifnames);

        let host_macs = Arc::new(HostMacs::default());
        for l in &links {
            host_macs.set(l.index, l.mac);
        }
        // Every interface's drivers, attached (sockets open) before privileges go.
        let cfg = Arc::new(cfg);
        // Disk writes and resolvectl runs leave the loop: one writer thread each.
        let leases = LeaseWriter::new(store.clone());
        let dns = DnsWriter::new();
        let pacer = (ifnames.len() > 1).then(Pacer::new);
        let common = Common {
            cfg: &cfg,
            ifnames: &ifnames,
            clock,
            store: &store,
            handle: &handle,
            leases: &leases,
            dns: &dns,
            pacer: &pacer,
            host_macs: &host_macs,
            duid: &duid,
            board: &board,
            online: &online,
            links: &links,
        };
        let pending: Vec<Iface> = (0..ifnames.len()).map(|s| common.iface(s)).collect();
        drop(links);

        if cfg.daemon.drop_privileges {
            drop_privileges(&cfg)?;
        }
        crate::daemon::events::start(&cfg);
        let ifaces: Vec<IfaceHandle> = pending.into_iter().map(Iface::spawn).collect();
        let mut slaac = super::route::Slaac::default();
        slaac.reread(&handle, &ifaces, &online).await;
        start_readiness(&cfg, &online, &ifnames);
        crate::daemon::events::started(&ifnames);
        let daemon = Daemon {
            cfg,
            config_path,
            overrides,
            handle,
            ifaces,
            online,
            host_macs,
            slaac,
            bond,
            wifi,
            control: Some(control),
            watchdog,
            leases,
            dns,
            pacer,
        };
        Ok((daemon, inputs))
    }
}

impl Inputs {
    /// The netlink link and address event streams and the signals; also the rtnetlink
    /// handle for requests.
    fn subscribe() -> Result<(Inputs, crate::net::netlink::Handle), String> {
        let links = link::link_events()
            .map_err(|e| format!("cannot listen to netlink link events: {e}"))?;
        let addrs =
            addr_events().map_err(|e| format!("cannot listen to netlink address events: {e}"))?;
        let handle = link::connect().map_err(|e| format!("cannot open netlink: {e}"))?;
        let sig = |kind| signal(kind).map_err(|e| e.to_string());
        let inputs = Inputs {
            sigterm: sig(SignalKind::terminate())?,
            sigint: sig(SignalKind::interrupt())?,
            sighup: sig(SignalKind::hangup())?,
            sigusr1: sig(SignalKind::user_defined1())?,
            sigusr2: sig(SignalKind::user_defined2())?,
            links,
            addrs,
        };
        Ok((inputs, handle))
    }
}

/// The first log line: version, DUID, and the IAID for one interface.
fn log_identity(cfg: &Config, ifnames: &[String], duid: &Duid) {
    match ifnames {
        [one] => info!(
            "netbond {} on {one}: DUID {duid}, IAID {}",
            env!("CARGO_PKG_VERSION"),
            identity::iaid(cfg, one)
        ),
        many => info!(
            "netbond {} on {} interfaces ({}): DUID {duid}",
            env!("CARGO_PKG_VERSION"),
            many.len(),
            abbreviate(many)
        ),
    }
}

/// The control socket, owned by `[control] group` when set.
fn open_control(cfg: &Config) -> Result<mpsc::Receiver<crate::daemon::control::Pending>, String> {
    let group = match cfg.control.group.as_deref() {
        Some(g) => Some(crate::daemon::privs::gid_of(g).ok_or_else(|| {
            format!("[control] group {g:?} does not exist; create it or remove the setting")
        })?),
        None => None,
    };
    crate::daemon::control::listen(&cfg.daemon.run_dir, group).map_err(|e| {
        format!(
            "cannot open the control socket in {}: {e}",
            cfg.daemon.run_dir.display()
        )
    })
}

/// What every interface's task is built from.
struct Common<'a> {
    cfg: &'a Arc<Config>,
    ifnames: &'a [String],
    clock: Clock,
    store: &'a Store,
    handle: &'a crate::net::netlink::Handle,
    leases: &'a LeaseWriter,
    dns: &'a DnsWriter,
    pacer: &'a Option<Arc<Pacer>>,
    host_macs: &'a Arc<HostMacs>,
    duid: &'a Duid,
    board: &'a Option<Arc<StatusBoard>>,
    online: &'a crate::daemon::online::Board,
    links: &'a [LinkInfo],
}

impl Common<'_> {
    /// The interface in `slot` (its order on the command line or in the file), attached
    /// to its link when that exists.
    fn iface(&self, slot: usize) -> Iface {
        let (cfg, ifnames, store) = (self.cfg, self.ifnames, self.store);
        let name = &ifnames[slot];
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
        let resolv = target.map(|t| DnsSink::new(t, self.dns.clone()));
        let sh = Shared {
            ifname: name.clone(),
            ifindex: None,
            handle: self.handle.clone(),
            applier: None,
            store: store.clone(),
            leases: self.leases.clone(),
            clock: self.clock,
            cfg: cfg.clone(),
            route_metric: cfg
                .dhcp4
                .route_metric
                .saturating_add(u32::try_from(slot).unwrap_or(u32::MAX)),
            host_macs: self.host_macs.clone(),
            dns4: Dns4::default(),
            dns6: Dns6::default(),
            resolv,
            pacer: self.pacer.clone(),
        };
        let iaid = identity::iaid(cfg, name);
        if ifnames.len() > 1 {
            debug!("{name}: IAID {iaid}");
        }
        let mut iface = Iface::new(sh, self.duid.clone(), iaid, slot, self.board.clone());
        iface.report_online(self.online.clone());
        match self.links.iter().find(|l| l.name == *name) {
            Some(info) => iface.attach(info),
            None => info!("{name} does not exist yet; waiting for it to appear"),
        }
        iface
    }
}

/// Give the directories to `[daemon] user` and drop to the kept capabilities.
fn drop_privileges(cfg: &Config) -> Result<(), String> {
    let user = cfg.daemon.user.clone();
    if let Some(name) = &user {
        crate::daemon::privs::hand_dirs_to(cfg, name);
    }
    crate::daemon::privs::drop_privileges(user.as_deref())?;
    debug!(
        "privileges dropped; effective capabilities {:#x}",
        crate::daemon::privs::effective_caps().unwrap_or(0)
    );
    Ok(())
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
