//! ARP for IPv4 over Ethernet (RFC 826): the packet, its wire form, the probes and
//! announcements of RFC 5227 and RFC 3927, and the conflict rule. Shared by the
//! link-local engine ([`crate::ipv4ll`]) and the daemon's conflict check on a new lease.

use std::net::Ipv4Addr;

/// An ARP packet for IPv4 over Ethernet is 28 octets.
pub const ARP_LEN: usize = 28;

/// An IPv4-over-Ethernet ARP packet (the part after the Ethernet header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address (0.0.0.0 in a probe).
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// A probe for `addr` from `mac` (RFC 5227 2.1.1, RFC 3927 2.2.1): a request with
    /// sender address 0.0.0.0.
    pub fn probe(mac: [u8; 6], addr: Ipv4Addr) -> Arp {
        Arp {
            op: 1,
            sha: mac,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: [0; 6],
            tpa: addr,
        }
    }

    /// An ARP announcement (RFC 3927 2.4): a request with sender and target `addr`.
    pub fn announce(mac: [u8; 6], addr: Ipv4Addr) -> Arp {
        Arp {
            spa: addr,
            ..Arp::probe(mac, addr)
        }
    }

    /// Wire form.
    pub fn to_bytes(self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }

    /// Parse; `None` for anything that is not IPv4-over-Ethernet ARP.
    pub fn parse(b: &[u8]) -> Option<Arp> {
        if b.len() < ARP_LEN || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&b[8..14]);
        let mut tha = [0u8; 6];
        tha.copy_from_slice(&b[18..24]);
        Some(Arp {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha,
            spa: ip(14),
            tha,
            tpa: ip(24),
        })
    }

    /// True when this packet shows another host using (or probing for) `addr`.
    pub fn conflicts(&self, addr: Ipv4Addr, our_macs: &[[u8; 6]]) -> bool {
        if our_macs.contains(&self.sha) {
            return false;
        }
        let claims = self.spa == addr;
        let probes_too = self.op == 1 && self.spa.is_unspecified() && self.tpa == addr;
        claims || probes_too
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    #[test]
    fn probe_round_trips() {
        let p = Arp::probe(MAC, A);
        let b = p.to_bytes();
        assert_eq!(&b[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(Arp::parse(&b), Some(p));
        for cut in 0..ARP_LEN {
            assert_eq!(Arp::parse(&b[..cut]), None);
        }
    }

    #[test]
    fn conflicts_are_other_hosts_claiming_or_probing() {
        let reply = Arp {
            op: 2,
            sha: OTHER,
            spa: A,
            tha: MAC,
            tpa: Ipv4Addr::UNSPECIFIED,
        };
        assert!(reply.conflicts(A, &[MAC]));
        assert!(Arp::probe(OTHER, A).conflicts(A, &[MAC]));
        assert!(!Arp::probe(MAC, A).conflicts(A, &[MAC]), "our own probe");
        assert!(!Arp::probe(OTHER, Ipv4Addr::new(10, 0, 0, 6)).conflicts(A, &[MAC]));
        let unrelated = Arp {
            spa: Ipv4Addr::new(10, 0, 0, 1),
            ..reply
        };
        assert!(!unrelated.conflicts(A, &[MAC]));
    }
}
