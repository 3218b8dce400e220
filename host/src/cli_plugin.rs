//! `wasmray plugin check|run`: load a plugin file exactly as the daemon would and show
//! what it says, without running a daemon.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::plugin::{Answer, PluginEngine, RuntimeLimits, Source, load_plugin};
use crate::session::{Network, SnapshotFields, Target};

#[derive(Subcommand)]
pub enum PluginCommand {
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
