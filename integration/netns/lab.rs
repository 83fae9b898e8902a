//! Network-namespace lab for netbond's integration tests.
//!
//! A [`Lab`] is a pair of fresh network namespaces joined by a veth pair:
//!
//! ```text
//!   nbs-<id> (server)                      nbc-<id> (client)
//!   s0: 10.77.<n>.1/24, fd77:<n>::1/64 <-> c0: (netbond under test)
//!   dnsmasq, tcpdump, nftables             netbond, `ip monitor`
//! ```
//!
//! Everything the lab starts is tracked by PID and killed when the lab is dropped; both
//! namespaces are then deleted (which removes the veth pair). The root namespace's
//! interfaces are never touched. Temporary files live in
//! `$TMPDIR/netbond-it-<name>-<id>` and are kept (and their interesting parts printed)
//! when the test panicked, or always when `NETBOND_IT_KEEP` is set.
//!
//! The lab needs root and the `ip`, `dnsmasq`, `nft` and `tcpdump` programs; without
//! them every test fails (it never silently skips) with a message saying what to do.
#![allow(dead_code)] // Not every test target uses every helper.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::pcap::{self, Packet};

/// Generous default timeout for "this should happen soon" conditions; a loaded 2-core
/// CI machine must not flake, and [`wait_until`] returns as soon as the condition holds.
pub const TIMEOUT: Duration = Duration::from_secs(20);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Absolute paths of the external programs the lab drives.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ip: PathBuf,
    pub dnsmasq: PathBuf,
    pub nft: PathBuf,
    pub tcpdump: PathBuf,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // root's PATH normally has the sbin directories, but a CI environment may not.
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Check the prerequisites once per test process; panic with instructions if missing.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    let res = TOOLS.get_or_init(|| {
        let mut problems = Vec::new();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            problems.push(
                "these tests create network namespaces and must run as root \
                 (e.g. `sudo -E cargo test --test netns`)"
                    .to_string(),
            );
        }
        let mut missing = Vec::new();
        let mut get = |name: &str| {
            find_program(name).unwrap_or_else(|| {
                missing.push(name.to_string());
                PathBuf::new()
            })
        };
        let tools = Tools {
            ip: get("ip"),
            dnsmasq: get("dnsmasq"),
            nft: get("nft"),
            tcpdump: get("tcpdump"),
        };
        if !missing.is_empty() {
            problems.push(format!(
                "missing program(s): {}; install them with \
                 `apt-get install dnsmasq-base nftables tcpdump iproute2`",
                missing.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(tools)
        } else {
            Err(problems.join("; "))
        }
    });
    match res {
        Ok(t) => t,
        Err(msg) => panic!("netns integration tests cannot run: {msg}"),
    }
}

/// Path of the netbond binary built by cargo for this test target.
pub fn netbond_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netbond"))
}

/// The command line that runs netbond on `iface` inside namespace `ns`, with all its
/// state under `dir`: `dir/state`, `dir/run`, `dir/resolv.conf`, and the config file
/// `dir/netbond.toml` (created empty if absent, so a host's /etc/netbond/netbond.toml
/// never leaks into a test) unless `extra` has its own `--config`. Reusable by other
/// test tiers.
pub fn netbond_cmd(ns: &str, iface: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(&tools().ip);
    let own_config = extra
        .iter()
        .any(|a| *a == "--config" || a.starts_with("--config="));
    cmd.args(["netns", "exec", ns])
        .arg(netbond_bin())
        .args(["run", "--iface", iface, "--state-dir"])
        .arg(dir.join("state"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .args(["--log-level", "debug"]);
    if !extra.contains(&"--resolv-conf") {
        cmd.arg("--resolv-conf").arg(dir.join("resolv.conf"));
    }
    if !own_config {
        let conf = dir.join("netbond.toml");
        if !conf.exists() {
            fs::write(&conf, lab_only(dir, "")).expect("write netbond.toml");
        }
        cmd.arg("--config").arg(conf);
    }
    cmd.args(extra)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    cmd
}

/// `toml` with netbond's host-wide files (chrony's NTP sources and systemd-timesyncd's
/// drop-in, by default in /run) moved into the lab's `dir`, unless the test chose its
/// own directory for one: a test must never leave files in the host's /run.
pub fn lab_only(dir: &Path, toml: &str) -> String {
    let mut keys = String::new();
    for (key, sub) in [
        ("chrony_dir", "chrony-dhcp"),
        ("timesyncd_dir", "timesyncd.conf.d"),
    ] {
        if !toml.contains(&format!("{key} =")) {
            keys += &format!("{key} = \"{}\"\n", dir.join(sub).display());
        }
    }
    if toml.contains("[ntp]\n") {
        toml.replacen("[ntp]\n", &format!("[ntp]\n{keys}"), 1)
    } else {
        format!("{toml}\n[ntp]\n{keys}")
    }
}

/// Poll `cond` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_until`] for a value.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let mut out = None;
    wait_until(timeout, || {
        out = f();
        out.is_some()
    });
    out
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

/// Run a command that must succeed; return its stdout.
fn check(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: plain syscall; the PID belongs to a child we have not reaped yet, so it
    // cannot have been reused by an unrelated process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Kill (SIGKILL) and reap a child.
fn kill_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The last `n` lines of a file (or a note that it does not exist).
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<{}: {e}>", path.display()),
    }
}

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

/// One line of dnsmasq's lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    V4 {
        expiry: u64,
        mac: String,
        ip: Ipv4Addr,
        hostname: String,
        /// Colon-separated hex, or `*`.
        client_id: String,
    },
    V6 {
        expiry: u64,
        iaid: u32,
        ip: Ipv6Addr,
        hostname: String,
        /// Colon-separated hex DUID.
        duid: String,
    },
}

/// Parsed dnsmasq lease file.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    pub server_duid: Option<String>,
    pub v4: Vec<Lease>,
    pub v6: Vec<Lease>,
}

/// Parse dnsmasq's lease file format: v4 lines `expiry mac ip hostname clientid`, then
/// after a `duid <server-duid>` line, v6 lines `expiry iaid ip hostname client-duid`.
pub fn parse_leases(text: &str) -> Leases {
    let mut out = Leases::default();
    let mut v6 = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 2 && f[0] == "duid" {
            out.server_duid = Some(f[1].to_string());
            v6 = true;
            continue;
        }
        if f.len() < 5 {
            continue;
        }
        let expiry = f[0].parse().unwrap_or(0);
        if v6 {
            let iaid = f[1].trim_start_matches('T').parse().unwrap_or(0);
            if let Ok(ip) = f[2].parse() {
                out.v6.push(Lease::V6 {
                    expiry,
                    iaid,
                    ip,
                    hostname: f[3].to_string(),
                    duid: f[4].to_string(),
                });
            }
        } else if let Ok(ip) = f[2].parse() {
            out.v4.push(Lease::V4 {
                expiry,
                mac: f[1].to_string(),
                ip,
                hostname: f[3].to_string(),
                client_id: f[4].to_string(),
            });
        }
    }
    out
}

/// Parse colon-separated hex (`01:02:ab`) into bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    s.split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// Format bytes as colon-separated lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Format a MAC address.
pub fn mac_str(m: &[u8; 6]) -> String {
    hex(m)
}

/// Parse a MAC address.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v = parse_hex(s).unwrap_or_else(|| panic!("bad MAC {s:?}"));
    v.try_into().unwrap_or_else(|_| panic!("bad MAC {s:?}"))
}

/// dnsmasq configuration for one run.
#[derive(Debug, Clone)]
pub struct DnsmasqOpts {
    /// Last octets of the v4 range inside 10.77.<n>.0/24.
    pub range4: (u8, u8),
    /// v6 range inside fd77:<n>::/64 (hex host parts), or `None` for no DHCPv6.
    pub range6: Option<(&'static str, &'static str)>,
    /// Lease time as dnsmasq spells it (dnsmasq's minimum is 2m).
    pub lease: String,
    /// Extra raw arguments (`--dhcp-option=...`).
    pub extra: Vec<String>,
}

impl Default for DnsmasqOpts {
    fn default() -> Self {
        DnsmasqOpts {
            range4: (50, 150),
            range6: Some(("100", "1ff")),
            lease: "2m".into(),
            extra: Vec::new(),
        }
    }
}

/// A running netbond.
pub struct Netbond {
    child: Child,
    pub pid: u32,
    pub log_path: PathBuf,
    registry: Arc<Mutex<BTreeSet<u32>>>,
    status: Option<ExitStatus>,
    pub started: Instant,
}

impl Netbond {
    /// Send a signal (e.g. `libc::SIGTERM`).
    pub fn kill(&mut self, sig: i32) {
        if self.status.is_none() {
            kill_pid(self.pid, sig);
        }
    }

    /// Has it exited (reaping it if so)?
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                self.registry.lock().unwrap().remove(&self.pid);
            }
        }
        self.status
    }

    pub fn is_alive(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.try_status())
    }

    /// Its combined stdout/stderr so far (all runs in this lab, separated by markers).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Panic (with the log tail) if it is not running.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self.try_status() {
            panic!(
                "netbond (pid {}) exited unexpectedly: {} (signal {:?}); log tail:\n{}",
                self.pid,
                st,
                st.signal(),
                tail(&self.log_path, 40)
            );
        }
    }
}

impl Drop for Netbond {
    fn drop(&mut self) {
        if self.status.is_none() {
            kill_child(&mut self.child);
            self.registry.lock().unwrap().remove(&self.pid);
        }
    }
}

/// A running tcpdump writing a pcap file.
struct Capture {
    child: Child,
    file: PathBuf,
}

/// The lab: two namespaces, a veth pair, and the processes started in them.
pub struct Lab {
    pub name: String,
    pub id: String,
    /// Selects 10.77.<n>.0/24, fd77:<n>::/64 and 192.168.<n>.0/24.
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
    /// Create a lab. `name` only labels the temp dir.
    pub fn new(name: &str) -> Lab {
        let t = tools();
        let pid = std::process::id();
        let c = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{pid}-{c}");
        // Namespaces are isolated, so equal subnets would not clash; distinct ones only
        // make logs and captures easier to tell apart.
        let n = ((pid.wrapping_mul(7).wrapping_add(c)) % 200 + 20) as u8;
        let sns = format!("nbs-{id}");
        let cns = format!("nbc-{id}");
        let dir = std::env::temp_dir().join(format!("netbond-it-{name}-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create lab temp dir");
        // Stale namespaces from an earlier crashed run with the same PID.
        for ns in [&sns, &cns] {
            let _ = run(Command::new(&t.ip)
                .args(["netns", "del", ns])
                .stderr(Stdio::null()));
        }
        let lab = Lab {
            name: name.to_string(),
            id,
            n,
            sns,
            cns,
            dir,
            mac: format!("02:77:{n:02x}:00:00:01"),
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
        Ipv4Addr::new(10, 77, self.n, 1)
    }

    /// The server's IPv6 address, fd77:<n>::1.
    pub fn gw6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd77, self.n as u16, 0, 0, 0, 0, 0, 1)
    }

    /// 10.77.<n>.<last>.
    pub fn v4(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.n, last)
    }

    /// Is `a` in 10.77.<n>.<lo..=hi>?
    pub fn in_range4(&self, a: Ipv4Addr, lo: u8, hi: u8) -> bool {
        let o = a.octets();
        o[..3] == [10, 77, self.n] && (lo..=hi).contains(&o[3])
    }

    /// Is `a` in fd77:<n>::<lo..=hi>?
    pub fn in_range6(&self, a: Ipv6Addr, lo: u16, hi: u16) -> bool {
        let s = a.segments();
        s[..7] == [0xfd77, self.n as u16, 0, 0, 0, 0, 0] && (lo..=hi).contains(&s[7])
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

    // ---------------------------------------------------------------- dnsmasq

    /// Start dnsmasq in the server namespace (stopping a running one first) and wait
    /// until it has set up its DHCP ranges.
    pub fn start_dnsmasq(&mut self, opts: DnsmasqOpts) {
        self.stop_dnsmasq();
        let t = tools();
        let n = self.n;
        let mut args: Vec<String> = vec![
            "-k".into(),
            "-C".into(),
            "/dev/null".into(),
            "--port=0".into(),
            "--no-ping".into(),
            "--bind-interfaces".into(),
            "--interface=s0".into(),
            "--user=root".into(),
            "--dhcp-authoritative".into(),
            format!(
                "--dhcp-range=10.77.{n}.{},10.77.{n}.{},255.255.255.0,{}",
                opts.range4.0, opts.range4.1, opts.lease
            ),
            "--dhcp-option=option:mtu,1400".into(),
            format!(
                "--dhcp-option=option:classless-static-route,192.168.{n}.0/24,10.77.{n}.1,0.0.0.0/0,10.77.{n}.1"
            ),
            format!("--dhcp-option=option:dns-server,10.77.{n}.1"),
            format!("--dhcp-leasefile={}", self.leases_path().display()),
            format!("--pid-file={}", self.path("dnsmasq.pid").display()),
            "--log-dhcp".into(),
            format!("--log-facility={}", self.dnsmasq_log().display()),
        ];
        if let Some((lo, hi)) = opts.range6 {
            args.push(format!(
                "--dhcp-range=fd77:{n:x}::{lo},fd77:{n:x}::{hi},64,{}",
                opts.lease
            ));
            args.push("--enable-ra".into());
            args.push(format!("--dhcp-option=option6:dns-server,[fd77:{n:x}::1]"));
        }
        args.extend(opts.extra.iter().cloned());
        let log = self.dnsmasq_log();
        let before = fs::read_to_string(&log).map(|s| s.len()).unwrap_or(0);
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("dnsmasq.out"))
            .unwrap();
        let mut child = Command::new(&t.ip)
            .args(["netns", "exec", &self.sns])
            .arg(&t.dnsmasq)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn dnsmasq");
        let ready = wait_until(TIMEOUT, || {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            let s = fs::read_to_string(&log).unwrap_or_default();
            s.get(before..)
                .is_some_and(|s| s.contains("DHCP, IP range"))
        });
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "dnsmasq exited at start ({st}); args {args:?}\n{}\n{}",
                tail(&self.path("dnsmasq.out"), 20),
                tail(&log, 20)
            );
        }
        assert!(ready, "dnsmasq did not start within {TIMEOUT:?}");
        self.dnsmasq = Some(child);
        self.dnsmasq_opts = opts;
    }

    /// Start dnsmasq with the default options.
    pub fn start_dnsmasq_default(&mut self) {
        self.start_dnsmasq(DnsmasqOpts::default());
    }

    /// Stop dnsmasq (SIGKILL by PID) if running.
    pub fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            kill_child(&mut c);
        }
    }

    /// Stop and start dnsmasq again with the same options.
    pub fn restart_dnsmasq(&mut self) {
        let opts = self.dnsmasq_opts.clone();
        self.start_dnsmasq(opts);
    }

    pub fn dnsmasq_running(&mut self) -> bool {
        matches!(self.dnsmasq.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn dnsmasq_pid(&self) -> Option<u32> {
        self.dnsmasq.as_ref().map(|c| c.id())
    }

    /// dnsmasq's lease file, parsed (empty if absent).
    pub fn leases(&self) -> Leases {
        parse_leases(&fs::read_to_string(self.leases_path()).unwrap_or_default())
    }

    // ---------------------------------------------------------------- capture

    /// Start capturing DHCP traffic on s0 (stopping a previous capture) and wait until
    /// tcpdump is actually listening.
    pub fn capture(&mut self) {
        self.stop_capture();
        let t = tools();
        self.captures += 1;
        let file = self.path(&format!("capture-{}.pcap", self.captures));
        let errf = self.path(&format!("tcpdump-{}.err", self.captures));
        let err = fs::File::create(&errf).unwrap();
        let mut child = Command::new(&t.ip)
            .args(["netns", "exec", &self.sns])
            .arg(&t.tcpdump)
            .args(["-i", "s0", "-n", "-U", "-Z", "root", "-s", "0", "-w"])
            .arg(&file)
            .args(["udp port 67 or udp port 68 or udp port 546 or udp port 547"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn tcpdump");
        let ok = wait_until(TIMEOUT, || {
            matches!(child.try_wait(), Ok(Some(_)))
                || fs::read_to_string(&errf)
                    .unwrap_or_default()
                    .contains("listening on")
        });
        if let Ok(Some(st)) = child.try_wait() {
            panic!("tcpdump exited at start ({st}): {}", tail(&errf, 10));
        }
        assert!(ok, "tcpdump not listening after {TIMEOUT:?}");
        self.capture = Some(Capture { child, file });
    }

    /// The DHCP packets captured so far by the current (or last) capture.
    pub fn packets(&self) -> Vec<Packet> {
        let file = match &self.capture {
            Some(c) => c.file.clone(),
            None if self.captures > 0 => self.path(&format!("capture-{}.pcap", self.captures)),
            None => return Vec::new(),
        };
        let data = fs::read(&file).unwrap_or_default();
        pcap::parse_pcap(&data)
    }

    /// Stop the capture (SIGINT, so tcpdump flushes) and return its packets.
    pub fn stop_capture(&mut self) -> Vec<Packet> {
        if let Some(mut c) = self.capture.take() {
            kill_pid(c.child.id(), libc::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            kill_child(&mut c.child);
            let data = fs::read(&c.file).unwrap_or_default();
            return pcap::parse_pcap(&data);
        }
        Vec::new()
    }

    /// A one-line-per-packet rendering of the capture, for failure messages.
    pub fn packets_summary(&self) -> String {
        pcap::summary(&self.packets())
    }

    // ---------------------------------------------------------------- nftables

    /// Drop, on s0, frames coming from `mac` (ingress) and frames sent to `mac`
    /// (egress): the server side then only hears and reaches the new MAC, as on a
    /// bond's Wi-Fi port after a MAC change.
    pub fn nft_drop_mac(&mut self, mac: &str) {
        self.nft_tables += 1;
        let table = format!("nbdrop{}", self.nft_tables);
        let rules = format!(
            "table netdev {table} {{\n\
             \tchain in {{ type filter hook ingress device \"s0\" priority 0; policy accept; ether saddr {mac} drop; }}\n\
             \tchain out {{ type filter hook egress device \"s0\" priority 0; policy accept; ether daddr {mac} drop; }}\n\
             }}\n"
        );
        self.nft(&rules);
    }

    /// Drop all DHCP (v4 and v6) traffic arriving on s0: the server is silent.
    pub fn nft_silence_server(&mut self) {
        self.nft_tables += 1;
        let table = format!("nbsilent{}", self.nft_tables);
        let rules = format!(
            "table netdev {table} {{\n\
             \tchain in {{ type filter hook ingress device \"s0\" priority 0; policy accept; udp dport {{ 67, 547 }} drop; }}\n\
             }}\n"
        );
        self.nft(&rules);
    }

    /// Remove every nftables rule in the server namespace.
    pub fn nft_flush(&mut self) {
        self.nft("flush ruleset\n");
    }

    fn nft(&self, script: &str) {
        let t = tools();
        let mut child = Command::new(&t.ip)
            .args(["netns", "exec", &self.sns])
            .arg(&t.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // ---------------------------------------------------------------- client side

    /// Start netbond on c0 (see [`netbond_cmd`]); output is appended to
    /// `<dir>/netbond.log`.
    pub fn start_netbond(&mut self, extra: &[&str]) -> Netbond {
        self.start_netbond_env(extra, &[])
    }

    /// [`Lab::start_netbond`] with extra environment variables (e.g. NOTIFY_SOCKET).
    pub fn start_netbond_env(&mut self, extra: &[&str], env: &[(&str, &Path)]) -> Netbond {
        self.netbond_runs += 1;
        let log_path = self.path("netbond.log");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        writeln!(f, "===== netbond run #{} {:?}", self.netbond_runs, extra).unwrap();
        let mut cmd = netbond_cmd(&self.cns, "c0", &self.dir, extra);
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn netbond");
        let pid = child.id();
        self.registry.lock().unwrap().insert(pid);
        Netbond {
            child,
            pid,
            log_path,
            registry: self.registry.clone(),
            status: None,
            started: Instant::now(),
        }
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
                Some(Addr4 {
                    addr: ai["local"].as_str()?.parse().ok()?,
                    prefix_len: ai["prefixlen"].as_u64()? as u8,
                    valid_lft: ai["valid_life_time"].as_u64().unwrap_or(u32::MAX as u64) as u32,
                    preferred_lft: ai["preferred_life_time"]
                        .as_u64()
                        .unwrap_or(u32::MAX as u64) as u32,
                })
            })
            .collect()
    }

    /// IPv6 addresses on c0 (all scopes; see [`Lab::global_addrs6`]).
    pub fn addrs6(&self) -> Vec<Addr6> {
        self.addr_infos("-6")
            .into_iter()
            .filter_map(|ai| {
                Some(Addr6 {
                    addr: ai["local"].as_str()?.parse().ok()?,
                    prefix_len: ai["prefixlen"].as_u64()? as u8,
                    valid_lft: ai["valid_life_time"].as_u64().unwrap_or(u32::MAX as u64) as u32,
                    preferred_lft: ai["preferred_life_time"]
                        .as_u64()
                        .unwrap_or(u32::MAX as u64) as u32,
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
        s += &format!(
            "--- dnsmasq.log (tail)\n{}\n",
            tail(&self.dnsmasq_log(), 30)
        );
        s += &format!(
            "--- leases\n{}\n",
            fs::read_to_string(self.leases_path()).unwrap_or_default()
        );
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

/// Does the named namespace exist?
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
        || check(Command::new(&tools().ip).args(["netns", "list"]))
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name))
}

/// Is a process with this PID alive (and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the parenthesised comm.
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Broadcast one ARP packet (`arp`, without the Ethernet header) from `fd`, a
/// `SOCK_DGRAM` packet socket for ETH_P_ARP, out of interface `ifindex`.
pub fn send_arp_broadcast(fd: i32, ifindex: u32, arp: &[u8]) {
    // SAFETY: an all-zero sockaddr_ll is valid; it is filled in below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = 0x0806u16.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: the buffer and the address are live locals with the lengths given.
    unsafe {
        libc::sendto(
            fd,
            arp.as_ptr().cast(),
            arp.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
    }
}
