//! `[api] persist`: the users the management API added and removed, kept in a file
//! so they outlive reloads and restarts (in Xray they live until the next restart).
//!
//! The file records changes, not a user list: per inbound, the users added and the
//! emails removed. The config stays the source of its own users; a reload or restart
//! applies the ledger on top of it (removals first, then additions, skipping an
//! addition whose email or id the config already has). Each change is written whole
//! to a temporary file, synced and renamed over the old one, so a crash leaves the old
//! file or the new one, never half of either.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::{Flow, User};
use crate::util::same_email as same;

/// The largest ledger file read (about 200 000 users).
const MAX_FILE: u64 = 32 << 20;
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("api.persist: cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("api.persist: {0} is larger than {MAX_FILE} bytes")]
    TooLarge(PathBuf),
    #[error("api.persist: {0} is not a ledger wasmray wrote: {1}")]
    Parse(PathBuf, String),
    #[error("api.persist: cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    inbounds: BTreeMap<String, Changes>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Changes {
    #[serde(default)]
    added: Vec<Added>,
    #[serde(default)]
    removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Added {
    email: String,
    /// Checked to be a UUID when the file is read.
    id: String,
    #[serde(default)]
    flow: String,
}

impl Added {
    fn user(&self) -> Option<User> {
        Some(User {
            id: crate::util::parse_user_id(&self.id)?,
            email: self.email.clone(),
            flow: Flow::parse(&self.flow, false).ok()?,
        })
    }
}

/// The ledger file and its contents (one writer at a time).
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: Mutex<File>,
}

impl Ledger {
    /// Reads the ledger at `path`; a missing file is an empty ledger.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let file = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File {
                version: VERSION,
                ..File::default()
            },
            Err(e) => return Err(LedgerError::Read(path.into(), e)),
            Ok(m) if m.len() > MAX_FILE => return Err(LedgerError::TooLarge(path.into())),
            Ok(_) => {
                let bytes = std::fs::read(path).map_err(|e| LedgerError::Read(path.into(), e))?;
                parse(&bytes).map_err(|e| LedgerError::Parse(path.into(), e))?
            }
        };
        Ok(Ledger {
            path: path.into(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users of inbound `tag`: `configured` with the ledger's changes applied.
    pub fn apply(&self, tag: &str, configured: &[User]) -> Vec<User> {
        let file = crate::util::lock(&self.file);
        let Some(changes) = file.inbounds.get(tag) else {
            return configured.to_vec();
        };
        let removed = |email: &str| changes.removed.iter().any(|r| same(r, email));
        let mut users: Vec<User> = (configured.iter())
            .filter(|u| u.email.is_empty() || !removed(&u.email))
            .cloned()
            .collect();
        for added in changes.added.iter().filter_map(Added::user) {
            let taken = users
                .iter()
                .any(|u| u.id == added.id || (!u.email.is_empty() && same(&u.email, &added.email)));
            if !taken {
                users.push(added);
            }
        }
        users
    }

    /// Records that the API added `user` to `tag`, and writes the file.
    pub fn added(&self, tag: &str, user: &User) -> Result<(), LedgerError> {
        self.change(tag, |c| {
            c.removed.retain(|r| !same(r, &user.email));
            let id = user.id.to_string();
            c.added
                .retain(|a| !same(&a.email, &user.email) && a.id != id);
            c.added.push(Added {
                email: user.email.clone(),
                id,
                flow: user.flow.name().into(),
            });
        })
    }

    /// Records that the API removed `email` from `tag`, and writes the file.
    pub fn removed(&self, tag: &str, email: &str) -> Result<(), LedgerError> {
        self.change(tag, |c| {
            c.added.retain(|a| !same(&a.email, email));
            if !c.removed.iter().any(|r| same(r, email)) {
                c.removed.push(email.to_string());
            }
        })
    }

    fn change(&self, tag: &str, f: impl FnOnce(&mut Changes)) -> Result<(), LedgerError> {
        let mut file = crate::util::lock(&self.file);
        let mut next = file.clone();
        f(next.inbounds.entry(tag.to_string()).or_default());
        next.inbounds
            .retain(|_, c| !c.added.is_empty() || !c.removed.is_empty());
        write_atomically(&self.path, &next)
            .map_err(|e| LedgerError::Write(self.path.clone(), e))?;
        *file = next;
        Ok(())
    }
}

fn parse(bytes: &[u8]) -> Result<File, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!(
            "version {} (this wasmray writes {VERSION})",
            file.version
        ));
    }
    for (tag, changes) in &file.inbounds {
        for a in &changes.added {
            if let Err(e) = Flow::parse(&a.flow, false) {
                return Err(format!("inbound {tag:?}: user {:?}: {e}", a.email));
            }
            if crate::util::parse_user_id(&a.id).is_none() {
                return Err(format!(
                    "inbound {tag:?}: user {:?}: id {:?} is not a UUID",
                    a.email, a.id
                ));
            }
        }
    }
    Ok(file)
}

/// Writes `file` to a sibling temporary file, syncs it, renames it over `path` and
/// syncs the directory.
fn write_atomically(path: &Path, file: &File) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let json = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&json)?;
    out.write_all(b"\n")?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
