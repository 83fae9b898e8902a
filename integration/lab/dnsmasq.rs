//! dnsmasq in the server namespace: its options, start/stop/restart, and its lease file.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use super::util::{kill_child, tail, tools, wait_until, TIMEOUT};
use super::Lab;

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

impl Lab {
    // ---------------------------------------------------------------- dnsmasq

    /// Start dnsmasq in the server namespace (stopping a running one first) and wait
    /// until it has set up its DHCP ranges.
    pub fn start_dnsmasq(&mut self, opts: DnsmasqOpts) {
        self.stop_dnsmasq();
        let t = tools();
        let (o, p, n) = (self.spec.octet, self.spec.prefix6, self.n);
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
                "--dhcp-range=10.{o}.{n}.{},10.{o}.{n}.{},255.255.255.0,{}",
                opts.range4.0, opts.range4.1, opts.lease
            ),
            "--dhcp-option=option:mtu,1400".into(),
            format!(
                "--dhcp-option=option:classless-static-route,192.168.{n}.0/24,10.{o}.{n}.1,0.0.0.0/0,10.{o}.{n}.1"
            ),
            format!("--dhcp-option=option:dns-server,10.{o}.{n}.1"),
            format!("--dhcp-leasefile={}", self.leases_path().display()),
            format!("--pid-file={}", self.path("dnsmasq.pid").display()),
            "--log-dhcp".into(),
            format!("--log-facility={}", self.dnsmasq_log().display()),
        ];
        if let Some((lo, hi)) = opts.range6 {
            args.push(format!(
                "--dhcp-range={p:x}:{n:x}::{lo},{p:x}:{n:x}::{hi},64,{}",
                opts.lease
            ));
            args.push("--enable-ra".into());
            args.push(format!("--dhcp-option=option6:dns-server,[{p:x}:{n:x}::1]"));
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
}
