//! The IPv4 link-local driver (RFC 3927): runs `netbond_proto::ipv4ll` on an ARP
//! socket of the interface and carries out what it decides (send ARP, add or remove
//! the 169.254 address). Started and stopped by `fallback.rs` (no lease for
//! `[dhcp4] link_local_after` seconds; a lease bound).
//!
//! The address goes on the interface as a /16 with link scope, so the kernel's prefix
//! route 169.254.0.0/16 reaches the link's other link-local hosts, and no default route:
//! RFC 3927 2.6.2 forbids handing a packet with a link-local source to a router, and an
//! on-link default route would make this host ARP for every address on the Internet.

use crate::daemon::events::emit;
use crate::dhcp::shared::Shared;
use crate::logging::{debug, info, warn};
use crate::net::arp::{Arp, ArpSocket};
use crate::net::hwaddr::{current_mac, fmt_mac, HostMacs};
use netbond_proto::ipv4ll::{Action, DropReason, Ipv4Ll};
use netbond_proto::Instant;
use serde_json::{json, Value};
use std::io;
use std::net::Ipv4Addr;

/// The prefix length RFC 3927 2.1 gives a link-local address.
const PREFIX: u8 = 16;

/// One interface's link-local address in progress or held.
pub struct LinkLocal {
    engine: Ipv4Ll,
    /// The ARP socket, filtered to the current candidate (reopened when it changes).
    sock: Option<(Ipv4Addr, ArpSocket)>,
    /// The address on the interface now.
    configured: Option<Ipv4Addr>,
}

impl LinkLocal {
    /// Start probing (the interface must exist: its MAC seeds the address).
    pub fn start(sh: &Shared, now: Instant) -> Option<LinkLocal> {
        let mac = current_mac(&sh.ifname).ok()?;
        let engine = Ipv4Ll::new(mac, rand::random(), now);
        info!(
            "ipv4ll: {}: no DHCPv4 lease; probing for link-local address {}",
            sh.ifname,
            engine.address()
        );
        Some(LinkLocal {
            engine,
            sock: None,
            configured: None,
        })
    }

    /// The socket to wait on.
    pub fn socket(&self) -> Option<&ArpSocket> {
        self.sock.as_ref().map(|s| &s.1)
    }

    /// The next timer.
    pub fn deadline(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// An ARP packet about the candidate (or a socket error).
    pub fn on_arp(&mut self, now: Instant, ifname: &str, host: &HostMacs, rx: io::Result<Arp>) {
        match rx {
            // Another interface of this host answering for the address (Linux answers
            // ARP for any local address on every interface) is not another host.
            Ok(arp) if host.contains(&arp.sha) => {}
            Ok(arp) => self.engine.handle_arp(now, &arp),
            Err(e) => {
                debug!("ipv4ll: {ifname}: ARP socket: {e}; reopening it");
                self.sock = None;
            }
        }
    }

    /// Run timers and carry out what the engine decided.
    pub async fn pump(&mut self, sh: &Shared, now: Instant) {
        self.follow_candidate(sh);
        self.engine.handle_timeout(now);
        self.run_actions(sh).await;
        self.follow_candidate(sh);
    }

    /// Keep the ARP socket filtered to the address being probed for or held.
    fn follow_candidate(&mut self, sh: &Shared) {
        let want = self.engine.address();
        if self.sock.as_ref().is_some_and(|s| s.0 == want) || self.engine.state_name() == "stopped"
        {
            return;
        }
        self.sock = None;
        if let Some(index) = sh.ifindex {
            match ArpSocket::open(index, want) {
                Ok(s) => self.sock = Some((want, s)),
                Err(e) => warn!("ipv4ll: {}: {e}", sh.ifname),
            }
        }
    }

    /// Stop; the address (if held) is removed and `why` told in the event.
    pub async fn stop(&mut self, sh: &Shared, why: &str) {
        self.engine.stop();
        self.sock = None;
        while let Some(a) = self.engine.poll_action() {
            if let Action::Unconfigure(addr, _) = a {
                self.unconfigure(sh, addr, why).await;
            }
        }
    }

    async fn run_actions(&mut self, sh: &Shared) {
        while let Some(a) = self.engine.poll_action() {
            match a {
                Action::Send(arp) => {
                    let sent = match &self.sock {
                        Some((_, s)) => s.send(arp),
                        None => Err(io::Error::other("no ARP socket")),
                    };
                    if let Err(e) = sent {
                        debug!("ipv4ll: {}: could not send ARP: {e}", sh.ifname);
                    }
                }
                Action::Configure(addr) => self.configure(sh, addr).await,
                Action::Unconfigure(addr, DropReason::Conflict) => {
                    self.unconfigure(sh, addr, "conflict").await
                }
                Action::Unconfigure(addr, DropReason::Stopped) => {
                    self.unconfigure(sh, addr, "stopped").await
                }
                Action::Conflict { address, mac } => {
                    warn!(
                        "ipv4ll: {}: {address} is in use by {}; trying {}",
                        sh.ifname,
                        fmt_mac(&mac),
                        self.engine.address()
                    );
                    emit(
                        "ipv4ll-conflict",
                        Some(&sh.ifname),
                        json!({"address": address.to_string(), "mac": fmt_mac(&mac),
                               "next": self.engine.address().to_string()}),
                    );
                }
            }
        }
    }

    async fn configure(&mut self, sh: &Shared, addr: Ipv4Addr) {
        let Some(index) = sh.ifindex else { return };
        // Link scope: never picked as the source for a routed destination.
        let brd = Ipv4Addr::from(u32::from(addr) | (u32::MAX >> PREFIX));
        let scope = crate::net::netlink::attr::RT_SCOPE_LINK;
        let added =
            crate::net::apply::replace_addr4(&sh.handle, index, (addr, PREFIX), brd, scope, None);
        if let Err(e) = added.await {
            warn!("ipv4ll: {}: could not add {addr}/{PREFIX}: {e}", sh.ifname);
            return;
        }
        info!("ipv4ll: {}: using link-local {addr}/{PREFIX}", sh.ifname);
        self.configured = Some(addr);
        emit(
            "ipv4ll-configured",
            Some(&sh.ifname),
            json!({"address": addr.to_string(), "prefix_len": PREFIX}),
        );
    }

    async fn unconfigure(&mut self, sh: &Shared, addr: Ipv4Addr, why: &str) {
        if let Some(a) = &sh.applier {
            if let Err(e) = a.del_addr4(addr, PREFIX).await {
                warn!("ipv4ll: {}: {e}", sh.ifname);
            }
        }
        info!("ipv4ll: {}: dropped {addr}/{PREFIX} ({why})", sh.ifname);
        self.configured = None;
        emit(
            "ipv4ll-dropped",
            Some(&sh.ifname),
            json!({"address": addr.to_string(), "prefix_len": PREFIX, "reason": why}),
        );
    }

    /// For `netbond status`.
    pub fn status_json(&self) -> Value {
        json!({
            "state": self.engine.state_name(),
            "address": self.engine.address().to_string(),
            "configured": self.configured.is_some(),
            "conflicts": self.engine.conflicts(),
        })
    }
}
