//! The DHCP drivers: one per family and interface, each owning its engine (from
//! `netbond-proto`) and sockets, applying what the engine decides; plus what both share
//! on one interface, start pacing for many interfaces, and the status rendering.

pub mod pace;
pub mod shared;
pub mod status;
pub mod v4;
pub mod v6;
