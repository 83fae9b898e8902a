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
#[cfg(feature = "hooks")]
pub mod hooks;
#[cfg(not(feature = "hooks"))]
pub use crate::features::hooks;
pub mod iface;
pub mod notify;
pub mod online;
pub mod privs;
pub mod reload;
pub mod status_json;

mod requests;
mod route;
mod run;
mod start;
mod stop;

use crate::config::Config;
use crate::daemon::control::Pending;
use crate::daemon::iface::IfaceHandle;
use crate::net::apply::AddrEvent;
use crate::net::bond::BondManager;
use crate::net::hwaddr::HostMacs;
use crate::net::link::LinkEvent;
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::DnsWriter;
use futures::stream::BoxStream;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;

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

/// Run until SIGTERM/SIGINT or `netbond stop`. Errors are setup failures (or a netlink
/// event stream that ended), already phrased for the user.
///
/// Three phases, one file each: `start.rs` opens everything and spawns the interfaces'
/// tasks, `run.rs` is the loop (with `route.rs` for netlink events and `requests.rs`
/// for control requests), `stop.rs` is the one stop for a signal and `netbond stop`.
pub async fn run(opts: RunOptions) -> Result<(), String> {
    let (mut daemon, mut inputs) = Daemon::start(opts).await?;
    let stop = daemon.serve(&mut inputs).await?;
    daemon.stop(stop).await;
    Ok(())
}

/// What the loop owns between start and stop (the interfaces' own state is in their
/// tasks, reached through their handles).
struct Daemon {
    /// The running configuration; a reload replaces it.
    cfg: Arc<Config>,
    /// The configuration file, for SIGHUP reloads.
    config_path: Option<PathBuf>,
    /// Re-applied after each reload.
    overrides: Overrides,
    /// rtnetlink, for listing links and addresses again after lost events.
    handle: crate::net::netlink::Handle,
    /// One handle per managed interface, in the order given.
    ifaces: Vec<IfaceHandle>,
    /// Whether each interface is online: READY=1, `wait-online` and status read it.
    online: crate::daemon::online::Board,
    /// The MAC of every host interface, by index (the conflict check reads it).
    host_macs: Arc<HostMacs>,
    /// The SLAAC addresses of the managed interfaces.
    slaac: route::Slaac,
    bond: Option<BondManager>,
    wifi: crate::wifi::WifiManager,
    /// `None` once closed (at a stop, or if the listener ended).
    control: Option<mpsc::Receiver<Pending>>,
    /// Only when systemd asked for a watchdog does netbond wake up periodically.
    watchdog: Option<tokio::time::Interval>,
    /// The writer threads for lease files and DNS (a stop waits for them).
    leases: LeaseWriter,
    dns: DnsWriter,
    /// The start window for many interfaces (status reports it).
    pacer: Option<Arc<crate::dhcp::pace::Pacer>>,
}

/// The event sources only the loop reads.
struct Inputs {
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
    sigusr1: Signal,
    sigusr2: Signal,
    links: BoxStream<'static, LinkEvent>,
    addrs: BoxStream<'static, AddrEvent>,
}

/// "a, b, c" for a few names, "a, b, c, ... (N)" for many (log lines stay short).
fn abbreviate(names: &[String]) -> String {
    if names.len() <= 4 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..3].join(", "), names.len())
    }
}
