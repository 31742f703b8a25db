//! The data directory: opened once as a capability (`cap_std::fs::Dir`) so that plugin
//! components and the precompiled cache are reached only through it and no plugin id,
//! hash or uploaded file name can walk outside it. Holds `capdesk.db` (SQLite),
//! `plugins/<sha256>.wasm` and `cache/<sha256>-<engine>.cwasm`.

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// The opened data directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    dir: Dir,
}

const COMPONENTS: &str = "plugins";
const CACHE: &str = "cache";

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        anyhow::bail!("`{name}` is not a valid stored-object name");
    }
    Ok(())
}

impl DataDir {
    /// Open `path`, creating it and its layout when missing.
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(path).with_context(|| {
            format!(
                "creating the data directory {} (choose another with --data DIR or CAPDESK_DATA)",
                path.display()
            )
        })?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())
            .with_context(|| format!("opening the data directory {}", path.display()))?;
        for sub in [COMPONENTS, CACHE] {
            match dir.create_dir(sub) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}/{sub}", path.display()));
                }
            }
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The SQLite database file (sqlx opens it by path).
    pub fn database(&self) -> PathBuf {
        self.path.join("capdesk.db")
    }

    pub fn write_component(&self, hash: &str, bytes: &[u8]) -> anyhow::Result<()> {
        check_name(hash)?;
        self.write_atomic(&format!("{COMPONENTS}/{hash}.wasm"), bytes)
    }

    pub fn read_component(&self, hash: &str) -> anyhow::Result<Vec<u8>> {
        check_name(hash)?;
        let name = format!("{COMPONENTS}/{hash}.wasm");
        self.dir.read(&name).with_context(|| {
            format!(
                "reading plugin component {}/{name}; reinstall the plugin with `capdesk plugin install`",
                self.path.display()
            )
        })
    }

    /// A precompiled component, if cached.
    pub fn read_cached(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        check_name(key)?;
        match self.dir.read(format!("{CACHE}/{key}.cwasm")) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading the precompiled-plugin cache"),
        }
    }

    pub fn write_cached(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        check_name(key)?;
        self.write_atomic(&format!("{CACHE}/{key}.cwasm"), bytes)
    }

    /// The key that seals connector credentials at rest (`vault.key`, 32 random bytes,
    /// readable by the owner only), created on first use. Whoever has the data dir has
    /// the key; a copy of the database alone does not open the credentials in it.
    pub fn vault_key(&self) -> anyhow::Result<[u8; 32]> {
        const NAME: &str = "vault.key";
        match self.dir.read(NAME) {
            Ok(bytes) => {
                return bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "{}/{NAME} is not a 32-byte key; restore it from a backup (the chat \
                         credentials sealed with it cannot be opened without it)",
                        self.path.display()
                    )
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}/{NAME}", self.path.display()));
            }
        }
        // Written whole under a temporary name, then linked into place: a concurrent
        // reader sees no key or the whole key, and of two creators the first wins.
        let key = rand::random::<[u8; 32]>();
        let tmp = format!("{NAME}.tmp-{}", std::process::id());
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = self
            .dir
            .open_with(&tmp, &options)
            .with_context(|| format!("creating {}/{tmp}", self.path.display()))?;
        f.write_all(&key)?;
        f.sync_all()?;
        drop(f);
        let linked = self.dir.hard_link(&tmp, &self.dir, NAME);
        let _ = self.dir.remove_file(&tmp);
        match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.vault_key(),
            Err(e) => Err(e).with_context(|| format!("creating {}/{NAME}", self.path.display())),
        }
    }

    /// Write through a temporary name and rename, so a reader never sees half a file.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let tmp = format!("{name}.tmp-{}", std::process::id());
        let mut f = self
            .dir
            .create(&tmp)
            .with_context(|| format!("writing {}/{tmp}", self.path.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        self.dir
            .rename(&tmp, &self.dir, name)
            .with_context(|| format!("writing {}/{name}", self.path.display()))?;
        Ok(())
    }
}
