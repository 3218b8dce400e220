//! The `wasmray` command line. Everything it does lives in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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
        /// How long sessions may drain after SIGINT/SIGTERM.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: Duration,
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
        } => run(config.as_deref(), listen, grace),
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

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn run(path: Option<&Path>, listen: SocketAddr, grace: Duration) -> anyhow::Result<()> {
    let embedded = path.is_none();
    let config = match path {
        Some(p) => load(p)?,
        None => wasmray::default_config::embedded(listen)?,
    };
    wasmray::logging::init(&config.log);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Handlers first: once anything says the daemon listens, SIGTERM must drain and
        // SIGHUP reload, not kill (their default action).
        let signals = Signals::new()?;
        let daemon = Daemon::start(&config).await?;
        if embedded {
            print_default(&config, &daemon);
        }
        println!("wasmray is running; press Ctrl-C to stop");
        signals.wait(&daemon, path).await;
        tracing::info!("shutting down: no new connections; draining for up to {grace:?}");
        let left = daemon.shutdown(grace).await;
        if left > 0 {
            tracing::warn!("{left} sessions still open after {grace:?}; closing them");
        }
        Ok(())
    })
}

fn print_default(config: &Config, daemon: &Daemon) {
    let mut config = config.clone();
    if let (Some(inbound), Some(addr)) = (config.inbounds.first_mut(), daemon.addr("vless-in")) {
        inbound.listen = addr;
    }
    println!(
        "embedded default: VLESS over TLS (self-signed, SNI {}) on {}",
        wasmray::default_config::DEFAULT_SNI,
        config.inbounds[0].listen
    );
    for link in wasmray::share::links(
        &config,
        None,
        Some(wasmray::default_config::DEFAULT_SNI),
        true,
    ) {
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

    /// Returns on SIGINT or SIGTERM; reloads the plugins on SIGHUP.
    async fn wait(mut self, daemon: &Daemon, path: Option<&Path>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => reload(daemon, path).await,
            }
        }
    }
}

async fn reload(daemon: &Daemon, path: Option<&Path>) {
    let plugins = match path.map(Config::load) {
        Some(Ok(c)) => Some(c.plugins),
        Some(Err(e)) => {
            tracing::error!("SIGHUP: configuration refused, keeping the running one:\n{e}");
            return;
        }
        None => None,
    };
    let registry = daemon.registry.clone();
    match tokio::task::spawn_blocking(move || registry.reload(plugins)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(
            "SIGHUP: plugin reload failed, the previous pipeline keeps serving: {e:#}"
        ),
        Err(e) => tracing::error!("SIGHUP: reload task failed: {e}"),
    }
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
    let links = wasmray::share::links(&config, host, sni, insecure);
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
