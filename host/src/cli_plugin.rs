//! `wasmray plugin check|run`: load a plugin file exactly as the daemon would and show
//! what it says, without running a daemon; `wasmray plugin new`: start a plugin crate.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::plugin::{Answer, PluginEngine, RuntimeLimits, Source, load_plugin};
use crate::session::{Network, SnapshotFields, Target};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate that builds as it stands: src/lib.rs, a native test, a
    /// README.
    New {
        /// The plugin's name (its crate and the name in `[plugins] pipeline`).
        name: String,
        #[arg(long, value_enum)]
        stage: crate::scaffold::NewStage,
        /// Where to create it (default: ./NAME); must not exist yet.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK's directory (default: the one this wasmray was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Validate a plugin file and print what `describe` says.
    Check {
        file: PathBuf,
        /// The plugin's config table as a TOML file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Call a plugin once and print its answer and delta.
    Run {
        file: PathBuf,
        /// The payload prefix to show the plugin.
        #[arg(long)]
        payload: Option<PathBuf>,
        /// Session attributes, key=value.
        #[arg(long = "attr")]
        attrs: Vec<String>,
        /// The plugin's config table as a TOML file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The session's target.
        #[arg(long, default_value = "example.com:443")]
        target: String,
        #[arg(long)]
        udp: bool,
        #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
        call_timeout: std::time::Duration,
    },
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::New {
            name,
            stage,
            dir,
            sdk,
        } => new(&name, stage, dir, sdk),
        PluginCommand::Check { file, config } => {
            let plugin = load(
                &file,
                config.as_deref(),
                std::time::Duration::from_millis(5),
            )?;
            println!("{}: ok", file.display());
            println!(
                "name: {}\nversion: {}\nstage: {}\npayload bytes: {}",
                plugin.name,
                plugin.version,
                stage_name(plugin.stage),
                plugin.payload_bytes
            );
            Ok(())
        }
        PluginCommand::Run {
            file,
            payload,
            attrs,
            config,
            target,
            udp,
            call_timeout,
        } => {
            let plugin = load(&file, config.as_deref(), call_timeout)?;
            let payload = payload.map(std::fs::read).transpose()?.unwrap_or_default();
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("--target: host:port"))?;
            let network = if udp { Network::Udp } else { Network::Tcp };
            let mut fields = SnapshotFields::new(
                "cli",
                ([127, 0, 0, 1], 40000).into(),
                network,
                Target::new(host.trim_matches(['[', ']']), port.parse()?),
            );
            for kv in attrs {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--attr {kv}: key=value"))?;
                fields.attrs.insert(k.to_ascii_lowercase().into(), v.into());
            }
            let answer = plugin.handle(&fields.freeze(), &payload)?;
            match answer {
                Answer::NeedMore => println!("need-more"),
                Answer::NoMatch => println!("no-match"),
                Answer::Matched(d) => {
                    println!("matched");
                    for (k, v) in &d.set {
                        println!("  set {k} = {v}");
                    }
                    for k in &d.remove {
                        println!("  remove {k}");
                    }
                    for (what, v) in [
                        ("protocol", &d.protocol),
                        ("sniffed-domain", &d.sniffed_domain),
                        ("outbound", &d.outbound),
                    ] {
                        if let Some(v) = v {
                            println!("  {what} = {v}");
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Writes the new crate; refuses a directory that exists, and an SDK path that is not
/// the SDK.
fn new(
    name: &str,
    stage: crate::scaffold::NewStage,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    let sdk = std::path::absolute(sdk.unwrap_or(built_from))?;
    if !sdk.join("Cargo.toml").is_file() || !sdk.join("wit/plugin.wit").is_file() {
        anyhow::bail!(
            "{}: not the wasmray plugin SDK (pass --sdk DIR, the plugin-sdk directory of a wasmray checkout)",
            sdk.display()
        );
    }
    let files = crate::scaffold::files(name, stage, &sdk.to_string_lossy())?;
    if dir.exists() {
        anyhow::bail!("{}: exists already", dir.display());
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    println!(
        "created {} ({name}, {stage:?} stage); see its README.md",
        dir.display()
    );
    Ok(())
}

/// The stage as the WIT contract and the config spell it.
fn stage_name(stage: crate::plugin::Stage) -> &'static str {
    match stage {
        crate::plugin::Stage::Sniff => "sniff",
        crate::plugin::Stage::Route => "route",
    }
}

fn load(
    file: &Path,
    config: Option<&Path>,
    call_timeout: std::time::Duration,
) -> anyhow::Result<crate::plugin::LoadedPlugin> {
    let json = match config {
        Some(p) => {
            let table: toml::Table = toml::from_str(&std::fs::read_to_string(p)?)?;
            crate::config::toml_to_json(toml::Value::Table(table)).to_string()
        }
        None => "{}".into(),
    };
    let bytes = std::fs::read(file)?;
    let limits = RuntimeLimits {
        call_timeout,
        memory_limit: crate::plugin::engine_config::DEFAULT_MEMORY_LIMIT,
    };
    let engine = PluginEngine::new(limits.memory_limit)?;
    Ok(load_plugin(
        &engine,
        &bytes,
        Source::File(file.to_path_buf()),
        &|_| json.clone(),
        limits,
        Default::default(),
    )?)
}
