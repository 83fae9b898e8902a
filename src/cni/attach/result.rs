//! What an attachment reports: the CNI result for ADD, CHECK's verdict, and
//! `netbond cni status`.

use super::Attachment;
use crate::cni::netns;
use crate::cni::{code, CniError};
use netbond_proto::dhcp4::Lease4;
use netbond_proto::dhcp6::Lease6;
use netbond_proto::Engine;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv6Addr};

impl Attachment {
    pub(super) async fn check(&self) -> Result<(), CniError> {
        let not_held = |what: String| {
            CniError::new(
                code::LEASE_NOT_HELD,
                what,
                "DEL and ADD the attachment again",
            )
        };
        if !self.bound4() {
            return Err(not_held(format!("{}: no DHCPv4 lease held", self.key)));
        }
        if !self.bound6() {
            return Err(not_held(format!("{}: no DHCPv6 lease held", self.key)));
        }
        let ifname = self.key.ifname.clone();
        let have = netns::run_in(&self.netns, move || netns::addresses(&ifname))
            .await
            .map_err(|e| not_held(format!("{}: {e}", self.key)))?;
        for a in self.leased() {
            if !have.contains(&a) {
                return Err(not_held(format!(
                    "{}: the leased address {a} is not on {}",
                    self.key, self.key.ifname
                )));
            }
        }
        Ok(())
    }

    pub(super) fn leased(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        if let Some(s) = &self.rec.lease4 {
            out.push(IpAddr::V4(s.lease.address));
        }
        if let Some(s) = &self.rec.lease6 {
            out.extend(s.lease.addresses.iter().map(|a| IpAddr::V6(a.addr)));
        }
        out
    }

    pub(super) fn status(&self) -> Value {
        let now = self.ctx.clock.now();
        let mut addrs = Vec::new();
        if let Some(s) = &self.rec.lease4 {
            addrs.push(format!("{}/{}", s.lease.address, s.lease.prefix_len));
        }
        if let Some(s) = &self.rec.lease6 {
            addrs.extend(s.lease.addresses.iter().map(|a| format!("{}/128", a.addr)));
        }
        json!({
            "network": self.key.network,
            "container_id": self.key.container_id,
            "ifname": self.key.ifname,
            "netns": self.netns.display().to_string(),
            "state": self.v4.state().as_str(),
            "state6": self.v6.as_ref().map(|c| c.state().as_str()),
            "addresses": addrs,
            "remaining_secs": self.v4.lease().and_then(|l| l.remaining_secs(now)),
        })
    }

    /// The CNI result (the IPAM part: ips, routes, dns).
    pub(super) fn result(&self) -> Value {
        let (plen, router) = self.ra.unwrap_or((None, None));
        result_json(
            &self.settings.cni_version,
            self.rec.lease4.as_ref().map(|s| &s.lease),
            self.rec.lease6.as_ref().map(|s| &s.lease),
            plen,
            router,
        )
    }
}
/// Build the IPAM result from the leases; `plen6` and `router6` come from RAs
/// (`dhcpv6+ra`: the prefix length and the gateway of the DHCPv6 addresses), else the
/// DHCPv6 addresses are /128 with no gateway.
pub fn result_json(
    version: &str,
    l4: Option<&Lease4>,
    l6: Option<&Lease6>,
    plen6: Option<u8>,
    router6: Option<Ipv6Addr>,
) -> Value {
    let old = version.starts_with("0.");
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut domain = None;
    if let Some(l) = l4 {
        let mut ip = json!({ "address": format!("{}/{}", l.address, l.prefix_len) });
        if let Some(g) = l.routers.first() {
            ip["gateway"] = json!(g.to_string());
        }
        if old {
            ip["version"] = json!("4");
        }
        ips.push(ip);
        // RFC 3442: with option 121 the routers option (and option 33, which the engine
        // already leaves empty then) is ignored.
        if l.routes.is_empty() {
            if let Some(g) = l.routers.first() {
                routes.push(json!({ "dst": "0.0.0.0/0", "gw": g.to_string() }));
            }
            for r in &l.static_routes {
                routes.push(json!({
                    "dst": format!("{}/{}", r.dest, r.prefix_len),
                    "gw": r.gateway.to_string(),
                }));
            }
        } else {
            for r in &l.routes {
                let mut route = json!({ "dst": format!("{}/{}", r.dest, r.prefix_len) });
                if !r.gateway.is_unspecified() {
                    route["gw"] = json!(r.gateway.to_string());
                }
                routes.push(route);
            }
        }
        servers.extend(l.dns.iter().map(ToString::to_string));
        domain = l.domain.clone();
        search.extend(l.search.iter().cloned());
    }
    if let Some(l) = l6 {
        for a in &l.addresses {
            let mut ip = json!({ "address": format!("{}/{}", a.addr, plen6.unwrap_or(128)) });
            if let Some(g) = router6 {
                ip["gateway"] = json!(g.to_string());
            }
            if old {
                ip["version"] = json!("6");
            }
            ips.push(ip);
        }
        // No ::/0 route: the container's kernel already has the RA's default route,
        // and a main plugin adding it again fails with "file exists".
        servers.extend(l.dns.iter().map(ToString::to_string));
        for d in &l.domains {
            if !search.contains(d) {
                search.push(d.clone());
            }
        }
    }
    let mut dns = json!({});
    if !servers.is_empty() {
        dns["nameservers"] = json!(servers);
    }
    if let Some(d) = domain {
        dns["domain"] = json!(d);
    }
    if !search.is_empty() {
        dns["search"] = json!(search);
    }
    json!({ "cniVersion": version, "ips": ips, "routes": routes, "dns": dns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbond_proto::dhcp4::Route4;
    use netbond_proto::Instant;
    use std::net::Ipv4Addr;

    fn lease4() -> Lease4 {
        Lease4 {
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix_len: 24,
            server: Ipv4Addr::new(10, 0, 0, 1),
            routers: vec![Ipv4Addr::new(10, 0, 0, 1)],
            dns: vec![Ipv4Addr::new(10, 0, 0, 2)],
            domain: Some("example.org".into()),
            search: vec!["a.example.org".into()],
            hostname: None,
            mtu: None,
            ntp: vec![],
            routes: vec![],
            static_routes: vec![],
            lease_secs: Some(120),
            t1_secs: 60,
            t2_secs: 105,
            acquired: Instant::ZERO,
            chaddr: [2, 0, 0, 0, 0, 1],
            captive_portal: None,
        }
    }

    #[test]
    fn result_uses_the_router_without_option_121_and_only_121_with_it() {
        let mut l = lease4();
        let r = result_json("1.0.0", Some(&l), None, None, None);
        assert_eq!(r["ips"][0]["address"], "10.0.0.5/24");
        assert_eq!(r["ips"][0]["gateway"], "10.0.0.1");
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]));
        assert_eq!(r["dns"]["nameservers"], json!(["10.0.0.2"]));
        assert_eq!(r["dns"]["domain"], "example.org");
        // Option 33 routes come after the default route when there is no option 121.
        l.static_routes = vec![Route4 {
            dest: Ipv4Addr::new(172, 16, 0, 0),
            prefix_len: 16,
            gateway: Ipv4Addr::new(10, 0, 0, 7),
        }];
        let r = result_json("1.0.0", Some(&l), None, None, None);
        assert_eq!(
            r["routes"],
            json!([
                {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
                {"dst": "172.16.0.0/16", "gw": "10.0.0.7"}
            ])
        );
        l.routes = vec![Route4 {
            dest: Ipv4Addr::new(192, 168, 1, 0),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 9),
        }];
        let r = result_json("0.4.0", Some(&l), None, None, None);
        assert_eq!(
            r["routes"],
            json!([{"dst": "192.168.1.0/24", "gw": "10.0.0.9"}])
        );
        assert_eq!(r["ips"][0]["version"], "4");
        assert_eq!(r["cniVersion"], "0.4.0");
    }
}
