//! DHCP Unique Identifiers (RFC 8415 section 11) and Identity Association IDs.
//!
//! One [`Duid`] value identifies this host to DHCP servers. The DHCPv6 engine sends it
//! as the Client Identifier option; the DHCPv4 engine sends it inside an RFC 4361
//! client identifier (`0xff`, IAID, DUID). Because both engines are handed the same
//! value, the server sees one stable identity on both families and across every port
//! of a bond, whatever the hardware address of the moment.
//!
//! The DUID is generated once and persisted by the caller; this module only builds,
//! parses, formats and imports it.

use core::fmt;
use core::str::FromStr;

/// Hardware type 1 (Ethernet) from the IANA ARP parameters, used in DUID-LLT and DUID-LL.
pub const HWTYPE_ETHERNET: u16 = 1;

/// RFC 8415 limits a DUID to 128 octets after the 2-octet type.
pub const MAX_DUID_LEN: usize = 130;

/// The DUID types of RFC 8415 section 11 and RFC 6355.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuidKind {
    /// Type 1: link-layer address plus time.
    Llt,
    /// Type 2: vendor-assigned, by enterprise number.
    En,
    /// Type 3: link-layer address.
    Ll,
    /// Type 4: UUID (RFC 6355).
    Uuid,
    /// Any other type value: carried opaquely.
    Other(u16),
}

/// A DHCP Unique Identifier: opaque bytes, the first two of which are the type.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct Duid {
    bytes: Vec<u8>,
}

/// Why a DUID, IAID or client identifier could not be parsed or imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuidError {
    /// Fewer than 3 or more than 130 octets.
    BadLength(usize),
    /// The text is not colon- (or dash-) separated hex octets.
    BadHex(String),
    /// A type-specific layout was violated (e.g. a DUID-UUID that is not 16 octets).
    BadLayout(&'static str),
    /// An imported file or line did not have the expected shape.
    BadImport(String),
}

impl fmt::Display for DuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuidError::BadLength(n) => write!(
                f,
                "a DUID must be 3 to {MAX_DUID_LEN} octets long, this one has {n}"
            ),
            DuidError::BadHex(s) => write!(
                f,
                "{s:?} is not a list of hex octets; write it like 00:01:00:01:2e:2d:01:bd"
            ),
            DuidError::BadLayout(why) => write!(f, "malformed DUID: {why}"),
            DuidError::BadImport(why) => write!(f, "cannot import identifier: {why}"),
        }
    }
}

impl std::error::Error for DuidError {}

impl Duid {
    /// DUID-LLT: hardware type, time (seconds since 2000-01-01 UTC, mod 2^32), address.
    pub fn llt(hwtype: u16, time: u32, lladdr: &[u8]) -> Result<Self, DuidError> {
        let mut b = vec![0, 1];
        b.extend_from_slice(&hwtype.to_be_bytes());
        b.extend_from_slice(&time.to_be_bytes());
        b.extend_from_slice(lladdr);
        Self::from_bytes(b)
    }

    /// DUID-EN: enterprise number and a vendor-chosen identifier.
    pub fn en(enterprise: u32, identifier: &[u8]) -> Result<Self, DuidError> {
        if identifier.is_empty() {
            return Err(DuidError::BadLayout("DUID-EN needs a non-empty identifier"));
        }
        let mut b = vec![0, 2];
        b.extend_from_slice(&enterprise.to_be_bytes());
        b.extend_from_slice(identifier);
        Self::from_bytes(b)
    }

    /// DUID-LL: hardware type and link-layer address.
    pub fn ll(hwtype: u16, lladdr: &[u8]) -> Result<Self, DuidError> {
        if lladdr.is_empty() {
            return Err(DuidError::BadLayout("DUID-LL needs a link-layer address"));
        }
        let mut b = vec![0, 3];
        b.extend_from_slice(&hwtype.to_be_bytes());
        b.extend_from_slice(lladdr);
        Self::from_bytes(b)
    }

    /// DUID-UUID (RFC 6355) from 16 UUID octets.
    pub fn uuid(uuid: [u8; 16]) -> Self {
        let mut b = vec![0, 4];
        b.extend_from_slice(&uuid);
        Duid { bytes: b }
    }

    /// Any DUID from its wire bytes (type included). Known types are checked for layout.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, DuidError> {
        if bytes.len() < 3 || bytes.len() > MAX_DUID_LEN {
            return Err(DuidError::BadLength(bytes.len()));
        }
        let d = Duid { bytes };
        match d.kind() {
            DuidKind::Llt if d.bytes.len() < 9 => Err(DuidError::BadLayout(
                "DUID-LLT needs type, time and an address",
            )),
            DuidKind::En if d.bytes.len() < 7 => Err(DuidError::BadLayout(
                "DUID-EN needs an enterprise number and an identifier",
            )),
            DuidKind::Ll if d.bytes.len() < 5 => Err(DuidError::BadLayout(
                "DUID-LL needs a hardware type and an address",
            )),
            DuidKind::Uuid if d.bytes.len() != 18 => Err(DuidError::BadLayout(
                "DUID-UUID must carry exactly 16 octets",
            )),
            _ => Ok(d),
        }
    }

    /// The wire bytes, type included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The DUID type.
    pub fn kind(&self) -> DuidKind {
        match u16::from_be_bytes([self.bytes[0], self.bytes[1]]) {
            1 => DuidKind::Llt,
            2 => DuidKind::En,
            3 => DuidKind::Ll,
            4 => DuidKind::Uuid,
            n => DuidKind::Other(n),
        }
    }

    /// Import from the content of a WIDE dhcp6c DUID file (`/var/lib/dhcpv6/dhcp6c_duid`):
    /// a 2-octet little-endian length followed by that many DUID octets.
    pub fn from_dhcp6c_file(content: &[u8]) -> Result<Self, DuidError> {
        if content.len() < 2 {
            return Err(DuidError::BadImport(
                "a dhcp6c DUID file starts with a 2-byte length; this one is shorter".into(),
            ));
        }
        let len = u16::from_le_bytes([content[0], content[1]]) as usize;
        let rest = &content[2..];
        if rest.len() < len {
            return Err(DuidError::BadImport(format!(
                "the dhcp6c DUID file announces {len} octets but holds {}",
                rest.len()
            )));
        }
        Self::from_bytes(rest[..len].to_vec())
    }

    /// The content of a WIDE dhcp6c DUID file for this DUID.
    pub fn to_dhcp6c_file(&self) -> Vec<u8> {
        let mut out = (self.bytes.len() as u16).to_le_bytes().to_vec();
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Import from the value of a dhclient.conf `send dhcp-client-identifier` statement
    /// (the hex text, with or without the statement and trailing `;`).
    ///
    /// An RFC 4361 identifier (`ff`, 4-octet IAID, DUID) yields its IAID and DUID.
    /// Anything else is taken as a bare DUID, which is how the reference setup writes it
    /// (the same octets as the dhcp6c DUID file).
    pub fn from_dhclient_client_id(text: &str) -> Result<(Option<Iaid>, Self), DuidError> {
        let mut t = text.trim();
        if let Some(rest) = t.strip_prefix("send") {
            t = rest.trim_start();
        }
        if let Some(rest) = t.strip_prefix("dhcp-client-identifier") {
            t = rest.trim_start();
        }
        let t = t.trim_end().trim_end_matches(';').trim();
        if t.starts_with('"') {
            return Err(DuidError::BadImport(
                "a quoted dhcp-client-identifier is a string, not a DUID; give the hex form".into(),
            ));
        }
        let bytes = parse_hex_octets(t)?;
        if bytes.first() == Some(&0xff) && bytes.len() >= 8 {
            let iaid = Iaid(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
            let duid = Self::from_bytes(bytes[5..].to_vec())?;
            return Ok((Some(iaid), duid));
        }
        Ok((None, Self::from_bytes(bytes)?))
    }
}

impl fmt::Display for Duid {
    /// Colon-separated lowercase hex, the form dhclient.conf and dnsmasq use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.bytes)
    }
}

impl fmt::Debug for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({self})")
    }
}

impl FromStr for Duid {
    type Err = DuidError;
    fn from_str(s: &str) -> Result<Self, DuidError> {
        Self::from_bytes(parse_hex_octets(s.trim())?)
    }
}

impl TryFrom<String> for Duid {
    type Error = DuidError;
    fn try_from(s: String) -> Result<Self, DuidError> {
        s.parse()
    }
}

impl From<Duid> for String {
    fn from(d: Duid) -> String {
        d.to_string()
    }
}

/// An Identity Association ID (RFC 8415 section 12; RFC 4361 section 6.1).
///
/// It must stay the same across restarts and must not follow a hardware address that a
/// bond may change, so the default is derived from the interface *name*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Iaid(pub u32);

impl Iaid {
    /// A stable IAID from an interface name (FNV-1a), for when config names none.
    pub fn from_name(name: &str) -> Self {
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        Iaid(h)
    }

    /// The four octets as sent on the wire.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Iaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl FromStr for Iaid {
    type Err = DuidError;
    /// Decimal (`1`), `0x`-prefixed hex, or four colon-separated octets.
    fn from_str(s: &str) -> Result<Self, DuidError> {
        let s = s.trim();
        if let Some(hex) = s.strip_prefix("0x") {
            return u32::from_str_radix(hex, 16)
                .map(Iaid)
                .map_err(|_| DuidError::BadHex(s.into()));
        }
        if s.contains(':') {
            let b = parse_hex_octets(s)?;
            if b.len() != 4 {
                return Err(DuidError::BadLayout("an IAID is exactly 4 octets"));
            }
            return Ok(Iaid(u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
        }
        s.parse::<u32>()
            .map(Iaid)
            .map_err(|_| DuidError::BadHex(s.into()))
    }
}

/// The RFC 4361 DHCPv4 client identifier: type 255, IAID, DUID.
pub fn rfc4361_client_id(iaid: Iaid, duid: &Duid) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + duid.as_bytes().len());
    v.push(0xff);
    v.extend_from_slice(&iaid.to_bytes());
    v.extend_from_slice(duid.as_bytes());
    v
}

/// Parse `aa:bb:cc` (also `aa-bb-cc`, or a single run of hex digits) into octets.
pub fn parse_hex_octets(s: &str) -> Result<Vec<u8>, DuidError> {
    let bad = || DuidError::BadHex(s.chars().take(64).collect());
    if s.is_empty() {
        return Err(bad());
    }
    let parts: Vec<&str> = if s.contains(':') || s.contains('-') {
        s.split([':', '-']).collect()
    } else if s.len() % 2 == 0 {
        (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).unwrap_or(""))
            .collect()
    } else {
        return Err(bad());
    };
    parts
        .iter()
        .map(|p| {
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                Err(bad())
            } else {
                u8::from_str_radix(p, 16).map_err(|_| bad())
            }
        })
        .collect()
}

/// Write octets as colon-separated lowercase hex.
pub fn write_hex(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_char(':')?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Serde for octet strings kept as colon-separated hex (a server DUID in a lease
/// file): written as `"00:01:..."`; read from that or from a list of numbers (how such
/// fields were written before).
#[cfg(feature = "serde")]
pub mod hex_serde {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Write `bytes` as colon-separated hex.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(bytes.len() * 3);
        let _ = super::write_hex(&mut text, bytes);
        s.serialize_str(&text)
    }

    /// Read colon-separated hex, or a list of octets.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Octets;
        impl<'de> Visitor<'de> for Octets {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("colon-separated hex octets")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Vec<u8>, E> {
                super::parse_hex_octets(v).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_any(Octets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    #[test]
    fn builds_each_type_with_its_layout() {
        let llt = Duid::llt(HWTYPE_ETHERNET, 0x2e2d01bd, &MAC).unwrap();
        assert_eq!(llt.to_string(), "00:01:00:01:2e:2d:01:bd:52:54:00:12:34:56");
        assert_eq!(llt.kind(), DuidKind::Llt);
        let en = Duid::en(43793, &[1, 2, 3]).unwrap();
        assert_eq!(en.as_bytes(), &[0, 2, 0, 0, 0xab, 0x11, 1, 2, 3]);
        let ll = Duid::ll(HWTYPE_ETHERNET, &MAC).unwrap();
        assert_eq!(ll.as_bytes()[..4], [0, 3, 0, 1]);
        assert_eq!(ll.kind(), DuidKind::Ll);
        let uuid = Duid::uuid([7; 16]);
        assert_eq!(uuid.as_bytes().len(), 18);
        assert_eq!(uuid.kind(), DuidKind::Uuid);
        let raw: Duid = "00:ff:01".parse().unwrap();
        assert_eq!(raw.kind(), DuidKind::Other(255));
    }

    #[test]
    fn rejects_bad_layouts_and_lengths() {
        assert_eq!(Duid::from_bytes(vec![0, 1]), Err(DuidError::BadLength(2)));
        assert!(Duid::from_bytes(vec![0; 131]).is_err());
        assert!(Duid::from_bytes(vec![0, 4, 1, 2]).is_err());
        assert!(Duid::from_bytes(vec![0, 1, 0, 1, 0]).is_err());
        assert!(Duid::en(1, &[]).is_err());
        assert!("zz:01:02".parse::<Duid>().is_err());
        assert!("0:01::02".parse::<Duid>().is_err());
        assert!("".parse::<Duid>().is_err());
        assert!("abc".parse::<Duid>().is_err());
    }

    #[test]
    fn text_round_trips() {
        let d: Duid = "00:02:00:02:2E:2D:01:BD:C3:92:9A:44:2A:C4".parse().unwrap();
        assert_eq!(d.to_string(), "00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4");
        assert_eq!(d.to_string().parse::<Duid>().unwrap(), d);
        let compact: Duid = "000300015254001234".parse().unwrap();
        assert_eq!(compact.as_bytes().len(), 9);
    }

    #[test]
    fn dhcp6c_file_round_trips_little_endian_length() {
        let d: Duid = "00:01:00:01:2e:2d:01:bd:52:54:00:12:34:56".parse().unwrap();
        let file = d.to_dhcp6c_file();
        assert_eq!(&file[..2], &[14, 0]);
        assert_eq!(Duid::from_dhcp6c_file(&file).unwrap(), d);
        // Trailing bytes after the announced length are ignored, as dhcp6c does.
        let mut longer = file.clone();
        longer.push(0xaa);
        assert_eq!(Duid::from_dhcp6c_file(&longer).unwrap(), d);
        assert!(Duid::from_dhcp6c_file(&file[..10]).is_err());
        assert!(Duid::from_dhcp6c_file(&[1]).is_err());
    }

    #[test]
    fn dhclient_statement_imports_bare_duid_and_rfc4361_forms() {
        let line = "send dhcp-client-identifier 00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4 ;";
        let (iaid, d) = Duid::from_dhclient_client_id(line).unwrap();
        assert_eq!(iaid, None);
        assert_eq!(d.to_string(), "00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4");

        let id = rfc4361_client_id(Iaid(7), &d);
        let text = {
            let mut s = String::new();
            write_hex(&mut s, &id).unwrap();
            s
        };
        let (iaid, d2) = Duid::from_dhclient_client_id(&text).unwrap();
        assert_eq!(iaid, Some(Iaid(7)));
        assert_eq!(d2, d);
        assert!(Duid::from_dhclient_client_id("\"laptop\";").is_err());
    }

    #[test]
    fn iaid_is_stable_and_parses_every_form() {
        assert_eq!(Iaid::from_name("bond0"), Iaid::from_name("bond0"));
        assert_ne!(Iaid::from_name("bond0"), Iaid::from_name("bond1"));
        assert_eq!("1".parse::<Iaid>().unwrap(), Iaid(1));
        assert_eq!("0x10".parse::<Iaid>().unwrap(), Iaid(16));
        assert_eq!("00:00:01:00".parse::<Iaid>().unwrap(), Iaid(256));
        assert!("1:2".parse::<Iaid>().is_err());
        assert_eq!(Iaid(1).to_string(), "0x00000001");
    }

    #[test]
    fn rfc4361_layout() {
        let d = Duid::ll(1, &MAC).unwrap();
        let id = rfc4361_client_id(Iaid(0x01020304), &d);
        assert_eq!(id[0], 0xff);
        assert_eq!(&id[1..5], &[1, 2, 3, 4]);
        assert_eq!(&id[5..], d.as_bytes());
    }
}
