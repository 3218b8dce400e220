//! geodata-gen: the benchmark's routing data at the scale of real files, written as
//! Xray/v2ray read it (`geosite.dat`, `geoip.dat`, list `bench`) and as sing-box
//! rule-set sources (`bench-site.json`, `bench-ip.json`, which `sing-box rule-set
//! compile` turns into `.srs`). The same entries in every format, from the generator
//! the criterion benchmark uses.
//!
//! ```sh
//! geodata-gen --out DIR --domains 100000 --cidrs 100000
//! ```

use std::path::PathBuf;

use clap::Parser;
use serde_json::{Value, json};
use wasmray::geodata::dat::write;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    domains: usize,
    #[arg(long, default_value_t = 100_000)]
    cidrs: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("geosite.dat"),
        write::synthetic_geosite(args.domains),
    )?;
    std::fs::write(
        args.out.join("geoip.dat"),
        write::synthetic_geoip(args.cidrs),
    )?;
    let mut kinds: [Vec<String>; 4] = Default::default();
    for (kind, value) in write::synthetic_domains(args.domains) {
        // geosite types plain 0, regex 1, domain 2, full 3.
        let slot = match kind {
            0 => 2,
            1 => 3,
            2 => 1,
            _ => 0,
        };
        kinds[slot].push(value);
    }
    let [domain, domain_suffix, domain_keyword, domain_regex] = kinds;
    let site = json!({"version": 3, "rules": [{
        "domain": domain, "domain_suffix": domain_suffix,
        "domain_keyword": domain_keyword, "domain_regex": domain_regex,
    }]});
    let cidrs: Vec<Value> = write::synthetic_cidrs(args.cidrs)
        .into_iter()
        .map(|(ip, prefix)| Value::String(format!("{ip}/{prefix}")))
        .collect();
    let ip = json!({"version": 3, "rules": [{"ip_cidr": cidrs}]});
    std::fs::write(args.out.join("bench-site.json"), site.to_string())?;
    std::fs::write(args.out.join("bench-ip.json"), ip.to_string())?;
    Ok(())
}
