//! Sans-IO protocol engines for netbond.
//!
//! Nothing in this crate touches a socket, a clock or the file system. Time and the
//! interface's current hardware address come in as arguments; packets to send,
//! configuration events and the next deadline come out. That makes every RFC rule a
//! deterministic unit test and every engine trivially fuzzable.
//!
//! - [`duid`]: DHCP Unique Identifiers and IAIDs, shared by the v4 and v6 engines.
//! - [`dhcp4`]: the RFC 2131 client state machine with an RFC 4361 client identifier.
//! - [`dhcp6`]: the RFC 8415 client.
//! - [`time`]: the engine's clock type and the random source.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dhcp4;
pub mod dhcp6;
pub mod duid;
pub mod time;

pub use duid::{Duid, Iaid};
pub use time::{Instant, Rng};
