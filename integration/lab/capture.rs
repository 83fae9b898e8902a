//! tcpdump captures and nftables rules on the server side (s0).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::pcap::{self, Packet};
use super::util::{kill_child, kill_pid, tail, tools, wait_until, TIMEOUT};
use super::Lab;

/// A running tcpdump writing a pcap file.
pub(super) struct Capture {
    pub(super) child: Child,
    file: PathBuf,
}

impl Lab {
    // ---------------------------------------------------------------- capture

    /// Start capturing DHCP traffic on s0 (stopping a previous capture) and wait until
    /// tcpdump is actually listening.
    pub fn capture(&mut self) {
        self.stop_capture();
        let t = tools();
        self.captures += 1;
        let file = self.path(&format!("capture-{}.pcap", self.captures));
        let errf = self.path(&format!("tcpdump-{}.err", self.captures));
        let err = fs::File::create(&errf).unwrap();
        let mut child = Command::new(&t.ip)
            .args(["netns", "exec", &self.sns])
            .arg(&t.tcpdump)
            .args(["-i", "s0", "-n", "-U", "-Z", "root", "-s", "0", "-w"])
            .arg(&file)
            .args(["udp port 67 or udp port 68 or udp port 546 or udp port 547"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn tcpdump");
        let ok = wait_until(TIMEOUT, || {
            matches!(child.try_wait(), Ok(Some(_)))
                || fs::read_to_string(&errf)
                    .unwrap_or_default()
                    .contains("listening on")
        });
        if let Ok(Some(st)) = child.try_wait() {
            panic!("tcpdump exited at start ({st}): {}", tail(&errf, 10));
        }
        assert!(ok, "tcpdump not listening after {TIMEOUT:?}");
        self.capture = Some(Capture { child, file });
    }

    /// The DHCP packets captured so far by the current (or last) capture.
    pub fn packets(&self) -> Vec<Packet> {
        let file = match &self.capture {
            Some(c) => c.file.clone(),
            None if self.captures > 0 => self.path(&format!("capture-{}.pcap", self.captures)),
            None => return Vec::new(),
        };
        let data = fs::read(&file).unwrap_or_default();
        pcap::parse_pcap(&data)
    }

    /// Stop the capture (SIGINT, so tcpdump flushes) and return its packets.
    pub fn stop_capture(&mut self) -> Vec<Packet> {
        if let Some(mut c) = self.capture.take() {
            kill_pid(c.child.id(), libc::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            kill_child(&mut c.child);
            let data = fs::read(&c.file).unwrap_or_default();
            return pcap::parse_pcap(&data);
        }
        Vec::new()
    }

    /// A one-line-per-packet rendering of the capture, for failure messages.
    pub fn packets_summary(&self) -> String {
        pcap::summary(&self.packets())
    }

    // ---------------------------------------------------------------- nftables

    /// Drop, on s0, frames coming from `mac` (ingress) and frames sent to `mac`
    /// (egress): the server side then only hears and reaches the new MAC, as on a
    /// bond's Wi-Fi port after a MAC change.
    pub fn nft_drop_mac(&mut self, mac: &str) {
        self.nft_tables += 1;
        let table = format!("nbdrop{}", self.nft_tables);
        let rules = format!(
            "table netdev {table} {{\n\
             \tchain in {{ type filter hook ingress device \"s0\" priority 0; policy accept; ether saddr {mac} drop; }}\n\
             \tchain out {{ type filter hook egress device \"s0\" priority 0; policy accept; ether daddr {mac} drop; }}\n\
             }}\n"
        );
        self.nft(&rules);
    }

    /// Drop all DHCP (v4 and v6) traffic arriving on s0: the server is silent.
    pub fn nft_silence_server(&mut self) {
        self.nft_tables += 1;
        let table = format!("nbsilent{}", self.nft_tables);
        let rules = format!(
            "table netdev {table} {{\n\
             \tchain in {{ type filter hook ingress device \"s0\" priority 0; policy accept; udp dport {{ 67, 547 }} drop; }}\n\
             }}\n"
        );
        self.nft(&rules);
    }

    /// Remove every nftables rule in the server namespace.
    pub fn nft_flush(&mut self) {
        self.nft("flush ruleset\n");
    }

    fn nft(&self, script: &str) {
        let t = tools();
        let mut child = Command::new(&t.ip)
            .args(["netns", "exec", &self.sns])
            .arg(&t.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
