//! The pause after exchanges that end without a lease, shared by both engines.
//!
//! RFC 2131 restarts at once after a DHCPNAK and RFC 8415 solicits again at once after
//! NoAddrsAvail; a server that refuses every time would then make a client loop as
//! fast as the link allows. Every exchange that ends without a lease counts as a
//! failure; the next one starts after [`failure_backoff`] (shortened by jitter), and
//! the servers involved are avoided while another answers.

use crate::time::{Instant, Rng};
use core::time::Duration;

/// The longest pause between two exchanges that ended without a lease.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(64);
/// A lease kept at least this long ends a run of failures: the next failure starts the
/// backoff from zero again. A lease lost sooner (declined after the conflict check,
/// NAKed at the first renewal) counts as one more failure, so a server that ACKs and
/// then NAKs, or keeps offering an address in use, cannot make a loop either.
pub const FAILURE_RESET_AFTER: Duration = Duration::from_secs(64);
/// At most this many servers are remembered as having failed us.
const MAX_AVOIDED: usize = 8;

/// The pause before the next DISCOVER/Solicit after `failures` consecutive exchanges
/// that ended without a lease, before jitter: 0 after the first (the RFCs restart at
/// once), then 2, 4, 8, 16, 32, 64 s, and 64 s from then on. In the steady state that
/// is one exchange a minute.
pub fn failure_backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let secs = 1u64 << (failures - 1).min(6);
    Duration::from_secs(secs).min(MAX_FAILURE_BACKOFF)
}

/// A run of failed exchanges and the servers involved (`S`: an IPv4 server id, a
/// DHCPv6 server DUID).
#[derive(Debug, Clone)]
pub struct Failures<S> {
    count: u32,
    avoided: Vec<S>,
    /// When the current lease was bound (for [`FAILURE_RESET_AFTER`]).
    bound_at: Option<Instant>,
}

impl<S: PartialEq> Default for Failures<S> {
    fn default() -> Self {
        Failures {
            count: 0,
            avoided: Vec::new(),
            bound_at: None,
        }
    }
}

impl<S: PartialEq> Failures<S> {
    /// Consecutive exchanges that ended without a lease.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether `server` failed us during the current run of failures.
    pub fn avoids(&self, server: &S) -> bool {
        self.avoided.contains(server)
    }

    /// A lease was bound at `now`: a new one (`fresh`) restarts the clock that ends the
    /// run of failures; a renewal keeps the clock of the lease it renews.
    pub fn bound(&mut self, now: Instant, fresh: bool) {
        if fresh || self.bound_at.is_none() {
            self.bound_at = Some(now);
        }
    }

    /// One more exchange ended without a lease, caused by `server`: count it, remember
    /// the server, and return the run's length and the wait before the next exchange
    /// (the backoff shortened by up to a quarter, so clients refused together drift
    /// apart).
    pub fn fail(&mut self, now: Instant, server: Option<S>, rng: &mut Rng) -> (u32, Duration) {
        if self
            .bound_at
            .take()
            .is_some_and(|t| now - t >= FAILURE_RESET_AFTER)
        {
            self.count = 0;
            self.avoided.clear();
        }
        self.count = self.count.saturating_add(1);
        if let Some(s) = server {
            if !self.avoided.contains(&s) {
                if self.avoided.len() >= MAX_AVOIDED {
                    self.avoided.remove(0);
                }
                self.avoided.push(s);
            }
        }
        let ms = u64::try_from(failure_backoff(self.count).as_millis()).unwrap_or(u64::MAX);
        let cut = rng.range_i64(0, (ms / 4) as i64).max(0) as u64;
        (self.count, Duration::from_millis(ms - cut))
    }
}
