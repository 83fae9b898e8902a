//! Cargo features: the parts an embedded build may leave out, all on by default.
//!
//! | feature  | gates                                                   |
//! |----------|---------------------------------------------------------|
//! | `bond`   | `net/bond.rs`: creating, adopting and filling the bond  |
//! | `wifi`   | `wifi/`: wpa_supplicant supervision, nl80211 settings   |
//! | `cni`    | `cni/`: the CNI IPAM plugin and its daemon              |
//! | `hooks`  | `daemon/hooks.rs`: programs run on events               |
//! | `import` | `tools/import/`: `netbond import`                       |
//! | `demo`   | `tools/demo.rs`: `netbond demo`                         |
//!
//! `cargo build --no-default-features` gives a daemon that runs DHCPv4 and DHCPv6 on
//! plain interfaces. A left-out part is replaced here by a stand-in with the same API,
//! so the `cfg`s stand where the modules are declared, on the CLI's `import` arm, on
//! the status JSON's Wi-Fi builder and on the unit tests that need a part; none is in
//! the daemon's code paths. The stand-ins never panic: a
//! configuration that asks for the part is refused by [`check`] (so `netbond
//! check-config`, the start and a reload all say so), and a command that needs it
//! answers with [`without`]'s message.

use crate::config::Config;

/// The message for something this build cannot do.
pub fn without(feature: &str, what: &str) -> String {
    format!(
        "this netbond was built without the {feature} feature; {what} (build with `cargo build --features {feature}`, or the default features)"
    )
}

/// Refuse a configuration that needs a left-out part (the same error shape as the
/// other checks in `Config::validate`: section, key, message).
pub fn check(cfg: &Config) -> Result<(), (&'static str, &'static str, String)> {
    if !cfg!(feature = "bond") && cfg.bond.is_some() {
        let msg = without("bond", "remove the [bond] section");
        return Err(("bond", "name", msg));
    }
    if !cfg!(feature = "wifi") && !cfg.wifi.is_empty() {
        let msg = without("wifi", "remove the [[wifi]] tables");
        return Err(("wifi", "iface", msg));
    }
    Ok(())
}

/// The stand-in for `net::bond`. A configuration with a bond never gets this far
/// ([`check`]); `ensure`, the first call the daemon makes, fails with the reason
/// should one do anyway.
#[cfg(not(feature = "bond"))]
pub mod bond {
    use crate::config::BondConfig;
    use crate::net::link::LinkEvent;
    use crate::net::netlink::Handle;
    use tokio::time::Instant;

    /// Never manages a bond.
    pub struct BondManager {
        name: String,
    }

    impl BondManager {
        /// Holds only the name (for messages).
        pub fn new(cfg: BondConfig, _handle: Handle) -> Self {
            BondManager { name: cfg.name }
        }

        /// The configured bond's name.
        pub fn name(&self) -> &str {
            &self.name
        }

        /// Always fails: this build cannot create or adopt a bond.
        pub async fn ensure(&mut self) -> Result<(), String> {
            Err(super::without("bond", "remove the [bond] section"))
        }

        /// Nothing is ever pending.
        pub fn next_retry(&self) -> Option<Instant> {
            None
        }

        /// Nothing to retry.
        pub async fn retry_due(&mut self) {}

        /// No link is ever a port; the bond is never found missing.
        pub async fn on_link(&mut self, _ev: &LinkEvent) -> bool {
            false
        }

        /// The bond as missing (never reached: `ensure` fails first).
        pub async fn status_json(&self) -> crate::daemon::status_json::BondStatus {
            crate::daemon::status_json::bond(&self.name, None, None, None, Vec::new())
        }

        /// As `ensure`.
        pub async fn recreate(&mut self) -> Result<(), String> {
            self.ensure().await
        }

        /// Nothing to delete.
        pub async fn teardown(&mut self) {}
    }
}

/// The stand-in for `wifi`: no wireless port is ever configured ([`check`]).
#[cfg(not(feature = "wifi"))]
pub mod wifi {
    use crate::config::WifiConfig;
    use crate::net::link::{LinkEvent, LinkInfo};
    use std::path::PathBuf;

    pub use crate::daemon::control::WifiAction;

    /// Runs no supplicant.
    pub struct WifiManager;

    impl WifiManager {
        /// An empty manager.
        pub fn new(_cfgs: Vec<WifiConfig>, _run_dir: PathBuf) -> Self {
            WifiManager
        }

        /// Always: no wireless port.
        pub fn is_empty(&self) -> bool {
            true
        }

        /// Pending forever, as with no wireless port configured.
        pub async fn next_connected(&mut self) -> Option<String> {
            std::future::pending().await
        }

        /// Nothing to start.
        pub fn start_existing(&mut self, _links: &[LinkInfo]) {}

        /// Nothing to follow.
        pub fn on_link(&mut self, _ev: &LinkEvent) {}

        /// No wireless port: an empty list, as with none configured.
        pub fn status_json(&self) -> Vec<crate::daemon::status_json::WifiStatus> {
            Vec::new()
        }

        /// `netbond wifi IFACE ACTION` in this build.
        pub async fn command(&self, iface: &str, _action: WifiAction) -> Result<String, String> {
            Err(super::without(
                "wifi",
                &format!("it cannot control the wpa_supplicant of {iface}"),
            ))
        }

        /// Nothing to stop.
        pub async fn shutdown(&mut self) {}
    }
}

/// The stand-in for `daemon::hooks`: events run no program. A hook directory with
/// programs in it is said in the log, so nobody waits for hooks that never run.
#[cfg(not(feature = "hooks"))]
pub mod hooks {
    use crate::config::HooksConfig;
    use serde_json::Value;
    use std::time::Duration;

    /// Warn when the hook directory has entries this build will not run.
    pub fn configure(cfg: &HooksConfig) {
        let has_programs = std::fs::read_dir(&cfg.dir).is_ok_and(|mut d| d.next().is_some());
        if has_programs {
            crate::logging::warn!(
                "hooks: {}",
                super::without(
                    "hooks",
                    &format!("the programs in {} are not run", cfg.dir.display())
                )
            );
        }
    }

    /// No hooks: nothing to queue.
    pub fn dispatch(_ev: &Value) {}

    /// No hooks: nothing to wait for.
    pub async fn drain(_bound: Duration) {}
}

/// The stand-in for `cni`: `netbond cni ...` and the plugin entry (`CNI_COMMAND` set)
/// both answer that this build has no container front end.
#[cfg(not(feature = "cni"))]
pub mod cni {
    use std::process::ExitCode;

    /// `netbond cni ...`: any arguments, refused by [`run`].
    #[derive(Debug)]
    pub enum CniCommand {
        Any(Vec<String>),
    }

    /// Refuse a `netbond cni` command.
    pub fn run(_cmd: CniCommand) -> ExitCode {
        eprintln!(
            "netbond: {}",
            super::without("cni", "`netbond cni` is not available")
        );
        ExitCode::from(2)
    }

    /// `netbond status` and `netbond monitor`: the host daemon alone (there is no CNI
    /// daemon to add).
    pub mod client {
        use crate::daemon::control::{self, Request};
        use std::path::{Path, PathBuf};
        use std::process::ExitCode;
        use tokio::sync::mpsc;

        fn no_cni_socket(named: Option<PathBuf>) {
            if let Some(p) = named {
                let what = format!("--cni-socket {} is not used", p.display());
                eprintln!("netbond: {}", super::super::without("cni", &what));
            }
        }

        /// The host daemon's status.
        pub fn status(
            run_dir: &Path,
            iface: Option<String>,
            json: bool,
            cni_socket: Option<PathBuf>,
        ) -> ExitCode {
            no_cni_socket(cni_socket);
            crate::cli::host_call(run_dir, Request::Status { iface }, json)
        }

        /// The host daemon's events.
        pub async fn follow(
            run_dir: &Path,
            iface: Option<String>,
            cni_socket: Option<PathBuf>,
        ) -> Result<mpsc::Receiver<Result<String, String>>, String> {
            no_cni_socket(cni_socket);
            let stream = control::open_stream(run_dir, &Request::Monitor { iface }).await?;
            eprintln!(
                "netbond monitor: following events from {}",
                control::socket_path(run_dir).display()
            );
            Ok(control::merge_streams(vec![stream]))
        }
    }

    /// The CNI plugin entry point.
    pub mod plugin {
        use std::process::ExitCode;

        /// Answer with a CNI error (the container runtime shows `msg`), exit 1.
        pub fn main() -> ExitCode {
            let err = serde_json::json!({
                "cniVersion": "1.0.0",
                // 100 and up are the plugin's own codes.
                "code": 100,
                "msg": super::super::without("cni", "it cannot be a CNI plugin"),
            });
            println!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// The stand-in for `tools::demo`.
#[cfg(not(feature = "demo"))]
pub mod demo {
    use std::process::ExitCode;

    /// Refuse `netbond demo`.
    pub fn main() -> ExitCode {
        eprintln!(
            "netbond demo: {}",
            super::without("demo", "there is no demo")
        );
        ExitCode::FAILURE
    }
}

/// `netbond import` in a build without it (the CLI keeps the command and its help).
#[cfg(not(feature = "import"))]
pub fn import_refused() -> std::process::ExitCode {
    eprintln!(
        "netbond import: {}",
        without("import", "convert the old configuration elsewhere")
    );
    std::process::ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A default-featured build takes a bond and Wi-Fi; a build without them refuses
    /// each with the feature's name.
    #[test]
    fn check_follows_the_features() {
        let text = "[bond]\nports = [\"eth*\"]\n\n[[wifi]]\niface = \"wlan0\"\nmode = \"attach\"\n";
        let result = Config::parse(text, None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let both = cfg!(feature = "bond") && cfg!(feature = "wifi");
        assert_eq!(result.is_ok(), both, "{result:?}");
        if let Err(m) = result {
            let missing = if cfg!(feature = "bond") {
                "wifi"
            } else {
                "bond"
            };
            assert!(
                m.contains(&format!("built without the {missing} feature")),
                "{m}"
            );
        }
    }
}
