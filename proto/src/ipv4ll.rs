//! IPv4 link-local addresses (RFC 3927), sans-IO.
//!
//! The engine picks an address in 169.254.1.0 - 169.254.254.255 from the interface's
//! MAC (so a host comes back with the same address after a restart, RFC 3927 2.1),
//! probes for it with ARP, claims it with announcements and defends it. Time and every
//! ARP packet seen on the link come in as arguments; ARP packets to send and "configure
//! / unconfigure this address" come out of [`Ipv4Ll::poll_action`]. The driver owns the
//! socket, the clock and netlink.
//!
//! The timings are RFC 3927 section 9's constants, the randomness a seeded [`Rng`], so
//! each rule is a deterministic unit test.

use crate::time::{Instant, Rng};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Longest random wait before the first probe.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);
/// Probes sent for a candidate.
pub const PROBE_NUM: u8 = 3;
/// Shortest gap between probes.
pub const PROBE_MIN: Duration = Duration::from_secs(1);
/// Longest gap between probes.
pub const PROBE_MAX: Duration = Duration::from_secs(2);
/// After the last probe, how long a conflicting packet still counts before claiming.
pub const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);
/// Announcements sent once the address is claimed.
pub const ANNOUNCE_NUM: u8 = 2;
/// Between announcements.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
/// Conflicts after which new attempts are rate limited.
pub const MAX_CONFLICTS: u32 = 10;
/// At most one attempt this often once [`MAX_CONFLICTS`] is reached.
pub const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(60);
/// A second conflict within this time of defending gives the address up.
pub const DEFEND_INTERVAL: Duration = Duration::from_secs(10);

/// The cloud metadata address (AWS, GCP, Azure, OpenStack): never picked, so a host
/// that falls back to link-local does not hijack what its neighbours reach there.
const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

pub use crate::arp::Arp;

/// Why an address was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Another host uses it and a defence did not settle it (RFC 3927 2.5).
    Conflict,
    /// The driver stopped the engine (a DHCP lease arrived, netbond stops).
    Stopped,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Broadcast this ARP packet on the link.
    Send(Arp),
    /// Put the address on the interface (/16, link scope).
    Configure(Ipv4Addr),
    /// Remove the address from the interface.
    Unconfigure(Ipv4Addr, DropReason),
    /// The candidate was in use by another host: a new one is being probed.
    Conflict {
        /// The address given up (or never claimed).
        address: Ipv4Addr,
        /// The other host's MAC.
        mac: [u8; 6],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Probes sent so far; the next step is at `next` (a probe, or the claim once
    /// [`PROBE_NUM`] are out and [`ANNOUNCE_WAIT`] has passed).
    Probing {
        sent: u8,
        next: Instant,
    },
    /// Claimed; announcements sent so far.
    Announcing {
        sent: u8,
        next: Instant,
    },
    /// Claimed and announced.
    Bound,
    Stopped,
}

/// One interface's link-local address.
#[derive(Debug, Clone)]
pub struct Ipv4Ll {
    mac: [u8; 6],
    /// How many candidates were tried (the MAC-derived sequence's index).
    attempt: u32,
    candidate: Ipv4Addr,
    state: State,
    conflicts: u32,
    /// When the held address was last defended (RFC 3927 2.5).
    defended: Option<Instant>,
    rng: Rng,
    actions: VecDeque<Action>,
}

/// The `n`-th candidate address for `mac`: the same on every start, different for
/// different MACs, in 169.254.1.0 - 169.254.254.255 (RFC 3927 2.1).
pub fn candidate(mac: [u8; 6], n: u32) -> Ipv4Addr {
    // FNV-1a over the MAC and the attempt number, then a mixing step so neighbouring
    // MACs (a vendor's consecutive serial numbers) spread over the whole range.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in mac.iter().chain(n.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h;
    loop {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let k = (z % (254 * 256)) as u32;
        let a = Ipv4Addr::new(169, 254, 1 + (k / 256) as u8, (k % 256) as u8);
        if a != METADATA {
            return a;
        }
    }
}

impl Ipv4Ll {
    /// Start probing the MAC's first candidate at `now`; `seed` drives the random
    /// waits (the driver passes a random value, tests a fixed one).
    pub fn new(mac: [u8; 6], seed: u64, now: Instant) -> Self {
        let mut e = Ipv4Ll {
            mac,
            attempt: 0,
            candidate: candidate(mac, 0),
            state: State::Stopped,
            conflicts: 0,
            defended: None,
            rng: Rng::new(seed),
            actions: VecDeque::new(),
        };
        e.probe_from(now);
        e
    }

    fn jitter(&mut self, lo: Duration, hi: Duration) -> Duration {
        let ms = self
            .rng
            .range_i64(lo.as_millis() as i64, hi.as_millis() as i64);
        Duration::from_millis(ms as u64)
    }

    /// Start (again) with the current candidate: a random wait up to PROBE_WAIT, or
    /// RATE_LIMIT_INTERVAL once there were MAX_CONFLICTS conflicts.
    fn probe_from(&mut self, now: Instant) {
        let wait = if self.conflicts >= MAX_CONFLICTS {
            RATE_LIMIT_INTERVAL
        } else {
            self.jitter(Duration::ZERO, PROBE_WAIT)
        };
        self.state = State::Probing {
            sent: 0,
            next: now + wait,
        };
    }

    /// The address being probed for or held.
    pub fn address(&self) -> Ipv4Addr {
        self.candidate
    }

    /// The address is on the interface (announcing or bound).
    pub fn claimed(&self) -> bool {
        matches!(self.state, State::Announcing { .. } | State::Bound)
    }

    /// Conflicts so far.
    pub fn conflicts(&self) -> u32 {
        self.conflicts
    }

    /// A short state name for status.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Probing { .. } => "probing",
            State::Announcing { .. } => "announcing",
            State::Bound => "bound",
            State::Stopped => "stopped",
        }
    }

    /// When [`Ipv4Ll::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Probing { next, .. } | State::Announcing { next, .. } => Some(next),
            State::Bound | State::Stopped => None,
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Run what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.poll_timeout().filter(|t| *t <= now) {
            match self.state {
                State::Probing { sent, .. } if sent < PROBE_NUM => {
                    self.send(Arp::probe(self.mac, self.candidate));
                    let sent = sent + 1;
                    let gap = if sent < PROBE_NUM {
                        self.jitter(PROBE_MIN, PROBE_MAX)
                    } else {
                        ANNOUNCE_WAIT
                    };
                    self.state = State::Probing {
                        sent,
                        next: t + gap,
                    };
                }
                State::Probing { .. } => {
                    // No conflict through ANNOUNCE_WAIT after the last probe: claim it.
                    self.actions.push_back(Action::Configure(self.candidate));
                    self.send(Arp::announce(self.mac, self.candidate));
                    self.state = State::Announcing {
                        sent: 1,
                        next: t + ANNOUNCE_INTERVAL,
                    };
                }
                State::Announcing { sent, .. } => {
                    self.send(Arp::announce(self.mac, self.candidate));
                    let sent = sent + 1;
                    self.state = if sent < ANNOUNCE_NUM {
                        State::Announcing {
                            sent,
                            next: t + ANNOUNCE_INTERVAL,
                        }
                    } else {
                        State::Bound
                    };
                }
                State::Bound | State::Stopped => break,
            }
        }
    }

    fn send(&mut self, arp: Arp) {
        self.actions.push_back(Action::Send(arp));
    }

    /// An ARP packet seen on the link (any, including this host's own).
    pub fn handle_arp(&mut self, now: Instant, arp: &Arp) {
        if arp.sha == self.mac {
            return;
        }
        let claims = arp.spa == self.candidate;
        match self.state {
            State::Probing { .. } => {
                // RFC 3927 2.2.1: another host using the address, or probing for it
                // at the same time.
                let probes = arp.op == 1 && arp.spa.is_unspecified() && arp.tpa == self.candidate;
                if claims || probes {
                    self.next_candidate(now, arp.sha);
                }
            }
            State::Announcing { .. } | State::Bound if claims => {
                let recent = self
                    .defended
                    .is_some_and(|at| now.saturating_duration_since(at) < DEFEND_INTERVAL);
                if recent {
                    // A second conflict within DEFEND_INTERVAL: give it up (2.5 (b)).
                    self.actions
                        .push_back(Action::Unconfigure(self.candidate, DropReason::Conflict));
                    self.next_candidate(now, arp.sha);
                } else {
                    // Defend once with an announcement; the other host should back off.
                    self.defended = Some(now);
                    self.send(Arp::announce(self.mac, self.candidate));
                }
            }
            _ => {}
        }
    }

    fn next_candidate(&mut self, now: Instant, other: [u8; 6]) {
        self.actions.push_back(Action::Conflict {
            address: self.candidate,
            mac: other,
        });
        self.conflicts = self.conflicts.saturating_add(1);
        self.attempt = self.attempt.wrapping_add(1);
        self.candidate = candidate(self.mac, self.attempt);
        self.defended = None;
        self.probe_from(now);
    }

    /// Stop: the address (if claimed) is to be removed; nothing more is sent.
    pub fn stop(&mut self) {
        if self.claimed() {
            self.actions
                .push_back(Action::Unconfigure(self.candidate, DropReason::Stopped));
        }
        self.state = State::Stopped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x77, 0x10, 0, 0, 1];
    const OTHER: [u8; 6] = [0x02, 0x99, 0, 0, 0, 9];

    fn ms(t: Instant) -> u64 {
        t.as_millis()
    }

    /// Run timers up to `until`, returning each action with the time it came out.
    fn run(e: &mut Ipv4Ll, until: Instant) -> Vec<(u64, Action)> {
        let mut out = Vec::new();
        while let Some(t) = e.poll_timeout().filter(|t| *t <= until) {
            e.handle_timeout(t);
            while let Some(a) = e.poll_action() {
                out.push((ms(t), a));
            }
        }
        out
    }

    fn claimed_engine(seed: u64) -> (Ipv4Ll, Instant) {
        let mut e = Ipv4Ll::new(MAC, seed, Instant::ZERO);
        let done = Instant::from_secs(20);
        run(&mut e, done);
        assert_eq!(e.state_name(), "bound");
        (e, done)
    }

    fn reply_from_other(addr: Ipv4Addr) -> Arp {
        Arp {
            op: 2,
            sha: OTHER,
            spa: addr,
            tha: MAC,
            tpa: addr,
        }
    }

    #[test]
    fn candidates_are_stable_in_range_and_spread() {
        assert_eq!(
            candidate(MAC, 0),
            candidate(MAC, 0),
            "same MAC, same address"
        );
        assert_ne!(candidate(MAC, 0), candidate(MAC, 1));
        assert_ne!(candidate(MAC, 0), candidate(OTHER, 0));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..5000u32 {
            let mut m = MAC;
            m[4..].copy_from_slice(&(i as u16).to_be_bytes());
            let a = candidate(m, i % 3).octets();
            assert_eq!(a[..2], [169, 254]);
            assert!(
                (1..=254).contains(&a[2]),
                "{a:?} outside 169.254.1.0-169.254.254.255"
            );
            assert_ne!(Ipv4Addr::from(a), METADATA);
            seen.insert(a[2]);
        }
        // Consecutive MACs land all over the range, not in one /24.
        assert!(seen.len() > 200, "{}", seen.len());
    }

    #[test]
    fn probes_announcements_and_claim_follow_rfc3927_timings() {
        for seed in 1..50 {
            let mut e = Ipv4Ll::new(MAC, seed, Instant::ZERO);
            let a = e.address();
            let acts = run(&mut e, Instant::from_secs(30));
            let probes: Vec<u64> = acts
                .iter()
                .filter(|(_, x)| *x == Action::Send(Arp::probe(MAC, a)))
                .map(|(t, _)| *t)
                .collect();
            assert_eq!(probes.len(), PROBE_NUM as usize);
            assert!(
                probes[0] <= 1000,
                "first probe within PROBE_WAIT: {probes:?}"
            );
            for w in probes.windows(2) {
                assert!((1000..=2000).contains(&(w[1] - w[0])), "gap {probes:?}");
            }
            let claim = acts
                .iter()
                .find(|(_, x)| *x == Action::Configure(a))
                .map(|(t, _)| *t)
                .unwrap();
            assert_eq!(
                claim,
                probes[2] + 2000,
                "claimed ANNOUNCE_WAIT after the last probe"
            );
            let ann: Vec<u64> = acts
                .iter()
                .filter(|(_, x)| *x == Action::Send(Arp::announce(MAC, a)))
                .map(|(t, _)| *t)
                .collect();
            assert_eq!(
                ann,
                vec![claim, claim + 2000],
                "ANNOUNCE_NUM at ANNOUNCE_INTERVAL"
            );
            assert!(e.claimed());
            assert_eq!(e.poll_timeout(), None, "nothing more to send once bound");
        }
    }

    #[test]
    fn a_host_using_or_probing_for_the_candidate_makes_it_pick_another() {
        for other in [
            reply_from_other(candidate(MAC, 0)),
            Arp::probe(OTHER, candidate(MAC, 0)),
        ] {
            let mut e = Ipv4Ll::new(MAC, 7, Instant::ZERO);
            let first = e.address();
            run(&mut e, Instant::from_millis(2500));
            e.handle_arp(Instant::from_millis(2600), &other);
            assert_eq!(
                e.poll_action(),
                Some(Action::Conflict {
                    address: first,
                    mac: OTHER
                })
            );
            assert_eq!(e.address(), candidate(MAC, 1));
            assert_eq!(e.conflicts(), 1);
            // Probing starts over (PROBE_WAIT), and the new address is claimed.
            assert!(e.poll_timeout().unwrap() <= Instant::from_millis(3600));
            let acts = run(&mut e, Instant::from_secs(30));
            let claimed: Vec<&Action> = acts
                .iter()
                .map(|(_, x)| x)
                .filter(|x| matches!(x, Action::Configure(_)))
                .collect();
            assert_eq!(claimed, vec![&Action::Configure(candidate(MAC, 1))]);
            assert!(!acts.iter().any(|(_, x)| *x == Action::Configure(first)));
        }
    }

    #[test]
    fn own_packets_and_other_addresses_are_no_conflict() {
        let mut e = Ipv4Ll::new(MAC, 3, Instant::ZERO);
        let a = e.address();
        e.handle_arp(Instant::ZERO, &Arp::probe(MAC, a));
        e.handle_arp(Instant::ZERO, &Arp::announce(MAC, a));
        e.handle_arp(Instant::ZERO, &reply_from_other(candidate(MAC, 5)));
        // A request *for* the address from a host that has its own (an ARP lookup) is
        // not a probe: sender address set.
        e.handle_arp(
            Instant::ZERO,
            &Arp {
                spa: Ipv4Addr::new(169, 254, 3, 3),
                ..Arp::probe(OTHER, a)
            },
        );
        assert_eq!(e.poll_action(), None);
        assert_eq!(e.conflicts(), 0);
    }

    #[test]
    fn a_bound_address_is_defended_once_then_given_up_within_defend_interval() {
        let (mut e, t) = claimed_engine(11);
        let a = e.address();
        e.handle_arp(t, &reply_from_other(a));
        assert_eq!(e.poll_action(), Some(Action::Send(Arp::announce(MAC, a))));
        assert_eq!(e.poll_action(), None);
        assert!(e.claimed());
        // After DEFEND_INTERVAL a new conflict is defended again.
        let t2 = t + DEFEND_INTERVAL + Duration::from_millis(1);
        e.handle_arp(t2, &reply_from_other(a));
        assert_eq!(e.poll_action(), Some(Action::Send(Arp::announce(MAC, a))));
        // A second one within DEFEND_INTERVAL: the address is dropped, another probed.
        e.handle_arp(t2 + Duration::from_secs(3), &reply_from_other(a));
        assert_eq!(
            e.poll_action(),
            Some(Action::Unconfigure(a, DropReason::Conflict))
        );
        assert!(matches!(e.poll_action(), Some(Action::Conflict { .. })));
        assert!(!e.claimed());
        assert_eq!(e.state_name(), "probing");
        assert_ne!(e.address(), a);
        // A probe for the held address is answered by the kernel, not a conflict.
        let (mut e, t) = claimed_engine(12);
        e.handle_arp(t, &Arp::probe(OTHER, e.address()));
        assert_eq!(e.poll_action(), None);
    }

    #[test]
    fn attempts_are_rate_limited_after_max_conflicts() {
        let mut e = Ipv4Ll::new(MAC, 5, Instant::ZERO);
        let mut now = Instant::ZERO;
        for i in 0..MAX_CONFLICTS {
            now += Duration::from_millis(100);
            e.handle_arp(now, &reply_from_other(e.address()));
            while e.poll_action().is_some() {}
            let wait = e.poll_timeout().unwrap() - now;
            if i + 1 < MAX_CONFLICTS {
                assert!(wait <= PROBE_WAIT, "conflict {i}: {wait:?}");
            } else {
                assert_eq!(wait, RATE_LIMIT_INTERVAL, "conflict {i}");
            }
        }
        assert_eq!(e.conflicts(), MAX_CONFLICTS);
    }

    #[test]
    fn stop_unconfigures_only_a_claimed_address() {
        let mut e = Ipv4Ll::new(MAC, 1, Instant::ZERO);
        run(&mut e, Instant::from_millis(500));
        while e.poll_action().is_some() {}
        e.stop();
        assert_eq!(e.poll_action(), None);
        assert_eq!(e.poll_timeout(), None);
        let (mut e, _) = claimed_engine(2);
        e.stop();
        assert_eq!(
            e.poll_action(),
            Some(Action::Unconfigure(e.address(), DropReason::Stopped))
        );
        assert_eq!(e.state_name(), "stopped");
    }

    proptest::proptest! {
        /// Any ARP traffic at any times: no panic, the address always in the range,
        /// never two claims without an unconfigure between them, and a timer that
        /// never lies in the past (no tight loop).
        #[test]
        fn any_arp_traffic_keeps_the_engine_sane(
            seed: u64,
            steps in proptest::collection::vec(
                (0u64..3000, 0u16..3, proptest::bool::ANY, 0u8..4), 0..200),
        ) {
            let mut e = Ipv4Ll::new(MAC, seed, Instant::ZERO);
            let mut now = Instant::ZERO;
            let mut held: Option<Ipv4Addr> = None;
            for (dt, op, other, which) in steps {
                now += Duration::from_millis(dt);
                let target = match which {
                    0 => e.address(),
                    1 => Ipv4Addr::UNSPECIFIED,
                    _ => candidate(OTHER, u32::from(which)),
                };
                let arp = Arp {
                    op,
                    sha: if other { OTHER } else { MAC },
                    spa: if op == 2 { target } else { Ipv4Addr::UNSPECIFIED },
                    tha: [0; 6],
                    tpa: e.address(),
                };
                e.handle_arp(now, &arp);
                e.handle_timeout(now);
                if let Some(t) = e.poll_timeout() {
                    proptest::prop_assert!(t > now);
                }
                while let Some(a) = e.poll_action() {
                    match a {
                        Action::Configure(x) => {
                            proptest::prop_assert_eq!(held, None);
                            held = Some(x);
                        }
                        Action::Unconfigure(x, _) => {
                            proptest::prop_assert_eq!(held, Some(x));
                            held = None;
                        }
                        _ => {}
                    }
                }
                let o = e.address().octets();
                proptest::prop_assert!(o[0] == 169 && o[1] == 254 && (1..=254).contains(&o[2]));
            }
        }
    }
}
