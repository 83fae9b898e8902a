//! netbond as a CNI IPAM plugin: the plugin front end (the same binary run with
//! `CNI_COMMAND` set), the host daemon (`netbond cni serve`) that holds the leases of
//! every container attachment in one event loop, and what the two share: the network
//! configuration as the plugin receives it, the request the plugin forwards, the CNI
//! error codes.

pub mod attach;
pub mod client;
pub mod config;
pub mod events;
pub mod netns;
pub mod plugin;
pub mod serve;
pub mod store;
pub mod writer;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the plugin finds the daemon unless the config's `daemonSocketPath` says.
pub const DEFAULT_SOCKET: &str = "/run/netbond/cni.sock";
/// Where the daemon keeps the host DUID and the attachments' leases.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netbond/cni";

/// CNI spec error codes (SPEC.md "Error").
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN: u32 = 11;
    /// The plugin is not available (STATUS: the daemon is down).
    pub const NOT_AVAILABLE: u32 = 50;
    /// Plugin-specific (100+): the attachment's lease or address is not in place.
    pub const LEASE_NOT_HELD: u32 = 100;
}

/// A CNI error: printed as the spec's error JSON by the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    /// One of [`code`].
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer explanation (what to do).
    #[serde(default)]
    pub details: String,
}

impl CniError {
    /// An error with a message and what to do about it.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (CNI code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

/// What the plugin forwards to the daemon: the CNI command, its environment and the
/// network configuration as received on stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// ADD, DEL, CHECK, GC, STATUS, or LIST (from `netbond cni status`).
    pub command: String,
    #[serde(default)]
    pub container_id: String,
    #[serde(default)]
    pub netns: String,
    #[serde(default)]
    pub ifname: String,
    /// CNI_ARGS as given (`K=V;K=V`).
    #[serde(default)]
    pub args: String,
    /// The network configuration (stdin).
    #[serde(default)]
    pub config: serde_json::Value,
}

/// The daemon's answer: a result or an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CniError>,
}

/// `netbond cni ...` (its options and help texts: `cli/table.rs`).
#[derive(Debug)]
pub enum CniCommand {
    /// Run the host daemon that holds the containers' leases.
    Serve {
        socket: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        /// `None`: no hooks.
        hooks_dir: Option<PathBuf>,
        hooks_timeout: u64,
        log_level: String,
    },
    /// List the attachments the daemon holds.
    Status { socket: Option<PathBuf>, json: bool },
}

/// Run a `netbond cni` command.
pub fn run(cmd: CniCommand) -> ExitCode {
    match cmd {
        CniCommand::Serve {
            socket,
            state_dir,
            hooks_dir,
            hooks_timeout,
            log_level,
        } => {
            crate::logging::init(Some(&log_level), &log_level);
            // Naming the directory is the consent to run them as root: this daemon
            // needs root (it enters the containers' namespaces).
            let hooks = hooks_dir.map(|dir| crate::config::HooksConfig {
                dir,
                run_as_root: true,
                timeout: hooks_timeout,
                ..crate::config::HooksConfig::default()
            });
            serve::main(
                socket.unwrap_or_else(|| DEFAULT_SOCKET.into()),
                state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
                hooks,
            )
        }
        CniCommand::Status { socket, json } => {
            let socket = socket.unwrap_or_else(|| DEFAULT_SOCKET.into());
            match client::attachments(&socket) {
                Err(e) => {
                    eprintln!("netbond: {e}");
                    ExitCode::from(3)
                }
                Ok(list) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(list) => {
                    print!("{}", render_list(&list));
                    ExitCode::SUCCESS
                }
            }
        }
    }
}

/// The attachments as a table for `netbond cni status` (and `netbond status`).
pub(crate) fn render_list(list: &serde_json::Value) -> String {
    let mut out = String::new();
    let rows = list.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        out.push_str("no attachments\n");
        return out;
    }
    for r in rows {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
        let addrs = r
            .get("addresses")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let left = r
            .get("remaining_secs")
            .and_then(|v| v.as_u64())
            .map(|s| format!("{s}s"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{} {} {} netns={} state={} addresses={} left={}\n",
            s("network"),
            s("container_id"),
            s("ifname"),
            s("netns"),
            s("state"),
            if addrs.is_empty() { "-" } else { &addrs },
            left
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_lists_each_attachment() {
        let list = serde_json::json!([{
            "network": "lan", "container_id": "c1", "ifname": "eth0",
            "netns": "/var/run/netns/c1", "state": "BOUND",
            "addresses": ["10.0.0.5/24", "fd00::5/128"], "remaining_secs": 99
        }]);
        assert_eq!(
            render_list(&list),
            "lan c1 eth0 netns=/var/run/netns/c1 state=BOUND addresses=10.0.0.5/24,fd00::5/128 left=99s\n"
        );
        assert_eq!(render_list(&serde_json::json!([])), "no attachments\n");
    }
}
