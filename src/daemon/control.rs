//! The control socket (`<run_dir>/netbond.sock`) and its JSON protocol.
//!
//! One request per connection: the client writes one JSON object on a line, the daemon
//! answers with one JSON object on a line and closes. The socket is mode 0600 (root)
//! unless `[control] group` grants a group read access; commands that change state
//! also require the peer's uid (SO_PEERCRED) to be 0 or the daemon's own.

use crate::logging::{debug, warn};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The socket's file name inside the run dir.
pub const SOCKET_NAME: &str = "netbond.sock";
/// Requests larger than this are refused (they are a few dozen bytes).
const MAX_REQUEST: usize = 4096;

/// Which address family a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// DHCPv4 only.
    V4,
    /// DHCPv6 only.
    V6,
    /// Both.
    #[default]
    Both,
}

/// What `netbond wifi IFACE ACTION` asks for (the CLI argument and the control
/// protocol's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WifiAction {
    /// wpa_supplicant's STATUS.
    Status,
    /// Re-read the supplicant's configuration.
    Reconfigure,
    /// Reassociate.
    Reassociate,
    /// Scan and return the results.
    Scan,
    /// Stop the supplicant for this interface (the rest keeps running).
    Stop,
    /// Start it again.
    Start,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Everything about the interface(s), bond, leases and identity.
    Status {
        /// One managed interface (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// Renew the lease(s) now.
    Renew {
        /// Which client.
        #[serde(default)]
        family: Family,
        /// One managed interface (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// Release the lease(s) and stop the client(s) until `start`.
    Release {
        /// Which client.
        #[serde(default)]
        family: Family,
        /// One managed interface (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// Stop a client: release its lease and remove its configuration.
    Stop {
        /// Which client.
        family: Family,
        /// One managed interface (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// Start a stopped client.
    Start {
        /// Which client.
        family: Family,
        /// One managed interface (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// Re-read the configuration file (like SIGHUP).
    Reload,
    /// Stop the daemon (`netbond stop`). Without `release` the network stays as it
    /// is (addresses, routes, DNS, the bond; leases saved for the next start); with it
    /// the leases are released, the configuration removed and the bond deleted
    /// (unless `keep_on_stop`). The answer comes when that is done; then the daemon
    /// exits 0.
    Shutdown {
        /// Release and deconfigure first.
        #[serde(default)]
        release: bool,
    },
    /// Answer when the host is online (see `online.rs`), or when `timeout_ms` passed.
    WaitOnline {
        /// `any` or `all`; default: the daemon's `[daemon] online`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<crate::daemon::online::Policy>,
        /// Only this interface.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
        /// Only this family: 4 or 6.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<u8>,
        /// How long the daemon may wait before answering "not online".
        timeout_ms: u64,
    },
    /// Follow events: the answer, then one event (JSON) per line (see README).
    Monitor {
        /// Only this interface's events (and the daemon's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
    },
    /// A wpa_supplicant command for one wireless port.
    Wifi {
        /// The wireless interface.
        iface: String,
        /// What to do.
        action: WifiAction,
    },
}

impl Request {
    /// True for commands that change state (they need a privileged peer).
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Request::Status { .. }
                | Request::WaitOnline { .. }
                | Request::Monitor { .. }
                | Request::Wifi {
                    action: WifiAction::Status,
                    ..
                }
        )
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// True when the command was carried out.
    pub ok: bool,
    /// What went wrong, for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A short human message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Status data (for `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl Response {
    /// Success with a message.
    pub fn done(message: impl Into<String>) -> Self {
        Response {
            ok: true,
            error: None,
            message: Some(message.into()),
            status: None,
        }
    }
    /// Failure with an error for the user.
    pub fn fail(error: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(error.into()),
            message: None,
            status: None,
        }
    }
}

/// A request waiting for the daemon loop.
pub type Pending = (Request, oneshot::Sender<Response>);

/// The path of the socket in `run_dir`.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET_NAME)
}

/// Bind the socket (replacing a stale one), set its mode and group, and spawn the
/// accept loop. Requests reach the daemon loop through the returned receiver.
pub fn listen(run_dir: &Path, group: Option<u32>) -> io::Result<mpsc::Receiver<Pending>> {
    std::fs::create_dir_all(run_dir)?;
    let path = socket_path(run_dir);
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; remove it", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another netbond is running with the control socket {}; use another --run-dir",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(&path, None, Some(gid))?;
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(listener, tx));
    Ok(rx)
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Pending>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, tx).await {
                        debug!("control: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("control socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

fn peer_may_change_state(stream: &UnixStream) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    match stream.peer_cred() {
        Ok(c) => c.uid() == 0 || c.uid() == me,
        Err(_) => false,
    }
}

/// Connections being served (read, waiting for the daemon, or writing the answer).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one connection in [`IN_FLIGHT`] while it lives.
struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Before the daemon exits: give the answers already handed over (the one to
/// `netbond stop`, first of all) time to reach their clients, at most `max`. The
/// daemon loop has stopped taking requests, so the ones still queued fail at once.
pub async fn drain(max: std::time::Duration) {
    let until = tokio::time::Instant::now() + max;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn serve(stream: UnixStream, tx: mpsc::Sender<Pending>) -> io::Result<()> {
    let _counted = InFlight::new();
    let privileged = peer_may_change_state(&stream);
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(rd).take(MAX_REQUEST as u64);
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        reader.read_line(&mut line),
    )
    .await;
    let response = match read {
        Err(_) => Response::fail("no request within 5 s"),
        Ok(Err(e)) => Response::fail(format!("reading the request: {e}")),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Response::fail(format!("malformed request: {e}")),
            // Served here, never by the daemon loop: a monitor must not hold it.
            Ok(Request::Monitor { iface }) => {
                return crate::daemon::events::serve_monitor(
                    reader.into_inner().into_inner(),
                    wr,
                    iface,
                )
                .await;
            }
            Ok(req) if req.changes_state() && !privileged => {
                Response::fail("permission denied: this command changes state; run it as root")
            }
            Ok(req) => {
                let (rtx, rrx) = oneshot::channel();
                if tx.send((req, rtx)).await.is_err() {
                    Response::fail("the daemon is shutting down")
                } else {
                    rrx.await
                        .unwrap_or_else(|_| Response::fail("netbond is stopping"))
                }
            }
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(io::Error::other)?;
    out.push(b'\n');
    wr.write_all(&out).await?;
    wr.shutdown().await
}

use tokio::io::AsyncReadExt;

/// Client side: connect to the control socket and send `req` (one JSON line); the
/// error says what to do when netbond is not running or the caller may not talk to it.
async fn send_request(
    run_dir: &Path,
    req: &Request,
) -> Result<
    (
        tokio::net::unix::OwnedReadHalf,
        tokio::net::unix::OwnedWriteHalf,
    ),
    String,
> {
    let path = socket_path(run_dir);
    let stream = UnixStream::connect(&path).await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => format!(
            "netbond is not running (no control socket at {}); start it with `netbond run`, or pass --run-dir",
            path.display()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "permission denied on {}: run as root (or as a member of the configured [control] group)",
            path.display()
        ),
        _ => format!("cannot connect to {}: {e}", path.display()),
    })?;
    let (rd, mut wr) = stream.into_split();
    let mut body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    body.push(b'\n');
    wr.write_all(&body).await.map_err(|e| e.to_string())?;
    Ok((rd, wr))
}

/// Client side: send one request and wait for the answer (used by the CLI).
pub async fn call(run_dir: &Path, req: &Request) -> Result<Response, String> {
    call_within(run_dir, req, std::time::Duration::from_secs(10)).await
}

/// [`call`] with a chosen limit on the wait for the answer.
pub async fn call_within(
    run_dir: &Path,
    req: &Request,
    limit: std::time::Duration,
) -> Result<Response, String> {
    let (rd, _wr) = send_request(run_dir, req).await?;
    let mut line = String::new();
    let mut reader = BufReader::new(rd).take(16 * 1024 * 1024);
    tokio::time::timeout(limit, reader.read_line(&mut line))
        .await
        .map_err(|_| format!("netbond did not answer within {} s", limit.as_secs()))?
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("netbond closed the connection without an answer (it stopped?)".into());
    }
    serde_json::from_str(line.trim()).map_err(|e| format!("malformed answer from netbond: {e}"))
}

/// Client side of `monitor`: send the request, check the answer, and return the lines
/// that follow (one event each), with the write half to keep open: closing it tells the
/// daemon the monitor went away.
pub async fn open_stream(
    run_dir: &Path,
    req: &Request,
) -> Result<
    (
        tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        tokio::net::unix::OwnedWriteHalf,
    ),
    String,
> {
    let (rd, wr) = send_request(run_dir, req).await?;
    let mut lines = BufReader::new(rd).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "netbond did not answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?
        .ok_or("netbond closed the connection without an answer")?;
    let resp: Response =
        serde_json::from_str(&first).map_err(|e| format!("malformed answer from netbond: {e}"))?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_default());
    }
    Ok((lines, wr))
}

/// One `monitor` connection: its event lines and the write half to keep open.
pub type EventStream = (
    tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    tokio::net::unix::OwnedWriteHalf,
);

/// `netbond monitor`'s lines from every daemon followed, on one channel, each as it
/// comes; the channel ends when every stream has ended (a read error ends its stream
/// and is passed on).
pub fn merge_streams(streams: Vec<EventStream>) -> mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = mpsc::channel(64);
    for (mut lines, keep) in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            let _keep = keep;
            loop {
                let item = match lines.next_line().await {
                    Ok(Some(l)) => Ok(l),
                    Ok(None) => return,
                    Err(e) => Err(e.to_string()),
                };
                let end = item.is_err();
                if tx.send(item).await.is_err() || end {
                    return;
                }
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        assert_eq!(
            serde_json::to_string(&Request::Status { iface: None }).unwrap(),
            r#"{"cmd":"status"}"#
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert_eq!(r, Request::Status { iface: None });
        let r: Request = serde_json::from_str(r#"{"cmd":"renew","family":"v4"}"#).unwrap();
        assert_eq!(
            r,
            Request::Renew {
                family: Family::V4,
                iface: None
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"renew","iface":"eth1"}"#).unwrap();
        assert_eq!(
            r,
            Request::Renew {
                family: Family::Both,
                iface: Some("eth1".into())
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format-disk"}"#).is_err());
        assert!(!Request::Status { iface: None }.changes_state());
        assert!(Request::Reload.changes_state());
        let r: Request = serde_json::from_str(r#"{"cmd":"shutdown","release":true}"#).unwrap();
        assert_eq!(r, Request::Shutdown { release: true });
        assert!(r.changes_state());
        let r: Request = serde_json::from_str(r#"{"cmd":"shutdown"}"#).unwrap();
        assert_eq!(r, Request::Shutdown { release: false });
        let w = Request::WaitOnline {
            policy: Some(crate::daemon::online::Policy::All),
            iface: None,
            family: Some(4),
            timeout_ms: 5000,
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"cmd":"wait-online","policy":"all","family":4,"timeout_ms":5000}"#
        );
        assert!(!w.changes_state());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn round_trip_over_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("netbond-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rx = listen(&dir, None).unwrap();
        let mode = std::fs::metadata(socket_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let server = tokio::spawn(async move {
            let (req, reply) = rx.recv().await.unwrap();
            assert_eq!(req, Request::Reload);
            reply.send(Response::done("reloaded")).unwrap();
        });
        let resp = call(&dir, &Request::Reload).await.unwrap();
        assert!(resp.ok);
        assert_eq!(resp.message.as_deref(), Some("reloaded"));
        server.await.unwrap();
        // A second daemon on the same run dir is refused while the first listens.
        assert!(listen(&dir, None).is_err());
        let missing = call(&dir.join("nope"), &Request::Status { iface: None })
            .await
            .unwrap_err();
        assert!(missing.contains("not running"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
