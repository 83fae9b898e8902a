//! The CNI IPAM plugin: what `netbond` does when run with `CNI_COMMAND` set (installed
//! as /opt/cni/bin/netbond). It checks the configuration and the environment, forwards
//! the command to the daemon, and prints the result or the spec's error JSON.

use super::config::{NetConf, SUPPORTED_VERSIONS};
use super::{code, CniError, Reply, Request, DEFAULT_SOCKET};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Longest a config on stdin may be.
const MAX_STDIN: u64 = 4 << 20;
/// The daemon answers ADD within the config's timeout (at most 600 s); wait a little
/// longer than the longest.
const REPLY_TIMEOUT: Duration = Duration::from_secs(630);

/// Send `req` to the daemon at `socket` and read its reply.
pub fn call(socket: &Path, req: &Request) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot reach the netbond CNI daemon at {}: {e} (start it: `netbond cni serve`, or enable netbond-cni.socket)",
                socket.display()
            ),
        )
    })?;
    s.set_read_timeout(Some(REPLY_TIMEOUT))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&serde_json::to_vec(req).map_err(std::io::Error::other)?)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut buf = Vec::new();
    s.take(MAX_STDIN).read_to_end(&mut buf)?;
    serde_json::from_slice(&buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed reply from the daemon: {e}"),
        )
    })
}

fn print_error(version: &str, e: &CniError) -> ExitCode {
    let out = json!({
        "cniVersion": version,
        "code": e.code,
        "msg": e.msg,
        "details": e.details,
    });
    println!("{out}");
    ExitCode::FAILURE
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The plugin's entry point.
pub fn main() -> ExitCode {
    let command = env("CNI_COMMAND");
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_STDIN).read_to_end(&mut stdin) {
        return print_error(
            "1.0.0",
            &CniError::new(code::IO_FAILURE, format!("reading stdin: {e}"), ""),
        );
    }
    // The version to answer in, even when the rest of the config is bad.
    let version = serde_json::from_slice::<serde_json::Value>(&stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|x| x.as_str())
                .map(str::to_string)
        })
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| "1.1.0".to_string());
    if command == "VERSION" {
        println!(
            "{}",
            json!({ "cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS })
        );
        return ExitCode::SUCCESS;
    }
    if !matches!(command.as_str(), "ADD" | "DEL" | "CHECK" | "GC" | "STATUS") {
        return print_error(
            &version,
            &CniError::new(
                code::INVALID_ENV,
                format!("CNI_COMMAND {command:?} is not supported"),
                "ADD, DEL, CHECK, GC, STATUS or VERSION",
            ),
        );
    }
    let conf = match NetConf::parse(&stdin) {
        Ok(c) => c,
        Err(e) => return print_error(&version, &e),
    };
    let req = Request {
        command: command.clone(),
        container_id: env("CNI_CONTAINERID"),
        netns: env("CNI_NETNS"),
        ifname: env("CNI_IFNAME"),
        args: env("CNI_ARGS"),
        config: serde_json::from_slice(&stdin).unwrap_or_default(),
    };
    if let Err(e) = super::config::parse_args(&req.args) {
        return print_error(&version, &e);
    }
    let socket = conf
        .ipam
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    match call(&socket, &req) {
        Err(e) => match command.as_str() {
            "STATUS" => print_error(
                &version,
                &CniError::new(
                    code::NOT_AVAILABLE,
                    "the netbond CNI daemon is not available",
                    e.to_string(),
                ),
            ),
            // A DEL must not wedge the runtime: the daemon releases the leases of gone
            // namespaces when it starts.
            "DEL" => {
                eprintln!("netbond: {e}; DEL done without the daemon (it releases the lease at its next start once the namespace is gone)");
                ExitCode::SUCCESS
            }
            _ => print_error(
                &version,
                &CniError::new(
                    code::TRY_AGAIN,
                    "the netbond CNI daemon is not available",
                    e.to_string(),
                ),
            ),
        },
        Ok(Reply { error: Some(e), .. }) => print_error(&version, &e),
        Ok(Reply { result, .. }) => {
            if command == "ADD" {
                let r = result.unwrap_or_default();
                println!("{r}");
            }
            ExitCode::SUCCESS
        }
    }
}
