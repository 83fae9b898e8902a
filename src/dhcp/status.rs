//! Human-readable rendering of `netbond status` (the JSON form is the stable one).

use serde_json::Value;
use std::fmt::Write;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(s).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    }
}

/// Render the status object: with several interfaces, the bond once and then a block
/// per interface.
pub fn render(st: &Value) -> String {
    let mut o = String::new();
    match st["interfaces"].as_array() {
        Some(list) if list.len() > 1 => {
            render_bond(&mut o, &st["bond"]);
            for (n, i) in list.iter().enumerate() {
                if n > 0 || !st["bond"].is_null() {
                    o.push('\n');
                }
                render_iface(&mut o, i);
            }
        }
        _ => {
            render_iface_head(&mut o, st);
            render_bond(&mut o, &st["bond"]);
            render_clients(&mut o, st);
        }
    }
    if let Some(on) = st["online"].as_bool() {
        let _ = writeln!(
            o,
            "Online:    {}",
            if on {
                "yes"
            } else {
                "no (no lease yet; see [daemon] online)"
            }
        );
    }
    o
}

fn render_iface(o: &mut String, st: &Value) {
    render_iface_head(o, st);
    render_clients(o, st);
}

fn render_iface_head(o: &mut String, st: &Value) {
    let i = &st["interface"];
    let _ = writeln!(
        o,
        "Interface: {} (index {}, MAC {})",
        s(&i["name"]),
        s(&i["index"]),
        s(&i["mac"])
    );
    let _ = writeln!(
        o,
        "Identity:  DUID {}  IAID {}",
        s(&st["identity"]["duid"]),
        s(&st["identity"]["iaid"])
    );
}

fn render_bond(o: &mut String, b: &Value) {
    if !b.is_null() {
        let _ = writeln!(
            o,
            "Bond:      {} mode {} fail_over_mac {} miimon {} ms, primary {}, active {} (MAC {})",
            s(&b["name"]),
            s(&b["mode"]),
            s(&b["fail_over_mac"]),
            s(&b["miimon_ms"]),
            s(&b["primary"]),
            s(&b["active_port"]),
            s(&b["mac"])
        );
        for p in b["ports"].as_array().into_iter().flatten() {
            if !p["error"].is_null() {
                // A matching port not in the bond (yet): why, and when it is tried again.
                let _ = writeln!(
                    o,
                    "  port {:<10} {} after {} attempt(s), next try in {} s: {}",
                    s(&p["name"]),
                    s(&p["state"]),
                    s(&p["attempts"]),
                    s(&p["retry_in_secs"]),
                    s(&p["error"])
                );
                continue;
            }
            let _ = writeln!(
                o,
                "  port {:<10} {:<7} MII {:<4} failures {}  MAC {} (permanent {})",
                s(&p["name"]),
                s(&p["state"]),
                s(&p["mii_status"]),
                s(&p["link_failures"]),
                s(&p["mac"]),
                s(&p["permanent_mac"])
            );
        }
    }
}

fn render_clients(o: &mut String, st: &Value) {
    let d4 = &st["dhcp4"];
    if let Some((state, l)) = family(o, "DHCPv4", d4) {
        let _ = writeln!(
            o,
            "DHCPv4:    {} {}/{} from {}, {} s left (lease {} s)",
            s(state),
            s(&l["address"]),
            s(&l["prefix_len"]),
            s(&l["server"]),
            s(&l["remaining_secs"]),
            s(&l["lease_secs"])
        );
        let _ = writeln!(
            o,
            "           routers {}  DNS {}",
            list(&l["routers"]),
            list(&l["dns"])
        );
    }
    if let Some(left) = d4["ipv6_only_secs_left"].as_u64() {
        let _ = writeln!(
            o,
            "           the network prefers IPv6-only (RFC 8925): DHCPv4 again in {left} s"
        );
    }
    if !d4.is_null() {
        crate::dhcp::fallback::render(o, d4);
    }
    let d6 = &st["dhcp6"];
    if let Some((state, l)) = family(o, "DHCPv6", d6) {
        let _ = writeln!(
            o,
            "DHCPv6:    {} from server {}",
            s(state),
            s(&l["server_duid"])
        );
        for a in l["addresses"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "           {} valid {} s preferred {} s",
                s(&a["address"]),
                s(&a["valid_secs_left"]),
                s(&a["preferred_secs_left"])
            );
        }
        let _ = writeln!(o, "           DNS {}", list(&l["dns"]));
    }
    if !d6.is_null() {
        crate::dhcp::pd::render(o, d6);
    }
    if let Some(uri) = st["captive_portal"]["uri"].as_str() {
        // Checked printable ASCII (netbond_proto::captive): safe to print as it is.
        let _ = writeln!(o, "Portal:    {uri} (RFC 8910 captive portal)");
    }
}

/// One family's line when it is disabled or holds no lease; otherwise its state and
/// lease, for the caller to render.
fn family<'a>(o: &mut String, name: &str, f: &'a Value) -> Option<(&'a Value, &'a Value)> {
    if f.is_null() {
        let _ = writeln!(o, "{name}:    disabled");
        return None;
    }
    let l = &f["lease"];
    if l.is_null() {
        let _ = writeln!(o, "{name}:    {} (no lease)", s(&f["state"]));
        return None;
    }
    Some((&f["state"], l))
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_minimal_status() {
        let v = serde_json::json!({
            "interface": {"name": "eth0", "index": 2, "mac": "02:00:00:00:00:01"},
            "identity": {"duid": "00:04", "iaid": "0x1"},
            "dhcp4": {"state": "BOUND", "lease": {"address": "10.0.0.5", "prefix_len": 24, "server": "10.0.0.1", "remaining_secs": 100, "lease_secs": 120, "routers": ["10.0.0.1"], "dns": []}},
            "dhcp6": null, "bond": null
        });
        let out = super::render(&v);
        assert!(out.contains("10.0.0.5/24 from 10.0.0.1"));
        assert!(out.contains("DHCPv6:    disabled"));
        assert!(!out.contains("Online:"), "{out}");
        let mut v = v;
        v["online"] = true.into();
        assert!(super::render(&v).ends_with("Online:    yes\n"));
        v["online"] = false.into();
        assert!(super::render(&v).contains("Online:    no"));
        v["dhcp4"] =
            serde_json::json!({"state": "IPV6-ONLY", "lease": null, "ipv6_only_secs_left": 280});
        v["captive_portal"] = serde_json::json!({"uri": "https://portal.example/"});
        let out = super::render(&v);
        assert!(out.contains("DHCPv4:    IPV6-ONLY (no lease)\n           the network prefers IPv6-only (RFC 8925): DHCPv4 again in 280 s\n"), "{out}");
        assert!(
            out.contains("Portal:    https://portal.example/ (RFC 8910 captive portal)"),
            "{out}"
        );
    }

    #[test]
    fn renders_a_bond_port_that_could_not_be_enslaved() {
        let v = serde_json::json!({
            "interface": {"name": "bond0", "index": 5, "mac": null},
            "identity": {"duid": "00:04", "iaid": "0x1"},
            "dhcp4": null, "dhcp6": null,
            "bond": {"name": "bond0", "ports": [
                {"name": "eth0", "state": "active", "mii_status": "up", "link_failures": 0},
                {"name": "eth3", "state": "enslave-failed", "attempts": 3, "retry_in_secs": 4,
                 "error": "enslave to bond0 on eth3 failed: Device or resource busy"}
            ]}
        });
        let out = super::render(&v);
        assert!(
            out.contains("port eth3       enslave-failed after 3 attempt(s), next try in 4 s: enslave to bond0"),
            "{out}"
        );
        assert!(out.contains("port eth0"), "{out}");
    }

    #[test]
    fn renders_every_interface_in_multi_interface_mode() {
        let one = |name: &str, addr: &str| {
            serde_json::json!({
                "interface": {"name": name, "index": 2, "mac": null},
                "identity": {"duid": "00:04", "iaid": "0x1"},
                "dhcp4": {"state": "BOUND", "lease": {"address": addr, "prefix_len": 24}},
                "dhcp6": null
            })
        };
        let mut v = one("c0", "10.0.0.5");
        v["bond"] = serde_json::Value::Null;
        v["interfaces"] = serde_json::json!([one("c0", "10.0.0.5"), one("c1", "10.1.0.5")]);
        let out = super::render(&v);
        assert!(
            out.contains("Interface: c0") && out.contains("Interface: c1"),
            "{out}"
        );
        assert!(out.contains("10.1.0.5/24"), "{out}");
        assert_eq!(out.matches("DHCPv6:    disabled").count(), 2, "{out}");
    }

    #[test]
    fn renders_a_family_without_a_lease_and_a_dhcpv6_lease() {
        let v = serde_json::json!({
            "interface": {"name": "eth0", "index": 2, "mac": null},
            "identity": {"duid": "00:04", "iaid": "0x1"},
            "dhcp4": {"state": "SELECTING", "lease": null},
            "dhcp6": {"state": "BOUND", "lease": {
                "server_duid": "00:01:02",
                "addresses": [{"address": "fd77::105", "valid_secs_left": 100, "preferred_secs_left": 50}],
                "dns": ["fd77::1"]
            }},
            "bond": null
        });
        let out = super::render(&v);
        assert!(out.contains("DHCPv4:    SELECTING (no lease)\n"), "{out}");
        assert!(
            out.contains(
                "DHCPv6:    BOUND from server 00:01:02\n           fd77::105 valid 100 s preferred 50 s\n           DNS fd77::1\n"
            ),
            "{out}"
        );
    }
}
