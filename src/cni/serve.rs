//! `netbond cni serve`: the host daemon. One thread, one tokio event loop for every
//! attachment; the plugin talks to it over a Unix socket (one JSON request and one
//! JSON reply per connection).

use super::attach::{self, Ctx, Handle, Settings};
use super::config::{self, ClientIdMode, HostnameFrom, NetConf};
use super::events::{self as cev, Gone};
use super::netns;
use super::store::{Key, Store};
use super::{code, CniError, Reply, Request};
use crate::config::HooksConfig;
use crate::daemon::clock::Clock;
use crate::daemon::control::Request as ControlRequest;
use crate::logging::{debug, error, info, warn};
use netbond_proto::duid::{rfc4361_client_id, Iaid};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Largest request accepted (a config with a long valid-attachments list fits).
const MAX_REQUEST: u64 = 4 << 20;

type Attachments = Rc<RefCell<BTreeMap<Key, Rc<Handle>>>>;

/// Run the daemon until SIGTERM/SIGINT. Leases are kept across a stop (the records stay
/// on disk and the next start resumes them), as for the host daemon.
pub fn main(socket: PathBuf, state_dir: PathBuf, hooks: Option<HooksConfig>) -> ExitCode {
    let rt = match crate::cli::small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, serve(socket, state_dir, hooks)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    socket: PathBuf,
    state_dir: PathBuf,
    hooks: Option<HooksConfig>,
) -> Result<(), String> {
    let hooks_timeout = hooks.as_ref().map_or(0, |h| h.timeout);
    if let Some(h) = &hooks {
        crate::daemon::hooks::configure(h);
    }
    let store = Store::open(&state_dir).map_err(|e| e.to_string())?;
    let host_store = crate::state::store::Store::open(&state_dir).map_err(|e| e.to_string())?;
    let duid =
        crate::state::identity::load_or_create_duid(&crate::config::Config::default(), &host_store);
    let ctx = Rc::new(Ctx {
        clock: Clock::new(),
        writer: super::writer::Writer::new(store.clone()),
        store,
        duid,
    });
    info!("cni: host DUID {}", ctx.duid);
    let atts: Attachments = Rc::default();
    resume(&ctx, &atts).await;

    let (listener, bound) = listen(&socket)?;
    info!("cni: serving on {}", socket.display());
    cev::started(atts.borrow().len());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| e.to_string())?;
    let why = loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((conn, _)) => {
                    let ctx = ctx.clone();
                    let atts = atts.clone();
                    tokio::task::spawn_local(async move { connection(conn, ctx, atts).await });
                }
                Err(e) => {
                    warn!("cni: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    info!(
        "cni: stopping; {} attachment(s) kept for the next start",
        atts.borrow().len()
    );
    if bound {
        let _ = std::fs::remove_file(&socket);
    }
    if !ctx.writer.flush(std::time::Duration::from_secs(5)).await {
        warn!("cni: the last records were not on disk within 5 s");
    }
    cev::stopped(why, hooks_timeout).await;
    Ok(())
}

/// The socket systemd passed (netbond-cni.socket), else a new one at `path`.
fn listen(path: &Path) -> Result<(UnixListener, bool), String> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if pid_ok && fds >= 1 {
        use std::os::fd::FromRawFd;
        // SAFETY: systemd's socket-activation protocol hands fd 3 to this process.
        let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(3) };
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let l = UnixListener::from_std(l).map_err(|e| e.to_string())?;
        return Ok((l, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    // A socket left by a crashed daemon would make bind fail.
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| {
        format!(
            "binding {}: {e} (is another `netbond cni serve` running?)",
            path.display()
        )
    })?;
    // Only root (the runtime calling the plugin) may ask for leases.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok((l, true))
}

/// Resume every stored attachment whose namespace still exists; release the others.
async fn resume(ctx: &Rc<Ctx>, atts: &Attachments) {
    for rec in ctx.store.load_all() {
        if !netns::exists(&rec.netns) {
            info!(
                "cni: {}: network namespace {} is gone; releasing",
                rec.key,
                rec.netns.display()
            );
            attach::release_orphan(ctx, &rec).await;
            cev::removed(&rec.key, &rec.netns, Gone::NetnsGone);
            continue;
        }
        if rec.down {
            // Bringing the link up again would put a stale address back on the wire.
            info!(
                "cni: {}: its link was taken down after a lost lease; waiting for DEL",
                rec.key
            );
            continue;
        }
        let key = rec.key.clone();
        match attach::start(
            ctx.clone(),
            key.clone(),
            rec.netns.clone(),
            rec.spec.clone(),
            Some(rec.clone()),
        )
        .await
        {
            Ok(h) => {
                info!("cni: {key}: resumed");
                cev::added(&key, &h.netns, true);
                atts.borrow_mut().insert(key, Rc::new(h));
            }
            Err(e) => {
                warn!("cni: {key}: cannot resume ({e}); releasing");
                attach::release_orphan(ctx, &rec).await;
                cev::removed(&rec.key, &rec.netns, Gone::NotResumed);
            }
        }
    }
}

async fn connection(conn: UnixStream, ctx: Rc<Ctx>, atts: Attachments) {
    let (rd, mut conn) = conn.into_split();
    let mut reader = BufReader::new(rd.take(MAX_REQUEST));
    let mut buf = Vec::new();
    let mut read = reader.read_until(b'\n', &mut buf).await;
    // A monitor speaks the host daemon's control protocol (`{"cmd":"monitor"}` and a
    // newline) and keeps its end open; the plugin sends one JSON value and closes its
    // end, so its request is everything up to EOF.
    if buf.ends_with(b"\n") {
        if let Ok(ControlRequest::Monitor { iface }) = serde_json::from_slice(&buf) {
            let rd = reader.into_inner().into_inner();
            if let Err(e) = crate::daemon::events::serve_monitor(rd, conn, iface).await {
                debug!("cni: monitor: {e}");
            }
            return;
        }
        read = reader.read_to_end(&mut buf).await;
    }
    let reply = match read {
        Err(e) => {
            warn!("cni: reading a request: {e}");
            return;
        }
        Ok(_) => match serde_json::from_slice::<Request>(&buf) {
            Err(e) => err(CniError::new(
                code::DECODE,
                format!("malformed request: {e}"),
                "the plugin and the daemon must be the same netbond version",
            )),
            Ok(req) => match handle(req, &ctx, &atts).await {
                Ok(result) => Reply {
                    result: Some(result),
                    error: None,
                },
                Err(e) => err(e),
            },
        },
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    if let Err(e) = conn.write_all(&out).await {
        warn!("cni: writing a reply: {e}");
    }
}

fn err(e: CniError) -> Reply {
    Reply {
        result: None,
        error: Some(e),
    }
}

fn need(v: &str, name: &str) -> Result<(), CniError> {
    if v.is_empty() {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("{name} is not set"),
            "the runtime must set it for this command",
        ));
    }
    Ok(())
}

async fn handle(
    req: Request,
    ctx: &Rc<Ctx>,
    atts: &Attachments,
) -> Result<serde_json::Value, CniError> {
    use serde_json::Value;
    match req.command.as_str() {
        "LIST" => {
            let hs: Vec<_> = atts.borrow().values().cloned().collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.status().await);
            }
            return Ok(Value::Array(out));
        }
        "STATUS" => return Ok(Value::Null),
        _ => {}
    }
    let conf = NetConf::from_value(&req.config)?;
    let key = |cid: &str, ifname: &str| Key {
        network: conf.name.clone(),
        container_id: cid.to_string(),
        ifname: ifname.to_string(),
    };
    match req.command.as_str() {
        "ADD" => {
            need(&req.container_id, "CNI_CONTAINERID")?;
            need(&req.netns, "CNI_NETNS")?;
            need(&req.ifname, "CNI_IFNAME")?;
            let k = key(&req.container_id, &req.ifname);
            let t0 = std::time::Instant::now();
            let existing = atts.borrow().get(&k).cloned();
            let h = match existing {
                Some(h) => h,
                None => {
                    let settings = settings(&conf, &req, ctx)?;
                    let h = Rc::new(
                        attach::start(
                            ctx.clone(),
                            k.clone(),
                            PathBuf::from(&req.netns),
                            settings,
                            None,
                        )
                        .await?,
                    );
                    info!(
                        "cni: {k}: added in {} (sockets open after {} ms)",
                        req.netns,
                        t0.elapsed().as_millis()
                    );
                    cev::added(&k, &h.netns, false);
                    atts.borrow_mut().insert(k.clone(), h.clone());
                    h
                }
            };
            let r = h.wait().await;
            // Where an ADD's time goes (see the containers benchmark).
            debug!(
                "cni: {k}: ADD answered after {} ms",
                t0.elapsed().as_millis()
            );
            r
        }
        "DEL" => {
            need(&req.container_id, "CNI_CONTAINERID")?;
            need(&req.ifname, "CNI_IFNAME")?;
            let k = key(&req.container_id, &req.ifname);
            release(ctx, atts, &k, Gone::Del).await;
            Ok(Value::Null)
        }
        "CHECK" => {
            need(&req.container_id, "CNI_CONTAINERID")?;
            need(&req.ifname, "CNI_IFNAME")?;
            let k = key(&req.container_id, &req.ifname);
            let h = atts.borrow().get(&k).cloned();
            match h {
                Some(h) => h.check().await.map(|()| Value::Null),
                None => Err(CniError::new(
                    code::UNKNOWN_CONTAINER,
                    format!("{k}: no such attachment"),
                    "ADD it first",
                )),
            }
        }
        "GC" => {
            let valid = conf.valid_attachments.clone().ok_or_else(|| {
                CniError::new(
                    code::INVALID_CONFIG,
                    "GC without cni.dev/valid-attachments",
                    "the runtime must list the attachments to keep",
                )
            })?;
            let keep = |k: &Key| {
                k.network != conf.name
                    || valid
                        .iter()
                        .any(|v| v.container_id == k.container_id && v.ifname == k.ifname)
            };
            let mut stale: Vec<Key> = atts.borrow().keys().filter(|k| !keep(k)).cloned().collect();
            for rec in ctx.store.load_all() {
                if !keep(&rec.key) && !stale.contains(&rec.key) {
                    stale.push(rec.key);
                }
            }
            for k in &stale {
                info!("cni: {k}: not a valid attachment (GC)");
                release(ctx, atts, k, Gone::Gc).await;
            }
            Ok(Value::Null)
        }
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_COMMAND {other:?} is not supported"),
            "ADD, DEL, CHECK, GC, STATUS or VERSION",
        )),
    }
}

/// Release `k` whether it runs or only has a record; nothing to do is success.
async fn release(ctx: &Rc<Ctx>, atts: &Attachments, k: &Key, why: Gone) {
    let h = atts.borrow_mut().remove(k);
    match h {
        Some(h) => {
            h.release().await;
            cev::removed(k, &h.netns, why);
        }
        None => {
            if let Some(rec) = ctx.store.load_all().into_iter().find(|r| &r.key == k) {
                attach::release_orphan(ctx, &rec).await;
                cev::removed(k, &rec.netns, why);
            } else {
                info!("cni: {k}: no lease held (DEL is idempotent)");
            }
        }
    }
}

/// The attachment's identity and options from the config and CNI_ARGS.
/// The host name to send (option 12), from the configuration or CNI_ARGS. The one name
/// rule applies, as for the daemon's own host name: what is not a host name is not sent
/// (a CNI_ARGS value is the runtime's, checked by no one before).
fn hostname(from: Option<&HostnameFrom>, args: &[(String, String)]) -> Option<String> {
    let h = match from? {
        HostnameFrom::Value(v) => v.as_str(),
        HostnameFrom::Arg(a) => config::arg(args, a)?,
    };
    let valid = netbond_proto::name::host_name(h.as_bytes());
    if valid.is_none() {
        warn!("cni: host name {h:?} is not a valid DNS name; not sent");
    }
    valid
}

fn settings(conf: &NetConf, req: &Request, ctx: &Ctx) -> Result<Settings, CniError> {
    let args = config::parse_args(&req.args)?;
    // The IAID names the attachment in both client-ids: from the configured identity
    // (so a recreated pod gets its address back) or from the attachment key.
    let identity = if conf.ipam.identity.is_empty() {
        format!("{}/{}/{}", conf.name, req.container_id, req.ifname)
    } else {
        let mut parts = vec![conf.name.clone()];
        for n in &conf.ipam.identity {
            let v = config::arg(&args, n).ok_or_else(|| {
                CniError::new(
                    code::INVALID_ENV,
                    format!("ipam.identity names {n}, which CNI_ARGS does not have"),
                    "set it in CNI_ARGS or remove it from ipam.identity",
                )
            })?;
            parts.push(v.to_string());
        }
        parts.push(req.ifname.clone());
        parts.join("/")
    };
    let iaid = Iaid::from_name(&identity);
    let client_id = match conf.ipam.client_id {
        ClientIdMode::Rfc4361 => rfc4361_client_id(iaid, &ctx.duid),
        // The stock plugin's identifier, so existing reservations keep matching.
        ClientIdMode::Legacy => format!("{}/{}/{}", req.container_id, conf.name, req.ifname)
            .into_bytes()
            .into_iter()
            .take(254)
            .collect(),
    };
    let hostname = hostname(conf.ipam.hostname.as_ref(), &args);
    Ok(Settings {
        cni_version: conf.cni_version.clone(),
        ipv6: conf.ipam.ipv6,
        client_id,
        iaid: iaid.0,
        hostname,
        timeout: conf.ipam.timeout,
        broadcast: conf.ipam.broadcast,
        request: conf.ipam.request.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_the_name_rule() {
        let args = vec![
            ("K8S_POD_NAME".to_string(), "Web-0".to_string()),
            ("BAD".to_string(), "a b;c".to_string()),
        ];
        let arg = |a: &str| HostnameFrom::Arg(a.into());
        assert_eq!(
            hostname(Some(&arg("K8S_POD_NAME")), &args),
            Some("web-0".into())
        );
        assert_eq!(hostname(Some(&arg("BAD")), &args), None);
        assert_eq!(hostname(Some(&arg("MISSING")), &args), None);
        let value = HostnameFrom::Value("db.example".into());
        assert_eq!(hostname(Some(&value), &args), Some("db.example".into()));
        assert_eq!(
            hostname(Some(&HostnameFrom::Value("_x".into())), &args),
            None
        );
        assert_eq!(hostname(None, &args), None);
    }
}
