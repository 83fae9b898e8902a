//! A tiny pcap reader for the DHCP traffic captured by the lab: the classic pcap file
//! format (global header + records, µs or ns timestamps, either byte order), Ethernet
//! (optionally 802.1Q-tagged), IPv4/IPv6 and UDP; the DHCPv4/DHCPv6 payloads are decoded
//! by the tests' one codec, netbond-proto's `testkit`.
//! A truncated last record (tcpdump still writing) is ignored.
// Not every tier uses every accessor or message type.
#![allow(dead_code, unused_imports)]

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use netbond_proto::testkit::v4::{
    ACK as DHCPACK, DECLINE as DHCPDECLINE, DISCOVER as DHCPDISCOVER, INFORM as DHCPINFORM,
    NAK as DHCPNAK, OFFER as DHCPOFFER, RELEASE as DHCPRELEASE, REQUEST as DHCPREQUEST,
};
pub use netbond_proto::testkit::v6::{
    ADVERTISE as V6_ADVERTISE, CONFIRM as V6_CONFIRM, DECLINE as V6_DECLINE,
    INFORMATION_REQUEST as V6_INFORMATION_REQUEST, REBIND as V6_REBIND, RELEASE as V6_RELEASE,
    RENEW as V6_RENEW, REPLY as V6_REPLY, REQUEST as V6_REQUEST, SOLICIT as V6_SOLICIT,
};
use netbond_proto::testkit::{hex, v4, v6};

/// A decoded DHCPv4 message (the tests' codec, netbond-proto's `testkit`).
pub type Dhcp4 = v4::Message;
/// A decoded DHCPv6 client/server message.
pub type Dhcp6 = v6::Message;

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
        Dhcp::V4(v4::parse(payload)?)
    } else if matches!(src_port, 546 | 547) || matches!(dst_port, 546 | 547) {
        Dhcp::V6(v6::parse(payload)?)
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
                    v4::type_name(t),
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
                    v6::type_name(d.msg_type),
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

    /// UDP `payload` from `sport` to `dport`, checksum 0.
    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        udp
    }

    /// An Ethernet frame of `ethertype` from 02:00:00:00:00:09 to broadcast.
    fn ether(ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    /// Build a minimal Ethernet/IPv4/UDP DHCPDISCOVER frame.
    fn discover_frame() -> Vec<u8> {
        let dhcp = v4::Builder::request(DHCPDISCOVER, 0xdead_beef, [2, 0, 0, 0, 0, 9])
            .set(50, &[10, 0, 0, 7])
            .build();
        let udp = udp(68, 67, &dhcp);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
        ];
        let tl = (20 + udp.len()) as u16;
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip.extend_from_slice(&udp);
        ether(0x0800, &ip)
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
    fn parses_dhcp6_over_ipv6() {
        let mut ia = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        ia.extend_from_slice(&[0, 5, 0, 24]);
        ia.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ia.extend_from_slice(&[0; 8]);
        let m = v6::build(V6_SOLICIT, 0x12_3456, &[(1, vec![0, 4, 1, 2]), (3, ia)]);
        let udp = udp(546, 547, &m);
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[17, 1]);
        ip.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ip.extend_from_slice(&"ff02::1:2".parse::<Ipv6Addr>().unwrap().octets());
        ip.extend_from_slice(&udp);
        let p = parse_frame(1, &ether(0x86dd, &ip), 1.0).unwrap();
        assert_eq!((p.src_port, p.dst_port), (546, 547));
        let d = p.v6().unwrap();
        assert_eq!(d.msg_type, V6_SOLICIT);
        assert_eq!(d.xid, 0x123456);
        assert_eq!(d.client_id.as_deref(), Some(&[0, 4, 1, 2][..]));
        assert_eq!(d.ia_na, vec![7]);
        assert_eq!(d.ia_addrs, vec![Ipv6Addr::LOCALHOST]);
    }
}
