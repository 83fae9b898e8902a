//! The DHCP drivers: one per family and interface, each owning its engine (from
//! `netbond-proto`) and sockets, applying what the engine decides; plus what both share
//! on one interface, start pacing for many interfaces, and the status rendering.

pub mod fallback;
pub mod ipv4ll;
pub mod pace;
pub mod pd;
pub mod shared;
pub mod status;
pub mod v4;
pub mod v6;
