//! Routing data: geosite and geoip files and sing-box rule-sets, loaded once by the host
//! and shared read-only by every plugin instance.
//!
//! Xray's geodata is its best-known memory problem, and a plugin platform would make it
//! worse: each pooled wasm instance holding its own copy. Here the host parses each
//! file into one compact structure (`domains`, `ips`, `ruleset`), plugins name the lists
//! they use when they are configured, and ask about them through the contract; nothing
//! is copied into an instance. A `GeoData` is immutable: a changed file yields a new
//! one, built off the hot path and swapped in whole with the pipeline, so a broken file
//! never replaces a working one.

pub mod dat;
pub mod domains;
pub mod ext;
pub mod ips;
pub mod ruleset;
pub mod source;
pub mod srs;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use domains::{Domains, Selector};
use ips::IpLists;
use ruleset::{Query, RuleSet};

/// A data file is at most this large (Xray's full geosite.dat is about 10 MB).
pub const MAX_FILE: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("truncated at byte {offset}")]
    Truncated { offset: usize },
    #[error("malformed at byte {offset}: {why}")]
    Malformed { offset: usize, why: &'static str },
    #[error("at byte {offset}: {source}")]
    At {
        offset: usize,
        source: Box<GeoError>,
    },
    #[error("in the decompressed body: {0}")]
    Body(Box<GeoError>),
    #[error("rule {index}: {source}")]
    Rule { index: usize, source: Box<GeoError> },
    #[error("list {list:?}: {why}")]
    Value { list: String, why: String },
    #[error("{ip}/{prefix} is not a CIDR")]
    Prefix { ip: IpAddr, prefix: u32 },
    #[error("{from}-{to} is not an address range")]
    Range { from: IpAddr, to: IpAddr },
    #[error("more entries than the tables can index")]
    TooLarge,
    #[error("rule-set version {0} (wasmray reads 1 to {max})", max = srs::MAX_VERSION)]
    Version(u8),
    #[error("zlib: {0}")]
    Compressed(String),
    #[error("JSON: {0}")]
    Json(String),
    #[error("{}item {item} is not supported by wasmray (it routes on domain, domain_suffix, domain_keyword, domain_regex, ip_cidr and source_ip_cidr)", at_offset(*.offset))]
    Item { offset: usize, item: String },
    #[error("no list {0:?}")]
    UnknownList(String),
    #[error("no entry has the attribute in {0:?}")]
    UnknownAttribute(String),
    #[error("{spec:?}: {why}")]
    Spec { spec: String, why: &'static str },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<GeoError>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn at_offset(offset: usize) -> String {
    if offset == 0 {
        String::new()
    } else {
        format!("at byte {offset}: ")
    }
}

impl GeoError {
    /// The error, placed at `offset` unless it already names one.
    pub fn at(self, offset: usize) -> GeoError {
        match self {
            GeoError::Truncated { .. } | GeoError::Malformed { .. } | GeoError::At { .. } => self,
            other => GeoError::At {
                offset,
                source: Box::new(other),
            },
        }
    }

    fn spec(spec: &str, why: &'static str) -> GeoError {
        GeoError::Spec {
            spec: spec.to_string(),
            why,
        }
    }

    /// An unknown list named by the whole spec the plugin asked for.
    fn named(self, spec: &str) -> GeoError {
        match self {
            GeoError::UnknownList(_) => GeoError::UnknownList(spec.to_string()),
            other => other,
        }
    }

    fn in_body(self) -> GeoError {
        GeoError::Body(Box::new(self))
    }

    fn in_rule(self, index: usize) -> GeoError {
        GeoError::Rule {
            index,
            source: Box::new(self),
        }
    }

    fn in_file(self, path: &Path) -> GeoError {
        GeoError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// Where the data comes from (`[geodata]`, paths already resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub geosite: Option<PathBuf>,
    pub geoip: Option<PathBuf>,
    pub rule_sets: BTreeMap<String, PathBuf>,
    /// Where `ext:FILE:LIST` files are (`[geodata] assets`, by default the config's
    /// directory); `None`: ext lists are refused.
    pub assets: Option<PathBuf>,
}

impl Sources {
    /// Every file, for the watcher.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.geosite
            .iter()
            .chain(&self.geoip)
            .chain(self.rule_sets.values())
            .map(PathBuf::as_path)
    }
}

/// All routing data, read-only (ext files are read into `ext` when first asked for).
#[derive(Default)]
pub struct GeoData {
    pub geosite: Option<Domains>,
    pub geoip: Option<IpLists>,
    pub rule_sets: BTreeMap<String, RuleSet>,
    pub ext: ext::Ext,
}

/// A domain list a plugin asked for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainList {
    Site(Selector),
    RuleSet(String),
    Ext(Shared<Domains>, Selector),
}

/// An IP list a plugin asked for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpListRef {
    Geo(u32),
    RuleSet(String),
    Ext(Shared<IpLists>, u32),
}

/// An ext file's data, held by the handles opened into it; equal when it is the same
/// copy.
pub struct Shared<T>(pub std::sync::Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Shared<T> {}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ext file")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, GeoError> {
    let io = |source| GeoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_FILE {
        return Err(GeoError::TooLarge.in_file(path));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_FILE + 1), &mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// Reads a rule-set: `.json` is the source format, anything else the binary one.
pub fn read_rule_set(path: &Path) -> Result<RuleSet, GeoError> {
    let bytes = read(path)?;
    let parsed = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        match std::str::from_utf8(&bytes) {
            Ok(text) => source::parse(text),
            Err(_) => Err(GeoError::Json("the file is not UTF-8".into())),
        }
    } else {
        srs::parse(&bytes)
    };
    parsed.map_err(|e| e.in_file(path))
}

impl GeoData {
    /// Loads every file of `sources`; the first that cannot be read or parsed is the
    /// error, named by its path.
    pub fn load(sources: &Sources) -> Result<GeoData, GeoError> {
        let mut data = GeoData {
            ext: ext::Ext::new(sources.assets.clone()),
            ..GeoData::default()
        };
        if let Some(path) = &sources.geosite {
            let bytes = read(path)?;
            data.geosite = Some(dat::geosite(&bytes).map_err(|e| e.in_file(path))?);
        }
        if let Some(path) = &sources.geoip {
            let bytes = read(path)?;
            data.geoip = Some(dat::geoip(&bytes).map_err(|e| e.in_file(path))?);
        }
        for (name, path) in &sources.rule_sets {
            data.rule_sets.insert(name.clone(), read_rule_set(path)?);
        }
        Ok(data)
    }

    /// What is loaded, for the log.
    pub fn summary(&self) -> String {
        let site = self
            .geosite
            .as_ref()
            .map_or((0, 0), |d| (d.lists().count(), d.len()));
        let ip = self
            .geoip
            .as_ref()
            .map_or((0, 0), |g| (g.names().count(), g.ranges()));
        let sets: usize = self.rule_sets.values().map(RuleSet::size).sum();
        format!(
            "geosite {} lists ({} entries), geoip {} lists ({} ranges), {} rule-sets ({} entries)",
            site.0,
            site.1,
            ip.0,
            ip.1,
            self.rule_sets.len(),
            sets
        )
    }

    /// Resolves `geosite:NAME[@attr...]`, `ext:FILE:NAME[@attr...]` or `rule-set:NAME`.
    pub fn domain_list(&self, spec: &str) -> Result<DomainList, GeoError> {
        if let Some(split) = ext::split(spec) {
            let (file, name) = split?;
            let site = self.ext.sites(file)?;
            let selector = site.selector(name).map_err(|e| e.named(spec))?;
            return Ok(DomainList::Ext(Shared(site), selector));
        }
        if let Some(name) = spec.strip_prefix("geosite:") {
            let site = self
                .geosite
                .as_ref()
                .ok_or_else(|| GeoError::spec(spec, "no [geodata] geosite is configured"))?;
            return site
                .selector(name)
                .map(DomainList::Site)
                .map_err(|e| e.named(spec));
        }
        match self.rule_set(spec) {
            Some(set) => set.map(DomainList::RuleSet),
            None => Err(GeoError::spec(
                spec,
                "a domain list is geosite:NAME, geosite:NAME@ATTR, ext:FILE:NAME or rule-set:NAME",
            )),
        }
    }

    /// Resolves `geoip:CC`, `ext:FILE:CC` or `rule-set:NAME`.
    pub fn ip_list(&self, spec: &str) -> Result<IpListRef, GeoError> {
        if let Some(split) = ext::split(spec) {
            let (file, name) = split?;
            let ips = self.ext.ips(file)?;
            let id = ips.id(name).map_err(|e| e.named(spec))?;
            return Ok(IpListRef::Ext(Shared(ips), id));
        }
        if let Some(name) = spec.strip_prefix("geoip:") {
            let geoip = self
                .geoip
                .as_ref()
                .ok_or_else(|| GeoError::spec(spec, "no [geodata] geoip is configured"))?;
            return geoip
                .id(name)
                .map(IpListRef::Geo)
                .map_err(|e| e.named(spec));
        }
        match self.rule_set(spec) {
            Some(set) => set.map(IpListRef::RuleSet),
            None => Err(GeoError::spec(
                spec,
                "an IP list is geoip:CC, ext:FILE:CC or rule-set:NAME",
            )),
        }
    }

    /// For `rule-set:NAME`, the name if that rule-set is loaded; `None` for any other
    /// kind of spec.
    pub fn rule_set(&self, spec: &str) -> Option<Result<String, GeoError>> {
        let name = spec.strip_prefix("rule-set:")?;
        Some(match self.rule_sets.contains_key(name) {
            true => Ok(name.to_string()),
            false => Err(GeoError::UnknownList(spec.to_string())),
        })
    }

    /// Whether `name` is in `list` (case and a trailing dot do not matter).
    pub fn domain_in(&self, list: &DomainList, name: &str) -> bool {
        let mut buf = [0u8; 256];
        let name = lower(name, &mut buf);
        let Some(name) = name.as_deref() else {
            return false;
        };
        match list {
            DomainList::Site(sel) => self.geosite.as_ref().is_some_and(|s| s.contains(sel, name)),
            DomainList::Ext(site, sel) => site.0.contains(sel, name),
            DomainList::RuleSet(set) => self.rule_sets.get(set).is_some_and(|r| {
                r.matches(&Query {
                    domain: Some(name),
                    ..Query::default()
                })
            }),
        }
    }

    /// Whether `ip` is in `list`.
    pub fn ip_in(&self, list: &IpListRef, ip: IpAddr) -> bool {
        match list {
            IpListRef::Geo(id) => self
                .geoip
                .as_ref()
                .and_then(|g| g.get(*id))
                .is_some_and(|l| l.contains(ip)),
            IpListRef::Ext(ips, id) => ips.0.get(*id).is_some_and(|l| l.contains(ip)),
            IpListRef::RuleSet(set) => self.rule_sets.get(set).is_some_and(|r| {
                r.matches(&Query {
                    ip: Some(ip),
                    ..Query::default()
                })
            }),
        }
    }
}

/// `name` lower-cased without its trailing dot, in `buf` when it fits (no allocation on
/// the lookup path for real names); `None` for an empty name.
pub(crate) fn lower<'a>(
    name: &'a str,
    buf: &'a mut [u8; 256],
) -> Option<std::borrow::Cow<'a, str>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(std::borrow::Cow::Borrowed(name));
    }
    if name.len() <= buf.len() {
        let out = &mut buf[..name.len()];
        out.copy_from_slice(name.as_bytes());
        out.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid.
        return std::str::from_utf8(out)
            .ok()
            .map(std::borrow::Cow::Borrowed);
    }
    Some(std::borrow::Cow::Owned(name.to_ascii_lowercase()))
}
