//! The routes a DHCPv4 lease asks for (options 3, 33 and 121), in install order and
//! under the route policy (`net::apply::classify_route`).

use crate::logging::warn;
use crate::net::apply::{classify_route, RoutePolicy};
use netbond_proto::dhcp4::{prefix_to_mask, Lease4};
use std::net::Ipv4Addr;

/// A route as installed: destination, prefix length, gateway.
pub type Route = (Ipv4Addr, u8, Option<Ipv4Addr>);

/// The routes a lease asks for, in install order.
pub fn wanted_routes(ifname: &str, accept_wide_routes: bool, l: &Lease4) -> Vec<Route> {
    let mut out = Vec::new();
    let listed = if l.routes.is_empty() {
        // RFC 3442: option 3 only when there is no option 121.
        if let Some(gw) = l.routers.iter().find(|g| **g != l.address) {
            // A /32 (what a lease without a subnet mask becomes: never a classful
            // guess) has no neighbours: reach the router with an on-link host route
            // first, as dhclient does for a /32. With a real mask, a router outside
            // the subnet is the server's error and is not made reachable.
            if l.prefix_len == 32 {
                out.push((*gw, 32, None));
            }
            out.push((Ipv4Addr::UNSPECIFIED, 0, Some(*gw)));
        }
        // Option 33 static routes (the engine leaves them empty when option 121 came,
        // per RFC 3442), installed as dhclient and networkd do, under the same policy
        // as option 121 routes.
        &l.static_routes
    } else {
        &l.routes
    };
    for r in listed {
        match classify_route(r.dest, r.prefix_len, accept_wide_routes) {
            RoutePolicy::Accept => {
                let gw = (!r.gateway.is_unspecified()).then_some(r.gateway);
                // A gateway outside our subnet needs an on-link host route first,
                // or the kernel refuses the route ("Nexthop has invalid gateway").
                if let Some(g) = gw {
                    let host = (g, 32, None);
                    if !on_subnet(l, g) && !out.contains(&host) {
                        out.push(host);
                    }
                }
                let route = (r.dest, r.prefix_len, gw);
                if !out.contains(&route) {
                    out.push(route);
                }
            }
            RoutePolicy::RefuseWide => warn!(
                "dhcp4: {ifname}: refused route {}/{} via {}: it would take over traffic beyond the local network (TunnelVision); set [dhcp4] accept_wide_routes = true to allow",
                r.dest, r.prefix_len, r.gateway
            ),
            RoutePolicy::Invalid => warn!(
                "dhcp4: {ifname}: ignored malformed route {}/{}",
                r.dest, r.prefix_len
            ),
        }
    }
    out
}

/// Whether `addr` is inside the lease's own subnet (always false for a /32).
fn on_subnet(l: &Lease4, addr: Ipv4Addr) -> bool {
    let mask = prefix_to_mask(l.prefix_len);
    u32::from(addr) & mask == u32::from(l.address) & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbond_proto::dhcp4::Route4;
    use netbond_proto::Instant;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn lease() -> Lease4 {
        Lease4 {
            address: ip("10.0.0.5"),
            prefix_len: 24,
            server: ip("10.0.0.1"),
            routers: vec![ip("10.0.0.1")],
            dns: vec![],
            domain: None,
            search: vec![],
            hostname: None,
            mtu: None,
            ntp: vec![],
            routes: vec![],
            static_routes: vec![Route4 {
                dest: ip("172.16.0.0"),
                prefix_len: 16,
                gateway: ip("10.0.0.7"),
            }],
            lease_secs: Some(120),
            t1_secs: 60,
            t2_secs: 105,
            acquired: Instant::ZERO,
            chaddr: [2, 0, 0, 0, 0, 1],
            captive_portal: None,
        }
    }

    #[test]
    fn option_33_routes_are_installed_after_the_default_route_and_not_with_121() {
        let mut l = lease();
        assert_eq!(
            wanted_routes("eth0", false, &l),
            vec![
                (Ipv4Addr::UNSPECIFIED, 0, Some(ip("10.0.0.1"))),
                (ip("172.16.0.0"), 16, Some(ip("10.0.0.7"))),
            ]
        );
        // With option 121, only its routes (the engine also clears option 33 then).
        l.routes = vec![Route4 {
            dest: ip("192.168.9.0"),
            prefix_len: 24,
            gateway: ip("10.0.0.1"),
        }];
        assert_eq!(
            wanted_routes("eth0", false, &l),
            vec![(ip("192.168.9.0"), 24, Some(ip("10.0.0.1")))]
        );
    }
}
