//! The lab's plumbing: prerequisites, running commands, waiting, namespaces entered by
//! a thread, and small formatting helpers.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Generous default timeout for "this should happen soon" conditions; a loaded 2-core
/// CI machine must not flake, and [`wait_until`] returns as soon as the condition holds.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Absolute paths of the external programs the lab drives (the bare name when a
/// program is missing: [`require`] is what fails on that).
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

/// The programs, looked up once per test process.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let get = |name: &str| find_program(name).unwrap_or_else(|| PathBuf::from(name));
        Tools {
            ip: get("ip"),
            dnsmasq: get("dnsmasq"),
            nft: get("nft"),
            tcpdump: get("tcpdump"),
        }
    })
}

/// The Debian package that has `program`.
fn package(program: &str) -> &str {
    match program {
        "ip" => "iproute2",
        "dnsmasq" => "dnsmasq-base",
        "nft" => "nftables",
        other => other,
    }
}

/// Check once per test process (a test binary is one tier) that we are root and have
/// `programs`; panic (never skip) with what to do otherwise. `tier` names the cargo
/// test target and `what` the tests in the message.
pub fn require(tier: &str, what: &str, programs: &[&str]) {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECKED.get_or_init(|| {
        let mut problems = Vec::new();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            problems.push(format!(
                "these tests create network namespaces and must run as root \
                 (e.g. `sudo -E cargo test --test {tier}`)"
            ));
        }
        let missing: Vec<&str> = programs
            .iter()
            .copied()
            .filter(|p| find_program(p).is_none())
            .collect();
        if !missing.is_empty() {
            let packages: Vec<&str> = programs.iter().map(|p| package(p)).collect();
            problems.push(format!(
                "missing program(s): {}; install them with `apt-get install {}`",
                missing.join(", "),
                packages.join(" ")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    });
    if let Err(msg) = res {
        panic!("{what} cannot run: {msg}");
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

pub(super) fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

/// Run a command that must succeed; return its stdout.
pub(super) fn check(cmd: &mut Command) -> String {
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

pub(super) fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: plain syscall; the PID belongs to a child we have not reaped yet, so it
    // cannot have been reused by an unrelated process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Kill (SIGKILL) and reap a child.
pub(super) fn kill_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file (or a note that it does not exist).
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(b) => last_lines(&String::from_utf8_lossy(&b), n),
        Err(e) => format!("<{}: {e}>", path.display()),
    }
}

/// Parse colon-separated hex (`01:02:ab`) into bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    s.split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// Format bytes as colon-separated lower-case hex.
pub use netbond_proto::testkit::hex;

/// Format a MAC address.
pub fn mac_str(m: &[u8; 6]) -> String {
    hex(m)
}

/// Parse a MAC address.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v = parse_hex(s).unwrap_or_else(|| panic!("bad MAC {s:?}"));
    v.try_into().unwrap_or_else(|_| panic!("bad MAC {s:?}"))
}

/// Move the calling thread into network namespace `ns` (`/run/netns/<ns>`). Only for
/// threads the test spawned for that purpose: the namespace stays theirs until they end.
pub fn enter_netns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns only changes the calling thread's network namespace.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Run `f` on a new thread inside network namespace `ns`; the thread's handle.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let ns = ns.to_string();
    thread::spawn(move || {
        enter_netns(&ns);
        f()
    })
}

/// Run `f` on a thread inside network namespace `ns` and return its result (sockets
/// made there stay in that namespace).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in_netns(ns, f).join().expect("netns thread panicked")
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
