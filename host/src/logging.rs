//! Logging with tracing: the level from the config or `RUST_LOG`, text or JSON.
//! Every connection runs in its own span (`conn{id source}`), so all of its lines can
//! be found together; the access log is the `access` target, one line per session.
//! User ids are never logged in full (see `util::short_id`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogConfig;

/// Installs the global subscriber (once; later calls are ignored, as in tests).
pub fn init(config: &LogConfig) {
    let mut directive = config.level.clone();
    if !config.access {
        directive.push_str(",access=off");
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directive));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if config.json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
