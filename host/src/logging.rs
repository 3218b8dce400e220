//! Logging with tracing: the level from the config or `RUST_LOG`, text or JSON.
//! Every connection runs in its own span (`conn{id source}`), so all of its lines can
//! be found together. User ids are never logged in full (see `util::short_id`).
//!
//! The access log (the `access` target, one line per session) is a layer of its own
//! with its own filter, so `access = true` means the lines are written whatever
//! `level` says, and they can go to a file of their own. That file is reopened on
//! SIGHUP ([`reopen_access`]), as logrotate expects; the level is reloaded then too
//! ([`set_level`]), unless `RUST_LOG` decides it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, Registry, reload};

use crate::config::{AccessLog, LogConfig};

/// The target of the access log's lines.
pub const ACCESS_TARGET: &str = "access";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the access log {0}: {1}")]
    Open(PathBuf, std::io::Error),
}

/// What a reload may change after [`init`].
struct Installed {
    level: reload::Handle<EnvFilter, Registry>,
    /// Set: `RUST_LOG` chose the filter, and the config's level is not applied.
    from_env: bool,
    access: Option<AccessFile>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the global subscriber (once; later calls are ignored, as in tests).
pub fn init(config: &LogConfig) -> Result<(), LogError> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&config.level))
        .add_directive(off(ACCESS_TARGET));
    let (filter, level) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let main = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let main = if config.json {
        main.json().with_current_span(true).boxed()
    } else {
        main.boxed()
    };
    let access_file = match &config.access {
        AccessLog::File(path) => Some(AccessFile::open(path)?),
        _ => None,
    };
    let access = match (&config.access, &access_file) {
        (AccessLog::Off, _) => None,
        (_, Some(file)) => Some(access_layer(config.json, false, file.clone())),
        (_, None) => Some(access_layer(config.json, ansi, StderrWriter)),
    };
    let only_access = Targets::new().with_target(ACCESS_TARGET, tracing::Level::INFO);
    let mut layers: Vec<BoxedLayer> = vec![main.with_filter(filter).boxed()];
    layers.extend(access.map(|l| l.with_filter(only_access).boxed()));
    let installed = tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok();
    if installed {
        let _ = INSTALLED.set(Installed {
            level,
            from_env,
            access: access_file,
        });
    }
    Ok(())
}

/// Applies a reloaded config's level (unless `RUST_LOG` set it).
pub fn set_level(level: &str) {
    let Some(installed) = INSTALLED.get() else {
        return;
    };
    if installed.from_env {
        return;
    }
    let filter = EnvFilter::new(level).add_directive(off(ACCESS_TARGET));
    if let Err(e) = installed.level.reload(filter) {
        tracing::warn!("cannot change the log level: {e}");
    }
}

/// Reopens the access-log file (after logrotate moved it away), if there is one.
pub fn reopen_access() -> Result<(), LogError> {
    match INSTALLED.get().and_then(|i| i.access.as_ref()) {
        Some(file) => file.reopen(),
        None => Ok(()),
    }
}

fn off(target: &str) -> tracing_subscriber::filter::Directive {
    format!("{target}=off")
        .parse()
        .expect("a target=off directive parses")
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>;

fn access_layer<W>(json: bool, ansi: bool, writer: W) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_ansi(ansi)
        .with_writer(writer);
    if json {
        layer.json().boxed()
    } else {
        layer.boxed()
    }
}

#[derive(Clone, Copy)]
struct StderrWriter;

impl<'w> MakeWriter<'w> for StderrWriter {
    type Writer = std::io::Stderr;
    fn make_writer(&'w self) -> Self::Writer {
        std::io::stderr()
    }
}

/// The access-log file, appended to line by line and swapped whole on reopen.
#[derive(Clone)]
struct AccessFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl AccessFile {
    fn open(path: &Path) -> Result<Self, LogError> {
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_append(path)?)),
        })
    }

    fn reopen(&self) -> Result<(), LogError> {
        let fresh = open_append(&self.path)?;
        *crate::util::lock(&self.file) = fresh;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LogError::Open(path.to_path_buf(), e))
}

/// One formatted event, written to the file in one `write` when dropped, so lines
/// from many threads never interleave.
struct AccessLine<'a> {
    file: &'a Mutex<File>,
    line: Vec<u8>,
}

impl Write for AccessLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for AccessLine<'_> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let mut file = crate::util::lock(self.file);
        // A full disk must not stop sessions; the line is lost, as in any logger.
        let _ = file.write_all(&self.line);
    }
}

impl<'w> MakeWriter<'w> for AccessFile {
    type Writer = AccessLine<'w>;
    fn make_writer(&'w self) -> Self::Writer {
        AccessLine {
            file: &self.file,
            line: Vec::with_capacity(256),
        }
    }
}
