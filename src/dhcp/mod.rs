//! The DHCP driver: one per family and interface, generic over the family
//! (`driver.rs`), each owning its engine (from `netbond-proto`) and sockets and applying
//! what the engine decides; what differs per family is in `v4.rs` (with the address
//! conflict check in `conflict.rs`) and `v6.rs`. Plus what both share on one interface,
//! start pacing for many interfaces, and the status rendering.

pub mod conflict;
pub mod driver;
pub mod fallback;
pub mod ipv4ll;
pub mod pace;
pub mod pd;
pub mod routes4;
pub mod shared;
pub mod status;
pub mod v4;
pub mod v6;
