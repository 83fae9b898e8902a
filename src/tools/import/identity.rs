//! The identity the DHCP servers already know: `[identity] duid` / `iaid` and
//! `[dhcp4] client_id`, from dhclient's client identifier, the dhcp6c DUID file and
//! dhcp6c's `send ia-na`.
//!
//! * The DHCPv4 client identifier is kept byte for byte. A bare DUID (the reference
//!   `send dhcp-client-identifier 00:02:...;`) becomes `[identity] duid` with
//!   `[dhcp4] client_id = "duid"`; an RFC 4361 identifier (`ff`, IAID, DUID) becomes
//!   `[identity] duid` + `iaid` with `client_id = "rfc4361"`; anything else is
//!   written as exact hex octets.
//! * DUID: the dhclient identifier's DUID wins over `dhcp6c_duid` when both exist and
//!   differ (IPv4 reservations match the whole client identifier, so changing it loses
//!   the fixed address; a DHCPv6 server only sees a new DUID, which the notes warn
//!   about). `dhcp6c_duid` is used when dhclient sent no DUID.
//! * IAID: netbond uses one IAID for the RFC 4361 client identifier and the IA_NA.
//!   When dhclient sent an RFC 4361 identifier, its IAID wins for the same reason (it
//!   is part of the octets the IPv4 server matches); dhcp6c's `send ia-na N` is used
//!   otherwise. A conflict is a warning note.
//! * Where one side has to change, the note also says how to keep both exactly
//!   (`client_id` as raw hex octets, `[identity]` from the other side).

use super::dhclient::V4;
use super::dhcp6c::V6;
use super::render::Out;
use super::{NoteKind, Notes, Sourced};
use netbond_proto::duid::{write_hex, Duid, DuidKind, Iaid};

/// How the dhclient identifier's octets map onto netbond's settings.
#[derive(Debug, Clone, PartialEq)]
enum V4Id {
    Rfc4361(Iaid, Duid),
    Bare(Duid),
    Raw(Vec<u8>),
}

fn classify_client_id(bytes: &[u8]) -> V4Id {
    if bytes.first() == Some(&0xff) && bytes.len() >= 8 {
        if let Ok(d) = Duid::from_bytes(bytes[5..].to_vec()) {
            let iaid = Iaid(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
            return V4Id::Rfc4361(iaid, d);
        }
        return V4Id::Raw(bytes.to_vec());
    }
    match Duid::from_bytes(bytes.to_vec()) {
        Ok(d) if !matches!(d.kind(), DuidKind::Other(_)) => V4Id::Bare(d),
        _ => V4Id::Raw(bytes.to_vec()),
    }
}

/// Octets as `aa:bb:...`.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    let _ = write_hex(&mut s, bytes);
    s
}

/// A setting with a note saying where it came from.
type Chosen<T> = Option<(T, String)>;

/// The DUID in WIDE-DHCPv6's DUID file (2-byte little-endian length, then the DUID).
pub(super) fn dhcp6c_duid(file: &str, bytes: &[u8], notes: &mut Notes) -> Option<Sourced<Duid>> {
    match Duid::from_dhcp6c_file(bytes) {
        Ok(d) => {
            notes.push(NoteKind::Found, format!("{file}: DUID {d}"));
            Some(Sourced {
                value: d,
                at: file.to_string(),
            })
        }
        Err(e) => {
            notes.push(NoteKind::Warning, format!("{file}: {e}; not imported"));
            None
        }
    }
}

/// Decide the identity (see the module comment) and write `[identity]` and
/// `[dhcp4] client_id`.
pub(super) fn write(
    v4: Option<&V4>,
    v6: Option<&V6>,
    v6_duid: Option<&Sourced<Duid>>,
    out: &mut Out,
    notes: &mut Notes,
) {
    let client_id = v4.and_then(|v| v.client_id.as_ref());
    let (mut duid, mut iaid) = match client_id {
        Some(c) => from_client_id(c, out, notes),
        None => {
            if v4.is_some() {
                notes.push(
                    NoteKind::Warning,
                    "dhclient sent no client identifier (the server saw only the MAC, which changes at failover); netbond sends an RFC 4361 one built from the DUID".into(),
                );
            }
            (None, None)
        }
    };
    // The exact octets, for the notes' "to keep both exactly" advice.
    let raw = client_id.map_or(String::new(), |c| hex(&c.value));
    if let Some(d6) = v6_duid {
        match &duid {
            Some((d4, _)) if *d4 == d6.value => notes.push(
                NoteKind::Found,
                format!("{}: the same DUID as the DHCPv4 client identifier, as the reference setup requires", d6.at),
            ),
            Some((d4, from4)) => notes.push(
                NoteKind::Warning,
                format!(
                    "the dhclient DUID {d4} ({from4}) differs from dhcp6c's {} ({}); netbond uses one DUID and keeps dhclient's, so IPv4 fixed addresses still match, but the DHCPv6 server will see a new DUID (update its reservations). To keep both exactly instead: set [identity] duid = \"{}\" and [dhcp4] client_id = \"{raw}\"",
                    d6.value,
                    d6.at,
                    d6.value,
                ),
            ),
            None => {
                duid = Some((d6.value.clone(), format!("{}: the dhcp6c DUID", d6.at)));
            }
        }
    }
    if let Some(na) = v6.and_then(|v| v.ia_na.as_ref()) {
        match &iaid {
            Some((i4, from4)) if i4.0 != na.value => notes.push(
                NoteKind::Warning,
                format!(
                    "{}: IA_NA IAID {} differs from the IAID {} in the RFC 4361 client identifier ({from4}); netbond uses one IAID and keeps the IPv4 one (it is part of the octets the IPv4 server matches), so the DHCPv6 server sees a new IA_NA: the address is kept if reserved by DUID, else a new one is leased. To keep both exactly instead: set [identity] iaid = \"{}\" and [dhcp4] client_id = \"{raw}\"",
                    na.at,
                    na.value,
                    i4.0,
                    na.value,
                ),
            ),
            Some(_) => {}
            None => iaid = Some((Iaid(na.value), format!("{}: send ia-na {}", na.at, na.value))),
        }
    }
    match &duid {
        Some((d, from)) => out.set("identity", "duid", d.to_string(), Some(from.clone())),
        None => notes.push(
            NoteKind::Warning,
            "no DUID found: netbond will generate one, and the DHCP servers will see a new client"
                .into(),
        ),
    }
    match &iaid {
        Some((i, from)) => out.set(
            "identity",
            "iaid",
            i.0.to_string(),
            Some(format!("{from} ({i})")),
        ),
        None if v6.is_some() || client_id.is_some() => notes.push(
            NoteKind::Found,
            "no IAID found: netbond derives a stable one from the bond's name".into(),
        ),
        None => {}
    }
}

/// `[dhcp4] client_id` from dhclient's identifier, and the DUID and IAID inside it.
fn from_client_id(
    c: &Sourced<Vec<u8>>,
    out: &mut Out,
    notes: &mut Notes,
) -> (Chosen<Duid>, Chosen<Iaid>) {
    let inside = format!("{}: inside the RFC 4361 client identifier", c.at);
    let (note, setting, comment, duid, iaid) = match classify_client_id(&c.value) {
        V4Id::Rfc4361(i, d) => (
            format!("{}: RFC 4361 client identifier: IAID {} and DUID {d}", c.at, i.0),
            "rfc4361".to_string(),
            format!("{}: ff + IAID + DUID, rebuilt from [identity]", c.at),
            Some((d, inside.clone())),
            Some((i, inside)),
        ),
        V4Id::Bare(d) => (
            format!("{}: the client identifier is a bare DUID {d}: kept as client_id = \"duid\" so the server's fixed addresses still match", c.at),
            "duid".to_string(),
            format!("{}: the bare DUID, exactly as dhclient sent it", c.at),
            Some((d, format!("{}: send dhcp-client-identifier (a bare DUID)", c.at))),
            None,
        ),
        V4Id::Raw(b) => (
            format!("{}: the client identifier is neither a DUID nor RFC 4361: kept as its exact octets", c.at),
            hex(&b),
            format!("{}: exact octets", c.at),
            None,
            None,
        ),
    };
    notes.push(NoteKind::Found, note);
    out.set("dhcp4", "client_id", setting, Some(comment));
    (duid, iaid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::import::testutil::*;
    use netbond_proto::duid::rfc4361_client_id;

    #[test]
    fn the_fixture_duid_file_holds_the_reference_duid() {
        let d = Duid::from_dhcp6c_file(DUID_FILE).unwrap();
        assert_eq!(d.to_string(), REF_DUID);
        assert_eq!(d.to_dhcp6c_file(), DUID_FILE);
    }

    #[test]
    fn rfc4361_identifier_keeps_its_octets() {
        let d: Duid = REF_DUID.parse().unwrap();
        let id = rfc4361_client_id(Iaid(7), &d);
        let conf = format!("send dhcp-client-identifier {};\n", hex(&id));
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", conf.as_bytes()),
            ..Inputs::default()
        })
        .unwrap();
        let c = &r.config;
        assert_eq!(c.dhcp4.client_id, "rfc4361");
        let duid: Duid = c.identity.duid.as_deref().unwrap().parse().unwrap();
        let iaid: Iaid = c.identity.iaid.as_deref().unwrap().parse().unwrap();
        assert_eq!(rfc4361_client_id(iaid, &duid), id);
    }

    #[test]
    fn iaid_conflict_keeps_the_ipv4_one_and_warns() {
        let d: Duid = REF_DUID.parse().unwrap();
        let id = rfc4361_client_id(Iaid(7), &d);
        let conf = format!("send dhcp-client-identifier {};\n", hex(&id));
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", conf.as_bytes()),
            dhcp6c: src("dhcp6c.conf", DHCP6C),
            dhcp6c_duid: src("dhcp6c_duid", DUID_FILE),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.identity.iaid.as_deref(), Some("7"));
        assert!(has(&r, NoteKind::Warning, "IA_NA IAID 1 differs"));
    }

    #[test]
    fn duid_conflict_prefers_dhclient_and_dhcp6c_fills_in() {
        let other: Duid = "00:01:00:01:2e:2d:01:bd:52:54:00:12:34:56".parse().unwrap();
        let both = Inputs {
            dhclient: src("dhclient.conf", DHCLIENT),
            dhcp6c_duid: src("dhcp6c_duid", &other.to_dhcp6c_file()),
            ..Inputs::default()
        };
        let r = import_from(&both).unwrap();
        assert_eq!(r.config.identity.duid.as_deref(), Some(REF_DUID));
        assert!(has(
            &r,
            NoteKind::Warning,
            "DHCPv6 server will see a new DUID"
        ));

        let only6 = Inputs {
            dhcp6c_duid: src("dhcp6c_duid", &other.to_dhcp6c_file()),
            ..Inputs::default()
        };
        let r = import_from(&only6).unwrap();
        assert_eq!(
            r.config.identity.duid.as_deref(),
            Some(other.to_string().as_str())
        );
        assert_eq!(r.config.dhcp4.client_id, "rfc4361");
    }

    #[test]
    fn other_identifiers_are_kept_as_raw_octets() {
        for (conf, want) in [
            (
                "send dhcp-client-identifier 1:52:54:0:12:34:56;",
                "01:52:54:00:12:34:56",
            ),
            ("send dhcp-client-identifier \"foo\";", "66:6f:6f"),
            ("send dhcp-client-identifier = ff:00:01;", "ff:00:01"),
        ] {
            let r = import_from(&Inputs {
                dhclient: src("dhclient.conf", conf.as_bytes()),
                ..Inputs::default()
            })
            .unwrap();
            assert_eq!(r.config.dhcp4.client_id, want, "{conf}");
            assert_eq!(r.config.identity.duid, None);
        }
        let r = import_from(&Inputs {
            dhclient: src(
                "dhclient.conf",
                b"send dhcp-client-identifier = hardware;\nsend host-name = gethostname();\n",
            ),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.dhcp4.client_id, "rfc4361");
        assert_eq!(r.config.dhcp4.hostname, None);
        assert!(has(&r, NoteKind::Ignored, "hardware"));
        assert!(has(&r, NoteKind::Ignored, "expression"));
    }
}
