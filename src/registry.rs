//! The one registry of sandboxes (D2): a schema-versioned JSON file, replaced atomically
//! (temp file, fsync, rename) while an advisory lock is held. Every mutation is a
//! read-modify-write under that lock; a corrupt or newer file is never overwritten.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{DeckError, IoContext, Result};
use crate::paths::Paths;
use crate::sandbox::SandboxRecord;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct RegistryFile {
    schema: u32,
    sandboxes: Vec<SandboxRecord>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    file: PathBuf,
    lock: PathBuf,
    /// The records as last parsed, by the hash of the text they were parsed from (see
    /// [`Registry::read_cached`]).
    seen: Arc<Mutex<Option<Parsed>>>,
}

/// Records parsed from a text of this length and 128-bit hash.
type Parsed = ((usize, u128), Vec<SandboxRecord>);

impl Registry {
    pub fn new(paths: &Paths) -> Registry {
        Registry {
            file: paths.registry_file(),
            lock: paths.registry_lock(),
            seen: Arc::default(),
        }
    }

    /// `read` of a consistent snapshot, parsed again only when the text differs from the
    /// last one read (its length and 128-bit hash): a long-lived engine asking many times a
    /// second (each preview, each reconcile) reads the file but parses only what changed.
    pub fn read_cached<T>(&self, read: impl FnOnce(&[SandboxRecord]) -> T) -> Result<T> {
        let text = match fs::read(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(read(&[])),
            Err(e) => return Err(DeckError::io(format!("reading {}", self.file.display()), e)),
        };
        let hash = (text.len(), xxhash_rust::xxh3::xxh3_128(&text));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, records)) = seen.as_ref()
            && *at == hash
        {
            return Ok(read(records));
        }
        let records = self.parse(&text)?;
        let out = read(&records);
        *seen = Some((hash, records));
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// A consistent snapshot. Needs no lock: the file is only ever replaced by rename. The
    /// text is parsed again only when it differs from the last one read (see
    /// [`Registry::read_cached`]).
    pub fn load(&self) -> Result<Vec<SandboxRecord>> {
        self.read_cached(<[SandboxRecord]>::to_vec)
    }

    fn parse(&self, text: &[u8]) -> Result<Vec<SandboxRecord>> {
        let corrupt = |detail: String| DeckError::CorruptRegistry {
            path: self.file.clone(),
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| corrupt(e.to_string()))?;
        let schema = value
            .get("schema")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt("no schema version".into()))?;
        if schema > u64::from(SCHEMA_VERSION) {
            return Err(DeckError::NewerSchema {
                path: self.file.clone(),
                found: u32::try_from(schema).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION,
            });
        }
        let file: RegistryFile =
            serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        Ok(file.sandboxes)
    }

    /// Runs `change` on the current records under the lock and saves the result if it differs.
    /// Whatever `change` returns is passed through; on error nothing is written.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<SandboxRecord>) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock()?;
        let before = self.load()?;
        let mut records = before.clone();
        let out = change(&mut records)?;
        if records != before {
            self.save(records)?;
        }
        Ok(out)
    }

    fn lock(&self) -> Result<File> {
        if let Some(dir) = self.lock.parent() {
            crate::host::fs::ensure_private_dir(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .context_io(|| format!("opening {}", self.lock.display()))?;
        // Released when the file is closed, also if this process dies.
        file.lock()
            .context_io(|| format!("locking {}", self.lock.display()))?;
        Ok(file)
    }

    fn save(&self, sandboxes: Vec<SandboxRecord>) -> Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let body = RegistryFile {
            schema: SCHEMA_VERSION,
            sandboxes,
        };
        let mut text = serde_json::to_vec_pretty(&body)
            .map_err(|e| DeckError::json("encoding the registry", e))?;
        text.push(b'\n');
        let tmp = dir.join(format!(".registry.json.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.file)?;
            // The rename itself is durable only once the directory is synced.
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            // The write's error is the one to report; this only tidies up after it.
            let _ = fs::remove_file(&tmp);
            DeckError::io(format!("writing {}", self.file.display()), e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_in(dir: &Path) -> Registry {
        Registry {
            file: dir.join("registry.json"),
            lock: dir.join("registry.lock"),
            seen: Arc::default(),
        }
    }

    #[test]
    fn the_cached_read_sees_every_change_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry_in(dir.path());
        let names = |r: &Registry| {
            r.read_cached(|records| {
                records
                    .iter()
                    .map(|r| r.name.to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert!(names(&registry).unwrap().is_empty());
        let add = |name: &str| {
            registry
                .update(|records| {
                    records.push(SandboxRecord::example(name, dir.path()));
                    Ok(())
                })
                .unwrap();
        };
        add("a");
        assert_eq!(names(&registry).unwrap(), ["a"]);
        assert_eq!(
            names(&registry).unwrap(),
            ["a"],
            "read again from the cache"
        );
        add("b");
        assert_eq!(names(&registry).unwrap(), ["a", "b"]);
        // A corrupt file is an error, not the records parsed before it.
        std::fs::write(registry.path(), b"{").unwrap();
        assert!(names(&registry).is_err());
    }

    #[test]
    fn a_missing_file_is_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        assert!(registry_in(dir.path()).load().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_reported_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry_in(dir.path());
        fs::write(registry.path(), b"{\"schema\":1,\"sandboxes\":[{").unwrap();
        let err = registry.update(|records| {
            records.clear();
            Ok(())
        });
        assert_eq!(err.unwrap_err().kind(), "corrupt_registry");
        assert_eq!(
            fs::read(registry.path()).unwrap(),
            b"{\"schema\":1,\"sandboxes\":[{"
        );
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry_in(dir.path());
        let text = b"{\"schema\":99,\"sandboxes\":[],\"future\":true}";
        fs::write(registry.path(), text).unwrap();
        assert_eq!(registry.load().unwrap_err().kind(), "newer_schema");
        assert!(registry.update(|_| Ok(())).is_err());
        assert_eq!(fs::read(registry.path()).unwrap(), text);
    }

    #[test]
    fn an_unchanged_registry_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry_in(dir.path());
        registry.update(|_| Ok(())).unwrap();
        assert!(!registry.path().exists());
    }
}
