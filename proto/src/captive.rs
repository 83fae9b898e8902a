//! RFC 8910 captive portal URIs (DHCPv4 option 114, DHCPv6 option 103, RA option 37),
//! checked before anyone shows or hands them on: the value comes from any host on the
//! link, and goes to status output, events and hook environments.

/// The longest URI kept. RFC 8910 sets no limit; a DHCPv4 option holds 255 octets, and
/// a portal address longer than this is not one a person or a program should follow.
pub const MAX_LEN: usize = 1024;

/// RFC 8910 section 2: this value means "no captive portal" (the network is open).
pub const UNRESTRICTED: &str = "urn:ietf:params:capport:unrestricted";

/// A checked captive portal URI from option data: `Ok(Some(uri))`, `Ok(None)` for the
/// "unrestricted" URN, or why the value is refused. Accepted: 1 to [`MAX_LEN`] octets of
/// printable ASCII (no space, no control character, nothing outside ASCII: RFC 3986
/// URIs are percent-encoded) starting with a scheme (`letter *(letter / digit / + - .)`
/// then `:`) and something after it.
pub fn parse(data: &[u8]) -> Result<Option<String>, &'static str> {
    if data.is_empty() {
        return Err("empty");
    }
    if data.len() > MAX_LEN {
        return Err("longer than 1024 octets");
    }
    if !data.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err("not printable ASCII (a space, control character or non-ASCII octet)");
    }
    let colon = data
        .iter()
        .position(|&b| b == b':')
        .ok_or("no scheme (e.g. https:)")?;
    let scheme = &data[..colon];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err("no scheme (e.g. https:)");
    }
    if colon + 1 == data.len() {
        return Err("nothing after the scheme");
    }
    // All printable ASCII: valid UTF-8.
    let s = String::from_utf8_lossy(data).into_owned();
    if s.eq_ignore_ascii_case(UNRESTRICTED) {
        return Ok(None);
    }
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn uris_are_checked() {
        assert_eq!(
            parse(b"https://portal.example/api"),
            Ok(Some("https://portal.example/api".into()))
        );
        assert_eq!(parse(b"urn:ietf:params:capport:unrestricted"), Ok(None));
        for bad in [
            &b""[..],
            b"https://a b",
            b"https://a\nb",
            b"https://a\x1b[2J",
            b"https://\xc3\xa9",
            b"portal.example",
            b"1http://x",
            b"https:",
            b":x",
            b"ht tp://x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&[b'a'; 1025]).is_err());
        let mut long = b"https://".to_vec();
        long.resize(1024, b'x');
        assert!(parse(&long).unwrap().is_some());
    }
}
