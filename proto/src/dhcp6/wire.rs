//! DHCPv6 message and option codec (RFC 8415 sections 8 and 21).
//!
//! Parsing is strict about structure: a truncated option, an option running past the
//! end of its container (or bytes after the last option that cannot be one), a
//! fixed-size option of the wrong length, an option that may appear once (RFC 8415
//! section 21: "unless otherwise noted ... only once") appearing twice, two IAs of one
//! type with the same IAID, two status codes in one scope, or an empty list option
//! (DNS servers, domain list, SNTP, NTP: each carries at least one entry) rejects the
//! whole message with a reason. Content policy (an address of the wrong scope, a domain name
//! with odd characters, an IA address whose preferred lifetime exceeds its valid one)
//! only drops that one item.

use std::net::Ipv6Addr;

/// Option codes used by the engine (RFC 8415 section 21, RFC 3646, RFC 5908, RFC 4242).
pub(crate) mod code {
    pub const CLIENTID: u16 = 1;
    pub const SERVERID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IA_TA: u16 = 4;
    pub const IAADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const PREFERENCE: u16 = 7;
    pub const ELAPSED_TIME: u16 = 8;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const USER_CLASS: u16 = 15;
    pub const VENDOR_CLASS: u16 = 16;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
    pub const IA_PD: u16 = 25;
    pub const IAPREFIX: u16 = 26;
    pub const SNTP_SERVERS: u16 = 31;
    pub const CLIENT_FQDN: u16 = 39;
    pub const INFO_REFRESH_TIME: u16 = 32;
    pub const NTP_SERVER: u16 = 56;
    pub const CAPTIVE_PORTAL: u16 = 103;
    pub const SOL_MAX_RT: u16 = 82;
    pub const INF_MAX_RT: u16 = 83;
}

/// At most this many addresses (or prefixes) are kept per IA.
pub(crate) const MAX_ADDRS_PER_IA: usize = 16;
/// At most this many DNS servers are kept.
pub(crate) const MAX_DNS: usize = 16;
/// At most this many search domains are kept.
pub(crate) const MAX_DOMAINS: usize = 16;
/// At most this many NTP servers are kept.
pub(crate) const MAX_NTP: usize = 8;
/// At most this many IAs of each type are kept from one message.
const MAX_IAS: usize = 8;

/// A DHCPv6 message type (RFC 8415 section 7.3), the ones a client sends or receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MessageType {
    /// 1: locate servers.
    Solicit,
    /// 2: a server's offer.
    Advertise,
    /// 3: request addresses from the selected server.
    Request,
    /// 4: check that addresses are still appropriate for the link.
    Confirm,
    /// 5: extend lifetimes with the original server.
    Renew,
    /// 6: extend lifetimes with any server.
    Rebind,
    /// 7: a server's answer.
    Reply,
    /// 8: give addresses back.
    Release,
    /// 9: report addresses that failed duplicate address detection.
    Decline,
    /// 10: a server asks the client to reconfigure (ignored: needs authentication).
    Reconfigure,
    /// 11: configuration without addresses.
    InformationRequest,
}

impl MessageType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            MessageType::Solicit => 1,
            MessageType::Advertise => 2,
            MessageType::Request => 3,
            MessageType::Confirm => 4,
            MessageType::Renew => 5,
            MessageType::Rebind => 6,
            MessageType::Reply => 7,
            MessageType::Release => 8,
            MessageType::Decline => 9,
            MessageType::Reconfigure => 10,
            MessageType::InformationRequest => 11,
        }
    }

    /// The type for a wire value, `None` for relay and unknown types.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => MessageType::Solicit,
            2 => MessageType::Advertise,
            3 => MessageType::Request,
            4 => MessageType::Confirm,
            5 => MessageType::Renew,
            6 => MessageType::Rebind,
            7 => MessageType::Reply,
            8 => MessageType::Release,
            9 => MessageType::Decline,
            10 => MessageType::Reconfigure,
            11 => MessageType::InformationRequest,
            _ => return None,
        })
    }
}

/// A Status Code option value (RFC 8415 section 21.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StatusCode {
    /// 0: success.
    Success,
    /// 1: unspecified failure.
    UnspecFail,
    /// 2: the server has no addresses for the IA.
    NoAddrsAvail,
    /// 3: the server has no binding for the IA.
    NoBinding,
    /// 4: the addresses are not appropriate for the link.
    NotOnLink,
    /// 5: the client must use multicast.
    UseMulticast,
    /// 6: the server has no prefixes for the IA_PD.
    NoPrefixAvail,
    /// Any other value.
    Other(u16),
}

impl StatusCode {
    /// The status for a wire value.
    pub fn from_code(c: u16) -> Self {
        match c {
            0 => StatusCode::Success,
            1 => StatusCode::UnspecFail,
            2 => StatusCode::NoAddrsAvail,
            3 => StatusCode::NoBinding,
            4 => StatusCode::NotOnLink,
            5 => StatusCode::UseMulticast,
            6 => StatusCode::NoPrefixAvail,
            n => StatusCode::Other(n),
        }
    }

    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            StatusCode::Success => 0,
            StatusCode::UnspecFail => 1,
            StatusCode::NoAddrsAvail => 2,
            StatusCode::NoBinding => 3,
            StatusCode::NotOnLink => 4,
            StatusCode::UseMulticast => 5,
            StatusCode::NoPrefixAvail => 6,
            StatusCode::Other(n) => n,
        }
    }
}

/// An address carried in an IA_NA (lifetimes in seconds, `u32::MAX` = infinite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireAddr {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
}

/// A prefix carried in an IA_PD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WirePrefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub preferred: u32,
    pub valid: u32,
}

impl WireAddr {
    /// The same address with lifetimes zero, as a client sends it (a hint, a release).
    pub(crate) fn zeroed(&self) -> Self {
        WireAddr {
            preferred: 0,
            valid: 0,
            ..*self
        }
    }
}

impl WirePrefix {
    /// The same prefix with lifetimes zero, as a client sends it (a hint, a release).
    pub(crate) fn zeroed(&self) -> Self {
        WirePrefix {
            preferred: 0,
            valid: 0,
            ..*self
        }
    }
}

/// An IA_NA or IA_PD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Ia {
    pub iaid: u32,
    pub t1: u32,
    pub t2: u32,
    pub addrs: Vec<WireAddr>,
    pub prefixes: Vec<WirePrefix>,
    pub status: Option<StatusCode>,
}

/// A parsed DHCPv6 message (client or server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub msg_type: MessageType,
    pub xid: u32,
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub preference: Option<u8>,
    pub elapsed: Option<u16>,
    pub status: Option<StatusCode>,
    pub rapid_commit: bool,
    pub oro: Vec<u16>,
    pub ia_na: Vec<Ia>,
    pub ia_pd: Vec<Ia>,
    pub dns: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    pub ntp: Vec<Ipv6Addr>,
    pub sol_max_rt: Option<u32>,
    pub inf_max_rt: Option<u32>,
    pub info_refresh: Option<u32>,
    /// RFC 8910 option 103, when it is a usable URI ([`crate::captive::parse`]).
    pub captive_portal: Option<String>,
}

/// Split an option area into (code, data) pairs, rejecting truncation.
fn options(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, &'static str> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let Some(hdr) = b.get(..4) else {
            return Err("truncated option header");
        };
        let code = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let Some(data) = b.get(4..4 + len) else {
            return Err("option length runs past the end of its container");
        };
        out.push((code, data));
        b = b.get(4 + len..).unwrap_or(&[]);
    }
    Ok(out)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn addr_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

/// Whether an address may be configured or used as a server: not multicast, loopback,
/// unspecified or link-local.
pub(crate) fn usable_unicast(a: &Ipv6Addr) -> bool {
    !(a.is_multicast()
        || a.is_loopback()
        || a.is_unspecified()
        || (a.segments()[0] & 0xffc0) == 0xfe80)
}

fn parse_status(data: &[u8]) -> Result<StatusCode, &'static str> {
    match data.get(..2) {
        Some(c) => Ok(StatusCode::from_code(u16::from_be_bytes([c[0], c[1]]))),
        None => Err("status code option shorter than 2 octets"),
    }
}

/// Check the sub-options of an IA address or prefix: well framed, at most one status.
fn sub_status(area: &[u8]) -> Result<(), &'static str> {
    let mut seen = false;
    for (sc, sd) in options(area)? {
        if sc == code::STATUS_CODE {
            if seen {
                return Err("status code repeated in an IA address or prefix");
            }
            seen = true;
            parse_status(sd)?;
        }
    }
    Ok(())
}

/// Options a message may carry only once (RFC 8415 section 21 and the option RFCs);
/// a second copy leaves the client guessing which one the server meant.
fn singleton(c: u16) -> bool {
    matches!(
        c,
        code::CLIENTID
            | code::SERVERID
            | code::ORO
            | code::PREFERENCE
            | code::ELAPSED_TIME
            | code::STATUS_CODE
            | code::RAPID_COMMIT
            | code::DNS_SERVERS
            | code::DOMAIN_LIST
            | code::SNTP_SERVERS
            | code::SOL_MAX_RT
            | code::INF_MAX_RT
            | code::INFO_REFRESH_TIME
    )
}

/// Parse the body of an IA_NA (`pd == false`) or IA_PD. `Ok(None)` means the IA is to be
/// discarded (T1 > T2, both non-zero: RFC 8415 sections 21.4 and 21.21).
fn parse_ia(data: &[u8], pd: bool) -> Result<Option<Ia>, &'static str> {
    let (Some(iaid), Some(t1), Some(t2)) = (be_u32(data, 0), be_u32(data, 4), be_u32(data, 8))
    else {
        return Err("IA option shorter than 12 octets");
    };
    let mut ia = Ia {
        iaid,
        t1,
        t2,
        ..Ia::default()
    };
    for (c, d) in options(data.get(12..).unwrap_or(&[]))? {
        match (c, pd) {
            (code::STATUS_CODE, _) => {
                if ia.status.is_some() {
                    return Err("status code repeated in an IA");
                }
                ia.status = Some(parse_status(d)?);
            }
            (code::IAADDR, false) => {
                let (Some(addr), Some(preferred), Some(valid)) =
                    (addr_at(d, 0), be_u32(d, 16), be_u32(d, 20))
                else {
                    return Err("IA address option shorter than 24 octets");
                };
                // Sub-options (a per-address status) must be well formed too.
                sub_status(d.get(24..).unwrap_or(&[]))?;
                if preferred > valid || !usable_unicast(&addr) {
                    continue;
                }
                if ia.addrs.len() < MAX_ADDRS_PER_IA && !ia.addrs.iter().any(|a| a.addr == addr) {
                    ia.addrs.push(WireAddr {
                        addr,
                        preferred,
                        valid,
                    });
                }
            }
            (code::IAPREFIX, true) => {
                let (Some(preferred), Some(valid), Some(&len), Some(prefix)) =
                    (be_u32(d, 0), be_u32(d, 4), d.get(8), addr_at(d, 9))
                else {
                    return Err("IA prefix option shorter than 25 octets");
                };
                sub_status(d.get(25..).unwrap_or(&[]))?;
                if preferred > valid || len == 0 || len > 128 || prefix.is_multicast() {
                    continue;
                }
                if ia.prefixes.len() < MAX_ADDRS_PER_IA {
                    ia.prefixes.push(WirePrefix {
                        prefix,
                        len,
                        preferred,
                        valid,
                    });
                }
            }
            _ => {}
        }
    }
    if t1 > t2 && t2 > 0 {
        return Ok(None);
    }
    Ok(Some(ia))
}

fn parse_addr_list(data: &[u8], out: &mut Vec<Ipv6Addr>, cap: usize) -> Result<(), &'static str> {
    if data.len() % 16 != 0 {
        return Err("address list option length is not a multiple of 16");
    }
    for chunk in data.chunks_exact(16) {
        let Ok(b) = <[u8; 16]>::try_from(chunk) else {
            continue;
        };
        let a = Ipv6Addr::from(b);
        if usable_unicast(&a) && out.len() < cap && !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(())
}

/// Parse an RFC 1035 wire-format name list without compression. Names that break the
/// one name rule ([`crate::name`]: no underscores, LDH labels, at most 253 characters)
/// are skipped; a malformed list fails the option.
pub(crate) fn parse_domains(data: &[u8], out: &mut Vec<String>) -> Result<(), &'static str> {
    let mut i = 0;
    while i < data.len() {
        let mut labels: Vec<&[u8]> = Vec::new();
        loop {
            let Some(&len) = data.get(i) else {
                return Err("domain name not terminated by a root label");
            };
            i += 1;
            let len = usize::from(len);
            if len == 0 {
                break;
            }
            if len > 63 {
                return Err("domain label longer than 63 octets (or compressed)");
            }
            let Some(label) = data.get(i..i + len) else {
                return Err("domain label runs past the end of the option");
            };
            i += len;
            labels.push(label);
        }
        if let Some(name) = crate::name::from_labels(&labels) {
            if out.len() < MAX_DOMAINS {
                out.push(name);
            }
        }
    }
    Ok(())
}

fn parse_ntp(data: &[u8], out: &mut Vec<Ipv6Addr>) -> Result<(), &'static str> {
    for (c, d) in options(data)? {
        match c {
            1 | 2 => {
                let Some(a) = addr_at(d, 0).filter(|_| d.len() == 16) else {
                    return Err("NTP server address sub-option is not 16 octets");
                };
                let fits = if c == 1 {
                    usable_unicast(&a)
                } else {
                    a.is_multicast()
                };
                if fits && out.len() < MAX_NTP && !out.contains(&a) {
                    out.push(a);
                }
            }
            3 => {
                // An FQDN: checked for structure, not kept.
                parse_domains(d, &mut Vec::new())?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn fixed_u32(d: &[u8], what: &'static str) -> Result<u32, &'static str> {
    match <[u8; 4]>::try_from(d) {
        Ok(b) => Ok(u32::from_be_bytes(b)),
        Err(_) => Err(what),
    }
}

/// Parse a whole DHCPv6 message.
pub(crate) fn parse(bytes: &[u8]) -> Result<Message, &'static str> {
    let Some(hdr) = bytes.get(..4) else {
        return Err("message shorter than the 4-octet header");
    };
    let Some(msg_type) = MessageType::from_code(hdr[0]) else {
        return Err("unknown or relay message type");
    };
    let xid = u32::from_be_bytes([0, hdr[1], hdr[2], hdr[3]]);
    let mut m = Message {
        msg_type,
        xid,
        client_id: None,
        server_id: None,
        preference: None,
        elapsed: None,
        status: None,
        rapid_commit: false,
        oro: Vec::new(),
        ia_na: Vec::new(),
        ia_pd: Vec::new(),
        dns: Vec::new(),
        domains: Vec::new(),
        ntp: Vec::new(),
        sol_max_rt: None,
        inf_max_rt: None,
        info_refresh: None,
        captive_portal: None,
    };
    let mut sntp = Vec::new();
    let mut seen: Vec<u16> = Vec::new();
    let mut iaids: Vec<(u16, u32)> = Vec::new();
    for (c, d) in options(bytes.get(4..).unwrap_or(&[]))? {
        check_option(c, d, &mut seen, &mut iaids)?;
        take_option(&mut m, &mut sntp, c, d)?;
    }
    for a in sntp {
        if m.ntp.len() < MAX_NTP && !m.ntp.contains(&a) {
            m.ntp.push(a);
        }
    }
    Ok(m)
}

/// The rules on one option that depend on the others: options that may appear once,
/// list options that must not be empty, one IA per type and IAID.
fn check_option(
    c: u16,
    d: &[u8],
    seen: &mut Vec<u16>,
    iaids: &mut Vec<(u16, u32)>,
) -> Result<(), &'static str> {
    if singleton(c) {
        if seen.contains(&c) {
            return Err(if c == code::CLIENTID || c == code::SERVERID {
                "duplicate client or server identifier"
            } else {
                "an option that may appear once is repeated"
            });
        }
        seen.push(c);
    }
    if matches!(
        c,
        code::DNS_SERVERS | code::DOMAIN_LIST | code::SNTP_SERVERS | code::NTP_SERVER
    ) && d.is_empty()
    {
        return Err("empty DNS, domain or NTP option");
    }
    if matches!(c, code::IA_NA | code::IA_TA | code::IA_PD) && d.len() >= 4 {
        let iaid = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        if iaids.contains(&(c, iaid)) {
            return Err("two IAs of one type with the same IAID");
        }
        iaids.push((c, iaid));
    }
    Ok(())
}

/// Parse one top-level option into `m` (SNTP servers into `sntp`, merged later).
fn take_option(
    m: &mut Message,
    sntp: &mut Vec<Ipv6Addr>,
    c: u16,
    d: &[u8],
) -> Result<(), &'static str> {
    match c {
        code::CLIENTID | code::SERVERID => {
            if d.is_empty() || d.len() > crate::duid::MAX_DUID_LEN {
                return Err("client or server identifier has an impossible length");
            }
            let slot = if c == code::CLIENTID {
                &mut m.client_id
            } else {
                &mut m.server_id
            };
            *slot = Some(d.to_vec());
        }
        code::IA_NA | code::IA_PD => {
            if let Some(ia) = parse_ia(d, c == code::IA_PD)? {
                let list = if c == code::IA_NA {
                    &mut m.ia_na
                } else {
                    &mut m.ia_pd
                };
                if list.len() < MAX_IAS {
                    list.push(ia);
                }
            }
        }
        code::IA_TA if d.len() < 4 => return Err("IA_TA option shorter than 4 octets"),
        code::ORO => {
            if d.len() % 2 != 0 {
                return Err("option request option has an odd length");
            }
            m.oro = d
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
        }
        code::PREFERENCE => match d {
            [p] => m.preference = Some(*p),
            _ => return Err("preference option is not 1 octet"),
        },
        code::ELAPSED_TIME => match d {
            [a, b] => m.elapsed = Some(u16::from_be_bytes([*a, *b])),
            _ => return Err("elapsed time option is not 2 octets"),
        },
        code::STATUS_CODE => m.status = Some(parse_status(d)?),
        code::RAPID_COMMIT => {
            if !d.is_empty() {
                return Err("rapid commit option is not empty");
            }
            m.rapid_commit = true;
        }
        code::DNS_SERVERS => parse_addr_list(d, &mut m.dns, MAX_DNS)?,
        code::SNTP_SERVERS => parse_addr_list(d, sntp, MAX_NTP)?,
        code::DOMAIN_LIST => parse_domains(d, &mut m.domains)?,
        code::NTP_SERVER => parse_ntp(d, &mut m.ntp)?,
        // An unusable URI is left out; the rest of the message still counts.
        code::CAPTIVE_PORTAL => m.captive_portal = crate::captive::parse(d).ok().flatten(),
        code::SOL_MAX_RT => m.sol_max_rt = Some(fixed_u32(d, "SOL_MAX_RT option is not 4 octets")?),
        code::INF_MAX_RT => m.inf_max_rt = Some(fixed_u32(d, "INF_MAX_RT option is not 4 octets")?),
        code::INFO_REFRESH_TIME => {
            m.info_refresh = Some(fixed_u32(
                d,
                "information refresh time option is not 4 octets",
            )?)
        }
        _ => {}
    }
    Ok(())
}

/// Builds a message option by option.
pub(crate) struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// Start a message with its header.
    pub fn new(t: MessageType, xid: u32) -> Self {
        let x = xid.to_be_bytes();
        Builder {
            buf: vec![t.code(), x[1], x[2], x[3]],
        }
    }

    /// Append one option. Data longer than an option can carry is not written.
    pub fn opt(&mut self, code: u16, data: &[u8]) -> &mut Self {
        if let Ok(len) = u16::try_from(data.len()) {
            self.buf.extend_from_slice(&code.to_be_bytes());
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(data);
        }
        self
    }

    /// The encoded message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Encode one option TLV.
pub(crate) fn tlv(code: u16, data: &[u8]) -> Vec<u8> {
    let mut b = Builder { buf: Vec::new() };
    b.opt(code, data);
    b.buf
}

/// The body of an IA_NA with the given addresses.
pub(crate) fn ia_na_body(iaid: u32, t1: u32, t2: u32, addrs: &[WireAddr]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&iaid.to_be_bytes());
    v.extend_from_slice(&t1.to_be_bytes());
    v.extend_from_slice(&t2.to_be_bytes());
    for a in addrs {
        let mut d = a.addr.octets().to_vec();
        d.extend_from_slice(&a.preferred.to_be_bytes());
        d.extend_from_slice(&a.valid.to_be_bytes());
        v.extend_from_slice(&tlv(code::IAADDR, &d));
    }
    v
}

/// The body of an IA_PD with the given prefixes.
pub(crate) fn ia_pd_body(iaid: u32, t1: u32, t2: u32, prefixes: &[WirePrefix]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&iaid.to_be_bytes());
    v.extend_from_slice(&t1.to_be_bytes());
    v.extend_from_slice(&t2.to_be_bytes());
    for p in prefixes {
        let mut d = Vec::with_capacity(25);
        d.extend_from_slice(&p.preferred.to_be_bytes());
        d.extend_from_slice(&p.valid.to_be_bytes());
        d.push(p.len);
        d.extend_from_slice(&p.prefix.octets());
        v.extend_from_slice(&tlv(code::IAPREFIX, &d));
    }
    v
}
