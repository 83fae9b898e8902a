//! Hooks: the executables in `[hooks] dir` run on every event, in name order, with the
//! event in environment variables (names in the spirit of dhclient-script) and as JSON
//! on standard input. See README, "Hooks".
//!
//! Never through a shell: each hook is executed directly with a cleared environment,
//! and the values are the already-validated ones the event carries (anything with a
//! control character is left out). The daemon's timing never depends on a hook: an
//! event is queued (per interface, so one interface's hooks see its events in order)
//! and the hooks run in tasks of their own, at most `max_concurrent` processes at once,
//! each killed with its process group at `timeout`.
//!
//! Which user: netbond drops CAP_SETUID/CAP_SETGID at start (see `privs.rs`), so a hook
//! runs as netbond's own user. When that is root, hooks are refused unless
//! `run_as_root = true`; the way to run them unprivileged is `[daemon] user`, whose
//! hooks get no capabilities at all.

use crate::config::HooksConfig;
use crate::logging::{debug, info, warn};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Events waiting for one interface's hooks before new ones are dropped (and logged).
const QUEUE: usize = 64;
/// The PATH hooks get (the environment is otherwise cleared).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Runner {
    dir: PathBuf,
    timeout: Duration,
    slots: Arc<Semaphore>,
    queues: HashMap<String, mpsc::Sender<Value>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

static RUNNER: Mutex<Option<Runner>> = Mutex::new(None);

/// Whether hooks may run as `euid`: never as root unless configured.
fn allowed(cfg: &HooksConfig, euid: u32) -> bool {
    euid != 0 || cfg.run_as_root
}

/// Start running hooks (called once the daemon has its final user). A directory that
/// does not exist means no hooks; one that exists but is refused is said in the log.
pub fn configure(cfg: &HooksConfig) {
    let present = cfg.dir.is_dir();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mut g = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    *g = None;
    if !present {
        debug!("hooks: no directory {}; no hooks", cfg.dir.display());
        return;
    }
    if !allowed(cfg, euid) {
        warn!(
            "hooks: the programs in {} are not run: netbond runs as root; set [hooks] run_as_root = true to run them as root, or run netbond as an unprivileged [daemon] user",
            cfg.dir.display()
        );
        return;
    }
    info!(
        "hooks: running the programs in {} on events (timeout {} s, at most {} at once)",
        cfg.dir.display(),
        cfg.timeout,
        cfg.max_concurrent
    );
    *g = Some(Runner {
        dir: cfg.dir.clone(),
        timeout: Duration::from_secs(cfg.timeout),
        slots: Arc::new(Semaphore::new(cfg.max_concurrent)),
        queues: HashMap::new(),
        tasks: Vec::new(),
    });
}

/// Queue an event for the hooks (a no-op without hooks). Never waits.
pub fn dispatch(ev: &Value) {
    let mut g = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = g.as_mut() else { return };
    // The CNI daemon's events name the attachment: its containers' interfaces are all
    // `eth0`, and one container's hooks must not wait for another's.
    let key = ev["attachment"]
        .as_str()
        .or(ev["interface"].as_str())
        .unwrap_or("")
        .to_string();
    let tx = match r.queues.get(&key) {
        Some(tx) if !tx.is_closed() => tx.clone(),
        _ => {
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = tokio::spawn(worker(rx, r.dir.clone(), r.timeout, r.slots.clone()));
            r.tasks.retain(|t| !t.is_finished());
            r.tasks.push(task);
            r.queues.insert(key.clone(), tx.clone());
            tx
        }
    };
    if tx.try_send(ev.clone()).is_err() {
        warn!(
            "hooks: {} events are already waiting for the hooks of {}; event {} ({}) is not given to them",
            QUEUE,
            if key.is_empty() { "the daemon" } else { &key },
            ev["seq"],
            ev["type"]
        );
    }
}

/// At exit: let queued and running hooks finish, for at most `bound`.
pub async fn drain(bound: Duration) {
    let tasks = {
        let mut g = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some(r) => {
                r.queues.clear();
                std::mem::take(&mut r.tasks)
            }
            None => return,
        }
    };
    if tokio::time::timeout(bound, futures::future::join_all(tasks))
        .await
        .is_err()
    {
        warn!("hooks: still running at exit after {bound:?}; not waiting for them");
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Value>,
    dir: PathBuf,
    timeout: Duration,
    slots: Arc<Semaphore>,
) {
    while let Some(ev) = rx.recv().await {
        let d = dir.clone();
        let hooks = tokio::task::spawn_blocking(move || list(&d))
            .await
            .unwrap_or_default();
        if hooks.is_empty() {
            continue;
        }
        let env = environment(&ev);
        let json = format!("{ev}\n");
        for hook in hooks {
            let Ok(_slot) = slots.acquire().await else {
                return;
            };
            run(&hook, &env, json.as_bytes(), timeout, &ev).await;
        }
    }
}

/// The hooks in `dir`, in name order: executable regular files, skipping hidden and
/// backup names (as run-parts does) and files anyone but their owner may change.
fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            || name.ends_with('~')
            || name.contains(".dpkg-")
            || name.ends_with(".disabled")
        {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if !meta.is_file() || mode & 0o111 == 0 {
            continue;
        }
        if mode & 0o022 != 0 {
            warn!(
                "hooks: {} is not run: others may change it (mode {:o}); chmod go-w it",
                path.display(),
                mode & 0o7777
            );
            continue;
        }
        out.push(path);
    }
    out.sort();
    out
}

async fn run(hook: &Path, env: &[(String, String)], json: &[u8], timeout: Duration, ev: &Value) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(hook);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!("hooks: cannot run {}: {e}", hook.display());
            return;
        }
    };
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let done = tokio::time::timeout(timeout, async {
        if let Some(s) = stdin.as_mut() {
            // A hook that does not read its input is fine: it ends, the pipe breaks.
            let _ = s.write_all(json).await;
        }
        drop(stdin);
        child.wait().await
    })
    .await;
    let what = format!("{} {}", ev["type"].as_str().unwrap_or("?"), ev["seq"]);
    match done {
        Ok(Ok(st)) if st.success() => debug!("hooks: {} ({what}): exit 0", hook.display()),
        Ok(Ok(st)) => warn!("hooks: {} ({what}): {st}", hook.display()),
        Ok(Err(e)) => warn!("hooks: {} ({what}): {e}", hook.display()),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // The whole group: a hook's own children go with it.
                // SAFETY: kill with a negative pid signals that process group.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            warn!(
                "hooks: {} ({what}): killed after {} s (the [hooks] timeout)",
                hook.display(),
                timeout.as_secs()
            );
        }
    }
}

/// dhclient-script's REASON for an event type where one exists, else the type in
/// capitals.
fn reason(kind: &str) -> String {
    match kind {
        "dhcp4-bound" | "dhcp4-changed" => "BOUND".into(),
        "dhcp4-renewed" => "RENEW".into(),
        "dhcp4-reconfirmed" | "dhcp4-rebooted" => "REBOOT".into(),
        "dhcp4-lost" => "EXPIRE".into(),
        "dhcp4-released" => "RELEASE".into(),
        "dhcp4-stopped" => "STOP".into(),
        "dhcp4-timeout" => "FAIL".into(),
        "dhcp6-bound" => "BOUND6".into(),
        "dhcp6-renewed" => "RENEW6".into(),
        "dhcp6-lost" => "EXPIRE6".into(),
        "dhcp6-released" => "RELEASE6".into(),
        "dhcp6-stopped" => "STOP6".into(),
        "dhcp6-info" => "INFORM6".into(),
        other => other.to_ascii_uppercase().replace('-', "_"),
    }
}

/// A value as a hook sees it: strings as they are, lists space-separated, numbers in
/// decimal; nothing for null, objects, or text with a control character.
fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null | Value::Object(_) => return None,
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    };
    (!s.chars().any(char::is_control) && s.len() <= 8192).then_some(s)
}

fn mask(prefix_len: u64) -> String {
    let bits = u32::try_from(prefix_len.min(32)).unwrap_or(32);
    let m = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    std::net::Ipv4Addr::from(m).to_string()
}

/// dhclient-script names for a DHCPv4 lease object.
fn lease4_env(out: &mut Vec<(String, String)>, pre: &str, l: &Value) {
    let mut put = |k: &str, v: &Value| {
        if let Some(s) = text(v).filter(|s| !s.is_empty()) {
            out.push((format!("{pre}_{k}"), s));
        }
    };
    put("ip_address", &l["address"]);
    put("prefix_length", &l["prefix_len"]);
    if let Some(p) = l["prefix_len"].as_u64() {
        put("subnet_mask", &Value::from(mask(p)));
    }
    put("routers", &l["routers"]);
    put("domain_name_servers", &l["dns"]);
    put("domain_name", &l["domain"]);
    put("domain_search", &l["search"]);
    put("ntp_servers", &l["ntp"]);
    put("host_name", &l["hostname"]);
    put("interface_mtu", &l["mtu"]);
    put("dhcp_lease_time", &l["lease_secs"]);
    put("dhcp_renewal_time", &l["t1_secs"]);
    put("dhcp_rebinding_time", &l["t2_secs"]);
    put("dhcp_server_identifier", &l["server"]);
    put("captive_portal", &l["captive_portal"]);
}

/// dhclient-script (-6) names for a DHCPv6 lease object.
fn lease6_env(out: &mut Vec<(String, String)>, pre: &str, l: &Value) {
    let mut put = |k: &str, v: &Value| {
        if let Some(s) = text(v).filter(|s| !s.is_empty()) {
            out.push((format!("{pre}_{k}"), s));
        }
    };
    let addrs: Vec<Value> = l["addresses"]
        .as_array()
        .map(|a| a.iter().map(|x| x["address"].clone()).collect())
        .unwrap_or_default();
    if !addrs.is_empty() {
        put("ip6_address", &Value::Array(addrs));
        put("ip6_prefixlen", &Value::from(128));
        put("preferred_life", &l["addresses"][0]["preferred_secs"]);
        put("max_life", &l["addresses"][0]["valid_secs"]);
    }
    let prefixes: Vec<Value> = l["prefixes"]
        .as_array()
        .map(|a| a.iter().map(|x| x["prefix"].clone()).collect())
        .unwrap_or_default();
    put("ip6_prefix", &Value::Array(prefixes));
    put("dhcp6_name_servers", &l["dns"]);
    put("dhcp6_domain_search", &l["domains"]);
    put("dhcp6_ntp_servers", &l["ntp"]);
    put("dhcp6_renewal_time", &l["t1_secs"]);
    put("dhcp6_rebinding_time", &l["t2_secs"]);
    put("captive_portal", &l["captive_portal"]);
}

/// The environment of a hook for event `ev` (documented in the README).
pub fn environment(ev: &Value) -> Vec<(String, String)> {
    let kind = ev["type"].as_str().unwrap_or("");
    let mut out: Vec<(String, String)> = vec![
        ("PATH".into(), PATH.into()),
        ("REASON".into(), reason(kind)),
        ("NETBOND_EVENT".into(), kind.into()),
        ("NETBOND_EVENT_VERSION".into(), ev["v"].to_string()),
        ("NETBOND_SEQ".into(), ev["seq"].to_string()),
        ("NETBOND_TIME".into(), text(&ev["time"]).unwrap_or_default()),
        (
            "INTERFACE".into(),
            text(&ev["interface"]).unwrap_or_default(),
        ),
    ];
    let v6 = kind.starts_with("dhcp6-");
    let Some(obj) = ev.as_object() else {
        return out;
    };
    for (k, v) in obj {
        match k.as_str() {
            // `assignments` (prefix delegation) is a list of objects: on stdin only;
            // its flat `downstream_*` lists are below as NETBOND_DOWNSTREAM_*.
            "v" | "seq" | "time" | "type" | "interface" | "assignments" => {}
            "lease" | "old" => {
                let pre = if k == "lease" { "new" } else { "old" };
                if v6 {
                    lease6_env(&mut out, pre, v);
                } else {
                    lease4_env(&mut out, pre, v);
                }
            }
            "dns" if kind == "dns-changed" => {
                let name = if ev["family"] == "ipv6" {
                    "new_dhcp6_name_servers"
                } else {
                    "new_domain_name_servers"
                };
                out.extend(text(v).map(|s| (name.to_string(), s)));
            }
            "domains" if kind == "dns-changed" => {
                let name = if ev["family"] == "ipv6" {
                    "new_dhcp6_domain_search"
                } else {
                    "new_domain_search"
                };
                out.extend(text(v).map(|s| (name.to_string(), s)));
            }
            "servers" if kind == "ntp-changed" => {
                out.extend(text(v).map(|s| ("new_ntp_servers".to_string(), s)));
            }
            "uri" if kind == "captive-portal" => {
                out.extend(text(v).map(|s| ("new_captive_portal".to_string(), s)));
            }
            "bond" => out.extend(text(v).map(|s| ("BOND".to_string(), s))),
            "active_port" => out.extend(text(v).map(|s| ("BOND_ACTIVE_PORT".to_string(), s))),
            "old_active_port" => {
                out.extend(text(v).map(|s| ("BOND_OLD_ACTIVE_PORT".to_string(), s)))
            }
            other => {
                let name = format!(
                    "NETBOND_{}",
                    other
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        })
                        .collect::<String>()
                );
                // A key never overrides a variable named above.
                if !out.iter().any(|(n, _)| *n == name) {
                    out.extend(text(v).map(|s| (name, s)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn root_needs_run_as_root() {
        let mut c = HooksConfig::default();
        assert!(!allowed(&c, 0));
        assert!(allowed(&c, 65534));
        c.run_as_root = true;
        assert!(allowed(&c, 0));
    }

    #[test]
    fn environment_uses_dhclient_names_and_drops_control_characters() {
        let ev = json!({
            "v": 1, "seq": 7, "time": "2026-12-03T00:00:00.000Z", "type": "dhcp4-changed",
            "interface": "eth0",
            "lease": {"address": "10.0.0.5", "prefix_len": 24, "routers": ["10.0.0.1"],
                      "dns": ["10.0.0.1", "10.0.0.2"], "domain": "bad\nname", "ntp": [],
                      "lease_secs": 120, "server": "10.0.0.1"},
            "old": {"address": "10.0.0.4", "prefix_len": 24},
            "reason": "nak",
            "event": "not the type",
        });
        let env = environment(&ev);
        assert_eq!(get(&env, "REASON"), Some("BOUND"));
        assert_eq!(get(&env, "INTERFACE"), Some("eth0"));
        assert_eq!(get(&env, "NETBOND_SEQ"), Some("7"));
        assert_eq!(get(&env, "new_ip_address"), Some("10.0.0.5"));
        assert_eq!(get(&env, "new_subnet_mask"), Some("255.255.255.0"));
        assert_eq!(get(&env, "new_routers"), Some("10.0.0.1"));
        assert_eq!(
            get(&env, "new_domain_name_servers"),
            Some("10.0.0.1 10.0.0.2")
        );
        assert_eq!(get(&env, "new_dhcp_lease_time"), Some("120"));
        assert_eq!(get(&env, "old_ip_address"), Some("10.0.0.4"));
        assert_eq!(get(&env, "NETBOND_REASON"), Some("nak"));
        assert_eq!(get(&env, "NETBOND_EVENT"), Some("dhcp4-changed"));
        assert_eq!(env.iter().filter(|(n, _)| n == "NETBOND_EVENT").count(), 1);
        assert_eq!(get(&env, "new_domain_name"), None);
        assert_eq!(get(&env, "new_ntp_servers"), None);
        let v6 = environment(&json!({"type": "dhcp6-bound", "v": 1, "seq": 1,
            "lease": {"addresses": [{"address": "fd00::5", "preferred_secs": 60, "valid_secs": 120}],
                      "prefixes": [{"prefix": "fd01::/56"}], "dns": ["fd00::1"]}}));
        assert_eq!(get(&v6, "REASON"), Some("BOUND6"));
        assert_eq!(get(&v6, "new_ip6_address"), Some("fd00::5"));
        assert_eq!(get(&v6, "new_max_life"), Some("120"));
        assert_eq!(get(&v6, "new_ip6_prefix"), Some("fd01::/56"));
        assert_eq!(get(&v6, "new_dhcp6_name_servers"), Some("fd00::1"));
        let cp = environment(&json!({"type": "captive-portal", "v": 1, "seq": 2,
            "interface": "eth0", "source": "ra", "uri": "https://portal.example/"}));
        assert_eq!(get(&cp, "REASON"), Some("CAPTIVE_PORTAL"));
        assert_eq!(
            get(&cp, "new_captive_portal"),
            Some("https://portal.example/")
        );
        assert_eq!(get(&cp, "NETBOND_SOURCE"), Some("ra"));
        let v4 = environment(&json!({"type": "dhcp4-bound", "v": 1, "seq": 3,
            "lease": {"address": "10.0.0.5", "captive_portal": "https://p.example/"}}));
        assert_eq!(get(&v4, "new_captive_portal"), Some("https://p.example/"));
    }
}
