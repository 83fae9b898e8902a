//! Control requests the loop answers (all but `stop`, which ends it): reload, status,
//! renew, release, start, Wi-Fi commands, and `wait-online`, answered from a task of
//! its own.

use super::{abbreviate, Daemon};
use crate::daemon::control::{Request, Response};
use crate::daemon::iface::{IfaceHandle, Mail};
use crate::state::lease_writer::LeaseWriter;
use crate::state::resolv::DnsWriter;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

impl Daemon {
    /// Answer one control request.
    pub(super) async fn on_request(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        let ifaces = &self.ifaces;
        let resp = match req {
            Request::WaitOnline {
                policy,
                iface,
                family,
                timeout_ms,
            } => {
                let q = crate::daemon::online::Query {
                    policy: policy.unwrap_or_else(|| {
                        crate::daemon::online::Policy::from_config(&self.cfg.daemon.online)
                    }),
                    iface,
                    family,
                };
                self.wait_online(q, timeout_ms, reply);
                return;
            }
            Request::Reload => Response::done(self.reload()),
            Request::Status { iface } => self.status(iface).await,
            Request::Renew { family, iface } => {
                ask_each(ifaces, iface.as_deref(), "renewing", |tx| {
                    Mail::Renew(family, tx)
                })
                .await
            }
            Request::Release { family, iface } | Request::Stop { family, iface } => {
                ask_each(ifaces, iface.as_deref(), "released and stopped", |tx| {
                    Mail::Stop(family, tx)
                })
                .await
            }
            Request::Start { family, iface } => {
                ask_each(ifaces, iface.as_deref(), "started", |tx| {
                    Mail::Start(family, tx)
                })
                .await
            }
            Request::Monitor { .. } => Response::fail("served by the control socket"),
            Request::Wifi { iface, action } => match self.wifi.command(&iface, action).await {
                Ok(m) => Response::done(m),
                Err(e) => Response::fail(e),
            },
            Request::Shutdown { .. } => unreachable!("the loop stops for it"),
        };
        let _ = reply.send(resp);
    }

    /// `wait-online`: answered at once when the query is bad or too many wait,
    /// otherwise from its own task, so the loop goes on meanwhile.
    fn wait_online(
        &self,
        q: crate::daemon::online::Query,
        timeout_ms: u64,
        reply: oneshot::Sender<Response>,
    ) {
        let online_rx = self.online.subscribe();
        match q.check(&self.online.snapshot()) {
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

    /// `netbond status`: every chosen interface's status, the bond, Wi-Fi, online
    /// and the writer threads' figures.
    async fn status(&self, iface: Option<String>) -> Response {
        let (ifaces, online, bond, cfg) = (&self.ifaces, &self.online, &self.bond, &self.cfg);
        match select(ifaces, iface.as_deref()) {
            Err(e) => Response::fail(e),
            Ok(chosen) => {
                let mut all = Vec::with_capacity(chosen.len());
                let snap = online.snapshot();
                for h in chosen {
                    if let Some(st) = h.ask(Mail::Status).await {
                        let on = snap
                            .ifaces
                            .iter()
                            .any(|i| i.name == h.name && i.online(None));
                        all.push((st, on));
                    }
                }
                let bond_status = match bond.as_ref() {
                    Some(b) => Some(b.status_json().await),
                    None => None,
                };
                let q = crate::daemon::online::Query {
                    policy: crate::daemon::online::Policy::from_config(&cfg.daemon.online),
                    iface: iface.clone(),
                    family: None,
                };
                let mut r = Response::done("status");
                let st = crate::daemon::status_json::status(
                    all,
                    bond_status,
                    self.wifi.status_json(),
                    q.is_online(&snap),
                    writer_stats(&self.leases, &self.dns, self.pacer.as_deref()),
                );
                r.status = Some(st);
                r
            }
        }
    }
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

/// `stats` of `netbond status --json`: what the writer threads did, and how many
/// durable writes ran on the event loop (`saves_on_loop`, always 0 unless something
/// regressed).
fn writer_stats(
    leases: &LeaseWriter,
    dns: &DnsWriter,
    pacer: Option<&crate::dhcp::pace::Pacer>,
) -> crate::daemon::status_json::StatsStatus {
    crate::daemon::status_json::stats(
        crate::state::atomic::writes_on_loop(),
        leases.stats(),
        dns.stats(),
        pacer.map(|p| p.stats()),
    )
}
