//! `ext:FILE:LIST`: Xray's name for a list in a `.dat` file of its own (a geosite-format
//! file in domain rules, a geoip-format file in IP rules). FILE is a name in the
//! `[geodata] assets` directory, never a path, so a plugin cannot make the host read
//! other files. Nobody declares these files: one is read the first time a plugin opens
//! one of its lists, and kept with the [`GeoData`](super::GeoData) it was opened from.
//! Every attempt is stamped, so a file that changes (or one that was broken and is
//! fixed) makes the registry read the data again, as a configured file does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::domains::Domains;
use super::ips::IpLists;
use super::{GeoError, dat, read};
use crate::util::file_stamp;

/// A file's length and modification time.
pub type Stamp = Option<(u64, SystemTime)>;

/// The ext files read so far, by name, each parsed as the kind it was asked for.
#[derive(Default)]
pub struct Ext {
    dir: Option<PathBuf>,
    sites: Mutex<BTreeMap<String, Arc<Domains>>>,
    ips: Mutex<BTreeMap<String, Arc<IpLists>>>,
    /// Every file tried, read or not, with its stamp at the time.
    tried: Mutex<BTreeMap<PathBuf, Stamp>>,
}

/// `ext:FILE:LIST` split into FILE and LIST; `None` for any other spec.
pub fn split(spec: &str) -> Option<Result<(&str, &str), GeoError>> {
    let rest = spec.strip_prefix("ext:")?;
    let Some((file, list)) = rest.split_once(':') else {
        return Some(Err(GeoError::spec(spec, "an ext list is ext:FILE:LIST")));
    };
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && !file.contains(['/', '\\'])
        && !list.is_empty();
    Some(match plain {
        true => Ok((file, list)),
        false => Err(GeoError::spec(
            spec,
            "an ext list is ext:FILE:LIST, FILE a file name in [geodata] assets",
        )),
    })
}

impl Ext {
    /// Ext files come from `dir` (none: every ext list is refused).
    pub fn new(dir: Option<PathBuf>) -> Ext {
        Ext {
            dir,
            ..Ext::default()
        }
    }

    /// `file` read as a geosite file.
    pub fn sites(&self, file: &str) -> Result<Arc<Domains>, GeoError> {
        self.get(&self.sites, file, dat::geosite)
    }

    /// `file` read as a geoip file.
    pub fn ips(&self, file: &str) -> Result<Arc<IpLists>, GeoError> {
        self.get(&self.ips, file, dat::geoip)
    }

    /// Whether a file tried since this data was loaded has changed on disk.
    pub fn changed(&self) -> bool {
        crate::util::lock(&self.tried)
            .iter()
            .any(|(path, then)| file_stamp(path) != *then)
    }

    /// The files tried, for the watcher.
    pub fn paths(&self) -> Vec<PathBuf> {
        crate::util::lock(&self.tried).keys().cloned().collect()
    }

    fn get<T>(
        &self,
        cache: &Mutex<BTreeMap<String, Arc<T>>>,
        file: &str,
        parse: fn(&[u8]) -> Result<T, GeoError>,
    ) -> Result<Arc<T>, GeoError> {
        if let Some(hit) = crate::util::lock(cache).get(file) {
            return Ok(hit.clone());
        }
        let dir = self
            .dir
            .as_deref()
            .ok_or_else(|| GeoError::spec(file, "ext files need [geodata] assets (a directory)"))?;
        let path = dir.join(file);
        crate::util::lock(&self.tried).insert(path.clone(), file_stamp(&path));
        let parsed = parse(&read(&path)?).map_err(|e| e.in_file(&path))?;
        // Two instances configuring at once may both parse; the first one kept wins.
        let mut cache = crate::util::lock(cache);
        Ok(cache
            .entry(file.to_string())
            .or_insert(Arc::new(parsed))
            .clone())
    }
}
