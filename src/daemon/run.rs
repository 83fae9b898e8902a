//! The loop: wait for the next event of any source, hand it on, until a stop is asked
//! for. Netlink events go on in `route.rs`, control requests in `requests.rs`.

use super::{Daemon, Inputs};
use crate::daemon::control::{Family, Pending, Request};
use crate::daemon::iface::Mail;
use crate::daemon::stop::Stop;
use crate::logging::info;
use crate::net::apply::AddrEvent;
use crate::net::bond::BondManager;
use crate::net::link::LinkEvent;
use futures::StreamExt;
use std::future::Future;

/// What woke the loop.
enum Wake {
    Stop(&'static str),
    Reload,
    Status,
    Renew,
    Link(Option<LinkEvent>),
    Addr(Option<AddrEvent>),
    Control(Option<Pending>),
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

impl Daemon {
    /// Serve events until SIGTERM/SIGINT or `netbond stop`; the caller then stops with
    /// what this returns. An error ends the process (a netlink event stream ended).
    pub(super) async fn serve(&mut self, inputs: &mut Inputs) -> Result<Stop, String> {
        loop {
            let wake = self.next(inputs).await;
            if let Some(stop) = self.on_wake(wake, inputs).await? {
                return Ok(stop);
            }
        }
    }

    /// Wait for the next event.
    async fn next(&mut self, i: &mut Inputs) -> Wake {
        tokio::select! {
            _ = i.sigterm.recv() => Wake::Stop("SIGTERM"),
            _ = i.sigint.recv() => Wake::Stop("SIGINT"),
            _ = i.sighup.recv() => Wake::Reload,
            _ = i.sigusr1.recv() => Wake::Status,
            _ = i.sigusr2.recv() => Wake::Renew,
            ev = i.links.next() => Wake::Link(ev),
            ev = i.addrs.next() => Wake::Addr(ev),
            req = maybe(self.control.as_mut().map(|c| c.recv())) => Wake::Control(req),
            _ = maybe(self.watchdog.as_mut().map(|w| w.tick())) => Wake::Watchdog,
            w = self.wifi.next_connected() => Wake::Wifi(w),
            _ = maybe(self.bond.as_ref().and_then(BondManager::next_retry).map(tokio::time::sleep_until)) => Wake::BondRetry,
        }
    }

    /// Handle one event; `Some` when it asks the daemon to stop.
    async fn on_wake(&mut self, wake: Wake, inputs: &mut Inputs) -> Result<Option<Stop>, String> {
        match wake {
            Wake::Stop(sig) => return Ok(Some(Stop::Signal(sig))),
            Wake::Reload => {
                self.reload();
            }
            Wake::Status => {
                for h in &self.ifaces {
                    h.send(Mail::LogStatus);
                }
            }
            Wake::Renew => {
                // Both families, like `netbond renew` without --v4/--v6: the signal is
                // for "the network changed, check the leases now".
                info!("SIGUSR2: renewing now (DHCPv4 and DHCPv6)");
                for h in &self.ifaces {
                    let (tx, _) = tokio::sync::oneshot::channel();
                    h.send(Mail::Renew(Family::Both, tx));
                }
            }
            Wake::Link(None) => {
                return Err("the netlink link event stream ended; restart netbond".into());
            }
            Wake::Link(Some(first)) => self.on_links(first, &mut inputs.links).await,
            Wake::Addr(None) => {
                return Err("the netlink address event stream ended; restart netbond".into());
            }
            Wake::Addr(Some(ev)) => self.on_addr(ev).await,
            Wake::Watchdog => crate::daemon::notify::notify("WATCHDOG=1"),
            Wake::BondRetry => {
                if let Some(b) = self.bond.as_mut() {
                    b.retry_due().await;
                }
            }
            Wake::Wifi(None) => {}
            Wake::Wifi(Some(port)) => {
                // The port's own interface when it is managed, else the bond it is in.
                let bond_name = self.bond.as_ref().map(|b| b.name().to_string());
                for h in self
                    .ifaces
                    .iter()
                    .filter(|h| h.name == port || Some(&h.name) == bond_name.as_ref())
                {
                    h.send(Mail::ResendNow);
                }
            }
            Wake::Control(None) => self.control = None,
            Wake::Control(Some((Request::Shutdown { release }, reply))) => {
                return Ok(Some(Stop::Control { release, reply }));
            }
            Wake::Control(Some((req, reply))) => self.on_request(req, reply).await,
        }
        Ok(None)
    }

    /// SIGHUP or `netbond reload`: see [`crate::daemon::reload::reload`].
    pub(super) fn reload(&mut self) -> String {
        crate::daemon::reload::reload(
            &mut self.cfg,
            &self.ifaces,
            self.config_path.as_deref(),
            &self.overrides,
        )
    }
}
