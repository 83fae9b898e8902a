//! DHCPv4 message encoding and strict decoding (RFC 2131, RFC 2132, RFC 3396, RFC 3442).
//!
//! Decoding is deliberately unforgiving about structure: a message whose options run past
//! its end, whose options field (or overloaded `sname`/`file` field) is not terminated
//! by END, whose fixed-size options have the wrong length or repeat, or whose option
//! overload is inconsistent is rejected as a whole, with a reason the caller logs. Parsing of each
//! option's *meaning* happens in [`super::reply`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The BOOTP fixed header is 236 octets; the magic cookie follows.
pub const HEADER_LEN: usize = 236;
/// RFC 2131 section 3: the options field starts with 99.130.83.99.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// BOOTP relays may drop anything shorter (RFC 1542 section 2.1).
pub const MIN_MESSAGE_LEN: usize = 300;
/// Packets larger than this are not DHCP replies we accept (a jumbo frame is 9000).
pub const MAX_MESSAGE_LEN: usize = 9000;

/// Option codes used by the client.
#[allow(missing_docs)]
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN: u8 = 15;
    pub const BROADCAST: u8 = 28;
    pub const MTU: u8 = 26;
    pub const NTP: u8 = 42;
    pub const STATIC_ROUTES: u8 = 33;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAM_REQUEST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const USER_CLASS: u8 = 77;
    pub const RAPID_COMMIT: u8 = 80;
    pub const CLIENT_ID: u8 = 61;
    pub const CLIENT_FQDN: u8 = 81;
    pub const V6ONLY_PREFERRED: u8 = 108;
    pub const CAPTIVE_PORTAL: u8 = 114;
    pub const DOMAIN_SEARCH: u8 = 119;
    pub const CLASSLESS_ROUTES: u8 = 121;
    pub const END: u8 = 255;
}

/// The exact length every fixed-size option must have, or `None` for variable ones.
fn fixed_len(code: u8) -> Option<usize> {
    match code {
        opt::SUBNET_MASK
        | opt::BROADCAST
        | opt::REQUESTED_IP
        | opt::LEASE_TIME
        | opt::SERVER_ID
        | opt::RENEWAL_TIME
        | opt::REBINDING_TIME => Some(4),
        opt::MTU | opt::MAX_MESSAGE_SIZE => Some(2),
        opt::OVERLOAD | opt::MESSAGE_TYPE => Some(1),
        _ => None,
    }
}

/// A decoded BOOTP/DHCP message: the header fields a client looks at, and the options
/// with RFC 3396 concatenation applied (all instances of a code joined in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 1 = BOOTREQUEST, 2 = BOOTREPLY.
    pub op: u8,
    /// Hardware type.
    pub htype: u8,
    /// Hardware address length.
    pub hlen: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// Flags (bit 15 = broadcast).
    pub flags: u16,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// "Your" address.
    pub yiaddr: Ipv4Addr,
    /// Next server address.
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address field (16 octets).
    pub chaddr: [u8; 16],
    /// Options by code.
    pub options: BTreeMap<u8, Vec<u8>>,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Parse one options area into `out`. Returns the value of option 52 if seen.
///
/// The area must be terminated by END (RFC 2132 section 3.2 for the options field, 9.3
/// for an overloaded `sname`/`file`): an area whose last option runs exactly to its end,
/// or whose END was swallowed by the length of the option before it, has lost an
/// unknown part of what the server meant (the hostile case: the subnet mask), so the
/// whole message is refused with `no_end`. What follows END is never read: RFC 2131
/// wants pad there, and nothing in it can change the meaning of the options before.
fn parse_options(
    area: &[u8],
    out: &mut BTreeMap<u8, Vec<u8>>,
    allow_overload: bool,
    total: &mut usize,
    no_end: &'static str,
) -> Result<Option<u8>, &'static str> {
    let mut i = 0;
    let mut overload = None;
    while i < area.len() {
        let code = area[i];
        match code {
            opt::PAD => {
                i += 1;
                continue;
            }
            opt::END => return Ok(overload),
            _ => {}
        }
        let len = *area.get(i + 1).ok_or("option header runs past the end")? as usize;
        let data = area
            .get(i + 2..i + 2 + len)
            .ok_or("option length runs past the end")?;
        if let Some(n) = fixed_len(code) {
            if len != n {
                return Err("fixed-size option with the wrong length");
            }
        }
        if code == opt::OVERLOAD {
            if !allow_overload {
                return Err("option overload inside an overloaded field");
            }
            if overload.is_some() {
                return Err("option overload given twice");
            }
            overload = Some(data[0]);
        } else {
            *total += len;
            if *total > 16 * 1024 {
                return Err("options exceed 16 KiB in total");
            }
            let entry = out.entry(code).or_default();
            if fixed_len(code).is_some() && !entry.is_empty() {
                return Err("fixed-size option repeated");
            }
            entry.extend_from_slice(data);
        }
        i += 2 + len;
    }
    Err(no_end)
}

impl Message {
    /// Decode a message, rejecting it whole on any structural violation.
    pub fn parse(b: &[u8]) -> Result<Message, &'static str> {
        if b.len() < HEADER_LEN + 4 {
            return Err("shorter than a BOOTP header and magic cookie");
        }
        if b.len() > MAX_MESSAGE_LEN {
            return Err("longer than any DHCP message we accept");
        }
        if b[HEADER_LEN..HEADER_LEN + 4] != MAGIC_COOKIE {
            return Err("no DHCP magic cookie (a plain BOOTP message)");
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(&b[28..44]);
        let mut options = BTreeMap::new();
        let mut total = 0;
        let overload = parse_options(
            &b[HEADER_LEN + 4..],
            &mut options,
            true,
            &mut total,
            "options field not terminated by END",
        )?;
        // RFC 2131 section 4.1 / RFC 3396: the file field is read before sname.
        match overload {
            None => {}
            Some(v @ 1..=3) => {
                if v & 1 != 0 {
                    parse_options(
                        &b[108..236],
                        &mut options,
                        false,
                        &mut total,
                        "overloaded file field not terminated by END",
                    )?;
                }
                if v & 2 != 0 {
                    parse_options(
                        &b[44..108],
                        &mut options,
                        false,
                        &mut total,
                        "overloaded sname field not terminated by END",
                    )?;
                }
            }
            Some(_) => return Err("option overload with a value other than 1, 2 or 3"),
        }
        Ok(Message {
            op: b[0],
            htype: b[1],
            hlen: b[2],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip_at(b, 12),
            yiaddr: ip_at(b, 16),
            siaddr: ip_at(b, 20),
            giaddr: ip_at(b, 24),
            chaddr,
            options,
        })
    }

    /// An option's raw value.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options.get(&code).map(Vec::as_slice)
    }

    /// A 4-octet option as an address (length was checked at parse time).
    pub fn option_ip(&self, code: u8) -> Option<Ipv4Addr> {
        self.option(code)
            .filter(|v| v.len() == 4)
            .map(|v| ip_at(v, 0))
    }

    /// A 4-octet option as a number.
    pub fn option_u32(&self, code: u8) -> Option<u32> {
        self.option(code)
            .filter(|v| v.len() == 4)
            .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }

    /// A 2-octet option as a number.
    pub fn option_u16(&self, code: u8) -> Option<u16> {
        self.option(code)
            .filter(|v| v.len() == 2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
    }
}

/// Builds a client message: header, cookie, options, END, padded to 300 octets.
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// A BOOTREQUEST header for an Ethernet client.
    pub fn request(xid: u32, secs: u16, ciaddr: Ipv4Addr, chaddr: [u8; 6]) -> Builder {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[0] = 1; // BOOTREQUEST
        buf[1] = 1; // Ethernet
        buf[2] = 6;
        buf[4..8].copy_from_slice(&xid.to_be_bytes());
        buf[8..10].copy_from_slice(&secs.to_be_bytes());
        buf[12..16].copy_from_slice(&ciaddr.octets());
        buf[28..34].copy_from_slice(&chaddr);
        buf.extend_from_slice(&MAGIC_COOKIE);
        Builder { buf }
    }

    /// Set the BROADCAST bit of the flags field.
    pub fn broadcast_flag(&mut self) -> &mut Self {
        self.buf[10] |= 0x80;
        self
    }

    /// Append an option, split into 255-octet pieces per RFC 3396 when longer.
    pub fn option(&mut self, code: u8, data: &[u8]) -> &mut Self {
        if data.is_empty() {
            self.buf.extend_from_slice(&[code, 0]);
        }
        for chunk in data.chunks(255) {
            self.buf.push(code);
            self.buf.push(chunk.len() as u8);
            self.buf.extend_from_slice(chunk);
        }
        self
    }

    /// Append an address-valued option.
    pub fn option_ip(&mut self, code: u8, ip: Ipv4Addr) -> &mut Self {
        self.option(code, &ip.octets())
    }

    /// Finish with END and padding.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(opt::END);
        if self.buf.len() < MIN_MESSAGE_LEN {
            self.buf.resize(MIN_MESSAGE_LEN, 0);
        }
        self.buf
    }
}

/// A DNS name in wire format (RFC 1035 labels, no compression). With `full`, ends with
/// the root label (a fully qualified name); without, it is a partial name (RFC 4704
/// section 4.2: the server completes it). The name must be valid (callers check it).
pub fn dns_name_wire(name: &str, full: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    if full {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_with(options: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 2;
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(options);
        b
    }

    #[test]
    fn builder_output_parses_back() {
        let mut bld = Builder::request(
            0xdeadbeef,
            3,
            Ipv4Addr::new(10, 0, 0, 5),
            [1, 2, 3, 4, 5, 6],
        );
        bld.option(opt::MESSAGE_TYPE, &[3]);
        bld.option(opt::VENDOR_CLASS, &[b'x'; 300]);
        let bytes = bld.finish();
        assert!(bytes.len() >= MIN_MESSAGE_LEN);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.flags, 0);
        assert_eq!(m.xid, 0xdeadbeef);
        assert_eq!(m.secs, 3);
        assert_eq!(m.ciaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(&m.chaddr[..6], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(m.option(opt::VENDOR_CLASS).unwrap().len(), 300);
    }

    #[test]
    fn structural_violations_reject_the_message() {
        assert!(Message::parse(&[0u8; 100]).is_err());
        let mut no_cookie = reply_with(&[255]);
        no_cookie[HEADER_LEN] = 0;
        assert!(Message::parse(&no_cookie).is_err());
        // Length past the end.
        assert!(Message::parse(&reply_with(&[53, 5, 1])).is_err());
        // Header cut in half.
        assert!(Message::parse(&reply_with(&[53])).is_err());
        // Fixed-size with wrong length.
        assert!(Message::parse(&reply_with(&[53, 2, 5, 5, 255])).is_err());
        assert!(Message::parse(&reply_with(&[54, 3, 1, 2, 3, 255])).is_err());
        assert!(Message::parse(&reply_with(&[26, 1, 1, 255])).is_err());
        // Repeated fixed-size option.
        assert!(Message::parse(&reply_with(&[53, 1, 5, 53, 1, 5, 255])).is_err());
        // Bad overload value.
        assert!(Message::parse(&reply_with(&[52, 1, 4, 255])).is_err());
        assert!(Message::parse(&reply_with(&[52, 1, 1, 52, 1, 1, 255])).is_err());
        // Oversize.
        assert!(Message::parse(&vec![0u8; MAX_MESSAGE_LEN + 1]).is_err());
    }

    #[test]
    fn overload_is_parsed_once_from_the_main_field_only() {
        let mut b = reply_with(&[52, 1, 3, 53, 1, 5, 255]);
        // file field: a DNS option; sname field: a hostname option.
        b[108..116].copy_from_slice(&[6, 4, 10, 0, 0, 1, 255, 0]);
        b[44..51].copy_from_slice(&[12, 3, b'a', b'b', b'c', 255, 0]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.option(6).unwrap(), &[10, 0, 0, 1]);
        assert_eq!(m.option(12).unwrap(), b"abc");
        // An overload option inside the overloaded file field is a violation, never a loop.
        let mut b = reply_with(&[52, 1, 1, 255]);
        b[108..112].copy_from_slice(&[52, 1, 1, 255]);
        assert!(Message::parse(&b).is_err());
        // Without option 52 the sname/file fields are not read as options.
        let mut b = reply_with(&[53, 1, 5, 255]);
        b[108..114].copy_from_slice(&[6, 4, 10, 0, 0, 1]);
        assert!(Message::parse(&b).unwrap().option(6).is_none());
    }

    #[test]
    fn rfc3396_concatenates_split_options() {
        let m = Message::parse(&reply_with(&[6, 4, 1, 1, 1, 1, 6, 4, 2, 2, 2, 2, 255])).unwrap();
        assert_eq!(m.option(6).unwrap(), &[1, 1, 1, 1, 2, 2, 2, 2]);
    }

    #[test]
    fn an_options_field_without_end_is_malformed() {
        // The last option ends exactly at the end of the packet.
        assert_eq!(
            Message::parse(&reply_with(&[53, 1, 5])),
            Err("options field not terminated by END")
        );
        // The last option's length swallows the END that follows it.
        assert_eq!(
            Message::parse(&reply_with(&[53, 1, 5, 15, 3, b'a', b'b', 255])),
            Err("options field not terminated by END")
        );
        // Only pad, or nothing at all, after the cookie.
        assert!(Message::parse(&reply_with(&[0, 0, 0])).is_err());
        assert!(Message::parse(&reply_with(&[])).is_err());
        // END right after the cookie is a well-formed (empty) options field.
        assert!(Message::parse(&reply_with(&[255])).is_ok());
    }

    #[test]
    fn what_follows_end_is_not_read() {
        // Pad after END, as RFC 2131 asks.
        let m = Message::parse(&reply_with(&[53, 1, 5, 255, 0, 0, 0])).unwrap();
        assert_eq!(m.option(53).unwrap(), &[5]);
        // Anything else after END is ignored too: it is never parsed as options.
        let m = Message::parse(&reply_with(&[53, 1, 5, 255, 1, 4, 255, 0, 0, 0, 6])).unwrap();
        assert_eq!(m.option(opt::SUBNET_MASK), None);
        assert_eq!(m.option(opt::DNS), None);
    }

    #[test]
    fn an_overloaded_field_without_end_is_malformed() {
        // file field overloaded (1), its options run to the end of the field.
        let mut b = reply_with(&[52, 1, 1, 53, 1, 5, 255]);
        b[108..236].fill(0);
        b[108] = 15;
        b[109] = 126;
        b[110..236].fill(b'a');
        assert_eq!(
            Message::parse(&b),
            Err("overloaded file field not terminated by END")
        );
        // The same field with an END fits and is accepted.
        b[109] = 125;
        b[235] = 255;
        assert_eq!(Message::parse(&b).unwrap().option(15).unwrap().len(), 125);
        // sname field overloaded (2) holding only pad: no END.
        let b = reply_with(&[52, 1, 2, 53, 1, 5, 255]);
        assert_eq!(
            Message::parse(&b),
            Err("overloaded sname field not terminated by END")
        );
        // Both (3): a good file field does not excuse a bad sname field.
        let mut b = reply_with(&[52, 1, 3, 53, 1, 5, 255]);
        b[108] = 255;
        b[44..50].copy_from_slice(&[12, 4, b'h', b'o', b's', b't']);
        assert_eq!(
            Message::parse(&b),
            Err("overloaded sname field not terminated by END")
        );
    }

    #[test]
    fn fixed_size_options_may_not_repeat_across_fields() {
        // A subnet mask in the options field and another in the overloaded file field:
        // which one the server meant is unknowable.
        let mut b = reply_with(&[52, 1, 1, 1, 4, 255, 255, 255, 0, 255]);
        b[108..115].copy_from_slice(&[1, 4, 255, 0, 0, 0, 255]);
        assert_eq!(Message::parse(&b), Err("fixed-size option repeated"));
    }

    #[test]
    fn zero_length_fixed_size_options_are_malformed() {
        for code in [1u8, 51, 53, 54, 58, 59, 26, 52] {
            assert_eq!(
                Message::parse(&reply_with(&[code, 0, 255])),
                Err("fixed-size option with the wrong length"),
                "option {code}"
            );
        }
    }
}
