//! Compiled-artifact cache. Compiling a component with Cranelift takes tens of ms;
//! loading a precompiled artifact takes well under one. Artifacts are native code,
//! so: the directory is private (0700), the key covers the wasmtime version, the
//! engine settings and the component's sha256, and each file records the sha256 of
//! its payload, verified before the `unsafe` deserialize.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime version pinned in the workspace (part of every cache key).
pub const WASMTIME_VERSION: &str = "48.0.8";
const MAGIC: &[u8; 8] = b"MESHUPC1";

/// The cache directory: `MESHUP_CACHE_DIR`, else `$XDG_CACHE_HOME/meshup`, else `~/.cache/meshup`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MESHUP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("meshup"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("meshup"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why the cache directory cannot be used. Not fatal: the runtime warns and compiles
/// without a cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory cannot be created or its metadata read (permissions, a file in the way).
    /// (The cause is part of the message, not a source: the error is printed on its own.)
    #[error("cache directory {}: {cause}", dir.display())]
    Unusable { dir: PathBuf, cause: std::io::Error },
    /// Another user owns it: native code is never loaded from there. Use a directory of
    /// your own (`MESHUP_CACHE_DIR`).
    #[error(
        "cache directory {}: owned by another user; refusing to load native code from it",
        dir.display()
    )]
    NotOwned { dir: PathBuf },
}

/// A private directory of precompiled components.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    engine_hash: u64,
}

impl Cache {
    /// Open (creating with mode 0700) the cache directory. Refuses a directory other users can write.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Cache, Error> {
        create_private_dir(dir)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(Cache {
            dir: dir.to_path_buf(),
            engine_hash: h.finish(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, component_sha256: &str) -> PathBuf {
        let key = sha256_hex(
            format!(
                "wasmtime-{WASMTIME_VERSION}/{:016x}/{component_sha256}",
                self.engine_hash
            )
            .as_bytes(),
        );
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached compiled component, if present, intact and loadable by this engine.
    pub fn load(&self, engine: &Engine, component_sha256: &str) -> Option<Component> {
        let bytes = fs::read(self.path(component_sha256)).ok()?;
        if bytes.len() < 40 || &bytes[..8] != MAGIC {
            return None;
        }
        let (recorded, payload) = (&bytes[8..40], &bytes[40..]);
        if Sha256::digest(payload).as_slice() != recorded {
            tracing::warn!("cached artifact for {component_sha256} is corrupt; recompiling");
            return None;
        }
        // SAFETY: the payload was produced by `Component::serialize` of this program into a
        // private (0700) directory, its recorded digest matches, and wasmtime itself checks
        // the version and engine settings (a mismatch is an error, handled as a miss).
        unsafe { Component::deserialize(engine, payload) }.ok()
    }

    /// Store a compiled component (atomically: temp file + rename). Failures are not fatal.
    pub fn store(&self, component_sha256: &str, component: &Component) {
        let Ok(payload) = component.serialize() else {
            return;
        };
        let path = self.path(component_sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = open_private(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(&payload))?;
            f.write_all(&payload)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let unusable = |cause| Error::Unusable {
        dir: dir.to_path_buf(),
        cause,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(unusable)?;
    let meta = fs::metadata(dir).map_err(unusable)?;
    // SAFETY: getuid has no preconditions; declared here to avoid a libc dependency.
    unsafe extern "C" {
        fn getuid() -> u32;
    }
    if meta.uid() != unsafe { getuid() } {
        return Err(Error::NotOwned {
            dir: dir.to_path_buf(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(unusable)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|cause| Error::Unusable {
        dir: dir.to_path_buf(),
        cause,
    })
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
