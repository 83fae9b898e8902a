//! The one stop, for SIGTERM/SIGINT and `netbond stop [--release]` alike: what it
//! does to the network (`on_stop`, `--release`), then every interface, the writer
//! threads, the supplicants and the bond, in that order.

use super::Daemon;
use crate::config::Config;
use crate::daemon::control::Response;
use crate::logging::{info, warn};
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::DnsWriter;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why the loop ended.
pub(super) enum Stop {
    /// SIGTERM or SIGINT: `[daemon] on_stop` says what happens to the network.
    Signal(&'static str),
    /// `netbond stop [--release]`: answered once the stop is done.
    Control {
        release: bool,
        reply: oneshot::Sender<Response>,
    },
}

impl Stop {
    /// What this stop does to the network; logs it.
    fn how(&self, cfg: &Config) -> StopHow {
        match self {
            Stop::Signal(sig) if cfg.daemon.on_stop == "release" => {
                info!("{sig}: stopping (on_stop = \"release\": releasing the leases and removing the configuration)");
                StopHow {
                    release: cfg.daemon.release_on_stop,
                    deconfigure: cfg.daemon.deconfigure_on_stop,
                    delete_bond: true,
                }
            }
            Stop::Signal(sig) => {
                info!("{sig}: stopping; the network stays as it is (on_stop = \"keep\"): the next start confirms the saved leases");
                StopHow::KEEP
            }
            Stop::Control { release: true, .. } => {
                info!("netbond stop --release: releasing the leases, removing the configuration, stopping");
                StopHow {
                    release: true,
                    deconfigure: true,
                    delete_bond: true,
                }
            }
            Stop::Control { release: false, .. } => {
                info!("netbond stop: stopping; the network stays as it is");
                StopHow::KEEP
            }
        }
    }
}

/// What a stop does to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StopHow {
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

impl Daemon {
    /// Stop every interface, the supplicants and (when so told) the bond, then tell
    /// whoever asked for the stop.
    pub(super) async fn stop(mut self, stop: Stop) {
        let how = stop.how(&self.cfg);
        // Requests still queued are answered "netbond is stopping".
        drop(self.control.take());
        crate::daemon::notify::notify("STOPPING=1");
        // `wait-online` callers get their answer now.
        self.online.set_stopping();
        futures::future::join_all(
            self.ifaces
                .iter_mut()
                .map(|h| h.shutdown(how.release, how.deconfigure)),
        )
        .await;
        // What the interfaces queued (last saves, resolv.conf put back) is done before the
        // process ends.
        flush_writers(&self.leases, &self.dns).await;
        let _ = std::fs::remove_file(crate::daemon::control::socket_path(
            &self.cfg.daemon.run_dir,
        ));
        // Supplicants stop after the leases were released (the classic units were ordered
        // the same way), before the bond goes.
        self.wifi.shutdown().await;
        if let Some(b) = self.bond.as_mut() {
            if how.delete_bond {
                b.teardown().await;
            } else {
                info!("{}: left in place for the next start", b.name());
            }
        }
        match stop {
            Stop::Signal(sig) => {
                crate::daemon::control::drain(Duration::from_millis(500)).await;
                info!("stopped");
                crate::daemon::events::stopped(sig, &self.cfg).await;
            }
            Stop::Control { release, reply } => {
                let _ = reply.send(Response::done(if release {
                    "released, deconfigured and stopped"
                } else {
                    "stopped; the network was left as it is"
                }));
                crate::daemon::control::drain(Duration::from_secs(1)).await;
                info!("stopped");
                // Monitors and hooks see the same last event whichever way the stop came.
                crate::daemon::events::stopped("netbond stop", &self.cfg).await;
            }
        }
    }
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
