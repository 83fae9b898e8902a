//! The CNI daemon seen from the host's client commands: `netbond status` lists its
//! attachments beside the host daemon's interfaces, and `netbond monitor` follows its
//! events beside the host daemon's. Both find it as `cni.sock` in the host daemon's
//! run directory (`/run/netbond/cni.sock`, its default socket) unless `--cni-socket`
//! names another; either daemon may be absent.

use super::{plugin, Reply, Request};
use crate::daemon::control::{self, Request as ControlRequest, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The CNI daemon's socket beside the host daemon's control socket.
pub fn socket_in(run_dir: &Path) -> PathBuf {
    run_dir.join("cni.sock")
}

/// Which CNI socket to ask: the one named, else `cni.sock` in `run_dir` when it exists
/// (no socket there means no CNI daemon, which is not an error).
fn which_socket(run_dir: &Path, named: Option<PathBuf>) -> Option<PathBuf> {
    match named {
        Some(p) => Some(p),
        None => Some(socket_in(run_dir)).filter(|p| p.exists()),
    }
}

/// The daemon's attachments (the `LIST` request), or why they cannot be had.
pub fn attachments(socket: &Path) -> Result<Value, String> {
    let req = Request {
        command: "LIST".into(),
        container_id: String::new(),
        netns: String::new(),
        ifname: String::new(),
        args: String::new(),
        config: Value::Null,
    };
    match plugin::call(socket, &req) {
        Err(e) => Err(e.to_string()),
        Ok(Reply { error: Some(e), .. }) => Err(e.to_string()),
        Ok(Reply { result, .. }) => Ok(result.unwrap_or_else(|| json!([]))),
    }
}

/// `"cni"` in `netbond status --json`: the socket and its attachments, or the error.
fn cni_json(socket: &Path, list: &Result<Value, String>) -> Value {
    let mut v = json!({ "socket": socket.display().to_string() });
    match list {
        Ok(l) => v["attachments"] = l.clone(),
        Err(e) => v["error"] = json!(e),
    }
    v
}

/// The CNI part of `netbond status` for people.
fn cni_text(socket: &Path, list: &Result<Value, String>) -> String {
    match list {
        Err(e) => format!("Containers: the CNI daemon does not answer: {e}\n"),
        Ok(l) => {
            let n = l.as_array().map_or(0, Vec::len);
            let mut out = format!(
                "Containers: {n} attachment(s) (CNI daemon at {})\n",
                socket.display()
            );
            if n > 0 {
                for line in super::render_list(l).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            out
        }
    }
}

/// `netbond status`: the host daemon's status and, without IFACE, the CNI daemon's
/// attachments. Exit 0 when either answered; a missing host daemon is then said but
/// is not a failure (a container host may run only the CNI daemon).
pub fn status(
    run_dir: &Path,
    iface: Option<String>,
    json: bool,
    cni_socket: Option<PathBuf>,
) -> ExitCode {
    let rt = match crate::cli::small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let with_cni = iface.is_none();
    let host = rt.block_on(control::call(run_dir, &ControlRequest::Status { iface }));
    let cni = which_socket(run_dir, cni_socket)
        .filter(|_| with_cni)
        .map(|s| {
            let l = attachments(&s);
            (s, l)
        });
    let host_status = match host {
        Ok(resp) if !resp.ok => {
            eprintln!("netbond: {}", resp.error.unwrap_or_default());
            return ExitCode::from(1);
        }
        Ok(Response {
            status: Some(s), ..
        }) => Ok(s),
        Ok(resp) => Err(resp.message.unwrap_or_default()),
        Err(e) => Err(e),
    };
    match (&host_status, &cni) {
        (Err(e), None) | (Err(e), Some((_, Err(_)))) => {
            eprintln!("netbond: {e}");
            if let Some((s, l)) = &cni {
                eprint!("{}", cni_text(s, l));
            }
            return ExitCode::from(3);
        }
        _ => {}
    }
    if json {
        let mut out = match &host_status {
            Ok(s) => s.clone(),
            Err(e) => json!({ "host_error": e }),
        };
        if let (Some((s, l)), Some(obj)) = (&cni, out.as_object_mut()) {
            obj.insert("cni".into(), cni_json(s, l));
        }
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        match &host_status {
            Ok(s) => print!("{}", crate::dhcp::status::render(s)),
            Err(e) => println!("Host daemon: not running ({e})"),
        }
        if let Some((s, l)) = &cni {
            print!("{}", cni_text(s, l));
        }
    }
    ExitCode::SUCCESS
}

type Lines = tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>;

/// Subscribe to the CNI daemon's events: it answers the control protocol's `monitor`
/// request as the host daemon does. The write half is returned to be kept open:
/// closing it tells the daemon the monitor went away.
async fn subscribe_cni(
    socket: &Path,
    iface: Option<String>,
) -> Result<(Lines, tokio::net::unix::OwnedWriteHalf), String> {
    let fail = |e: String| format!("the CNI daemon at {}: {e}", socket.display());
    let conn = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (rd, mut wr) = conn.into_split();
    let mut line = serde_json::to_string(&ControlRequest::Monitor { iface })
        .map_err(|e| fail(e.to_string()))?;
    line.push('\n');
    wr.write_all(line.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut lines = BufReader::new(rd).lines();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| fail("no answer within 10 s".into()))?
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("closed the connection without an answer".into()))?;
    match serde_json::from_str::<Response>(&answer) {
        Ok(r) if r.ok => Ok((lines, wr)),
        Ok(r) => Err(fail(r.error.unwrap_or_default())),
        Err(e) => Err(fail(format!("malformed answer: {e}"))),
    }
}

/// `netbond monitor`'s sources: the host daemon and, when its socket exists (or is
/// named), the CNI daemon. The lines of both arrive on one channel, each as it comes;
/// the channel ends when every daemon has stopped. Fails only when neither answers.
pub async fn follow(
    run_dir: &Path,
    iface: Option<String>,
    cni_socket: Option<PathBuf>,
) -> Result<mpsc::Receiver<Result<String, String>>, String> {
    let req = ControlRequest::Monitor {
        iface: iface.clone(),
    };
    let mut streams = Vec::new();
    let host_error = match control::open_stream(run_dir, &req).await {
        Ok(s) => {
            eprintln!(
                "netbond monitor: following events from {}",
                control::socket_path(run_dir).display()
            );
            streams.push(s);
            None
        }
        Err(e) => Some(e),
    };
    if let Some(sock) = which_socket(run_dir, cni_socket) {
        match subscribe_cni(&sock, iface).await {
            Ok(s) => {
                eprintln!("netbond monitor: following events from {}", sock.display());
                streams.push(s);
            }
            Err(e) if streams.is_empty() => {
                return Err(format!("{}; {e}", host_error.unwrap_or_default()))
            }
            Err(e) => eprintln!("netbond monitor: {e}"),
        }
    }
    match host_error {
        Some(e) if streams.is_empty() => return Err(e),
        Some(e) => eprintln!("netbond monitor: the host daemon: {e}"),
        None => {}
    }
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
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cni_part_of_status() {
        let s = Path::new("/run/netbond/cni.sock");
        let l = Ok(json!([{
            "network": "lan", "container_id": "c1", "ifname": "eth0",
            "netns": "/run/netns/c1", "state": "BOUND",
            "addresses": ["10.0.0.5/24"], "remaining_secs": 60
        }]));
        assert_eq!(
            cni_text(s, &l),
            "Containers: 1 attachment(s) (CNI daemon at /run/netbond/cni.sock)\n  lan c1 eth0 netns=/run/netns/c1 state=BOUND addresses=10.0.0.5/24 left=60s\n"
        );
        let v = cni_json(s, &l);
        assert_eq!(v["socket"], "/run/netbond/cni.sock");
        assert_eq!(v["attachments"][0]["container_id"], "c1");
        let e = cni_json(s, &Err("refused".into()));
        assert_eq!(e["error"], "refused");
        assert!(e.get("attachments").is_none());
        assert_eq!(
            which_socket(Path::new("/nonexistent-run-dir"), None),
            None,
            "no socket, no CNI daemon"
        );
    }
}
