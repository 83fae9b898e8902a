//! Wireless ports: one wpa_supplicant per configured interface, started when the
//! interface appears and stopped when it goes (removable PC-card/USB radios), plus the
//! optional radio settings the classic unit applied with `iw`.
//!
//! The supplicant only authenticates the port; which port carries traffic is still the
//! bond's decision, from its own MII monitoring.

pub mod nl80211;
pub mod wpa;

use crate::config::WifiConfig;
use crate::logging::{info, warn};
use crate::net::link::{LinkEvent, LinkInfo};
use crate::wifi::wpa::{
    SuperviseConfig, SupplicantState, WpaConfig, WpaHandle, WpaMode, WpaSupervisor,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

struct Running {
    handle: WpaHandle,
    task: tokio::task::JoinHandle<()>,
}

/// All configured wireless ports.
pub struct WifiManager {
    cfgs: Vec<WifiConfig>,
    run_dir: PathBuf,
    running: BTreeMap<String, Running>,
    /// Interfaces whose supplicant just reached COMPLETED (port authorised).
    connected_tx: tokio::sync::mpsc::UnboundedSender<String>,
    connected_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Kept beside the control protocol it is part of, so a build without Wi-Fi has it too.
pub use crate::daemon::control::WifiAction;

impl WifiManager {
    /// A manager for these ports; nothing runs until the interfaces are seen.
    pub fn new(cfgs: Vec<WifiConfig>, run_dir: PathBuf) -> Self {
        let (connected_tx, connected_rx) = tokio::sync::mpsc::unbounded_channel();
        WifiManager {
            cfgs,
            run_dir,
            running: BTreeMap::new(),
            connected_tx,
            connected_rx,
        }
    }

    /// True when no wireless port is configured.
    pub fn is_empty(&self) -> bool {
        self.cfgs.is_empty()
    }

    fn spawn(&mut self, info: &LinkInfo) {
        let Some(cfg) = self.cfgs.iter().find(|c| c.iface == info.name).cloned() else {
            return;
        };
        if self.running.contains_key(&cfg.iface) {
            return;
        }
        let mode = match cfg.mode.as_str() {
            "attach" => WpaMode::Attach {
                ctrl_dir: cfg
                    .ctrl_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(crate::wifi::wpa::DEFAULT_CTRL_DIR)),
            },
            _ => {
                let Some(conf) = cfg.config.clone() else {
                    return;
                };
                let mut s = SuperviseConfig::new(conf);
                s.drivers = cfg.driver.clone();
                s.ctrl_dir = cfg.ctrl_dir.clone();
                if let Some(b) = &cfg.binary {
                    s.binary = b.clone();
                }
                WpaMode::Supervise(s)
            }
        };
        info!(
            "wifi: {}: {} wpa_supplicant",
            cfg.iface,
            if cfg.mode == "attach" {
                "following"
            } else {
                "starting"
            }
        );
        apply_radio_settings(&cfg);
        let (handle, task) = WpaSupervisor::spawn(
            WpaConfig {
                ifname: cfg.iface.clone(),
                mode,
                start: true,
            },
            self.run_dir.clone(),
        );
        // Report each transition to COMPLETED to the daemon loop; the watcher ends with
        // the supervisor (its sender is dropped).
        let mut rx = handle.subscribe();
        let tx = self.connected_tx.clone();
        let name = cfg.iface.clone();
        tokio::spawn(async move {
            let mut was = false;
            while rx.changed().await.is_ok() {
                let now = rx.borrow_and_update().wpa_state == "COMPLETED";
                if now && !was && tx.send(name.clone()).is_err() {
                    break;
                }
                was = now;
            }
        });
        self.running
            .insert(cfg.iface.clone(), Running { handle, task });
    }

    /// The next interface whose supplicant became COMPLETED; pending forever when no
    /// wireless port is configured.
    pub async fn next_connected(&mut self) -> Option<String> {
        if self.cfgs.is_empty() {
            return std::future::pending().await;
        }
        self.connected_rx.recv().await
    }

    /// Start supplicants for configured interfaces that exist now (at startup).
    pub fn start_existing(&mut self, links: &[LinkInfo]) {
        for l in links {
            self.spawn(l);
        }
    }

    /// Follow hot-plug: start on appearance, stop on removal.
    pub fn on_link(&mut self, ev: &LinkEvent) {
        match ev {
            LinkEvent::New(info) => self.spawn(info),
            LinkEvent::Deleted { name, .. } => {
                if let Some(r) = self.running.remove(name) {
                    info!("wifi: {name}: removed; its wpa_supplicant is stopped");
                    // Dropping the last handle stops the child and ends the task.
                    drop(r.handle);
                    drop(r.task);
                }
            }
            LinkEvent::Overrun => {}
        }
    }

    /// Per-interface state for `netbond status`.
    pub fn status_json(&self) -> Vec<crate::daemon::status_json::WifiStatus> {
        self.cfgs
            .iter()
            .map(|c| {
                let Some(r) = self.running.get(&c.iface) else {
                    return crate::daemon::status_json::wifi(&c.iface, &c.mode, None);
                };
                let st = r.handle.state();
                let sup = match st.supplicant {
                    SupplicantState::Running { pid: Some(p) } => format!("running (pid {p})"),
                    SupplicantState::Running { pid: None } => "running".to_string(),
                    SupplicantState::Restarting { retry_in } => {
                        format!("restarting in {} ms", retry_in.as_millis())
                    }
                    SupplicantState::Stopped => "stopped".to_string(),
                };
                crate::daemon::status_json::wifi(&c.iface, &c.mode, Some((&st, sup)))
            })
            .collect()
    }

    /// Carry out `netbond wifi IFACE ACTION`.
    pub async fn command(&self, iface: &str, action: WifiAction) -> Result<String, String> {
        let Some(r) = self.running.get(iface) else {
            return Err(if self.cfgs.iter().any(|c| c.iface == iface) {
                format!("{iface} is configured but does not exist right now")
            } else {
                format!("{iface} is not a configured [[wifi]] interface")
            });
        };
        let h = &r.handle;
        let res = match action {
            WifiAction::Status => h.status().await.map(|m| {
                let mut keys: Vec<_> = m.into_iter().collect();
                keys.sort();
                keys.into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            WifiAction::Reconfigure => h.reconfigure().await.map(|_| "reconfigured".into()),
            WifiAction::Reassociate => h.reassociate().await.map(|_| "reassociating".into()),
            WifiAction::Scan => {
                let _ = h.scan().await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                h.scan_results().await.map(|v| {
                    v.iter()
                        .map(|s| {
                            format!(
                                "{}  {} MHz  {} dBm  {}  {}",
                                s.bssid, s.freq, s.signal, s.flags, s.ssid
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
            WifiAction::Stop => h.stop().await.map(|_| "wpa_supplicant stopped".into()),
            WifiAction::Start => h.start().await.map(|_| "wpa_supplicant started".into()),
        };
        res.map_err(|e| format!("{iface}: {e}"))
    }

    /// Stop every supplicant (after the DHCP clients released their leases, as the
    /// classic units were ordered).
    pub async fn shutdown(&mut self) {
        for (name, r) in std::mem::take(&mut self.running) {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(5), r.handle.stop())
                .await
                .unwrap_or(Ok(()))
            {
                warn!("wifi: {name}: stopping wpa_supplicant: {e}");
            }
            drop(r.handle);
            let _ = tokio::time::timeout(Duration::from_secs(2), r.task).await;
        }
    }
}

/// The `iw` settings of the classic unit. They are tuning, not function: applied over
/// nl80211 where the driver supports them, otherwise noted and skipped.
fn apply_radio_settings(cfg: &WifiConfig) {
    if cfg.disable_legacy_rates || cfg.distance.is_some() {
        match crate::wifi::nl80211::apply(&cfg.iface, cfg.disable_legacy_rates, cfg.distance) {
            Ok(done) => {
                for d in done {
                    info!("wifi: {}: {d}", cfg.iface);
                }
            }
            Err(e) => warn!("wifi: {}: radio settings not applied: {e}", cfg.iface),
        }
    }
}
