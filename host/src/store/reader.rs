//! Reading the database on the calling thread, for the lookups every ticket makes
//! (token, tenant, plugins, grants, mode, policy, limits, the run and its journal, the
//! sandbox directory). sqlx's SQLite driver runs each statement on its connection's
//! worker thread, a round trip of two thread wake-ups that costs more than the indexed
//! lookup itself; here the lookup runs in place, holding the async worker about as long
//! as a mutex would. Only short, indexed reads belong here; listings and reports stay
//! on the sqlx pool. Connections are pooled and `query_only`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

/// Idle connections kept for reuse; more are opened when every one is in use.
const KEEP_IDLE: usize = 8;

/// Read connections to one database file. Cloning shares them.
#[derive(Clone)]
pub struct Reader {
    path: PathBuf,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    /// Once closed, connections are closed after each read instead of kept.
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("path", &self.path).finish()
    }
}

impl Reader {
    /// Read connections to the (already migrated) database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Reader> {
        let reader = Reader {
            path: path.to_path_buf(),
            idle: Arc::default(),
            closed: Arc::default(),
        };
        let first = reader.connect()?;
        reader.give_back(first);
        Ok(reader)
    }

    fn connect(&self) -> anyhow::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)
            .with_context(|| format!("opening the database {} for reading", self.path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP_IDLE && !self.closed.load(Ordering::Relaxed) {
            idle.push(conn);
        }
    }

    /// Close the idle connections, and each one in use once its read ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Run `query` on a read connection, on this thread.
    pub fn read<R>(
        &self,
        query: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R>,
    ) -> anyhow::Result<R> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let answer = query(&conn);
        self.give_back(conn);
        Ok(answer?)
    }
}
