//! `WpaSupervisor`: runs (Supervise) or follows (Attach) the wpa_supplicant of one
//! interface, keeps an ATTACHed control connection, publishes a `WpaState` on a watch
//! channel and takes commands from `WpaHandle`s.
//!
//! Child handling needs no tokio "process" feature: the child is a
//! `std::process::Child`; its exit is awaited through a pidfd (`pidfd_open`, Linux 5.3+)
//! registered with tokio's reactor, falling back to polling `try_wait` every 250 ms. It is
//! reaped with `try_wait` (`waitpid` on its own PID only), so netbond must not reap
//! children with `waitpid(-1)` elsewhere. Signals go only to that PID, and only while it
//! is not yet reaped, so the PID cannot have been reused. The child runs in its own
//! process group (a terminal's Ctrl-C reaches netbond only) with
//! `PR_SET_PDEATHSIG(SIGTERM)`, so it does not outlive netbond.

mod child;
mod handle;

use child::{describe_exit, wait_child, Child};
pub use handle::WpaHandle;

use super::ctrl::{fmt_duration, MonitorEvent, WpaMonitor, DEFAULT_TIMEOUT};
use super::parse::{self, WpaEvent};
use crate::logging::{debug, error, info, warn};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// wpa_supplicant's usual control directory (`/var/run/wpa_supplicant` is the same place
/// on current systems, and what `wpa_cli` uses by default).
pub const DEFAULT_CTRL_DIR: &str = "/run/wpa_supplicant";

/// Restart backoff: first delay, cap, and the uptime after which it starts over.
const RESTART_MIN: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(60);
const RESTART_RESET_UPTIME: Duration = Duration::from_secs(60);
/// Stop sequence: wait this long after TERMINATE, then after SIGTERM, then after SIGKILL.
const STOP_STEP: Duration = Duration::from_secs(2);

/// What to supervise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WpaConfig {
    /// The interface wpa_supplicant runs on.
    pub ifname: String,
    pub mode: WpaMode,
    /// Start at once (`true`), or wait for `WpaHandle::start`.
    pub start: bool,
}

/// How netbond relates to wpa_supplicant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WpaMode {
    /// netbond runs wpa_supplicant as its child.
    Supervise(SuperviseConfig),
    /// Someone else runs wpa_supplicant (systemd's wpa_supplicant@.service, ...); netbond
    /// connects to `<ctrl_dir>/<ifname>`, and reconnects every 1 s (backing off to 10 s)
    /// while it is gone.
    Attach { ctrl_dir: PathBuf },
}

/// `wpa_supplicant -c CONFIG -D DRIVERS -i IFNAME [-I NETBOND_CONF] [EXTRA_ARGS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperviseConfig {
    /// Default `wpa_supplicant` (found on PATH).
    pub binary: PathBuf,
    /// wpa_supplicant's configuration file (`-c`).
    pub config: PathBuf,
    /// `-D`; default `nl80211,wext,wired`.
    pub drivers: String,
    /// The control directory.
    ///
    /// `None` (the default): when the configuration file has a top-level
    /// `ctrl_interface=` line, wpa_supplicant uses that directory and netbond connects
    /// there (so wpa_cli and wpa_gui keep working as the file says). Otherwise netbond
    /// chooses `/run/wpa_supplicant`.
    ///
    /// `Some(dir)`: netbond chooses `dir`, overriding the file.
    ///
    /// When netbond chooses, it does NOT pass `-C`: a `RECONFIGURE` re-reads only the
    /// files and would drop (or move) a control socket set by `-C`. It writes
    /// `ctrl_interface=DIR` to `<run_dir>/wpa-<ifname>.conf` and passes it with `-I`
    /// (an additional configuration file, read after `-c` at start and at every
    /// `RECONFIGURE`), so the choice survives reloads.
    pub ctrl_dir: Option<PathBuf>,
    /// More arguments, e.g. `["-dd"]`.
    pub extra_args: Vec<String>,
}

impl SuperviseConfig {
    /// Defaults for everything but the configuration file.
    pub fn new(config: impl Into<PathBuf>) -> SuperviseConfig {
        SuperviseConfig {
            binary: PathBuf::from("wpa_supplicant"),
            config: config.into(),
            drivers: "nl80211,wext,wired".to_string(),
            ctrl_dir: None,
            extra_args: Vec::new(),
        }
    }
}

/// The supplicant process as netbond sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupplicantState {
    /// Supervise: the child runs (`pid`). Attach: the control socket answers (`pid` is
    /// `None`: the socket does not tell).
    Running { pid: Option<u32> },
    /// Supervise: restarting the child after it exited. Attach: reconnecting. `retry_in`
    /// is the delay as of when this state was published.
    Restarting { retry_in: Duration },
    /// Stopped by `WpaHandle::stop` (or not started yet).
    Stopped,
}

/// What `WpaHandle::state` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WpaState {
    pub supplicant: SupplicantState,
    /// Whether the control connection is up and ATTACHed.
    pub control_connected: bool,
    /// `wpa_state` from the last `STATUS` (`COMPLETED`, `SCANNING`, `DISCONNECTED`, ...);
    /// empty when unknown.
    pub wpa_state: String,
    /// The BSSID while `wpa_state` is `COMPLETED`.
    pub connected_bssid: Option<String>,
    /// The SSID while `wpa_state` is `COMPLETED` (as wpa_supplicant prints it).
    pub ssid: Option<String>,
    /// Summary of the last event (`WpaEvent::summary`).
    pub last_event: String,
    /// How many times the child was restarted after exiting on its own.
    pub restarts: u32,
}

impl Default for WpaState {
    fn default() -> Self {
        WpaState {
            supplicant: SupplicantState::Stopped,
            control_connected: false,
            wpa_state: String::new(),
            connected_bssid: None,
            ssid: None,
            last_event: String::new(),
            restarts: 0,
        }
    }
}

enum Command {
    Request {
        cmd: String,
        timeout: Duration,
        reply: oneshot::Sender<io::Result<String>>,
    },
    Stop(oneshot::Sender<io::Result<()>>),
    Start(oneshot::Sender<io::Result<()>>),
}

/// The supervisor task; see the module documentation.
pub struct WpaSupervisor {
    ifname: String,
    mode: WpaMode,
    run_dir: PathBuf,
    cmd_rx: mpsc::Receiver<Command>,
    state_tx: watch::Sender<WpaState>,
    monitor: WpaMonitor,
    child: Option<Child>,
    wanted: bool,
    restart_at: Option<Instant>,
    backoff: Duration,
    /// When to re-read `STATUS` after an event. Deferred a little so that events that
    /// come in a burst (DISCONNECTED then TERMINATING) are all read first.
    status_due: Option<Instant>,
}

/// Delay of the deferred `STATUS` refresh.
const STATUS_DEFER: Duration = Duration::from_millis(100);

impl WpaSupervisor {
    /// Start the supervisor task on the current tokio runtime. `run_dir` is netbond's
    /// runtime directory (control client sockets and, in Supervise mode, the `-I` file).
    pub fn spawn(config: WpaConfig, run_dir: PathBuf) -> (WpaHandle, tokio::task::JoinHandle<()>) {
        let (tx, cmd_rx) = mpsc::channel(16);
        let (state_tx, state_rx) = watch::channel(WpaState::default());
        let monitor = match &config.mode {
            WpaMode::Attach { ctrl_dir } => WpaMonitor::new(ctrl_dir, &config.ifname, &run_dir),
            // The child creates its socket within moments of starting.
            WpaMode::Supervise(_) => {
                WpaMonitor::new(Path::new(DEFAULT_CTRL_DIR), &config.ifname, &run_dir)
                    .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
            }
        };
        let sup = WpaSupervisor {
            ifname: config.ifname.clone(),
            mode: config.mode,
            run_dir,
            cmd_rx,
            state_tx,
            monitor,
            child: None,
            wanted: config.start,
            restart_at: None,
            backoff: RESTART_MIN,
            status_due: None,
        };
        let handle = WpaHandle {
            ifname: config.ifname,
            tx,
            state: state_rx,
        };
        (handle, tokio::spawn(sup.run()))
    }

    fn supervise(&self) -> Option<&SuperviseConfig> {
        match &self.mode {
            WpaMode::Supervise(s) => Some(s),
            WpaMode::Attach { .. } => None,
        }
    }

    async fn run(mut self) {
        if self.wanted {
            // A failure is logged and retried with backoff.
            let _ = self.begin();
        }
        loop {
            let monitor_active =
                self.wanted && (self.supervise().is_none() || self.child.is_some());
            let status_due = self.status_due.filter(|_| self.monitor.is_up());
            tokio::select! {
                biased;
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                status = wait_child(&mut self.child) => self.on_child_exit(status),
                ev = self.monitor.next(), if monitor_active => self.on_monitor(ev).await,
                _ = sleep_until_opt(self.restart_at) => {
                    self.restart_at = None;
                    let _ = self.start_child(); // logged, retried
                }
                _ = sleep_until_opt(status_due) => {
                    self.status_due = None;
                    self.refresh_status().await;
                }
            }
        }
        if let Err(e) = self.stop().await {
            error!("{}: stopping wpa_supplicant: {e}", self.ifname);
        }
        debug!("{}: wpa_supplicant supervisor ended", self.ifname);
    }

    /// Start (Supervise) or begin connecting (Attach); nothing if already running. An
    /// error means the child could not be spawned (a retry is scheduled).
    fn begin(&mut self) -> io::Result<()> {
        let was_wanted = std::mem::replace(&mut self.wanted, true);
        if self.supervise().is_some() {
            if self.child.is_none() {
                self.backoff = RESTART_MIN;
                self.restart_at = None;
                return self.start_child();
            }
        } else if !(was_wanted && self.monitor.is_up()) {
            self.monitor.reset(Duration::ZERO);
            self.set_state(|s| {
                s.supplicant = SupplicantState::Restarting {
                    retry_in: Duration::ZERO,
                }
            });
        }
        Ok(())
    }

    fn set_state(&self, f: impl FnOnce(&mut WpaState)) {
        self.state_tx.send_modify(f);
    }

    /// The control directory and the `-I` file (if netbond chooses the directory).
    fn prepare_ctrl_dir(&self, sc: &SuperviseConfig) -> io::Result<(PathBuf, Option<PathBuf>)> {
        if sc.ctrl_dir.is_none() {
            if let Ok(text) = std::fs::read_to_string(&sc.config) {
                if let Some(dir) = parse::config_ctrl_dir(&text) {
                    return Ok((PathBuf::from(dir), None));
                }
            }
        }
        let dir = sc
            .ctrl_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CTRL_DIR));
        let dir_str = dir
            .to_str()
            .filter(|d| !d.contains(['\n', '"']) && d.starts_with('/'));
        let Some(dir_str) = dir_str else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unusable control directory {}", dir.display()),
            ));
        };
        let extra = self.run_dir.join(format!("wpa-{}.conf", self.ifname));
        let text = format!(
            "# Written by netbond for wpa_supplicant on {}: the control directory.\n\
             ctrl_interface={dir_str}\n",
            self.ifname
        );
        std::fs::create_dir_all(&self.run_dir)?;
        std::fs::write(&extra, text).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", extra.display()))
        })?;
        Ok((dir, Some(extra)))
    }

    fn start_child(&mut self) -> io::Result<()> {
        let Some(sc) = self.supervise().cloned() else {
            return Ok(());
        };
        let result = self.prepare_ctrl_dir(&sc).and_then(|(dir, extra)| {
            Child::spawn(&sc, &self.ifname, extra.as_deref()).map(|c| (dir, c))
        });
        match result {
            Ok((dir, child)) => {
                info!(
                    "{}: started wpa_supplicant (pid {}), control socket {}",
                    self.ifname,
                    child.pid,
                    dir.join(&self.ifname).display()
                );
                let pid = child.pid;
                self.child = Some(child);
                self.monitor.set_ctrl_dir(&dir);
                self.monitor.reset(Duration::from_millis(50));
                self.set_state(|s| {
                    s.supplicant = SupplicantState::Running { pid: Some(pid) };
                    s.control_connected = false;
                });
                Ok(())
            }
            Err(e) => {
                let delay = self.next_backoff(Duration::ZERO);
                warn!(
                    "{}: cannot start {}: {e}; retrying in {}",
                    self.ifname,
                    sc.binary.display(),
                    fmt_duration(delay)
                );
                self.schedule_restart(delay);
                Err(e)
            }
        }
    }

    /// The delay before the next start, given how long the last run lasted.
    fn next_backoff(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESTART_RESET_UPTIME {
            self.backoff = RESTART_MIN;
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(RESTART_MAX);
        delay
    }

    fn schedule_restart(&mut self, delay: Duration) {
        self.restart_at = Some(Instant::now() + delay);
        self.set_state(|s| {
            s.supplicant = SupplicantState::Restarting { retry_in: delay };
            s.control_connected = false;
            s.wpa_state.clear();
            s.connected_bssid = None;
            s.ssid = None;
        });
    }

    fn on_child_exit(&mut self, status: io::Result<ExitStatus>) {
        let Some(child) = self.child.take() else {
            return;
        };
        self.monitor.reset(Duration::ZERO);
        let uptime = child.started.elapsed();
        let tail = child.tail();
        let how = match status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("ended (wait failed: {e})"),
        };
        let delay = self.next_backoff(uptime);
        let last = if tail.is_empty() {
            String::new()
        } else {
            format!("; last output: {}", tail.join(" | "))
        };
        warn!(
            "{}: wpa_supplicant (pid {}) {how} after {}; restarting in {}{last}",
            self.ifname,
            child.pid,
            fmt_duration(Duration::from_millis(uptime.as_millis() as u64)),
            fmt_duration(delay)
        );
        self.state_tx.send_modify(|s| s.restarts += 1);
        self.schedule_restart(delay);
    }

    async fn refresh_status(&mut self) {
        let Ok(reply) = self.monitor.request("STATUS", DEFAULT_TIMEOUT).await else {
            return;
        };
        let st = parse::parse_status(&reply);
        let wpa_state = st.get("wpa_state").cloned().unwrap_or_default();
        let completed = wpa_state == "COMPLETED";
        self.set_state(|s| {
            s.connected_bssid = st.get("bssid").filter(|_| completed).cloned();
            s.ssid = st
                .get("ssid")
                .filter(|v| completed && !v.is_empty())
                .cloned();
            s.wpa_state = wpa_state;
        });
    }

    async fn on_monitor(&mut self, ev: MonitorEvent) {
        let ifname = self.ifname.clone();
        match ev {
            MonitorEvent::Up => {
                info!("{ifname}: attached to wpa_supplicant's control socket");
                let pid = self.child.as_ref().map(|c| c.pid);
                self.set_state(|s| {
                    s.control_connected = true;
                    s.supplicant = SupplicantState::Running { pid };
                });
                self.refresh_status().await;
                // A supplicant faster than our attach has no CONNECTED event left to
                // send: say it from its status, as the event would have.
                let st = self.state_tx.borrow().clone();
                if let Some(bssid) = st.connected_bssid.as_deref() {
                    info!(
                        "{ifname}: wpa_supplicant: CONNECTED {bssid} ssid={:?} (already when netbond attached)",
                        st.ssid.as_deref().unwrap_or("")
                    );
                }
            }
            MonitorEvent::Down(why) => {
                warn!("{ifname}: lost wpa_supplicant's control socket: {why}");
                self.lost_control();
            }
            MonitorEvent::Event(mut ev) => {
                match &ev {
                    WpaEvent::Connected { .. } => {
                        self.refresh_status().await;
                        let st = self.state_tx.borrow().clone();
                        if let WpaEvent::Connected { ssid, .. } = &mut ev {
                            *ssid = st.ssid.clone();
                        }
                        info!("{ifname}: wpa_supplicant: {}", ev.summary());
                    }
                    WpaEvent::Disconnected { .. } => {
                        info!("{ifname}: wpa_supplicant: {}", ev.summary());
                        self.set_state(|s| {
                            s.connected_bssid = None;
                            s.ssid = None;
                        });
                        self.status_due = Some(Instant::now() + STATUS_DEFER);
                    }
                    WpaEvent::Terminating => {
                        info!("{ifname}: wpa_supplicant is terminating");
                        self.lost_control();
                    }
                    WpaEvent::AuthFailed { .. } | WpaEvent::SsidTempDisabled { .. } => {
                        info!("{ifname}: wpa_supplicant: {}", ev.summary());
                        self.status_due = Some(Instant::now() + STATUS_DEFER);
                    }
                    WpaEvent::ScanResults | WpaEvent::Other(_) => {
                        debug!("{ifname}: wpa_supplicant: {}", ev.summary());
                    }
                }
                let summary = ev.summary();
                if !matches!(ev, WpaEvent::ScanResults | WpaEvent::Other(_)) {
                    crate::daemon::events::emit(
                        "wifi",
                        Some(&ifname),
                        serde_json::json!({"wpa_event": summary}),
                    );
                }
                self.set_state(|s| s.last_event = summary);
            }
        }
    }

    fn lost_control(&mut self) {
        self.status_due = None;
        let attach = self.supervise().is_none();
        self.set_state(|s| {
            s.control_connected = false;
            s.wpa_state.clear();
            s.connected_bssid = None;
            s.ssid = None;
            if attach {
                s.supplicant = SupplicantState::Restarting {
                    retry_in: Duration::from_secs(1),
                };
            }
        });
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Request {
                cmd,
                timeout,
                reply,
            } => {
                let r = if self.monitor.is_up() {
                    self.monitor.request(&cmd, timeout).await
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!(
                            "wpa_supplicant on {} is not reachable now ({:?})",
                            self.ifname,
                            self.state_tx.borrow().supplicant
                        ),
                    ))
                };
                if r.is_err() && !self.monitor.is_up() {
                    self.lost_control();
                }
                let _ = reply.send(r);
            }
            Command::Stop(reply) => {
                let r = self.stop().await;
                let _ = reply.send(r);
            }
            Command::Start(reply) => {
                let _ = reply.send(self.begin());
            }
        }
    }

    async fn stop(&mut self) -> io::Result<()> {
        self.wanted = false;
        self.restart_at = None;
        let result = match self.child.as_mut() {
            None => Ok(()),
            Some(child) => {
                let pid = child.pid;
                let mut asked = false;
                if self.monitor.is_up() {
                    match self.monitor.request("TERMINATE", DEFAULT_TIMEOUT).await {
                        Ok(r) if r.trim_end() == "OK" => asked = true,
                        Ok(r) => debug!("{}: TERMINATE answered {r:?}", self.ifname),
                        Err(e) => debug!("{}: TERMINATE: {e}", self.ifname),
                    }
                }
                let mut done = asked && child.wait_for(STOP_STEP).await.is_some();
                for sig in [libc::SIGTERM, libc::SIGKILL] {
                    if done {
                        break;
                    }
                    let name = if sig == libc::SIGTERM {
                        "SIGTERM"
                    } else {
                        "SIGKILL"
                    };
                    if asked || sig == libc::SIGKILL {
                        warn!(
                            "{}: wpa_supplicant (pid {pid}) still running; sending {name}",
                            self.ifname
                        );
                    } else {
                        debug!(
                            "{}: sending {name} to wpa_supplicant (pid {pid})",
                            self.ifname
                        );
                    }
                    child.signal(sig);
                    done = child.wait_for(STOP_STEP).await.is_some();
                }
                if done {
                    info!("{}: wpa_supplicant (pid {pid}) stopped", self.ifname);
                    self.child = None;
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "wpa_supplicant (pid {pid}) on {} did not exit after SIGKILL",
                        self.ifname
                    )))
                }
            }
        };
        // Drops the connection (best-effort DETACH); an inactive monitor stays idle.
        self.monitor.reset(Duration::ZERO);
        self.set_state(|s| {
            *s = WpaState {
                restarts: s.restarts,
                last_event: std::mem::take(&mut s.last_event),
                ..WpaState::default()
            }
        });
        result
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_sequence() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cfg = WpaConfig {
                ifname: "wlan0".into(),
                mode: WpaMode::Supervise(SuperviseConfig::new("/nonexistent.conf")),
                start: false,
            };
            let (_tx, cmd_rx) = mpsc::channel(1);
            let (state_tx, _) = watch::channel(WpaState::default());
            let mut s = WpaSupervisor {
                ifname: "wlan0".into(),
                mode: cfg.mode,
                run_dir: std::env::temp_dir(),
                cmd_rx,
                state_tx,
                monitor: WpaMonitor::new(Path::new("/x"), "wlan0", Path::new("/tmp")),
                child: None,
                wanted: true,
                restart_at: None,
                backoff: RESTART_MIN,
                status_due: None,
            };
            let short = Duration::from_secs(5);
            let seq: Vec<u64> = (0..9).map(|_| s.next_backoff(short).as_secs()).collect();
            assert_eq!(seq, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
            assert_eq!(s.next_backoff(Duration::from_secs(61)).as_secs(), 1);
            assert_eq!(s.next_backoff(short).as_secs(), 2);
        });
    }
}
