//! `WpaHandle`: what the daemon holds to talk to a running supervisor (control
//! requests, stop and start, the published state).

use super::super::ctrl::{expect_ok, DEFAULT_TIMEOUT};
use super::super::parse::{self, ScanResult};
use super::{Command, WpaState};
use std::collections::HashMap;
use std::io;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Talks to a running `WpaSupervisor`. Cheap to clone. When every handle is dropped the
/// supervisor stops the supplicant (Supervise) and its task ends.
#[derive(Debug, Clone)]
pub struct WpaHandle {
    pub(super) ifname: String,
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) state: watch::Receiver<WpaState>,
}

// The whole control protocol is exposed; the daemon does not call every verb.
#[allow(dead_code)]
impl WpaHandle {
    /// The current state.
    pub fn state(&self) -> WpaState {
        self.state.borrow().clone()
    }

    /// A receiver to `changed().await` on.
    pub fn subscribe(&self) -> watch::Receiver<WpaState> {
        self.state.clone()
    }

    fn gone(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!(
                "the wpa_supplicant supervisor for {} has ended",
                self.ifname
            ),
        )
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<io::Result<T>>) -> Command,
    ) -> io::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Send any control command and return the raw reply.
    pub async fn request(&self, cmd: &str, timeout: Duration) -> io::Result<String> {
        let cmd = cmd.to_string();
        self.call(|reply| Command::Request {
            cmd,
            timeout,
            reply,
        })
        .await
    }

    async fn request_ok(&self, cmd: &str) -> io::Result<()> {
        let reply = self.request(cmd, DEFAULT_TIMEOUT).await?;
        expect_ok(&self.ifname, cmd, &reply)
    }

    /// `RECONFIGURE` (re-read the configuration file).
    pub async fn reconfigure(&self) -> io::Result<()> {
        self.request_ok("RECONFIGURE").await
    }

    /// `REASSOCIATE`.
    pub async fn reassociate(&self) -> io::Result<()> {
        self.request_ok("REASSOCIATE").await
    }

    /// What the classic `ExecReload` did: `RECONFIGURE` then `REASSOCIATE`.
    pub async fn reload(&self) -> io::Result<()> {
        self.reconfigure().await?;
        self.reassociate().await
    }

    /// `SCAN`.
    pub async fn scan(&self) -> io::Result<()> {
        self.request_ok("SCAN").await
    }

    /// `STATUS` as key/value pairs.
    pub async fn status(&self) -> io::Result<HashMap<String, String>> {
        let reply = self.request("STATUS", DEFAULT_TIMEOUT).await?;
        Ok(parse::parse_status(&reply))
    }

    /// `SCAN_RESULTS`.
    pub async fn scan_results(&self) -> io::Result<Vec<ScanResult>> {
        let reply = self.request("SCAN_RESULTS", DEFAULT_TIMEOUT).await?;
        Ok(parse::parse_scan_results(&reply))
    }

    /// Supervise: TERMINATE, then SIGTERM after 2 s, then SIGKILL after 2 s more; no
    /// restart until `start`. Attach: detach and stop reconnecting (the supplicant keeps
    /// running). Returns once stopped.
    pub async fn stop(&self) -> io::Result<()> {
        self.call(Command::Stop).await
    }

    /// Start again after `stop` (at once, backoff reset); nothing if running. An error
    /// says the child could not be spawned (netbond keeps retrying with backoff).
    pub async fn start(&self) -> io::Result<()> {
        self.call(Command::Start).await
    }
}
