//! Compiled plugins on disk, so a restart does not run cranelift again.
//!
//! A file is named by the SHA-256 of the engine's compatibility hash and the plugin's
//! bytes: another wasmtime, other engine settings or other bytes give another name, and
//! wasmtime's own check refuses whatever still does not fit. Loading compiled code
//! trusts the file (it is native code), so the cache is used only in a directory this
//! user owns and nobody else may write; entries are written to a temporary file and
//! renamed, so a reader never sees half of one. Every failure here only costs a compile.

use std::hash::Hasher;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("{0} is writable by other users or owned by another; not trusting compiled code there")]
    Unsafe(PathBuf),
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Creates the directory (mode 0700) if needed and checks that only we can write it.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CacheError::Create(dir.to_path_buf(), e))?;
        let meta = std::fs::metadata(dir).map_err(|e| CacheError::Create(dir.to_path_buf(), e))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid || meta.mode() & 0o022 != 0 {
            return Err(CacheError::Unsafe(dir.to_path_buf()));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The entry name for `wasm` compiled by `engine`.
    pub fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let mut sha = hasher.0;
        sha.update(wasm);
        let digest = sha.finalize();
        let mut name = String::with_capacity(64 + 6);
        for b in digest {
            name.push_str(&format!("{b:02x}"));
        }
        name.push_str(".cwasm");
        name
    }

    /// The compiled component stored under `key`, if there is one that fits `engine`.
    /// An entry wasmtime refuses is removed.
    pub fn load(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.dir.join(key);
        if !path.is_file() {
            return None;
        }
        // SAFETY: only this user can write the directory (checked in `open`) and
        // entries are written whole by `store` from wasmtime's own serialization.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("compiled plugin cache: dropping {}: {e:#}", path.display());
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `component` under `key`; a failure is logged and otherwise ignored.
    pub fn store(&self, key: &str, component: &Component) {
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|bytes| self.write(key, &bytes));
        if let Err(e) = result {
            tracing::warn!(
                "compiled plugin cache: cannot write to {}: {e}",
                self.dir.display()
            );
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, self.dir.join(key))
    }
}

/// A new file in `dir` with a name nobody else uses, opened for writing.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = dir.join(format!(".tmp-{}-{stamp}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}

/// Feeds `Hash` output into SHA-256 (`finish` is never used).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_component_loads_back_and_a_corrupt_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(&dir.path().join("c")).unwrap();
        let engine = Engine::default();
        // The smallest component: magic, version 13, layer 1.
        let wat = b"\0asm\x0d\0\x01\0";
        let component = Component::new(&engine, wat).unwrap();
        let key = DiskCache::key(&engine, wat);
        assert!(cache.load(&engine, &key).is_none());
        cache.store(&key, &component);
        assert!(cache.load(&engine, &key).is_some());
        assert_ne!(key, DiskCache::key(&engine, b"\0asm\x0d\0\x01\0\0"));
        std::fs::write(dir.path().join("c").join(&key), b"not compiled code").unwrap();
        assert!(cache.load(&engine, &key).is_none());
        assert!(!dir.path().join("c").join(&key).exists());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            DiskCache::open(dir.path()),
            Err(CacheError::Unsafe(_))
        ));
    }
}
