//! What the DHCPv4 engine does with a received packet: match it to the exchange in
//! progress, then take the OFFER, the ACK or the NAK.

use super::reply::{effective_prefix, Reply};
use super::wire::{opt, Message};
use super::{
    repair_timers, Client, Event4, Lease4, LostReason, MessageType, Offer, Phase, MIN_LEASE_SECS,
};
use crate::time::Instant;
use core::time::Duration;

impl Client {
    /// See [`crate::Engine::handle_packet`]: a packet that is not a valid reply to the
    /// current exchange becomes [`Event4::Dropped`] with the reason.
    pub(super) fn receive(&mut self, now: Instant, bytes: &[u8]) {
        if let Err(why) = self.process(now, bytes) {
            self.events.push_back(Event4::Dropped(why));
        }
    }

    fn process(&mut self, now: Instant, bytes: &[u8]) -> Result<(), &'static str> {
        let msg = Message::parse(bytes)?;
        if msg.op == 2 && msg.option(opt::MESSAGE_TYPE) == Some(&[9]) {
            return Err("FORCERENEW ignored: it is only honoured with authentication (RFC 6704), which is not configured");
        }
        let reply = Reply::from_message(&msg, &self.client_id)?;
        let ex = match &self.phase {
            Phase::Selecting(ex)
            | Phase::Requesting(ex, _)
            | Phase::Renewing(ex)
            | Phase::Rebinding(ex)
            | Phase::Rebooting(ex)
            | Phase::Reconfirming(ex) => ex,
            _ => return Err("no exchange in progress"),
        };
        if reply.xid != ex.xid {
            return Err("transaction id is not ours");
        }
        if ex.chaddr != Some(reply.chaddr) {
            return Err("chaddr is not the one our request carried");
        }
        let sent_at = ex.last_tx.unwrap_or(now);
        if let Some(secs) = reply.v6only {
            if self.v6only(now, &reply, secs) {
                return Ok(());
            }
            if !super::reply::is_usable_unicast(reply.yiaddr) {
                return Err("no address offered (option 108, which was not asked for)");
            }
        }
        match (&self.phase, reply.kind) {
            (Phase::Selecting(ex), MessageType::Offer) => {
                let offer = Offer {
                    server: reply.server,
                    address: reply.yiaddr,
                };
                if self.failures.avoids(&offer.server) {
                    // Wait for other servers until the DISCOVER is due again.
                    let xid = ex.xid;
                    if self.fallback.as_ref().is_none_or(|(x, _)| *x != xid) {
                        self.fallback = Some((xid, offer));
                    }
                    return Ok(());
                }
                let mut ex = self.new_exchange(now);
                // REQUEST keeps the DISCOVER's xid and secs base (RFC 2131 4.4.1).
                if let Phase::Selecting(old) = &self.phase {
                    ex.xid = old.xid;
                    ex.started = old.started;
                }
                // Unusable option values are reported from the ACK that would have
                // configured them, not from the OFFER.
                self.phase = Phase::Requesting(ex, offer);
                Ok(())
            }
            // RFC 4039: the server committed the address at once; only when we asked and
            // it says so (option 80), else an ACK here answers someone else's REQUEST.
            (Phase::Selecting(_), MessageType::Ack)
                if self.config.rapid_commit && msg.option(opt::RAPID_COMMIT).is_some() =>
            {
                self.accept_ack(now, reply, sent_at);
                Ok(())
            }
            (Phase::Selecting(_), _) => Err("not an OFFER while selecting"),
            (_, MessageType::Offer) => Err("OFFER when not selecting"),
            (Phase::Requesting(_, offer), _) if reply.server != offer.server => {
                Err("reply from a server other than the one selected")
            }
            (Phase::Requesting(_, offer), MessageType::Ack) if reply.yiaddr != offer.address => {
                Err("ACK for an address other than the one requested")
            }
            (_, MessageType::Nak) => {
                self.lose(LostReason::Nak);
                self.fail(now, Some(reply.server), "DHCPNAK", Duration::ZERO);
                Ok(())
            }
            (_, MessageType::Ack) => {
                self.accept_ack(now, reply, sent_at);
                Ok(())
            }
            _ => Err("unexpected message type"),
        }
    }

    /// RFC 8925 3.2: option 108 in an OFFER (or a rapid-commit ACK) while selecting, or
    /// in the ACK to INIT-REBOOT, when the client asked for it: configure nothing (drop
    /// a saved lease), pause DHCPv4 for the option's time but at least the minimum, and
    /// say so. False when the option does not apply here (not asked for, another state).
    fn v6only(&mut self, now: Instant, reply: &Reply, secs: u32) -> bool {
        let applies = matches!(
            (&self.phase, reply.kind),
            (Phase::Selecting(_), MessageType::Offer | MessageType::Ack)
                | (Phase::Rebooting(_), MessageType::Ack)
        );
        if !self.config.ipv6_only_preferred || !applies {
            return false;
        }
        let wait = Duration::from_secs(u64::from(secs)).max(self.config.min_v6only_wait);
        self.lose(LostReason::Ipv6OnlyPreferred);
        self.acquiring_since = None;
        self.fallback = None;
        self.events.push_back(Event4::Ipv6OnlyPreferred {
            server: reply.server,
            wait,
        });
        self.phase = Phase::Ipv6Only(now + wait);
        true
    }

    /// Take an ACK: report its unusable option values, then the lease (new, renewed in
    /// place, or a different address), and go to BOUND.
    fn accept_ack(&mut self, now: Instant, r: Reply, sent_at: Instant) {
        for why in &r.ignored {
            self.events.push_back(Event4::IgnoredOption(why));
        }
        let p = &r.params;
        let lease_secs = p.lease_secs.map(|l| l.max(MIN_LEASE_SECS));
        let (t1, t2) = match lease_secs {
            None => (u32::MAX, u32::MAX),
            Some(l) => repair_timers(l, p.t1, p.t2),
        };
        let new = Lease4 {
            address: r.yiaddr,
            prefix_len: effective_prefix(p, r.yiaddr),
            server: r.server,
            routers: p.routers.clone(),
            dns: p.dns.clone(),
            domain: p.domain.clone(),
            search: p.search.clone(),
            hostname: p.hostname.clone(),
            mtu: p.mtu,
            ntp: p.ntp.clone(),
            routes: p.routes.clone(),
            static_routes: p.static_routes.clone(),
            lease_secs,
            t1_secs: t1,
            t2_secs: t2,
            acquired: sent_at,
            chaddr: r.chaddr,
            captive_portal: p.captive_portal.clone(),
        };
        let ev = match self.lease.take() {
            None => Event4::Bound(new.clone()),
            Some(old) if old.address == new.address => Event4::Renewed(new.clone()),
            Some(old) => Event4::Changed {
                old: Box::new(old),
                new: new.clone(),
            },
        };
        self.failures.bound(now, !matches!(ev, Event4::Renewed(_)));
        self.events.push_back(ev);
        self.lease = Some(new);
        self.acquiring_since = None;
        self.phase = Phase::Bound;
    }
}
