//! Logging to stderr: one line per event, written with one `write` so lines from
//! several threads never interleave.
//!
//! Under journald (`JOURNAL_STREAM` set, as systemd does for a service's stderr) each
//! line starts with a syslog priority prefix (`<3>` error ... `<7>` debug), which
//! journald turns into the entry's priority, and carries no timestamp (the journal adds
//! its own). Elsewhere lines have an RFC 3339 timestamp and the level:
//! `2026-12-03T20:50:30.315655Z  INFO message key=value`.
//!
//! The macros (`error!`, `warn!`, `info!`, `debug!`, `trace!`) take the subset of
//! tracing's syntax this code uses: `key = %display`, `key = ?debug`, `key = value`,
//! `%ident`, `?ident`, `ident`, then the format string and its arguments. Nothing is
//! evaluated or formatted below the running level. A small logger of our own rather
//! than tracing and tracing-subscriber: netbond has one target and no spans, and the
//! static binary is smaller without them.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

/// A level of detail; a message is shown when its level is at most the running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    /// The syslog priority journald files the line under.
    fn priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
}

/// The running level: 0 shows nothing, 1 errors ... 5 everything. Info until `init`.
static MAX: AtomicU8 = AtomicU8::new(Level::Info as u8);
/// `--log-level` or `RUST_LOG` chose the level: the file's does not apply.
static PINNED: AtomicBool = AtomicBool::new(false);
/// Lines go to journald: priority prefix, no timestamp.
static JOURNALD: AtomicBool = AtomicBool::new(false);

/// Whether a message at `level` would be shown now.
#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX.load(Relaxed)
}

/// A level name as `RUST_LOG`, `--log-level` and `[daemon] log_level` take it: `off`,
/// `error`, `warn`, `info`, `debug`, `trace` (any case), or `0` (off) to `5` (trace).
pub fn parse_filter(s: &str) -> Option<u8> {
    let s = s.trim();
    let names = ["off", "error", "warn", "info", "debug", "trace"];
    if let Some(i) = names.iter().position(|n| s.eq_ignore_ascii_case(n)) {
        return u8::try_from(i).ok();
    }
    s.parse::<u8>().ok().filter(|n| *n <= Level::Trace as u8)
}

/// The level from `RUST_LOG` (a plain level name: netbond has one target), else
/// `level`, else info.
pub fn level_filter(env: Option<&str>, level: &str) -> u8 {
    env.and_then(parse_filter)
        .or_else(|| parse_filter(level))
        .unwrap_or(Level::Info as u8)
}

/// Set up logging. `RUST_LOG` wins over `cli` (`--log-level`), which wins over `file`
/// (`[daemon] log_level`).
pub fn init(cli: Option<&str>, file: &str) {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|e| parse_filter(e).is_some());
    PINNED.store(env.is_some() || cli.is_some(), Relaxed);
    JOURNALD.store(std::env::var_os("JOURNAL_STREAM").is_some(), Relaxed);
    MAX.store(level_filter(env.as_deref(), cli.unwrap_or(file)), Relaxed);
}

/// What a reload did with `[daemon] log_level`.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// The new level is in force.
    Applied,
    /// `--log-level` or `RUST_LOG` chose the level; the file's is not used.
    Pinned,
}

/// A reload changed `[daemon] log_level`: use it from now on, unless the command line
/// or the environment chose the level.
pub fn set_file_level(level: &str) -> LevelChange {
    if PINNED.load(Relaxed) {
        return LevelChange::Pinned;
    }
    MAX.store(level_filter(None, level), Relaxed);
    LevelChange::Applied
}

/// Shows a `%value` field with its `Display`.
pub struct Disp<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Debug for Disp<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

/// Write one line. Not inlined: the macros expand to a level check and this call.
#[inline(never)]
pub fn emit(level: Level, msg: fmt::Arguments<'_>, fields: &[(&str, &dyn fmt::Debug)]) {
    // journald stamps lines itself.
    let stamp = (!JOURNALD.load(Relaxed)).then(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    });
    let line = format_line(level, stamp, msg, fields);
    // Nowhere to report a failed write to stderr.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// One line: `<prio>message fields` for journald (no `stamp`), else
/// `stamp LEVEL message fields`.
fn format_line(
    level: Level,
    stamp: Option<std::time::Duration>,
    msg: fmt::Arguments<'_>,
    fields: &[(&str, &dyn fmt::Debug)],
) -> String {
    let mut line = String::with_capacity(160);
    match stamp {
        None => {
            let _ = write!(line, "<{}>", level.priority());
        }
        Some(t) => {
            line.push_str(&crate::utc::rfc3339(t, 6));
            let _ = write!(line, " {:>5} ", level.name());
        }
    }
    let _ = line.write_fmt(msg);
    for (k, v) in fields {
        let _ = write!(line, " {k}={v:?}");
    }
    line.push('\n');
    line
}

/// The engine of the level macros: munches the fields, then checks the level and
/// emits. Not for direct use.
macro_rules! log_event {
    ($lvl:expr; [$($f:tt)*]; $k:ident = %$v:expr, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$crate::logging::Disp(&$v) as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; $k:ident = ?$v:expr, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$v as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; $k:ident = $v:expr, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$v as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; %$k:ident, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$crate::logging::Disp(&$k) as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; ?$k:ident, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$k as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; $k:ident, $($rest:tt)+) => {
        $crate::logging::log_event!($lvl; [$($f)* (stringify!($k),
            &$k as &dyn ::core::fmt::Debug),]; $($rest)+)
    };
    ($lvl:expr; [$($f:tt)*]; $($msg:tt)+) => {
        if $crate::logging::enabled($lvl) {
            $crate::logging::emit($lvl, format_args!($($msg)+), &[$($f)*]);
        }
    };
}

/// Log an error: something failed and netbond could not do what it was asked.
macro_rules! error {
    ($($t:tt)+) => { $crate::logging::log_event!($crate::logging::Level::Error; []; $($t)+) };
}
/// Log a warning: something is wrong, netbond carries on. (Named `warn_` here and
/// exported as `warn`: a macro defined as `warn` clashes with the built-in attribute.)
macro_rules! warn_ {
    ($($t:tt)+) => { $crate::logging::log_event!($crate::logging::Level::Warn; []; $($t)+) };
}
/// Log what an operator wants to see by default (leases, links, reloads).
macro_rules! info {
    ($($t:tt)+) => { $crate::logging::log_event!($crate::logging::Level::Info; []; $($t)+) };
}
/// Log detail for finding out why (packets sent, states, drops).
macro_rules! debug {
    ($($t:tt)+) => { $crate::logging::log_event!($crate::logging::Level::Debug; []; $($t)+) };
}
/// Log even more detail.
#[allow(unused_macros)]
macro_rules! trace {
    ($($t:tt)+) => { $crate::logging::log_event!($crate::logging::Level::Trace; []; $($t)+) };
}

#[allow(unused_imports)]
pub(crate) use {debug, error, info, log_event, trace, warn_ as warn};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_from_env_or_config() {
        assert_eq!(level_filter(Some("debug"), "info"), Level::Debug as u8);
        assert_eq!(level_filter(Some("nonsense"), "warn"), Level::Warn as u8);
        assert_eq!(level_filter(None, "bogus"), Level::Info as u8);
        assert_eq!(level_filter(Some("OFF"), "info"), 0);
        assert_eq!(level_filter(Some("5"), "info"), Level::Trace as u8);
        assert_eq!(parse_filter("6"), None);
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(Level::Error.priority(), 3);
        assert_eq!(Level::Warn.priority(), 4);
        assert_eq!(Level::Info.priority(), 6);
        assert_eq!(Level::Debug.priority(), 7);
    }

    #[test]
    fn fields_follow_the_message_and_only_when_enabled() {
        // The macro syntaxes this code uses all expand; a disabled level evaluates
        // nothing.
        let (ifindex, src, name) = (3, "fe80::1", "c0");
        let mut evaluated = false;
        let mut probe = || {
            evaluated = true;
            1
        };
        trace!(n = probe(), "never shown at the default level");
        assert!(!evaluated, "a disabled level evaluated its fields");
        info!(ifindex, %src, ?name, len = 4, shown = %name, "x {}", 1);
        warn!("plain {name}");
    }

    #[test]
    fn line_shapes_for_a_terminal_and_for_journald() {
        let t = std::time::Duration::new(1_796_309_045, 123_456_000);
        let name = "c0";
        let fields: [(&str, &dyn fmt::Debug); 2] = [("ifname", &name), ("n", &Disp(&"x y"))];
        assert_eq!(
            format_line(Level::Info, Some(t), format_args!("bound {}", 1), &fields),
            "2026-12-03T14:44:05.123456Z  INFO bound 1 ifname=\"c0\" n=x y\n"
        );
        assert_eq!(
            format_line(Level::Error, None, format_args!("gone"), &[]),
            "<3>gone\n"
        );
    }
}
