//! `[geodata]`: where the geosite, geoip and rule-set files are, and the directory
//! `ext:FILE:LIST` files are named in. Only the paths are
//! checked here; the files are read by `geodata::GeoData::load` when the daemon starts
//! or reloads, and by `wasmray check`.

use std::path::{Path, PathBuf};

use super::error::Errors;
use super::raw::RawGeodata;
use crate::geodata::Sources;

pub fn validate(raw: RawGeodata, base: &Path, errors: &mut Errors) -> Sources {
    let geosite = raw
        .geosite
        .and_then(|p| path("geodata.geosite", p, base, errors));
    let geoip = raw
        .geoip
        .and_then(|p| path("geodata.geoip", p, base, errors));
    let mut rule_sets = std::collections::BTreeMap::new();
    for (name, p) in raw.rule_sets {
        let at = format!("geodata.rule_sets.{name}");
        let fine = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !fine {
            errors.push(
                &at,
                "a rule-set name is lower-case letters, digits, '-' and '_' (route rules name it as rule-set:NAME)",
            );
            continue;
        }
        if let Some(p) = path(&at, p, base, errors) {
            rule_sets.insert(name, p);
        }
    }
    let assets = match raw.assets {
        Some(p) => path("geodata.assets", p, base, errors),
        None => Some(base.to_path_buf()),
    };
    Sources {
        geosite,
        geoip,
        rule_sets,
        assets,
    }
}

fn path(at: &str, p: String, base: &Path, errors: &mut Errors) -> Option<PathBuf> {
    if p.is_empty() {
        errors.push(at, "an empty path; leave it out or name a file");
        return None;
    }
    Some(base.join(p))
}
