//! Events (`netbond monitor`), hooks and the chrony sources file, against dnsmasq.
//!
//! Monitors are followed two ways: the CLI (`netbond monitor --json`, its output in a
//! file) and a raw connection to the control socket read by a thread of the test, which
//! also lets a test hold a monitor that never reads.

use crate::lab::{self, DnsmasqOpts, Lab, Netbond, TIMEOUT};
use crate::operate::cli;
use crate::{start_bound, wait_nb};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A monitor on a raw control-socket connection, read by a thread.
pub(crate) struct RawMonitor {
    events: Arc<Mutex<Vec<Value>>>,
    _stream: UnixStream,
}

fn socket(lab: &Lab) -> PathBuf {
    lab.path("run").join("netbond.sock")
}

/// Connect and subscribe; returns once the daemon has answered (subscribed). With
/// `read` false, nothing is ever read after the answer (a stuck monitor).
pub(crate) fn raw_monitor(lab: &Lab, nb: &mut Netbond, read: bool) -> RawMonitor {
    let path = socket(lab);
    let mut s = wait_nb(nb, TIMEOUT, "the control socket", || {
        UnixStream::connect(&path).ok()
    });
    s.write_all(b"{\"cmd\":\"monitor\"}\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    let ans: Value = serde_json::from_str(&first).expect("the answer is JSON");
    assert_eq!(ans["ok"], true, "monitor refused: {first}");
    let events = Arc::new(Mutex::new(Vec::new()));
    if read {
        let ev = events.clone();
        thread::spawn(move || {
            for line in r.lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("monitor line is not JSON ({e}): {line}"));
                ev.lock().unwrap().push(v);
            }
        });
    }
    RawMonitor { events, _stream: s }
}

impl RawMonitor {
    pub(crate) fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

/// `netbond monitor --json` with its output in `<lab>/<name>.out`.
struct CliMonitor {
    child: Child,
    out: PathBuf,
}

fn cli_monitor(lab: &Lab, name: &str) -> CliMonitor {
    let out = lab.path(&format!("{name}.out"));
    let err = lab.path(&format!("{name}.err"));
    let child = Command::new(lab::netbond_bin())
        .args(["monitor", "--json", "--run-dir"])
        .arg(lab.path("run"))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("run netbond monitor");
    assert!(
        lab::wait_until(TIMEOUT, || fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("following events")),
        "netbond monitor did not subscribe: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    CliMonitor { child, out }
}

impl CliMonitor {
    fn events(&self) -> Vec<Value> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("monitor line is not JSON ({e}): {l}"))
            })
            .collect()
    }
}

impl Drop for CliMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn types(evs: &[Value], prefix: &str) -> Vec<String> {
    evs.iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

pub(crate) fn count(evs: &[Value], t: &str) -> usize {
    evs.iter().filter(|e| e["type"] == t).count()
}

/// Every event has the documented envelope, and sequence numbers only grow.
pub(crate) fn assert_envelope(evs: &[Value]) {
    let mut last = 0;
    for e in evs {
        assert_eq!(e["v"], 1, "no version 1: {e}");
        let seq = e["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {e}"));
        assert!(seq > last, "sequence numbers not increasing at {e}");
        last = seq;
        let t = e["time"].as_str().unwrap_or_else(|| panic!("no time: {e}"));
        assert!(
            t.len() == 24 && t.ends_with('Z'),
            "time not RFC 3339 UTC: {t}"
        );
        assert!(e["type"].is_string(), "no type: {e}");
        assert!(e.get("interface").is_some(), "no interface: {e}");
    }
}

/// Bind, MAC-change re-confirmation, release, stop: two monitors at once (the CLI and a
/// raw connection) each see every DHCPv4 event exactly once, in order, with the
/// documented envelope, and the same sequence numbers.
#[test]
fn monitor_sees_bind_reconfirm_release_once_in_order() {
    let mut lab = Lab::new("evmon");
    let mut nb = lab.start_netbond(&["--no-dhcp6"]);
    let raw = raw_monitor(&lab, &mut nb, true);
    let cm = cli_monitor(&lab, "monitor");
    lab.start_dnsmasq(DnsmasqOpts::default());
    let a = wait_nb(&mut nb, TIMEOUT, "a DHCPv4 address", || {
        lab.addr4_in(50, 150)
    })
    .addr;
    wait_nb(&mut nb, TIMEOUT, "dhcp4-bound at the monitor", || {
        (count(&raw.events(), "dhcp4-bound") == 1).then_some(())
    });

    let old = lab.mac.clone();
    let new = format!("02:77:{:02x}:00:00:02", lab.n);
    lab.nft_drop_mac(&old);
    lab.set_mac(&new);
    wait_nb(&mut nb, TIMEOUT, "dhcp4-reconfirmed at the monitor", || {
        (count(&raw.events(), "dhcp4-reconfirmed") == 1).then_some(())
    });

    let o = cli(&lab, &["release", "--v4"]);
    assert!(o.status.success(), "release: {o:?}");
    wait_nb(&mut nb, TIMEOUT, "dhcp4-released at the monitor", || {
        (count(&raw.events(), "dhcp4-released") == 1).then_some(())
    });
    nb.kill(libc::SIGTERM);
    assert!(nb.wait_exit(TIMEOUT).is_some(), "netbond did not stop");
    let mut cm = cm;
    let st = lab::wait_for(TIMEOUT, || cm.child.try_wait().ok().flatten());
    assert!(
        st.is_some_and(|s| s.success()),
        "netbond monitor did not end with the daemon: {st:?}"
    );
    assert!(
        lab::wait_until(TIMEOUT, || raw
            .events()
            .last()
            .is_some_and(|e| e["type"] == "daemon-stop")),
        "no daemon-stop at the end: {:?}",
        types(&raw.events(), "")
    );

    let want = ["dhcp4-bound", "dhcp4-reconfirmed", "dhcp4-released"];
    for (who, evs) in [("raw", raw.events()), ("cli", cm.events())] {
        assert_envelope(&evs);
        assert_eq!(types(&evs, "dhcp4-"), want, "{who}: {evs:#?}");
        assert_eq!(types(&evs, "daemon-stop"), ["daemon-stop"], "{who}");
        // DNS: set by the lease, unchanged by the re-confirmation, cleared on release.
        assert_eq!(count(&evs, "dns-changed"), 2, "{who}: {evs:#?}");
        let get = |t: &str| evs.iter().find(|e| e["type"] == t).unwrap().clone();
        let b = get("dhcp4-bound");
        assert_eq!(b["interface"], "c0");
        assert_eq!(b["lease"]["address"], a.to_string());
        assert_eq!(b["lease"]["server"], lab.gw4().to_string());
        assert_eq!(b["lease"]["chaddr"], old);
        let r = get("dhcp4-reconfirmed");
        assert_eq!(r["lease"]["address"], a.to_string());
        assert_eq!(r["lease"]["chaddr"], new);
        assert!(r["ms"].is_u64(), "{r}");
        let rel = get("dhcp4-released");
        assert_eq!(rel["old"]["address"], a.to_string());
        assert!(rel.get("lease").is_none(), "{rel}");
    }
    let seqs = |evs: Vec<Value>| evs.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>();
    assert_eq!(seqs(raw.events()), seqs(cm.events()), "the monitors differ");
}

/// A monitor that never reads fills its queue and its socket; the daemon goes on
/// renewing at full speed (every renewal acknowledged in well under a second while
/// another monitor follows every event), and the stuck monitor, once it reads, is told
/// how many events it lost (`overflow`), which with what it got adds up to all of them.
#[test]
fn a_stuck_monitor_never_delays_renewals() {
    let mut lab = Lab::new("evslow");
    let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    let mut stuck = UnixStream::connect(socket(&lab)).unwrap();
    stuck.write_all(b"{\"cmd\":\"monitor\"}\n").unwrap();
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Read the answer (so it is subscribed before anything happens), then nothing.
    let mut r = BufReader::new(stuck);
    let mut answer = String::new();
    r.read_line(&mut answer).unwrap();
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let fast = raw_monitor(&lab, &mut nb, true);
    // Well past the queue (256) plus what the socket buffers hold.
    const RENEWALS: usize = 400;
    let mut slowest = Duration::ZERO;
    for i in 1..=RENEWALS {
        let t0 = Instant::now();
        let o = cli(&lab, &["renew", "--v4"]);
        assert!(o.status.success(), "renew #{i}: {o:?}");
        // A tight poll: 400 rounds of wait_nb's 50 ms would dominate the test.
        while count(&fast.events(), "dhcp4-renewed") < i {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "renewal #{i} did not reach the monitor; log:\n{}",
                lab::tail(&nb.log_path, 30)
            );
            thread::sleep(Duration::from_millis(2));
        }
        slowest = slowest.max(t0.elapsed());
    }
    eprintln!("slowest of {RENEWALS} renewals: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "a renewal took {slowest:?} with a stuck monitor"
    );
    let seen_fast = fast.events();
    assert_envelope(&seen_fast);
    assert_eq!(
        count(&seen_fast, "overflow"),
        0,
        "the reading monitor lost events"
    );

    // Now read the stuck one: its queue, then an overflow report.
    let mut got = Vec::new();
    let mut lost = None;
    for line in r.lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "overflow" {
            lost = v["lost"].as_u64();
            break;
        }
        got.push(v);
    }
    let lost = lost.expect("no overflow event after the stuck monitor's queue");
    let renewed = count(&got, "dhcp4-renewed") as u64;
    eprintln!("stuck monitor: {renewed} renewals delivered, {lost} events lost");
    assert!(lost > 0 && renewed < RENEWALS as u64);
    assert_eq!(
        got.len() as u64 + lost,
        seen_fast.len() as u64,
        "delivered + lost != every event"
    );
    nb.assert_alive();
}

/// Write an executable hook (mode 0755) into `dir`.
fn hook(dir: &Path, name: &str, body: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn env_file(path: &Path) -> Vec<(String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The hook's record (`<seq>.<event>.env` in `out`) of `event` once it has the
/// variable `key` (any record when `key` is empty); fails if netbond dies meanwhile.
fn hook_record(nb: &mut Netbond, out: &Path, event: &str, key: &str) -> PathBuf {
    let suffix = format!(".{event}.env");
    wait_nb(
        nb,
        TIMEOUT,
        &format!("the hook's record of {event}"),
        || {
            fs::read_dir(out)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(&suffix))
                .filter(|p| key.is_empty() || env_file(p).iter().any(|(k, _)| k == key))
        },
    )
}

/// Hooks run in name order on each event, with the documented variables (and nothing
/// of netbond's own environment) and the event's JSON on stdin.
#[test]
fn hooks_get_the_event_in_their_environment_and_stdin() {
    let mut lab = Lab::new("evhook");
    let hooks = lab.path("hooks.d");
    let out = lab.path("hook-out");
    fs::create_dir_all(&out).unwrap();
    let o = out.display();
    hook(
        &hooks,
        "10-record",
        &format!(
            "env > {o}/$NETBOND_SEQ.$NETBOND_EVENT.env\ncat > {o}/$NETBOND_SEQ.json\necho \"10 $NETBOND_SEQ\" >> {o}/order\n"
        ),
    );
    hook(
        &hooks,
        "20-after",
        &format!("echo \"20 $NETBOND_SEQ\" >> {o}/order\n"),
    );
    // Not executable, and a backup name: neither runs.
    fs::write(
        hooks.join("30-notexec"),
        format!("#!/bin/sh\ntouch {o}/bad\n"),
    )
    .unwrap();
    hook(&hooks, "40-backup~", &format!("touch {o}/bad\n"));
    lab.write_config(&format!(
        "[hooks]\ndir = \"{}\"\nrun_as_root = true\ntimeout = 5\n",
        hooks.display()
    ));
    let opts = DnsmasqOpts {
        extra: vec![format!("--dhcp-option=option:ntp-server,{}", lab.gw4())],
        ..DnsmasqOpts::default()
    };
    let (mut nb, a) = start_bound(&mut lab, opts, &["--no-dhcp6"]);
    let bound = hook_record(&mut nb, &out, "dhcp4-bound", "");
    // The file is written by `env >`: wait until the hook finished (its JSON too).
    let seq: u64 = bound
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let order = out.join("order");
    wait_nb(&mut nb, TIMEOUT, "both hooks for the bound event", || {
        fs::read_to_string(&order)
            .ok()?
            .contains(&format!("20 {seq}\n"))
            .then_some(())
    });
    let env = env_file(&bound);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing from the hook environment: {env:?}"))
    };
    let gw = lab.gw4().to_string();
    assert_eq!(get("REASON"), "BOUND");
    assert_eq!(get("NETBOND_EVENT"), "dhcp4-bound");
    assert_eq!(get("NETBOND_EVENT_VERSION"), "1");
    assert_eq!(get("INTERFACE"), "c0");
    assert_eq!(get("new_ip_address"), a.to_string());
    assert_eq!(get("new_subnet_mask"), "255.255.255.0");
    assert_eq!(get("new_prefix_length"), "24");
    assert_eq!(get("new_routers"), gw);
    assert_eq!(get("new_domain_name_servers"), gw);
    assert_eq!(get("new_ntp_servers"), gw);
    assert_eq!(get("new_dhcp_lease_time"), "120");
    assert_eq!(get("new_dhcp_server_identifier"), gw);
    assert_eq!(get("new_interface_mtu"), "1400");
    assert!(get("PATH").starts_with("/usr/local/sbin"));
    // The environment was cleared: netbond's own (set by the lab) is not passed on.
    assert!(
        !env.iter()
            .any(|(k, _)| k == "RUST_BACKTRACE" || k.starts_with("old_")),
        "unexpected variables: {env:?}"
    );
    let json: Value =
        serde_json::from_str(&fs::read_to_string(out.join(format!("{seq}.json"))).unwrap())
            .expect("the hook's stdin is the event's JSON");
    assert_eq!(json["type"], "dhcp4-bound");
    assert_eq!(json["seq"], seq);
    assert_eq!(json["lease"]["address"], a.to_string());
    // Name order for every event.
    let lines: Vec<String> = fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let pos = |l: String| lines.iter().position(|x| *x == l).unwrap();
    assert!(
        pos(format!("10 {seq}")) < pos(format!("20 {seq}")),
        "{lines:?}"
    );
    assert!(
        !out.join("bad").exists(),
        "a non-executable or backup hook ran"
    );

    // A restart (kill -9, same state): the saved lease confirmed is REBOOT.
    nb.kill(libc::SIGKILL);
    assert!(nb.wait_exit(TIMEOUT).is_some());
    let mut nb = lab.start_netbond(&["--no-dhcp6"]);
    let reboot = hook_record(&mut nb, &out, "dhcp4-rebooted", "new_ip_address");
    let env = env_file(&reboot);
    assert!(env.contains(&("REASON".into(), "REBOOT".into())), "{env:?}");
    assert!(
        env.contains(&("new_ip_address".into(), a.to_string())),
        "{env:?}"
    );

    // Release: old_* and RELEASE.
    assert!(cli(&lab, &["release", "--v4"]).status.success());
    let rel = hook_record(&mut nb, &out, "dhcp4-released", "old_ip_address");
    let env = env_file(&rel);
    assert!(
        env.contains(&("REASON".into(), "RELEASE".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("old_ip_address".into(), a.to_string())),
        "{env:?}"
    );
    assert!(!env.iter().any(|(k, _)| k == "new_ip_address"), "{env:?}");
}

/// Hooks are refused while netbond runs as root without `run_as_root`, and say so.
#[test]
fn hooks_are_refused_as_root_unless_configured() {
    let mut lab = Lab::new("evhookroot");
    let hooks = lab.path("hooks.d");
    let mark = lab.path("ran");
    hook(&hooks, "10-touch", &format!("touch {}\n", mark.display()));
    lab.write_config(&format!("[hooks]\ndir = \"{}\"\n", hooks.display()));
    let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    assert!(
        nb.log().contains("are not run: netbond runs as root"),
        "no refusal logged:\n{}",
        nb.log()
    );
    thread::sleep(Duration::from_secs(1));
    assert!(!mark.exists(), "a hook ran as root without run_as_root");
    nb.assert_alive();
}

/// A hook that hangs (and leaves a child behind) does not hold up a renewal, and at
/// the timeout it is killed with its whole process group.
#[test]
fn a_hanging_hook_does_not_delay_a_renewal_and_is_killed() {
    let mut lab = Lab::new("evhang");
    let hooks = lab.path("hooks.d");
    let out = lab.path("hook-out");
    fs::create_dir_all(&out).unwrap();
    let o = out.display();
    // Only the first event hangs (so the renewal's hook run is not the one killed).
    hook(
        &hooks,
        "10-hang",
        &format!(
            "[ \"$NETBOND_EVENT\" = dhcp4-bound ] || exit 0\nsleep 300 &\necho $! > {o}/child\necho $$ > {o}/pid\nsleep 300\n"
        ),
    );
    lab.write_config(&format!(
        "[hooks]\ndir = \"{}\"\nrun_as_root = true\ntimeout = 6\n",
        hooks.display()
    ));
    let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    let read_pid =
        |f: &str| -> Option<u32> { fs::read_to_string(out.join(f)).ok()?.trim().parse().ok() };
    let pid = wait_nb(&mut nb, TIMEOUT, "the hanging hook", || read_pid("pid"));
    let child = wait_nb(&mut nb, TIMEOUT, "the hook's child", || read_pid("child"));
    let t0 = Instant::now();
    assert!(cli(&lab, &["renew", "--v4"]).status.success());
    let log = nb.log_path.clone();
    let logged = |what: &str| fs::read_to_string(&log).unwrap_or_default().contains(what);
    wait_nb(
        &mut nb,
        Duration::from_secs(3),
        "a renewal while the hook hangs",
        || logged("dhcp4: c0: renewed").then_some(()),
    );
    let took = t0.elapsed();
    assert!(
        lab::pid_alive(pid),
        "the hook ended early; the test proves nothing"
    );
    assert!(took < Duration::from_secs(2), "the renewal took {took:?}");
    wait_nb(&mut nb, TIMEOUT, "the hook killed at its timeout", || {
        logged("killed after 6 s").then_some(())
    });
    assert!(
        lab::wait_until(Duration::from_secs(5), || !lab::pid_alive(pid)
            && !lab::pid_alive(child)),
        "the hook ({pid}) or its child ({child}) still runs"
    );
    nb.assert_alive();
}

/// NTP servers of the lease go to chrony's sourcedir (`server ADDR iburst`) and to
/// systemd-timesyncd as a runtime drop-in (`[Time]`, `NTP=ADDR`; here the lab's
/// directory, whose parent exists), and both files go with the lease.
#[test]
fn ntp_files_follow_the_lease() {
    let mut lab = Lab::new("evntp");
    let dir = lab.path("chrony-dhcp");
    let tdir = lab.path("timesyncd.conf.d");
    lab.write_config(&format!(
        "[ntp]\nchrony_dir = \"{}\"\ntimesyncd_dir = \"{}\"\n",
        dir.display(),
        tdir.display()
    ));
    let opts = DnsmasqOpts {
        extra: vec![format!("--dhcp-option=option:ntp-server,{}", lab.gw4())],
        ..DnsmasqOpts::default()
    };
    let (mut nb, _a) = start_bound(&mut lab, opts, &["--no-dhcp6"]);
    let gw = lab.gw4();
    for (file, want) in [
        (dir.join("c0.sources"), vec![format!("server {gw} iburst")]),
        (
            tdir.join("netbond-c0.conf"),
            vec!["[Time]".to_string(), format!("NTP={gw}")],
        ),
    ] {
        let text = wait_nb(&mut nb, TIMEOUT, "the NTP file", || {
            fs::read_to_string(&file).ok()
        });
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines, want, "{}: {text}", file.display());
    }
    assert!(cli(&lab, &["release", "--v4"]).status.success());
    for d in [&dir, &tdir] {
        wait_nb(&mut nb, TIMEOUT, "the NTP files removed on release", || {
            fs::read_dir(d).ok()?.next().is_none().then_some(())
        });
    }
    nb.assert_alive();
}

/// Send one Router Advertisement from s0 (server namespace) to all nodes: no prefix,
/// M and O off (a SLAAC-only network), with RFC 8106 RDNSS `dns` and DNSSL `domain`,
/// both with lifetime `life` seconds.
fn send_ra(lab: &Lab, dns: std::net::Ipv6Addr, domain: &str, life: u32) {
    let mut rdnss = vec![25, 3, 0, 0];
    rdnss.extend_from_slice(&life.to_be_bytes());
    rdnss.extend_from_slice(&dns.octets());
    let mut dnssl = vec![31, 0, 0, 0];
    dnssl.extend_from_slice(&life.to_be_bytes());
    for label in domain.split('.') {
        dnssl.push(label.len() as u8);
        dnssl.extend_from_slice(label.as_bytes());
    }
    dnssl.push(0);
    while dnssl.len() % 8 != 0 {
        dnssl.push(0);
    }
    dnssl[1] = (dnssl.len() / 8) as u8;
    rdnss.extend_from_slice(&dnssl);
    send_ra_options(lab, &rdnss);
}

/// Send one Router Advertisement from s0 to all nodes: no prefix, M and O off, with
/// `options` (whole ND options, type and length included) after the header.
pub(crate) fn send_ra_options(lab: &Lab, options: &[u8]) {
    use socket2::{Domain, Protocol, Socket, Type};
    let sns = lab.sns.clone();
    let options = options.to_vec();
    thread::spawn(move || {
        crate::lab::enter_netns(&sns);
        // SAFETY: if_nametoindex with a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(c"s0".as_ptr()) };
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        s.set_multicast_hops_v6(255).unwrap();
        s.set_multicast_if_v6(ifindex).unwrap();
        let mut m = vec![134, 0, 0, 0, 64, 0, 0, 0];
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&options);
        let dst = std::net::SocketAddrV6::new("ff02::1".parse().unwrap(), 0, 0, ifindex);
        // Refused while the link is not ready yet: the caller sends again.
        let _ = s.send_to(&m, &std::net::SocketAddr::V6(dst).into());
    })
    .join()
    .unwrap();
}

/// On a SLAAC-only network (no DHCPv6 server), the DNS server and search domain of
/// router advertisements (RFC 8106) reach resolv.conf, and leave it when their lifetime
/// runs out without a new RA.
#[test]
fn ra_dns_reaches_resolv_conf_and_expires() {
    let mut lab = Lab::new("evrdnss");
    let mut nb = lab.start_netbond(&["--no-dhcp4"]);
    let dns: std::net::Ipv6Addr = format!("fd77:{:x}::53", lab.n).parse().unwrap();
    let resolv = lab.resolv_conf();
    let has = |resolv: &Path| {
        let t = fs::read_to_string(resolv).unwrap_or_default();
        t.contains(&format!("nameserver {dns}")) && t.contains("ra.test")
    };
    // The watcher opens with the interface; RAs sent before it are not seen: resend.
    let mut sent = Instant::now() - Duration::from_secs(10);
    let seen = lab::wait_until(TIMEOUT, || {
        if sent.elapsed() > Duration::from_secs(1) {
            send_ra(&lab, dns, "ra.test", 6);
            sent = Instant::now();
        }
        has(&resolv)
    });
    nb.assert_alive();
    assert!(
        seen,
        "RA DNS not in resolv.conf:\n{}\nlog:\n{}",
        fs::read_to_string(&resolv).unwrap_or_default(),
        lab::tail(&nb.log_path, 30)
    );
    let at = Instant::now();
    let gone = wait_nb(&mut nb, TIMEOUT, "the RA DNS to expire", || {
        (!has(&resolv)).then(Instant::now)
    });
    let after = gone - at;
    // Sent at most 1 s before it was seen, with a 6 s lifetime.
    assert!(
        after >= Duration::from_secs(4),
        "RA DNS left after {after:?}, before its lifetime"
    );
    assert!(
        after < Duration::from_secs(9),
        "RA DNS left after {after:?}"
    );
}

/// The host names dnsmasq recorded in its lease file: (v4, v6), `*` for none.
fn lease_names(lab: &Lab) -> Option<(String, String)> {
    let l = lab.leases();
    let v4 = l.v4.iter().find_map(|x| match x {
        lab::Lease::V4 { hostname, .. } => Some(hostname.clone()),
        _ => None,
    })?;
    let v6 = l.v6.iter().find_map(|x| match x {
        lab::Lease::V6 { hostname, .. } => Some(hostname.clone()),
        _ => None,
    })?;
    Some((v4, v6))
}

/// This machine's host name as netbond sends it by default (`*`: not sendable).
fn system_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    assert_eq!(
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    let end = buf.iter().position(|&b| b == 0).unwrap();
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    if name == "localhost" || !name.split('.').all(label_ok) {
        "*".into()
    } else {
        // dnsmasq keeps the first label of a qualified name from another domain.
        name.split('.').next().unwrap().to_string()
    }
}

/// Both servers see the host name by default (v4 option 12, v6 option 39), a fixed
/// name from the configuration (a qualified one goes in option 81), and none when off.
#[test]
fn host_name_is_sent_by_default_fixed_or_off() {
    let run = |name: &str, config: &str| -> (String, String) {
        let mut lab = Lab::new(name);
        lab.write_config(config);
        let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
        let names = wait_nb(&mut nb, TIMEOUT, "v4 and v6 leases at dnsmasq", || {
            lease_names(&lab)
        });
        if names.0 != names.1 || names.0 == "*" {
            eprintln!("{}", lab::tail(&lab.dnsmasq_log(), 40));
        }
        names
    };
    let sys = system_host_name();
    assert_eq!(run("hostdef", ""), (sys.clone(), sys), "default");
    assert_eq!(
        run("hostfix", "[dhcp4]\nhostname = \"box-7\"\n"),
        ("box-7".into(), "box-7".into()),
        "fixed"
    );
    // Qualified: option 81 (v4) and a full name in option 39; dnsmasq, which serves no
    // domain here, keeps the first label.
    assert_eq!(
        run("hostfqdn", "[dhcp4]\nhostname = \"box-8.example.test\"\n"),
        ("box-8".into(), "box-8".into()),
        "qualified"
    );
    let off = run(
        "hostoff",
        "[dhcp4]\nhostname = \"box-7\"\nsend_hostname = false\n[dhcp6]\nsend_hostname = false\n",
    );
    assert_eq!(off, ("*".into(), "*".into()), "off");
}

/// An address another host answers for: the monitor sees it bound, the conflict (with
/// the other host's MAC), the lease lost as declined, then another address bound.
#[test]
fn monitor_sees_a_conflict_declined_and_a_new_lease() {
    let mut lab = Lab::new("evconflict");
    let mut nb = lab.start_netbond(&["--no-dhcp6"]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let defender = crate::faults::arp_defender(lab.sns.clone(), stop.clone());
    thread::sleep(Duration::from_millis(200));
    lab.start_dnsmasq(DnsmasqOpts::default());
    // RFC 2131 3.1.5: at least 10 s before the next DISCOVER.
    wait_nb(
        &mut nb,
        Duration::from_secs(40),
        "a second dhcp4-bound",
        || (count(&mon.events(), "dhcp4-bound") == 2).then_some(()),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let claimed = std::net::Ipv4Addr::from(defender.join().unwrap().expect("no probe"));
    let evs = mon.events();
    assert_envelope(&evs);
    assert_eq!(
        types(&evs, "dhcp4-"),
        ["dhcp4-bound", "dhcp4-conflict", "dhcp4-lost", "dhcp4-bound"],
        "{evs:#?}"
    );
    let of = |t: &str| {
        evs.iter()
            .filter(|e| e["type"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let bound = of("dhcp4-bound");
    assert_eq!(bound[0]["lease"]["address"], claimed.to_string());
    assert_ne!(bound[1]["lease"]["address"], claimed.to_string());
    let c = &of("dhcp4-conflict")[0];
    assert_eq!(c["address"], claimed.to_string());
    assert_ne!(c["mac"], lab.mac, "the conflict names our own MAC");
    let lost = &of("dhcp4-lost")[0];
    assert_eq!(lost["reason"], "declined");
    assert_eq!(lost["old"]["address"], claimed.to_string());
}

/// User classes, extra requested codes and an extra option from the configuration are
/// on the wire as the server receives them (captured at the server's side): DHCPv4
/// option 77, option 224 and code 252 in the parameter list; DHCPv6 option 15 and code
/// 103 in the Option Request Option.
#[test]
fn user_class_and_extra_options_reach_the_server() {
    let mut lab = Lab::new("evopts");
    lab.write_config(
        "[dhcp4]\nuser_class = \"kiosk\"\nrequest = [252]\nsend = { 224 = \"de:ad:be:ef\" }\n\
         [dhcp6]\nuser_class = \"kiosk6\"\nrequest = [103]\n",
    );
    lab.start_dnsmasq(DnsmasqOpts::default());
    lab.capture();
    let mut nb = lab.start_netbond(&[]);
    wait_nb(&mut nb, TIMEOUT, "v4 and v6 addresses", || {
        lab.addr4_in(50, 150)?;
        lab.addr6_in(0x100, 0x1ff)
    });
    // tcpdump writes what the kernel has handed it: let the last exchange reach it.
    let pkts = lab::wait_for(TIMEOUT, || {
        let p = lab.packets();
        (!crate::v6_sent(&p, 1).is_empty()).then_some(p)
    })
    .unwrap_or_else(|| lab.packets());
    lab.stop_capture();
    let disc = crate::v4_sent(&pkts, crate::pcap::DHCPDISCOVER);
    let d = disc.first().expect("no DISCOVER captured").v4().unwrap();
    let opt = |c: u8| d.options.iter().find(|o| o.0 == c).map(|o| o.1.clone());
    assert_eq!(opt(77), Some(b"\x05kiosk".to_vec()), "user class");
    assert_eq!(opt(224), Some(vec![0xde, 0xad, 0xbe, 0xef]), "option 224");
    assert!(
        opt(55).is_some_and(|prl| prl.contains(&252)),
        "PRL {:?}",
        opt(55)
    );
    let sol = crate::v6_sent(&pkts, 1);
    let s = sol
        .first()
        .unwrap_or_else(|| panic!("no Solicit captured:\n{}", crate::pcap::summary(&pkts)))
        .v6()
        .unwrap();
    let opt6 = |c: u16| s.options.iter().find(|o| o.0 == c).map(|o| o.1.clone());
    assert_eq!(opt6(15), Some(b"\x00\x06kiosk6".to_vec()), "v6 user class");
    let oro = opt6(6).expect("no ORO");
    assert!(oro.chunks(2).any(|c| c == [0, 103]), "ORO {oro:?}");
    nb.assert_alive();
}

/// RFC 4039 with dnsmasq's `--dhcp-rapid-commit`: DISCOVER carries option 80, the
/// server's ACK answers it at once, and netbond binds without OFFER/REQUEST.
#[test]
fn rapid_commit_binds_in_two_messages() {
    let mut lab = Lab::new("evrapid");
    lab.write_config("[dhcp4]\nrapid_commit = true\n");
    lab.start_dnsmasq(DnsmasqOpts {
        extra: vec!["--dhcp-rapid-commit".into()],
        ..DnsmasqOpts::default()
    });
    lab.capture();
    let mut nb = lab.start_netbond(&["--no-dhcp6"]);
    let a = wait_nb(&mut nb, TIMEOUT, "a DHCPv4 address", || {
        lab.addr4_in(50, 150)
    })
    .addr;
    let pkts = lab::wait_for(TIMEOUT, || {
        let p = lab.packets();
        p.iter()
            .any(|x| x.v4_type() == Some(crate::pcap::DHCPACK))
            .then_some(p)
    })
    .unwrap_or_else(|| lab.packets());
    lab.stop_capture();
    let summary = crate::pcap::summary(&pkts);
    let disc = crate::v4_sent(&pkts, crate::pcap::DHCPDISCOVER);
    let d = disc
        .first()
        .unwrap_or_else(|| panic!("no DISCOVER:\n{summary}"));
    assert!(
        d.v4().unwrap().options.iter().any(|o| o.0 == 80),
        "no option 80 in DISCOVER"
    );
    assert!(
        crate::v4_sent(&pkts, crate::pcap::DHCPREQUEST).is_empty(),
        "a REQUEST was sent:\n{summary}"
    );
    let ack = pkts
        .iter()
        .find(|x| x.v4_type() == Some(crate::pcap::DHCPACK))
        .unwrap_or_else(|| panic!("no ACK:\n{summary}"));
    assert_eq!(ack.v4().unwrap().yiaddr, a);
    assert!(ack.v4().unwrap().options.iter().any(|o| o.0 == 80));
    nb.assert_alive();
}
