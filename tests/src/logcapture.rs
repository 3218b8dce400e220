//! Captures the daemon's access log in-process, so a test can see which outbound each
//! session took (the client cannot see it).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the capturing subscriber (once per test binary).
pub fn install() {
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(
                "warn,access=info,wasmray::vless::vision=debug,wasmray::relay=debug,wasmray::plugin::instance=info",
            )
            .with_writer(move || writer.clone())
            .try_init();
        sink
    });
}

/// How much has been captured so far: a mark for [`wait_access_line`].
pub fn mark() -> usize {
    SINK.get()
        .map_or(0, |s| s.0.lock().unwrap_or_else(|p| p.into_inner()).len())
}

/// Waits (up to 10 s) for the access-log line of the session from `source` (e.g.
/// "127.0.0.1:40000") logged after `mark`. The daemon logs a session when it has
/// ended on its side, which may be just after the client saw the end.
pub async fn wait_access_line(mark: usize, source: &str) -> Option<String> {
    let needle = format!("source={source} ");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = SINK.get().and_then(|sink| {
            let bytes = sink.0.lock().unwrap_or_else(|p| p.into_inner());
            let text = String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).to_string();
            text.lines()
                .find(|l| l.contains(&needle))
                .map(str::to_string)
        });
        if found.is_some() || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The `outbound=` field of an access-log line.
pub fn outbound_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("outbound="))
        .map(|v| v.trim_matches('"'))
}

/// Everything captured so far (for failure messages).
pub fn all() -> String {
    SINK.get()
        .map(|s| {
            String::from_utf8_lossy(&s.0.lock().unwrap_or_else(|p| p.into_inner())).to_string()
        })
        .unwrap_or_default()
}
