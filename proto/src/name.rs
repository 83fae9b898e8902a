//! The one rule for DNS names, wherever one comes from: a DHCPv4 option (domain, host
//! name, search list), a DHCPv6 domain list, an RA's DNSSL, the configuration, the
//! system's host name or a converted dhclient.conf.
//!
//! The rule is RFC 1035's preferred host-name syntax (section 2.3.1) as relaxed by
//! RFC 1123 section 2.1 (a label may start with a digit): labels of 1 to 63 letters,
//! digits and hyphens, not starting or ending with a hyphen; at most 253 characters
//! without the trailing dot; one trailing dot is accepted and removed; the result is
//! lower-cased (DNS compares names case-insensitively).
//!
//! Underscores are refused. DNS itself allows any octet in a label (RFC 2181 section
//! 11) and service names use `_` (`_ldap._tcp`), but every name netbond takes is a host
//! name or a search domain, where RFC 952/1123 allow none, and resolv.conf or a log
//! line must not receive anything but plain LDH text. (The DHCPv6 domain list used to
//! accept underscores while resolv.conf refused them afterwards; now both refuse.)

/// Whether one label (without dots) follows the rule above.
pub fn label_ok(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
        && label
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `raw` as a valid, lower-cased host or domain name without its trailing dot, or
/// `None` when it breaks the rule (see the module documentation).
pub fn host_name(raw: &[u8]) -> Option<String> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    if name.is_empty() || name.len() > 253 || !name.split(|&c| c == b'.').all(label_ok) {
        return None;
    }
    // All ASCII after the checks above.
    Some(
        name.iter()
            .map(|&c| char::from(c.to_ascii_lowercase()))
            .collect(),
    )
}

/// A name given as wire-format labels (RFC 1035 section 3.1, already split and
/// decompressed), joined with dots and checked like [`host_name`]. A label holding a
/// dot is refused (joined, it would read as two).
pub fn from_labels(labels: &[&[u8]]) -> Option<String> {
    if !labels.iter().all(|l| label_ok(l)) {
        return None;
    }
    host_name(&labels.join(&b"."[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ldh_host_names_pass() {
        assert_eq!(host_name(b"Example.COM."), Some("example.com".into()));
        assert_eq!(host_name(b"1and1.example"), Some("1and1.example".into()));
        for bad in [
            &b"a b"[..],
            b"x;rm -rf /",
            b"a\nnameserver 6.6.6.6",
            b"$(reboot)",
            b"-a.b",
            b"a-.b",
            b"a..b",
            b".",
            b"",
            b"a_b",
            b"under_score.example",
            b"caf\xc3\xa9.example",
            &[b'a'; 64],
        ] {
            assert_eq!(host_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let long = vec!["abcdefghi"; 30].join(".");
        assert_eq!(host_name(long.as_bytes()), None);
        let ok63 = "a".repeat(63);
        let max = [ok63.as_str(), &ok63, &ok63, &"b".repeat(61)].join(".");
        assert_eq!(max.len(), 253);
        assert_eq!(host_name(max.as_bytes()), Some(max.clone()));
        assert_eq!(host_name(format!("{max}.").as_bytes()), Some(max.clone()));
        assert_eq!(host_name(format!("{max}x").as_bytes()), None);
    }

    #[test]
    fn labels_are_joined_and_checked() {
        let l: Vec<&[u8]> = vec![b"Good", b"example"];
        assert_eq!(from_labels(&l), Some("good.example".into()));
        let dotted: Vec<&[u8]> = vec![b"a.b", b"example"];
        assert_eq!(from_labels(&dotted), None);
        assert_eq!(from_labels(&[]), None);
    }
}
