//! The values the DHCPv6 engine hands to its caller: leases, stateless configuration,
//! events and packets, and the lifetime arithmetic on leases.

use super::wire;
use super::{MessageType, INFINITY};
use crate::time::Instant;
use std::net::Ipv6Addr;
use std::time::Duration;

/// A leased address. Lifetimes are seconds from [`Lease6::acquired`]; `u32::MAX` = infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Addr6 {
    /// The address (a /128; the on-link prefix comes from RAs).
    pub addr: Ipv6Addr,
    /// Preferred lifetime, seconds.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "preferred_secs", alias = "preferred")
    )]
    pub preferred: u32,
    /// Valid lifetime, seconds.
    #[cfg_attr(feature = "serde", serde(rename = "valid_secs", alias = "valid"))]
    pub valid: u32,
}

/// A delegated prefix. Lifetimes are seconds from [`Lease6::acquired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Prefix6 {
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Prefix length.
    pub len: u8,
    /// Preferred lifetime, seconds.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "preferred_secs", alias = "preferred")
    )]
    pub preferred: u32,
    /// Valid lifetime, seconds.
    #[cfg_attr(feature = "serde", serde(rename = "valid_secs", alias = "valid"))]
    pub valid: u32,
}

/// Everything bound by a stateful exchange.
///
/// With the `serde` feature this is the daemon's lease file shape (lifetimes as
/// `preferred_secs`/`valid_secs`, the server DUID as colon-separated hex); the older
/// names and the list-of-numbers DUID are still read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease6 {
    /// DUID of the server that granted (or last extended) the lease.
    #[cfg_attr(feature = "serde", serde(with = "crate::duid::hex_serde"))]
    pub server_id: Vec<u8>,
    /// Addresses from the IA_NA.
    pub addresses: Vec<Addr6>,
    /// Prefixes from the IA_PD.
    pub prefixes: Vec<Prefix6>,
    /// Effective T1, seconds after `acquired` (`u32::MAX` = never renew).
    pub t1: u32,
    /// Effective T2, seconds after `acquired` (`u32::MAX` = never rebind).
    pub t2: u32,
    /// Recursive DNS servers.
    pub dns: Vec<Ipv6Addr>,
    /// Search domains.
    pub domains: Vec<String>,
    /// NTP (and SNTP) servers.
    pub ntp: Vec<Ipv6Addr>,
    /// RFC 8910 captive portal URI (option 103), checked. Defaulted so lease files
    /// written before this field existed still load.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub captive_portal: Option<String>,
    /// When the Reply that set these lifetimes arrived, on the engine timeline. A caller
    /// persisting the lease across restarts must rebase it onto the new timeline (lease
    /// files without it read as the origin).
    #[cfg_attr(feature = "serde", serde(default))]
    pub acquired: Instant,
}

impl Lease6 {
    pub(super) fn secs_since(&self, now: Instant) -> u64 {
        (now - self.acquired).as_secs()
    }

    fn at(&self, secs: u32) -> Option<Instant> {
        (secs != INFINITY).then(|| self.acquired + Duration::from_secs(u64::from(secs)))
    }

    /// When the last valid lifetime ends (`None` = never, or nothing leased).
    pub fn expires_at(&self) -> Option<Instant> {
        let valids = self
            .addresses
            .iter()
            .map(|a| a.valid)
            .chain(self.prefixes.iter().map(|p| p.valid));
        let max = valids.max()?;
        self.at(max)
    }

    /// When the client will send Renew (`None` = never).
    pub fn renew_at(&self) -> Option<Instant> {
        self.at(self.t1)
    }

    /// When the client will send Rebind (`None` = never).
    pub fn rebind_at(&self) -> Option<Instant> {
        self.at(self.t2)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.prefixes.is_empty()
    }
}

/// Configuration from a stateless (Information-request) exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InfoData {
    /// Recursive DNS servers.
    pub dns: Vec<Ipv6Addr>,
    /// Search domains.
    pub domains: Vec<String>,
    /// NTP (and SNTP) servers.
    pub ntp: Vec<Ipv6Addr>,
    /// RFC 8910 captive portal URI (option 103), checked.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub captive_portal: Option<String>,
    /// Seconds until the client asks again (`u32::MAX` = never); at least 600.
    pub refresh: u32,
    /// When the Reply arrived.
    pub received: Instant,
}

/// Why a lease (or part of one) is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LostReason {
    /// All valid lifetimes ran out without a successful Renew or Rebind.
    Expired,
    /// A server said the addresses are not on this link (Confirm, Renew or Rebind).
    NotOnLink,
    /// The server extended nothing (all lifetimes zero or every IA refused).
    Refused,
    /// The caller reported a duplicate address; it was declined.
    Declined,
    /// The caller released the lease.
    Released,
    /// The caller stopped the client.
    Stopped,
}

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event6 {
    /// A new lease: install its addresses and prefixes.
    Bound(Lease6),
    /// The lease was extended or confirmed: replace the installed lease in place.
    Renewed(Lease6),
    /// Remove these addresses/prefixes.
    Lost {
        /// What to remove.
        lease: Lease6,
        /// Why.
        reason: LostReason,
    },
    /// Stateless configuration (DNS, domains, NTP, refresh time).
    Info(InfoData),
    /// A received message was ignored, or a caller request could not be honoured; log it.
    Dropped(&'static str),
    /// A stateful exchange ended without a lease; the next Solicit goes out after
    /// `wait`. One event per failure, never per packet. Informational.
    Backoff {
        /// Consecutive failures so far, this one included.
        failures: u32,
        /// How long until the next Solicit (0 after the first failure).
        wait: Duration,
        /// What ended the exchange.
        reason: &'static str,
    },
}

/// A message to send from port 546 to `dst` port 547.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit6 {
    /// The DHCPv6 message.
    pub payload: Vec<u8>,
    /// Destination: always [`ALL_DHCP_SERVERS`].
    pub dst: Ipv6Addr,
    /// The message type, for logging.
    pub msg_type: MessageType,
}

/// Keep addresses/prefixes of `old` that `new` does not mention, with their remaining
/// lifetimes (RFC 8415 18.2.10.1: the client keeps using them until they expire).
/// Entries the server listed with a zero valid lifetime stay removed.
pub(super) fn merge_remaining(
    new: &mut Lease6,
    old: &Lease6,
    withdrawn: &[Ipv6Addr],
    withdrawn_prefixes: &[(Ipv6Addr, u8)],
    now: Instant,
) {
    let age = u32::try_from(old.secs_since(now)).unwrap_or(u32::MAX);
    let left = |v: u32| {
        if v == INFINITY {
            v
        } else {
            v.saturating_sub(age)
        }
    };
    for a in &old.addresses {
        if new.addresses.iter().any(|n| n.addr == a.addr)
            || withdrawn.contains(&a.addr)
            || new.addresses.len() >= wire::MAX_ADDRS_PER_IA
        {
            continue;
        }
        if left(a.valid) > 0 {
            new.addresses.push(Addr6 {
                addr: a.addr,
                preferred: left(a.preferred),
                valid: left(a.valid),
            });
        }
    }
    for p in &old.prefixes {
        if new
            .prefixes
            .iter()
            .any(|n| n.prefix == p.prefix && n.len == p.len)
            || withdrawn_prefixes.contains(&(p.prefix, p.len))
            || new.prefixes.len() >= wire::MAX_ADDRS_PER_IA
        {
            continue;
        }
        if left(p.valid) > 0 {
            new.prefixes.push(Prefix6 {
                preferred: left(p.preferred),
                valid: left(p.valid),
                ..*p
            });
        }
    }
}

/// Set the effective T1/T2 of a lease (RFC 8415 sections 14.2, 18.2.4, 21.4).
///
/// Server values of zero leave the choice to the client: T1 = 0.5 and T2 = 0.8 times
/// the shortest preferred lifetime. IAs with T1 > T2 (both non-zero) never get here:
/// they are discarded while parsing, as the RFC requires. A remaining T1 > T2 (one
/// given, the other derived) is repaired by lowering T1 to T2.
pub(super) fn finalize(mut lease: Lease6, t1: u32, t2: u32) -> Lease6 {
    let shortest = lease
        .addresses
        .iter()
        .map(|a| a.preferred)
        .chain(lease.prefixes.iter().map(|p| p.preferred))
        .min()
        .unwrap_or(0);
    let frac = |num: u64, den: u64| {
        if shortest == INFINITY {
            INFINITY
        } else {
            u32::try_from(u64::from(shortest) * num / den).unwrap_or(INFINITY)
        }
    };
    let t1 = if t1 == 0 { frac(1, 2) } else { t1 };
    let t2 = if t2 == 0 { frac(4, 5) } else { t2 };
    lease.t1 = t1.min(t2);
    lease.t2 = t2;
    lease
}
