//! The one rule for interface names, wherever one comes from (the configuration, a
//! converted classic setup, a lease file name, the scope of a resolv.conf nameserver).

/// Whether `name` is an interface name netbond accepts: what the kernel accepts (1 to
/// 15 bytes, IFNAMSIZ - 1; no `/`, `:` or whitespace; not `.` or `..`), narrowed to
/// printable ASCII without `%`, `#`, `;` and without `..` anywhere. The narrowing keeps
/// every place a name is written safe: a file name in the state directory
/// (`lease4-<name>.json`), `fe80::1%<name>` in resolv.conf (where `#` and `;` start a
/// comment and `%` the scope), a log line.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b':' | b'%' | b'#' | b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in ["bond0", "wlp3s0", "bond0.100", "wlp0s20f3", "eth-1_x", "a"] {
            assert!(valid_ifname(good), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a..b",
            "a/b",
            "a:b",
            "a b",
            "eth0\n",
            "a\0",
            "wlan%1",
            "x#y",
            "x;y",
            "caf\u{e9}",
            "0123456789abcdef",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }
}
