//! Wire constants and netlink attributes (TLVs): building with 4-byte alignment,
//! bounds-checked walking.
//!
//! The numbers are the kernel's uapi values (linux/netlink.h, rtnetlink.h, if_link.h,
//! if_addr.h); only those netbond uses are listed.

/// `struct nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
pub const NLMSG_HDRLEN: usize = 16;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_MULTI: u16 = 0x02;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// On an `NLMSG_ERROR`: the echoed request was cut to its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR`: extended-ack TLVs follow the echoed request.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;

/// Multicast groups as `bind(2)` bitmask bits (`RTMGRP_*`).
pub const RTMGRP_LINK: u32 = 0x1;
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

// struct ifinfomsg attributes (if_link.h).
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const IFLA_INFO_SLAVE_KIND: u16 = 4;
pub const IFLA_INFO_SLAVE_DATA: u16 = 5;
pub const IFLA_BOND_MODE: u16 = 1;
pub const IFLA_BOND_ACTIVE_SLAVE: u16 = 2;
pub const IFLA_BOND_MIIMON: u16 = 3;
pub const IFLA_BOND_PRIMARY: u16 = 11;
pub const IFLA_BOND_PRIMARY_RESELECT: u16 = 12;
pub const IFLA_BOND_FAIL_OVER_MAC: u16 = 13;
pub const IFLA_BOND_SLAVE_STATE: u16 = 1;
pub const IFLA_BOND_SLAVE_MII_STATUS: u16 = 2;
pub const IFLA_BOND_SLAVE_LINK_FAILURE_COUNT: u16 = 3;
pub const IFLA_BOND_SLAVE_PERM_HWADDR: u16 = 4;
/// `IF_OPER_UP` (RFC 2863 operational state).
pub const IF_OPER_UP: u8 = 6;
pub const IFF_UP: u32 = 0x1;
pub const IFF_SLAVE: u32 = 0x800;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

// struct ifaddrmsg attributes (if_addr.h).
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_CACHEINFO: u16 = 6;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_PROTO: u16 = 11;
pub const IFA_F_OPTIMISTIC: u32 = 0x04;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
pub const IFAPROT_KERNEL_RA: u8 = 2;

// struct rtmsg attributes and values (rtnetlink.h).
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_DHCP: u8 = 16;
pub const RTN_UNICAST: u8 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_NOWHERE: u8 = 255;

/// `NLA_F_NESTED`: set on nested attributes (the kernel's strict validation of
/// newer attributes wants it; older ones accept it).
pub const NLA_F_NESTED: u16 = 0x8000;
/// The type bits of `nla_type` (without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Round up to the 4-byte netlink alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Append one attribute, padded to 4 bytes.
pub fn put(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

pub fn put_u8(out: &mut Vec<u8>, kind: u16, v: u8) {
    put(out, kind, &[v]);
}

pub fn put_u32(out: &mut Vec<u8>, kind: u16, v: u32) {
    put(out, kind, &v.to_ne_bytes());
}

/// A NUL-terminated string attribute (`NLA_STRING`/`NLA_NUL_STRING` both accept it).
pub fn put_str(out: &mut Vec<u8>, kind: u16, s: &str) {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    put(out, kind, &v);
}

/// A nested attribute whose content `fill` appends.
pub fn nest(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    fill(out);
    let len = (out.len() - start) as u16;
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    out.resize(align4(out.len()), 0);
}

/// Walk attributes: `(type, payload)`. A truncated or malformed attribute ends the
/// walk (what follows cannot be framed), so a bad message yields fewer attributes,
/// never a panic.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            b = &[];
            return None;
        }
        let data = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((kind, data))
    })
}

/// A `u8` attribute's value (`None` if it is shorter).
pub fn get_u8(d: &[u8]) -> Option<u8> {
    d.first().copied()
}

/// A `u16` in host order.
pub fn get_u16(d: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(d.get(..2)?.try_into().ok()?))
}

/// A `u32` in host order.
pub fn get_u32(d: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(..4)?.try_into().ok()?))
}

/// A string attribute, up to its first NUL.
pub fn get_str(d: &[u8]) -> String {
    let raw = d.split(|&b| b == 0).next().unwrap_or(d);
    String::from_utf8_lossy(raw).into_owned()
}

/// A 6-octet hardware address.
pub fn get_mac(d: &[u8]) -> Option<[u8; 6]> {
    d.try_into().ok()
}

/// One netlink message split out of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    pub body: &'a [u8],
}

/// Split a received datagram into messages. `Err` when a header is truncated or its
/// length does not fit: the rest of the datagram cannot be framed.
pub fn messages(mut b: &[u8]) -> impl Iterator<Item = Result<Message<'_>, &'static str>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        if b.len() < NLMSG_HDRLEN {
            b = &[];
            return Some(Err("truncated netlink header"));
        }
        let len = get_u32(b)? as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            b = &[];
            return Some(Err("netlink message length out of bounds"));
        }
        let m = Message {
            kind: get_u16(&b[4..])?,
            flags: get_u16(&b[6..])?,
            seq: get_u32(&b[8..])?,
            body: &b[NLMSG_HDRLEN..len],
        };
        b = &b[align4(len).min(b.len())..];
        Some(Ok(m))
    })
}

/// A complete request: header (sequence number filled in) plus `body`.
pub fn request(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: addressed to the kernel.
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

/// The kernel's explanation in an `NLMSG_ERROR` (`NLMSGERR_ATTR_MSG`). `body` is the
/// message body after the outer header: the error code, the echoed request (header
/// only when `NLM_F_CAPPED`), then the TLVs when `NLM_F_ACK_TLVS`.
pub fn ext_ack(flags: u16, body: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = body.get(4..)?;
    let orig_len = get_u32(echoed)? as usize;
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        align4(orig_len.max(NLMSG_HDRLEN))
    };
    let (_, text) = attrs(echoed.get(skip..)?).find(|(k, _)| *k == NLMSGERR_ATTR_MSG)?;
    let s = get_str(text).trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_walk_back() {
        let mut b = Vec::new();
        put_u8(&mut b, 1, 7);
        put_str(&mut b, 3, "eth0");
        put_u32(&mut b, 4, 1500);
        // u8: len 5, padded to 8; "eth0\0": len 9, padded to 12; u32: len 8.
        assert_eq!(b.len(), 8 + 12 + 8);
        assert_eq!(&b[..8], &[5, 0, 1, 0, 7, 0, 0, 0]);
        let got: Vec<_> = attrs(&b).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1, &[7u8][..]));
        assert_eq!(get_str(got[1].1), "eth0");
        assert_eq!(get_u32(got[2].1), Some(1500));
    }

    #[test]
    fn nests_carry_their_length_and_the_nested_flag() {
        let mut b = Vec::new();
        nest(&mut b, IFLA_LINKINFO, |b| {
            put_str(b, IFLA_INFO_KIND, "bond");
            nest(b, IFLA_INFO_DATA, |b| put_u8(b, IFLA_BOND_MODE, 1));
        });
        // 4 + ("bond\0": 9 -> 12) + (4 + 8) = 28.
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 28);
        assert_eq!(
            u16::from_ne_bytes([b[2], b[3]]),
            IFLA_LINKINFO | NLA_F_NESTED
        );
        let (k, inner) = attrs(&b).next().unwrap();
        assert_eq!(k, IFLA_LINKINFO);
        let inner: Vec<_> = attrs(inner).collect();
        assert_eq!(get_str(inner[0].1), "bond");
        assert_eq!(inner[1].0, IFLA_INFO_DATA);
        assert_eq!(attrs(inner[1].1).next(), Some((IFLA_BOND_MODE, &[1u8][..])));
    }

    #[test]
    fn malformed_attributes_end_the_walk() {
        // A length shorter than the header, then one longer than the buffer.
        assert_eq!(attrs(&[2, 0, 1, 0, 9, 9]).count(), 0);
        assert_eq!(attrs(&[40, 0, 1, 0, 9, 9, 9, 9]).count(), 0);
        // A good one followed by garbage: only the good one.
        let mut b = Vec::new();
        put_u32(&mut b, 4, 9000);
        b.extend_from_slice(&[0xff, 0xff, 0x01]);
        assert_eq!(attrs(&b).count(), 1);
        assert_eq!(get_u32(&[1, 2]), None);
        assert_eq!(get_mac(&[1, 2, 3]), None);
    }

    #[test]
    fn datagrams_split_into_messages_and_bad_frames_are_errors() {
        let mut d = request(RTM_GETLINK, NLM_F_DUMP, 7, &[0u8; 16]);
        d.extend(request(NLMSG_DONE, 0, 7, &0i32.to_ne_bytes()));
        let m: Vec<_> = messages(&d).collect::<Result<_, _>>().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].kind, m[0].seq, m[0].body.len()), (RTM_GETLINK, 7, 16));
        assert_eq!(m[0].flags, NLM_F_DUMP | NLM_F_REQUEST);
        assert_eq!(m[1].kind, NLMSG_DONE);
        // nlmsg_len beyond the datagram, and a header cut short.
        let mut bad = d.clone();
        bad[0] = 200;
        assert!(messages(&bad).next().unwrap().is_err());
        assert!(messages(&d[..10]).next().unwrap().is_err());
        assert_eq!(messages(&d[..10]).count(), 1);
    }

    fn error_msg(orig_len: u32, body_len: usize, text: &[u8]) -> Vec<u8> {
        let mut b = (-libc::EINVAL).to_ne_bytes().to_vec();
        b.extend_from_slice(&orig_len.to_ne_bytes());
        b.extend_from_slice(&[0u8; 12]);
        b.extend(std::iter::repeat_n(0xaa, body_len));
        put_u32(&mut b, 2, 7);
        put(&mut b, NLMSGERR_ATTR_MSG, text);
        b
    }

    #[test]
    fn ext_ack_text_after_full_or_capped_request() {
        let full = error_msg(16 + 8, 8, b"Invalid prefix for given prefix length\0");
        assert_eq!(
            ext_ack(NLM_F_ACK_TLVS, &full).as_deref(),
            Some("Invalid prefix for given prefix length")
        );
        let capped = error_msg(200, 0, b"Nexthop device is not up\0");
        assert_eq!(
            ext_ack(NLM_F_ACK_TLVS | NLM_F_CAPPED, &capped).as_deref(),
            Some("Nexthop device is not up")
        );
        // No TLV flag, or a body too short: nothing.
        assert_eq!(ext_ack(0, &full), None);
        assert_eq!(ext_ack(NLM_F_ACK_TLVS, &[1, 2, 3]), None);
        assert_eq!(ext_ack(NLM_F_ACK_TLVS | NLM_F_CAPPED, &full[..8]), None);
    }
}
