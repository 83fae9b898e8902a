//! The DHCPv4 engine's clock: when it next needs waking, what is due at a given
//! instant (T1, T2, expiry, give-up times), and the retransmission schedules.

use super::{Client, Event4, Exchange, Lease4, LostReason, Phase, MIN_RENEW_RETRY, MIN_T1_SECS};
use crate::time::Instant;
use core::time::Duration;

impl Client {
    /// See [`crate::Engine::poll_timeout`]: an idle bound client with an infinite
    /// lease has no timer at all.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        if !self.oneshot.is_empty() {
            return Some(Instant::ZERO);
        }
        let expiry = self.lease.as_ref().and_then(Lease4::expires_at);
        let ex_tx = |ex: &Exchange| if self.link_up { Some(ex.next_tx) } else { None };
        let state_t = match &self.phase {
            Phase::Init(at) => self.link_up.then_some(*at),
            Phase::Selecting(ex) | Phase::Requesting(ex, _) => {
                let give_up = match (self.config.timeout, self.acquiring_since) {
                    (Some(t), Some(s)) => Some(s + t),
                    _ => None,
                };
                min_opt(ex_tx(ex), give_up)
            }
            Phase::Bound => self.lease.as_ref().and_then(Lease4::renew_at),
            Phase::Renewing(ex) => {
                min_opt(ex_tx(ex), self.lease.as_ref().and_then(Lease4::rebind_at))
            }
            Phase::Rebinding(ex) => ex_tx(ex),
            Phase::Rebooting(ex) => min_opt(ex_tx(ex), Some(ex.started + self.config.reboot)),
            Phase::Reconfirming(ex) => {
                min_opt(ex_tx(ex), self.lease.as_ref().and_then(Lease4::rebind_at))
            }
            Phase::Stopped => None,
            Phase::Ipv6Only(until) => self.link_up.then_some(*until),
        };
        min_opt(state_t, expiry)
    }

    /// Run the timers that are due at `now` (expiry, T1, T2, give-up times) without
    /// sending.
    pub(super) fn run_timers(&mut self, now: Instant) {
        if let Some(exp) = self.lease.as_ref().and_then(Lease4::expires_at) {
            if now >= exp {
                self.lose(LostReason::Expired);
                if !matches!(
                    self.phase,
                    Phase::Stopped | Phase::Selecting(_) | Phase::Requesting(..)
                ) {
                    self.start_discover(now);
                }
            }
        }
        let renew_at = self.lease.as_ref().and_then(Lease4::renew_at);
        let rebind_at = self.lease.as_ref().and_then(Lease4::rebind_at);
        match &mut self.phase {
            Phase::Init(at) | Phase::Ipv6Only(at) if now >= *at && self.link_up => {
                self.start_discover(now)
            }
            Phase::Bound if renew_at.is_some_and(|t| now >= t) => {
                let ex = self.new_exchange(now);
                self.phase = Phase::Renewing(ex);
                self.run_timers(now);
            }
            Phase::Renewing(_) if rebind_at.is_some_and(|t| now >= t) => {
                let ex = self.new_exchange(now);
                self.phase = Phase::Rebinding(ex);
            }
            // A re-confirmation begun before T2 hands over to REBINDING at T2; one begun
            // after T2 keeps asking for the address INIT-REBOOT style until expiry.
            Phase::Reconfirming(ex) if rebind_at.is_some_and(|t| now >= t && ex.started < t) => {
                let ex = self.new_exchange(now);
                self.phase = Phase::Rebinding(ex);
            }
            Phase::Rebooting(ex) if now >= ex.started + self.config.reboot => {
                // No answer to INIT-REBOOT: look for any server. The saved lease stays
                // configured until it expires (RFC 2131 3.2 allows using it meanwhile).
                self.start_discover(now);
            }
            Phase::Selecting(_) | Phase::Requesting(..) => {
                if let (Some(t), Some(since)) = (self.config.timeout, self.acquiring_since) {
                    if now >= since + t {
                        self.events.push_back(Event4::Timeout);
                        self.acquiring_since = None;
                        self.phase = Phase::Init(now + self.config.retry);
                    }
                }
            }
            _ => {}
        }
    }
}

/// RFC 2131 4.1: 4, 8, 16, 32, 64 s, each randomised by -1..+1 s.
pub(super) fn schedule_backoff(
    ex: &mut Exchange,
    now: Instant,
    initial: Duration,
    max: Duration,
    jitter_ms: i64,
) {
    let base = if ex.attempts == 0 {
        initial
    } else {
        (ex.interval * 2).min(max)
    };
    ex.interval = base;
    let ms = i64::try_from(base.as_millis()).unwrap_or(i64::MAX);
    let wait = (ms + jitter_ms).max(500) as u64;
    ex.next_tx = now + Duration::from_millis(wait);
}

/// RFC 2131 4.4.5: wait half the time left until `until`, but at least 60 s.
pub(super) fn schedule_half_remaining(ex: &mut Exchange, now: Instant, until: Option<Instant>) {
    let half = until.map(|u| (u - now) / 2).unwrap_or(MIN_RENEW_RETRY);
    ex.next_tx = now + half.max(MIN_RENEW_RETRY);
}

/// T1 and T2 from options 58/59, defaulting to 0.5 and 0.875 of the lease and repaired
/// so that 0 < T1 < T2 < lease. T1 is also kept at or above [`MIN_T1_SECS`] (or half
/// the lease when that is shorter), so a server cannot make the client renew every
/// second.
pub fn repair_timers(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    let def_t1 = lease / 2;
    let def_t2 = (u64::from(lease) * 7 / 8) as u32;
    let floor = MIN_T1_SECS.min(def_t1).max(1);
    let t2 = match t2 {
        Some(t) if t > floor && t < lease => t,
        _ => def_t2,
    };
    let t1 = match t1 {
        Some(t) if t >= floor && t < t2 => t,
        Some(t) if t > 0 && t < floor && floor < t2 => floor,
        _ if def_t1 < t2 => def_t1,
        _ => ((u64::from(t2) * 4 / 7) as u32).max(1),
    };
    (t1, t2)
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
