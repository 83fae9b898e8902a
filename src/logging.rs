//! Logging to stderr via tracing. Under journald (JOURNAL_STREAM set) timestamps are
//! left out, since the journal adds its own.

use tracing_subscriber::EnvFilter;

/// Install the subscriber. `RUST_LOG` wins over `level`.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
