//! Commands beside the daemon: `netbond import` (the classic setup's files to a
//! netbond.toml) and `netbond demo` (a throwaway failover lab).

#[cfg(feature = "demo")]
pub mod demo;
#[cfg(not(feature = "demo"))]
pub use crate::features::demo;
// Without the feature the CLI answers `netbond import` with features::import_refused.
#[cfg(feature = "import")]
pub mod import;
