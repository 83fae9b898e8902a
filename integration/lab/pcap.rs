//! A tiny pcap reader for the DHCP traffic captured by the lab: the classic pcap file
//! format (global header + records, µs or ns timestamps, either byte order), Ethernet
//! (optionally 802.1Q-tagged), IPv4/IPv6, UDP, and just enough DHCPv4/DHCPv6 to read
//! message types, transaction ids and the identifiers the tests assert on.
//! A truncated last record (tcpdump still writing) is ignored.
#![allow(dead_code)] // Not every test target uses every accessor.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const DHCPDISCOVER: u8 = 1;
pub const DHCPOFFER: u8 = 2;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPDECLINE: u8 = 4;
pub const DHCPACK: u8 = 5;
pub const DHCPNAK: u8 = 6;
pub const DHCPRELEASE: u8 = 7;
pub const DHCPINFORM: u8 = 8;

pub const V6_SOLICIT: u8 = 1;
pub const V6_ADVERTISE: u8 = 2;
pub const V6_REQUEST: u8 = 3;
pub const V6_CONFIRM: u8 = 4;
pub const V6_RENEW: u8 = 5;
pub const V6_REBIND: u8 = 6;
pub const V6_REPLY: u8 = 7;
pub const V6_RELEASE: u8 = 8;
pub const V6_DECLINE: u8 = 9;
pub const V6_INFORMATION_REQUEST: u8 = 11;

/// A decoded DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp4 {
    /// BOOTP op: 1 request, 2 reply.
    pub op: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Option 53.
    pub msg_type: Option<u8>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 61, raw.
    pub client_id: Option<Vec<u8>>,
    /// All options as (code, value), in order.
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Dhcp4 {
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }
}

/// A decoded DHCPv6 message (client/server messages; relay messages are not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6 {
    pub msg_type: u8,
    pub xid: u32,
    /// Option 1 (the client's DUID).
    pub client_id: Option<Vec<u8>>,
    /// Option 2.
    pub server_id: Option<Vec<u8>>,
    /// IA_NA (option 3) IAIDs.
    pub ia_na: Vec<u32>,
    /// IAADDR (option 5) addresses inside any IA_NA.
    pub ia_addrs: Vec<Ipv6Addr>,
    /// Top-level options as (code, value).
    pub options: Vec<(u16, Vec<u8>)>,
}

/// Protocol payload of a captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dhcp {
    V4(Dhcp4),
    V6(Dhcp6),
}

/// One captured DHCP packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Capture timestamp, seconds since the epoch.
    pub ts: f64,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub dhcp: Dhcp,
}

impl Packet {
    pub fn v4(&self) -> Option<&Dhcp4> {
        match &self.dhcp {
            Dhcp::V4(d) => Some(d),
            Dhcp::V6(_) => None,
        }
    }

    pub fn v6(&self) -> Option<&Dhcp6> {
        match &self.dhcp {
            Dhcp::V6(d) => Some(d),
            Dhcp::V4(_) => None,
        }
    }

    /// DHCPv4 message type (option 53), if this is DHCPv4.
    pub fn v4_type(&self) -> Option<u8> {
        self.v4().and_then(|d| d.msg_type)
    }

    /// DHCPv6 message type, if this is DHCPv6.
    pub fn v6_type(&self) -> Option<u8> {
        self.v6().map(|d| d.msg_type)
    }
}

fn be16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn ip4(b: &[u8], o: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

/// Parse a whole pcap file; records that are not Ethernet/IP/UDP DHCP are skipped.
pub fn parse_pcap(data: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    if data.len() < 24 {
        return out;
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return out,
    };
    let rd32 = |o: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let linktype = rd32(20).unwrap_or(0);
    let mut off = 24;
    while let (Some(sec), Some(frac), Some(incl)) = (rd32(off), rd32(off + 4), rd32(off + 8)) {
        let start = off + 16;
        let end = start + incl as usize;
        let Some(frame) = data.get(start..end) else {
            break; // truncated record: tcpdump is still writing it
        };
        let ts = sec as f64 + frac as f64 / if nanos { 1e9 } else { 1e6 };
        if let Some(p) = parse_frame(linktype, frame, ts) {
            out.push(p);
        }
        off = end;
    }
    out
}

/// Decode one link-layer frame.
pub fn parse_frame(linktype: u32, f: &[u8], ts: f64) -> Option<Packet> {
    if linktype != 1 {
        return None; // only DLT_EN10MB
    }
    let dst_mac: [u8; 6] = f.get(0..6)?.try_into().ok()?;
    let src_mac: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let mut ethertype = be16(f, 12)?;
    let mut l3 = 14;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = be16(f, l3 + 2)?;
        l3 += 4;
    }
    let (src_ip, dst_ip, l4) = match ethertype {
        0x0800 => {
            let ihl = (*f.get(l3)? & 0x0f) as usize * 4;
            if f[l3] >> 4 != 4 || ihl < 20 || *f.get(l3 + 9)? != 17 {
                return None;
            }
            // Fragments other than the first are not decodable.
            if be16(f, l3 + 6)? & 0x1fff != 0 {
                return None;
            }
            (
                IpAddr::V4(ip4(f, l3 + 12)?),
                IpAddr::V4(ip4(f, l3 + 16)?),
                l3 + ihl,
            )
        }
        0x86dd => {
            let src: [u8; 16] = f.get(l3 + 8..l3 + 24)?.try_into().ok()?;
            let dst: [u8; 16] = f.get(l3 + 24..l3 + 40)?.try_into().ok()?;
            let mut next = *f.get(l3 + 6)?;
            let mut o = l3 + 40;
            // Skip hop-by-hop, routing and destination-options headers.
            while matches!(next, 0 | 43 | 60) {
                next = *f.get(o)?;
                o += (*f.get(o + 1)? as usize + 1) * 8;
            }
            if next != 17 {
                return None;
            }
            (IpAddr::V6(src.into()), IpAddr::V6(dst.into()), o)
        }
        _ => return None,
    };
    let src_port = be16(f, l4)?;
    let dst_port = be16(f, l4 + 2)?;
    let ulen = be16(f, l4 + 4)? as usize;
    let payload_end = (l4 + ulen).min(f.len());
    let payload = f.get(l4 + 8..payload_end)?;
    let dhcp = if matches!(src_port, 67 | 68) || matches!(dst_port, 67 | 68) {
        Dhcp::V4(parse_dhcp4(payload)?)
    } else if matches!(src_port, 546 | 547) || matches!(dst_port, 546 | 547) {
        Dhcp::V6(parse_dhcp6(payload)?)
    } else {
        return None;
    };
    Some(Packet {
        ts,
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        dhcp,
    })
}

/// Decode a DHCPv4 (BOOTP) message.
pub fn parse_dhcp4(b: &[u8]) -> Option<Dhcp4> {
    if b.len() < 240 || be32(b, 236)? != 0x6382_5363 {
        return None;
    }
    let mut options = Vec::new();
    let mut o = 240;
    while o < b.len() {
        let code = b[o];
        match code {
            0 => {
                o += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = *b.get(o + 1)? as usize;
        let val = b.get(o + 2..o + 2 + len)?;
        options.push((code, val.to_vec()));
        o += 2 + len;
    }
    let find = |c: u8| {
        options
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.clone())
    };
    Some(Dhcp4 {
        op: b[0],
        xid: be32(b, 4)?,
        flags: be16(b, 10)?,
        ciaddr: ip4(b, 12)?,
        yiaddr: ip4(b, 16)?,
        chaddr: b.get(28..34)?.try_into().ok()?,
        msg_type: find(53).and_then(|v| v.first().copied()),
        requested_ip: find(50).and_then(|v| ip4(&v, 0)),
        server_id: find(54).and_then(|v| ip4(&v, 0)),
        client_id: find(61),
        options,
    })
}

/// Decode a DHCPv6 client/server message.
pub fn parse_dhcp6(b: &[u8]) -> Option<Dhcp6> {
    let msg_type = *b.first()?;
    if msg_type == 12 || msg_type == 13 {
        return None; // relay-forw / relay-repl
    }
    let xid = u32::from_be_bytes([0, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
    let options = parse_opts6(b.get(4..)?);
    let find = |c: u16| {
        options
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.clone())
    };
    let mut ia_na = Vec::new();
    let mut ia_addrs = Vec::new();
    for (code, val) in &options {
        if *code == 3 && val.len() >= 12 {
            ia_na.push(be32(val, 0)?);
            for (c, v) in parse_opts6(&val[12..]) {
                if c == 5 && v.len() >= 16 {
                    let a: [u8; 16] = v[..16].try_into().ok()?;
                    ia_addrs.push(Ipv6Addr::from(a));
                }
            }
        }
    }
    Some(Dhcp6 {
        msg_type,
        xid,
        client_id: find(1),
        server_id: find(2),
        ia_na,
        ia_addrs,
        options,
    })
}

fn parse_opts6(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let code = u16::from_be_bytes([b[0], b[1]]);
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        let Some(val) = b.get(4..4 + len) else {
            break;
        };
        out.push((code, val.to_vec()));
        b = &b[4 + len..];
    }
    out
}

/// Human-readable name of a DHCPv4 message type.
pub fn v4_name(t: u8) -> &'static str {
    match t {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        _ => "?",
    }
}

/// Human-readable name of a DHCPv6 message type.
pub fn v6_name(t: u8) -> &'static str {
    match t {
        1 => "SOLICIT",
        2 => "ADVERTISE",
        3 => "REQUEST",
        4 => "CONFIRM",
        5 => "RENEW",
        6 => "REBIND",
        7 => "REPLY",
        8 => "RELEASE",
        9 => "DECLINE",
        10 => "RECONFIGURE",
        11 => "INFORMATION-REQUEST",
        _ => "?",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One line per packet, timestamps relative to the first.
pub fn summary(pkts: &[Packet]) -> String {
    let t0 = pkts.first().map(|p| p.ts).unwrap_or(0.0);
    let mut s = String::new();
    for p in pkts {
        let _ = write!(s, "{:8.3} {} > {} ", p.ts - t0, p.src_ip, p.dst_ip);
        match &p.dhcp {
            Dhcp::V4(d) => {
                let t = d.msg_type.unwrap_or(0);
                let _ = write!(
                    s,
                    "DHCP{} xid={:08x} chaddr={} src_mac={} ciaddr={} yiaddr={} req={:?} cid={}",
                    v4_name(t),
                    d.xid,
                    hex(&d.chaddr),
                    hex(&p.src_mac),
                    d.ciaddr,
                    d.yiaddr,
                    d.requested_ip,
                    d.client_id.as_deref().map(hex).unwrap_or_default()
                );
            }
            Dhcp::V6(d) => {
                let _ = write!(
                    s,
                    "DHCPv6 {} xid={:06x} cid={} addrs={:?}",
                    v6_name(d.msg_type),
                    d.xid,
                    d.client_id.as_deref().map(hex).unwrap_or_default(),
                    d.ia_addrs
                );
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a minimal Ethernet/IPv4/UDP DHCPDISCOVER frame.
    fn discover_frame() -> Vec<u8> {
        let mut dhcp = vec![0u8; 240];
        dhcp[0] = 1;
        dhcp[1] = 1;
        dhcp[2] = 6;
        dhcp[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        dhcp[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        dhcp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        dhcp.extend_from_slice(&[53, 1, 1, 50, 4, 10, 0, 0, 7, 0, 255]);
        let mut udp = Vec::new();
        udp.extend_from_slice(&68u16.to_be_bytes());
        udp.extend_from_slice(&67u16.to_be_bytes());
        udp.extend_from_slice(&((8 + dhcp.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&dhcp);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
        ];
        let tl = (20 + udp.len()) as u16;
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn parses_pcap_with_truncated_tail() {
        let frame = discover_frame();
        let mut file = Vec::new();
        file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        file.extend_from_slice(&[2, 0, 4, 0]);
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        for _ in 0..2 {
            file.extend_from_slice(&100u32.to_le_bytes());
            file.extend_from_slice(&500_000u32.to_le_bytes());
            file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            file.extend_from_slice(&frame);
        }
        file.truncate(file.len() - 10);
        let pkts = parse_pcap(&file);
        assert_eq!(pkts.len(), 1);
        let d = pkts[0].v4().unwrap();
        assert_eq!(d.msg_type, Some(DHCPDISCOVER));
        assert_eq!(d.xid, 0xdead_beef);
        assert_eq!(d.chaddr, [2, 0, 0, 0, 0, 9]);
        assert_eq!(d.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(pkts[0].ts, 100.5);
    }

    #[test]
    fn parses_dhcp6() {
        let mut m = vec![V6_SOLICIT, 0x12, 0x34, 0x56];
        m.extend_from_slice(&[0, 1, 0, 4, 0, 4, 1, 2]); // client id (DUID-UUID stub)
        let mut ia = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        ia.extend_from_slice(&[0, 5, 0, 24]);
        ia.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ia.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[0, 3]);
        m.extend_from_slice(&(ia.len() as u16).to_be_bytes());
        m.extend_from_slice(&ia);
        let d = parse_dhcp6(&m).unwrap();
        assert_eq!(d.msg_type, V6_SOLICIT);
        assert_eq!(d.xid, 0x123456);
        assert_eq!(d.client_id.as_deref(), Some(&[0, 4, 1, 2][..]));
        assert_eq!(d.ia_na, vec![7]);
        assert_eq!(d.ia_addrs, vec![Ipv6Addr::LOCALHOST]);
    }
}
