//! An async client for wpa_supplicant's UNIX datagram control socket
//! (`<ctrl_dir>/<ifname>`), and `WpaMonitor`, which keeps one connected and attached.
//!
//! Each `WpaCtrl` binds two sockets of its own under netbond's run directory (never under
//! the supplicant's directory, never a `wpa_ctrl_*` name as wpa_cli/wpa_gui use), so it
//! can run beside wpa_cli, wpa_gui and other `WpaCtrl`s in the same process: one for
//! commands, one ATTACHed for events.

use super::parse::{self, ScanResult, WpaEvent, MAX_EVENT_LEN};
use crate::logging::debug;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::net::UnixDatagram;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The usual time to wait for a reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest reply we accept in one datagram (wpa_supplicant sends each reply whole).
const MAX_REPLY: usize = 64 * 1024;

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SUN_PATH: usize = 107;

static SOCKET_COUNTER: AtomicU32 = AtomicU32::new(0);

/// "2 s", "500 ms".
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// An interface name by the one rule ([`crate::net::ifname`]): it becomes a socket
/// path in the control directory.
pub(crate) fn check_ifname(ifname: &str) -> io::Result<()> {
    if crate::net::ifname::valid_ifname(ifname) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {ifname:?}"),
        ))
    }
}

/// A connection to one wpa_supplicant control socket.
#[derive(Debug)]
pub struct WpaCtrl {
    ifname: String,
    server: PathBuf,
    run_dir: PathBuf,
    /// The command socket; the lock serialises requests so replies cannot be mixed up.
    cmd: Mutex<CmdSocket>,
    ev: UnixDatagram,
    ev_path: PathBuf,
    /// Serialises reads of the event socket.
    ev_buf: Mutex<Vec<u8>>,
}

#[derive(Debug)]
struct CmdSocket {
    sock: UnixDatagram,
    path: PathBuf,
    buf: Vec<u8>,
    /// A request was sent and its reply not read (it timed out or was cancelled). The
    /// protocol has no request ids, so a late reply could be taken for the next one's:
    /// the next request first moves to a fresh socket, and the late reply goes nowhere.
    tainted: bool,
}

/// A new unique client socket path: `<run_dir>/wpa-<ifname>-<pid>-<n>-<kind>`.
fn client_path(run_dir: &Path, ifname: &str, kind: &str) -> io::Result<PathBuf> {
    let n = SOCKET_COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = run_dir.join(format!("wpa-{ifname}-{}-{n}-{kind}", std::process::id()));
    check_sun_path(&p)?;
    Ok(p)
}

fn check_sun_path(p: &Path) -> io::Result<()> {
    if p.as_os_str().len() > MAX_SUN_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is too long for a UNIX socket name ({MAX_SUN_PATH} bytes at most)",
                p.display()
            ),
        ));
    }
    Ok(())
}

/// Bind a datagram socket at `path` (removing a stale file first), mode 0600, connected
/// to `server`.
fn bind_connected(path: &Path, server: &Path, ifname: &str) -> io::Result<UnixDatagram> {
    match std::fs::remove_file(path) {
        Ok(()) => debug!("removed stale socket {}", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e, format!("cannot remove stale {}", path.display()))),
    }
    let sock = std::os::unix::net::UnixDatagram::bind(path)
        .map_err(|e| ctx(e, format!("cannot bind {}", path.display())))?;
    let cleanup = |e: io::Error| {
        let _ = std::fs::remove_file(path);
        e
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(cleanup)?;
    sock.connect(server)
        .map_err(|e| connect_error(e, server, ifname))
        .map_err(cleanup)?;
    sock.set_nonblocking(true).map_err(cleanup)?;
    UnixDatagram::from_std(sock).map_err(cleanup)
}

fn ctx(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn connect_error(e: io::Error, server: &Path, ifname: &str) -> io::Error {
    let dir = server.parent().unwrap_or(Path::new("")).display();
    let msg = match e.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "no wpa_supplicant control socket at {} (is wpa_supplicant running on {ifname} \
             with ctrl_interface={dir}?)",
            server.display()
        ),
        Some(libc::ECONNREFUSED) => format!(
            "{} exists but nobody listens on it (a wpa_supplicant for {ifname} that died?)",
            server.display()
        ),
        _ => format!("cannot connect to {}: {e}", server.display()),
    };
    io::Error::new(e.kind(), msg)
}

// The whole control protocol is exposed; the daemon does not call every verb.
#[allow(dead_code)]
impl WpaCtrl {
    /// Connect to `<ctrl_dir>/<ifname>`. Binds `<run_dir>/wpa-<ifname>-<pid>-<n>-cmd` and
    /// `-ev` (mode 0600; `run_dir` is created 0700 if missing). Must be called inside a
    /// tokio runtime (an error otherwise, not a panic). Does not ATTACH.
    pub fn connect(ctrl_dir: &Path, ifname: &str, run_dir: &Path) -> io::Result<WpaCtrl> {
        check_ifname(ifname)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "WpaCtrl::connect needs a tokio runtime with IO enabled",
            ));
        }
        let server = ctrl_dir.join(ifname);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(run_dir)
            .map_err(|e| ctx(e, format!("cannot create {}", run_dir.display())))?;
        check_sun_path(&server)?;
        let cmd_path = client_path(run_dir, ifname, "cmd")?;
        let ev_path = client_path(run_dir, ifname, "ev")?;
        let cmd = bind_connected(&cmd_path, &server, ifname)?;
        let ev = match bind_connected(&ev_path, &server, ifname) {
            Ok(s) => s,
            Err(e) => {
                drop(cmd);
                let _ = std::fs::remove_file(&cmd_path);
                return Err(e);
            }
        };
        Ok(WpaCtrl {
            ifname: ifname.to_string(),
            server,
            run_dir: run_dir.to_path_buf(),
            cmd: Mutex::new(CmdSocket {
                sock: cmd,
                path: cmd_path,
                buf: vec![0; MAX_REPLY],
                tainted: false,
            }),
            ev,
            ev_path,
            ev_buf: Mutex::new(vec![0; MAX_EVENT_LEN + 1]),
        })
    }

    /// The interface this connection controls.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The supplicant's socket path.
    pub fn server_path(&self) -> &Path {
        &self.server
    }

    /// Send `cmd` on `sock` and wait for the reply, skipping unsolicited `<N>` event
    /// datagrams and anything left over from an earlier request that timed out.
    async fn exchange(
        &self,
        sock: &UnixDatagram,
        buf: &mut [u8],
        cmd: &str,
        timeout: Duration,
    ) -> io::Result<String> {
        // Drop stale datagrams (a late reply to a timed-out request, events).
        while let Ok(n) = sock.try_recv(buf) {
            debug!(
                "{}: dropped stale datagram: {}",
                self.ifname,
                parse::sanitize(&buf[..n], 200)
            );
        }
        let word = cmd.split(' ').next().unwrap_or("");
        let deadline = Instant::now() + timeout;
        let io_err = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("wpa_supplicant on {}: {word} failed: {e}", self.ifname),
            )
        };
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "wpa_supplicant on {} did not answer {word} within {}",
                    self.ifname,
                    fmt_duration(timeout)
                ),
            )
        };
        match tokio::time::timeout_at(deadline, sock.send(cmd.as_bytes())).await {
            Ok(r) => {
                r.map_err(io_err)?;
            }
            Err(_) => return Err(timed_out()),
        }
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(buf)).await {
                Ok(r) => r.map_err(io_err)?,
                Err(_) => return Err(timed_out()),
            };
            let data = &buf[..n];
            if parse::is_event(data) {
                continue;
            }
            return Ok(String::from_utf8_lossy(data).into_owned());
        }
    }

    /// Send one command and return the reply text (as sent, usually ending in `\n`).
    pub async fn request(&self, cmd: &str, timeout: Duration) -> io::Result<String> {
        let mut guard = self.cmd.lock().await;
        let c = &mut *guard;
        if c.tainted {
            let path = client_path(&self.run_dir, &self.ifname, "cmd")?;
            let sock = bind_connected(&path, &self.server, &self.ifname)?;
            let _ = std::fs::remove_file(&c.path);
            debug!(
                "{}: new command socket {} after an unanswered request",
                self.ifname,
                path.display()
            );
            c.sock = sock;
            c.path = path;
            c.tainted = false;
        }
        c.tainted = true; // until the reply is in (stays set if this future is dropped)
        let r = self.exchange(&c.sock, &mut c.buf, cmd, timeout).await;
        c.tainted = matches!(&r, Err(e) if e.kind() == io::ErrorKind::TimedOut);
        r
    }

    /// Send a command whose answer must be `OK`.
    pub async fn request_ok(&self, cmd: &str, timeout: Duration) -> io::Result<()> {
        let reply = self.request(cmd, timeout).await?;
        expect_ok(&self.ifname, cmd, &reply)
    }

    /// `ATTACH` the event socket: from now on `next_event` sees events.
    pub async fn attach(&self) -> io::Result<()> {
        let mut buf = self.ev_buf.lock().await;
        let reply = self
            .exchange(&self.ev, &mut buf, "ATTACH", DEFAULT_TIMEOUT)
            .await?;
        expect_ok(&self.ifname, "ATTACH", &reply)
    }

    /// `DETACH` the event socket.
    pub async fn detach(&self) -> io::Result<()> {
        let mut buf = self.ev_buf.lock().await;
        let reply = self
            .exchange(&self.ev, &mut buf, "DETACH", DEFAULT_TIMEOUT)
            .await?;
        expect_ok(&self.ifname, "DETACH", &reply)
    }

    /// Wait for the next event on the attached socket. Non-event datagrams (late
    /// replies) are skipped. Cancel-safe.
    pub async fn next_event(&self) -> io::Result<WpaEvent> {
        let mut buf = self.ev_buf.lock().await;
        loop {
            let n = self.ev.recv(&mut buf).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("wpa_supplicant on {}: event socket: {e}", self.ifname),
                )
            })?;
            let data = &buf[..n];
            if parse::is_event(data) {
                return Ok(parse::parse_event(data));
            }
            debug!(
                "{}: ignoring non-event datagram on the event socket: {}",
                self.ifname,
                parse::sanitize(data, 200)
            );
        }
    }

    /// `PING`, expecting `PONG`.
    pub async fn ping(&self) -> io::Result<()> {
        let reply = self.request("PING", DEFAULT_TIMEOUT).await?;
        if reply.trim_end() == "PONG" {
            Ok(())
        } else {
            Err(unexpected(&self.ifname, "PING", &reply))
        }
    }

    /// `STATUS` as key/value pairs (`wpa_state`, `bssid`, `ssid`, ...).
    pub async fn status(&self) -> io::Result<HashMap<String, String>> {
        let reply = self.request("STATUS", DEFAULT_TIMEOUT).await?;
        if reply.starts_with("FAIL") {
            return Err(unexpected(&self.ifname, "STATUS", &reply));
        }
        Ok(parse::parse_status(&reply))
    }

    /// `RECONFIGURE`: re-read the configuration file.
    pub async fn reconfigure(&self) -> io::Result<()> {
        self.request_ok("RECONFIGURE", DEFAULT_TIMEOUT).await
    }

    /// `REASSOCIATE`.
    pub async fn reassociate(&self) -> io::Result<()> {
        self.request_ok("REASSOCIATE", DEFAULT_TIMEOUT).await
    }

    /// `SCAN`: start a scan (`FAIL-BUSY` is an error). Results come with a `ScanResults`
    /// event.
    pub async fn scan(&self) -> io::Result<()> {
        self.request_ok("SCAN", DEFAULT_TIMEOUT).await
    }

    /// `SCAN_RESULTS`.
    pub async fn scan_results(&self) -> io::Result<Vec<ScanResult>> {
        let reply = self.request("SCAN_RESULTS", DEFAULT_TIMEOUT).await?;
        if reply.starts_with("FAIL") {
            return Err(unexpected(&self.ifname, "SCAN_RESULTS", &reply));
        }
        Ok(parse::parse_scan_results(&reply))
    }

    /// `TERMINATE`: ask wpa_supplicant to exit.
    pub async fn terminate(&self) -> io::Result<()> {
        self.request_ok("TERMINATE", DEFAULT_TIMEOUT).await
    }
}

impl Drop for WpaCtrl {
    fn drop(&mut self) {
        // Best effort DETACH without waiting for the reply; the supplicant also forgets a
        // monitor whose socket file has gone.
        let _ = self.ev.try_send(b"DETACH");
        let _ = std::fs::remove_file(&self.cmd.get_mut().path);
        let _ = std::fs::remove_file(&self.ev_path);
    }
}

fn unexpected(ifname: &str, cmd: &str, reply: &str) -> io::Error {
    let word = cmd.split(' ').next().unwrap_or("");
    io::Error::other(format!(
        "wpa_supplicant on {ifname} answered {word} with {:?}",
        parse::sanitize(reply.trim_end().as_bytes(), 200)
    ))
}

pub(crate) fn expect_ok(ifname: &str, cmd: &str, reply: &str) -> io::Result<()> {
    if reply.trim_end() == "OK" {
        Ok(())
    } else {
        Err(unexpected(ifname, cmd, reply))
    }
}

/// What `WpaMonitor::next` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    /// Connected, answered PING, and ATTACHed.
    Up,
    /// An event from the supplicant. After `Terminating` the monitor has already
    /// dropped the connection and will reconnect.
    Event(WpaEvent),
    /// The connection was lost (the text says why); the monitor reconnects by itself.
    Down(String),
}

/// Keeps a `WpaCtrl` connected and ATTACHed to `<ctrl_dir>/<ifname>`: reconnects with
/// backoff (1 s doubling to 10 s by default) when the supplicant is not there, after
/// `TERMINATING`, when a request fails, or when the keep-alive `PING` (every 10 s by
/// default, only while connected) fails, since a supplicant killed with SIGKILL sends
/// nothing.
#[derive(Debug)]
pub struct WpaMonitor {
    ctrl_dir: PathBuf,
    ifname: String,
    run_dir: PathBuf,
    ctrl: Option<WpaCtrl>,
    min_delay: Duration,
    max_delay: Duration,
    delay: Duration,
    next_try: Instant,
    keepalive: Option<Duration>,
    next_ping: Instant,
    failures: u32,
    /// A failed `request` dropped the connection: report it from the next `next`.
    pending_down: Option<String>,
}

// The whole control protocol is exposed; the daemon does not call every verb.
#[allow(dead_code)]
impl WpaMonitor {
    /// A monitor that tries to connect at once.
    pub fn new(ctrl_dir: &Path, ifname: &str, run_dir: &Path) -> WpaMonitor {
        let now = Instant::now();
        WpaMonitor {
            ctrl_dir: ctrl_dir.to_path_buf(),
            ifname: ifname.to_string(),
            run_dir: run_dir.to_path_buf(),
            ctrl: None,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            delay: Duration::from_secs(1),
            next_try: now,
            keepalive: Some(Duration::from_secs(10)),
            next_ping: now,
            failures: 0,
            pending_down: None,
        }
    }

    /// Retry delays: `min` doubling up to `max`.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self.delay = min;
        self
    }

    /// Keep-alive PING interval while connected (`None`: never).
    pub fn with_keepalive(mut self, every: Option<Duration>) -> Self {
        self.keepalive = every;
        self
    }

    /// Change the control directory (takes effect on the next connect).
    pub fn set_ctrl_dir(&mut self, ctrl_dir: &Path) {
        self.ctrl_dir = ctrl_dir.to_path_buf();
    }

    /// The connection, when up.
    pub fn ctrl(&self) -> Option<&WpaCtrl> {
        self.ctrl.as_ref()
    }

    /// Whether connected and attached.
    pub fn is_up(&self) -> bool {
        self.ctrl.is_some()
    }

    /// Drop the connection and try again after `after`, with the backoff reset. Nothing
    /// is reported for this (the caller knows).
    pub fn reset(&mut self, after: Duration) {
        self.pending_down = None;
        self.ctrl = None;
        self.delay = self.min_delay;
        self.failures = 0;
        self.next_try = Instant::now() + after;
    }

    /// Send a request on the current connection. A failure drops the connection: the
    /// next `next` call reports `Down` first, then reconnects.
    pub async fn request(&mut self, cmd: &str, timeout: Duration) -> io::Result<String> {
        let Some(ctrl) = &self.ctrl else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("not connected to wpa_supplicant on {}", self.ifname),
            ));
        };
        match ctrl.request(cmd, timeout).await {
            Ok(r) => Ok(r),
            Err(e) => {
                debug!("{}: dropping the control connection: {e}", self.ifname);
                self.reset(Duration::ZERO);
                self.pending_down = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn try_connect(&self) -> io::Result<WpaCtrl> {
        let ctrl = WpaCtrl::connect(&self.ctrl_dir, &self.ifname, &self.run_dir)?;
        ctrl.ping().await?;
        ctrl.attach().await?;
        Ok(ctrl)
    }

    /// Wait for the next thing to report. Loops (sleeping between attempts) while the
    /// supplicant cannot be reached; use inside `select!`.
    pub async fn next(&mut self) -> MonitorEvent {
        if let Some(why) = self.pending_down.take() {
            return MonitorEvent::Down(why);
        }
        loop {
            let Some(ctrl) = &self.ctrl else {
                tokio::time::sleep_until(self.next_try).await;
                match self.try_connect().await {
                    Ok(ctrl) => {
                        self.ctrl = Some(ctrl);
                        self.delay = self.min_delay;
                        self.failures = 0;
                        self.next_ping = Instant::now() + self.keepalive.unwrap_or_default();
                        return MonitorEvent::Up;
                    }
                    Err(e) => {
                        self.failures += 1;
                        if self.failures == 1 || self.delay >= self.max_delay {
                            debug!(
                                "{}: cannot reach wpa_supplicant (retrying in {}): {e}",
                                self.ifname,
                                fmt_duration(self.delay)
                            );
                        }
                        self.next_try = Instant::now() + self.delay;
                        self.delay = (self.delay * 2).min(self.max_delay);
                        continue;
                    }
                }
            };
            let ping_at = self.keepalive.map(|_| self.next_ping);
            let result = tokio::select! {
                ev = ctrl.next_event() => Some(ev),
                _ = async {
                    match ping_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            match result {
                Some(Ok(WpaEvent::Terminating)) => {
                    self.reset(self.min_delay);
                    return MonitorEvent::Event(WpaEvent::Terminating);
                }
                Some(Ok(ev)) => return MonitorEvent::Event(ev),
                Some(Err(e)) => {
                    self.reset(Duration::ZERO);
                    return MonitorEvent::Down(e.to_string());
                }
                None => {
                    let r = ctrl.ping().await;
                    self.next_ping = Instant::now() + self.keepalive.unwrap_or_default();
                    if let Err(e) = r {
                        self.reset(Duration::ZERO);
                        return MonitorEvent::Down(e.to_string());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500 ms");
    }

    #[test]
    fn ifnames() {
        assert!(check_ifname("wlan0").is_ok());
        assert!(check_ifname("wlp2s0").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "0123456789abcdef", "x\n"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ok_replies() {
        assert!(expect_ok("wlan0", "SCAN", "OK\n").is_ok());
        let e = expect_ok("wlan0", "SCAN", "FAIL-BUSY\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "wpa_supplicant on wlan0 answered SCAN with \"FAIL-BUSY\""
        );
    }

    /// A fake supplicant on a socketpair-like pair of bound datagram sockets: checks
    /// request/reply matching, event skipping and the timeout text.
    #[test]
    fn request_against_fake_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("nb-wpa-ut-{}", std::process::id()));
            let ctrl_dir = dir.join("ctrl");
            let run_dir = dir.join("run");
            std::fs::create_dir_all(&ctrl_dir).unwrap();
            let server = UnixDatagram::bind(ctrl_dir.join("wlan0")).unwrap();
            let ctrl = WpaCtrl::connect(&ctrl_dir, "wlan0", &run_dir).unwrap();
            let cmd_path = ctrl.cmd.lock().await.path.clone();
            let mode = std::fs::metadata(&cmd_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let srv = tokio::spawn(async move {
                let mut buf = [0u8; 256];
                // PING: answer with an event first, then PONG.
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"PING");
                let from = from.as_pathname().unwrap().to_path_buf();
                server
                    .send_to(b"<3>CTRL-EVENT-SCAN-RESULTS ", &from)
                    .await
                    .unwrap();
                server.send_to(b"PONG\n", &from).await.unwrap();
                // STATUS
                let (n, _) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"STATUS");
                server
                    .send_to(b"wpa_state=COMPLETED\nssid=x\n", &from)
                    .await
                    .unwrap();
                // SCAN: not answered in time. Its late answer is sent when the next
                // request arrives, as a supplicant woken from SIGSTOP does: it must not
                // be taken for that request's reply.
                let (n, _) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"SCAN");
                let (n, from2) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"PING");
                let from2 = from2.as_pathname().unwrap().to_path_buf();
                assert_ne!(from, from2, "a fresh command socket after the timeout");
                assert!(!from.exists(), "the old command socket file is gone");
                let _ = server.send_to(b"FAIL-BUSY\n", &from).await;
                server.send_to(b"PONG\n", &from2).await.unwrap();
                let (n, _) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"STATUS");
                server
                    .send_to(b"wpa_state=SCANNING\n", &from2)
                    .await
                    .unwrap();
            });
            ctrl.ping().await.unwrap();
            let st = ctrl.status().await.unwrap();
            assert_eq!(st["wpa_state"], "COMPLETED");
            let e = ctrl
                .request("SCAN", Duration::from_millis(200))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert_eq!(
                e.to_string(),
                "wpa_supplicant on wlan0 did not answer SCAN within 200 ms"
            );
            ctrl.ping().await.unwrap();
            assert_eq!(ctrl.status().await.unwrap()["wpa_state"], "SCANNING");
            srv.await.unwrap();
            let c = ctrl.cmd.lock().await.path.clone();
            let e = ctrl.ev_path.clone();
            assert_eq!(std::fs::read_dir(&run_dir).unwrap().count(), 2);
            assert!(c.exists() && e.exists());
            drop(ctrl);
            assert!(!c.exists() && !e.exists());
            // Nobody listening: a clear error.
            std::fs::remove_file(ctrl_dir.join("wlan0")).unwrap();
            let err = WpaCtrl::connect(&ctrl_dir, "wlan0", &run_dir).unwrap_err();
            assert!(
                err.to_string().contains("no wpa_supplicant control socket"),
                "{err}"
            );
            assert_eq!(std::fs::read_dir(&run_dir).unwrap().count(), 0);
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
