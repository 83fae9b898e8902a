//! Turning a decoded server message into something the state machine may act on.
//!
//! Every rule here drops the *whole* reply with a reason. Option values that are merely
//! unusable (a host name with shell metacharacters, an MTU below 68, a malformed option
//! 121) are dropped on their own, so a server with one odd option still gives a lease.

use super::lease::{prefix_to_mask, MessageType, Route4};
use super::wire::{opt, Message};
use std::net::Ipv4Addr;

/// Caps on list sizes: enough for every real network, small enough that a hostile server
/// cannot make us hold or install thousands of entries.
pub const MAX_ROUTERS: usize = 8;
/// At most this many DNS servers are kept (resolv.conf uses 3).
pub const MAX_DNS: usize = 8;
/// At most this many NTP servers are kept.
pub const MAX_NTP: usize = 8;
/// At most this many option 121 routes are kept.
pub const MAX_ROUTES: usize = 64;
/// At most this many search domains are kept.
pub const MAX_SEARCH: usize = 16;

/// The parameters of an OFFER or ACK, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub(crate) prefix_len: Option<u8>,
    pub(crate) routers: Vec<Ipv4Addr>,
    pub(crate) dns: Vec<Ipv4Addr>,
    pub(crate) domain: Option<String>,
    pub(crate) search: Vec<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) mtu: Option<u16>,
    pub(crate) ntp: Vec<Ipv4Addr>,
    pub(crate) routes: Vec<Route4>,
    pub(crate) static_routes: Vec<Route4>,
    pub(crate) lease_secs: Option<u32>,
    pub(crate) t1: Option<u32>,
    pub(crate) t2: Option<u32>,
    pub(crate) captive_portal: Option<String>,
}

/// A reply that passed every check that does not depend on the client's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) kind: MessageType,
    pub(crate) xid: u32,
    pub(crate) chaddr: [u8; 6],
    pub(crate) server: Ipv4Addr,
    pub(crate) yiaddr: Ipv4Addr,
    pub(crate) params: Params,
    /// Non-fatal notes on options that were ignored, for the debug log.
    pub(crate) ignored: Vec<&'static str>,
    /// RFC 8925 option 108 (V6ONLY_WAIT in seconds), when present with length 4. Such
    /// a reply may offer no address (yiaddr 0.0.0.0): then nothing else is parsed.
    pub(crate) v6only: Option<u32>,
}

/// True for an address a server may give a host: not 0/8, broadcast, loopback,
/// multicast, class E or link-local.
pub fn is_usable_unicast(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0
        || ip.is_broadcast()
        || ip.is_loopback()
        || ip.is_multicast()
        || o[0] >= 240
        || ip.is_link_local())
}

/// The prefix length of a contiguous netmask, or `None` for a mask with holes.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    if m.checked_shl(len).unwrap_or(0) != 0 {
        return None;
    }
    Some(len as u8)
}

/// The prefix to use for `yiaddr`: option 1, or /32 when the server sent no mask.
///
/// A classful guess (10.x.y.z as a /8) would claim sixteen million neighbours on this
/// link, shadowing routes (a VPN's 10/8) and sending ARP for hosts that are elsewhere,
/// because a server left out (or lost) one option. A /32 claims nothing: the daemon
/// adds an on-link host route to the router and a default route through it (what
/// systemd-networkd and dhcpcd do for a host route to the gateway), so the lease still
/// works; hosts of the real subnet are reached through the router.
pub fn effective_prefix(params: &Params, _yiaddr: Ipv4Addr) -> u8 {
    params.prefix_len.unwrap_or(32)
}

/// Why `addr` cannot be a host address in its own subnet `/len`: the network address
/// (host bits all zero) or the subnet broadcast address (host bits all one). /31
/// (RFC 3021 point-to-point) and /32 subnets have no such addresses.
pub fn subnet_reserved(addr: Ipv4Addr, len: u8) -> Option<&'static str> {
    if len >= 31 {
        return None;
    }
    let mask = prefix_to_mask(len);
    let a = u32::from(addr);
    if a & !mask == 0 {
        Some("offered address is the network address of its subnet")
    } else if a | mask == u32::MAX {
        Some("offered address is the broadcast address of its subnet")
    } else {
        None
    }
}

fn ip_list(v: &[u8], cap: usize, what: &'static str) -> Result<Vec<Ipv4Addr>, &'static str> {
    if v.is_empty() || v.len() % 4 != 0 {
        return Err(what);
    }
    Ok(v.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .filter(|ip| is_usable_unicast(*ip))
        .take(cap)
        .collect())
}

/// A name from an option, checked by the one name rule ([`crate::name::host_name`]).
/// Some servers NUL-terminate string options; the padding is not part of the name.
fn option_name(raw: &[u8]) -> Option<String> {
    let end = raw.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    crate::name::host_name(&raw[..end])
}

/// The classful prefix length of a destination (RFC 2132 5.8: option 33 carries no mask;
/// the destination's class gives it), narrowed to a host route when host bits are set.
fn classful_prefix(dest: Ipv4Addr) -> u8 {
    let first = dest.octets()[0];
    let class = match first {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    };
    if u32::from(dest) & !prefix_to_mask(class) != 0 {
        32
    } else {
        class
    }
}

/// Decode option 33 (RFC 2132 5.8): destination/router pairs. A length that is not a
/// multiple of 8 invalidates the option; single pairs with a 0.0.0.0 destination (which
/// RFC 2132 forbids: the default route comes from option 3), a non-unicast destination or
/// gateway are dropped on their own, and the second value says whether any was.
pub fn static_routes(v: &[u8]) -> Result<(Vec<Route4>, bool), &'static str> {
    if v.is_empty() || v.len() % 8 != 0 {
        return Err("option 33 length is not a multiple of 8");
    }
    let mut out = Vec::new();
    let mut dropped = false;
    for pair in v.chunks_exact(8) {
        let dest = Ipv4Addr::new(pair[0], pair[1], pair[2], pair[3]);
        let gw = Ipv4Addr::new(pair[4], pair[5], pair[6], pair[7]);
        let dest_ok = !dest.is_unspecified()
            && !dest.is_broadcast()
            && !dest.is_multicast()
            && !dest.is_loopback()
            && dest.octets()[0] < 240;
        if !dest_ok || !is_usable_unicast(gw) {
            dropped = true;
            continue;
        }
        if out.len() < MAX_ROUTES {
            out.push(Route4 {
                dest,
                prefix_len: classful_prefix(dest),
                gateway: gw,
            });
        }
    }
    Ok((out, dropped))
}

/// Decode option 121 (RFC 3442). Any malformed descriptor invalidates the option.
pub fn classless_routes(v: &[u8]) -> Result<Vec<Route4>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let len = v[i];
        if len > 32 {
            return Err("option 121 prefix length above 32");
        }
        let sig = usize::from(len).div_ceil(8);
        let need = 1 + sig + 4;
        let d = v
            .get(i..i + need)
            .ok_or("option 121 descriptor truncated")?;
        let mut dest = [0u8; 4];
        dest[..sig].copy_from_slice(&d[1..1 + sig]);
        let dest_u = u32::from_be_bytes(dest);
        if dest_u & !prefix_to_mask(len) != 0 {
            return Err("option 121 destination has bits beyond its prefix");
        }
        let gw = Ipv4Addr::new(d[1 + sig], d[2 + sig], d[3 + sig], d[4 + sig]);
        if !gw.is_unspecified() && !is_usable_unicast(gw) {
            return Err("option 121 gateway is not a unicast address");
        }
        if out.len() < MAX_ROUTES {
            out.push(Route4 {
                dest: Ipv4Addr::from(dest_u),
                prefix_len: len,
                gateway: gw,
            });
        }
        i += need;
    }
    Ok(out)
}

/// Decode an RFC 1035 wire-format name list with compression (option 119, RFC 3397).
pub fn search_list(v: &[u8]) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < v.len() {
        let (name, next) = read_name(v, pos)?;
        if let Some(n) = option_name(name.as_bytes()) {
            if out.len() < MAX_SEARCH && !out.contains(&n) {
                out.push(n);
            }
        }
        pos = next;
    }
    Ok(out)
}

/// Read one name starting at `start`; returns it and where the next one starts.
fn read_name(v: &[u8], start: usize) -> Result<(String, usize), &'static str> {
    let mut name = String::new();
    let mut pos = start;
    let mut next = None;
    let mut jumps = 0;
    loop {
        let len = *v.get(pos).ok_or("option 119 name truncated")?;
        match len {
            0 => {
                return Ok((name, next.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *v.get(pos + 1).ok_or("option 119 pointer truncated")?;
                let target = (usize::from(l & 0x3f) << 8) | usize::from(lo);
                // Pointers must point backwards: this rules out every loop.
                if target >= pos {
                    return Err("option 119 pointer does not point backwards");
                }
                jumps += 1;
                if jumps > 64 {
                    return Err("option 119 too many pointers");
                }
                if next.is_none() {
                    next = Some(pos + 2);
                }
                pos = target;
            }
            l if l & 0xc0 != 0 => return Err("option 119 reserved label type"),
            l => {
                let label = v
                    .get(pos + 1..pos + 1 + usize::from(l))
                    .ok_or("option 119 label truncated")?;
                if !name.is_empty() {
                    name.push('.');
                }
                // Non-UTF-8 labels become U+FFFD and then fail name validation.
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return Err("option 119 name too long");
                }
                pos += 1 + usize::from(l);
            }
        }
    }
}

impl Reply {
    /// Validate a decoded message as a reply to this client. `client_id` is what we send
    /// as option 61; a server that echoes a different one (RFC 6842) is not talking to us.
    pub fn from_message(m: &Message, client_id: &[u8]) -> Result<Reply, &'static str> {
        if m.op != 2 {
            return Err("not a BOOTREPLY");
        }
        if m.htype != 1 || m.hlen != 6 {
            return Err("hardware type is not Ethernet");
        }
        let kind = match m.option(opt::MESSAGE_TYPE) {
            None => return Err("no DHCP message type (a BOOTP reply)"),
            Some(v) => MessageType::from_code(v[0]).ok_or("unknown DHCP message type")?,
        };
        if !matches!(
            kind,
            MessageType::Offer | MessageType::Ack | MessageType::Nak
        ) {
            return Err("message type is not one a server sends a client");
        }
        let server = m.option_ip(opt::SERVER_ID).ok_or("no server identifier")?;
        if !is_usable_unicast(server) {
            return Err("server identifier is not a unicast address");
        }
        if let Some(echo) = m.option(opt::CLIENT_ID) {
            if echo != client_id {
                return Err("client identifier echoed by the server is not ours");
            }
        }
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&m.chaddr[..6]);
        let mut reply = Reply {
            kind,
            xid: m.xid,
            chaddr,
            server,
            yiaddr: m.yiaddr,
            params: Params {
                prefix_len: None,
                routers: vec![],
                dns: vec![],
                domain: None,
                search: vec![],
                hostname: None,
                mtu: None,
                ntp: vec![],
                routes: vec![],
                static_routes: vec![],
                lease_secs: None,
                t1: None,
                t2: None,
                captive_portal: None,
            },
            ignored: vec![],
            v6only: None,
        };
        if kind == MessageType::Nak {
            return Ok(reply);
        }
        match m.option(opt::V6ONLY_PREFERRED) {
            // RFC 8925 3.1: a client ignores the option unless its length is 4.
            Some(v) if v.len() != 4 => reply.ignored.push("option 108 length is not 4"),
            Some(_) => {
                reply.v6only = m.option_u32(opt::V6ONLY_PREFERRED);
                if !is_usable_unicast(m.yiaddr) {
                    return Ok(reply);
                }
            }
            None => {}
        }
        if !is_usable_unicast(m.yiaddr) {
            return Err("offered address is not a usable unicast address");
        }
        if m.yiaddr == server {
            return Err("offered address is the server's own");
        }
        read_params(m, &mut reply.params, &mut reply.ignored)?;
        Ok(reply)
    }
}

/// The lease parameters of an OFFER or ACK into `p`. A malformed option that makes the
/// reply unusable is an error; an unusable value the lease can do without is left out
/// and noted in `ignored`.
fn read_params(
    m: &Message,
    p: &mut Params,
    ignored: &mut Vec<&'static str>,
) -> Result<(), &'static str> {
    if let Some(mask) = m.option_ip(opt::SUBNET_MASK) {
        let len = mask_to_prefix(mask).ok_or("subnet mask is not contiguous")?;
        if !(1..=32).contains(&len) {
            return Err("subnet mask of length 0");
        }
        if let Some(why) = subnet_reserved(m.yiaddr, len) {
            return Err(why);
        }
        p.prefix_len = Some(len);
    }
    match m.option_u32(opt::LEASE_TIME) {
        Some(0xffff_ffff) => p.lease_secs = None,
        Some(n) => p.lease_secs = Some(n),
        None => return Err("no lease time"),
    }
    p.t1 = m.option_u32(opt::RENEWAL_TIME);
    p.t2 = m.option_u32(opt::REBINDING_TIME);
    if let Some(v) = m.option(opt::ROUTER) {
        p.routers = ip_list(
            v,
            MAX_ROUTERS,
            "router option length is not a multiple of 4",
        )?;
    }
    if let Some(v) = m.option(opt::DNS) {
        p.dns = ip_list(v, MAX_DNS, "DNS option length is not a multiple of 4")?;
    }
    if let Some(v) = m.option(opt::NTP) {
        p.ntp = ip_list(v, MAX_NTP, "NTP option length is not a multiple of 4")?;
    }
    if let Some(v) = m.option(opt::DOMAIN) {
        p.domain = option_name(v);
        if p.domain.is_none() {
            ignored.push("domain name is not a valid DNS name");
        }
    }
    if let Some(v) = m.option(opt::HOSTNAME) {
        p.hostname = option_name(v);
        if p.hostname.is_none() {
            ignored.push("host name is not a valid DNS name");
        }
    }
    if let Some(mtu) = m.option_u16(opt::MTU) {
        if mtu >= 68 {
            p.mtu = Some(mtu);
        } else {
            ignored.push("MTU below 68");
        }
    }
    if let Some(v) = m.option(opt::CLASSLESS_ROUTES) {
        match classless_routes(v) {
            Ok(r) => p.routes = r,
            Err(why) => ignored.push(why),
        }
    }
    // RFC 3442 section 3: with option 121 present, option 33 is ignored entirely.
    if let (None, Some(v)) = (
        m.option(opt::CLASSLESS_ROUTES),
        m.option(opt::STATIC_ROUTES),
    ) {
        match static_routes(v) {
            Ok((r, dropped)) => {
                p.static_routes = r;
                if dropped {
                    ignored.push("option 33 route with an unusable destination or gateway");
                }
            }
            Err(why) => ignored.push(why),
        }
    }
    if let Some(v) = m.option(opt::DOMAIN_SEARCH) {
        match search_list(v) {
            Ok(s) => p.search = s,
            Err(why) => ignored.push(why),
        }
    }
    if let Some(v) = m.option(opt::CAPTIVE_PORTAL) {
        match crate::captive::parse(v) {
            Ok(u) => p.captive_portal = u,
            Err(_) => ignored.push("option 114 is not a usable captive portal URI"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_unicast_rules() {
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "127.0.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "169.254.1.1",
        ] {
            assert!(!is_usable_unicast(bad.parse().unwrap()), "{bad}");
        }
        assert!(is_usable_unicast("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn option_33_classful_pairs() {
        let v = [
            10, 0, 0, 0, 192, 168, 1, 1, // class A network -> /8
            172, 16, 0, 0, 192, 168, 1, 2, // class B network -> /16
            192, 0, 2, 0, 192, 168, 1, 3, // class C network -> /24
            10, 1, 2, 3, 192, 168, 1, 4, // host bits set -> host route
            0, 0, 0, 0, 192, 168, 1, 1, // default destination: forbidden, dropped
            10, 0, 0, 0, 0, 0, 0, 0, // unusable gateway: dropped
        ];
        let (r, dropped) = static_routes(&v).unwrap();
        assert!(dropped);
        let got: Vec<(String, u8, String)> = r
            .iter()
            .map(|r| (r.dest.to_string(), r.prefix_len, r.gateway.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.0".into(), 8, "192.168.1.1".into()),
                ("172.16.0.0".into(), 16, "192.168.1.2".into()),
                ("192.0.2.0".into(), 24, "192.168.1.3".into()),
                ("10.1.2.3".into(), 32, "192.168.1.4".into()),
            ]
        );
        assert!(static_routes(&[10, 0, 0, 0, 1, 2, 3]).is_err());
        assert!(static_routes(&[]).is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(mask_to_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_to_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_to_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_to_prefix("255.0.255.0".parse().unwrap()), None);
        assert_eq!(mask_to_prefix("255.255.255.1".parse().unwrap()), None);
    }

    #[test]
    fn option_names_drop_nul_padding_and_follow_the_name_rule() {
        assert_eq!(option_name(b"Example.COM.\0\0"), Some("example.com".into()));
        assert_eq!(option_name(b"host\0"), Some("host".into()));
        assert_eq!(option_name(b"\0"), None);
        assert_eq!(option_name(b"a_b"), None);
        assert_eq!(option_name(b"a\0b"), None);
    }

    #[test]
    fn option_121() {
        let v = [
            24, 192, 168, 5, 10, 0, 0, 1, 0, 10, 0, 0, 254, 32, 1, 2, 3, 4, 0, 0, 0, 0,
        ];
        let r = classless_routes(&v).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].dest, Ipv4Addr::new(192, 168, 5, 0));
        assert_eq!(r[1].prefix_len, 0);
        assert_eq!(r[2].gateway, Ipv4Addr::UNSPECIFIED);
        assert!(classless_routes(&[33, 0, 0, 0, 0]).is_err());
        assert!(classless_routes(&[24, 192, 168]).is_err());
        assert!(classless_routes(&[8, 10, 0, 0, 0]).is_err());
        assert!(classless_routes(&[24, 192, 168, 5, 224, 0, 0, 1]).is_err());
        // A /9 with a bit set beyond the prefix is malformed.
        assert!(classless_routes(&[9, 10, 0x40, 1, 2, 3, 4]).is_err());
        assert!(classless_routes(&[8, 10, 1, 2, 3, 4]).is_ok());
    }

    #[test]
    fn option_119_with_compression_and_loops() {
        // "eng.example.com" then "example.com" as a pointer to offset 4.
        let v = [
            3, b'e', b'n', b'g', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
            0, 0xc0, 4,
        ];
        assert_eq!(
            search_list(&v).unwrap(),
            vec!["eng.example.com", "example.com"]
        );
        // A self-pointer would loop forever in a naive decoder.
        assert!(search_list(&[0xc0, 0]).is_err());
        assert!(search_list(&[3, b'a']).is_err());
        assert!(search_list(&[0x80]).is_err());
    }
}
