//! `netbond demo`: a throwaway lab that shows a failover live, then cleans up.
//!
//! Two network namespaces joined by veth pairs: a "LAN" with a bridge and dnsmasq, and
//! a "host" where netbond runs. When the kernel has the bonding driver the host gets a
//! real bond of two ports and the demo unplugs the primary; otherwise it shows the same
//! mechanism on one interface by changing its MAC while the server (through nftables,
//! when available) hears only the new MAC. Nothing outside the two namespaces is
//! touched, and only processes the demo started are stopped, by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Lab {
    lan: String,
    host: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on the PID of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = run("ip", &["netns", "del", &self.host]);
        let _ = run("ip", &["netns", "del", &self.lan]);
        let _ = std::fs::remove_dir_all(&self.dir);
        println!("\nlab removed (namespaces {} and {})", self.lan, self.host);
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

fn wait_log(path: &Path, needle: &str, timeout: Duration) -> Option<String> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Some(line.to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn section(title: &str) {
    println!("\n=== {title}");
}

/// Run the demo; returns the process exit code.
pub fn main() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbond demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the demo needs once netbond runs.
struct Running {
    exe: String,
    /// A real bond (else one interface whose MAC changes).
    bond: bool,
    iface: &'static str,
    log: PathBuf,
    run_dir: String,
}

fn demo() -> Result<(), String> {
    let exe = preflight()?;
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("netbond-demo-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut lab = Lab {
        lan: format!("nbdemo-lan-{id}"),
        host: format!("nbdemo-host-{id}"),
        dir,
        children: Vec::new(),
    };
    section("building the lab");
    build_lan(&mut lab)?;
    let r = start_netbond(&mut lab, exe)?;

    section("netbond starting");
    let t0 = Instant::now();
    let bound = wait_log(
        &r.log,
        &format!("dhcp4: {}: bound", r.iface),
        Duration::from_secs(20),
    )
    .ok_or("no DHCPv4 lease within 20 s; see the log above")?;
    println!("{bound}");
    println!("(lease after {} ms)", t0.elapsed().as_millis());
    // Give DHCPv6 a moment too, so the status below shows both families.
    if let Some(l) = wait_log(
        &r.log,
        &format!("dhcp6: {}: bound", r.iface),
        Duration::from_secs(5),
    ) {
        println!("{l}");
    }
    section("netbond status");
    status(&r);

    failover(&lab, &r)?;
    section("netbond status after the failover");
    status(&r);

    stop_release(&mut lab, &r);
    Ok(())
}

/// The deliberate stop: a plain SIGTERM (systemctl stop/restart) would leave the lab's
/// addresses and bond in place for the next start, so the demo shows
/// `netbond stop --release` and the last lines of netbond's log.
fn stop_release(lab: &mut Lab, r: &Running) {
    section("netbond stop --release (release, deconfigure, delete the bond)");
    let stopped = Command::new(&r.exe)
        .args(["stop", "--release", "--run-dir", &r.run_dir])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| format!("netbond stop --release: {e}\n"));
    print!("{stopped}");
    if let Some(c) = lab.children.get_mut(1) {
        // The daemon exits by itself after the stop; SIGTERM only if the stop failed.
        if !matches!(c.try_wait(), Ok(Some(_))) && !stopped.contains("released") {
            // SAFETY: our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let _ = c.wait();
    }
    let text = std::fs::read_to_string(&r.log).unwrap_or_default();
    for l in text
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        println!("{l}");
    }
}

/// Root, the tools, and this program's path (netbond runs itself in the lab).
fn preflight() -> Result<String, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "the demo builds network namespaces: run it as root (sudo netbond demo)".into(),
        );
    }
    for (cmd, pkg) in [("ip", "iproute2"), ("dnsmasq", "dnsmasq-base")] {
        if !have(cmd) {
            return Err(format!("{cmd} is missing: apt-get install {pkg}"));
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(exe.to_string_lossy().into_owned())
}

/// The two namespaces, the LAN's bridge with two veth pairs to the host (`eth0`,
/// `eth1`), and dnsmasq serving both families on the bridge.
fn build_lan(lab: &mut Lab) -> Result<(), String> {
    let (lan, host) = (lab.lan.clone(), lab.host.clone());
    run("ip", &["netns", "add", &lan])?;
    run("ip", &["netns", "add", &host])?;
    ns(&lan, &["ip", "link", "add", "br0", "type", "bridge"])?;
    ns(&lan, &["ip", "addr", "add", "10.123.0.1/24", "dev", "br0"])?;
    ns(&lan, &["ip", "addr", "add", "fd12:3::1/64", "dev", "br0"])?;
    ns(&lan, &["ip", "link", "set", "br0", "up"])?;
    ns(&lan, &["ip", "link", "set", "lo", "up"])?;
    ns(&host, &["ip", "link", "set", "lo", "up"])?;
    for i in 0..2 {
        let (l, h) = (format!("lan{i}"), format!("eth{i}"));
        run(
            "ip",
            &[
                "-n", &lan, "link", "add", &l, "type", "veth", "peer", "name", &h, "netns", &host,
            ],
        )?;
        ns(&lan, &["ip", "link", "set", &l, "master", "br0", "up"])?;
    }
    let leases = lab.dir.join("leases");
    let dnsmasq = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan,
            "dnsmasq",
            "-k",
            "-C",
            "/dev/null",
            "--port=0",
            "--no-ping",
        ])
        .args([
            "--bind-interfaces",
            "--interface=br0",
            "--dhcp-authoritative",
        ])
        .args(["--dhcp-range=10.123.0.50,10.123.0.150,255.255.255.0,2m"])
        .args(["--dhcp-range=fd12:3::100,fd12:3::1ff,64,2m", "--enable-ra"])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start dnsmasq: {e}"))?;
    lab.children.push(dnsmasq);
    println!("LAN namespace {lan}: bridge br0 10.123.0.1/24 + fd12:3::1/64, dnsmasq");
    Ok(())
}

/// Configure and start netbond in the host namespace: on a bond of `eth0` and
/// `eth1` when this kernel has the driver, else on `eth0` alone.
fn start_netbond(lab: &mut Lab, exe: String) -> Result<Running, String> {
    let (host, dir) = (lab.host.clone(), lab.dir.clone());
    // A real bond when this kernel has the driver; the MAC-change fallback otherwise.
    let bond = ns(&host, &["ip", "link", "add", "probe0", "type", "bond"]).is_ok();
    if bond {
        let _ = ns(&host, &["ip", "link", "del", "probe0"]);
    }
    let config = dir.join("netbond.toml");
    let iface = if bond { "bond0" } else { "eth0" };
    let mut toml = String::from("[dhcp6]\nmode = \"stateful\"\n");
    if bond {
        toml.push_str("[bond]\nname = \"bond0\"\nprimary = \"eth0\"\nports = [\"eth*\"]\n");
        println!(
            "host namespace {host}: eth0 + eth1 (the kernel has bonding: netbond will bond them)"
        );
    } else {
        ns(&host, &["ip", "link", "set", "eth1", "down"])?;
        println!(
            "host namespace {host}: eth0 (this kernel has no bonding driver: the failover is shown as the MAC change a bond makes)"
        );
    }
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let log = dir.join("netbond.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let run_dir = dir.join("run").to_string_lossy().into_owned();
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        host,
        exe.clone(),
        "run".into(),
    ];
    if !bond {
        args.extend(["--iface".into(), iface.into()]);
    }
    args.extend([
        "--config".into(),
        config.to_string_lossy().into_owned(),
        "--state-dir".into(),
        dir.join("state").to_string_lossy().into_owned(),
        "--run-dir".into(),
        run_dir.clone(),
        "--resolv-conf".into(),
        dir.join("resolv.conf").to_string_lossy().into_owned(),
    ]);
    let child = Command::new("ip")
        .args(&args)
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start netbond: {e}"))?;
    lab.children.push(child);
    Ok(Running {
        exe,
        bond,
        iface,
        log,
        run_dir,
    })
}

/// Print `netbond status`.
fn status(r: &Running) {
    let out = Command::new(&r.exe)
        .args(["status", "--run-dir", &r.run_dir])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    print!("{out}");
}

/// Unplug the primary (bond), or change the MAC while nftables lets the server hear
/// only the new one; then wait for netbond's re-confirmation.
fn failover(lab: &Lab, r: &Running) -> Result<(), String> {
    let (lan, host) = (&lab.lan, &lab.host);
    section(if r.bond {
        "failover: unplugging the primary (lan0 down)"
    } else {
        "failover: the interface's MAC changes, the server hears only the new MAC"
    });
    let t1 = Instant::now();
    if r.bond {
        ns(lan, &["ip", "link", "set", "lan0", "down"])?;
    } else {
        let old = ns(host, &["cat", "/sys/class/net/eth0/address"])?
            .trim()
            .to_string();
        if have("nft") {
            ns(lan, &["nft", "add", "table", "netdev", "nbdemo"])?;
            let chain = "{ type filter hook ingress device lan0 priority 0 ; }";
            ns(
                lan,
                &["nft", "add", "chain", "netdev", "nbdemo", "drop_old", chain],
            )?;
            let rule = [
                "nft", "add", "rule", "netdev", "nbdemo", "drop_old", "ether", "saddr", &old,
                "drop",
            ];
            ns(lan, &rule)?;
        }
        ns(
            host,
            &["ip", "link", "set", "eth0", "address", "02:de:40:00:00:02"],
        )?;
    }
    match wait_log(&r.log, "re-confirmed", Duration::from_secs(20)) {
        Some(l) => println!(
            "{l}\n(seen by the demo {} ms after the change)",
            t1.elapsed().as_millis()
        ),
        None => println!("no re-confirmation within 20 s: see {}", r.log.display()),
    }
    Ok(())
}
