//! The DHCPv4 address conflict check (RFC 5227 probes) after a new lease: ARP probes
//! for the address just configured; an answer from another host makes the driver
//! decline it.

use crate::dhcp::shared::Shared;
use crate::logging::{debug, warn};
use crate::net::arp::{Arp, ArpSocket};
use crate::net::hwaddr::{current_mac, fmt_mac, HostMacs};
use netbond_proto::Instant;
use std::io;
use std::net::Ipv4Addr;

/// ARP probes sent for a new address (RFC 5227 PROBE_NUM).
const PROBES: u8 = 3;
/// Between probes (shorter than RFC 5227's 1-2 s: the address is already in use, the
/// probes only look for a conflict).
const PROBE_GAP: std::time::Duration = std::time::Duration::from_millis(300);
/// How long after the first probe answers count.
const PROBE_WINDOW: std::time::Duration = std::time::Duration::from_millis(1200);
/// The first probe waits a random 0..PROBE_WAIT (RFC 5227's PROBE_WAIT). The address
/// is already configured, so the wait delays nothing; it spreads the probes of many
/// interfaces bound at once. That matters when they share a LAN: Linux answers a probe
/// for a local address on every interface of the host, so each probe costs a flood
/// over the LAN and an answer from each sibling, which must not crowd out the other
/// interfaces' first exchanges (measured: 40 % of the loop's time at N = 256).
const PROBE_WAIT_MS: u64 = 1000;
/// While other interfaces of this process are still in their first exchange (the start
/// window is busy), the first probe is put off in steps of this, for at most
/// PROBE_DEFER_MAX: the conflict check is background work and the measured cost of its
/// floods and answers (40 % of the loop at N = 256) otherwise delays their leases.
const PROBE_DEFER: std::time::Duration = std::time::Duration::from_millis(100);
const PROBE_DEFER_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// A conflict check in progress for a newly bound address.
pub struct Probe {
    sock: ArpSocket,
    addr: Ipv4Addr,
    sent: u8,
    next: Option<Instant>,
    until: Instant,
    /// The first probe waits no longer than this for other interfaces' first exchanges.
    defer_until: Instant,
}

impl Probe {
    /// A check for `addr`, when conflict detection is on and the ARP socket opens.
    pub fn start(sh: &Shared, addr: Ipv4Addr) -> Option<Probe> {
        if !sh.cfg.dhcp4.conflict_detection {
            return None;
        }
        let index = sh.ifindex?;
        match ArpSocket::open(index, addr) {
            Ok(sock) => {
                let first = sh.clock.now()
                    + std::time::Duration::from_millis(rand::random_range(0..PROBE_WAIT_MS));
                Some(Probe {
                    sock,
                    addr,
                    sent: 0,
                    next: Some(first),
                    until: first + PROBE_WINDOW,
                    defer_until: first + PROBE_DEFER_MAX,
                })
            }
            Err(e) => {
                debug!("dhcp4: {}: no conflict check: {e}", sh.ifname);
                None
            }
        }
    }

    /// The ARP socket to wait on.
    pub fn socket(&self) -> &ArpSocket {
        &self.sock
    }

    /// The next probe step.
    pub fn deadline(&self) -> Instant {
        self.next.unwrap_or(self.until).min(self.until)
    }

    /// Send the probe that is due; false when the check is over (no conflict).
    /// `mac` is the interface's MAC as the driver knows it (the probe's sender).
    pub fn run(&mut self, sh: &Shared, now: Instant, mac: Option<[u8; 6]>) -> bool {
        if now >= self.until {
            debug!("dhcp4: {}: no conflict for {}", sh.ifname, self.addr);
            return false;
        }
        if self.next.is_some_and(|t| now >= t) {
            let others_starting = sh.pacer.as_ref().is_some_and(|x| x.busy());
            if self.sent == 0 && others_starting && now < self.defer_until {
                self.next = Some(now + PROBE_DEFER);
                self.until = now + PROBE_DEFER + PROBE_WINDOW;
                return true;
            }
            // The MAC netlink reported; read only if none was (a link without one).
            if let Some(mac) = mac.or_else(|| current_mac(&sh.ifname).ok()) {
                if let Err(e) = self.sock.send(Arp::probe(mac, self.addr)) {
                    debug!("dhcp4: {}: ARP probe: {e}", sh.ifname);
                }
            }
            self.sent += 1;
            self.next = (self.sent < PROBES).then(|| now + PROBE_GAP);
        }
        true
    }

    /// An ARP packet (or an error) during the check: the address to decline when
    /// another host uses it, and whether the check goes on.
    pub fn on_arp(
        &self,
        ifname: &str,
        host: &HostMacs,
        rx: io::Result<Arp>,
    ) -> (Option<Ipv4Addr>, bool) {
        match rx {
            Ok(arp) => {
                // Another interface of this host answering for our address (Linux's
                // weak-host ARP) is not a conflict. On a LAN shared by many of this
                // host's interfaces every probe draws such an answer from each of
                // them: rule those out with the table first, and read our own MAC (a
                // socket and an ioctl) only for a packet that still looks like one.
                if arp.conflicts(self.addr, &[])
                    && !host.contains(&arp.sha)
                    && arp.conflicts(
                        self.addr,
                        &current_mac(ifname).ok().into_iter().collect::<Vec<_>>(),
                    )
                {
                    warn!(
                        "dhcp4: {ifname}: address conflict: {} is in use by {}; declining it",
                        self.addr,
                        fmt_mac(&arp.sha)
                    );
                    let (a, m) = (self.addr.to_string(), fmt_mac(&arp.sha));
                    crate::daemon::events::emit(
                        "dhcp4-conflict",
                        Some(ifname),
                        serde_json::json!({"address": a, "mac": m}),
                    );
                    return (Some(self.addr), false);
                }
                (None, true)
            }
            Err(e) => {
                debug!("dhcp4: {ifname}: ARP socket: {e}; conflict check abandoned");
                (None, false)
            }
        }
    }
}
