//! Logging to the daemon: the plugin's only import.
//!
//! In wasm, each line goes to the host's `log` function, which prefixes it with the
//! plugin's name and filters it by the daemon's log level. In native builds (`cargo test`)
//! lines go to a thread-local buffer that [`crate::harness`] (or [`take_captured`]) reads.
//!
//! ```
//! use wasmray_plugin_sdk::log;
//! log::info!("configured {} rules", 3);
//! log::warn("plain strings work too");
//! ```

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something is broken.
    Error,
    /// Something looks wrong.
    Warn,
    /// Worth knowing.
    Info,
    /// For debugging a plugin.
    Debug,
    /// Very verbose.
    Trace,
}

/// A captured log line (native builds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// Longer messages are cut (on a character boundary) before they reach the host.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    let message = truncate(message, MAX_MESSAGE_LEN);
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::wasmray::plugin::host;
        let level = match level {
            Level::Error => host::Level::Error,
            Level::Warn => host::Level::Warn,
            Level::Info => host::Level::Info,
            Level::Debug => host::Level::Debug,
            Level::Trace => host::Level::Trace,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    CAPTURED.with(|c| {
        c.borrow_mut().push(LogLine {
            level,
            message: message.to_string(),
        })
    });
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<LogLine>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes (and clears) the lines logged on this thread so far. Native builds only.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured() -> Vec<LogLine> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// A copy of the lines logged on this thread so far. Native builds only.
#[cfg(not(target_arch = "wasm32"))]
pub fn captured() -> Vec<LogLine> {
    CAPTURED.with(|c| c.borrow().clone())
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_error {
    ($($arg:tt)+) => { $crate::__wasmray_log!(Error, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_warn {
    ($($arg:tt)+) => { $crate::__wasmray_log!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_info {
    ($($arg:tt)+) => { $crate::__wasmray_log!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_debug {
    ($($arg:tt)+) => { $crate::__wasmray_log!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wasmray_trace {
    ($($arg:tt)+) => { $crate::__wasmray_log!(Trace, $($arg)+) };
}

/// `debug!("format {}", args)`: logs a formatted line at debug level.
pub use crate::__wasmray_debug as debug;
/// `error!("format {}", args)`: logs a formatted line at error level.
pub use crate::__wasmray_error as error;
/// `info!("format {}", args)`: logs a formatted line at info level.
pub use crate::__wasmray_info as info;
/// `trace!("format {}", args)`: logs a formatted line at trace level.
pub use crate::__wasmray_trace as trace;
/// `warn!("format {}", args)`: logs a formatted line at warn level.
pub use crate::__wasmray_warn as warn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_truncates() {
        take_captured();
        info!("n = {}", 3);
        warn("w");
        let long = "é".repeat(MAX_MESSAGE_LEN);
        error(&long);
        let lines = take_captured();
        assert_eq!(
            lines[0],
            LogLine {
                level: Level::Info,
                message: "n = 3".into()
            }
        );
        assert_eq!(lines[1].level, Level::Warn);
        assert!(
            lines[2].message.len() <= MAX_MESSAGE_LEN
                && lines[2].message.len() >= MAX_MESSAGE_LEN - 1
        );
        assert!(take_captured().is_empty());
    }
}
