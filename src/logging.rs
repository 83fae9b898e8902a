//! Logging to stderr via tracing.
//!
//! Under journald (`JOURNAL_STREAM` set, as systemd does for a service's stderr) each
//! line starts with a syslog priority prefix (`<3>` error ... `<7>` debug), which
//! journald turns into the entry's priority, and carries no timestamp (the journal adds
//! its own). Elsewhere lines have an RFC 3339 timestamp and the level.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

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

/// Install the subscriber. `RUST_LOG` wins over `level`.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    fn priorities_follow_syslog() {
        use tracing::Level;
        assert_eq!(super::priority(&Level::ERROR), 3);
        assert_eq!(super::priority(&Level::WARN), 4);
        assert_eq!(super::priority(&Level::INFO), 6);
        assert_eq!(super::priority(&Level::DEBUG), 7);
    }
}
