//! netbond as a process of the lab: its command line, its configuration file, and
//! the handle of a running one.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::util::{kill_child, kill_pid, tail, tools, wait_for};
use super::Lab;

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

impl Lab {
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
}
