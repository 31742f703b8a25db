//! Who writes to the database, and when. A process writes through one turn at a time:
//! the hot path of a run (its journal, its audit entries, how it ended) goes to the
//! `Writer`, a thread that owns a connection of its own and commits whatever jobs have
//! queued up in one transaction (group commit), each job under its own savepoint so a
//! failing one rolls back alone; every other write takes the same turn through
//! `begin_write`, an sqlx transaction that holds the gate until it ends. Writers thus
//! queue in order in memory instead of sleeping in SQLite's busy handler, and a run's
//! write costs one hand-off to the writer thread, not one per statement. Other
//! processes on the same file (the CLI beside a server) still meet the busy timeout.

use std::any::Any;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use sqlx::SqlitePool;

/// The process's write turn: held by the writer thread for a batch, and by a
/// `WriteTx` for its lifetime.
static GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The most jobs committed in one transaction.
const BATCH: usize = 128;

/// Begin a transaction that will write, once it is this writer's turn. SQLite's
/// `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that read first
/// cannot fail with "database is locked" when it comes to write.
pub async fn begin_write(pool: &SqlitePool) -> sqlx::Result<WriteTx> {
    let gate = GATE.lock().await;
    let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    Ok(WriteTx { tx, _gate: gate })
}

/// Run one writing statement in its own write transaction, in turn.
pub async fn write_one<'q>(
    pool: &SqlitePool,
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> sqlx::Result<sqlx::sqlite::SqliteQueryResult> {
    let mut tx = begin_write(pool).await?;
    let done = query.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done)
}

/// A write transaction holding the write turn until it commits or drops (dropping
/// rolls it back). Use it as a connection: `.execute(&mut *tx)`. Never wait on the
/// `Writer` while holding one: the writer thread waits for the same turn.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _gate: tokio::sync::MutexGuard<'static, ()>,
}

impl WriteTx {
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &sqlx::SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

type Answer = anyhow::Result<Box<dyn Any + Send>>;
type Work = Box<dyn FnOnce(&rusqlite::Connection) -> Answer + Send>;

struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

enum Message {
    Job(Job),
    /// Close the connection (after the jobs queued before) and stop.
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The thread that commits the hot path's writes. Cloning shares the thread; it ends
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Open a writing connection to the (already migrated) database at `path` and start
    /// its thread.
    pub fn open(path: &Path) -> anyhow::Result<Writer> {
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening the database {} for writing", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The checkpointer copies the log back into the database file, off this thread.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::start(path)?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("capdesk-writer".into())
            .spawn(move || serve(conn, &queue, checkpointer))
            .context("starting the database writer thread")?;
        Ok(Writer { jobs })
    }

    /// Commit what is queued, close the connection and stop the thread; writes after
    /// this fail. (The last connection to close checkpoints the write-ahead log into
    /// the database file.)
    pub async fn close(&self) {
        let (done, closed) = tokio::sync::oneshot::channel();
        if self.jobs.send(Message::Stop(done)).is_ok() {
            let _ = closed.await;
        }
    }

    /// Run `work` on the writing connection inside a transaction, and return what it
    /// returned once that transaction has committed. An error from `work` rolls back
    /// what it wrote and nothing else.
    pub async fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work = Box::new(move |conn: &rusqlite::Connection| {
            work(conn).map(|r| Box::new(r) as Box<dyn Any + Send>)
        });
        self.jobs
            .send(Message::Job(Job { work, reply }))
            .map_err(|_| anyhow!("the database writer has stopped"))?;
        let done = answer
            .await
            .map_err(|_| anyhow!("the database writer stopped before committing"))??;
        Ok(*done
            .downcast::<R>()
            .expect("the writer answers with what its job returned"))
    }
}

/// Commit batches of queued jobs until told to stop or every handle is gone.
fn serve(
    conn: rusqlite::Connection,
    queue: &mpsc::Receiver<Message>,
    mut checkpointer: Checkpointer,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut stop = None;
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Stop(done) => stop = Some(done),
            }
            next = if stop.is_none() && batch.len() < BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            let (works, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|j| (j.work, j.reply)).unzip();
            let answers = {
                let _turn = GATE.blocking_lock();
                commit_batch(&conn, works)
            };
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that stopped waiting has nothing to be told.
                let _ = reply.send(answer);
            }
            checkpointer.committed();
        }
        if let Some(done) = stop {
            // The checkpointer's connection closes first, so that the last connection
            // to close finds no checkpoint under way.
            checkpointer.stop();
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

/// Commits between two checkpoints: a commit writes some ten pages to the log, so the
/// log grows to about a thousand pages, SQLite's own default, before it is copied back.
const COMMITS_PER_CHECKPOINT: u32 = 100;

/// How long the write-ahead log may grow before a checkpoint starts it over. (Small in
/// tests, so that one can reach it quickly.)
const LOG_LIMIT_BYTES: i64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// A thread with a connection of its own that copies the write-ahead log back into the
/// database file (a passive checkpoint, which never blocks the writer) after every
/// [`COMMITS_PER_CHECKPOINT`] commits. Left to the writer, the copy and its fsync
/// stalled every write queued behind it.
///
/// SQLite starts the log over only when a write begins after a checkpoint copied all
/// of it and while no reader still reads from it. On a busy server some reader always
/// does, so passive checkpoints alone let the log grow without end (by over 100 KiB a
/// ticket). Past [`LOG_LIMIT_BYTES`] the thread therefore takes the process's write
/// turn and runs a `RESTART` checkpoint: it copies what is left, waits for readers to
/// move off the log, and makes the next write start the log over from its beginning.
/// Passive checkpoints have copied nearly everything by then, so the writer waits
/// about as long as an fsync; holding the turn keeps it queued in memory meanwhile
/// instead of in SQLite's busy handler. The file keeps its size and is written over,
/// which is cheaper than growing it again (`TRUNCATE` measured slower).
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
    commits: u32,
}

impl Checkpointer {
    fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening the database {} for checkpoints", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("capdesk-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    // A failed checkpoint leaves the log longer; the next one retries.
                    let frames = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                    if frames.is_ok_and(|frames| frames * page_size >= LOG_LIMIT_BYTES) {
                        let _turn = GATE.blocking_lock();
                        let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
                    }
                }
            })
            .context("starting the database checkpoint thread")?;
        Ok(Checkpointer {
            wake,
            thread,
            commits: 0,
        })
    }

    /// Count a commit; wake the thread when a checkpoint is due (unless it is still at
    /// the last one).
    fn committed(&mut self) {
        self.commits += 1;
        if self.commits >= COMMITS_PER_CHECKPOINT {
            self.commits = 0;
            let _ = self.wake.try_send(());
        }
    }

    /// Finish the checkpoint under way, close the connection and end the thread.
    fn stop(self) {
        drop(self.wake);
        let _ = self.thread.join();
    }
}

/// Run the jobs in one transaction, each under its own savepoint. If the transaction
/// itself cannot begin or commit, every job gets that error.
fn commit_batch(conn: &rusqlite::Connection, works: Vec<Work>) -> Vec<Answer> {
    let failed_all = |n: usize, what: &str, e: &rusqlite::Error| -> Vec<Answer> {
        (0..n).map(|_| Err(anyhow!("{what}: {e}"))).collect()
    };
    // Prepared once and kept: parsing these on every job was a measurable share of the
    // writer thread.
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    if let Err(e) = run("BEGIN IMMEDIATE") {
        return failed_all(works.len(), "beginning a write transaction", &e);
    }
    let mut answers = Vec::with_capacity(works.len());
    for work in works {
        let answer = run("SAVEPOINT job")
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
                    .unwrap_or_else(|_| Err(anyhow!("a database write panicked")))
            });
        let settled = match &answer {
            Ok(_) => run("RELEASE job"),
            Err(_) => run("ROLLBACK TO job").and_then(|()| run("RELEASE job")),
        };
        answers.push(settled.map_err(anyhow::Error::from).and(answer));
    }
    if let Err(e) = run("COMMIT") {
        let _ = run("ROLLBACK");
        return failed_all(answers.len(), "committing writes", &e);
    }
    answers
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).await.unwrap();
        (dir, store)
    }

    async fn outbox(store: &Store) -> Vec<String> {
        sqlx::query_scalar("SELECT text FROM sandbox_outbox ORDER BY text")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    /// Write `text` to the outbox, then fail if asked to: the job's row must go too.
    fn job(text: String, fail: bool) -> impl FnOnce(&rusqlite::Connection) -> anyhow::Result<()> {
        move |conn| {
            conn.execute(
                "INSERT INTO sandbox_outbox (tenant, recipient, text) VALUES ('t', 'a@t.test', ?)",
                [&text],
            )?;
            if fail {
                anyhow::bail!("job {text} refused");
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn jobs_queued_together_commit_or_roll_back_each_on_its_own() {
        let (_dir, store) = store().await;
        let writes = (0..60).map(|i| {
            let writer = store.writer().clone();
            let text = format!("m{i:02}");
            tokio::spawn(async move { writer.write(job(text, i % 3 == 0)).await })
        });
        let mut refused = 0;
        for write in writes.collect::<Vec<_>>() {
            if let Err(e) = write.await.unwrap() {
                assert!(e.to_string().ends_with("refused"), "{e}");
                refused += 1;
            }
        }
        assert_eq!(refused, 20);
        let expected: Vec<String> = (0..60)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("m{i:02}"))
            .collect();
        assert_eq!(outbox(&store).await, expected);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_keeps_serving() {
        let (_dir, store) = store().await;
        let panicked = store
            .writer()
            .write(|conn| -> anyhow::Result<()> {
                job("lost".into(), false)(conn)?;
                panic!("a bug in a job");
            })
            .await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        store
            .writer()
            .write(job("kept".into(), false))
            .await
            .unwrap();
        assert_eq!(outbox(&store).await, ["kept"]);
    }

    #[tokio::test]
    async fn a_writer_closed_with_its_store_refuses_later_writes() {
        let (_dir, store) = store().await;
        store
            .writer()
            .write(job("before".into(), false))
            .await
            .unwrap();
        store.close().await;
        let after = store.writer().write(job("after".into(), false)).await;
        assert!(after.unwrap_err().to_string().contains("stopped"));
    }

    #[tokio::test]
    async fn the_log_stays_bounded_while_readers_are_always_at_work() {
        let (dir, store) = store().await;
        let path = dir.path().join("w.db");
        // Two readers taking turns without pause: one of them always holds a snapshot.
        let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let conn = rusqlite::Connection::open(&path).unwrap();
                let reading = reading.clone();
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while reading.load(std::sync::atomic::Ordering::Relaxed) {
                        let _: i64 = conn
                            .query_row("SELECT count(*) FROM sandbox_outbox", [], |r| r.get(0))
                            .unwrap();
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        // Some 6 MiB of rows in all, six times the limit in tests.
        let text = "x".repeat(2000);
        for i in 0..3000 {
            store
                .writer()
                .write(job(format!("{i:04}{text}"), false))
                .await
                .unwrap();
        }
        reading.store(false, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
        // The file keeps its largest size: the limit plus whatever the writer committed
        // while the checkpoint thread was busy, which on a loaded machine has reached
        // 4 to 10 MiB here. Without the restart it holds everything: 61 MiB.
        let log = std::fs::metadata(dir.path().join("w.db-wal")).map_or(0, |m| m.len());
        assert!(
            log < 16 * super::LOG_LIMIT_BYTES as u64,
            "the log grew to {log} bytes; its limit is {}",
            super::LOG_LIMIT_BYTES
        );
        assert_eq!(outbox(&store).await.len(), 3000);
        store.close().await;
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_while_the_writer_runs() {
        let (dir, store) = store().await;
        for i in 0..2 * super::COMMITS_PER_CHECKPOINT {
            store
                .writer()
                .write(job(format!("m{i:03}"), false))
                .await
                .unwrap();
        }
        // `immutable` reads the database file alone, not the write-ahead log: rows show
        // there only once a checkpoint copied them. The checkpoint runs on its own
        // thread, so wait for it (bounded).
        let file = format!("file:{}?immutable=1", dir.path().join("w.db").display());
        let in_file = || -> i64 {
            let conn = rusqlite::Connection::open_with_flags(
                &file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap();
            // Before the first checkpoint even the schema is only in the log.
            conn.query_row("SELECT count(*) FROM sandbox_outbox", [], |r| r.get(0))
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = in_file();
        while seen < i64::from(super::COMMITS_PER_CHECKPOINT)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            seen = in_file();
        }
        assert!(
            seen >= i64::from(super::COMMITS_PER_CHECKPOINT),
            "only {seen} rows reached the database file"
        );
        assert_eq!(
            outbox(&store).await.len(),
            2 * super::COMMITS_PER_CHECKPOINT as usize
        );
        store.close().await;
    }
}
