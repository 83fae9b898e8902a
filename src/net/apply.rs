//! Applying leased configuration to the kernel over rtnetlink (never a shell).
//!
//! Every change is an idempotent replace: applying the same lease twice, or a renewed
//! lease with new lifetimes, updates the kernel objects in place. In particular an
//! address is never deleted and re-added on renewal, which would drop every TCP
//! connection bound to it and flush the routes that use it as source.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

use std::io;

use futures::stream::BoxStream;

use crate::net::link::NlError;
use crate::net::netlink::attr::*;
use crate::net::netlink::msg::{self, AddrMsg, Route4};
use crate::net::netlink::{socket, Fail, Handle};

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

/// `(valid, preferred)`: `None` is infinite.
fn lifetimes(valid: Option<u32>, preferred: Option<u32>) -> (u32, u32) {
    let valid = valid.unwrap_or(INFINITE_LIFETIME);
    // The kernel rejects preferred > valid (EINVAL); clamp instead of failing.
    (valid, preferred.unwrap_or(INFINITE_LIFETIME).min(valid))
}

/// The addresses of one family on `ifindex`.
pub(crate) async fn dump_addrs(
    handle: &Handle,
    ifindex: u32,
    family: u8,
) -> Result<Vec<AddrMsg>, NlError> {
    let msgs = handle
        .dump(RTM_GETADDR, &msg::addr_dump(family))
        .await
        .map_err(|f| NlError::new("list addresses", format!("#{ifindex}"), f))?;
    Ok(msgs
        .iter()
        .filter_map(|b| msg::parse_addr(b))
        .filter(|m| m.index == ifindex && (family == AF_UNSPEC || m.family == family))
        .collect())
}

/// IPv4 addresses configured on `ifindex`, with prefix lengths (for tests and for
/// adopting a lease after a restart).
pub async fn list_addrs4(handle: &Handle, ifindex: u32) -> Result<Vec<(Ipv4Addr, u8)>, NlError> {
    Ok(dump_addrs(handle, ifindex, AF_INET)
        .await?
        .iter()
        .filter_map(|m| match m.local {
            Some(IpAddr::V4(a)) => Some((a, m.prefix_len)),
            _ => None,
        })
        .collect())
}

/// IPv6 addresses configured on `ifindex` (for adopting a lease after a restart).
pub async fn list_addrs6(handle: &Handle, ifindex: u32) -> Result<Vec<Ipv6Addr>, NlError> {
    Ok(dump_addrs(handle, ifindex, AF_INET6)
        .await?
        .iter()
        .filter_map(|m| match m.local {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        })
        .collect())
}

/// Usable SLAAC addresses on `ifindex`: made from a router advertisement, DAD done.
pub async fn list_ra_addrs6(handle: &Handle, ifindex: u32) -> Result<Vec<Ipv6Addr>, NlError> {
    Ok(dump_addrs(handle, ifindex, AF_INET6)
        .await?
        .iter()
        .filter(|m| m.from_ra && m.flags & IFA_F_TENTATIVE == 0)
        .filter_map(|m| match m.local {
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

fn to_addr_event(m: &Message<'_>) -> Option<AddrEvent> {
    let a = match m.kind {
        RTM_NEWADDR | RTM_DELADDR => msg::parse_addr(m.body)?,
        _ => return None,
    };
    let (ifindex, addr, prefix_len) = (a.index, a.local?, a.prefix_len);
    Some(if m.kind == RTM_NEWADDR {
        AddrEvent::New {
            ifindex,
            addr,
            prefix_len,
            tentative: a.flags & IFA_F_TENTATIVE != 0,
            from_ra: a.from_ra,
        }
    } else {
        AddrEvent::Deleted {
            ifindex,
            addr,
            prefix_len,
            dad_failed: a.flags & IFA_F_DADFAILED != 0,
        }
    })
}

/// Subscribe to IPv4 and IPv6 address changes (RTNLGRP_IPV4_IFADDR/IPV6_IFADDR), to
/// learn DAD outcomes and notice addresses removed behind netbond's back. Filter on
/// `ifindex` yourself; lost events come out as [`AddrEvent::Overrun`].
pub fn addr_events() -> io::Result<BoxStream<'static, AddrEvent>> {
    socket::events(
        RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        to_addr_event,
        || AddrEvent::Overrun,
    )
}

/// Delete an address (`ifaddrmsg` plus the address). Removing an absent address is
/// not an error.
pub(crate) async fn del_addr(
    handle: &Handle,
    index: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> Result<(), Fail> {
    let body = msg::addr_base(index, addr, prefix_len, 0, 0);
    match handle.ack(RTM_DELADDR, 0, &body).await {
        Err(f) if f.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        r => r,
    }
}

/// Add an IPv4 address with `scope`, or update it in place (NLM_F_CREATE |
/// NLM_F_REPLACE). `broadcast` applies below /31; `lifetimes` are (valid, preferred).
pub(crate) async fn replace_addr4(
    handle: &Handle,
    index: u32,
    (addr, prefix_len): (Ipv4Addr, u8),
    broadcast: Ipv4Addr,
    scope: u8,
    lifetimes: Option<(u32, u32)>,
) -> Result<(), Fail> {
    let mut body = msg::addr_base(index, IpAddr::V4(addr), prefix_len, 0, scope);
    if prefix_len < 31 {
        put(&mut body, IFA_BROADCAST, &broadcast.octets());
    }
    if let Some((valid, preferred)) = lifetimes {
        msg::put_lifetimes(&mut body, valid, preferred);
    }
    handle
        .ack(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &body)
        .await
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

    fn err(&self, op: String, f: Fail) -> NlError {
        NlError::new(op, self.ifname.clone(), f)
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
        let life = lifetimes(valid_secs, preferred_secs);
        replace_addr4(
            &self.handle,
            self.ifindex,
            (addr, prefix_len),
            broadcast,
            RT_SCOPE_UNIVERSE,
            Some(life),
        )
        .await
        .map_err(|f| self.err(format!("add address {addr}/{prefix_len}"), f))
    }

    /// Remove an IPv4 address. Removing an absent address is not an error.
    pub async fn del_addr4(&self, addr: Ipv4Addr, prefix_len: u8) -> Result<(), NlError> {
        del_addr(&self.handle, self.ifindex, IpAddr::V4(addr), prefix_len)
            .await
            .map_err(|f| self.err(format!("delete address {addr}/{prefix_len}"), f))
    }

    async fn send_addr6(
        &self,
        addr: Ipv6Addr,
        prefix_len: u8,
        (valid, preferred): (u32, u32),
        optimistic: bool,
    ) -> Result<(), Fail> {
        let mut flags = 0;
        if optimistic {
            flags |= IFA_F_OPTIMISTIC;
        }
        if prefix_len == 128 {
            // A DHCPv6 IA_NA address carries no on-link information (RFC 8415 21.6);
            // the on-link prefix comes from Router Advertisements.
            flags |= IFA_F_NOPREFIXROUTE;
        }
        let mut body = msg::addr_base(self.ifindex, IpAddr::V6(addr), prefix_len, flags, 0);
        put_u32(&mut body, IFA_FLAGS, flags);
        msg::put_lifetimes(&mut body, valid, preferred);
        self.handle
            .ack(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &body)
            .await
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
        let life = lifetimes(valid_secs, preferred_secs);
        match self.send_addr6(addr, prefix_len, life, want_opt).await {
            Ok(()) => Ok(()),
            Err(Fail::Kernel { errno, ext_ack })
                if want_opt && matches!(errno, libc::EOPNOTSUPP | libc::EINVAL) =>
            {
                if !self.optimistic_refused.swap(true, Ordering::Relaxed) {
                    let why =
                        ext_ack.unwrap_or_else(|| io::Error::from_raw_os_error(errno).to_string());
                    crate::logging::warn!(
                        iface = %self.ifname,
                        "kernel refused optimistic DAD ({why}); adding IPv6 addresses without it"
                    );
                }
                self.send_addr6(addr, prefix_len, life, false)
                    .await
                    .map_err(|f| self.err(op(), f))
            }
            Err(f) => Err(self.err(op(), f)),
        }
    }

    /// Remove an IPv6 address. Removing an absent address is not an error.
    pub async fn del_addr6(&self, addr: Ipv6Addr, prefix_len: u8) -> Result<(), NlError> {
        del_addr(&self.handle, self.ifindex, IpAddr::V6(addr), prefix_len)
            .await
            .map_err(|f| self.err(format!("delete address {addr}/{prefix_len}"), f))
    }

    fn route4_msg(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        src: Option<Ipv4Addr>,
        scope: u8,
    ) -> Vec<u8> {
        msg::route4(&Route4 {
            dest,
            prefix_len,
            gateway: gateway.filter(|g| !g.is_unspecified()),
            src,
            oif: self.ifindex,
            metric: self.metric,
            scope,
        })
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
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        };
        let body = self.route4_msg(dest, prefix_len, gateway, src, scope);
        self.handle
            .ack(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
            .await
            .map_err(|f| self.err(route_op("replace", dest, prefix_len, gateway), f))
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
        let body = self.route4_msg(dest, prefix_len, gateway, None, RT_SCOPE_NOWHERE);
        match self.handle.ack(RTM_DELROUTE, 0, &body).await {
            Err(f) if f.errno() != Some(libc::ESRCH) => {
                Err(self.err(route_op("delete", dest, prefix_len, gateway), f))
            }
            _ => Ok(()),
        }
    }

    /// Set the interface MTU (DHCP option 26). Callers should ignore values below 576
    /// for IPv4 links with IPv6 (1280 is the IPv6 minimum; the kernel drops IPv6 on the
    /// link below that).
    pub async fn set_mtu(&self, mtu: u32) -> Result<(), NlError> {
        let mut body = msg::ifinfo(self.ifindex, 0, 0);
        put_u32(&mut body, IFLA_MTU, mtu);
        self.handle
            .ack(RTM_SETLINK, 0, &body)
            .await
            .map_err(|f| self.err(format!("set mtu {mtu}"), f))
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
        assert_eq!(
            lifetimes(None, None),
            (INFINITE_LIFETIME, INFINITE_LIFETIME)
        );
        assert_eq!(lifetimes(Some(100), None), (100, 100));
        assert_eq!(lifetimes(Some(100), Some(50)), (100, 50));
    }

    fn addr_event(kind: u16, family: u8, flags: u32, attrs: &[u8]) -> Option<AddrEvent> {
        let mut body = vec![family, 64, 0, 0];
        body.extend_from_slice(&5u32.to_ne_bytes());
        put_u32(&mut body, IFA_FLAGS, flags);
        body.extend_from_slice(attrs);
        let d = request(kind, 0, 0, &body);
        let m = messages(&d).next().unwrap().unwrap();
        to_addr_event(&m)
    }

    #[test]
    fn address_events_carry_dad_state_and_origin() {
        let a6: Ipv6Addr = "fd77::1".parse().unwrap();
        let mut attrs = Vec::new();
        put(&mut attrs, IFA_ADDRESS, &a6.octets());
        put_u8(&mut attrs, IFA_PROTO, IFAPROT_KERNEL_RA);
        assert_eq!(
            addr_event(RTM_NEWADDR, AF_INET6, IFA_F_TENTATIVE, &attrs),
            Some(AddrEvent::New {
                ifindex: 5,
                addr: IpAddr::V6(a6),
                prefix_len: 64,
                tentative: true,
                from_ra: true,
            })
        );
        assert_eq!(
            addr_event(RTM_DELADDR, AF_INET6, IFA_F_DADFAILED, &attrs),
            Some(AddrEvent::Deleted {
                ifindex: 5,
                addr: IpAddr::V6(a6),
                prefix_len: 64,
                dad_failed: true,
            })
        );
        // No address at all, or another message kind: nothing.
        assert_eq!(addr_event(RTM_NEWADDR, AF_INET6, 0, &[]), None);
        assert_eq!(addr_event(RTM_NEWLINK, AF_INET6, 0, &attrs), None);
    }

    /// The real socket, read-only: the loopback exists in every namespace, an
    /// unknown name is `None`, and a refused change names operation and errno.
    #[tokio::test]
    async fn the_kernel_answers_lookups_dumps_and_refusals() {
        let h = Handle::connect().unwrap();
        let lo = crate::net::link::get_link_by_name(&h, "lo")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lo.name, "lo");
        let by_index = crate::net::link::get_link_by_index(&h, lo.index)
            .await
            .unwrap();
        assert_eq!(by_index.map(|l| l.name), Some("lo".to_string()));
        let all = crate::net::link::list_links(&h).await.unwrap();
        assert!(all.iter().any(|l| l.index == lo.index));
        let none = crate::net::link::get_link_by_name(&h, "nb-no-such0")
            .await
            .unwrap();
        assert_eq!(none, None);
        // An index no interface has: ENODEV (EPERM first without CAP_NET_ADMIN).
        let a = Applier::new(h.clone(), 0x7fff_fff0, "ghost0", 100);
        let e = a.set_mtu(1400).await.unwrap_err();
        assert!(e.is_errno(libc::ENODEV) || e.is_errno(libc::EPERM), "{e}");
        assert!(
            e.to_string().starts_with("set mtu 1400 on ghost0 failed: "),
            "{e}"
        );
        // Many requests at once on the one socket each get their own reply.
        let lookups = (0..32).map(|_| crate::net::link::get_link_by_index(&h, lo.index));
        for r in futures::future::join_all(lookups).await {
            assert_eq!(r.unwrap().map(|l| l.index), Some(lo.index));
        }
    }
}
