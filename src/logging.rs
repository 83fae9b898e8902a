//! Logging to stderr via tracing.
//!
//! Under journald (`JOURNAL_STREAM` set, as systemd does for a service's stderr) each
//! line starts with a syslog priority prefix (`<3>` error ... `<7>` debug), which
//! journald turns into the entry's priority, and carries no timestamp (the journal adds
//! its own). Elsewhere lines have an RFC 3339 timestamp and the level.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as `<priority>message` for journald.
struct Journald;

/// The syslog priority of a tracing level.
fn priority(level: &Level) -> u8 {
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

/// Install the subscriber. `RUST_LOG` wins over `level`.
pub fn init(level: &str) {
    let env = std::env::var("RUST_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_max_level(level_filter(env.as_deref(), level))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.event_format(Journald).init();
    } else {
        builder.init();
    }
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
