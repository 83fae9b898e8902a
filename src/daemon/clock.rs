//! The bridge between the OS clocks and the engines' [`Instant`].
//!
//! Timers run on the monotonic clock (a wall-clock jump must not expire or extend a
//! lease). Wall time is used only to persist when a lease was acquired, so that a
//! restarted daemon can rebase the saved lease onto its new monotonic timeline.
//!
//! The engine origin is placed [`ORIGIN_OFFSET`] before this process started, so that a
//! saved lease acquired before the restart still has a non-negative engine time.

use netbond_proto::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far back the engine timeline reaches before the process started (400 days:
/// longer than any finite lease worth restoring).
pub const ORIGIN_OFFSET: Duration = Duration::from_secs(400 * 24 * 3600);

/// Maps tokio/std monotonic time to engine time and back.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock whose engine time now is [`ORIGIN_OFFSET`].
    pub fn new() -> Self {
        Clock {
            start: tokio::time::Instant::now(),
        }
    }

    /// Engine time now.
    pub fn now(&self) -> Instant {
        self.engine_time(tokio::time::Instant::now())
    }

    /// Engine time of a tokio instant.
    pub fn engine_time(&self, t: tokio::time::Instant) -> Instant {
        Instant::ZERO + ORIGIN_OFFSET + t.saturating_duration_since(self.start)
    }

    /// The tokio instant of an engine deadline (used to sleep until it).
    pub fn tokio_instant(&self, t: Instant) -> tokio::time::Instant {
        let since_origin = t - Instant::ZERO;
        match since_origin.checked_sub(ORIGIN_OFFSET) {
            Some(d) => self.start + d.min(Duration::from_secs(100 * 365 * 24 * 3600)),
            None => self.start,
        }
    }

    /// Seconds since the Unix epoch of an engine instant (for the lease store).
    pub fn unix_time(&self, t: Instant) -> u64 {
        let now_engine = self.now();
        let now_unix = unix_now();
        if t <= now_engine {
            now_unix.saturating_sub((now_engine - t).as_secs())
        } else {
            now_unix.saturating_add((t - now_engine).as_secs())
        }
    }

    /// The engine instant of a Unix time, clamped to the engine origin.
    pub fn engine_from_unix(&self, unix: u64) -> Instant {
        let now_engine = self.now();
        let now_unix = unix_now();
        if unix <= now_unix {
            let ago = Duration::from_secs(now_unix - unix);
            let since = now_engine - Instant::ZERO;
            Instant::ZERO + since.saturating_sub(ago)
        } else {
            now_engine + Duration::from_secs(unix - now_unix)
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall-clock seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn unix_round_trip_and_past_leases_are_representable() {
        let c = Clock::new();
        let now = c.now();
        let u = c.unix_time(now);
        assert!(u.abs_diff(unix_now()) <= 1);
        let hour_ago = c.engine_from_unix(unix_now() - 3600);
        let d = now - hour_ago;
        assert!((3599..=3601).contains(&d.as_secs()));
        // Older than the offset clamps to the origin instead of wrapping.
        assert_eq!(c.engine_from_unix(0), Instant::ZERO);
        assert!(c.tokio_instant(now) <= tokio::time::Instant::now());
    }
}
