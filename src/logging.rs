//! Logging to stderr via tracing.
//!
//! Under journald (`JOURNAL_STREAM` set, as systemd does for a service's stderr) each
//! line starts with a syslog priority prefix (`<3>` error ... `<7>` debug), which
//! journald turns into the entry's priority, and carries no timestamp (the journal adds
//! its own). Elsewhere lines have an RFC 3339 timestamp and the level.

use std::fmt;
use std::sync::OnceLock;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// Formats events as `<priority>message` for journald.
struct Journald;

/// The syslog priority of a tracing level.
fn priority(level: &tracing::Level) -> u8 {
    use tracing::Level;
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The level from `RUST_LOG` (a plain level name; netbond has one target, so
/// per-module directives are not needed, and leaving out the regex-based filter keeps
/// the binary small), else `level`, else info.
pub fn level_filter(env: Option<&str>, level: &str) -> LevelFilter {
    let parse = |s: &str| s.trim().parse::<LevelFilter>().ok();
    env.and_then(parse)
        .or_else(|| parse(level))
        .unwrap_or(LevelFilter::INFO)
}

/// The running level, changeable by a configuration reload; `pinned` when
/// `--log-level` or `RUST_LOG` chose it (those win over the file, also on reload).
struct Level {
    handle: reload::Handle<LevelFilter, Registry>,
    pinned: bool,
}

static LEVEL: OnceLock<Level> = OnceLock::new();

/// Install the subscriber. `RUST_LOG` wins over `cli` (`--log-level`), which wins
/// over `file` (`[daemon] log_level`).
pub fn init(cli: Option<&str>, file: &str) {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|e| e.trim().parse::<LevelFilter>().is_ok());
    let pinned = env.is_some() || cli.is_some();
    let (filter, handle) = reload::Layer::new(level_filter(env.as_deref(), cli.unwrap_or(file)));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if journald {
        registry.with(stderr.event_format(Journald)).try_init()
    } else {
        registry.with(stderr).try_init()
    };
    let _ = LEVEL.set(Level { handle, pinned });
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
    let Some(l) = LEVEL.get() else {
        return LevelChange::Pinned;
    };
    if l.pinned {
        return LevelChange::Pinned;
    }
    // A failure means the subscriber is gone (the process is ending): nothing to log to.
    let _ = l.handle.reload(level_filter(None, level));
    LevelChange::Applied
}

#[cfg(test)]
mod tests {
    #[test]
    fn level_from_env_or_config() {
        use tracing_subscriber::filter::LevelFilter;
        assert_eq!(
            super::level_filter(Some("debug"), "info"),
            LevelFilter::DEBUG
        );
        assert_eq!(
            super::level_filter(Some("nonsense"), "warn"),
            LevelFilter::WARN
        );
        assert_eq!(super::level_filter(None, "bogus"), LevelFilter::INFO);
    }

    #[test]
    fn priorities_follow_syslog() {
        use tracing::Level;
        assert_eq!(super::priority(&Level::ERROR), 3);
        assert_eq!(super::priority(&Level::WARN), 4);
        assert_eq!(super::priority(&Level::INFO), 6);
        assert_eq!(super::priority(&Level::DEBUG), 7);
    }
}
