//! The one network-namespace lab of netbond's Rust integration tiers (`netns` and
//! `hostile`; each test crate includes this directory with `#[path]`).
//!
//! A [`Lab`] is a pair of fresh network namespaces joined by a veth pair; a [`Spec`]
//! says what differs per tier (names, subnet, the programs needed, DAD on the client):
//!
//! ```text
//!   nbs-<id> (server)                      nbc-<id> (client)
//!   s0: 10.77.<n>.1/24, fd77:<n>::1/64 <-> c0: (netbond under test)
//!   dnsmasq, tcpdump, nftables             netbond, `ip monitor`
//! ```
//!
//! (the hostile tier: `nbh-s-<id>` / `nbh-c-<id>`, 10.79.<n>.0/24 and fd79:<n>::/64,
//! its own scripted server instead of dnsmasq).
//!
//! - `util.rs`: prerequisites, commands, waiting, threads inside a namespace, hex/MAC.
//! - `netbond.rs`: netbond's command line and config file, [`Netbond`] (a running one).
//! - `dnsmasq.rs`: dnsmasq start/stop/restart with options, its lease file.
//! - `capture.rs`: tcpdump captures on s0 and nftables rules (MAC drop, silence).
//! - `pcap.rs`: the capture reader (Ethernet, IP, UDP; DHCP through netbond-proto's
//!   `testkit` codec).
//!
//! Everything the lab starts is tracked by PID and killed when the lab is dropped; both
//! namespaces are then deleted (which removes the veth pair). The root namespace's
//! interfaces are never touched. Temporary files live in
//! `$TMPDIR/<spec.dir>-<name>-<id>` and are kept (and their interesting parts printed)
//! when the test panicked, or always when `NETBOND_IT_KEEP` is set.
//!
//! The lab needs root and the spec's programs; without them every test fails (it never
//! silently skips) with a message saying what to do.
// Not every tier uses every helper or re-export.
#![allow(dead_code, unused_imports)]

mod capture;
mod dnsmasq;
mod netbond;
pub mod pcap;
mod util;

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub use dnsmasq::{parse_leases, DnsmasqOpts, Lease, Leases};
pub use netbond::{lab_only, netbond_bin, netbond_cmd, Netbond};
pub use util::*;
use util::{check, kill_child, kill_pid, run};

use capture::Capture;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// What differs between the tiers that use the lab.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The cargo test target (`cargo test --test <tier>`), for messages.
    pub tier: &'static str,
    /// The tests, for the message when the prerequisites are missing.
    pub what: &'static str,
    /// Server and client namespace names, before `-<pid>-<k>`.
    pub namespaces: (&'static str, &'static str),
    /// The temp dir's name, before `-<test>-<pid>-<k>`.
    pub dir: &'static str,
    /// The second octet of the lab's 10.<octet>.<n>.0/24, and of the MAC 02:<octet>:<n>:...
    pub octet: u8,
    /// The first group of the lab's IPv6 prefix (`0xfd77`: fd77:<n>::/64).
    pub prefix6: u16,
    /// Programs the tier needs (checked before the first lab is made).
    pub programs: &'static [&'static str],
    /// Duplicate address detection on the client side (the server side never has it:
    /// s0's addresses must be usable at once).
    pub client_dad: bool,
}

/// The netns tier: dnsmasq, captures and nftables at the server.
pub const NETNS: Spec = Spec {
    tier: "netns",
    what: "netns integration tests",
    namespaces: ("nbs", "nbc"),
    dir: "netbond-it",
    octet: 77,
    prefix6: 0xfd77,
    programs: &["ip", "dnsmasq", "nft", "tcpdump"],
    client_dad: true,
};

/// The hostile tier: a scripted server of the test's own, so only `ip`; no DAD on the
/// client either, so DHCPv6 starts at once.
pub const HOSTILE: Spec = Spec {
    tier: "hostile",
    what: "hostile-server tests",
    namespaces: ("nbh-s", "nbh-c"),
    dir: "netbond-hostile",
    octet: 79,
    prefix6: 0xfd79,
    programs: &["ip"],
    client_dad: false,
};

/// An IPv4 address on the client interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr4 {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// Seconds; `u32::MAX` means forever.
    pub valid_lft: u32,
    pub preferred_lft: u32,
}

/// An IPv6 address on the client interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr6 {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    pub valid_lft: u32,
    pub preferred_lft: u32,
    pub scope: String,
    pub tentative: bool,
}

/// A route through the client interface (`ip -j route show dev c0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `default` or `a.b.c.d/len` (or a bare address for host routes).
    pub dst: String,
    pub gateway: Option<String>,
    pub metric: Option<u32>,
    pub protocol: Option<String>,
    pub table: Option<String>,
}

/// One `addr_info` of `ip -j addr`: address, prefix length, valid and preferred
/// lifetimes (`u32::MAX`, forever, when absent).
fn addr_info<A: std::str::FromStr>(ai: &serde_json::Value) -> Option<(A, u8, u32, u32)> {
    let life = |key: &str| ai[key].as_u64().unwrap_or(u32::MAX as u64) as u32;
    Some((
        ai["local"].as_str()?.parse().ok()?,
        ai["prefixlen"].as_u64()? as u8,
        life("valid_life_time"),
        life("preferred_life_time"),
    ))
}

/// The lab: two namespaces, a veth pair, and the processes started in them.
pub struct Lab {
    pub spec: Spec,
    pub name: String,
    pub id: String,
    /// Selects 10.<octet>.<n>.0/24, fd<octet>:<n>::/64 and 192.168.<n>.0/24.
    pub n: u8,
    /// Server namespace (`nbs-<id>`).
    pub sns: String,
    /// Client namespace (`nbc-<id>`).
    pub cns: String,
    pub dir: PathBuf,
    /// c0's MAC as set at creation (or by [`Lab::set_mac`]).
    pub mac: String,
    dnsmasq: Option<Child>,
    dnsmasq_opts: DnsmasqOpts,
    capture: Option<Capture>,
    captures: u32,
    monitor: Option<(Child, PathBuf)>,
    netbond_runs: u32,
    /// PIDs of netbond processes not yet reaped; killed at drop.
    registry: Arc<Mutex<BTreeSet<u32>>>,
    nft_tables: u32,
}

impl Lab {
    /// Create a netns-tier lab. `name` only labels the temp dir.
    pub fn new(name: &str) -> Lab {
        Lab::with(NETNS, name)
    }

    /// Create a lab of the tier `spec`. `name` only labels the temp dir.
    pub fn with(spec: Spec, name: &str) -> Lab {
        require(spec.tier, spec.what, spec.programs);
        let t = tools();
        let pid = std::process::id();
        let c = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{pid}-{c}");
        // Namespaces are isolated, so equal subnets would not clash; distinct ones only
        // make logs and captures easier to tell apart.
        let n = ((pid.wrapping_mul(7).wrapping_add(c)) % 200 + 20) as u8;
        let sns = format!("{}-{id}", spec.namespaces.0);
        let cns = format!("{}-{id}", spec.namespaces.1);
        let dir = std::env::temp_dir().join(format!("{}-{name}-{id}", spec.dir));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create lab temp dir");
        // Stale namespaces from an earlier crashed run with the same PID.
        for ns in [&sns, &cns] {
            let _ = run(Command::new(&t.ip)
                .args(["netns", "del", ns])
                .stderr(Stdio::null()));
        }
        let lab = Lab {
            spec,
            name: name.to_string(),
            id,
            n,
            sns,
            cns,
            dir,
            mac: format!("02:{}:{n:02x}:00:00:01", spec.octet),
            dnsmasq: None,
            dnsmasq_opts: DnsmasqOpts::default(),
            capture: None,
            captures: 0,
            monitor: None,
            netbond_runs: 0,
            registry: Arc::new(Mutex::new(BTreeSet::new())),
            nft_tables: 0,
        };
        // From here on, Drop cleans up whatever was created.
        check(Command::new(&t.ip).args(["netns", "add", &lab.sns]));
        check(Command::new(&t.ip).args(["netns", "add", &lab.cns]));
        lab.sysctl(&lab.sns, "net/ipv6/conf/default/accept_dad", "0");
        lab.sysctl(&lab.sns, "net/ipv6/conf/all/accept_dad", "0");
        if !spec.client_dad {
            lab.sysctl(&lab.cns, "net/ipv6/conf/default/accept_dad", "0");
            lab.sysctl(&lab.cns, "net/ipv6/conf/all/accept_dad", "0");
        }
        lab.sysctl(&lab.cns, "net/ipv6/conf/all/accept_ra", "1");
        lab.sysctl(&lab.cns, "net/ipv6/conf/default/accept_ra", "1");
        lab.ip(&lab.sns, &["link", "set", "lo", "up"]);
        lab.ip(&lab.cns, &["link", "set", "lo", "up"]);
        lab.create_link();
        lab
    }

    /// Create the veth pair `s0` (server ns) <-> `c0` (client ns) and configure it.
    /// Used at creation and to re-create it after [`Lab::delete_link`].
    pub fn create_link(&self) {
        let mac = self.mac.clone();
        // Created inside the server namespace with its peer directly in the client
        // namespace: the names never exist in the root namespace.
        self.ip(
            &self.sns,
            &[
                "link", "add", "s0", "type", "veth", "peer", "name", "c0", "address", &mac,
                "netns", &self.cns,
            ],
        );
        self.sysctl(&self.cns, "net/ipv4/conf/c0/arp_notify", "1");
        self.sysctl(&self.cns, "net/ipv6/conf/c0/accept_ra", "1");
        let a4 = format!("{}/24", self.gw4());
        let a6 = format!("{}/64", self.gw6());
        self.ip(&self.sns, &["addr", "add", &a4, "dev", "s0"]);
        self.ip(&self.sns, &["addr", "add", &a6, "dev", "s0", "nodad"]);
        self.ip(&self.sns, &["link", "set", "s0", "up"]);
        self.ip(&self.cns, &["link", "set", "c0", "up"]);
        // Until s0's link-local address leaves the tentative state, RAs (dnsmasq's,
        // or a test's) leave with the global one as source, which clients rightly drop
        // (RFC 4861 6.1.2), and DHCPv6 never starts. Even without DAD that takes the
        // kernel's address work queue, which other netlink-heavy work on the machine
        // (hundreds of interfaces being made elsewhere) can hold up for many seconds.
        let wait = TIMEOUT * 3;
        let ready = wait_until(wait, || {
            let a = self.ip(
                &self.sns,
                &["-6", "addr", "show", "dev", "s0", "scope", "link"],
            );
            a.contains("fe80") && !a.contains("tentative")
        });
        assert!(
            ready,
            "s0's IPv6 link-local address still tentative after {wait:?}"
        );
    }

    /// Delete the veth pair (from the server side; the peer goes with it).
    pub fn delete_link(&mut self) {
        self.ip(&self.sns, &["link", "del", "s0"]);
    }

    fn sysctl(&self, ns: &str, key: &str, val: &str) {
        let path = format!("/proc/sys/{key}");
        check(Command::new(&tools().ip).args([
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo {val} > {path}"),
        ]));
    }

    /// `ip -n <ns> <args>`, which must succeed; returns stdout.
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        check(Command::new(&tools().ip).args(["-n", ns]).args(args))
    }

    /// Run a program inside a namespace and return its output (no success check).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        run(Command::new(&tools().ip)
            .args(["netns", "exec", ns])
            .args(args))
    }

    /// The server's IPv4 address, 10.77.<n>.1.
    pub fn gw4(&self) -> Ipv4Addr {
        self.v4(1)
    }

    /// The server's IPv6 address, fd77:<n>::1.
    pub fn gw6(&self) -> Ipv6Addr {
        self.v6(1)
    }

    /// 10.77.<n>.<last>.
    pub fn v4(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.spec.octet, self.n, last)
    }

    /// fd77:<n>::<last>.
    pub fn v6(&self, last: u16) -> Ipv6Addr {
        Ipv6Addr::new(self.spec.prefix6, self.n as u16, 0, 0, 0, 0, 0, last)
    }

    /// Is `a` in 10.77.<n>.<lo..=hi>?
    pub fn in_range4(&self, a: Ipv4Addr, lo: u8, hi: u8) -> bool {
        let o = a.octets();
        o[..3] == [10, self.spec.octet, self.n] && (lo..=hi).contains(&o[3])
    }

    /// Is `a` in fd77:<n>::<lo..=hi>?
    pub fn in_range6(&self, a: Ipv6Addr, lo: u16, hi: u16) -> bool {
        let s = a.segments();
        s[..7] == self.v6(0).segments()[..7] && (lo..=hi).contains(&s[7])
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write netbond's config file (`<dir>/netbond.toml`, passed by [`netbond_cmd`]).
    pub fn write_config(&self, toml: &str) {
        fs::write(self.path("netbond.toml"), lab_only(&self.dir, toml))
            .expect("write netbond.toml");
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.path("resolv.conf")
    }

    pub fn leases_path(&self) -> PathBuf {
        self.path("leases")
    }

    pub fn dnsmasq_log(&self) -> PathBuf {
        self.path("dnsmasq.log")
    }

    fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let out = run(Command::new(&tools().ip)
            .args(["-n", &self.cns, "-j"])
            .args(args));
        if !out.status.success() {
            // e.g. c0 does not exist (deleted): no addresses.
            return serde_json::Value::Array(Vec::new());
        }
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Array(Vec::new()))
    }

    fn addr_infos(&self, fam: &str) -> Vec<serde_json::Value> {
        let v = self.ip_json(&[fam, "addr", "show", "dev", "c0"]);
        let mut out = Vec::new();
        for link in v.as_array().into_iter().flatten() {
            for ai in link["addr_info"].as_array().into_iter().flatten() {
                out.push(ai.clone());
            }
        }
        out
    }

    /// IPv4 addresses on c0.
    pub fn addrs4(&self) -> Vec<Addr4> {
        self.addr_infos("-4")
            .into_iter()
            .filter_map(|ai| {
                let (addr, prefix_len, valid_lft, preferred_lft) = addr_info(&ai)?;
                Some(Addr4 {
                    addr,
                    prefix_len,
                    valid_lft,
                    preferred_lft,
                })
            })
            .collect()
    }

    /// IPv6 addresses on c0 (all scopes; see [`Lab::global_addrs6`]).
    pub fn addrs6(&self) -> Vec<Addr6> {
        self.addr_infos("-6")
            .into_iter()
            .filter_map(|ai| {
                let (addr, prefix_len, valid_lft, preferred_lft) = addr_info(&ai)?;
                Some(Addr6 {
                    addr,
                    prefix_len,
                    valid_lft,
                    preferred_lft,
                    scope: ai["scope"].as_str().unwrap_or("").to_string(),
                    tentative: ai["tentative"].as_bool().unwrap_or(false),
                })
            })
            .collect()
    }

    /// Global-scope IPv6 addresses on c0.
    pub fn global_addrs6(&self) -> Vec<Addr6> {
        self.addrs6()
            .into_iter()
            .filter(|a| a.scope == "global")
            .collect()
    }

    /// The v4 address on c0 inside 10.77.<n>.<lo..=hi>, if any.
    pub fn addr4_in(&self, lo: u8, hi: u8) -> Option<Addr4> {
        self.addrs4()
            .into_iter()
            .find(|a| self.in_range4(a.addr, lo, hi))
    }

    /// The v6 address on c0 inside fd77:<n>::<lo..=hi>, if any.
    pub fn addr6_in(&self, lo: u16, hi: u16) -> Option<Addr6> {
        self.addrs6()
            .into_iter()
            .find(|a| self.in_range6(a.addr, lo, hi))
    }

    fn routes(&self, fam: &str) -> Vec<Route> {
        let v = self.ip_json(&[fam, "route", "show", "table", "all", "dev", "c0"]);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(Route {
                    dst: r["dst"].as_str()?.to_string(),
                    gateway: r["gateway"].as_str().map(str::to_string),
                    metric: r["metric"].as_u64().map(|m| m as u32),
                    protocol: r["protocol"].as_str().map(str::to_string),
                    table: r["table"].as_str().map(str::to_string),
                })
            })
            .collect()
    }

    /// IPv4 routes through c0, all tables except `local`.
    pub fn routes4(&self) -> Vec<Route> {
        self.routes("-4")
            .into_iter()
            .filter(|r| r.table.as_deref() != Some("local"))
            .collect()
    }

    /// IPv6 routes through c0, all tables except `local`.
    pub fn routes6(&self) -> Vec<Route> {
        self.routes("-6")
            .into_iter()
            .filter(|r| r.table.as_deref() != Some("local"))
            .collect()
    }

    /// `ip -j link show dev c0` (first element), or Null if c0 is absent.
    pub fn link(&self) -> serde_json::Value {
        let v = self.ip_json(&["link", "show", "dev", "c0"]);
        v.get(0).cloned().unwrap_or(serde_json::Value::Null)
    }

    pub fn mtu(&self) -> Option<u32> {
        self.link()["mtu"].as_u64().map(|m| m as u32)
    }

    /// Change c0's MAC address (while it is up).
    pub fn set_mac(&mut self, mac: &str) {
        self.ip(&self.cns, &["link", "set", "dev", "c0", "address", mac]);
        self.mac = mac.to_string();
    }

    /// Start `ip -o monitor address` in the client namespace (replacing a previous
    /// one); read its lines with [`Lab::monitor_lines`].
    pub fn monitor_addresses(&mut self) {
        if let Some((mut c, _)) = self.monitor.take() {
            kill_child(&mut c);
        }
        let file = self.path("monitor.txt");
        let f = fs::File::create(&file).unwrap();
        let child = Command::new(&tools().ip)
            .args(["-n", &self.cns, "-o", "monitor", "address"])
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ip monitor");
        // `ip monitor` prints nothing when it is ready; give it time to subscribe.
        thread::sleep(Duration::from_millis(200));
        self.monitor = Some((child, file));
    }

    /// Lines printed by the address monitor so far.
    pub fn monitor_lines(&self) -> Vec<String> {
        match &self.monitor {
            Some((_, f)) => fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Monitor lines reporting the deletion of `addr` (v4 or v6, as text).
    pub fn monitor_deleted(&self, addr: &str) -> Vec<String> {
        let needle = format!(" {addr}/");
        self.monitor_lines()
            .into_iter()
            .filter(|l| l.starts_with("Deleted") && l.contains(&needle))
            .collect()
    }

    /// Print what helps debugging a failure: paths, logs, packets, interface state.
    pub fn dump(&self) {
        let mut s = String::new();
        s += &format!(
            "\n===== lab {} ({}), n={}, files kept in {}\n",
            self.name,
            self.id,
            self.n,
            self.dir.display()
        );
        s += &format!(
            "--- netbond.log (tail)\n{}\n",
            tail(&self.path("netbond.log"), 60)
        );
        // The hostile tier has no dnsmasq.
        if self.dnsmasq_log().exists() {
            s += &format!(
                "--- dnsmasq.log (tail)\n{}\n",
                tail(&self.dnsmasq_log(), 30)
            );
            s += &format!(
                "--- leases\n{}\n",
                fs::read_to_string(self.leases_path()).unwrap_or_default()
            );
        }
        if self.captures > 0 {
            s += &format!("--- capture\n{}\n", self.packets_summary());
        }
        if self.monitor.is_some() {
            s += &format!("--- address monitor\n{}\n", self.monitor_lines().join("\n"));
        }
        let addr = run(Command::new(&tools().ip).args(["-n", &self.cns, "addr"]));
        s += &format!(
            "--- client addrs\n{}",
            String::from_utf8_lossy(&addr.stdout)
        );
        for fam in ["-4", "-6"] {
            let r = run(Command::new(&tools().ip)
                .args(["-n", &self.cns, fam, "route", "show", "table", "all"]));
            s += &format!(
                "--- client routes {fam}\n{}",
                String::from_utf8_lossy(&r.stdout)
            );
        }
        eprintln!("{s}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = thread::panicking();
        if failed {
            self.dump();
        }
        // Kill by PID everything we started (netbond handles reap their own child).
        for pid in self.registry.lock().unwrap().iter() {
            kill_pid(*pid, libc::SIGKILL);
        }
        self.stop_dnsmasq();
        if let Some(mut c) = self.capture.take() {
            kill_child(&mut c.child);
        }
        if let Some((mut c, _)) = self.monitor.take() {
            kill_child(&mut c);
        }
        let t = tools();
        for ns in [&self.cns, &self.sns] {
            let _ = run(Command::new(&t.ip).args(["netns", "del", ns]));
        }
        if !failed && std::env::var_os("NETBOND_IT_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
