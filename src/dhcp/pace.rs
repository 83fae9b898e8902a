//! Start pacing for many interfaces: a window of exchanges in flight that adapts to
//! how the server answers (additive increase, multiplicative decrease).
//!
//! Hundreds of interfaces starting at once would send their first DISCOVERs in one
//! burst; a server's socket holds only so many (dnsmasq drops what does not fit) and
//! every dropped one costs its interface the 4 s of the first retransmission. A fixed
//! spacing between starts wastes time when the server is fast and still overflows a
//! slow one. Instead each interface takes a slot before it starts and gives it back
//! when its first exchange ends:
//!
//! - with a lease: the window grows by one (so it doubles per round trip while every
//!   exchange succeeds, as TCP's slow start does) and the round-trip estimate is
//!   updated;
//! - with no lease after the loss timeout (a few round trips, at most 3 s): the
//!   exchange counts as lost, its slot is freed at once (a lost exchange never holds
//!   its slot for the 4 s retransmission) and the window is halved, at most once per
//!   loss timeout so that one overflow is not counted many times.
//!
//! The window starts at [`INITIAL`], so up to 16 interfaces start at once with no
//! wait; slots are granted in the order asked (the configured order).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Exchanges in flight at the start.
pub const INITIAL: f64 = 16.0;
/// The window never shrinks below this.
pub const MIN: f64 = 4.0;
/// Nor grows beyond this.
pub const MAX: f64 = 4096.0;
/// Bounds of the loss timeout. The upper one stays under the engine's first
/// retransmission (4 s) but well above 1 s: with ~1000 interfaces the round trips are
/// long because this process is busy, not because the server lost anything, and a
/// 1 s cap counted those as losses (measured at N = 1024: 28 false losses, the window
/// cut from 1040 to 79, all leased after 83 s instead of ~20 s).
const RTO_MIN: Duration = Duration::from_millis(150);
const RTO_MAX: Duration = Duration::from_secs(3);
/// The loss timeout before any round trip was measured.
const RTO_FIRST: Duration = Duration::from_secs(1);

/// The shared window.
pub struct Pacer {
    st: Mutex<State>,
}

struct State {
    window: f64,
    inflight: usize,
    waiters: VecDeque<oneshot::Sender<()>>,
    /// Smoothed time from a slot's grant to its lease.
    srtt: Option<Duration>,
    last_cut: Option<Instant>,
    stats: PaceStats,
}

/// What the pacer has seen, for `netbond status`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PaceStats {
    /// Exchanges that ended with a lease within the loss timeout.
    pub ok: u64,
    /// Exchanges counted as lost.
    pub lost: u64,
    /// The window now.
    pub window: f64,
    /// The largest window reached.
    pub max_window: f64,
}

impl Pacer {
    /// A pacer with the initial window.
    pub fn new() -> Arc<Self> {
        Arc::new(Pacer {
            st: Mutex::new(State {
                window: INITIAL,
                inflight: 0,
                waiters: VecDeque::new(),
                srtt: None,
                last_cut: None,
                stats: PaceStats {
                    window: INITIAL,
                    max_window: INITIAL,
                    ..PaceStats::default()
                },
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a slot (in the order asked).
    pub async fn acquire(self: Arc<Self>) -> Permit {
        let wait = {
            let mut st = self.lock();
            if st.waiters.is_empty() && (st.inflight as f64) < st.window {
                st.inflight += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                st.waiters.push_back(tx);
                Some(rx)
            }
        };
        if let Some(rx) = wait {
            // The granter counted the slot as ours before sending.
            let _ = rx.await;
        }
        let rto = self.rto();
        Permit {
            pacer: self,
            since: Instant::now(),
            rto,
            done: false,
        }
    }

    /// The loss timeout: a few smoothed round trips, within bounds.
    fn rto(&self) -> Duration {
        let st = self.lock();
        let base = st
            .srtt
            .map_or(RTO_FIRST, |s| s * 3 + Duration::from_millis(50));
        base.clamp(RTO_MIN, RTO_MAX)
    }

    fn finish(&self, since: Instant, outcome: Outcome) {
        let mut st = self.lock();
        st.inflight = st.inflight.saturating_sub(1);
        match outcome {
            Outcome::Lease => {
                let rtt = since.elapsed();
                st.srtt = Some(match st.srtt {
                    Some(s) => (s * 7 + rtt) / 8,
                    None => rtt,
                });
                st.window = (st.window + 1.0).min(MAX);
                st.stats.ok += 1;
            }
            Outcome::Lost(rto) => {
                st.stats.lost += 1;
                if st.last_cut.is_none_or(|t| t.elapsed() >= rto) {
                    st.window = (st.window / 2.0).max(MIN);
                    st.last_cut = Some(Instant::now());
                }
            }
            Outcome::Abandoned => {}
        }
        st.stats.window = st.window;
        st.stats.max_window = st.stats.max_window.max(st.window);
        while (st.inflight as f64) < st.window {
            let Some(tx) = st.waiters.pop_front() else {
                break;
            };
            st.inflight += 1;
            if tx.send(()).is_err() {
                // That task is gone: the slot is still free.
                st.inflight -= 1;
            }
        }
    }

    /// Whether some interface is still waiting for a slot or in its first exchange.
    pub fn busy(&self) -> bool {
        let st = self.lock();
        st.inflight > 0 || !st.waiters.is_empty()
    }

    /// Counters for `netbond status`.
    pub fn stats(&self) -> PaceStats {
        self.lock().stats
    }
}

enum Outcome {
    Lease,
    Lost(Duration),
    Abandoned,
}

/// One interface's slot; given back with [`Permit::leased`] or [`Permit::lost`] (or
/// by dropping it, which does not change the window).
pub struct Permit {
    pacer: Arc<Pacer>,
    since: Instant,
    rto: Duration,
    done: bool,
}

impl Permit {
    /// When the exchange counts as lost if it has not ended.
    pub fn deadline(&self) -> Instant {
        self.since + self.rto
    }

    /// The exchange ended with a lease.
    pub fn leased(mut self) {
        self.done = true;
        self.pacer.finish(self.since, Outcome::Lease);
    }

    /// No lease by the deadline.
    pub fn lost(mut self) {
        self.done = true;
        self.pacer.finish(self.since, Outcome::Lost(self.rto));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.pacer.finish(self.since, Outcome::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn sixteen_at_once_then_grows_and_halves_on_loss() {
        let p = Pacer::new();
        let mut held: Vec<Permit> = (0..16)
            .map(|_| p.clone().acquire().now_or_never().expect("no wait"))
            .collect();
        // The 17th waits, and is granted when a slot is freed with a lease, along
        // with one more (the window grew to 17).
        let mut w17 = Box::pin(p.clone().acquire());
        let mut w18 = Box::pin(p.clone().acquire());
        let mut w19 = Box::pin(p.clone().acquire());
        assert!(w17.as_mut().now_or_never().is_none());
        held.pop().unwrap().leased();
        assert_eq!(p.stats().window, 17.0);
        held.push(w17.as_mut().now_or_never().expect("granted"));
        held.push(w18.as_mut().now_or_never().expect("granted"));
        assert!(w19.as_mut().now_or_never().is_none(), "17 in flight");
        // A loss frees its slot but halves the window: nobody new starts until
        // fewer than 8 are in flight.
        held.pop().unwrap().lost();
        assert_eq!(p.stats().window, 8.5);
        assert!(w19.as_mut().now_or_never().is_none());
        // A second loss right after is the same overflow: not halved again.
        held.pop().unwrap().lost();
        assert_eq!(p.stats().window, 8.5);
        while held.len() > 8 {
            drop(held.pop());
        }
        assert!(w19.as_mut().now_or_never().is_some(), "8 in flight < 8.5");
        let st = p.stats();
        assert_eq!((st.ok, st.lost, st.max_window), (1, 2, 17.0));
        assert!(p.busy());
        drop(held);
        drop(w19);
        assert!(!p.busy(), "nobody in flight or waiting");
    }

    #[test]
    fn never_below_the_minimum_and_a_dropped_waiter_frees_its_slot() {
        let p = Pacer::new();
        for _ in 0..20 {
            let k = p.clone().acquire().now_or_never().unwrap();
            {
                // Force a cut each time (no "same overflow" grace in this test).
                p.lock().last_cut = None;
            }
            k.lost();
        }
        assert_eq!(p.stats().window, MIN);
        let held: Vec<Permit> = (0..4)
            .map(|_| p.clone().acquire().now_or_never().unwrap())
            .collect();
        let mut gone = Box::pin(p.clone().acquire());
        assert!(gone.as_mut().now_or_never().is_none());
        drop(gone);
        let mut next = Box::pin(p.clone().acquire());
        drop(held);
        assert!(next.as_mut().now_or_never().is_some());
    }
}
