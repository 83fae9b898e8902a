//! The values the DHCPv4 engine hands to its caller: leases, packets, events.

use crate::time::Instant;
use core::time::Duration;
use std::net::Ipv4Addr;

/// A classless static route from option 121 (RFC 3442).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Route4 {
    /// Destination network (host bits zero).
    pub dest: Ipv4Addr,
    /// Destination prefix length, 0..=32.
    pub prefix_len: u8,
    /// Next hop; `0.0.0.0` means the destination is on-link.
    pub gateway: Ipv4Addr,
}

/// Everything the server granted, as a plain value the drivers apply and persist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease4 {
    /// Our address (yiaddr).
    pub address: Ipv4Addr,
    /// Subnet prefix length from option 1 (a contiguous mask), or 32 when the server sent
    /// no mask (never a classful guess; see [`super::reply::effective_prefix`]).
    pub prefix_len: u8,
    /// The server identifier (option 54).
    pub server: Ipv4Addr,
    /// Routers (option 3), in server order.
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Domain name (option 15), validated per RFC 1035.
    pub domain: Option<String>,
    /// Domain search list (option 119), validated per RFC 1035.
    pub search: Vec<String>,
    /// Host name (option 12), validated per RFC 1035.
    pub hostname: Option<String>,
    /// Interface MTU (option 26), only values 68..=65535.
    pub mtu: Option<u16>,
    /// NTP servers (option 42).
    pub ntp: Vec<Ipv4Addr>,
    /// Classless static routes (option 121). When present, option 3 routers are not
    /// used for the default route (RFC 3442 section 3).
    pub routes: Vec<Route4>,
    /// Static routes (option 33, RFC 2132 section 5.8): host or classful network routes
    /// via a gateway. Empty when option 121 was present (RFC 3442 section 3: a client
    /// that receives 121 ignores 33). Defaulted so lease files written before this field
    /// existed still load.
    #[cfg_attr(feature = "serde", serde(default))]
    pub static_routes: Vec<Route4>,
    /// Lease time in seconds (option 51); `None` is an infinite lease (0xffffffff).
    pub lease_secs: Option<u32>,
    /// Renewal time T1 in seconds, after repair.
    pub t1_secs: u32,
    /// Rebinding time T2 in seconds, after repair.
    pub t2_secs: u32,
    /// Engine time at which the REQUEST that this ACK answers was sent (RFC 2131 4.4.1:
    /// lease times count from the request, not from the reply).
    pub acquired: Instant,
    /// The hardware address the acknowledged REQUEST carried.
    pub chaddr: [u8; 6],
    /// RFC 8910 captive portal URI (option 114), checked by [`crate::captive::parse`].
    /// Defaulted so lease files written before this field existed still load.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub captive_portal: Option<String>,
}

impl Lease4 {
    fn deadline(&self, secs: u32) -> Instant {
        self.acquired + Duration::from_secs(u64::from(secs))
    }
    /// When RENEWING starts (`None` for an infinite lease).
    pub fn renew_at(&self) -> Option<Instant> {
        self.lease_secs.map(|_| self.deadline(self.t1_secs))
    }
    /// When REBINDING starts (`None` for an infinite lease).
    pub fn rebind_at(&self) -> Option<Instant> {
        self.lease_secs.map(|_| self.deadline(self.t2_secs))
    }
    /// When the lease expires (`None` for an infinite lease).
    pub fn expires_at(&self) -> Option<Instant> {
        self.lease_secs.map(|l| self.deadline(l))
    }
    /// Seconds of validity left at `now` (`None` = infinite), for address lifetimes.
    pub fn remaining_secs(&self, now: Instant) -> Option<u32> {
        self.expires_at()
            .map(|e| u32::try_from((e - now).as_secs()).unwrap_or(u32::MAX))
    }
    /// The broadcast address of the lease's subnet.
    pub fn broadcast(&self) -> Ipv4Addr {
        let mask = prefix_to_mask(self.prefix_len);
        Ipv4Addr::from(u32::from(self.address) | !mask)
    }
}

/// A netmask as a u32 from a prefix length (lengths above 32 are treated as 32).
pub fn prefix_to_mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - u32::from(l)),
    }
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MessageType {
    /// DHCPDISCOVER (1)
    Discover,
    /// DHCPOFFER (2)
    Offer,
    /// DHCPREQUEST (3)
    Request,
    /// DHCPDECLINE (4)
    Decline,
    /// DHCPACK (5)
    Ack,
    /// DHCPNAK (6)
    Nak,
    /// DHCPRELEASE (7)
    Release,
    /// DHCPINFORM (8)
    Inform,
    /// DHCPFORCERENEW (9, RFC 3203); ignored without authentication.
    ForceRenew,
}

impl MessageType {
    /// The option 53 value.
    pub fn code(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::ForceRenew => 9,
        }
    }
    /// The type for an option 53 value.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            9 => MessageType::ForceRenew,
            _ => return None,
        })
    }
}

/// A DHCP message the caller must put on the wire now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit4 {
    /// The BOOTP/DHCP payload (UDP data, from client port 68 to server port 67).
    pub payload: Vec<u8>,
    /// Source IPv4 address: `0.0.0.0` until an address is configured.
    pub src: Ipv4Addr,
    /// Destination: `255.255.255.255` for a broadcast (send as a link-layer broadcast
    /// frame through the packet socket), otherwise a unicast to that server over UDP.
    pub dst: Ipv4Addr,
    /// The hardware address written into `chaddr`: the MAC the caller gave last
    /// (`hw_address_changed`) when this very packet was built.
    pub chaddr: [u8; 6],
    /// What kind of message this is, for logs and tests.
    pub kind: MessageType,
}

impl Transmit4 {
    /// True when this must go out as a link-layer broadcast.
    pub fn is_broadcast(&self) -> bool {
        self.dst == Ipv4Addr::BROADCAST
    }
}

/// Why the engine gave an address up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LostReason {
    /// The server answered DHCPNAK.
    Nak,
    /// The lease ran out with no server answering.
    Expired,
    /// The caller asked for a release.
    Released,
    /// The caller reported an address conflict and the engine declined it.
    Declined,
    /// The caller stopped the client.
    Stopped,
    /// RFC 8925: the server prefers this host IPv6-only (option 108 in the INIT-REBOOT
    /// ACK): the saved address is not kept.
    Ipv6OnlyPreferred,
}

/// Configuration changes the caller must apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event4 {
    /// A lease was acquired where none was configured: add the address, routes, DNS.
    Bound(Lease4),
    /// The same address was confirmed (renew, rebind, reboot, or the MAC-change
    /// re-confirmation). Update lifetimes and any changed options *in place*; the
    /// address must not be removed and re-added.
    Renewed(Lease4),
    /// A different address replaced the configured one: remove `old`'s address and
    /// routes, then apply `new`.
    Changed {
        /// The lease that was configured.
        old: Box<Lease4>,
        /// The lease to configure now.
        new: Lease4,
    },
    /// The address must be removed now.
    Lost {
        /// The lease that was configured.
        lease: Lease4,
        /// Why.
        reason: LostReason,
    },
    /// No lease could be obtained within the configured timeout; the engine will try
    /// again after the retry interval. Informational (no configuration to change).
    Timeout,
    /// An exchange ended without a lease (a NAK, a DECLINE, REQUESTs never ACKed); the
    /// engine starts over after `wait`. One event per failure, never per packet, so
    /// logging each is bounded by the backoff. Informational.
    Backoff {
        /// Consecutive failures so far, this one included.
        failures: u32,
        /// How long until the next DISCOVER (0 after the first failure).
        wait: Duration,
        /// What ended the exchange.
        reason: &'static str,
        /// The server involved, if one was.
        server: Option<Ipv4Addr>,
    },
    /// The engine began re-confirming the configured lease: broadcast REQUESTs for the
    /// same address, INIT-REBOOT style, from the current MAC. The caller keeps the
    /// address configured; a [`Event4::Renewed`] ends it (or [`Event4::Lost`]).
    Reconfirming(ReconfirmCause),
    /// A received packet was not a valid reply to the exchange in progress and was
    /// ignored (malformed, someone else's, a FORCERENEW, ...): log the reason.
    Dropped(&'static str),
    /// An accepted ACK carried an option value that is unusable (a host name with
    /// shell metacharacters, an MTU below 68, a malformed option 121); it was left out
    /// of the lease. Reported before the lease event, for the caller's log.
    IgnoredOption(&'static str),
    /// RFC 8925: the server answered with option 108 (IPv6-only preferred), which the
    /// client asked for: no address is configured and DHCPv4 pauses for `wait` (the
    /// option's value, at least [`super::Config::min_v6only_wait`]), or until the link
    /// goes down and up; then it starts over with DISCOVER.
    Ipv6OnlyPreferred {
        /// The server that sent it.
        server: Ipv4Addr,
        /// How long DHCPv4 stays off.
        wait: Duration,
    },
}

/// Why the engine re-confirms a lease it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconfirmCause {
    /// The interface's hardware address changed (a bond failover with
    /// `fail_over_mac=active`, a port moved to another interface).
    MacChanged {
        /// The MAC the lease was used with.
        old: [u8; 6],
        /// The MAC the REQUESTs carry now.
        new: [u8; 6],
    },
    /// The carrier came back: the host may have moved (RFC 2131 3.2).
    LinkUp,
}
