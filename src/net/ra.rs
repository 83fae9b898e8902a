//! Router Advertisement watcher, to choose the DHCPv6 mode: the M flag
//! (managed: addresses via DHCPv6) and the O flag (other configuration via
//! stateless DHCPv6) of RAs on one interface.
//!
//! Uses a raw ICMPv6 socket. The kernel verifies the ICMPv6 checksum of every
//! message delivered to a raw ICMPv6 socket (and computes it on send), so no
//! checksum code is needed here. The remaining RFC 4861 section 6.1.2 checks
//! are done in [`parse_ra`]: hop limit 255 (received with
//! `IPV6_RECVHOPLIMIT`, which proves the RA was not forwarded by a router),
//! link-local source, code 0, length >= 16, every option of nonzero length
//! and within the message.
//!
//! Watching RAs does not interfere with the kernel's own RA processing
//! (`accept_ra`): a raw socket gets a copy.

use std::io;
use std::mem;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

const ND_ROUTER_SOLICIT: u8 = 133;
const ND_ROUTER_ADVERT: u8 = 134;
/// `ICMP6_FILTER` (<linux/icmpv6.h> `ICMPV6_FILTER`), not in every libc.
const ICMP6_FILTER: libc::c_int = 1;
/// All-routers multicast group, destination of Router Solicitations.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// What one valid Router Advertisement says about DHCPv6 and DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaFlags {
    /// M flag: addresses are available via DHCPv6 (stateful).
    pub managed: bool,
    /// O flag: other configuration (DNS, ...) is available via DHCPv6.
    pub other: bool,
    /// Link-local address of the advertising router.
    pub router: Ipv6Addr,
    /// Router lifetime; 0 means the router is not a default router.
    pub lifetime_secs: u16,
    /// RFC 8106 RDNSS: DNS servers with their lifetime in seconds (0: remove,
    /// `u32::MAX`: infinite).
    pub rdnss: Vec<(Ipv6Addr, u32)>,
    /// RFC 8106 DNSSL: search domains (validated DNS names) with their lifetime.
    pub dnssl: Vec<(String, u32)>,
    /// RFC 8910 option 37: the captive portal URI, checked (`None` also for the
    /// "unrestricted" URN, which says there is no portal).
    pub captive_portal: Option<String>,
    /// Why an option 37 was refused, for the log.
    pub captive_refused: Option<&'static str>,
}

/// RDNSS and DNSSL option types (RFC 8106).
const OPT_RDNSS: u8 = 25;
const OPT_DNSSL: u8 = 31;
/// Captive portal option type (RFC 8910 section 2.3).
const OPT_CAPTIVE: u8 = 37;
/// At most this many servers and domains are taken from one RA.
const MAX_RA_DNS: usize = 8;

/// Options 25 and 31 of an RA (the option with its type and length bytes). A malformed
/// one is ignored (the rest of the RA still counts), as RFC 8106 section 5.3.1 asks.
fn dns_option(opt: &[u8], out: &mut RaFlags) {
    if opt.len() < 8 {
        return;
    }
    let lifetime = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]);
    let body = &opt[8..];
    match opt[0] {
        // Length at least 3 (one address) and odd: whole addresses only.
        OPT_RDNSS if opt[1] >= 3 && opt[1] % 2 == 1 => {
            for a in body.chunks_exact(16) {
                let mut b = [0u8; 16];
                b.copy_from_slice(a);
                let addr = Ipv6Addr::from(b);
                let bad = addr.is_unspecified() || addr.is_loopback() || addr.is_multicast();
                if !bad && out.rdnss.len() < MAX_RA_DNS && !out.rdnss.iter().any(|x| x.0 == addr) {
                    out.rdnss.push((addr, lifetime));
                }
            }
        }
        OPT_DNSSL if opt[1] >= 2 => {
            let mut names = Vec::new();
            let mut pos = 0;
            // Names in DNS wire format without compression; zero padding at the end.
            while pos < body.len() && body[pos] != 0 {
                let mut labels: Vec<&[u8]> = Vec::new();
                loop {
                    let Some(&len) = body.get(pos) else { return };
                    pos += 1;
                    if len == 0 {
                        break;
                    }
                    let Some(l) = body.get(pos..pos + usize::from(len)) else {
                        return;
                    };
                    if len > 63 {
                        return;
                    }
                    labels.push(l);
                    pos += usize::from(len);
                }
                names.push(labels);
            }
            for n in names {
                if let Some(name) = netbond_proto::name::from_labels(&n) {
                    if out.dnssl.len() < MAX_RA_DNS && !out.dnssl.iter().any(|x| x.0 == name) {
                        out.dnssl.push((name, lifetime));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Raw ICMPv6 socket receiving only Router Advertisements on one interface.
#[derive(Debug)]
pub struct RaWatcher {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    ifname: String,
}

impl RaWatcher {
    /// Opens the watcher on `ifindex`/`ifname`.
    ///
    /// A raw socket receives from the moment it is created, before its
    /// ICMPv6 type filter (only type 134 passes) and `SO_BINDTODEVICE` are
    /// set; whatever got queued in that window (any ICMPv6 type, from any
    /// interface) is drained at the end of `open`.
    ///
    /// Needs `CAP_NET_RAW`. Must be called within a tokio runtime with IO
    /// enabled.
    pub fn open(ifindex: u32, ifname: &str) -> io::Result<Self> {
        let what = || format!("opening ICMPv6 socket for router advertisements on {ifname}");
        let step = |e: io::Error, opt: &str| ctx(e, format!("{}: {opt}", what()));
        let sock = Socket::new(Domain::IPV6, Type::RAW.cloexec(), Some(Protocol::ICMPV6))
            .map_err(|e| ctx(e, what()))?;
        sock.set_nonblocking(true).map_err(|e| ctx(e, what()))?;
        set_icmp6_filter(&sock, ND_ROUTER_ADVERT).map_err(|e| step(e, "ICMP6_FILTER"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|e| step(e, "SO_BINDTODEVICE"))?;
        sock.set_recv_hoplimit_v6(true)
            .map_err(|e| step(e, "IPV6_RECVHOPLIMIT"))?;
        // Router Solicitations must leave with hop limit 255 (RFC 4861 6.1.1
        // has receivers drop anything else).
        sock.set_multicast_hops_v6(255)
            .map_err(|e| step(e, "IPV6_MULTICAST_HOPS"))?;
        sock.set_unicast_hops_v6(255)
            .map_err(|e| step(e, "IPV6_UNICAST_HOPS"))?;
        sock.set_multicast_if_v6(ifindex)
            .map_err(|e| step(e, "IPV6_MULTICAST_IF"))?;
        sock.set_multicast_loop_v6(false)
            .map_err(|e| step(e, "IPV6_MULTICAST_LOOP"))?;

        let mut drained = 0usize;
        loop {
            match crate::net::sock::with_recv_buf(|buf| recv_icmp(sock.as_raw_fd(), buf)) {
                Ok(_) => drained += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(step(e, "draining")),
            }
        }
        if drained > 0 {
            crate::logging::debug!(ifname, drained, "discarded ICMPv6 queued before the filter");
        }

        // SAFETY: socket2::Socket owns its descriptor; it stays open and
        // `as_raw_fd` returns that same descriptor until the Socket is
        // dropped together with the AsyncFd.
        let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| ctx(e.into(), what()))?;
        Ok(RaWatcher {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
        })
    }

    /// Waits for the next valid Router Advertisement. Invalid ones are
    /// skipped and logged at debug level.
    pub async fn next(&self) -> io::Result<RaFlags> {
        crate::net::sock::recv_until(
            &self.fd,
            |fd, buf| recv_icmp(fd, buf).map(|meta| self.accept(meta, buf)),
            |e| ctx(e, self.recv_ctx()),
        )
        .await
    }

    /// Parse a received ICMPv6 message; `None` (logged) unless it is a valid RA.
    fn accept(&self, meta: IcmpMeta, buf: &[u8]) -> Option<RaFlags> {
        let Some(src) = meta.src else {
            crate::logging::debug!(ifname = %self.ifname, "dropping ICMPv6: no IPv6 source address");
            return None;
        };
        if meta.truncated {
            crate::logging::debug!(ifname = %self.ifname, %src, "dropping RA: truncated");
            return None;
        }
        let msg = &buf[..meta.len.min(buf.len())];
        match parse_ra(src, meta.hop_limit, msg) {
            Ok(flags) => Some(flags),
            Err(reason) => {
                crate::logging::debug!(ifname = %self.ifname, %src, "dropping RA: {reason}");
                None
            }
        }
    }

    /// Sends a Router Solicitation to `ff02::2` (hop limit 255) so a router
    /// answers at once instead of at its next periodic RA.
    ///
    /// Sent without a source link-layer address option; the kernel picks the
    /// link-local source. While that address is still tentative this fails
    /// with [`io::ErrorKind::AddrNotAvailable`]: retry later.
    pub async fn send_router_solicitation(&self) -> io::Result<()> {
        let dst = SocketAddrV6::new(ALL_ROUTERS, 0, 0, self.ifindex);
        let addr = SockAddr::from(SocketAddr::V6(dst));
        let rs = router_solicitation();
        crate::net::sock::send_to(&self.fd, &rs, &addr, |e| ctx(e, self.send_ctx())).await
    }

    fn recv_ctx(&self) -> String {
        format!("receiving router advertisements on {}", self.ifname)
    }

    fn send_ctx(&self) -> String {
        format!("sending router solicitation on {}", self.ifname)
    }
}

/// The 8-byte ICMPv6 Router Solicitation (type 133, code 0, checksum left
/// for the kernel, reserved zero).
pub fn router_solicitation() -> [u8; 8] {
    [ND_ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0]
}

/// Validates an ICMPv6 message (starting at the ICMPv6 header) received
/// from `src` with IPv6 hop limit `hop_limit`, as a Router Advertisement
/// (RFC 4861 section 6.1.2; the checksum is the kernel's job). Never panics.
pub fn parse_ra(src: Ipv6Addr, hop_limit: Option<u8>, msg: &[u8]) -> Result<RaFlags, &'static str> {
    match hop_limit {
        Some(255) => {}
        Some(_) => return Err("hop limit is not 255"),
        None => return Err("hop limit unknown"),
    }
    if src.segments()[0] & 0xffc0 != 0xfe80 {
        return Err("source is not link-local");
    }
    if msg.len() < 16 {
        return Err("shorter than 16 bytes");
    }
    if msg[0] != ND_ROUTER_ADVERT {
        return Err("not a router advertisement");
    }
    if msg[1] != 0 {
        return Err("ICMPv6 code is not 0");
    }
    let mut flags = RaFlags {
        managed: msg[5] & 0x80 != 0,
        other: msg[5] & 0x40 != 0,
        router: src,
        lifetime_secs: u16::from_be_bytes([msg[6], msg[7]]),
        rdnss: Vec::new(),
        dnssl: Vec::new(),
        captive_portal: None,
        captive_refused: None,
    };
    let mut opts = &msg[16..];
    while !opts.is_empty() {
        if opts.len() < 2 {
            return Err("truncated option");
        }
        let len = usize::from(opts[1]) * 8;
        if len == 0 {
            return Err("option with length 0");
        }
        if len > opts.len() {
            return Err("option exceeds message");
        }
        if opts[0] == OPT_CAPTIVE {
            // The URI, padded with NULs to the 8-octet boundary.
            let uri = &opts[2..len];
            let end = uri.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            match netbond_proto::captive::parse(&uri[..end]) {
                Ok(u) => flags.captive_portal = u,
                Err(why) => flags.captive_refused = Some(why),
            }
        } else {
            dns_option(&opts[..len], &mut flags);
        }
        opts = &opts[len..];
    }
    Ok(flags)
}

/// Metadata of one received ICMPv6 message.
struct IcmpMeta {
    len: usize,
    truncated: bool,
    src: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
}

/// One `recvmsg` on the raw socket, collecting the source address and the
/// `IPV6_HOPLIMIT` control message.
fn recv_icmp(fd: RawFd, buf: &mut [u8]) -> io::Result<IcmpMeta> {
    let r = crate::net::sock::recv_with_cmsg::<libc::sockaddr_in6>(
        fd,
        buf,
        libc::IPPROTO_IPV6,
        libc::IPV6_HOPLIMIT,
    )?;
    let src = (r.addr.sin6_family == libc::AF_INET6 as libc::sa_family_t)
        .then(|| Ipv6Addr::from(r.addr.sin6_addr.s6_addr));
    Ok(IcmpMeta {
        len: r.len,
        truncated: r.truncated,
        src,
        // The kernel passes an int.
        hop_limit: r.cmsg_u32.and_then(|v| u8::try_from(v as i32).ok()),
    })
}

/// Lets only ICMPv6 type `pass` through (Linux semantics: a set bit blocks).
fn set_icmp6_filter(sock: &Socket, pass: u8) -> io::Result<()> {
    let mut filter = [u32::MAX; 8];
    filter[usize::from(pass >> 5)] &= !(1u32 << (pass & 31));
    // SAFETY: passes a pointer to a live struct icmp6_filter (8 u32) with its
    // exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Adds context to an error (see [`crate::net::sock::ctx`]).
fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    crate::net::sock::ctx(e, what, "CAP_NET_RAW")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1, 0x2, 0x3, 0x4);

    /// An RA with the given flags byte and lifetime, plus a source
    /// link-layer address option and a prefix information option.
    fn ra(flags: u8, lifetime: u16) -> Vec<u8> {
        let mut m = vec![134, 0, 0x12, 0x34, 64, flags];
        m.extend_from_slice(&lifetime.to_be_bytes());
        m.extend_from_slice(&[0; 8]); // reachable time, retrans timer
        m.extend_from_slice(&[1, 1, 0x02, 0, 0, 0x11, 0x22, 0x33]); // SLLAO
        let mut pio = vec![3, 4, 64, 0xc0];
        pio.resize(32, 0);
        m.extend_from_slice(&pio);
        m
    }

    #[test]
    fn flags() {
        for (byte, m, o) in [
            (0x00, false, false),
            (0x80, true, false),
            (0x40, false, true),
            (0xc0, true, true),
            (0x3f, false, false),
        ] {
            let f = parse_ra(LL, Some(255), &ra(byte, 1800)).unwrap();
            assert_eq!(
                f,
                RaFlags {
                    managed: m,
                    other: o,
                    router: LL,
                    lifetime_secs: 1800,
                    rdnss: vec![],
                    dnssl: vec![],
                    captive_portal: None,
                    captive_refused: None,
                }
            );
        }
        // Bare 16-byte RA, lifetime 0.
        let f = parse_ra(LL, Some(255), &ra(0x80, 0)[..16]).unwrap();
        assert!(f.managed);
        assert_eq!(f.lifetime_secs, 0);
    }

    #[test]
    fn rejections() {
        let good = ra(0xc0, 600);
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_ra(LL, Some(64), &good), Err("hop limit is not 255"));
        assert_eq!(parse_ra(LL, None, &good), Err("hop limit unknown"));
        assert_eq!(
            parse_ra(global, Some(255), &good),
            Err("source is not link-local")
        );
        assert_eq!(
            parse_ra(Ipv6Addr::UNSPECIFIED, Some(255), &good),
            Err("source is not link-local")
        );
        let mut m = good.clone();
        m[0] = 133;
        assert_eq!(
            parse_ra(LL, Some(255), &m),
            Err("not a router advertisement")
        );
        let mut m = good.clone();
        m[1] = 1;
        assert_eq!(parse_ra(LL, Some(255), &m), Err("ICMPv6 code is not 0"));
        let mut m = good.clone();
        m[17] = 0;
        assert_eq!(parse_ra(LL, Some(255), &m), Err("option with length 0"));
        let mut m = good.clone();
        m[17] = 9;
        assert_eq!(parse_ra(LL, Some(255), &m), Err("option exceeds message"));
        let mut m = good.clone();
        m.push(1);
        assert_eq!(parse_ra(LL, Some(255), &m), Err("truncated option"));
    }

    #[test]
    fn truncations_never_panic() {
        let good = ra(0xc0, 600);
        for n in 0..good.len() {
            let r = parse_ra(LL, Some(255), &good[..n]);
            // Only cuts at option boundaries are valid.
            assert_eq!(r.is_ok(), n == 16 || n == 24, "prefix {n}");
        }
        let mut m = good.clone();
        for i in 0..m.len() {
            for v in [0u8, 1, 0x80, 0xff] {
                let old = m[i];
                m[i] = v;
                let _ = parse_ra(LL, Some(255), &m);
                m[i] = old;
            }
        }
    }

    #[test]
    fn rdnss_and_dnssl() {
        let mut m = ra(0x00, 1800);
        // RDNSS: two servers, lifetime 600.
        let mut rdnss = vec![25, 5, 0, 0, 0, 0, 2, 0x58];
        rdnss.extend_from_slice(&"fd00::53".parse::<Ipv6Addr>().unwrap().octets());
        rdnss.extend_from_slice(&"fd00::54".parse::<Ipv6Addr>().unwrap().octets());
        m.extend_from_slice(&rdnss);
        // DNSSL: "ra.test", then a hostile name (dropped), zero padding; lifetime 60.
        let mut names = vec![2, b'r', b'a', 4, b't', b'e', b's', b't', 0];
        names.extend_from_slice(&[4, b'a', b';', b'$', b'(', 0]);
        let mut dnssl = vec![31, 0, 0, 0, 0, 0, 0, 60];
        dnssl.extend_from_slice(&names);
        while dnssl.len() % 8 != 0 {
            dnssl.push(0);
        }
        dnssl[1] = (dnssl.len() / 8) as u8;
        m.extend_from_slice(&dnssl);
        // An RDNSS of even length is malformed: ignored, the RA still counts.
        m.extend_from_slice(&[25, 2, 0, 0, 0, 0, 0, 1]);
        m.extend_from_slice(&[0; 8]);
        let f = parse_ra(LL, Some(255), &m).unwrap();
        assert_eq!(
            f.rdnss,
            vec![
                ("fd00::53".parse().unwrap(), 600),
                ("fd00::54".parse().unwrap(), 600)
            ]
        );
        assert_eq!(f.dnssl, vec![("ra.test".to_string(), 60)]);
        // Every truncation of it is refused or parsed, never a panic.
        for cut in 0..m.len() {
            let _ = parse_ra(LL, Some(255), &m[..cut]);
        }
    }

    #[test]
    fn captive_portal_option() {
        let with = |uri: &[u8]| {
            let mut m = ra(0x00, 1800);
            let mut o = vec![37, 0];
            o.extend_from_slice(uri);
            while o.len() % 8 != 0 {
                o.push(0);
            }
            o[1] = (o.len() / 8) as u8;
            m.extend_from_slice(&o);
            parse_ra(LL, Some(255), &m).unwrap()
        };
        let f = with(b"https://portal.example/api");
        assert_eq!(
            f.captive_portal.as_deref(),
            Some("https://portal.example/api")
        );
        let f = with(b"https://bad\x07uri");
        assert_eq!(f.captive_portal, None);
        assert!(f.captive_refused.is_some());
        let f = with(b"urn:ietf:params:capport:unrestricted");
        assert_eq!((f.captive_portal, f.captive_refused), (None, None));
    }

    #[test]
    fn solicitation_bytes() {
        assert_eq!(router_solicitation(), [133, 0, 0, 0, 0, 0, 0, 0]);
    }
}
