//! The `wasmray` command line. Everything it does lives in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use wasmray::config::Config;
use wasmray::daemon::Daemon;

#[derive(Parser)]
#[command(
    name = "wasmray",
    version,
    about = "VLESS over TLS with Mux.Cool; sniffing and routing run as wasm plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (with no -c: an embedded default server on loopback).
    Run {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Listen address of the embedded default.
        #[arg(long, default_value = wasmray::default_config::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// How long sessions may drain after SIGINT/SIGTERM (and those of an inbound a
        /// reload removes).
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// Write the daemon's pid here (for `wasmray reload`); removed at exit.
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Make a running daemon re-read its configuration (sends it SIGHUP).
    Reload {
        /// The pid file the daemon was started with (`run --pid-file`).
        #[arg(long, default_value = DEFAULT_PID_FILE)]
        pid_file: PathBuf,
        /// Check this configuration first, and signal nothing if it is invalid.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration (and load its plugins); exit 0 if valid, 1 if not.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print a new random user id.
    Uuid,
    /// Print a vless:// share link for every user of every VLESS inbound.
    Link {
        #[arg(short, long)]
        config: PathBuf,
        /// The address clients dial (default: the listen address).
        #[arg(long)]
        host: Option<String>,
        /// The SNI clients send (default: the host).
        #[arg(long)]
        sni: Option<String>,
        /// Mark the link allowInsecure (self-signed certificates).
        #[arg(long)]
        insecure: bool,
    },
    /// Write a self-signed cert.pem and key.pem (for tests and trials).
    Cert {
        #[arg(short, long, default_value = ".")]
        out: PathBuf,
        #[arg(short, long, default_value = "localhost")]
        name: Vec<String>,
    },
    /// Turn an Xray JSON config into wasmray TOML (on standard output), naming every
    /// field that cannot be carried over (at the top of the TOML and on standard error).
    ImportXray {
        /// The Xray config (JSON, comments allowed).
        config: PathBuf,
        /// Write inline certificates and keys here as PEM files (the TOML names them).
        #[arg(long)]
        write_certs: Option<PathBuf>,
    },
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(wasmray::cli_plugin::PluginCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            config,
            listen,
            grace,
            pid_file,
        } => run(config.as_deref(), listen, grace, pid_file.as_deref()),
        Command::Reload { pid_file, config } => reload_command(&pid_file, config.as_deref()),
        Command::Check { config } => return check(&config),
        Command::Uuid => {
            println!("{}", uuid::Uuid::new_v4());
            Ok(())
        }
        Command::Link {
            config,
            host,
            sni,
            insecure,
        } => link(&config, host.as_deref(), sni.as_deref(), insecure),
        Command::Cert { out, name } => cert(&out, &name),
        Command::ImportXray {
            config,
            write_certs,
        } => import_xray(&config, write_certs.as_deref()),
        Command::Plugin(cmd) => wasmray::cli_plugin::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmray: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn import_xray(path: &Path, certs: Option<&Path>) -> anyhow::Result<()> {
    use std::io::Read as _;
    let limit = wasmray::import_xray::MAX_INPUT as u64;
    let mut json = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(limit + 1)
        .read_to_string(&mut json)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let imported =
        wasmray::import_xray::import(&json).with_context(|| format!("{}", path.display()))?;
    if !imported.files.is_empty() {
        let Some(dir) = certs else {
            let names: Vec<&str> = imported.files.iter().map(|(n, _)| n.as_str()).collect();
            anyhow::bail!(
                "the config has inline certificates; pass --write-certs DIR to write them as {}",
                names.join(", ")
            );
        };
        for (name, pem) in &imported.files {
            let file = dir.join(name);
            write_private(&file, pem)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote {}", file.display());
        }
    }
    print!("{}", imported.toml);
    match imported.notes.len() {
        0 => eprintln!("every field was carried over"),
        n => eprintln!("{n} fields not carried over; the TOML lists them at its top"),
    }
    Ok(())
}

/// Writes `text` to a new file only its owner can read (keys among them).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

/// Where `wasmray reload` looks for the pid by default (the systemd unit's choice).
const DEFAULT_PID_FILE: &str = "/run/wasmray/wasmray.pid";

fn run(
    path: Option<&Path>,
    listen: SocketAddr,
    grace: Duration,
    pid_file: Option<&Path>,
) -> anyhow::Result<()> {
    let embedded = path.is_none();
    let config = match path {
        Some(p) => load(p)?,
        None => wasmray::default_config::embedded(listen)?,
    };
    wasmray::logging::init(&config.log)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Handlers first: once anything says the daemon listens, SIGTERM must drain and
        // SIGHUP reload, not kill (their default action).
        let signals = Signals::new()?;
        let daemon = Arc::new(Daemon::start(&config).await?);
        if embedded {
            print_default(&config, &daemon).await;
        }
        let api = match config.api.clone() {
            Some(api) => Some(start_api(api, &daemon).await?),
            None => None,
        };
        let metrics = match config.metrics {
            Some(m) => Some(start_metrics(m, &daemon).await?),
            None => None,
        };
        let _pid = pid_file.map(PidFile::write).transpose()?;
        println!("wasmray is running; press Ctrl-C to stop");
        signals.wait(&daemon, path, grace).await;
        drop(api);
        drop(metrics);
        tracing::info!("shutting down: no new connections; draining for up to {grace:?}");
        let left = daemon.shutdown(grace).await;
        if left > 0 {
            tracing::warn!("{left} sessions still open after {grace:?}; closing them");
        }
        Ok(())
    })
}

/// Binds the management API and serves it until the returned sender drops. Its
/// address is fixed at start (a reload does not move it).
async fn start_api(
    api: wasmray::config::ApiConfig,
    daemon: &Arc<Daemon>,
) -> anyhow::Result<tokio::sync::oneshot::Sender<()>> {
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .map_err(|e| anyhow::anyhow!("api: cannot listen on {}: {e}", api.listen))?;
    let over = match (
        &api.tls,
        api.tls.as_ref().and_then(|t| t.client_ca.as_ref()),
    ) {
        (None, _) => "",
        (Some(_), None) => " (TLS)",
        (Some(_), Some(_)) => " (TLS, client certificates required)",
    };
    tracing::info!(
        "api: Xray's HandlerService and StatsService on {}{over}",
        listener.local_addr()?
    );
    if let Some(ledger) = daemon.ledger() {
        tracing::info!("api: user changes kept in {}", ledger.path().display());
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = Arc::clone(daemon);
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = wasmray::api::serve(listener, daemon, api.tls.as_ref(), shutdown).await {
            tracing::error!("{e}");
        }
    });
    Ok(stop)
}

/// Binds `/metrics` and serves it until the returned sender drops (fixed at start,
/// as the API).
async fn start_metrics(
    metrics: wasmray::config::MetricsConfig,
    daemon: &Daemon,
) -> anyhow::Result<tokio::sync::oneshot::Sender<()>> {
    let listener = tokio::net::TcpListener::bind(metrics.listen)
        .await
        .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {}: {e}", metrics.listen))?;
    tracing::info!(
        "metrics: Prometheus at http://{}/metrics",
        listener.local_addr()?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    tokio::spawn(wasmray::metrics::serve(
        listener,
        Arc::clone(&daemon.metrics),
        shutdown,
    ));
    Ok(stop)
}

async fn print_default(config: &Config, daemon: &Daemon) {
    let mut config = config.clone();
    let bound = daemon.addr("vless-in").await;
    if let (Some(inbound), Some(addr)) = (config.inbounds.first_mut(), bound) {
        inbound.listen = addr;
    }
    println!(
        "embedded default: VLESS over TLS (self-signed, SNI {}) on {}",
        wasmray::default_config::DEFAULT_SNI,
        config.inbounds[0].listen
    );
    for link in config.share_links(None, Some(wasmray::default_config::DEFAULT_SNI), true) {
        println!("share link: {link}");
    }
    if let Some(json) = wasmray::default_config::client_json(&config) {
        println!("v2ray/Xray client config (SOCKS on 127.0.0.1:1080):\n{json}");
    }
}

/// SIGTERM, SIGINT and SIGHUP, caught from the moment this is built.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Returns on SIGINT or SIGTERM; reloads on SIGHUP.
    async fn wait(mut self, daemon: &Daemon, path: Option<&Path>, grace: Duration) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => reload(daemon, path, grace).await,
            }
        }
    }
}

/// SIGHUP: reopen the access log, then apply the configuration file whole (the
/// embedded default has no file: its plugins are reloaded).
async fn reload(daemon: &Daemon, path: Option<&Path>, grace: Duration) {
    if let Err(e) = wasmray::logging::reopen_access() {
        tracing::error!("SIGHUP: {e}");
    }
    let Some(path) = path else {
        let registry = daemon.registry.clone();
        match tokio::task::spawn_blocking(move || registry.reload(None)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(
                "SIGHUP: plugin reload failed, the previous pipeline keeps serving: {e:#}"
            ),
            Err(e) => tracing::error!("SIGHUP: reload task failed: {e}"),
        }
        return;
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("SIGHUP: configuration refused, the running one keeps serving:\n{e}");
            return;
        }
    };
    if let Err(e) = daemon.reload(&config, grace).await {
        tracing::error!(
            "SIGHUP: configuration refused, the running one keeps serving: {}: {e:#}",
            path.display()
        );
    }
}

/// The daemon's pid in a file, removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> anyhow::Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("write the pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn reload_command(pid_file: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    if let Some(config) = config {
        load(config)?;
    }
    let text = std::fs::read_to_string(pid_file).with_context(|| {
        format!(
            "read the pid file {} (is wasmray running with --pid-file?)",
            pid_file.display()
        )
    })?;
    let pid: libc::pid_t =
        text.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            anyhow::anyhow!("{}: not a pid: {:?}", pid_file.display(), text.trim())
        })?;
    // SAFETY: kill(2) with a positive pid and a valid signal number only sends a signal.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!("cannot signal pid {pid} from {}: {e}", pid_file.display());
    }
    println!("sent SIGHUP to wasmray (pid {pid}); it logs what the reload changed");
    Ok(())
}

fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match wasmray::plugin::Registry::start(config.plugins.clone()) {
        Ok(registry) => {
            let pipeline = registry.pipeline();
            let names: Vec<String> = pipeline
                .plugins
                .iter()
                .map(|p| format!("{}@{}", p.name, p.version))
                .collect();
            println!(
                "{}: ok ({} inbounds, {} outbounds, pipeline: {})",
                path.display(),
                config.inbounds.len(),
                config.outbounds.len(),
                names.join(" → ")
            );
            if config.plugins.geodata.files().next().is_some() {
                println!("geodata: {}", registry.geodata().summary());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: plugins: {e:#}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn link(path: &Path, host: Option<&str>, sni: Option<&str>, insecure: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    let links = config.share_links(host, sni, insecure);
    anyhow::ensure!(
        !links.is_empty(),
        "no VLESS inbound with users in {}",
        path.display()
    );
    for l in links {
        println!("{l}");
    }
    Ok(())
}

fn cert(out: &Path, names: &[String]) -> anyhow::Result<()> {
    let cert = rcgen::generate_simple_self_signed(names.to_vec())?;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("cert.pem"), cert.cert.pem()).context("write cert.pem")?;
    std::fs::write(out.join("key.pem"), cert.signing_key.serialize_pem())
        .context("write key.pem")?;
    println!(
        "wrote {0}/cert.pem and {0}/key.pem for {1}",
        out.display(),
        names.join(", ")
    );
    Ok(())
}
