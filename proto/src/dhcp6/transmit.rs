//! Building the DHCPv6 engine's messages, with the retransmission timing of RFC 8415
//! section 15.

use super::wire::{self, code, WireAddr, WirePrefix};
use super::{Addr6, Client, MessageType, Phase, Prefix6, Transmit6, ALL_DHCP_SERVERS};
use crate::time::Instant;
use std::time::Duration;

impl Client {
    /// The message of the exchange in progress, with its next retransmission scheduled.
    pub(super) fn send(&mut self, now: Instant) -> Option<Transmit6> {
        let kind = self.phase.kind()?;
        let (irt, rt_prev, count, mrt) = {
            let t = self.phase.txn()?;
            (t.irt, t.rt, t.count, t.mrt)
        };
        let first_solicit = kind == MessageType::Solicit && count == 0;
        let rt = if count == 0 {
            let j = if first_solicit {
                self.rng.range_i64(1, (irt / 10) as i64)
            } else {
                self.jitter(irt)
            };
            add_signed(irt, j)
        } else {
            let j = self.jitter(rt_prev);
            add_signed(rt_prev.saturating_mul(2), j)
        };
        let rt = if mrt > 0 && rt > mrt {
            let j = self.jitter(mrt);
            add_signed(mrt, j)
        } else {
            rt
        }
        .max(1);
        let t = self.phase.txn_mut()?;
        let start = *t.start.get_or_insert(now);
        if t.deadline.is_none() {
            if let Some(rel) = t.mrd_rel {
                t.deadline = Some(start + Duration::from_millis(rel));
            }
        }
        t.rt = rt;
        t.count += 1;
        t.next = now + Duration::from_millis(rt);
        if let Some(d) = t.deadline {
            t.next = t.next.min(d);
        }
        let cs = (now - start).as_millis() / 10;
        let elapsed = u16::try_from(cs).unwrap_or(u16::MAX);
        let xid = t.xid;
        Some(Transmit6 {
            payload: self.build(kind, xid, elapsed),
            dst: ALL_DHCP_SERVERS,
            msg_type: kind,
        })
    }

    fn jitter(&mut self, base: u64) -> i64 {
        let r = (base / 10) as i64;
        self.rng.range_i64(-r, r)
    }

    fn oro(&self, info: bool) -> Vec<u8> {
        let mut codes = vec![code::DNS_SERVERS, code::DOMAIN_LIST];
        if self.config.request_ntp {
            codes.push(code::NTP_SERVER);
        }
        codes.push(code::SOL_MAX_RT);
        if info {
            codes.push(code::INFO_REFRESH_TIME);
            codes.push(code::INF_MAX_RT);
        }
        for c in &self.config.extra_request {
            if !codes.contains(c) {
                codes.push(*c);
            }
        }
        codes.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    /// The message for the current exchange: the options every message carries, then
    /// those of its type.
    fn build(&self, kind: MessageType, xid: u32, elapsed: u16) -> Vec<u8> {
        let mut b = wire::Builder::new(kind, xid);
        b.opt(code::CLIENTID, self.duid.as_bytes());
        b.opt(code::ELAPSED_TIME, &elapsed.to_be_bytes());
        if !matches!(kind, MessageType::Release | MessageType::Decline) {
            if let Some(u) = self.config.user_class.as_ref().filter(|u| !u.is_empty()) {
                b.opt(code::USER_CLASS, &opaque_data(u));
            }
            if let Some((enterprise, data)) = &self.config.vendor_class {
                let mut v = enterprise.to_be_bytes().to_vec();
                v.extend_from_slice(&opaque_data(data));
                b.opt(code::VENDOR_CLASS, &v);
            }
            for (c, data) in &self.config.extra_options {
                b.opt(*c, data);
            }
        }
        if let Some(f) = &self.config.fqdn {
            if matches!(
                kind,
                MessageType::Solicit
                    | MessageType::Request
                    | MessageType::Renew
                    | MessageType::Rebind
            ) {
                let mut v = vec![0x01];
                v.extend_from_slice(&crate::dhcp4::wire::dns_name_wire(f, f.contains('.')));
                b.opt(code::CLIENT_FQDN, &v);
            }
        }
        self.add_exchange_options(&mut b);
        b.finish()
    }

    /// The server identifier, ORO and IAs of the current exchange's message type.
    fn add_exchange_options(&self, b: &mut wire::Builder) {
        let lease_addrs: Vec<WireAddr> = self
            .lease
            .iter()
            .flat_map(|l| l.addresses.iter().map(zero))
            .collect();
        let lease_prefixes: Vec<WirePrefix> = self
            .lease
            .iter()
            .flat_map(|l| l.prefixes.iter().map(zero_p))
            .collect();
        let na = self.config.iaid_na.map(|i| i.0);
        let pd = self.config.iaid_pd.map(|i| i.0);
        let add_ias = |b: &mut wire::Builder, addrs: &[WireAddr], prefixes: &[WirePrefix]| {
            if let Some(iaid) = na {
                b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, addrs));
            }
            if let Some(iaid) = pd {
                b.opt(code::IA_PD, &wire::ia_pd_body(iaid, 0, 0, prefixes));
            }
        };
        match &self.phase {
            Phase::Soliciting { .. } => {
                b.opt(code::ORO, &self.oro(false));
                if self.config.rapid_commit {
                    b.opt(code::RAPID_COMMIT, &[]);
                }
                add_ias(b, &[], &[]);
            }
            Phase::Requesting { offer, .. } => {
                b.opt(code::SERVERID, &offer.server_id);
                b.opt(code::ORO, &self.oro(false));
                let hints: Vec<WireAddr> = offer.addrs.iter().map(|a| a.zeroed()).collect();
                let phints: Vec<WirePrefix> = offer.prefixes.iter().map(|p| p.zeroed()).collect();
                add_ias(b, &hints, &phints);
            }
            Phase::Renewing(_) | Phase::Rebinding(_) => {
                if let (Phase::Renewing(_), Some(l)) = (&self.phase, &self.lease) {
                    b.opt(code::SERVERID, &l.server_id);
                }
                b.opt(code::ORO, &self.oro(false));
                add_ias(b, &lease_addrs, &lease_prefixes);
            }
            Phase::Confirming { .. } => {
                if let Some(iaid) = na {
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &lease_addrs));
                }
            }
            Phase::Declining {
                server_id, addr, ..
            } => {
                b.opt(code::SERVERID, server_id);
                if let Some(iaid) = na {
                    let a = [WireAddr {
                        addr: *addr,
                        preferred: 0,
                        valid: 0,
                    }];
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &a));
                }
            }
            Phase::Releasing { lease, .. } => {
                b.opt(code::SERVERID, &lease.server_id);
                let a: Vec<WireAddr> = lease.addresses.iter().map(zero).collect();
                let p: Vec<WirePrefix> = lease.prefixes.iter().map(zero_p).collect();
                if let Some(iaid) = na.filter(|_| !a.is_empty()) {
                    b.opt(code::IA_NA, &wire::ia_na_body(iaid, 0, 0, &a));
                }
                if let Some(iaid) = pd.filter(|_| !p.is_empty()) {
                    b.opt(code::IA_PD, &wire::ia_pd_body(iaid, 0, 0, &p));
                }
            }
            Phase::Informing(_) => {
                b.opt(code::ORO, &self.oro(true));
            }
            _ => {}
        }
    }
}

/// A leased address as a hint or a release: lifetimes zero.
fn zero(a: &Addr6) -> WireAddr {
    WireAddr {
        addr: a.addr,
        preferred: 0,
        valid: 0,
    }
}

/// A leased prefix as a hint or a release: lifetimes zero.
fn zero_p(p: &Prefix6) -> WirePrefix {
    WirePrefix {
        prefix: p.prefix,
        len: p.len,
        preferred: 0,
        valid: 0,
    }
}

fn add_signed(base: u64, delta: i64) -> u64 {
    if delta >= 0 {
        base.saturating_add(delta as u64)
    } else {
        base.saturating_sub(delta.unsigned_abs())
    }
}

/// One RFC 8415 opaque-data item (user and vendor class data): a 2-octet length, then
/// the octets (cut to what the length can say).
fn opaque_data(d: &[u8]) -> Vec<u8> {
    let n = d.len().min(u16::MAX as usize - 2);
    let mut v = (n as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&d[..n]);
    v
}
