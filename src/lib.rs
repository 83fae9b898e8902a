//! netbond: one process for a kernel bond, DHCPv4 and DHCPv6 with a single stable
//! identity, and wpa_supplicant control. See README.md and ARCHITECTURE.md.
//!
//! The library holds everything; `main.rs` only picks between the CLI and the CNI
//! plugin entry. Being a library lets the fuzz crate and the tests use normal paths.
//!
//! - `net/`: the kernel side (sockets, netlink, the bond);
//! - `dhcp/`: the per-family drivers around the sans-IO engines of `netbond-proto`;
//! - `daemon/`: the event loop, one task per interface, control socket, events, hooks;
//! - `state/`: the state directory, resolv.conf, NTP sources, writer threads;
//! - `wifi/`: wpa_supplicant supervision and nl80211;
//! - `cni/`: the CNI IPAM plugin and its daemon;
//! - `tools/`: `netbond import` and `netbond demo`;
//! - `features`: the Cargo features and the stand-ins for the parts a build leaves out.

pub mod cli;
#[cfg(feature = "cni")]
pub mod cni;
#[cfg(not(feature = "cni"))]
pub use features::cni;
pub mod config;
pub mod daemon;
pub mod dhcp;
pub mod features;
pub mod logging;
pub mod net;
pub mod state;
pub mod tools;
pub mod utc;
#[cfg(feature = "wifi")]
pub mod wifi;
#[cfg(not(feature = "wifi"))]
pub use features::wifi;
