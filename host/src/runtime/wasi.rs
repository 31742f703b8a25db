//! The inert WASI a std guest needs to start: no environment, no arguments, stdin
//! empty, stdout discarded, stderr kept (bounded) for the escalation reason of a crash,
//! random numbers seeded per run, and a run clock that advances only when read. Also
//! the list of imports a plugin may have at all; anything else is refused at install.

use std::time::Duration;

use rand::SeedableRng as _;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// The WIT package plugins are written against.
pub const PLAYBOOK_PACKAGE: &str = "capdesk:playbook";

/// WASI interfaces a Rust std guest imports even when it never uses them; each is
/// satisfied by an inert, deterministic host version.
pub const INERT_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Why an import is not allowed, or `None` when it is.
pub fn refuse_import(name: &str) -> Option<String> {
    let (unversioned, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(iface) = unversioned
        .strip_prefix(PLAYBOOK_PACKAGE)
        .and_then(|r| r.strip_prefix('/'))
    {
        if !["types", "idp", "psa", "chat", "log"].contains(&iface) {
            return Some(format!(
                "`{name}` is not an interface of {PLAYBOOK_PACKAGE}"
            ));
        }
        if !(version.is_empty() || version.starts_with("0.1.")) {
            return Some(format!(
                "`{name}` is from {PLAYBOOK_PACKAGE}@{version}; this capdesk runs plugins built against \
                 {PLAYBOOK_PACKAGE}@0.1.x: rebuild the plugin with capdesk-sdk 0.1 or upgrade capdesk"
            ));
        }
        return None;
    }
    if INERT_WASI.contains(&unversioned) {
        return None;
    }
    Some(format!(
        "the component imports `{name}`, which capdesk does not provide: plugins get no \
         filesystem, network, environment or other ambient authority, only the \
         {PLAYBOOK_PACKAGE} interfaces (rebuild the plugin without using `{unversioned}`)"
    ))
}

/// A clock that starts at the run's recorded start time and advances one microsecond
/// each time it is read, so a replayed run sees the same times.
struct RunClock {
    start: Duration,
    ticks: std::sync::atomic::AtomicU64,
}

impl RunClock {
    fn tick(&self) -> u64 {
        self.ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }
}

impl HostWallClock for RunClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        self.start + Duration::from_micros(self.tick())
    }
}

impl HostMonotonicClock for RunClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.tick() * 1_000
    }
}

/// Bytes of a crashing guest's stderr kept for the escalation reason.
pub const STDERR_CAPTURE: usize = 4096;

/// The inert WASI state of one store, built the first time the guest calls a WASI
/// function: most runs never do (a plugin that neither prints nor panics), and building
/// it was a tenth of instantiating one.
pub struct InertWasi {
    seed: u64,
    start_unix: Duration,
    started: Option<Box<StartedWasi>>,
}

struct StartedWasi {
    ctx: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
}

impl InertWasi {
    /// `seed` seeds the random generators; `start_unix` is the run's start time.
    pub fn new(seed: u64, start_unix: Duration) -> InertWasi {
        InertWasi {
            seed,
            start_unix,
            started: None,
        }
    }

    /// What the guest wrote to stderr (a panic message, for example), lossily decoded.
    pub fn stderr(&self) -> String {
        match &self.started {
            Some(wasi) => String::from_utf8_lossy(&wasi.stderr.contents())
                .trim()
                .to_string(),
            None => String::new(),
        }
    }

    pub fn view(&mut self) -> WasiCtxView<'_> {
        let (seed, start_unix) = (self.seed, self.start_unix);
        let wasi = self
            .started
            .get_or_insert_with(|| Box::new(StartedWasi::new(seed, start_unix)));
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

impl StartedWasi {
    fn new(seed: u64, start_unix: Duration) -> StartedWasi {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let ctx = WasiCtx::builder()
            .stderr(stderr.clone())
            .secure_random(rand::rngs::StdRng::seed_from_u64(seed))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(seed.rotate_left(17)))
            .insecure_random_seed(u128::from(seed))
            .wall_clock(RunClock {
                start: start_unix,
                ticks: Default::default(),
            })
            .monotonic_clock(RunClock {
                start: Duration::ZERO,
                ticks: Default::default(),
            })
            .build();
        StartedWasi {
            ctx,
            table: ResourceTable::new(),
            stderr,
        }
    }
}

/// Store data that carries an [`InertWasi`].
pub trait HasInertWasi: WasiView + 'static {
    fn table(&mut self) -> &mut ResourceTable;
}

struct Io;
impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// Define exactly the [`INERT_WASI`] interfaces in `linker`, nothing more.
pub fn add_to_linker<T: HasInertWasi>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use wasmtime_wasi_io::bindings::wasi::io;
    io::error::add_to_linker::<T, Io>(linker, |t| t.table())?;
    io::poll::add_to_linker::<T, Io>(linker, |t| t.table())?;
    io::streams::add_to_linker::<T, Io>(linker, |t| t.table())?;
    let l = linker;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::refuse_import;

    #[test]
    fn playbook_and_inert_wasi_imports_are_allowed() {
        assert_eq!(refuse_import("capdesk:playbook/idp@0.1.0"), None);
        assert_eq!(refuse_import("wasi:cli/environment@0.2.6"), None);
        assert_eq!(refuse_import("wasi:random/random@0.2.0"), None);
    }

    #[test]
    fn ambient_authority_is_refused_by_name() {
        let why = refuse_import("wasi:filesystem/types@0.2.6").unwrap();
        assert!(why.contains("wasi:filesystem/types@0.2.6"), "{why}");
        assert!(refuse_import("wasi:sockets/tcp@0.2.0").is_some());
        assert!(
            refuse_import("capdesk:playbook/idp@0.2.0")
                .unwrap()
                .contains("0.1.x")
        );
    }
}
