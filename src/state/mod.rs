//! What outlives the process or is written for the rest of the system: the state
//! directory (DUID, leases), the writer threads that keep fsync off the loop,
//! resolv.conf / resolvectl, the time daemons' NTP sources, and the captive portal URIs
//! shown in status.

pub mod atomic;
pub mod captive;
pub mod identity;
pub mod lease_writer;
pub mod ntp;
pub mod resolv;
pub mod store;
pub mod worker;
