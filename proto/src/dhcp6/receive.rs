//! What the DHCPv6 engine does with a received message: match it to the exchange in
//! progress, then take the Advertise or the Reply.

use super::lease::{finalize, merge_remaining};
use super::wire::{self, Message, WireAddr, WirePrefix};
use super::{
    params, Addr6, Client, Event6, InfoData, Lease6, LostReason, MessageType, Offer, Phase,
    Prefix6, StatusCode, INFINITY,
};
use crate::time::Instant;
use std::net::Ipv6Addr;
use std::time::Duration;

/// What a Reply says about the client's IAs.
struct ReplyData {
    top: StatusCode,
    na: Option<StatusCode>,
    pd: Option<StatusCode>,
    server_t1: u32,
    server_t2: u32,
    /// Addresses the server listed with a zero valid lifetime.
    withdrawn: Vec<Ipv6Addr>,
    /// Prefixes the server listed with a zero valid lifetime.
    withdrawn_prefixes: Vec<(Ipv6Addr, u8)>,
    lease: Lease6,
}

impl Client {
    /// See [`crate::Engine::handle_packet`]: a refused message becomes
    /// [`Event6::Dropped`] with the reason.
    pub(super) fn receive(&mut self, now: Instant, bytes: &[u8]) {
        if let Err(why) = self.handle_inner(now, bytes) {
            self.events.push_back(Event6::Dropped(why));
        }
    }

    fn handle_inner(&mut self, now: Instant, bytes: &[u8]) -> Result<(), &'static str> {
        let msg = wire::parse(bytes)?;
        match msg.msg_type {
            MessageType::Advertise | MessageType::Reply => {}
            MessageType::Reconfigure => {
                return Err("Reconfigure ignored: authentication is not implemented")
            }
            _ => return Err("not a server-to-client message type"),
        }
        let (Some(txn), Some(kind)) = (self.phase.txn(), self.phase.kind()) else {
            return Err("no exchange in progress");
        };
        if txn.count == 0 {
            return Err("no message of the current exchange has been sent yet");
        }
        if msg.xid != txn.xid {
            return Err("transaction id does not match");
        }
        match &msg.client_id {
            None => return Err("missing client identifier"),
            Some(id) if id.as_slice() != self.duid.as_bytes() => {
                return Err("client identifier is not ours")
            }
            _ => {}
        }
        let Some(server_id) = msg.server_id.clone() else {
            return Err("missing server identifier");
        };
        let expected_server: Option<&[u8]> = match &self.phase {
            Phase::Requesting { offer, .. } => Some(&offer.server_id),
            Phase::Renewing(_) => self.lease.as_ref().map(|l| l.server_id.as_slice()),
            Phase::Declining { server_id, .. } => Some(server_id),
            Phase::Releasing { lease, .. } => Some(&lease.server_id),
            _ => None,
        };
        if expected_server.is_some_and(|s| s != server_id.as_slice()) {
            return Err("server identifier is not the selected server's");
        }
        if msg.msg_type == MessageType::Advertise {
            if kind != MessageType::Solicit {
                return Err("Advertise outside of Solicit");
            }
            return self.on_advertise(now, msg, server_id);
        }
        match kind {
            MessageType::Solicit => {
                if !(self.config.rapid_commit && msg.rapid_commit) {
                    return Err("Reply to Solicit without Rapid Commit");
                }
                self.on_request_reply(now, &msg, server_id, true)
            }
            MessageType::Request => self.on_request_reply(now, &msg, server_id, false),
            MessageType::Renew | MessageType::Rebind => self.on_renew_reply(now, &msg, server_id),
            MessageType::Confirm => self.on_confirm_reply(now, &msg),
            MessageType::Decline => {
                self.finish_decline(now);
                Ok(())
            }
            MessageType::Release => {
                self.phase = Phase::Idle;
                Ok(())
            }
            MessageType::InformationRequest => self.on_info_reply(now, &msg),
            _ => Err("Reply for an exchange the client does not run"),
        }
    }

    // ----- exchanges -------------------------------------------------------------------

    fn on_advertise(
        &mut self,
        now: Instant,
        msg: Message,
        server_id: Vec<u8>,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(&msg);
        let (addrs, prefixes) = self.our_ia_contents(&msg);
        if msg.status == Some(StatusCode::NoAddrsAvail) || (addrs.is_empty() && prefixes.is_empty())
        {
            return Err("Advertise offers no addresses or prefixes");
        }
        let offer = Offer {
            server_id,
            preference: msg.preference.unwrap_or(0),
            addrs,
            prefixes,
        };
        let collecting = self.phase.txn().is_some_and(|t| t.count == 1);
        let avoided = &self.failures;
        // A server that just failed us ranks below every other, whatever its preference.
        let rank = |o: &Offer| (!avoided.avoids(&o.server_id), o.preference);
        if (offer.preference == 255 && !avoided.avoids(&offer.server_id)) || !collecting {
            self.start_request(now, offer);
            return Ok(());
        }
        let new_rank = rank(&offer);
        let replace = match &self.phase {
            Phase::Soliciting { best, .. } => best.as_ref().is_none_or(|b| new_rank > rank(b)),
            _ => false,
        };
        if let (true, Phase::Soliciting { best, .. }) = (replace, &mut self.phase) {
            *best = Some(offer);
        }
        Ok(())
    }

    fn on_request_reply(
        &mut self,
        now: Instant,
        msg: &Message,
        server_id: Vec<u8>,
        rapid: bool,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(msg);
        let r = self.reply_data(now, msg, server_id);
        match r.top {
            StatusCode::UnspecFail => return Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => return Err("Reply with UseMulticast: retransmitting"),
            _ => {}
        }
        let not_on_link = r.top == StatusCode::NotOnLink || r.na == Some(StatusCode::NotOnLink);
        if not_on_link || r.lease.is_empty() {
            if rapid {
                return Err("Rapid Commit Reply grants nothing: still soliciting");
            }
            // Back to Solicit; a lease held through NoBinding recovery is given up.
            self.lose(if not_on_link {
                LostReason::NotOnLink
            } else {
                LostReason::Refused
            });
            let why = refusal(&r);
            self.fail(now, Some(r.lease.server_id), why);
            return Ok(());
        }
        let lease = finalize(r.lease, r.server_t1, r.server_t2);
        let had = self.lease.is_some();
        self.failures.bound(now, !had);
        self.lease = Some(lease.clone());
        self.phase = Phase::Bound;
        self.events.push_back(if had {
            Event6::Renewed(lease)
        } else {
            Event6::Bound(lease)
        });
        Ok(())
    }

    fn on_renew_reply(
        &mut self,
        now: Instant,
        msg: &Message,
        server_id: Vec<u8>,
    ) -> Result<(), &'static str> {
        self.apply_sol_max_rt(msg);
        let r = self.reply_data(now, msg, server_id.clone());
        match r.top {
            StatusCode::UnspecFail => return Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => return Err("Reply with UseMulticast: retransmitting"),
            _ => {}
        }
        if r.top == StatusCode::NotOnLink || r.na == Some(StatusCode::NotOnLink) {
            self.lose(LostReason::NotOnLink);
            self.fail(now, Some(server_id), "Reply with NotOnLink");
            return Ok(());
        }
        let Some(old) = self.lease.clone() else {
            return Err("Reply to Renew without a lease");
        };
        if r.top == StatusCode::NoBinding
            || r.na == Some(StatusCode::NoBinding)
            || r.pd == Some(StatusCode::NoBinding)
        {
            // RFC 8415 18.2.10.1: Request the IA(s) the server does not know about.
            let offer = Offer {
                server_id,
                preference: 0,
                addrs: old
                    .addresses
                    .iter()
                    .map(|a| WireAddr {
                        addr: a.addr,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect(),
                prefixes: old
                    .prefixes
                    .iter()
                    .map(|p| WirePrefix {
                        prefix: p.prefix,
                        len: p.len,
                        preferred: 0,
                        valid: 0,
                    })
                    .collect(),
            };
            self.start_request(now, offer);
            return Ok(());
        }
        let mut new = r.lease;
        merge_remaining(&mut new, &old, &r.withdrawn, &r.withdrawn_prefixes, now);
        if new.is_empty() {
            self.lose(LostReason::Refused);
            self.fail(now, Some(server_id), "Reply extends no address or prefix");
            return Ok(());
        }
        // The Reply may carry no options at all; keep what we had then.
        if !msg_has_config(msg) {
            new.dns = old.dns;
            new.domains = old.domains;
            new.ntp = old.ntp;
            new.captive_portal = old.captive_portal;
        }
        let lease = finalize(new, r.server_t1, r.server_t2);
        self.lease = Some(lease.clone());
        self.phase = Phase::Bound;
        self.events.push_back(Event6::Renewed(lease));
        Ok(())
    }

    fn on_confirm_reply(&mut self, now: Instant, msg: &Message) -> Result<(), &'static str> {
        match msg.status.unwrap_or(StatusCode::Success) {
            StatusCode::Success => {
                self.finish_confirm(now);
                Ok(())
            }
            StatusCode::NotOnLink => {
                self.lose(LostReason::NotOnLink);
                self.fail(
                    now,
                    msg.server_id.clone(),
                    "Reply to Confirm with NotOnLink",
                );
                Ok(())
            }
            StatusCode::UnspecFail => Err("Reply with UnspecFail: retransmitting"),
            StatusCode::UseMulticast => Err("Reply with UseMulticast: retransmitting"),
            _ => Err("Reply to Confirm with an unexpected status"),
        }
    }

    fn on_info_reply(&mut self, now: Instant, msg: &Message) -> Result<(), &'static str> {
        match msg.status {
            Some(StatusCode::UnspecFail) => return Err("Reply with UnspecFail: retransmitting"),
            Some(StatusCode::UseMulticast) => {
                return Err("Reply with UseMulticast: retransmitting")
            }
            _ => {}
        }
        if let Some(v) = msg.inf_max_rt {
            if params::MAX_RT_OPTION_RANGE.contains(&v) {
                self.inf_max_rt = u64::from(v) * 1000;
            }
        }
        self.apply_sol_max_rt(msg);
        let refresh = match msg.info_refresh.unwrap_or(params::IRT_DEFAULT) {
            INFINITY => INFINITY,
            v => v.max(params::IRT_MINIMUM),
        };
        let (dns, domains, ntp, captive_portal) = self.offered_settings(msg);
        let info = InfoData {
            dns,
            domains,
            ntp,
            captive_portal,
            refresh,
            received: now,
        };
        let refresh_at =
            (refresh != INFINITY).then(|| now + Duration::from_secs(u64::from(refresh)));
        self.info = Some(info.clone());
        self.phase = Phase::InfoBound { refresh_at };
        self.events.push_back(Event6::Info(info));
        Ok(())
    }

    /// The settings a Reply carries, as a lease or an information reply keeps them:
    /// DNS servers, search domains, NTP servers (only when asked for) and the portal.
    fn offered_settings(
        &self,
        msg: &Message,
    ) -> (Vec<Ipv6Addr>, Vec<String>, Vec<Ipv6Addr>, Option<String>) {
        let ntp = if self.config.request_ntp {
            msg.ntp.clone()
        } else {
            Vec::new()
        };
        (
            msg.dns.clone(),
            msg.domains.clone(),
            ntp,
            msg.captive_portal.clone(),
        )
    }

    pub(super) fn finish_confirm(&mut self, now: Instant) {
        let restart = matches!(self.phase, Phase::Confirming { restart: true, .. });
        self.failures.bound(now, restart);
        self.phase = Phase::Bound;
        if let Some(l) = &self.lease {
            self.events.push_back(if restart {
                Event6::Bound(l.clone())
            } else {
                Event6::Renewed(l.clone())
            });
        }
    }

    pub(super) fn finish_decline(&mut self, now: Instant) {
        if self.lease.as_ref().is_some_and(|l| !l.is_empty()) {
            self.phase = Phase::Bound;
        } else {
            self.lease = None;
            let server = match &self.phase {
                Phase::Declining { server_id, .. } => Some(server_id.clone()),
                _ => None,
            };
            self.fail(
                now,
                server,
                "the address was declined (duplicate address detection failed)",
            );
        }
    }

    /// Take a server's SOL_MAX_RT option (RFC 8415 18.2.1), for this Solicit too.
    fn apply_sol_max_rt(&mut self, msg: &Message) {
        if let Some(v) = msg.sol_max_rt {
            if params::MAX_RT_OPTION_RANGE.contains(&v) {
                self.sol_max_rt = u64::from(v) * 1000;
                if let Phase::Soliciting { txn, .. } = &mut self.phase {
                    txn.mrt = self.sol_max_rt;
                }
            }
        }
    }

    /// Addresses and prefixes for our IAIDs in `msg`.
    fn our_ia_contents(&self, msg: &Message) -> (Vec<WireAddr>, Vec<WirePrefix>) {
        let mut addrs = Vec::new();
        let mut prefixes = Vec::new();
        if let Some(iaid) = self.config.iaid_na {
            for ia in msg.ia_na.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    addrs.extend(ia.addrs.iter().filter(|a| a.valid > 0));
                }
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            for ia in msg.ia_pd.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    prefixes.extend(ia.prefixes.iter().filter(|p| p.valid > 0));
                }
            }
        }
        addrs.truncate(wire::MAX_ADDRS_PER_IA);
        prefixes.truncate(wire::MAX_ADDRS_PER_IA);
        (addrs, prefixes)
    }

    fn reply_data(&self, now: Instant, msg: &Message, server_id: Vec<u8>) -> ReplyData {
        let mut t1s = Vec::new();
        let mut t2s = Vec::new();
        let mut na = None;
        let mut pd = None;
        if let Some(iaid) = self.config.iaid_na {
            if let Some(ia) = msg.ia_na.iter().find(|ia| ia.iaid == iaid.0) {
                na = Some(ia.status.unwrap_or(StatusCode::Success));
                t1s.push(ia.t1);
                t2s.push(ia.t2);
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            if let Some(ia) = msg.ia_pd.iter().find(|ia| ia.iaid == iaid.0) {
                pd = Some(ia.status.unwrap_or(StatusCode::Success));
                t1s.push(ia.t1);
                t2s.push(ia.t2);
            }
        }
        // Addresses with zero valid lifetime are kept here so that a Renew reply can
        // withdraw them; `finalize` and `merge_remaining` drop them.
        let mut addresses = Vec::new();
        let mut prefixes = Vec::new();
        if let Some(iaid) = self.config.iaid_na {
            for ia in msg.ia_na.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    addresses.extend(ia.addrs.iter().map(|a| Addr6 {
                        addr: a.addr,
                        preferred: a.preferred,
                        valid: a.valid,
                    }));
                }
            }
        }
        if let Some(iaid) = self.config.iaid_pd {
            for ia in msg.ia_pd.iter().filter(|ia| ia.iaid == iaid.0) {
                if matches!(ia.status, None | Some(StatusCode::Success)) {
                    prefixes.extend(ia.prefixes.iter().map(|p| Prefix6 {
                        prefix: p.prefix,
                        len: p.len,
                        preferred: p.preferred,
                        valid: p.valid,
                    }));
                }
            }
        }
        addresses.truncate(wire::MAX_ADDRS_PER_IA);
        prefixes.truncate(wire::MAX_ADDRS_PER_IA);
        let withdrawn = addresses
            .iter()
            .filter(|a| a.valid == 0)
            .map(|a| a.addr)
            .collect();
        let withdrawn_prefixes = prefixes
            .iter()
            .filter(|p| p.valid == 0)
            .map(|p| (p.prefix, p.len))
            .collect();
        let nonzero_min = |v: &[u32]| v.iter().copied().filter(|&t| t > 0).min().unwrap_or(0);
        let (dns, domains, ntp, captive_portal) = self.offered_settings(msg);
        ReplyData {
            top: msg.status.unwrap_or(StatusCode::Success),
            na,
            pd,
            server_t1: nonzero_min(&t1s),
            server_t2: nonzero_min(&t2s),
            withdrawn,
            withdrawn_prefixes,
            lease: Lease6 {
                server_id,
                addresses: addresses.into_iter().filter(|a| a.valid > 0).collect(),
                prefixes: prefixes.into_iter().filter(|p| p.valid > 0).collect(),
                t1: 0,
                t2: 0,
                dns,
                domains,
                ntp,
                captive_portal,
                acquired: now,
            },
        }
    }

    // ----- building messages -----------------------------------------------------------
}

/// Why a Reply to Request granted nothing, for the backoff log line.
fn refusal(r: &ReplyData) -> &'static str {
    let worst = [Some(r.top), r.na, r.pd]
        .into_iter()
        .flatten()
        .find(|s| *s != StatusCode::Success);
    match worst {
        Some(StatusCode::NoAddrsAvail) => "Reply to Request with NoAddrsAvail",
        Some(StatusCode::NotOnLink) => "Reply to Request with NotOnLink",
        Some(StatusCode::NoBinding) => "Reply to Request with NoBinding",
        Some(StatusCode::NoPrefixAvail) => "Reply to Request with NoPrefixAvail",
        Some(StatusCode::UseMulticast) => "Reply to Request with UseMulticast in an IA",
        Some(StatusCode::UnspecFail) => "Reply to Request with UnspecFail in an IA",
        _ => "Reply to Request grants no address or prefix",
    }
}

/// Whether a Reply carries any configuration option (else the old values are kept).
fn msg_has_config(m: &Message) -> bool {
    !(m.dns.is_empty() && m.domains.is_empty() && m.ntp.is_empty())
}
