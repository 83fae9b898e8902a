//! A DHCP codec and scripted servers for tests (the `testkit` feature, off by default).
//!
//! One place for what the integration tiers used to write by hand in each test file:
//! decoding the DHCPv4 and DHCPv6 messages netbond sends or a capture holds, building
//! any message (valid, or wrong in one chosen field, for the hostile tier), and the
//! answers of a small scripted server for each family. It is sans-IO like the rest of
//! the crate: the tests own the sockets and hand bytes in and out.
//!
//! It is written apart from the engines on purpose and uses none of their code: a test
//! that checked the engines' encoder with the same encoder would pass whatever that
//! encoder got wrong.
//!
//! - [`v4`]: [`v4::parse`], [`v4::Builder`], [`v4::Server`] and [`v4::Script`].
//! - [`v6`]: [`v6::parse`], [`v6::build`], [`v6::Server`].

pub mod v4;
pub mod v6;

/// Colon-separated lower-case hex (`02:00:5e`), the way the tests print identifiers.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}
