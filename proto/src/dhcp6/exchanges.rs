//! Starting, timing and ending the DHCPv6 engine's exchanges, and the commands and
//! link changes that start or end them.

use super::{
    params, Client, Effective, Event6, Lease6, LostReason, ModeSetting, Offer, Phase, Transmit6,
    Txn,
};
use crate::time::Instant;
use std::net::Ipv6Addr;
use std::time::Duration;

impl Client {
    /// See [`crate::Engine::poll_timeout`]; `None` when nothing is pending.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        if let Some(t) = self.phase.txn() {
            return Some(t.next);
        }
        match &self.phase {
            Phase::Bound => {
                let l = self.lease.as_ref()?;
                [l.renew_at(), l.rebind_at(), l.expires_at()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Phase::LinkDown => self.lease.as_ref().and_then(Lease6::expires_at),
            Phase::InfoBound { refresh_at } => *refresh_at,
            _ => None,
        }
    }

    /// The link went down (`up == false`: exchanges stop, the lease is kept until it
    /// expires) or came back (`up == true` after a down: Confirm if addresses are
    /// leased, otherwise start afresh; a prefix-only lease is then reported `Lost` with
    /// [`LostReason::NotOnLink`] and solicited again). An `up` without a preceding
    /// `down` is ignored, and so is any change while stopped.
    pub(super) fn on_link(&mut self, now: Instant, up: bool) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        if !up {
            self.phase = Phase::LinkDown;
            return;
        }
        if !matches!(self.phase, Phase::LinkDown) {
            return;
        }
        self.phase = Phase::Idle;
        let has_addrs = self.lease.as_ref().is_some_and(|l| !l.addresses.is_empty());
        if has_addrs && self.effective() != Effective::Stateless {
            self.start_confirm(now, false);
        } else {
            self.lose(LostReason::NotOnLink);
            self.begin(now, false);
        }
    }

    /// Duplicate address detection failed for `addr`: emit [`Event6::Lost`] for it, send
    /// Decline, then continue with the rest of the lease or Solicit again if none is left.
    pub(super) fn decline_addr(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(lease) = self.lease.as_mut() else {
            self.events
                .push_back(Event6::Dropped("decline: no lease is held"));
            return;
        };
        let Some(pos) = lease.addresses.iter().position(|a| a.addr == addr) else {
            self.events
                .push_back(Event6::Dropped("decline: the address is not leased"));
            return;
        };
        let gone = lease.addresses.remove(pos);
        let mut lost = lease.clone();
        lost.addresses = vec![gone];
        lost.prefixes.clear();
        let server_id = lease.server_id.clone();
        if lease.is_empty() {
            self.lease = None;
        }
        self.events.push_back(Event6::Lost {
            lease: lost,
            reason: LostReason::Declined,
        });
        let txn = self.new_txn(params::DEC_TIMEOUT, 0, params::DEC_MAX_RC, now);
        self.phase = Phase::Declining {
            txn,
            server_id,
            addr,
        };
    }

    /// Give the lease back: emit [`Event6::Lost`] and send Release (retransmitted up to
    /// REL_MAX_RC times if the caller keeps polling; stopping earlier is allowed). The
    /// client then stays idle until [`Client::ra_flags`] or a link change restarts it.
    pub(super) fn release_lease(&mut self, now: Instant) {
        let Some(lease) = self.lease.take() else {
            self.phase = Phase::Idle;
            return;
        };
        self.events.push_back(Event6::Lost {
            lease: lease.clone(),
            reason: LostReason::Released,
        });
        let txn = self.new_txn(params::REL_TIMEOUT, 0, params::REL_MAX_RC, now);
        self.phase = Phase::Releasing { txn, lease };
    }

    /// Renew now (the `netbond renew` command): from Bound, send Renew at once; in
    /// stateless mode, send Information-request at once. Otherwise nothing to do.
    pub(super) fn renew_now(&mut self, now: Instant) {
        match self.phase {
            Phase::Bound => self.start_renew(now),
            Phase::InfoBound { .. } => self.start_info(now),
            _ => {}
        }
    }

    /// Run due timers, end exchanges that ran out and take the best Advertise at the
    /// end of the first Solicit RT. False when it did not settle in a handful of passes
    /// (each pass changes state; it always settles sooner).
    pub(super) fn settle(&mut self, now: Instant) -> bool {
        for _ in 0..8 {
            self.run_timers(now);
            let Some(txn) = self.phase.txn() else {
                return true;
            };
            if now < txn.next {
                return true;
            }
            let exhausted = txn.count > 0
                && ((txn.mrc > 0 && txn.count >= txn.mrc)
                    || txn.deadline.is_some_and(|d| now >= d));
            if exhausted {
                self.exhausted(now);
                continue;
            }
            if let Phase::Soliciting { txn, best } = &mut self.phase {
                // End of the first RT: take the best Advertise collected (RFC 8415 18.2.1).
                if txn.count == 1 {
                    if let Some(offer) = best.take() {
                        self.start_request(now, offer);
                        continue;
                    }
                }
            }
            return true;
        }
        false
    }

    /// See [`crate::Engine::poll_transmit`]: run due timers and return the next message
    /// to send, if one is due now.
    pub(super) fn transmit(&mut self, now: Instant) -> Option<Transmit6> {
        if !self.settle(now) {
            return None;
        }
        if now < self.phase.txn()?.next {
            return None;
        }
        self.send(now)
    }

    /// A stateful exchange ended without a lease (`reason`, caused by `server`): count
    /// it, remember the server, tell the caller once, and solicit again after the
    /// backoff. Any lease involved was already reported lost.
    pub(super) fn fail(&mut self, now: Instant, server: Option<Vec<u8>>, reason: &'static str) {
        let (failures, wait) = self.failures.fail(now, server, &mut self.rng);
        self.events.push_back(Event6::Backoff {
            failures,
            wait,
            reason,
        });
        self.start_solicit(now, false);
        if let Some(t) = self.phase.txn_mut() {
            t.next = now + wait;
        }
    }

    /// An exchange ran out of retransmissions or time.
    fn exhausted(&mut self, now: Instant) {
        match &self.phase {
            Phase::Requesting { offer, .. } => {
                if self.lease.is_some() {
                    // Re-Request after NoBinding failed: the lease timers take over.
                    self.phase = Phase::Bound;
                } else {
                    let server = Some(offer.server_id.clone());
                    self.fail(now, server, "no valid Reply to the Requests");
                }
            }
            Phase::Renewing(_) => self.start_rebind(now),
            Phase::Rebinding(_) => {
                self.lose(LostReason::Expired);
                self.begin(now, false);
            }
            Phase::Confirming { .. } => self.finish_confirm(now),
            Phase::Declining { .. } => self.finish_decline(now),
            // Release ends; Solicit and Information-request retransmit forever.
            _ => self.phase = Phase::Idle,
        }
    }

    fn run_timers(&mut self, now: Instant) {
        match &self.phase {
            Phase::Bound => {
                let Some(l) = &self.lease else {
                    self.phase = Phase::Idle;
                    return;
                };
                let (renew, rebind, expire) = (l.renew_at(), l.rebind_at(), l.expires_at());
                if expire.is_some_and(|e| now >= e) {
                    self.lose(LostReason::Expired);
                    self.begin(now, false);
                } else if rebind.is_some_and(|t| now >= t) {
                    self.start_rebind(now);
                } else if renew.is_some_and(|t| now >= t) {
                    self.start_renew(now);
                }
            }
            Phase::LinkDown => {
                let expired = self
                    .lease
                    .as_ref()
                    .and_then(Lease6::expires_at)
                    .is_some_and(|e| now >= e);
                if expired {
                    self.lose(LostReason::Expired);
                }
            }
            Phase::InfoBound { refresh_at } if refresh_at.is_some_and(|t| now >= t) => {
                self.start_info(now);
            }
            _ => {}
        }
    }

    pub(super) fn effective(&self) -> Effective {
        let wants_ia = self.config.iaid_na.is_some() || self.config.iaid_pd.is_some();
        let stateful = if wants_ia {
            Effective::Stateful
        } else {
            Effective::Stateless
        };
        match self.config.mode {
            ModeSetting::Off => Effective::Idle,
            ModeSetting::Stateful => stateful,
            ModeSetting::Stateless => Effective::Stateless,
            ModeSetting::Auto => match self.ra {
                Some((true, _)) => stateful,
                Some((false, true)) => Effective::Stateless,
                _ => Effective::Idle,
            },
        }
    }

    pub(super) fn stateful_active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Soliciting { .. }
                | Phase::Requesting { .. }
                | Phase::Bound
                | Phase::Renewing(_)
                | Phase::Rebinding(_)
                | Phase::Confirming { .. }
                | Phase::Declining { .. }
        )
    }

    /// Start what the mode asks for: Solicit, Information-request, or nothing.
    pub(super) fn begin(&mut self, now: Instant, initial: bool) {
        match self.effective() {
            Effective::Stateful => self.start_solicit(now, initial),
            Effective::Stateless => self.start_info(now),
            Effective::Idle => self.phase = Phase::Idle,
        }
    }

    fn new_txn(&mut self, irt: u64, mrt: u64, mrc: u32, at: Instant) -> Txn {
        Txn {
            xid: self.rng.next_u32() & 0x00ff_ffff,
            start: None,
            next: at,
            rt: 0,
            count: 0,
            irt,
            mrt,
            mrc,
            mrd_rel: None,
            deadline: None,
        }
    }

    fn random_delay(&mut self, max_ms: u64) -> Duration {
        Duration::from_millis(self.rng.range_i64(0, max_ms as i64).max(0) as u64)
    }

    pub(super) fn start_solicit(&mut self, now: Instant, initial: bool) {
        let at = if initial && self.config.solicit_delay {
            now + self.random_delay(params::SOL_MAX_DELAY)
        } else {
            now
        };
        let mrt = self.sol_max_rt;
        let txn = self.new_txn(params::SOL_TIMEOUT, mrt, 0, at);
        self.phase = Phase::Soliciting { txn, best: None };
    }

    pub(super) fn start_request(&mut self, now: Instant, offer: Offer) {
        let txn = self.new_txn(
            params::REQ_TIMEOUT,
            params::REQ_MAX_RT,
            params::REQ_MAX_RC,
            now,
        );
        self.phase = Phase::Requesting { txn, offer };
    }

    fn start_renew(&mut self, now: Instant) {
        let deadline = self.lease.as_ref().and_then(Lease6::rebind_at);
        let mut txn = self.new_txn(params::REN_TIMEOUT, params::REN_MAX_RT, 0, now);
        txn.deadline = deadline;
        self.phase = Phase::Renewing(txn);
    }

    pub(super) fn start_rebind(&mut self, now: Instant) {
        let deadline = self.lease.as_ref().and_then(Lease6::expires_at);
        let mut txn = self.new_txn(params::REB_TIMEOUT, params::REB_MAX_RT, 0, now);
        txn.deadline = deadline;
        self.phase = Phase::Rebinding(txn);
    }

    pub(super) fn start_confirm(&mut self, now: Instant, restart: bool) {
        let at = now + self.random_delay(params::CNF_MAX_DELAY);
        let mut txn = self.new_txn(params::CNF_TIMEOUT, params::CNF_MAX_RT, 0, at);
        txn.mrd_rel = Some(params::CNF_MAX_RD);
        self.phase = Phase::Confirming { txn, restart };
    }

    pub(super) fn start_info(&mut self, now: Instant) {
        let at = if self.first_info_sent {
            now
        } else {
            now + self.random_delay(params::INF_MAX_DELAY)
        };
        self.first_info_sent = true;
        let mrt = self.inf_max_rt;
        let txn = self.new_txn(params::INF_TIMEOUT, mrt, 0, at);
        self.phase = Phase::Informing(txn);
    }

    /// Emit `Lost` for the whole current lease, if any.
    pub(super) fn lose(&mut self, reason: LostReason) {
        if let Some(lease) = self.lease.take() {
            self.events.push_back(Event6::Lost { lease, reason });
        }
    }
}
