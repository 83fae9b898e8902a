//! The frames on the packet socket: Ethernet II + IPv4 + UDP built around a DHCPv4
//! message and parsed back (checksums, fragments, lengths), and the BPF program that
//! lets only DHCPv4 client traffic reach the socket.

use socket2::SockFilter;
use std::net::Ipv4Addr;

/// Ethernet II header length.
const ETH_HLEN: usize = 14;
/// IPv4 header length without options (what we send).
const IP_HLEN: usize = 20;
/// UDP header length.
const UDP_HLEN: usize = 8;
/// All headers of a frame we build.
pub const HEADERS_LEN: usize = ETH_HLEN + IP_HLEN + UDP_HLEN;
/// Largest payload that fits in one IPv4 datagram with a 20-byte header.
pub const MAX_PAYLOAD: usize = u16::MAX as usize - IP_HLEN - UDP_HLEN;

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;
/// IPTOS_LOWDELAY, what ISC dhclient puts on its raw frames.
const TOS: u8 = 0x10;
const TTL: u8 = 64;

/// Classic BPF program accepting only IPv4 UDP datagrams to port 68 that are
/// not a non-first fragment (offsets include the 14-byte Ethernet header).
/// Equivalent to `tcpdump -dd 'ip and udp dst port 68 and ip[6:2] & 0x1fff = 0'`.
///
/// First fragments (MF set, offset 0) still pass: they carry the UDP header,
/// and [`parse_frame`] rejects them with a log line, which makes a fragmented
/// reply visible in debug logs instead of silently lost.
pub(super) const FILTER: [SockFilter; 11] = [
    SockFilter::new(0x28, 0, 0, 12),                    // ldh [12]
    SockFilter::new(0x15, 0, 8, ETHERTYPE_IPV4 as u32), // jeq #0x800 else drop
    SockFilter::new(0x30, 0, 0, 23),                    // ldb [23] (protocol)
    SockFilter::new(0x15, 0, 6, IPPROTO_UDP as u32),    // jeq #17 else drop
    SockFilter::new(0x28, 0, 0, 20),                    // ldh [20] (flags|frag)
    SockFilter::new(0x45, 4, 0, 0x1fff),                // jset #0x1fff -> drop
    SockFilter::new(0xb1, 0, 0, ETH_HLEN as u32),       // ldxb 4*([14]&0xf)
    SockFilter::new(0x48, 0, 0, (ETH_HLEN + 2) as u32), // ldh [x+16] (dst port)
    SockFilter::new(0x15, 0, 1, CLIENT_PORT as u32),    // jeq #68 else drop
    SockFilter::new(0x06, 0, 0, 0x0004_0000),           // ret #262144 (accept)
    SockFilter::new(0x06, 0, 0, 0),                     // drop: ret #0
];

/// Builds an Ethernet II + IPv4 + UDP (68 -> 67) frame around `payload`,
/// broadcast at the link layer.
///
/// The IPv4 header has no options, TTL 64, TOS 0x10, DF clear and the given
/// identification; both the IPv4 header checksum and the UDP checksum (over
/// the pseudo-header) are computed. Fails only if `payload` exceeds
/// [`MAX_PAYLOAD`].
pub fn build_frame(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    ip_id: u16,
    payload: &[u8],
) -> Result<Vec<u8>, &'static str> {
    if payload.len() > MAX_PAYLOAD {
        return Err("payload too large for one IPv4 datagram");
    }
    let udp_len = (UDP_HLEN + payload.len()) as u16;
    let ip_len = IP_HLEN as u16 + udp_len;
    let mut f = Vec::with_capacity(HEADERS_LEN + payload.len());

    // Ethernet II.
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

    // IPv4.
    f.push(0x45); // version 4, IHL 5
    f.push(TOS);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&ip_id.to_be_bytes());
    f.extend_from_slice(&[0, 0]); // flags (DF clear), fragment offset 0
    f.push(TTL);
    f.push(IPPROTO_UDP);
    f.extend_from_slice(&[0, 0]); // header checksum, filled below
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    let ip_csum = checksum(&f[ETH_HLEN..ETH_HLEN + IP_HLEN], 0);
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&ip_csum.to_be_bytes());

    // UDP.
    f.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    f.extend_from_slice(&SERVER_PORT.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]); // checksum, filled below
    f.extend_from_slice(payload);
    let udp_start = ETH_HLEN + IP_HLEN;
    let mut udp_csum = checksum(&f[udp_start..], pseudo_sum(src_ip, dst_ip, udp_len));
    if udp_csum == 0 {
        // 0 means "no checksum" in UDP over IPv4; send its other encoding.
        udp_csum = 0xffff;
    }
    f[udp_start + 6..udp_start + 8].copy_from_slice(&udp_csum.to_be_bytes());
    Ok(f)
}

/// Validates an Ethernet II frame carrying IPv4/UDP to port 68 and returns
/// (IPv4 source, Ethernet source, UDP payload).
///
/// Checks: EtherType IPv4, version 4, IHL >= 5, header checksum, total length
/// within the frame (Ethernet padding after it is ignored), not a fragment
/// (MF clear, offset 0), protocol UDP, destination port 68, UDP length within
/// the IP payload, and — when `verify_udp_checksum` and the field is nonzero —
/// the UDP checksum. Callers pass `false` only when the kernel says the
/// checksum was left to hardware (`TP_STATUS_CSUMNOTREADY`) or already
/// verified it (`TP_STATUS_CSUM_VALID`). Never panics, whatever the input.
pub fn parse_frame(
    frame: &[u8],
    verify_udp_checksum: bool,
) -> Result<(Ipv4Addr, [u8; 6], &[u8]), &'static str> {
    if frame.len() < ETH_HLEN {
        return Err("truncated Ethernet header");
    }
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&frame[6..12]);
    if be16(frame, 12) != ETHERTYPE_IPV4 {
        return Err("not IPv4 EtherType");
    }
    let ip = &frame[ETH_HLEN..];
    if ip.len() < IP_HLEN {
        return Err("truncated IPv4 header");
    }
    if ip[0] >> 4 != 4 {
        return Err("IP version is not 4");
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < IP_HLEN {
        return Err("IPv4 IHL below 5");
    }
    if ip.len() < ihl {
        return Err("truncated IPv4 options");
    }
    let total = usize::from(be16(ip, 2));
    if total < ihl {
        return Err("IPv4 total length shorter than header");
    }
    if total > ip.len() {
        return Err("IPv4 total length exceeds frame");
    }
    if checksum(&ip[..ihl], 0) != 0 {
        return Err("bad IPv4 header checksum");
    }
    if be16(ip, 6) & 0x3fff != 0 {
        return Err("IPv4 fragment");
    }
    if ip[9] != IPPROTO_UDP {
        return Err("not UDP");
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[ihl..total];
    if udp.len() < UDP_HLEN {
        return Err("truncated UDP header");
    }
    if be16(udp, 2) != CLIENT_PORT {
        return Err("UDP destination port is not 68");
    }
    let udp_len = be16(udp, 4);
    if usize::from(udp_len) < UDP_HLEN {
        return Err("UDP length shorter than header");
    }
    if usize::from(udp_len) > udp.len() {
        return Err("UDP length exceeds IP payload");
    }
    let udp = &udp[..usize::from(udp_len)];
    if verify_udp_checksum
        && be16(udp, 6) != 0
        && checksum(udp, pseudo_sum(src_ip, dst_ip, udp_len)) != 0
    {
        return Err("bad UDP checksum");
    }
    Ok((src_ip, src_mac, &udp[UDP_HLEN..]))
}

/// Big-endian u16 at `at`; callers have checked `at + 2 <= b.len()`.
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// One's-complement sum of the IPv4 pseudo-header for UDP (unfolded).
fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(IPPROTO_UDP),
        udp_len,
    ]
    .iter()
    .map(|&w| u32::from(w))
    .sum()
}

/// Internet checksum (RFC 1071) of `data`, starting from the unfolded sum
/// `initial`. Over data whose checksum field is filled in, the result is 0
/// when the checksum is correct.
fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc];
    const SRV_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x11, 0x22, 0x33];

    /// A frame as a server would send it to us: UDP 67 -> 68.
    fn reply(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let mut f = build_frame(SRV_MAC, src, dst, 0x1234, payload).unwrap();
        // Swap ports to 67 -> 68 and recompute the UDP checksum.
        f[34..36].copy_from_slice(&67u16.to_be_bytes());
        f[36..38].copy_from_slice(&68u16.to_be_bytes());
        fix_udp_csum(&mut f);
        f
    }

    fn fix_ip_csum(f: &mut [u8]) {
        let ihl = usize::from(f[14] & 0xf) * 4;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = checksum(&f[14..14 + ihl], 0);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    fn fix_udp_csum(f: &mut [u8]) {
        let ihl = usize::from(f[14] & 0xf) * 4;
        let u = 14 + ihl;
        let len = be16(f, u + 4);
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        f[u + 6..u + 8].copy_from_slice(&[0, 0]);
        let mut c = checksum(&f[u..u + usize::from(len)], pseudo_sum(src, dst, len));
        if c == 0 {
            c = 0xffff;
        }
        f[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn ipv4_header_checksum_known_value() {
        // The classic example header (Wikipedia, "IPv4 header checksum").
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h, 0), 0xb861);
        let mut h2 = h;
        h2[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h2, 0), 0);
    }

    #[test]
    fn odd_length_checksum() {
        // RFC 1071 pads an odd trailing byte with zero.
        assert_eq!(checksum(&[0x01], 0), !0x0100);
        assert_eq!(checksum(&[0x00, 0x01, 0xf2], 0), !(0x0001u16 + 0xf200));
    }

    #[test]
    fn discover_frame_known_bytes() {
        // Values computed independently (Python, RFC 1071) for a 4-byte
        // payload from 0.0.0.0 to 255.255.255.255 with IP ID 0x1234.
        let f = build_frame(
            MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            0x1234,
            b"\x01\x02\x03\x04",
        )
        .unwrap();
        assert_eq!(f.len(), HEADERS_LEN + 4);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(
            &f[14..34],
            &[
                0x45, 0x10, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x68, 0x8a, 0, 0, 0, 0,
                255, 255, 255, 255
            ]
        );
        assert_eq!(
            &f[34..42],
            &[0x00, 0x44, 0x00, 0x43, 0x00, 0x0c, 0xfb, 0x49]
        );
    }

    #[test]
    fn udp_checksum_zero_is_sent_as_ffff() {
        // Search a 2-byte payload whose checksum computes to 0; the frame must
        // then carry 0xffff, which still verifies.
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let mut found = false;
        for v in 0..=u16::MAX {
            let p = v.to_be_bytes();
            let f = build_frame(MAC, src, dst, 0, &p).unwrap();
            let mut g = f.clone();
            g[40..42].copy_from_slice(&[0, 0]);
            if checksum(&g[34..], pseudo_sum(src, dst, 10)) == 0 {
                assert_eq!(&f[40..42], &[0xff, 0xff]);
                found = true;
                break;
            }
        }
        assert!(found);
    }

    #[test]
    fn round_trip() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(192, 0, 2, 77);
        for len in [0usize, 1, 2, 3, 300, 547, 1472] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let f = reply(src, dst, &payload);
            let (ip, mac, p) = parse_frame(&f, true).unwrap();
            assert_eq!(ip, src);
            assert_eq!(mac, SRV_MAC);
            assert_eq!(p, &payload[..]);
        }
    }

    #[test]
    fn oversize_payload_rejected() {
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(build_frame(MAC, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 0, &big).is_err());
        let max = vec![0u8; MAX_PAYLOAD];
        let f = build_frame(MAC, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 0, &max).unwrap();
        assert_eq!(be16(&f, 16), u16::MAX);
    }

    #[test]
    fn ethernet_padding_ignored_and_ip_options_accepted() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let mut f = reply(src, Ipv4Addr::BROADCAST, b"hi");
        f.extend_from_slice(&[0u8; 20]); // padding after the datagram
        assert_eq!(parse_frame(&f, true).unwrap().2, b"hi");

        // Insert 4 bytes of options (NOPs) after the IPv4 header.
        let mut g = f[..34].to_vec();
        g.extend_from_slice(&[1, 1, 1, 0]);
        g.extend_from_slice(&f[34..]);
        g[14] = 0x46;
        let total = be16(&g, 16) + 4;
        g[16..18].copy_from_slice(&total.to_be_bytes());
        fix_ip_csum(&mut g);
        assert_eq!(parse_frame(&g, true).unwrap().2, b"hi");
    }

    #[test]
    fn zero_udp_checksum_accepted() {
        let mut f = reply(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::BROADCAST, b"abc");
        f[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(parse_frame(&f, true).unwrap().2, b"abc");
    }

    #[test]
    fn rejections() {
        let good = reply(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::BROADCAST, b"payload");
        assert!(parse_frame(&good, true).is_ok());

        type Mutation = fn(&mut Vec<u8>);
        let cases: &[(&str, Mutation, &str)] = &[
            ("ethertype", |f| f[12] = 0x86, "not IPv4 EtherType"),
            (
                "version",
                |f| {
                    f[14] = 0x65;
                    fix_ip_csum(f)
                },
                "IP version is not 4",
            ),
            ("ihl", |f| f[14] = 0x44, "IPv4 IHL below 5"),
            (
                "total too long",
                |f| {
                    let t = be16(f, 16) + 100;
                    f[16..18].copy_from_slice(&t.to_be_bytes());
                    fix_ip_csum(f)
                },
                "IPv4 total length exceeds frame",
            ),
            (
                "total too short",
                |f| {
                    f[16..18].copy_from_slice(&10u16.to_be_bytes());
                    fix_ip_csum(f)
                },
                "IPv4 total length shorter than header",
            ),
            ("ip checksum", |f| f[24] ^= 1, "bad IPv4 header checksum"),
            (
                "more fragments",
                |f| {
                    f[20] = 0x20;
                    fix_ip_csum(f)
                },
                "IPv4 fragment",
            ),
            (
                "fragment offset",
                |f| {
                    f[21] = 0x01;
                    fix_ip_csum(f)
                },
                "IPv4 fragment",
            ),
            (
                "protocol",
                |f| {
                    f[23] = 6;
                    fix_ip_csum(f)
                },
                "not UDP",
            ),
            (
                "port",
                |f| {
                    f[37] = 67;
                    fix_udp_csum(f)
                },
                "UDP destination port is not 68",
            ),
            (
                "udp len short",
                |f| {
                    f[38..40].copy_from_slice(&7u16.to_be_bytes());
                },
                "UDP length shorter than header",
            ),
            (
                "udp len long",
                |f| {
                    let l = be16(f, 38) + 1;
                    f[38..40].copy_from_slice(&l.to_be_bytes());
                },
                "UDP length exceeds IP payload",
            ),
            ("udp checksum", |f| f[42] ^= 0x80, "bad UDP checksum"),
        ];
        for (name, mutate, want) in cases {
            let mut f = good.clone();
            mutate(&mut f);
            assert_eq!(parse_frame(&f, true).err(), Some(*want), "case {name}");
        }

        // A corrupted payload passes when the kernel says the checksum was
        // offloaded.
        let mut f = good.clone();
        f[42] ^= 0x80;
        assert!(parse_frame(&f, false).is_ok());
    }

    #[test]
    fn truncations_never_panic_and_never_pass() {
        let good = reply(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::BROADCAST,
            &[0x5a; 300],
        );
        for n in 0..good.len() {
            assert!(parse_frame(&good[..n], true).is_err(), "prefix {n}");
            assert!(parse_frame(&good[..n], false).is_err(), "prefix {n}");
        }
        // Arbitrary header bytes never panic either.
        let mut f = good.clone();
        for i in 0..HEADERS_LEN + 4 {
            for v in [0u8, 0x01, 0x0f, 0x45, 0x4f, 0x80, 0xff] {
                let old = f[i];
                f[i] = v;
                let _ = parse_frame(&f, true);
                let _ = parse_frame(&f[..f.len() / 2], true);
                f[i] = old;
            }
        }
    }

    /// Minimal classic-BPF interpreter for the opcodes FILTER uses, to check
    /// the program without a kernel.
    fn run_filter(pkt: &[u8]) -> u32 {
        // SockFilter is repr(transparent) over sock_filter.
        let prog: &[libc::sock_filter] =
            unsafe { std::slice::from_raw_parts(FILTER.as_ptr().cast(), FILTER.len()) };
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let ld = |off: usize, n: usize| -> Option<u32> {
            let b = pkt.get(off..off + n)?;
            Some(b.iter().fold(0u32, |acc, &v| (acc << 8) | u32::from(v)))
        };
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                0x28 => match ld(i.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0x30 => match ld(i.k as usize, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0x48 => match ld((x + i.k) as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0xb1 => match ld(i.k as usize, 1) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                },
                0x15 => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                0x45 => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
                0x06 => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn bpf_filter() {
        let good = reply(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::BROADCAST, b"x");
        assert_ne!(run_filter(&good), 0);
        // First fragment passes the filter (rejected later by parse_frame).
        let mut f = good.clone();
        f[20] = 0x20;
        assert_ne!(run_filter(&f), 0);
        let mut f = good.clone();
        f[21] = 1;
        assert_eq!(run_filter(&f), 0);
        let mut f = good.clone();
        f[12] = 0x86;
        assert_eq!(run_filter(&f), 0);
        let mut f = good.clone();
        f[23] = 6;
        assert_eq!(run_filter(&f), 0);
        let mut f = good.clone();
        f[37] = 67;
        assert_eq!(run_filter(&f), 0);
        // Port found behind IP options.
        let mut g = good[..34].to_vec();
        g.extend_from_slice(&[1, 1, 1, 0]);
        g.extend_from_slice(&good[34..]);
        g[14] = 0x46;
        assert_ne!(run_filter(&g), 0);
        // Our own DISCOVER (to port 67) does not pass.
        let d = build_frame(MAC, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 1, b"x").unwrap();
        assert_eq!(run_filter(&d), 0);
        assert_eq!(run_filter(&good[..20]), 0);
    }
}
