//! systemd unit-file syntax, as far as the classic units use it: `Key=value`
//! lines with `\` continuations, quoted words, escaped instance names, and the
//! enabled instances of a template.

use super::files::show;
use crate::net::ifname::valid_ifname;
use std::path::Path;

/// The last `key=` of a unit (`DefaultInstance=`, `EnvironmentFile=`), with its line.
pub(super) fn unit_key(lines: &[String], key: &str) -> Option<(String, usize)> {
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == key).then(|| (v.trim().to_string(), i + 1))
    })
}

/// Whitespace-separated words, honouring "double" and 'single' quotes.
pub(super) fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A value without its surrounding "double" or 'single' quotes.
pub(super) fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// The interfaces of the enabled instances of the `unit` template: links named
/// `supplicant@IFACE.service` in any `*.wants` directory under `dir` (the reference's
/// `WantedBy= sys-subsystem-net-devices-%I.device` puts them there). Sorted, no
/// duplicates, each with the link it came from.
pub(super) fn enabled_instances(dir: &Path, unit: &Path) -> Vec<(String, String)> {
    let Some(prefix) = unit
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".service"))
        .filter(|n| n.ends_with('@'))
    else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = Vec::new();
    let Ok(wants) = std::fs::read_dir(dir) else {
        return found;
    };
    // A bounded scan: a unit directory holds a few hundred entries.
    for w in wants.flatten().take(10_000) {
        if !w.file_name().to_string_lossy().ends_with(".wants") {
            continue;
        }
        let Ok(links) = std::fs::read_dir(w.path()) else {
            continue;
        };
        for l in links.flatten().take(10_000) {
            let name = l.file_name().to_string_lossy().into_owned();
            let Some(inst) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(".service"))
            else {
                continue;
            };
            let iface = systemd_unescape(inst);
            if valid_ifname(&iface) && !found.iter().any(|(i, _)| *i == iface) {
                found.push((iface, show(&l.path())));
            }
        }
    }
    found.sort();
    found
}

/// Undo `systemd-escape` for an instance name (`\x2d` is `-`).
fn systemd_unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The unit's logical lines (`\` continuations joined), each with its first line number.
pub(super) fn unit_lines(lines: &[String]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if cur.is_none() && (t.starts_with('#') || t.starts_with(';')) {
            continue;
        }
        let (text, more) = match t.strip_suffix('\\') {
            Some(r) => (r, true),
            None => (t, false),
        };
        match &mut cur {
            Some((c, _)) => {
                c.push(' ');
                c.push_str(text);
            }
            None => cur = Some((text.to_string(), i + 1)),
        }
        if !more {
            out.extend(cur.take());
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_instance_names_are_unescaped() {
        assert_eq!(systemd_unescape("wl\\x2dx"), "wl-x");
        assert_eq!(systemd_unescape("wlp2s0"), "wlp2s0");
        assert_eq!(systemd_unescape("a\\xZZ\\x"), "a\\xZZ\\x");
    }
}
