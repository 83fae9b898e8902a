//! DHCPv4 (RFC 2131/2132) for tests: decode any message, build any message, and a
//! scripted server's answers.

use std::net::Ipv4Addr;

/// DHCPDISCOVER (option 53 value).
pub const DISCOVER: u8 = 1;
/// DHCPOFFER.
pub const OFFER: u8 = 2;
/// DHCPREQUEST.
pub const REQUEST: u8 = 3;
/// DHCPDECLINE.
pub const DECLINE: u8 = 4;
/// DHCPACK.
pub const ACK: u8 = 5;
/// DHCPNAK.
pub const NAK: u8 = 6;
/// DHCPRELEASE.
pub const RELEASE: u8 = 7;
/// DHCPINFORM.
pub const INFORM: u8 = 8;
/// DHCPFORCERENEW (RFC 3203).
pub const FORCERENEW: u8 = 9;

/// The four octets between the BOOTP header and the options.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The name of a message type, `?` for an unknown one.
pub fn type_name(t: u8) -> &'static str {
    match t {
        DISCOVER => "DISCOVER",
        OFFER => "OFFER",
        REQUEST => "REQUEST",
        DECLINE => "DECLINE",
        ACK => "ACK",
        NAK => "NAK",
        RELEASE => "RELEASE",
        INFORM => "INFORM",
        FORCERENEW => "FORCERENEW",
        _ => "?",
    }
}

/// A decoded DHCPv4 message, from either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// BOOTP op: 1 request, 2 reply.
    pub op: u8,
    /// Transaction id.
    pub xid: u32,
    /// Flags (0x8000: broadcast).
    pub flags: u16,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// "Your" address.
    pub yiaddr: Ipv4Addr,
    /// The first six octets of chaddr.
    pub chaddr: [u8; 6],
    /// Option 53.
    pub msg_type: Option<u8>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 61, raw.
    pub client_id: Option<Vec<u8>>,
    /// All options as (code, value), in order (the options field only, no overload).
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Message {
    /// The value of the first option `code`.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }
}

fn ip4(b: &[u8], o: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn be(b: &[u8], o: usize, n: usize) -> Option<u32> {
    Some(
        b.get(o..o + n)?
            .iter()
            .fold(0, |a, x| a << 8 | u32::from(*x)),
    )
}

/// Decode a DHCPv4 message: `None` without the magic cookie or when an option runs
/// past the end. Options are read up to END or the end of the packet.
pub fn parse(b: &[u8]) -> Option<Message> {
    if b.len() < 240 || b[236..240] != MAGIC_COOKIE {
        return None;
    }
    let mut options = Vec::new();
    let mut o = 240;
    while o < b.len() {
        match b[o] {
            0 => {
                o += 1;
                continue;
            }
            255 => break,
            code => {
                let len = usize::from(*b.get(o + 1)?);
                options.push((code, b.get(o + 2..o + 2 + len)?.to_vec()));
                o += 2 + len;
            }
        }
    }
    let find = |c: u8| options.iter().find(|(k, _)| *k == c).map(|(_, v)| v);
    Some(Message {
        op: b[0],
        xid: be(b, 4, 4)?,
        flags: be(b, 10, 2)? as u16,
        ciaddr: ip4(b, 12)?,
        yiaddr: ip4(b, 16)?,
        chaddr: b.get(28..34)?.try_into().ok()?,
        msg_type: find(53).and_then(|v| v.first().copied()),
        requested_ip: find(50).and_then(|v| ip4(v, 0)),
        server_id: find(54).and_then(|v| ip4(v, 0)),
        client_id: find(61).cloned(),
        options: options.clone(),
    })
}

/// A DHCPv4 message under construction. Every field can be set to a wrong value on
/// purpose (the hostile tier's malformed replies); [`Builder::build`] lays it out as
/// given, checking nothing but what cannot be encoded at all.
#[derive(Debug, Clone)]
pub struct Builder {
    /// BOOTP op (1 request, 2 reply).
    pub op: u8,
    /// Transaction id.
    pub xid: u32,
    /// Flags (0x8000: broadcast).
    pub flags: u16,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// "Your" address.
    pub yiaddr: Ipv4Addr,
    /// Hardware address (htype 1, hlen 6).
    pub chaddr: [u8; 6],
    /// Write the magic cookie (false: a BOOTP-looking message).
    pub cookie: bool,
    /// Option 53, first; `None` for none (a BOOTP reply).
    pub kind: Option<u8>,
    /// Option 54, right after 53.
    pub server_id: Option<Ipv4Addr>,
    /// The other options, in order, as (code, value).
    pub options: Vec<(u8, Vec<u8>)>,
    /// Raw bytes after the options (before END unless `no_end`).
    pub raw: Vec<u8>,
    /// Leave END out.
    pub no_end: bool,
    /// The sname field (at most 64 octets).
    pub sname: Vec<u8>,
    /// The file field (at most 128 octets).
    pub file: Vec<u8>,
    /// Pad with zeros up to this length (300 is the BOOTP minimum; 0: no padding).
    pub min_len: usize,
}

impl Builder {
    fn new(op: u8, kind: u8, xid: u32, chaddr: [u8; 6]) -> Builder {
        Builder {
            op,
            xid,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            cookie: true,
            kind: Some(kind),
            server_id: None,
            options: Vec::new(),
            raw: Vec::new(),
            no_end: false,
            sname: Vec::new(),
            file: Vec::new(),
            min_len: 0,
        }
    }

    /// A client message of `kind` (op 1), not padded.
    pub fn request(kind: u8, xid: u32, chaddr: [u8; 6]) -> Builder {
        Builder::new(1, kind, xid, chaddr)
    }

    /// A server message of `kind` (op 2), padded to 300 octets.
    pub fn reply(kind: u8, xid: u32, chaddr: [u8; 6]) -> Builder {
        Builder {
            min_len: 300,
            ..Builder::new(2, kind, xid, chaddr)
        }
    }

    /// Replace (or add, at the end) option `code`.
    pub fn set(mut self, code: u8, v: &[u8]) -> Self {
        self.options.retain(|(c, _)| *c != code);
        self.options.push((code, v.to_vec()));
        self
    }

    /// Remove option `code`.
    pub fn without(mut self, code: u8) -> Self {
        self.options.retain(|(c, _)| *c != code);
        self
    }

    /// The message's bytes.
    ///
    /// # Panics
    /// When an option is longer than 255 octets, sname longer than 64 or file longer
    /// than 128: a test's mistake, not something a packet can say.
    pub fn build(&self) -> Vec<u8> {
        let mut m = vec![0u8; 240];
        m[0] = self.op;
        m[1] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&self.xid.to_be_bytes());
        m[10..12].copy_from_slice(&self.flags.to_be_bytes());
        m[12..16].copy_from_slice(&self.ciaddr.octets());
        m[16..20].copy_from_slice(&self.yiaddr.octets());
        m[28..34].copy_from_slice(&self.chaddr);
        assert!(self.sname.len() <= 64, "sname longer than 64 octets");
        assert!(self.file.len() <= 128, "file longer than 128 octets");
        m[44..44 + self.sname.len()].copy_from_slice(&self.sname);
        m[108..108 + self.file.len()].copy_from_slice(&self.file);
        if self.cookie {
            m[236..240].copy_from_slice(&MAGIC_COOKIE);
        }
        if let Some(k) = self.kind {
            m.extend_from_slice(&[53, 1, k]);
        }
        if let Some(s) = self.server_id {
            m.extend_from_slice(&[54, 4]);
            m.extend_from_slice(&s.octets());
        }
        for (code, v) in &self.options {
            assert!(v.len() <= 255, "option {code} too long for one instance");
            m.push(*code);
            m.push(v.len() as u8);
            m.extend_from_slice(v);
        }
        m.extend_from_slice(&self.raw);
        if !self.no_end {
            m.push(255);
        }
        if m.len() < self.min_len {
            m.resize(self.min_len, 0);
        }
        m
    }
}

/// RFC 1035 wire format of a list of names (option 119), without compression. Labels
/// are split at dots and written as given, even when they are not valid names.
pub fn dns_names(names: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        for label in n.split(|c| *c == b'.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
    out
}

/// A scripted server's identity and the one lease it gives: `addr` in the /24 of
/// `server`, which is also the router and the DNS server.
#[derive(Debug, Clone)]
pub struct Server {
    /// The server identifier (option 54), router (3) and DNS server (6).
    pub server: Ipv4Addr,
    /// The address every OFFER and ACK gives.
    pub addr: Ipv4Addr,
    /// Option 51.
    pub lease_secs: u32,
    /// Option 15.
    pub domain: Vec<u8>,
}

impl Server {
    /// A server at `server` giving `addr` for 600 s, with the domain `domain`.
    pub fn new(server: Ipv4Addr, addr: Ipv4Addr, domain: &str) -> Server {
        Server {
            server,
            addr,
            lease_secs: 600,
            domain: domain.as_bytes().to_vec(),
        }
    }

    /// Another host of the server's /24.
    pub fn host(&self, last: u8) -> Ipv4Addr {
        let o = self.server.octets();
        Ipv4Addr::new(o[0], o[1], o[2], last)
    }

    /// The valid reply of `kind` (OFFER, ACK or NAK) to `m`: same xid and chaddr, the
    /// server identifier, and for OFFER and ACK `addr` with lease time, /24 mask,
    /// router, DNS server and domain (options 51, 1, 3, 6, 15, in that order).
    pub fn reply(&self, m: &Message, kind: u8) -> Builder {
        let mut r = Builder::reply(kind, m.xid, m.chaddr);
        r.server_id = Some(self.server);
        if kind != NAK {
            r.yiaddr = self.addr;
            r = r
                .set(51, &self.lease_secs.to_be_bytes())
                .set(1, &[255, 255, 255, 0])
                .set(3, &self.server.octets())
                .set(6, &self.server.octets())
                .set(15, &self.domain);
        }
        r
    }
}

/// What a scripted server answers to one client message: the packets to send, in
/// order.
pub type Script = Box<dyn FnMut(&Message, &Server) -> Vec<Vec<u8>> + Send>;

/// The usual script: each DISCOVER gets `bad_offers`' packets then a valid OFFER shaped
/// by `offer`; each REQUEST gets `bad_acks`' packets then a valid ACK shaped by `ack`;
/// anything else gets nothing.
pub fn script(
    bad_offers: impl Fn(&Message, &Server) -> Vec<Vec<u8>> + Send + 'static,
    offer: impl Fn(Builder) -> Builder + Send + 'static,
    bad_acks: impl Fn(&Message, &Server) -> Vec<Vec<u8>> + Send + 'static,
    ack: impl Fn(Builder) -> Builder + Send + 'static,
) -> Script {
    Box::new(move |m, s| match m.msg_type {
        Some(DISCOVER) => {
            let mut out = bad_offers(m, s);
            out.push(offer(s.reply(m, OFFER)).build());
            out
        }
        Some(REQUEST) => {
            let mut out = bad_acks(m, s);
            out.push(ack(s.reply(m, ACK)).build());
            out
        }
        _ => Vec::new(),
    })
}

/// No extra packets (for [`script`]).
pub fn nothing(_: &Message, _: &Server) -> Vec<Vec<u8>> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_request_parses_back() {
        let mut b = Builder::request(DISCOVER, 0xdead_beef, [2, 0, 0, 0, 0, 9])
            .set(50, &[10, 0, 0, 7])
            .set(61, &[1, 2, 3]);
        b.flags = 0x8000;
        let m = parse(&b.build()).unwrap();
        assert_eq!(m.op, 1);
        assert_eq!(m.msg_type, Some(DISCOVER));
        assert_eq!(m.xid, 0xdead_beef);
        assert_eq!(m.flags, 0x8000);
        assert_eq!(m.chaddr, [2, 0, 0, 0, 0, 9]);
        assert_eq!(m.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(m.client_id.as_deref(), Some(&[1, 2, 3][..]));
        assert_eq!(b.build().len(), 240 + 3 + 6 + 5 + 1);
    }

    #[test]
    fn the_servers_reply_carries_the_lease() {
        let s = Server::new(
            Ipv4Addr::new(10, 79, 5, 1),
            Ipv4Addr::new(10, 79, 5, 50),
            "t.test",
        );
        let d = parse(&Builder::request(DISCOVER, 7, [2; 6]).build()).unwrap();
        let offer = s.reply(&d, OFFER).build();
        assert_eq!(offer.len(), 300);
        let o = parse(&offer).unwrap();
        assert_eq!((o.op, o.xid, o.chaddr), (2, 7, [2; 6]));
        assert_eq!(o.msg_type, Some(OFFER));
        assert_eq!(o.yiaddr, s.addr);
        assert_eq!(o.server_id, Some(s.server));
        assert_eq!(o.option(51), Some(&600u32.to_be_bytes()[..]));
        assert_eq!(o.option(15), Some(&b"t.test"[..]));
        let nak = parse(&s.reply(&d, NAK).build()).unwrap();
        assert_eq!(nak.yiaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(nak.option(51), None);
        assert_eq!(s.host(9), Ipv4Addr::new(10, 79, 5, 9));
    }

    #[test]
    fn the_usual_script_offers_then_acks() {
        let s = Server::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), "x");
        let mut script = script(
            |m, s| vec![s.reply(m, NAK).build()],
            |r| r.without(15),
            nothing,
            |r| r,
        );
        let d = parse(&Builder::request(DISCOVER, 1, [2; 6]).build()).unwrap();
        let out = script(&d, &s);
        assert_eq!(out.len(), 2);
        let o = parse(&out[1]).unwrap();
        assert_eq!((o.msg_type, o.option(15)), (Some(OFFER), None));
        let r = parse(&Builder::request(REQUEST, 1, [2; 6]).build()).unwrap();
        assert_eq!(parse(&script(&r, &s)[0]).unwrap().msg_type, Some(ACK));
        let i = parse(&Builder::request(INFORM, 1, [2; 6]).build()).unwrap();
        assert!(script(&i, &s).is_empty());
    }

    #[test]
    fn malformed_messages_do_not_parse() {
        let good = Builder::request(DISCOVER, 1, [2; 6]).build();
        assert!(parse(&good[..239]).is_none());
        let mut no_cookie = good.clone();
        no_cookie[236] = 0;
        assert!(parse(&no_cookie).is_none());
        let mut b = Builder::request(DISCOVER, 1, [2; 6]);
        b.raw = vec![6, 64, 1];
        b.no_end = true;
        assert!(parse(&b.build()).is_none());
        // Options stop at END; padding is skipped.
        let mut b = Builder::request(DISCOVER, 1, [2; 6]);
        b.raw = vec![0, 0, 255, 6, 4];
        b.no_end = true;
        assert_eq!(parse(&b.build()).unwrap().options.len(), 1);
    }

    #[test]
    fn names_are_written_label_by_label() {
        assert_eq!(
            dns_names(&[b"a.bc", b"d"]),
            vec![1, b'a', 2, b'b', b'c', 0, 1, b'd', 0]
        );
    }
}
