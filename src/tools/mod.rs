//! Commands beside the daemon: `netbond import` (the classic setup's files to a
//! netbond.toml) and `netbond demo` (a throwaway failover lab).

pub mod demo;
pub mod import;
