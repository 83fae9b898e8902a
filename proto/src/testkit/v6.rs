//! DHCPv6 (RFC 8415) for tests: decode client and server messages, build any message,
//! and a minimal stateful server's answers.

use std::net::Ipv6Addr;

/// Solicit.
pub const SOLICIT: u8 = 1;
/// Advertise.
pub const ADVERTISE: u8 = 2;
/// Request.
pub const REQUEST: u8 = 3;
/// Confirm.
pub const CONFIRM: u8 = 4;
/// Renew.
pub const RENEW: u8 = 5;
/// Rebind.
pub const REBIND: u8 = 6;
/// Reply.
pub const REPLY: u8 = 7;
/// Release.
pub const RELEASE: u8 = 8;
/// Decline.
pub const DECLINE: u8 = 9;
/// Reconfigure.
pub const RECONFIGURE: u8 = 10;
/// Information-request.
pub const INFORMATION_REQUEST: u8 = 11;

/// Option 1: the client's DUID.
pub const OPT_CLIENTID: u16 = 1;
/// Option 2: the server's DUID.
pub const OPT_SERVERID: u16 = 2;
/// Option 3: an identity association for non-temporary addresses.
pub const OPT_IA_NA: u16 = 3;
/// Option 5: an address inside an IA.
pub const OPT_IAADDR: u16 = 5;
/// Option 7: server preference.
pub const OPT_PREFERENCE: u16 = 7;
/// Option 19: the message type a Reconfigure asks for.
pub const OPT_RECONF_MSG: u16 = 19;

/// The name of a message type, `?` for an unknown one.
pub fn type_name(t: u8) -> &'static str {
    match t {
        SOLICIT => "SOLICIT",
        ADVERTISE => "ADVERTISE",
        REQUEST => "REQUEST",
        CONFIRM => "CONFIRM",
        RENEW => "RENEW",
        REBIND => "REBIND",
        REPLY => "REPLY",
        RELEASE => "RELEASE",
        DECLINE => "DECLINE",
        RECONFIGURE => "RECONFIGURE",
        INFORMATION_REQUEST => "INFORMATION-REQUEST",
        _ => "?",
    }
}

/// A decoded DHCPv6 client or server message (relay messages are not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type.
    pub msg_type: u8,
    /// Transaction id (24 bits).
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

impl Message {
    /// The value of the first top-level option `code`.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }
}

/// Options (code, value) of an options area; a truncated last option ends the list.
pub fn parse_options(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let code = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let Some(val) = b.get(4..4 + len) else {
            break;
        };
        out.push((code, val.to_vec()));
        b = &b[4 + len..];
    }
    out
}

/// Decode a client/server message; `None` when shorter than its header or a relay
/// message.
pub fn parse(b: &[u8]) -> Option<Message> {
    let msg_type = *b.first()?;
    if msg_type == 12 || msg_type == 13 {
        return None;
    }
    let xid = u32::from_be_bytes([0, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
    let options = parse_options(b.get(4..)?);
    let find = |c: u16| {
        options
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.clone())
    };
    let mut ia_na = Vec::new();
    let mut ia_addrs = Vec::new();
    for (code, val) in &options {
        if *code == OPT_IA_NA && val.len() >= 12 {
            ia_na.push(u32::from_be_bytes(val[..4].try_into().ok()?));
            for (c, v) in parse_options(&val[12..]) {
                if c == OPT_IAADDR && v.len() >= 16 {
                    let a: [u8; 16] = v[..16].try_into().ok()?;
                    ia_addrs.push(Ipv6Addr::from(a));
                }
            }
        }
    }
    Some(Message {
        msg_type,
        xid,
        client_id: find(OPT_CLIENTID),
        server_id: find(OPT_SERVERID),
        ia_na,
        ia_addrs,
        options,
    })
}

/// A message of `kind` with transaction id `xid` (its low 24 bits) and `opts` in order.
///
/// # Panics
/// When an option is longer than 65535 octets.
pub fn build(kind: u8, xid: u32, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let x = xid.to_be_bytes();
    let mut m = vec![kind, x[1], x[2], x[3]];
    for (code, v) in opts {
        let len = u16::try_from(v.len()).expect("option longer than 65535 octets");
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(v);
    }
    m
}

/// The value of an IA_NA option: `iaid`, T1, T2, and one IAADDR per
/// (address, preferred lifetime, valid lifetime).
pub fn ia_na(iaid: [u8; 4], t1: u32, t2: u32, addrs: &[(Ipv6Addr, u32, u32)]) -> Vec<u8> {
    let mut v = iaid.to_vec();
    v.extend_from_slice(&t1.to_be_bytes());
    v.extend_from_slice(&t2.to_be_bytes());
    for (a, preferred, valid) in addrs {
        let mut iaaddr = a.octets().to_vec();
        iaaddr.extend_from_slice(&preferred.to_be_bytes());
        iaaddr.extend_from_slice(&valid.to_be_bytes());
        v.extend_from_slice(&OPT_IAADDR.to_be_bytes());
        v.extend_from_slice(&(iaaddr.len() as u16).to_be_bytes());
        v.extend_from_slice(&iaaddr);
    }
    v
}

/// A minimal stateful server: Advertise (preference 255) to Solicit, Reply to Request,
/// Renew and Rebind, one address `addr` for the first IA_NA (T1 1000 s and T2 1600 s,
/// so nothing renews during a test; preferred 3000 s, valid 4000 s).
#[derive(Debug, Clone)]
pub struct Server {
    /// The server's DUID (option 2).
    pub server_id: Vec<u8>,
    /// The address every IA_NA gets.
    pub addr: Ipv6Addr,
}

impl Server {
    /// A server with a DUID-LL made of `mac`, giving `addr`.
    pub fn new(mac: [u8; 6], addr: Ipv6Addr) -> Server {
        Server {
            server_id: [&[0u8, 3, 0, 1][..], &mac].concat(),
            addr,
        }
    }

    /// The answer to a client message, or `None` for none (another message type, no
    /// client identifier, not a DHCPv6 message).
    pub fn answer(&self, msg: &[u8]) -> Option<Vec<u8>> {
        let m = parse(msg)?;
        let kind = match m.msg_type {
            SOLICIT => ADVERTISE,
            REQUEST | RENEW | REBIND => REPLY,
            _ => return None,
        };
        let mut out = vec![
            (OPT_CLIENTID, m.client_id?),
            (OPT_SERVERID, self.server_id.clone()),
        ];
        if kind == ADVERTISE {
            out.push((OPT_PREFERENCE, vec![255]));
        }
        if let Some(iaid) = m.ia_na.first() {
            let ia = ia_na(iaid.to_be_bytes(), 1000, 1600, &[(self.addr, 3000, 4000)]);
            out.push((OPT_IA_NA, ia));
        }
        Some(build(kind, m.xid, &out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solicit_gets_an_advertise_with_the_address() {
        let addr: Ipv6Addr = "fd79::100".parse().unwrap();
        let s = Server::new([2, 0x79, 0, 0, 0, 0xfe], addr);
        let solicit = build(
            SOLICIT,
            0x12_3456,
            &[
                (OPT_CLIENTID, vec![0, 4, 1, 2]),
                (OPT_IA_NA, ia_na([0, 0, 0, 7], 0, 0, &[])),
            ],
        );
        let m = parse(&solicit).unwrap();
        assert_eq!(
            (m.msg_type, m.xid, m.ia_na.clone()),
            (SOLICIT, 0x12_3456, vec![7])
        );
        let adv = parse(&s.answer(&solicit).unwrap()).unwrap();
        assert_eq!(adv.msg_type, ADVERTISE);
        assert_eq!(adv.xid, 0x12_3456);
        assert_eq!(adv.client_id.as_deref(), Some(&[0, 4, 1, 2][..]));
        assert_eq!(adv.server_id, Some(s.server_id.clone()));
        assert_eq!(adv.option(OPT_PREFERENCE), Some(&[255][..]));
        assert_eq!((adv.ia_na, adv.ia_addrs), (vec![7], vec![addr]));
        let req = build(REQUEST, 1, &[(OPT_CLIENTID, vec![9])]);
        let reply = parse(&s.answer(&req).unwrap()).unwrap();
        assert_eq!(
            (reply.msg_type, reply.option(OPT_PREFERENCE)),
            (REPLY, None)
        );
        assert!(s
            .answer(&build(RELEASE, 1, &[(OPT_CLIENTID, vec![9])]))
            .is_none());
        assert!(s.answer(&build(SOLICIT, 1, &[])).is_none());
    }

    #[test]
    fn truncated_and_relay_messages() {
        assert!(parse(&[1, 2]).is_none());
        assert!(parse(&[12, 0, 0, 0]).is_none());
        // A last option longer than what is left is not returned.
        let m = parse(&[1, 0, 0, 1, 0, 1, 0, 2, 7, 7, 0, 2, 0, 9, 1]).unwrap();
        assert_eq!(m.options, vec![(1, vec![7, 7])]);
        assert_eq!(type_name(INFORMATION_REQUEST), "INFORMATION-REQUEST");
    }
}
