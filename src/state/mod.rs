//! What outlives the process or is written for the rest of the system: the state
//! directory (DUID, leases), the writer threads that keep fsync off the loop,
//! resolv.conf / resolvectl, and chrony's NTP sources.

pub mod atomic;
pub mod identity;
pub mod lease_writer;
pub mod ntp;
pub mod resolv;
pub mod store;
pub mod worker;
