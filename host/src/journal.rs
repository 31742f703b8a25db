//! A run's journal: every host call in order (sequence, function, arguments, decision,
//! result), written ahead of side effects and replayed when the run resumes. A
//! side-effecting call is recorded as an `intent` before its connector runs; its result
//! is recorded at the next write (the next intent, or the end of the run), so a process
//! that dies between the connector call and that write leaves an intent without a
//! result, which recovery treats as in doubt. On resume, recorded calls are handed back
//! one by one for the guard to check and replay. Owns the journal's shape and buffering;
//! the SQL lives in `store`, the decisions in `guard` and `policy`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::store::Store;

/// Where a journaled call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallState {
    /// Recorded before the connector was called; the result is not known yet.
    Intent,
    /// The result is recorded.
    Done,
    /// Waiting for a person: an answer to a question, or an approver's decision.
    Waiting,
    /// An approver said yes; the call runs when the run resumes.
    Approved,
}

impl CallState {
    pub fn name(self) -> &'static str {
        match self {
            CallState::Intent => "intent",
            CallState::Done => "done",
            CallState::Waiting => "waiting",
            CallState::Approved => "approved",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        [
            CallState::Intent,
            CallState::Done,
            CallState::Waiting,
            CallState::Approved,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// One journaled call as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JournalEntry {
    pub seq: i64,
    pub function: String,
    /// The capability the call needed; `None` for log lines and the host's own calls.
    pub capability: Option<String>,
    /// The arguments, as JSON text.
    pub args: String,
    /// What was decided: `allowed (rule …)`, `denied: …`, `ask: …`, `shadow: …`, `-`.
    pub decision: String,
    /// The result (`{"ok": ...}` or `{"error": ...}`) as JSON text; `null` while unknown.
    pub result: String,
    /// `intent`, `done`, `waiting` or `approved`.
    pub state: String,
    pub at: String,
}

impl JournalEntry {
    pub fn call_state(&self) -> CallState {
        CallState::parse(&self.state).unwrap_or(CallState::Done)
    }
}

/// A journal entry written during this attempt of the run.
#[derive(Debug, Clone, Serialize)]
pub struct NewJournalEntry {
    pub seq: i64,
    pub function: &'static str,
    pub capability: Option<&'static str>,
    pub args: String,
    pub decision: String,
    pub result: String,
    pub state: CallState,
}

/// Where the journal is written: the run's rows in the store, or nowhere (benchmarks
/// and tests that only look at the entries).
#[derive(Clone)]
enum Sink {
    Store { store: Store, run: i64 },
    Memory,
}

/// The journal of one attempt at a run: recorded calls still to replay, and the new
/// entries not yet written.
pub struct Journal {
    sink: Sink,
    next_seq: i64,
    replay: VecDeque<JournalEntry>,
    pending: Vec<NewJournalEntry>,
    written: Vec<NewJournalEntry>,
}

/// The store could not take a journal write; the run must stop before acting.
#[derive(Debug, thiserror::Error)]
#[error("the run's journal could not be written: {0:#}")]
pub struct WriteFailed(pub anyhow::Error);

impl Journal {
    /// A journal kept in memory only.
    pub fn in_memory() -> Journal {
        Journal::with_sink(Sink::Memory, Vec::new())
    }

    /// The journal of run `run` in `store`; `recorded` is what earlier attempts wrote
    /// (empty for a new run). Calls recorded with a capability are replayed in order.
    pub fn durable(store: Store, run: i64, recorded: Vec<JournalEntry>) -> Journal {
        Journal::with_sink(Sink::Store { store, run }, recorded)
    }

    /// A journal in memory that replays `recorded` (for tests of replay).
    pub fn replaying(recorded: Vec<JournalEntry>) -> Journal {
        Journal::with_sink(Sink::Memory, recorded)
    }

    fn with_sink(sink: Sink, recorded: Vec<JournalEntry>) -> Journal {
        let next_seq = recorded.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        Journal {
            sink,
            next_seq,
            replay: recorded
                .into_iter()
                .filter(|e| e.capability.is_some())
                .collect(),
            pending: Vec::new(),
            written: Vec::new(),
        }
    }

    /// True while recorded calls remain to be replayed.
    pub fn replaying_now(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The next recorded call, if any remain.
    pub fn next_recorded(&mut self) -> Option<JournalEntry> {
        self.replay.pop_front()
    }

    /// Add an entry at the next sequence number (written with the next write).
    pub fn record(
        &mut self,
        function: &'static str,
        capability: Option<&'static str>,
        args: String,
        decision: String,
        result: String,
        state: CallState,
    ) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push(NewJournalEntry {
            seq,
            function,
            capability,
            args,
            decision,
            result,
            state,
        });
        seq
    }

    /// Replace what entry `seq` says (its decision, result and state), at the next write.
    pub fn update(&mut self, entry: NewJournalEntry) {
        self.pending.push(entry);
    }

    /// The run this journal belongs to (`None` for one kept in memory only).
    pub fn run(&self) -> Option<i64> {
        match &self.sink {
            Sink::Store { run, .. } => Some(*run),
            Sink::Memory => None,
        }
    }

    /// Turn the last entry (a question just sent) into one waiting for its answer.
    pub fn mark_last_waiting(&mut self) {
        if let Some(last) = self.pending.last_mut() {
            last.state = CallState::Waiting;
            last.result = "null".into();
        }
    }

    /// Write every pending entry now: the write-ahead point before a side effect.
    pub async fn write(&mut self) -> Result<(), WriteFailed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Sink::Store { store, run } = &self.sink {
            store
                .write_journal(*run, &self.pending)
                .await
                .map_err(WriteFailed)?;
        }
        self.written.append(&mut self.pending);
        Ok(())
    }

    /// Every entry of this attempt, written or not, in the order made (an updated
    /// entry appears once per version).
    pub fn entries(&self) -> impl Iterator<Item = &NewJournalEntry> {
        self.written.iter().chain(self.pending.iter())
    }

    /// The entries not written yet; the run's end writes them with its outcome.
    pub fn take_pending(&mut self) -> Vec<NewJournalEntry> {
        std::mem::take(&mut self.pending)
    }
}
