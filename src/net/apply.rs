//! Applying leased configuration to the kernel over rtnetlink (never a shell).
//!
//! Every change is an idempotent replace: applying the same lease twice, or a renewed
//! lease with new lifetimes, updates the kernel objects in place. In particular an
//! address is never deleted and re-added on renewal, which would drop every TCP
//! connection bound to it and flush the routes that use it as source.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

use std::io;

use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol, CacheInfo,
};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteScope};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::proto::Connection;
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{AddressMessageBuilder, Handle, LinkUnspec, MulticastGroup, RouteMessageBuilder};

use crate::net::link::NlError;

/// The kernel's "forever" lifetime (`INFINITY_LIFE_TIME`).
pub const INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// Applies addresses, routes and the MTU of one interface.
///
/// Routes are installed with `proto dhcp` (RTPROT_DHCP, 16) and this applier's metric,
/// so they can be told apart from static ones and several interfaces can each have a
/// default route with distinct priorities.
pub struct Applier {
    handle: Handle,
    ifindex: u32,
    ifname: String,
    metric: u32,
    /// Set once the kernel refused IFA_F_OPTIMISTIC, so the fallback is logged once.
    optimistic_refused: AtomicBool,
}

/// What to do with a route a server handed out (see [`classify_route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutePolicy {
    /// Install it.
    Accept,
    /// Do not install it: it covers more than a /8 without being the default route,
    /// the TunnelVision (CVE-2024-3661) pattern of `0.0.0.0/1` + `128.0.0.0/1` that
    /// outranks a VPN's default route by longest-prefix match.
    RefuseWide,
    /// Malformed: prefix longer than 32, or host bits set in the destination.
    Invalid,
}

/// Classify a server-supplied IPv4 route before installing it.
///
/// Prefix lengths 1..=7 are refused unless `accept_wide_routes` is configured; `/0`
/// (a default route, already what option 3 would give) and `/8` or longer are accepted.
pub fn classify_route(dest: Ipv4Addr, prefix_len: u8, accept_wide_routes: bool) -> RoutePolicy {
    if prefix_len > 32 {
        return RoutePolicy::Invalid;
    }
    let mask = netbond_proto::dhcp4::prefix_to_mask(prefix_len);
    if u32::from(dest) & !mask != 0 {
        return RoutePolicy::Invalid;
    }
    if (1..8).contains(&prefix_len) && !accept_wide_routes {
        return RoutePolicy::RefuseWide;
    }
    RoutePolicy::Accept
}

fn lifetimes(valid: Option<u32>, preferred: Option<u32>) -> CacheInfo {
    let mut ci = CacheInfo::default();
    ci.ifa_valid = valid.unwrap_or(INFINITE_LIFETIME);
    // The kernel rejects preferred > valid (EINVAL); clamp instead of failing.
    ci.ifa_preferred = preferred.unwrap_or(INFINITE_LIFETIME).min(ci.ifa_valid);
    ci
}

fn all_flags(msg: &AddressMessage) -> AddressFlags {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits())))
}

/// The kernel made this address from a router advertisement (SLAAC).
fn from_ra(msg: &AddressMessage) -> bool {
    msg.attributes.iter().any(|a| {
        matches!(
            a,
            AddressAttribute::Protocol(AddressProtocol::RouterAnnouncement)
        )
    })
}

fn local_addr(msg: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links. Prefer IFA_LOCAL when present.
    let mut addr = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    addr
}

async fn dump_addrs(
    handle: &Handle,
    ifindex: u32,
    family: AddressFamily,
) -> Result<Vec<AddressMessage>, NlError> {
    let mut req = handle.address().get().set_link_index_filter(ifindex);
    req.message_mut().header.family = family;
    let msgs: Vec<AddressMessage> = req
        .execute()
        .try_collect()
        .await
        .map_err(|e| NlError::from_rtnl("list addresses", format!("#{ifindex}"), e))?;
    Ok(msgs
        .into_iter()
        .filter(|m| m.header.index == ifindex && m.header.family == family)
        .collect())
}

/// IPv4 addresses configured on `ifindex`, with prefix lengths (for tests and for
/// adopting a lease after a restart).
pub async fn list_addrs4(handle: &Handle, ifindex: u32) -> Result<Vec<(Ipv4Addr, u8)>, NlError> {
    Ok(dump_addrs(handle, ifindex, AddressFamily::Inet)
        .await?
        .iter()
        .filter_map(|m| match local_addr(m) {
            Some(IpAddr::V4(a)) => Some((a, m.header.prefix_len)),
            _ => None,
        })
        .collect())
}

/// IPv6 addresses configured on `ifindex` (for adopting a lease after a restart).
pub async fn list_addrs6(handle: &Handle, ifindex: u32) -> Result<Vec<Ipv6Addr>, NlError> {
    Ok(dump_addrs(handle, ifindex, AddressFamily::Inet6)
        .await?
        .iter()
        .filter_map(|m| match local_addr(m) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        })
        .collect())
}

/// Usable SLAAC addresses on `ifindex`: made from a router advertisement, DAD done.
pub async fn list_ra_addrs6(handle: &Handle, ifindex: u32) -> Result<Vec<Ipv6Addr>, NlError> {
    Ok(dump_addrs(handle, ifindex, AddressFamily::Inet6)
        .await?
        .iter()
        .filter(|m| from_ra(m) && !all_flags(m).contains(AddressFlags::Tentative))
        .filter_map(|m| match local_addr(m) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        })
        .collect())
}

/// A change on the address multicast groups (both families).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrEvent {
    /// RTM_NEWADDR: an address was added or changed (lifetimes, DAD completion).
    New {
        /// Interface index.
        ifindex: u32,
        /// The address.
        addr: IpAddr,
        /// Prefix length.
        prefix_len: u8,
        /// DAD still running (IFA_F_TENTATIVE).
        tentative: bool,
        /// Made by the kernel from a router advertisement (SLAAC: IFA_PROTO
        /// kernel_ra, Linux 5.18+).
        from_ra: bool,
    },
    /// RTM_DELADDR: an address was removed.
    Deleted {
        /// Interface index.
        ifindex: u32,
        /// The address.
        addr: IpAddr,
        /// Prefix length.
        prefix_len: u8,
        /// Removed because DAD found a duplicate (IFA_F_DADFAILED): decline it.
        dad_failed: bool,
    },
    /// Events were lost (receive buffer overflow); re-read with [`list_addrs4`] etc.
    Overrun,
}

fn to_addr_event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<AddrEvent> {
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => Some(AddrEvent::New {
            ifindex: m.header.index,
            addr: local_addr(&m)?,
            prefix_len: m.header.prefix_len,
            tentative: all_flags(&m).contains(AddressFlags::Tentative),
            from_ra: from_ra(&m),
        }),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
            Some(AddrEvent::Deleted {
                ifindex: m.header.index,
                addr: local_addr(&m)?,
                prefix_len: m.header.prefix_len,
                dad_failed: all_flags(&m).contains(AddressFlags::Dadfailed),
            })
        }
        NetlinkPayload::Overrun(_) => Some(AddrEvent::Overrun),
        _ => None,
    }
}

/// Subscribe to IPv4 and IPv6 address changes (RTNLGRP_IPV4_IFADDR/IPV6_IFADDR), to
/// learn DAD outcomes and notice addresses removed behind netbond's back. Spawn the
/// returned connection; filter on `ifindex` yourself.
pub fn addr_events() -> io::Result<(
    Connection<RouteNetlinkMessage>,
    impl Stream<Item = AddrEvent> + Unpin + Send,
)> {
    let (mut conn, _handle, messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])?;
    let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(1 << 20);
    let stream = messages.filter_map(|(msg, _)| futures::future::ready(to_addr_event(msg)));
    Ok((conn, stream))
}

impl Applier {
    /// An applier for interface `ifindex` (`ifname` is used in error messages only).
    pub fn new(handle: Handle, ifindex: u32, ifname: impl Into<String>, metric: u32) -> Self {
        Applier {
            handle,
            ifindex,
            ifname: ifname.into(),
            metric,
            optimistic_refused: AtomicBool::new(false),
        }
    }

    fn err(&self, op: String, e: rtnetlink::Error) -> NlError {
        NlError::from_rtnl(op, self.ifname.clone(), e)
    }

    /// Add an IPv4 address, or update it in place if already present.
    ///
    /// Uses NLM_F_CREATE|NLM_F_REPLACE: for an existing address the kernel only updates
    /// its lifetimes (IFA_CACHEINFO) and sends RTM_NEWADDR; it never removes the
    /// address. `None` lifetimes are infinite. The kernel removes the address by itself
    /// when `valid_secs` runs out, which is the right outcome if the daemon is stuck.
    /// The kernel's prefix route for the subnet is kept.
    pub async fn add_or_replace_addr4(
        &self,
        addr: Ipv4Addr,
        prefix_len: u8,
        broadcast: Ipv4Addr,
        valid_secs: Option<u32>,
        preferred_secs: Option<u32>,
    ) -> Result<(), NlError> {
        let mut req = self
            .handle
            .address()
            .add(self.ifindex, IpAddr::V4(addr), prefix_len)
            .replace();
        let msg = req.message_mut();
        // The builder derives a broadcast for < /31; use the caller's instead.
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if prefix_len < 31 {
            msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        }
        msg.attributes.push(AddressAttribute::CacheInfo(lifetimes(
            valid_secs,
            preferred_secs,
        )));
        req.execute()
            .await
            .map_err(|e| self.err(format!("add address {addr}/{prefix_len}"), e))
    }

    /// Remove an IPv4 address. Removing an absent address is not an error.
    pub async fn del_addr4(&self, addr: Ipv4Addr, prefix_len: u8) -> Result<(), NlError> {
        let msg = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(self.ifindex)
            .address(addr, prefix_len)
            .build();
        self.del_addr(msg, format!("delete address {addr}/{prefix_len}"))
            .await
    }

    async fn del_addr(&self, msg: AddressMessage, op: String) -> Result<(), NlError> {
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::EADDRNOTAVAIL => {
                Ok(())
            }
            Err(e) => Err(self.err(op, e)),
        }
    }

    fn addr6_msg(
        &self,
        addr: Ipv6Addr,
        prefix_len: u8,
        valid: Option<u32>,
        preferred: Option<u32>,
        optimistic: bool,
    ) -> AddressMessage {
        let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
            .index(self.ifindex)
            .address(addr, prefix_len)
            .build();
        let mut flags = AddressFlags::empty();
        if optimistic {
            flags |= AddressFlags::Optimistic;
        }
        if prefix_len == 128 {
            // A DHCPv6 IA_NA address carries no on-link information (RFC 8415 21.6);
            // the on-link prefix comes from Router Advertisements.
            flags |= AddressFlags::Noprefixroute;
        }
        msg.header.flags = AddressHeaderFlags::from_bits_retain(flags.bits() as u8);
        msg.attributes.push(AddressAttribute::Flags(flags));
        msg.attributes
            .push(AddressAttribute::CacheInfo(lifetimes(valid, preferred)));
        msg
    }

    async fn send_addr6(
        &self,
        addr: Ipv6Addr,
        msg: AddressMessage,
    ) -> Result<(), rtnetlink::Error> {
        // AddressAddRequest has no constructor from a message; build the request for
        // the same address and swap its message in.
        let mut req = self
            .handle
            .address()
            .add(self.ifindex, IpAddr::V6(addr), msg.header.prefix_len)
            .replace();
        *req.message_mut() = msg;
        req.execute().await
    }

    /// Add an IPv6 address, or update its lifetimes in place if already present.
    ///
    /// `optimistic` requests IFA_F_OPTIMISTIC (RFC 4429), so the address is usable
    /// while DAD runs. The kernel silently drops the flag unless it was built with
    /// CONFIG_IPV6_OPTIMISTIC_DAD *and* `net.ipv6.conf.{all,<if>}.optimistic_dad` is 1
    /// (off by default); check [`addr6_state`] if it matters. Should a kernel refuse
    /// it outright (EOPNOTSUPP/EINVAL), the address is added without the flag and that
    /// is logged once. /128 addresses get IFA_F_NOPREFIXROUTE.
    ///
    /// Finite lifetimes make the kernel delete the address itself if DAD fails (see
    /// [`dad_failed6`]).
    pub async fn add_or_replace_addr6(
        &self,
        addr: Ipv6Addr,
        prefix_len: u8,
        valid_secs: Option<u32>,
        preferred_secs: Option<u32>,
        optimistic: bool,
    ) -> Result<(), NlError> {
        let op = || format!("add address {addr}/{prefix_len}");
        let want_opt = optimistic && !self.optimistic_refused.load(Ordering::Relaxed);
        let msg = self.addr6_msg(addr, prefix_len, valid_secs, preferred_secs, want_opt);
        match self.send_addr6(addr, msg).await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if want_opt && matches!(m.raw_code().abs(), libc::EOPNOTSUPP | libc::EINVAL) =>
            {
                if !self.optimistic_refused.swap(true, Ordering::Relaxed) {
                    let why = crate::net::link::ext_ack_message(&m.header)
                        .unwrap_or_else(|| m.to_string());
                    crate::logging::warn!(
                        iface = %self.ifname,
                        "kernel refused optimistic DAD ({why}); adding IPv6 addresses without it"
                    );
                }
                let msg = self.addr6_msg(addr, prefix_len, valid_secs, preferred_secs, false);
                self.send_addr6(addr, msg)
                    .await
                    .map_err(|e| self.err(op(), e))
            }
            Err(e) => Err(self.err(op(), e)),
        }
    }

    /// Remove an IPv6 address. Removing an absent address is not an error.
    pub async fn del_addr6(&self, addr: Ipv6Addr, prefix_len: u8) -> Result<(), NlError> {
        let msg = AddressMessageBuilder::<Ipv6Addr>::new()
            .index(self.ifindex)
            .address(addr, prefix_len)
            .build();
        self.del_addr(msg, format!("delete address {addr}/{prefix_len}"))
            .await
    }

    fn route4_msg(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        src: Option<Ipv4Addr>,
        scope: RouteScope,
    ) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, prefix_len)
            .output_interface(self.ifindex)
            .priority(self.metric)
            .protocol(RouteProtocol::Dhcp)
            .scope(scope);
        if let Some(gw) = gateway.filter(|g| !g.is_unspecified()) {
            b = b.gateway(gw);
        }
        if let Some(s) = src {
            b = b.pref_source(s);
        }
        b.build()
    }

    /// Install or replace an IPv4 route via this interface with this applier's metric.
    ///
    /// No gateway (or `0.0.0.0`, as RFC 3442 encodes it) makes an on-link route with
    /// link scope; otherwise the scope is universe. A gateway outside every on-link
    /// subnet is refused by the kernel ("Nexthop has invalid gateway"); install a /32
    /// on-link route to the gateway first, as RFC 3442 clients do.
    /// Call [`classify_route`] first for server-supplied routes.
    pub async fn replace_route4(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        src: Option<Ipv4Addr>,
    ) -> Result<(), NlError> {
        let gateway = gateway.filter(|g| !g.is_unspecified());
        let scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        let msg = self.route4_msg(dest, prefix_len, gateway, src, scope);
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| self.err(route_op("replace", dest, prefix_len, gateway), e))
    }

    /// Remove an IPv4 route this applier installed (matched on destination, gateway,
    /// interface, metric and `proto dhcp`). Removing an absent route is not an error.
    pub async fn del_route4(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NlError> {
        let gateway = gateway.filter(|g| !g.is_unspecified());
        // Scope NOWHERE matches any scope, as `ip route del` does.
        let msg = self.route4_msg(dest, prefix_len, gateway, None, RouteScope::NoWhere);
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ESRCH => Ok(()),
            Err(e) => Err(self.err(route_op("delete", dest, prefix_len, gateway), e)),
        }
    }

    /// Set the interface MTU (DHCP option 26). Callers should ignore values below 576
    /// for IPv4 links with IPv6 (1280 is the IPv6 minimum; the kernel drops IPv6 on the
    /// link below that).
    pub async fn set_mtu(&self, mtu: u32) -> Result<(), NlError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(self.ifindex).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| self.err(format!("set mtu {mtu}"), e))
    }
}

fn route_op(verb: &str, dest: Ipv4Addr, len: u8, gw: Option<Ipv4Addr>) -> String {
    match gw {
        Some(g) => format!("{verb} route {dest}/{len} via {g}"),
        None => format!("{verb} route {dest}/{len}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnelvision_routes_are_refused() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            classify_route(v4("0.0.0.0"), 1, false),
            RoutePolicy::RefuseWide
        );
        assert_eq!(
            classify_route(v4("128.0.0.0"), 1, false),
            RoutePolicy::RefuseWide
        );
        assert_eq!(classify_route(v4("0.0.0.0"), 1, true), RoutePolicy::Accept);
        for len in 1..8u8 {
            let dest = Ipv4Addr::from(u32::MAX << (32 - u32::from(len)) & 0x8000_0000);
            assert_eq!(
                classify_route(dest, len, false),
                RoutePolicy::RefuseWide,
                "/{len}"
            );
        }
        assert_eq!(classify_route(v4("0.0.0.0"), 0, false), RoutePolicy::Accept);
        assert_eq!(
            classify_route(v4("10.0.0.0"), 8, false),
            RoutePolicy::Accept
        );
        assert_eq!(
            classify_route(v4("192.168.1.0"), 24, false),
            RoutePolicy::Accept
        );
        assert_eq!(
            classify_route(v4("192.168.1.7"), 32, false),
            RoutePolicy::Accept
        );
    }

    #[test]
    fn malformed_routes_are_invalid() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            classify_route(v4("10.0.0.0"), 33, true),
            RoutePolicy::Invalid
        );
        assert_eq!(
            classify_route(v4("10.0.0.1"), 24, true),
            RoutePolicy::Invalid
        );
        assert_eq!(classify_route(v4("1.0.0.0"), 0, true), RoutePolicy::Invalid);
    }

    #[test]
    fn lifetimes_default_to_infinite_and_clamp_preferred() {
        let c = lifetimes(None, None);
        assert_eq!(
            (c.ifa_valid, c.ifa_preferred),
            (INFINITE_LIFETIME, INFINITE_LIFETIME)
        );
        let c = lifetimes(Some(100), None);
        assert_eq!((c.ifa_valid, c.ifa_preferred), (100, 100));
        let c = lifetimes(Some(100), Some(50));
        assert_eq!((c.ifa_valid, c.ifa_preferred), (100, 50));
    }
}
