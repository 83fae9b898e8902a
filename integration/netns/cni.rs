//! Containers: netbond as the IPAM of Debian's stock CNI main plugins (bridge,
//! macvlan from `containernetworking-plugins`), driven through the CNI environment
//! variables with the config on stdin, against dnsmasq.
//!
//! The lab's client namespace plays the container host: the daemon and the main
//! plugins run there (`ip netns exec`), c0 is the host's uplink to the LAN namespace
//! where dnsmasq runs, and each container is a namespace of its own.

use crate::lab::{netbond_bin, tail, tools, wait_for, wait_until, Lab, Lease, TIMEOUT};
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const CNI_DIR: &str = "/usr/lib/cni";

/// Debian's plugins, installed when missing (integration/test.sh installs them too).
fn plugins() -> &'static Path {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if !Path::new(CNI_DIR).join("macvlan").exists() {
            let st = Command::new("apt-get")
                .args(["install", "-y", "-qq", "containernetworking-plugins"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
            assert!(
                st.is_ok_and(|s| s.success()),
                "containernetworking-plugins is missing and could not be installed: apt-get install containernetworking-plugins"
            );
        }
    });
    Path::new(CNI_DIR)
}

/// A container network namespace, deleted on drop.
struct Ctr {
    name: String,
}

impl Ctr {
    fn new(lab: &Lab, i: u32) -> Ctr {
        let name = format!("nbct-{}-{i}", lab.id);
        let _ = Command::new(&tools().ip)
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let st = Command::new(&tools().ip)
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        Ctr { name }
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    fn id(&self) -> String {
        format!("cid-{}", self.name)
    }

    fn delete(&self) {
        let _ = Command::new(&tools().ip)
            .args(["netns", "del", &self.name])
            .status();
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new(&tools().ip)
            .args(["-n", &self.name])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        self.delete();
    }
}

/// The daemon, running in the host (client) namespace.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Cni {
    lab: Lab,
    bin_dir: PathBuf,
    socket: PathBuf,
    state: PathBuf,
}

impl Cni {
    fn new(name: &str) -> Cni {
        Self::with_dnsmasq(name, true)
    }

    fn with_dnsmasq(name: &str, dnsmasq: bool) -> Cni {
        plugins();
        let mut lab = Lab::new(name);
        if dnsmasq {
            lab.start_dnsmasq_default();
        }
        // The host's own address on the LAN (outside dnsmasq's range): a lease whose
        // container interface or namespace is gone is released from here.
        let a = format!("10.77.{}.2/24", lab.n);
        lab.ip(&lab.cns, &["addr", "add", &a, "dev", "c0"]);
        // CNI_PATH: the stock plugins and netbond under the name the config's type uses.
        let bin_dir = lab.path("cni-bin");
        fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(netbond_bin(), bin_dir.join("netbond")).unwrap();
        let socket = lab.path("cni.sock");
        let state = lab.path("cni-state");
        Cni {
            lab,
            bin_dir,
            socket,
            state,
        }
    }

    fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(&[])
    }

    /// The daemon with more arguments (`--hooks-dir DIR`).
    fn start_daemon_with(&self, extra: &[&std::ffi::OsStr]) -> Daemon {
        let log = self.lab.path("daemon.log");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writeln!(f, "---- start").unwrap();
        let child = Command::new(&tools().ip)
            .args(["netns", "exec", &self.lab.cns])
            .arg(netbond_bin())
            .args(["cni", "serve", "--log-level", "debug", "--socket"])
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            log,
        };
        let sock = self.socket.clone();
        assert!(
            wait_until(TIMEOUT, || std::os::unix::net::UnixStream::connect(&sock)
                .is_ok()),
            "the daemon did not listen; log:\n{}",
            d.log()
        );
        d
    }

    /// The network config: `main` is the main plugin's part.
    fn conf(&self, version: &str, main: Value, ipam_extra: Value) -> Value {
        let mut ipam = json!({ "type": "netbond", "daemonSocketPath": self.socket });
        if let Value::Object(m) = ipam_extra {
            for (k, v) in m {
                ipam[k] = v;
            }
        }
        let mut c = json!({ "cniVersion": version, "name": "lan", "ipam": ipam });
        if let Value::Object(m) = main {
            for (k, v) in m {
                c[k] = v;
            }
        }
        c
    }

    fn macvlan(&self, ipam_extra: Value) -> Value {
        self.conf(
            "1.0.0",
            json!({"type": "macvlan", "master": "c0", "mode": "bridge"}),
            ipam_extra,
        )
    }

    /// Run `plugin` (a path) in the host namespace with the CNI environment.
    fn run(
        &self,
        plugin: &Path,
        cmd: &str,
        ctr: Option<&Ctr>,
        ifname: &str,
        conf: &Value,
    ) -> Output {
        let mut c = Command::new(&tools().ip);
        c.args(["netns", "exec", &self.lab.cns])
            .arg(plugin)
            .env("CNI_COMMAND", cmd)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", format!("{}:{CNI_DIR}", self.bin_dir.display()))
            .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web-0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match ctr {
            Some(ctr) => {
                c.env("CNI_CONTAINERID", ctr.id())
                    .env("CNI_NETNS", ctr.path());
            }
            None => {
                c.env("CNI_CONTAINERID", "none").env("CNI_NETNS", "");
            }
        }
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn main_plugin(&self, name: &str) -> PathBuf {
        plugins().join(name)
    }

    fn netbond(&self) -> PathBuf {
        self.bin_dir.join("netbond")
    }

    /// ADD through a main plugin; the parsed result.
    fn add(&self, main: &str, ctr: &Ctr, conf: &Value, d: &Daemon) -> Value {
        let out = self.run(&self.main_plugin(main), "ADD", Some(ctr), "eth0", conf);
        assert!(
            out.status.success(),
            "{main} ADD failed: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn v4_of(&self, result: &Value) -> Ipv4Addr {
        result["ips"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["address"].as_str())
            .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
            .find_map(|a| match a {
                IpAddr::V4(a) => Some(a),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no IPv4 address in {result}"))
    }

    fn dnsmasq_log(&self) -> String {
        fs::read_to_string(self.lab.dnsmasq_log()).unwrap_or_default()
    }

    /// dnsmasq logged a DHCPRELEASE for `a`.
    fn released(&self, a: Ipv4Addr) -> bool {
        let a = a.to_string();
        self.dnsmasq_log()
            .lines()
            .any(|l| l.contains("DHCPRELEASE") && l.split_whitespace().any(|w| w == a))
    }

    fn v4_leases(&self) -> Vec<(Ipv4Addr, String)> {
        self.lab
            .leases()
            .v4
            .into_iter()
            .filter_map(|l| match l {
                Lease::V4 { ip, client_id, .. } => Some((ip, client_id)),
                _ => None,
            })
            .collect()
    }

    fn status_json(&self) -> Value {
        let out = Command::new(netbond_bin())
            .args(["cni", "status", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .unwrap();
        assert!(out.status.success(), "cni status: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn v6_of(result: &Value) -> Ipv6Addr {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["address"].as_str())
        .find_map(|a| a.split('/').next()?.parse::<Ipv6Addr>().ok())
        .unwrap_or_else(|| panic!("no IPv6 address in {result}"))
}

fn err_code(out: &Output) -> u64 {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not an error JSON: {out:?}"));
    v["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

fn hex_colons(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// ADD through macvlan gives v4 + v6 addresses, routes and DNS; the container has
/// them; dnsmasq saw the RFC 4361 client-id; CHECK passes, and fails once the address
/// is removed; DEL releases and a second DEL succeeds; STATUS answers 50 with the
/// daemon stopped.
#[test]
fn cni_macvlan_dual_stack_add_check_del_status() {
    let cni = Cni::new("cni-macvlan");
    let mut d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({ "ipv6": "dhcpv6" }));
    let r = cni.add("macvlan", &ctr, &conf, &d);
    let n = cni.lab.n;

    let a4 = cni.v4_of(&r);
    assert!(cni.lab.in_range4(a4, 50, 150), "{r}");
    let ips: Vec<&str> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["address"].as_str())
        .collect();
    let a6: Ipv6Addr = ips
        .iter()
        .find_map(|a| a.split('/').next()?.parse::<Ipv6Addr>().ok())
        .unwrap_or_else(|| panic!("no IPv6 address in {r}"));
    assert!(cni.lab.in_range6(a6, 0x100, 0x1ff), "{r}");
    let gw = format!("10.77.{n}.1");
    assert!(
        r["ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["gateway"] == gw),
        "{r}"
    );
    let routes = r["routes"].to_string();
    assert!(
        routes.contains(&format!("192.168.{n}.0/24")) && routes.contains("0.0.0.0/0"),
        "{r}"
    );
    // Debian's macvlan plugin replaces the IPAM's dns with its own config's, so DNS is
    // checked on netbond's own result: ADD again (same attachment) returns it.
    let out = cni.run(&cni.netbond(), "ADD", Some(&ctr), "eth0", &conf);
    assert!(out.status.success(), "{out:?}");
    let own: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dns = own["dns"]["nameservers"].to_string();
    assert!(
        dns.contains(&gw) && dns.contains(&format!("fd77:{n:x}::1")),
        "{own}"
    );
    assert_eq!(own["ips"].as_array().map(Vec::len), Some(2), "{own}");

    // The main plugin configured what netbond returned.
    let shown = ctr.ip(&["addr", "show", "dev", "eth0"]);
    assert!(shown.contains(&format!("{a4}/24")), "{shown}");
    assert!(shown.contains(&a6.to_string()), "{shown}");
    let rt = ctr.ip(&["route", "show"]);
    assert!(rt.contains(&format!("192.168.{n}.0/24 via {gw}")), "{rt}");

    // RFC 4361: 0xff, IAID of this attachment, the host DUID.
    let duid = Command::new(netbond_bin())
        .args(["duid", "--state-dir"])
        .arg(&cni.state)
        .output()
        .unwrap();
    let duid = String::from_utf8_lossy(&duid.stdout).trim().to_lowercase();
    let iaid = fnv(&format!("lan/{}/eth0", ctr.id())).to_be_bytes();
    let want = format!("ff:{}:{duid}", hex_colons(&iaid));
    let leases = cni.v4_leases();
    assert!(
        leases
            .iter()
            .any(|(ip, cid)| *ip == a4 && cid.to_lowercase() == want),
        "want client-id {want} for {a4}; leases {leases:?}"
    );

    // CHECK passes, then fails once the address is gone.
    let check = |what: &str| {
        cni.run(
            &cni.main_plugin("macvlan"),
            "CHECK",
            Some(&ctr),
            "eth0",
            &with_prev(&conf, &r, what),
        )
    };
    let out = check("ok");
    assert!(out.status.success(), "CHECK: {out:?}\n{}", d.log());
    ctr.ip(&["addr", "del", &format!("{a4}/24"), "dev", "eth0"]);
    let out = cni.run(&cni.netbond(), "CHECK", Some(&ctr), "eth0", &conf);
    assert!(
        !out.status.success(),
        "CHECK passed without the address: {out:?}"
    );
    assert_eq!(err_code(&out), 100, "{out:?}");

    // `netbond cni status` lists the attachment.
    let st = cni.status_json();
    assert!(
        st.to_string().contains(&a4.to_string()) && st.to_string().contains(&ctr.id()),
        "{st}"
    );

    let v6_held = |cni: &Cni| {
        cni.lab
            .leases()
            .v6
            .iter()
            .any(|l| matches!(l, Lease::V6 { ip, .. } if *ip == a6))
    };
    assert!(v6_held(&cni), "{a6} not in the server's leases");
    // DEL releases (dnsmasq logs it and drops the lease); a second DEL succeeds.
    let out = cni.run(
        &cni.main_plugin("macvlan"),
        "DEL",
        Some(&ctr),
        "eth0",
        &conf,
    );
    assert!(out.status.success(), "DEL: {out:?}");
    assert!(
        wait_until(TIMEOUT, || cni.released(a4)),
        "no DHCPRELEASE for {a4}; dnsmasq log:\n{}\ndaemon:\n{}",
        tail(&cni.lab.dnsmasq_log(), 30),
        d.log()
    );
    assert!(wait_until(TIMEOUT, || !cni
        .v4_leases()
        .iter()
        .any(|l| l.0 == a4)));
    // The DHCPv6 Release freed the v6 lease too.
    assert!(
        wait_until(TIMEOUT, || !v6_held(&cni)),
        "{a6} still leased:\n{}",
        tail(&cni.lab.leases_path(), 10)
    );
    let out = cni.run(&cni.netbond(), "DEL", Some(&ctr), "eth0", &conf);
    assert!(out.status.success(), "second DEL: {out:?}");
    assert_eq!(cni.status_json(), json!([]));

    // STATUS: fine with the daemon up, code 50 with it down.
    let st11 = cni.conf("1.1.0", json!({}), json!({}));
    let out = cni.run(&cni.netbond(), "STATUS", None, "", &st11);
    assert!(out.status.success(), "STATUS: {out:?}");
    d.kill9();
    let out = cni.run(&cni.netbond(), "STATUS", None, "", &st11);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), 50, "{out:?}");
}

/// The config with the ADD result as prevResult (what a runtime passes to CHECK).
fn with_prev(conf: &Value, result: &Value, _why: &str) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = result.clone();
    c
}

/// Debian's bridge plugin deletes the container's veth before it calls IPAM DEL: the
/// RELEASE then goes out from the daemon's namespace, still naming the lease (ciaddr,
/// client-id), and the server frees it.
#[test]
fn cni_bridge_release_after_the_veth_is_gone() {
    let cni = Cni::new("cni-bridge");
    let lab = &cni.lab;
    let n = lab.n;
    lab.ip(&lab.cns, &["link", "add", "nbbr0", "type", "bridge"]);
    lab.ip(&lab.cns, &["link", "set", "c0", "master", "nbbr0"]);
    lab.ip(&lab.cns, &["link", "set", "nbbr0", "up"]);
    // The host's LAN address moves to the bridge with its port.
    let a = format!("10.77.{n}.2/24");
    lab.ip(&lab.cns, &["addr", "del", &a, "dev", "c0"]);
    lab.ip(&lab.cns, &["addr", "add", &a, "dev", "nbbr0"]);
    let d = cni.start_daemon();
    let ctr = Ctr::new(lab, 1);
    let conf = cni.conf(
        "1.0.0",
        json!({"type": "bridge", "bridge": "nbbr0"}),
        json!({}),
    );
    let r = cni.add("bridge", &ctr, &conf, &d);
    let a4 = cni.v4_of(&r);
    let shown = ctr.ip(&["addr", "show", "dev", "eth0"]);
    assert!(shown.contains(&format!("{a4}/24")), "{shown}");
    assert!(cni.v4_leases().iter().any(|l| l.0 == a4));

    let out = cni.run(&cni.main_plugin("bridge"), "DEL", Some(&ctr), "eth0", &conf);
    assert!(out.status.success(), "DEL: {out:?}");
    assert!(
        wait_until(TIMEOUT, || cni.released(a4)),
        "no DHCPRELEASE for {a4}; dnsmasq:\n{}\ndaemon:\n{}",
        tail(&lab.dnsmasq_log(), 30),
        d.log()
    );
    assert!(wait_until(TIMEOUT, || !cni
        .v4_leases()
        .iter()
        .any(|l| l.0 == a4)));
    assert!(
        d.log().contains("sent from the daemon's namespace"),
        "{}",
        d.log()
    );
}

/// kill -9 the daemon, delete one container's namespace, restart: the live attachment
/// is resumed with the same address (INIT-REBOOT, acknowledged by the server), the one
/// whose namespace is gone is released.
#[test]
fn cni_restart_resumes_leases_and_releases_gone_namespaces() {
    let cni = Cni::new("cni-restart");
    let mut d = cni.start_daemon();
    let keep = Ctr::new(&cni.lab, 1);
    let gone = Ctr::new(&cni.lab, 2);
    let conf = cni.macvlan(json!({ "ipv6": "dhcpv6" }));
    let r_keep = cni.add("macvlan", &keep, &conf, &d);
    let a_keep = cni.v4_of(&r_keep);
    let a6_keep = v6_of(&r_keep);
    let a_gone = cni.v4_of(&cni.add("macvlan", &gone, &conf, &d));
    d.kill9();
    gone.delete();
    let before = cni.dnsmasq_log().len();
    let d = cni.start_daemon();
    assert!(
        wait_until(TIMEOUT, || cni.released(a_gone)),
        "no DHCPRELEASE for {a_gone}; dnsmasq:\n{}\ndaemon:\n{}",
        tail(&cni.lab.dnsmasq_log(), 30),
        d.log()
    );
    // INIT-REBOOT: a REQUEST for the same address, ACKed.
    let acked = wait_until(TIMEOUT, || {
        let log = cni.dnsmasq_log();
        log[before..]
            .lines()
            .any(|l| l.contains("DHCPACK") && l.contains(&a_keep.to_string()))
    });
    assert!(
        acked,
        "no DHCPACK for {a_keep} after the restart; daemon:\n{}",
        d.log()
    );
    // The DHCPv6 lease is resumed from the record and confirmed by the server.
    let replied6 = wait_until(TIMEOUT, || {
        let log = cni.dnsmasq_log();
        log[before..]
            .lines()
            .any(|l| l.contains("DHCPREPLY") && l.contains(&a6_keep.to_string()))
    });
    assert!(
        replied6,
        "no DHCPv6 reply for {a6_keep} after the restart; dnsmasq:\n{}\ndaemon:\n{}",
        tail(&cni.lab.dnsmasq_log(), 40),
        d.log()
    );
    let st = wait_for(TIMEOUT, || {
        let s = cni.status_json();
        s.to_string().contains(&a_keep.to_string()).then_some(s)
    })
    .unwrap_or_else(|| panic!("status lacks {a_keep}: {}", cni.status_json()));
    assert_eq!(st.as_array().unwrap().len(), 1, "{st}");
    assert!(!cni.released(a_keep));
    let out = cni.run(&cni.netbond(), "CHECK", Some(&keep), "eth0", &conf);
    assert!(
        out.status.success(),
        "CHECK after resume: {out:?}\n{}",
        d.log()
    );
}

/// GC with a partial valid list releases exactly the attachments not in it.
#[test]
fn cni_gc_releases_exactly_the_others() {
    let cni = Cni::new("cni-gc");
    let d = cni.start_daemon();
    let ctrs: Vec<Ctr> = (1..=3).map(|i| Ctr::new(&cni.lab, i)).collect();
    let conf = cni.macvlan(json!({}));
    let addrs: Vec<Ipv4Addr> = ctrs
        .iter()
        .map(|c| cni.v4_of(&cni.add("macvlan", c, &conf, &d)))
        .collect();
    let mut gc = cni.conf("1.1.0", json!({}), json!({}));
    gc["cni.dev/valid-attachments"] = json!([{ "containerID": ctrs[0].id(), "ifname": "eth0" }]);
    let out = cni.run(&cni.netbond(), "GC", None, "", &gc);
    assert!(out.status.success(), "GC: {out:?}");
    for a in &addrs[1..] {
        assert!(
            wait_until(TIMEOUT, || cni.released(*a)),
            "GC did not release {a}; daemon:\n{}",
            d.log()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(!cni.released(addrs[0]), "GC released the valid attachment");
    let st = cni.status_json();
    assert_eq!(st.as_array().unwrap().len(), 1, "{st}");
    assert!(st.to_string().contains(&addrs[0].to_string()), "{st}");
}

/// The plugin alone: VERSION lists the spec versions; a bad key is a CNI error naming
/// it; ADD with the daemon down is "try again later" (11), DEL succeeds; garbage on the
/// daemon's socket gets a decode error (6) and the daemon keeps serving.
#[test]
fn cni_plugin_version_and_errors() {
    let cni = Cni::new("cni-plugin");
    let ctr = Ctr::new(&cni.lab, 1);
    let out = cni.run(
        &cni.netbond(),
        "VERSION",
        None,
        "",
        &json!({"cniVersion": "1.0.0"}),
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for want in ["0.4.0", "1.0.0", "1.1.0"] {
        assert!(v["supportedVersions"].to_string().contains(want), "{v}");
    }
    let bad = cni.macvlan(json!({ "ipv6": "sometimes" }));
    let out = cni.run(&cni.netbond(), "ADD", Some(&ctr), "eth0", &bad);
    assert_eq!(err_code(&out), 7);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ipam.ipv6"),
        "{out:?}"
    );
    let conf = cni.macvlan(json!({}));
    let out = cni.run(&cni.netbond(), "ADD", Some(&ctr), "eth0", &conf);
    assert_eq!(err_code(&out), 11, "{out:?}");
    let out = cni.run(&cni.netbond(), "DEL", Some(&ctr), "eth0", &conf);
    assert!(out.status.success(), "DEL without the daemon: {out:?}");

    // Garbage on the daemon's socket gets an error reply; the daemon carries on.
    let d = cni.start_daemon();
    for junk in [&b"not json"[..], b"{\"command\":7}", b"", &[0xff; 5000][..]] {
        let mut s = std::os::unix::net::UnixStream::connect(&cni.socket).unwrap();
        s.write_all(junk).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
        let v: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
        assert_eq!(v["error"]["code"], 6, "{reply}");
    }
    let st11 = cni.conf("1.1.0", json!({}), json!({}));
    let out = cni.run(&cni.netbond(), "STATUS", None, "", &st11);
    assert!(
        out.status.success(),
        "STATUS after garbage: {out:?}\n{}",
        d.log()
    );
}

/// The shipped Kubernetes manifests and systemd units parse (they cannot run here).
#[test]
fn cni_packaging_files_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("packaging/kubernetes");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    // python3-yaml (integration/test.sh installs it); no YAML crate in the build.
    let script = r#"
import sys, yaml, json
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    assert docs, path + ": no documents"
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), path + ": a document lacks apiVersion/kind/metadata.name"
        if d["kind"] == "NetworkAttachmentDefinition":
            c = json.loads(d["spec"]["config"])
            assert c["ipam"]["type"] == "netbond", path
        print(path, d["kind"])
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python3 (with python3-yaml) is needed to validate the manifests");
    assert!(
        out.status.success(),
        "manifests invalid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds = String::from_utf8_lossy(&out.stdout);
    assert!(
        kinds.contains("DaemonSet") && kinds.contains("NetworkAttachmentDefinition"),
        "{kinds}"
    );
    for unit in ["netbond-cni.socket", "netbond-cni.service"] {
        let text = fs::read_to_string(root.join("config").join(unit)).unwrap();
        assert!(text.contains("[Install]"), "{unit}");
    }
    let svc = fs::read_to_string(root.join("config/netbond-cni.service")).unwrap();
    assert!(svc.contains("netbond cni serve"), "{svc}");
}

/// `broadcast: true` sets the BOOTP broadcast flag (what `auto` does on ipvlan, whose
/// shared MAC cannot take a unicast reply): dnsmasq answers by broadcast.
#[test]
fn cni_broadcast_flag_asks_for_broadcast_replies() {
    let cni = Cni::new("cni-bcast");
    let d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({ "broadcast": true }));
    let a = cni.v4_of(&cni.add("macvlan", &ctr, &conf, &d));
    let log = cni.dnsmasq_log();
    assert!(
        log.contains("broadcast response"),
        "{a}: dnsmasq did not answer by broadcast:\n{log}"
    );
}

/// The stock plugin's `request` list is honoured: the option is in the parameter request
/// list dnsmasq logs (`--log-dhcp` names each requested option).
#[test]
fn cni_request_list_reaches_the_server() {
    let cni = Cni::new("cni-req");
    let d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf =
        cni.macvlan(json!({ "request": [{ "option": "tftp-server-name" }, { "option": "160" }] }));
    let a = cni.v4_of(&cni.add("macvlan", &ctr, &conf, &d));
    let log = cni.dnsmasq_log();
    let requested: String = log
        .lines()
        .filter(|l| l.contains("requested options:"))
        .collect();
    assert!(
        requested.contains("66:tftp-server") && requested.contains("160"),
        "{a}: options 66 and 160 not requested:\n{log}"
    );
    // An option that cannot be requested is a CNI error naming it.
    let bad = cni.macvlan(json!({ "request": [{ "option": "message-type" }] }));
    let out = cni.run(&cni.netbond(), "ADD", Some(&ctr), "eth1", &bad);
    assert!(!out.status.success());
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("ipam.request[0].option"),
        "{e}"
    );
}

/// The daemon renews in the background (dnsmasq's 2-minute lease: T1 after 60 s), and
/// a lease the server refuses at renewal (NAK) takes the container's link down.
#[test]
fn cni_renews_in_the_background_and_a_lost_lease_takes_the_link_down() {
    let mut cni = Cni::new("cni-renew");
    let d = cni.start_daemon();
    let c1 = Ctr::new(&cni.lab, 1);
    let c2 = Ctr::new(&cni.lab, 2);
    let conf = cni.macvlan(json!({}));
    let a1 = cni.v4_of(&cni.add("macvlan", &c1, &conf, &d));
    let a2 = cni.v4_of(&cni.add("macvlan", &c2, &conf, &d));
    let renewed = |a: Ipv4Addr| d.log().contains(&format!("renewed {a} "));
    assert!(
        wait_until(Duration::from_secs(100), || renewed(a1) && renewed(a2)),
        "no renewal of {a1} and {a2}; daemon:\n{}",
        d.log()
    );
    let out = cni.run(&cni.netbond(), "CHECK", Some(&c1), "eth0", &conf);
    assert!(out.status.success(), "CHECK after renewal: {out:?}");
    let st = cni.status_json();
    for row in st.as_array().unwrap() {
        let left = row["remaining_secs"].as_u64().unwrap();
        assert!(left > 100, "the renewal did not extend the lease: {st}");
    }

    // A server that no longer has these addresses in its range NAKs the renewal.
    let mut opts = crate::lab::DnsmasqOpts {
        range4: (200, 250),
        ..Default::default()
    };
    opts.range6 = None;
    cni.lab.start_dnsmasq(opts);
    let lost = wait_until(Duration::from_secs(100), || {
        !c1.ip(&["link", "show", "eth0"]).contains(",UP")
    });
    assert!(lost, "eth0 is still up after the NAK; daemon:\n{}", d.log());
    assert!(
        d.log()
            .contains(&format!("lost {a1} (Nak); taking eth0 down")),
        "{}",
        d.log()
    );
    let out = cni.run(&cni.netbond(), "CHECK", Some(&c1), "eth0", &conf);
    assert_eq!(err_code(&out), 100, "{out:?}");

    // A restart does not bring the dead attachment back up; DEL still works.
    let mut d = d;
    d.kill9();
    let d = cni.start_daemon();
    assert!(
        wait_until(TIMEOUT, || d.log().contains("waiting for DEL")),
        "{}",
        d.log()
    );
    assert!(!c1.ip(&["link", "show", "eth0"]).contains(",UP"));
    let out = cni.run(&cni.main_plugin("macvlan"), "DEL", Some(&c1), "eth0", &conf);
    assert!(out.status.success(), "DEL: {out:?}");
}

/// Kea in the LAN namespace, killed on drop.
pub(crate) struct Kea {
    child: Child,
    log: PathBuf,
    leases: PathBuf,
}

impl Kea {
    /// 60 s leases, renewal (T1) after 20 s: netbond's engine accepts T1 down to 30 s,
    /// so it renews at 30 s.
    fn start(lab: &Lab) -> Kea {
        Self::start_with(lab, vec![])
    }

    /// As `start`, with more `option-data` entries for the subnet.
    fn start_with(lab: &Lab, extra: Vec<Value>) -> Kea {
        Self::start_logging(lab, extra, 15)
    }

    /// As `start_with`, logging at Kea's `debuglevel` (55 and up: the packets and the
    /// options the client sent).
    pub(crate) fn start_logging(lab: &Lab, extra: Vec<Value>, debuglevel: u32) -> Kea {
        let n = lab.n;
        let mut options = vec![
            json!({ "name": "routers", "data": format!("10.77.{n}.1") }),
            json!({ "name": "domain-name-servers", "data": format!("10.77.{n}.1") }),
        ];
        options.extend(extra);
        let dir = lab.path("kea");
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("kea.log");
        let leases = dir.join("leases4.csv");
        let conf = json!({ "Dhcp4": {
            "interfaces-config": { "interfaces": ["s0"], "dhcp-socket-type": "raw" },
            "lease-database": { "type": "memfile", "persist": true, "name": leases, "lfc-interval": 0 },
            "valid-lifetime": 60, "renew-timer": 20, "rebind-timer": 45,
            "subnet4": [{
                "id": 1, "subnet": format!("10.77.{n}.0/24"),
                "pools": [{ "pool": format!("10.77.{n}.50 - 10.77.{n}.150") }],
                "option-data": options
            }],
            "loggers": [{ "name": "kea-dhcp4", "severity": "DEBUG", "debuglevel": debuglevel,
                          "output_options": [{ "output": log }] }]
        }});
        let cf = dir.join("kea.json");
        fs::write(&cf, conf.to_string()).unwrap();
        let child = Command::new(&tools().ip)
            .args(["netns", "exec", &lab.sns, "kea-dhcp4", "-c"])
            .arg(&cf)
            .env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("kea.err")).unwrap())
            .spawn()
            .expect("kea-dhcp4 (Debian's kea-dhcp4-server)");
        let k = Kea { child, log, leases };
        assert!(
            wait_until(TIMEOUT, || k.log().contains("DHCP4_STARTED")),
            "kea did not start: {}\n{}",
            k.log(),
            fs::read_to_string(dir.join("kea.err")).unwrap_or_default()
        );
        k
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Short leases from Kea: the daemon renews them in the background (the lease's expiry
/// at the server moves forward), and DEL releases (Kea logs the release and the lease
/// file records it).
#[test]
fn cni_kea_short_leases_are_renewed_and_released() {
    let cni = Cni::with_dnsmasq("cni-kea", false);
    let kea = Kea::start(&cni.lab);
    let d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({}));
    let a = cni.v4_of(&cni.add("macvlan", &ctr, &conf, &d));
    let renewed = wait_until(Duration::from_secs(60), || {
        d.log().contains(&format!("renewed {a} "))
    });
    assert!(renewed, "no renewal of {a}; daemon:\n{}", d.log());
    // Kea extended it: a second lease line for the address with a later expiry.
    let expiries = || -> Vec<u64> {
        fs::read_to_string(&kea.leases)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{a},")))
            .filter_map(|l| l.split(',').nth(4)?.parse().ok())
            .collect()
    };
    assert!(
        wait_until(TIMEOUT, || {
            let e = expiries();
            e.len() >= 2 && e.last() > e.first()
        }),
        "Kea's lease file does not show the renewal: {:?}\n{}",
        expiries(),
        kea.log()
    );
    let out = cni.run(
        &cni.main_plugin("macvlan"),
        "DEL",
        Some(&ctr),
        "eth0",
        &conf,
    );
    assert!(out.status.success(), "DEL: {out:?}");
    assert!(
        wait_until(TIMEOUT, || kea
            .log()
            .lines()
            .any(|l| l.contains("DHCP4_RELEASE ")
                && l.contains(&format!("address {a} was released")))),
        "Kea logged no release; kea:\n{}\ndaemon:\n{}",
        kea.log(),
        d.log()
    );
}

/// A server that sends option 33 (static routes) and no option 121 (Kea sends what the
/// client asks for, so this also shows 33 is requested): the CNI result carries the
/// default route via the router and the classful static route, and the main plugin
/// installs both in the container. The 0.0.0.0 destination RFC 2132 forbids is dropped.
#[test]
fn cni_option_33_static_routes_in_the_result() {
    let cni = Cni::with_dnsmasq("cni-o33", false);
    let n = cni.lab.n;
    let _kea = Kea::start_with(
        &cni.lab,
        vec![json!({ "name": "static-routes",
            "data": format!("172.16.0.0, 10.77.{n}.1, 0.0.0.0, 10.77.{n}.1") })],
    );
    let d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({}));
    let r = cni.add("macvlan", &ctr, &conf, &d);
    let gw = format!("10.77.{n}.1");
    assert_eq!(
        r["routes"],
        json!([
            { "dst": "0.0.0.0/0", "gw": gw },
            { "dst": "172.16.0.0/16", "gw": gw }
        ]),
        "result: {r}\ndaemon:\n{}",
        d.log()
    );
    let routes = ctr.ip(&["-4", "route", "show"]);
    assert!(
        routes.contains(&format!("172.16.0.0/16 via {gw} dev eth0")),
        "{routes}"
    );
}

/// `ipv6: dhcpv6+ra`: the DHCPv6 address is reported with the on-link prefix length
/// the container's kernel learnt from dnsmasq's RAs, with the router (link-local) as
/// its gateway, which is the container's default route.
#[test]
fn cni_dhcpv6_ra_reports_the_on_link_prefix_and_router() {
    let cni = Cni::new("cni-ra");
    let d = cni.start_daemon();
    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({ "ipv6": "dhcpv6+ra" }));
    cni.add("macvlan", &ctr, &conf, &d);
    let out = cni.run(&cni.netbond(), "ADD", Some(&ctr), "eth0", &conf);
    assert!(out.status.success(), "{out:?}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v6 = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["address"].as_str().is_some_and(|a| a.contains(':')))
        .unwrap_or_else(|| panic!("no IPv6 address: {r}"))
        .clone();
    let addr = v6["address"].as_str().unwrap();
    assert!(addr.ends_with("/64"), "{r}\n{}", d.log());
    let a6: Ipv6Addr = addr.split('/').next().unwrap().parse().unwrap();
    assert!(cni.lab.in_range6(a6, 0x100, 0x1ff), "{r}");
    let gw = v6["gateway"]
        .as_str()
        .unwrap_or_else(|| panic!("no v6 gateway: {r}"));
    assert!(gw.starts_with("fe80::"), "{r}");
    // The default route is the kernel's own, from the RA (a main plugin would fail
    // adding it again).
    let rt = ctr.ip(&["-6", "route", "show", "default"]);
    assert!(rt.contains(&format!("via {gw}")), "{rt}");
}

/// `identity` from CNI_ARGS: a recreated pod (new container ID, new MAC, same
/// K8S_POD_NAME) sends the same client-id, so a server reservation keyed on it gives the
/// pod its address back. `clientId: legacy` sends the stock plugin's
/// `containerID/network/ifname`.
#[test]
fn cni_identity_keeps_the_reservation_and_legacy_client_id() {
    let mut cni = Cni::new("cni-ident");
    let d = cni.start_daemon();
    let n = cni.lab.n;
    // The client-id is known in advance: 0xff, IAID of lan/web-0/eth0, host DUID.
    let duid = Command::new(netbond_bin())
        .args(["duid", "--state-dir"])
        .arg(&cni.state)
        .output()
        .unwrap();
    let duid = String::from_utf8_lossy(&duid.stdout).trim().to_lowercase();
    let iaid = fnv("lan/web-0/eth0").to_be_bytes();
    let cid = format!("ff:{}:{duid}", hex_colons(&iaid));
    let reserved: Ipv4Addr = format!("10.77.{n}.140").parse().unwrap();
    let opts = crate::lab::DnsmasqOpts {
        extra: vec![format!("--dhcp-host=id:{cid},{reserved}")],
        ..Default::default()
    };
    cni.lab.start_dnsmasq(opts);
    let conf = cni.macvlan(json!({ "identity": ["K8S_POD_NAME"] }));
    for i in 1..=2 {
        // The pod, then the pod again in a new sandbox (new container ID and MAC).
        let ctr = Ctr::new(&cni.lab, i);
        let a = cni.v4_of(&cni.add("macvlan", &ctr, &conf, &d));
        assert_eq!(a, reserved, "sandbox {i}; daemon:\n{}", d.log());
        let out = cni.run(
            &cni.main_plugin("macvlan"),
            "DEL",
            Some(&ctr),
            "eth0",
            &conf,
        );
        assert!(out.status.success(), "DEL: {out:?}");
    }

    let legacy = cni.macvlan(json!({ "clientId": "legacy" }));
    let third = Ctr::new(&cni.lab, 3);
    let a3 = cni.v4_of(&cni.add("macvlan", &third, &legacy, &d));
    let cid3 = cni
        .v4_leases()
        .into_iter()
        .find(|l| l.0 == a3)
        .map(|l| l.1)
        .unwrap();
    let want = hex_colons(format!("{}/lan/eth0", third.id()).as_bytes());
    assert_eq!(cid3, want);
}

/// Eight ADDs at once: distinct addresses, all held by one daemon on one event-loop
/// thread, beside the one record-writer thread (the namespace threads are gone once
/// the sockets are open): no thread per container.
#[test]
fn cni_parallel_adds_share_one_event_loop() {
    let cni = Cni::new("cni-par");
    let d = cni.start_daemon();
    let ctrs: Vec<Ctr> = (1..=8).map(|i| Ctr::new(&cni.lab, i)).collect();
    let conf = cni.macvlan(json!({ "ipv6": "dhcpv6" }));
    let addrs: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = ctrs
            .iter()
            .map(|c| {
                let (cni, conf, d) = (&cni, &conf, &d);
                s.spawn(move || cni.v4_of(&cni.add("macvlan", c, conf, d)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut uniq = addrs.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 8, "{addrs:?}");
    assert_eq!(cni.status_json().as_array().unwrap().len(), 8);
    let pid = d.child.as_ref().unwrap().id();
    let names = || {
        let mut v: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .map(|t| {
                fs::read_to_string(t.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    assert!(
        wait_until(TIMEOUT, || names() == ["netbond", "netbond-cni-rec"]),
        "the daemon's threads: {:?}",
        names()
    );
}

/// `netbond status` (no host daemon, only the CNI daemon's socket in the run dir)
/// lists the attachment, human and JSON; `netbond monitor` follows the CNI daemon and
/// sees each event of an ADD and a DEL through the macvlan plugin once, in order, and
/// the daemon's stop; a hook configured with `--hooks-dir` runs for each of them.
#[test]
fn cni_status_and_monitor_show_the_attachments() {
    let mut cni = Cni::new("cni-monitor");
    let run_dir = cni.socket.parent().unwrap().to_path_buf();
    let hooks = cni.lab.path("hooks.d");
    fs::create_dir_all(&hooks).unwrap();
    let seen = cni.lab.path("hook.out");
    let hook = hooks.join("10-record");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$NETBOND_EVENT $NETBOND_SOURCE $NETBOND_ATTACHMENT $INTERFACE ${{new_ip_address:-}}${{old_ip_address:-}}\" >> {}\n",
            seen.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = cni.start_daemon_with(&["--hooks-dir".as_ref(), hooks.as_os_str()]);

    let out = cni.lab.path("monitor.out");
    let err = cni.lab.path("monitor.err");
    let mut mon = Command::new(netbond_bin())
        .args(["monitor", "--json", "--run-dir"])
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mon_err = || fs::read_to_string(&err).unwrap_or_default();
    assert!(
        wait_until(TIMEOUT, || mon_err().contains(&format!(
            "following events from {}",
            cni.socket.display()
        ))),
        "netbond monitor did not subscribe to the CNI daemon: {}",
        mon_err()
    );

    let ctr = Ctr::new(&cni.lab, 1);
    let conf = cni.macvlan(json!({ "ipv6": "dhcpv6" }));
    let r = cni.add("macvlan", &ctr, &conf, &d);
    let a4 = cni.v4_of(&r);
    let a6 = v6_of(&r);
    let att = format!("lan/{}/eth0", ctr.id());

    // `netbond status`: no host daemon in this run dir, the CNI daemon answers.
    let status = |json: bool| {
        let mut c = Command::new(netbond_bin());
        c.arg("status").arg("--run-dir").arg(&run_dir);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "netbond status: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let human = status(false);
    assert!(human.contains("Host daemon: not running"), "{human}");
    assert!(
        human.contains(&format!(
            "Containers: 1 attachment(s) (CNI daemon at {})",
            cni.socket.display()
        )),
        "{human}"
    );
    let row = human
        .lines()
        .find(|l| l.contains(&ctr.id()))
        .unwrap_or_else(|| panic!("no row for {}: {human}", ctr.id()));
    for want in [
        "lan".to_string(),
        " eth0 ".into(),
        format!("netns={}", ctr.path()),
        format!("{a4}/24"),
        format!("{a6}/128"),
        "state=BOUND".into(),
    ] {
        assert!(row.contains(&want), "{want:?} not in {row:?}");
    }
    let left: u64 = row
        .rsplit("left=")
        .next()
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no time left in {row:?}"));
    assert!((60..=120).contains(&left), "{row}");
    let js: Value = serde_json::from_str(&status(true)).unwrap();
    assert!(js["host_error"].is_string(), "{js}");
    assert_eq!(
        js["cni"]["socket"],
        cni.socket.display().to_string(),
        "{js}"
    );
    let a = &js["cni"]["attachments"][0];
    assert_eq!(a["container_id"], ctr.id(), "{js}");
    assert_eq!(a["netns"], ctr.path(), "{js}");
    assert_eq!(a["ifname"], "eth0", "{js}");
    assert_eq!(
        a["addresses"],
        json!([format!("{a4}/24"), format!("{a6}/128")]),
        "{js}"
    );
    assert!(a["remaining_secs"].as_u64().is_some(), "{js}");
    // With neither daemon there, status fails as before (exit 3).
    let none = Command::new(netbond_bin())
        .args(["status", "--run-dir"])
        .arg(cni.lab.path("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(3), "{none:?}");

    // With the host daemon too (its own run dir; the CNI socket named): one status
    // shows both, the host's interface first.
    let _host = cni.lab.start_netbond(&["--no-dhcp6"]);
    let both = |json: bool| {
        let mut c = Command::new(netbond_bin());
        c.arg("status")
            .arg("--run-dir")
            .arg(cni.lab.path("run"))
            .arg("--cni-socket")
            .arg(&cni.socket);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    // Exit 0 with the CNI daemon alone too: wait for the host daemon's part.
    let human = wait_for(TIMEOUT, || {
        both(false).filter(|h| h.contains("Interface: c0"))
    })
    .unwrap_or_else(|| panic!("no host interface in status: {:?}", both(false)));
    let (host_at, cni_at) = (
        human.find("Interface: c0"),
        human.find("Containers: 1 attachment(s)"),
    );
    assert!(
        host_at.is_some() && cni_at.is_some() && host_at < cni_at,
        "{human}"
    );
    assert!(human.contains(&format!("{a4}/24")), "{human}");
    let js: Value = serde_json::from_str(&both(true).unwrap()).unwrap();
    assert!(js.get("host_error").is_none(), "{js}");
    assert_eq!(
        js["cni"]["attachments"][0]["container_id"],
        ctr.id(),
        "{js}"
    );
    assert!(
        js.to_string().contains("\"c0\""),
        "no host interface in {js}"
    );

    let del = cni.run(
        &cni.main_plugin("macvlan"),
        "DEL",
        Some(&ctr),
        "eth0",
        &conf,
    );
    assert!(del.status.success(), "DEL: {del:?}");
    assert!(wait_until(TIMEOUT, || cni.released(a4)));
    // SIGTERM: `daemon-stop` is the last event, and the monitor then ends by itself.
    let pid = d.child.as_ref().unwrap().id();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let ended = wait_for(TIMEOUT, || mon.try_wait().ok().flatten());
    let ended = ended.unwrap_or_else(|| {
        let _ = mon.kill();
        panic!(
            "netbond monitor did not end at the daemon's stop: {}",
            mon_err()
        )
    });
    assert!(ended.success(), "monitor: {ended:?} {}", mon_err());

    let evs: Vec<Value> = fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let pos = |t: &str| {
        let at: Vec<usize> = (0..types.len()).filter(|&i| types[i] == t).collect();
        assert_eq!(at.len(), 1, "{t} not exactly once in {types:?}");
        at[0]
    };
    let (add, b4, b6) = (pos("cni-add"), pos("dhcp4-bound"), pos("dhcp6-bound"));
    let (r4, r6, gone, stop) = (
        pos("dhcp4-released"),
        pos("dhcp6-released"),
        pos("cni-del"),
        pos("daemon-stop"),
    );
    assert!(add < b4 && add < b6, "{types:?}");
    assert!(b4 < r4 && b6 < r6 && r4 < gone && r6 < gone, "{types:?}");
    assert_eq!(stop, types.len() - 1, "{types:?}");
    for w in evs.windows(2) {
        assert!(w[0]["seq"].as_u64() < w[1]["seq"].as_u64(), "{evs:?}");
    }
    for e in &evs {
        assert_eq!(e["v"], 1, "{e}");
        assert_eq!(e["source"], "cni", "{e}");
        if e["type"] != "daemon-stop" {
            assert_eq!(e["attachment"], att.as_str(), "{e}");
            assert_eq!(e["interface"], "eth0", "{e}");
            assert_eq!(e["netns"], ctr.path(), "{e}");
        }
    }
    assert_eq!(evs[b4]["lease"]["address"], a4.to_string());
    assert_eq!(evs[r4]["old"]["address"], a4.to_string());
    assert_eq!(evs[b6]["lease"]["addresses"][0]["address"], a6.to_string());
    assert_eq!(evs[gone]["reason"], "del");

    // The hook ran for each event, the attachment's in order (the daemon's own events
    // are queued apart), with the attachment in its environment.
    let ran = fs::read_to_string(&seen).unwrap_or_default();
    let of_att: Vec<&str> = ran
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some(att.as_str()))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(of_att, types[..stop].to_vec(), "hook saw:\n{ran}");
    assert!(ran.contains("daemon-start cni"), "{ran}");
    assert!(ran.contains("daemon-stop cni"), "{ran}");
    assert!(
        ran.contains(&format!("dhcp4-bound cni {att} eth0 {a4}"))
            && ran.contains(&format!("dhcp4-released cni {att} eth0 {a4}")),
        "{ran}"
    );
}

/// Debian's podman and runc, installed when missing (crun, podman's default runtime,
/// cannot run here: see the test below).
fn podman() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let have = ["/usr/bin/podman", "/usr/sbin/runc", "/bin/busybox"];
        if !have.iter().all(|p| Path::new(p).exists()) {
            let st = Command::new("apt-get")
                .args(["install", "-y", "-qq", "podman", "runc", "busybox-static"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
            assert!(
                st.is_ok_and(|s| s.success()),
                "podman, runc or busybox is missing and could not be installed: apt-get install podman runc busybox-static"
            );
        }
    });
}

/// podman (`--network-backend cni`) runs a container on a macvlan network whose IPAM
/// is netbond: the container sees the leased address, and `--rm` releases it.
///
/// How it has to be run on this test machine, and why: runc instead of crun (crun
/// refuses the host's hybrid cgroup v1/v2 layout: "cgroups in hybrid mode not
/// supported"); explicit `--ulimit nofile=... --ulimit nproc=...` (podman's defaults
/// are above the sandbox's hard limits, so the runtime's setrlimit fails with EPERM);
/// podman entered into the lab's host namespace with `nsenter --net` (not `ip netns
/// exec`, whose private mount namespace would hide podman's namespace bind mount from
/// the daemon); no image: `--rootfs` with a static busybox.
#[test]
fn cni_podman_runs_a_container_on_a_netbond_network() {
    podman();
    let cni = Cni::new("cni-podman");
    let d = cni.start_daemon();
    let netd = cni.lab.path("net.d");
    fs::create_dir_all(&netd).unwrap();
    let conflist = json!({
        "cniVersion": "1.0.0", "name": "nblan",
        "plugins": [{"type": "macvlan", "master": "c0", "mode": "bridge",
                     "ipam": {"type": "netbond", "daemonSocketPath": cni.socket}}],
    });
    fs::write(netd.join("nblan.conflist"), conflist.to_string()).unwrap();
    let conf = cni.lab.path("containers.conf");
    fs::write(
        &conf,
        format!(
            "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"{CNI_DIR}\"]\nnetwork_config_dir = \"{}\"\n",
            cni.bin_dir.display(),
            netd.display()
        ),
    )
    .unwrap();
    let rootfs = cni.lab.path("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cni.lab.cns))
        .args(["podman", "--runtime", "runc", "--network-backend", "cni"])
        .arg("--cni-config-dir")
        .arg(&netd)
        .args(["run", "--rm", "--network", "nblan"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["/bin/busybox", "ip", "-4", "addr", "show", "dev", "eth0"])
        .env("CONTAINERS_CONF", &conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "podman run failed: {out:?}\ndaemon:\n{}",
        d.log()
    );
    let a4: Ipv4Addr = shown
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address in the container: {shown}"));
    assert!(cni.lab.in_range4(a4, 50, 150), "{shown}");
    assert!(
        d.log().contains(&format!("bound {a4}/24")),
        "the address was not netbond's lease: {}",
        d.log()
    );
    // `--rm`: podman's CNI DEL reached netbond, which released the lease.
    assert!(
        wait_until(TIMEOUT, || cni.released(a4)),
        "no DHCPRELEASE for {a4}; daemon:\n{}",
        d.log()
    );
}
