//! Building the DHCPv4 engine's packets: the message of the exchange in progress when
//! it is due, and the one-shot DECLINE and RELEASE.

use super::timers::{schedule_backoff, schedule_half_remaining};
use super::wire::{self, opt, Builder};
use super::{Client, Lease4, MessageType, OneShot, Phase, Transmit4, MAX_REQUEST_ATTEMPTS};
use crate::time::Instant;
use core::time::Duration;
use std::net::Ipv4Addr;

/// What the exchange in progress sends now (its xid and the fields that vary by state).
struct Due {
    kind: MessageType,
    xid: u32,
    secs: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
}

impl Client {
    /// See [`crate::Engine::poll_transmit`]. The packet is built right now, its chaddr
    /// the MAC of the last `hw_address_changed`; before the first one nothing is sent.
    pub(super) fn transmit(&mut self, now: Instant) -> Option<Transmit4> {
        let Some(mac) = self.mac else {
            // No chaddr to build with yet; timers (expiry) still run.
            self.run_timers(now);
            return None;
        };
        if let Some(shot) = self.oneshot.pop_front() {
            return Some(self.build_oneshot(shot, mac));
        }
        self.run_timers(now);
        if !self.link_up {
            return None;
        }
        self.take_fallback(now);
        let due = self.due(now, mac)?;
        Some(self.build(due, mac))
    }

    /// The message of the current exchange if it is due at `now`, with the exchange's
    /// retransmission scheduled and its chaddr recorded.
    fn due(&mut self, now: Instant, mac: [u8; 6]) -> Option<Due> {
        let lease_addr = self.lease.as_ref().map(|l| l.address);
        let lease_server = self.lease.as_ref().map(|l| l.server);
        let rebind_at = self.lease.as_ref().and_then(Lease4::rebind_at);
        let expires_at = self.lease.as_ref().and_then(Lease4::expires_at);
        let (initial, max) = (self.config.initial_interval, self.config.max_interval);
        let jitter = self.rng.range_i64(-1000, 1000);
        let (none, bcast) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
        let (kind, ex, src, dst, ciaddr, requested, server_id) = match &mut self.phase {
            Phase::Selecting(ex) if now >= ex.next_tx => {
                schedule_backoff(ex, now, initial, max, jitter);
                let kind = MessageType::Discover;
                (kind, ex, none, bcast, none, lease_addr, None)
            }
            Phase::Requesting(ex, offer) if now >= ex.next_tx => {
                if ex.attempts >= MAX_REQUEST_ATTEMPTS {
                    let server = offer.server;
                    let why = "no valid ACK to the REQUESTs";
                    self.fail(now, Some(server), why, Duration::ZERO);
                    return self.due(now, mac);
                }
                let o = *offer;
                schedule_backoff(ex, now, initial, max, jitter);
                let kind = MessageType::Request;
                (kind, ex, none, bcast, none, Some(o.address), Some(o.server))
            }
            Phase::Rebooting(ex) | Phase::Reconfirming(ex) if now >= ex.next_tx => {
                schedule_backoff(ex, now, initial, max, jitter);
                let kind = MessageType::Request;
                (kind, ex, none, bcast, none, lease_addr, None)
            }
            Phase::Renewing(ex) if now >= ex.next_tx => {
                let addr = lease_addr?;
                schedule_half_remaining(ex, now, rebind_at);
                let kind = MessageType::Request;
                (kind, ex, addr, lease_server?, addr, None, None)
            }
            Phase::Rebinding(ex) if now >= ex.next_tx => {
                let addr = lease_addr?;
                schedule_half_remaining(ex, now, expires_at);
                let kind = MessageType::Request;
                (kind, ex, addr, bcast, addr, None, None)
            }
            _ => return None,
        };
        if ex.chaddr.is_some_and(|c| c != mac) {
            // A MAC change mid-acquisition (see `set_mac`): a fresh xid, so replies to
            // the old chaddr no longer match.
            ex.xid = self.rng.next_u32();
        }
        ex.chaddr = Some(mac);
        ex.last_tx = Some(now);
        ex.attempts += 1;
        let secs = u16::try_from((now - ex.started).as_secs()).unwrap_or(u16::MAX);
        Some(Due {
            kind,
            xid: ex.xid,
            secs,
            src,
            dst,
            ciaddr,
            requested,
            server_id,
        })
    }

    /// The DISCOVER or REQUEST for `due`, with the configured options.
    fn build(&self, due: Due, mac: [u8; 6]) -> Transmit4 {
        let mut b = Builder::request(due.xid, due.secs, due.ciaddr, mac);
        if self.config.broadcast_flag && due.ciaddr.is_unspecified() {
            b.broadcast_flag();
        }
        b.option(opt::MESSAGE_TYPE, &[due.kind.code()]);
        b.option(opt::CLIENT_ID, &self.client_id);
        if let Some(ip) = due.requested {
            b.option_ip(opt::REQUESTED_IP, ip);
        }
        if let Some(ip) = due.server_id {
            b.option_ip(opt::SERVER_ID, ip);
        }
        b.option(opt::MAX_MESSAGE_SIZE, &1500u16.to_be_bytes());
        let mut prl = vec![
            opt::SUBNET_MASK,
            opt::ROUTER,
            opt::DNS,
            opt::HOSTNAME,
            opt::DOMAIN,
            opt::MTU,
            opt::BROADCAST,
            opt::NTP,
            opt::LEASE_TIME,
            opt::SERVER_ID,
            opt::RENEWAL_TIME,
            opt::REBINDING_TIME,
            opt::DOMAIN_SEARCH,
            opt::CLASSLESS_ROUTES,
            opt::STATIC_ROUTES,
        ];
        if self.config.ipv6_only_preferred {
            prl.push(opt::V6ONLY_PREFERRED);
        }
        for c in &self.config.extra_request {
            if !prl.contains(c) {
                prl.push(*c);
            }
        }
        b.option(opt::PARAM_REQUEST, &prl);
        if let Some(f) = &self.config.fqdn {
            // Flags S (0x01) and E (0x04); RCODE1/RCODE2 0 (deprecated, RFC 4702 2.2).
            let mut v = vec![0x05, 0, 0];
            v.extend_from_slice(&wire::dns_name_wire(f, true));
            b.option(opt::CLIENT_FQDN, &v);
        } else if let Some(h) = &self.config.hostname {
            b.option(opt::HOSTNAME, h.as_bytes());
        }
        if let Some(v) = &self.config.vendor_class {
            b.option(opt::VENDOR_CLASS, v);
        }
        if let Some(u) = self.config.user_class.as_ref().filter(|u| !u.is_empty()) {
            let n = u.len().min(255);
            let mut v = vec![n as u8];
            v.extend_from_slice(&u[..n]);
            b.option(opt::USER_CLASS, &v);
        }
        for (code, data) in &self.config.extra_options {
            b.option(*code, data);
        }
        if self.config.rapid_commit && due.kind == MessageType::Discover {
            b.option(opt::RAPID_COMMIT, &[]);
        }
        Transmit4 {
            payload: b.finish(),
            src: due.src,
            dst: due.dst,
            chaddr: mac,
            kind: due.kind,
        }
    }

    /// SELECTING is about to retransmit the DISCOVER and only an avoided server
    /// answered: request its offer after all (it may be the only server there is).
    fn take_fallback(&mut self, now: Instant) {
        let Phase::Selecting(ex) = &self.phase else {
            return;
        };
        if now < ex.next_tx || ex.last_tx.is_none() {
            return;
        }
        let (xid, started) = (ex.xid, ex.started);
        match self.fallback.take() {
            Some((x, offer)) if x == xid => {
                let mut ex = self.new_exchange(now);
                ex.xid = xid;
                ex.started = started;
                self.phase = Phase::Requesting(ex, offer);
            }
            _ => {}
        }
    }

    fn build_oneshot(&mut self, shot: OneShot, mac: [u8; 6]) -> Transmit4 {
        let xid = self.rng.next_u32();
        let (kind, ciaddr, src, dst, address, server) = match shot {
            OneShot::Decline { address, server } => (
                MessageType::Decline,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                address,
                server,
            ),
            OneShot::Release { address, server } => (
                MessageType::Release,
                address,
                address,
                server,
                address,
                server,
            ),
        };
        let mut b = Builder::request(xid, 0, ciaddr, mac);
        b.option(opt::MESSAGE_TYPE, &[kind.code()]);
        b.option(opt::CLIENT_ID, &self.client_id);
        if kind == MessageType::Decline {
            b.option_ip(opt::REQUESTED_IP, address);
        }
        b.option_ip(opt::SERVER_ID, server);
        Transmit4 {
            payload: b.finish(),
            src,
            dst,
            chaddr: mac,
            kind,
        }
    }
}
