//! The fixed headers of link, address and route messages, the requests netbond builds
//! from them, and the address parser. (Link attributes are read in `net/link.rs`,
//! where `LinkInfo` lives.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attr::*;

/// `struct ifinfomsg`: family u8, pad u8, type u16, index i32, flags u32, change u32.
pub const IFINFOMSG_LEN: usize = 16;
/// `struct ifaddrmsg`: family u8, prefixlen u8, flags u8, scope u8, index u32.
pub const IFADDRMSG_LEN: usize = 8;
/// `struct rtmsg`: family, dst_len, src_len, tos, table, protocol, scope, type (u8
/// each), flags u32.
pub const RTMSG_LEN: usize = 12;

/// An `ifinfomsg` (`AF_UNSPEC`) for interface `index` (0: none, e.g. lookup by
/// name), changing the flag bits in `change` to those in `flags`.
pub fn ifinfo(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// The header fields of a link message, and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkHeader<'a> {
    pub family: u8,
    pub index: u32,
    pub flags: u32,
    pub attrs: &'a [u8],
}

/// Split a link message body; `None` when it is shorter than its header.
pub fn link_header(body: &[u8]) -> Option<LinkHeader<'_>> {
    Some(LinkHeader {
        family: *body.first()?,
        index: get_u32(body.get(4..)?)?,
        flags: get_u32(body.get(8..)?)?,
        attrs: body.get(IFINFOMSG_LEN..)?,
    })
}

/// `RTM_NEWLINK` (with `NLM_F_CREATE | NLM_F_EXCL`) of an active-backup bond, up.
pub fn bond_create(name: &str, fail_over_mac: u8, miimon: u32, primary_reselect: u8) -> Vec<u8> {
    let mut b = ifinfo(0, IFF_UP, IFF_UP);
    put_str(&mut b, IFLA_IFNAME, name);
    nest(&mut b, IFLA_LINKINFO, |b| {
        put_str(b, IFLA_INFO_KIND, "bond");
        nest(b, IFLA_INFO_DATA, |b| {
            // BOND_MODE_ACTIVEBACKUP.
            put_u8(b, IFLA_BOND_MODE, 1);
            put_u32(b, IFLA_BOND_MIIMON, miimon);
            put_u8(b, IFLA_BOND_PRIMARY_RESELECT, primary_reselect);
            put_u8(b, IFLA_BOND_FAIL_OVER_MAC, fail_over_mac);
        });
    });
    b
}

/// `RTM_NEWLINK` setting a bond's primary port. By index only: a message that also
/// names the bond reads as a rename, which the kernel refuses for an up interface
/// (EBUSY) after applying the option.
pub fn bond_primary(bond: u32, port: u32) -> Vec<u8> {
    let mut b = ifinfo(bond, 0, 0);
    nest(&mut b, IFLA_LINKINFO, |b| {
        put_str(b, IFLA_INFO_KIND, "bond");
        nest(b, IFLA_INFO_DATA, |b| put_u32(b, IFLA_BOND_PRIMARY, port));
    });
    b
}

/// One address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrMsg {
    pub family: u8,
    pub prefix_len: u8,
    /// `IFA_FLAGS` when present (it carries the bits above 8), else the header's.
    pub flags: u32,
    pub index: u32,
    /// `IFA_LOCAL`, else `IFA_ADDRESS` (which is the peer on point-to-point links).
    pub local: Option<IpAddr>,
    /// Made by the kernel from a router advertisement (`IFA_PROTO` kernel_ra).
    pub from_ra: bool,
}

fn ip_of(d: &[u8]) -> Option<IpAddr> {
    match d.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(d).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d).ok()?))),
        _ => None,
    }
}

/// Parse an address message body; `None` when the header is cut short.
pub fn parse_addr(body: &[u8]) -> Option<AddrMsg> {
    let hdr = body.get(..IFADDRMSG_LEN)?;
    let mut m = AddrMsg {
        family: hdr[0],
        prefix_len: hdr[1],
        flags: u32::from(hdr[2]),
        index: get_u32(&hdr[4..])?,
        local: None,
        from_ra: false,
    };
    let mut address = None;
    for (kind, d) in attrs(&body[IFADDRMSG_LEN..]) {
        match kind {
            IFA_LOCAL => m.local = ip_of(d),
            IFA_ADDRESS => address = ip_of(d),
            IFA_FLAGS => m.flags = get_u32(d).unwrap_or(m.flags),
            IFA_PROTO => m.from_ra = get_u8(d) == Some(IFAPROT_KERNEL_RA),
            _ => {}
        }
    }
    m.local = m.local.or(address);
    Some(m)
}

/// An `ifaddrmsg` plus the address (as both `IFA_LOCAL` and `IFA_ADDRESS`, which is
/// what `ip addr` sends for a non-point-to-point address): the base of adding and
/// deleting one.
pub fn addr_base(index: u32, addr: IpAddr, prefix_len: u8, flags: u32, scope: u8) -> Vec<u8> {
    let family = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut b = Vec::with_capacity(80);
    // The header holds the low 8 flag bits; IFA_FLAGS (added by callers) all of them.
    b.extend_from_slice(&[family, prefix_len, flags as u8, scope]);
    b.extend_from_slice(&index.to_ne_bytes());
    let raw = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    put(&mut b, IFA_LOCAL, &raw);
    put(&mut b, IFA_ADDRESS, &raw);
    b
}

/// `IFA_CACHEINFO`: preferred and valid lifetimes in seconds (`ifa_prefered` comes
/// first in `struct ifa_cacheinfo`; the two timestamps are output only).
pub fn put_lifetimes(b: &mut Vec<u8>, valid: u32, preferred: u32) {
    let mut ci = [0u8; 16];
    ci[..4].copy_from_slice(&preferred.to_ne_bytes());
    ci[4..8].copy_from_slice(&valid.to_ne_bytes());
    put(b, IFA_CACHEINFO, &ci);
}

/// The `RTM_GETADDR` dump request for one family.
pub fn addr_dump(family: u8) -> Vec<u8> {
    vec![family, 0, 0, 0, 0, 0, 0, 0]
}

/// An IPv4 unicast route in the main table, `proto dhcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route4 {
    pub dest: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub src: Option<Ipv4Addr>,
    pub oif: u32,
    pub metric: u32,
    pub scope: u8,
}

/// The body of `RTM_NEWROUTE` / `RTM_DELROUTE` for `r`.
pub fn route4(r: &Route4) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&[
        AF_INET,
        r.prefix_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_DHCP,
        r.scope,
        RTN_UNICAST,
    ]);
    b.extend_from_slice(&0u32.to_ne_bytes());
    put(&mut b, RTA_DST, &r.dest.octets());
    put_u32(&mut b, RTA_OIF, r.oif);
    put_u32(&mut b, RTA_PRIORITY, r.metric);
    if let Some(gw) = r.gateway {
        put(&mut b, RTA_GATEWAY, &gw.octets());
    }
    if let Some(s) = r.src {
        put(&mut b, RTA_PREFSRC, &s.octets());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    #[test]
    fn set_link_up_is_an_ifinfomsg_with_the_up_bit_in_flags_and_change() {
        let b = ifinfo(7, IFF_UP, IFF_UP);
        let mut want = vec![0u8, 0, 0, 0];
        want.extend(ne32(7));
        want.extend(ne32(1));
        want.extend(ne32(1));
        assert_eq!(b, want);
        let h = link_header(&b).unwrap();
        assert_eq!((h.family, h.index, h.flags, h.attrs.len()), (0, 7, 1, 0));
        assert_eq!(link_header(&b[..15]), None);
    }

    #[test]
    fn bond_create_nests_kind_and_data() {
        let b = bond_create("bond0", 1, 100, 0);
        let h = link_header(&b).unwrap();
        assert_eq!(h.flags, IFF_UP);
        let top: Vec<_> = attrs(h.attrs).collect();
        assert_eq!(top[0], (IFLA_IFNAME, &b"bond0\0"[..]));
        assert_eq!(top[1].0, IFLA_LINKINFO);
        let info: Vec<_> = attrs(top[1].1).collect();
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"bond\0"[..]));
        let data: Vec<_> = attrs(info[1].1).collect();
        let mut want: Vec<(u16, Vec<u8>)> = vec![(IFLA_BOND_MODE, vec![1])];
        want.push((IFLA_BOND_MIIMON, ne32(100).to_vec()));
        want.push((IFLA_BOND_PRIMARY_RESELECT, vec![0]));
        want.push((IFLA_BOND_FAIL_OVER_MAC, vec![1]));
        let got: Vec<(u16, Vec<u8>)> = data.iter().map(|(k, d)| (*k, d.to_vec())).collect();
        assert_eq!(got, want);
        // The raw bytes of the data nest: mode (u8, padded), miimon (u32).
        let raw_data_start = 16 + 12 + 4 + 12 + 4;
        assert_eq!(
            &b[raw_data_start..raw_data_start + 16],
            &[5, 0, 1, 0, 1, 0, 0, 0, 8, 0, 3, 0, 100, 0, 0, 0][..]
        );
    }

    #[test]
    fn bond_primary_names_no_interface() {
        let b = bond_primary(5, 9);
        let h = link_header(&b).unwrap();
        assert_eq!(h.index, 5);
        assert!(attrs(h.attrs).all(|(k, _)| k != IFLA_IFNAME));
        let (_, info) = attrs(h.attrs).next().unwrap();
        let (_, data) = attrs(info).nth(1).unwrap();
        assert_eq!(attrs(data).next(), Some((IFLA_BOND_PRIMARY, &ne32(9)[..])));
    }

    #[test]
    fn address_requests_round_trip_through_the_parser() {
        let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let mut b = addr_base(4, IpAddr::V6(a), 128, IFA_F_NOPREFIXROUTE, 0);
        put_u32(&mut b, IFA_FLAGS, IFA_F_NOPREFIXROUTE);
        put_lifetimes(&mut b, 300, 200);
        // Header: family, prefix, low flag bits (0x200 has none), scope, index.
        let mut hdr = vec![AF_INET6, 128, 0, 0];
        hdr.extend(ne32(4));
        assert_eq!(&b[..8], &hdr[..]);
        let ci = attrs(&b[8..]).find(|(k, _)| *k == IFA_CACHEINFO).unwrap().1;
        assert_eq!(&ci[..8], &[ne32(200), ne32(300)].concat()[..]);
        let m = parse_addr(&b).unwrap();
        assert_eq!(m.local, Some(IpAddr::V6(a)));
        assert_eq!((m.family, m.prefix_len, m.index), (AF_INET6, 128, 4));
        assert_eq!(m.flags, IFA_F_NOPREFIXROUTE);
        assert!(!m.from_ra);
    }

    #[test]
    fn kernel_addresses_prefer_local_and_read_proto_and_flags() {
        // A peer address (IFA_ADDRESS) before the local one, the header's flags
        // (tentative), no IFA_FLAGS; then an RA address with IFA_FLAGS.
        let mut b = vec![AF_INET, 32, IFA_F_TENTATIVE as u8, 0];
        b.extend(ne32(3));
        put(&mut b, IFA_ADDRESS, &[10, 0, 0, 2]);
        put(&mut b, IFA_LOCAL, &[10, 0, 0, 1]);
        let m = parse_addr(&b).unwrap();
        assert_eq!(m.local, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(m.flags, IFA_F_TENTATIVE);
        let mut b = vec![AF_INET6, 64, 0, 0];
        b.extend(ne32(3));
        put(&mut b, IFA_ADDRESS, &[0xfd; 16]);
        put_u32(&mut b, IFA_FLAGS, IFA_F_DADFAILED);
        put_u8(&mut b, IFA_PROTO, IFAPROT_KERNEL_RA);
        let m = parse_addr(&b).unwrap();
        assert_eq!(m.local, Some(IpAddr::V6(Ipv6Addr::from([0xfd; 16]))));
        assert_eq!(m.flags, IFA_F_DADFAILED);
        assert!(m.from_ra);
        // Cut short: no header, or an address of a wrong length.
        assert_eq!(parse_addr(&b[..7]), None);
        let mut odd = b[..8].to_vec();
        put(&mut odd, IFA_LOCAL, &[1, 2, 3]);
        assert_eq!(parse_addr(&odd).unwrap().local, None);
    }

    #[test]
    fn route4_carries_table_proto_scope_and_attributes() {
        let r = Route4 {
            dest: Ipv4Addr::new(10, 1, 0, 0),
            prefix_len: 16,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            src: None,
            oif: 6,
            metric: 1024,
            scope: RT_SCOPE_UNIVERSE,
        };
        let b = route4(&r);
        assert_eq!(&b[..8], &[AF_INET, 16, 0, 0, 254, 16, 0, 1]);
        assert_eq!(&b[8..12], &[0; 4]);
        let got: Vec<(u16, Vec<u8>)> = attrs(&b[RTMSG_LEN..])
            .map(|(k, d)| (k, d.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (RTA_DST, vec![10, 1, 0, 0]),
                (RTA_OIF, ne32(6).to_vec()),
                (RTA_PRIORITY, ne32(1024).to_vec()),
                (RTA_GATEWAY, vec![192, 0, 2, 1]),
            ]
        );
    }
}
