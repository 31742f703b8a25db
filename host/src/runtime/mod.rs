//! The WebAssembly runtime: one wasmtime `Engine` (component model, pooling allocator,
//! epoch interruption), components compiled once at install and cached on disk in
//! precompiled form keyed by content hash and engine, one `InstancePre` per plugin, and
//! a fresh `Store` per call with a memory limit and a guest-time budget. A trap, a
//! timeout or a memory overrun ends that call with a readable [`Stopped`] reason; the
//! runtime keeps serving. Knows nothing of HTTP or SQL.

mod host;
mod wasi;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, HasSelf, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};

use crate::capability::Capability;
use crate::connectors::Ticket;
use crate::datadir::DataDir;
use crate::guard::{Guard, Interrupt};
use crate::store::Limits;
pub use host::RunState;
use host::{Playbook, PlaybookPre, Resolution, WitOutcome, WitTicket, wit_ticket};
pub use wasi::refuse_import;

/// How often the epoch advances; the granularity of guest-time enforcement.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest memory limit a tenant or plugin can be configured with.
pub const MAX_MEMORY_MIB: u32 = 1024;

/// A closeout template a plugin ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub body: String,
}

/// What a plugin says about itself, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    pub category: String,
    pub description: String,
    pub capabilities: Vec<Capability>,
    pub templates: Vec<Template>,
}

impl Manifest {
    /// The manifest as recorded for an installed plugin.
    pub fn of(record: &crate::store::InstalledPlugin) -> anyhow::Result<Manifest> {
        serde_json::from_str(&record.manifest).with_context(|| {
            format!(
                "the stored manifest of plugin {} is unreadable; reinstall it",
                record.id
            )
        })
    }

    fn from_wit(m: host::WitManifest) -> anyhow::Result<Manifest> {
        crate::store::validate_id("plugin id", &m.id)
            .context("the plugin's manifest has a bad id")?;
        crate::store::validate_id("category", &m.category)
            .context("the plugin's manifest has a bad category")?;
        if m.version.trim().is_empty() {
            anyhow::bail!("the plugin's manifest has no version");
        }
        let mut capabilities = Vec::new();
        for name in &m.capabilities {
            let cap: Capability = name.parse().with_context(|| {
                format!(
                    "the manifest of plugin `{}` asks for a capability capdesk does not have",
                    m.id
                )
            })?;
            if !capabilities.contains(&cap) {
                capabilities.push(cap);
            }
        }
        let mut env = minijinja::Environment::new();
        for t in &m.templates {
            env.add_template_owned(t.name.clone(), t.body.clone())
                .with_context(|| {
                    format!(
                        "closeout template `{}` of plugin `{}` does not parse",
                        t.name, m.id
                    )
                })?;
        }
        Ok(Manifest {
            id: m.id,
            version: m.version,
            category: m.category,
            description: m.description,
            capabilities,
            templates: m
                .templates
                .into_iter()
                .map(|t| Template {
                    name: t.name,
                    body: t.body,
                })
                .collect(),
        })
    }
}

/// A compiled, ready-to-instantiate plugin.
pub struct Plugin {
    /// SHA-256 of the component bytes.
    pub hash: String,
    pub manifest: Manifest,
    pub imports: Vec<String>,
    pre: PlaybookPre<RunState>,
    handler: Handler,
}

/// Where a component's `triage` and `resolve` are. A run calls them without checking
/// their types again: a plugin is loaded only after it described itself, and `describe`
/// goes through the generated bindings, which check the types of every function of the
/// handler interface. Checking them again for each run cost a third of a microsecond.
#[derive(Clone, Copy)]
struct Handler {
    triage: ComponentExportIndex,
    resolve: ComponentExportIndex,
}

impl Handler {
    const INTERFACE: &str = "capdesk:playbook/handler@0.1.0";

    fn find(component: &Component) -> anyhow::Result<Handler> {
        let interface = component
            .get_export_index(None, Self::INTERFACE)
            .with_context(|| format!("the component does not export {}", Self::INTERFACE))?;
        let function = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .with_context(|| format!("{} of the component has no `{name}`", Self::INTERFACE))
        };
        Ok(Handler {
            triage: function("triage")?,
            resolve: function("resolve")?,
        })
    }
}

/// What `capdesk plugin inspect` reports about a component file.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub hash: String,
    pub size_bytes: usize,
    pub imports: Vec<String>,
    /// Why installing it would be refused, or `None` when it can be installed.
    pub refused: Option<String>,
    pub manifest: Option<Manifest>,
}

/// Why a call into a plugin stopped before it returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    pub reason: String,
}

/// The plugin's own word on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub resolved: bool,
    pub note: String,
    pub closeout: Option<String>,
    pub vars: Vec<(String, String)>,
}

/// How a `resolve` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The plugin returned its outcome.
    Finished(Outcome),
    /// The guard stopped the plugin at a host call: to wait for a person, because a
    /// shadow run reached a question, or because replay found a fault.
    Interrupted(Interrupt),
    /// A trap, timeout or memory overrun stopped it.
    Stopped(Stopped),
}

/// What one `resolve` gave: how it ended and the guard with everything it did.
pub struct Resolve {
    pub ending: Ending,
    pub guard: Guard,
    pub guest_time: Duration,
}

impl Resolve {
    /// A resolve that never started: the plugin stopped before it got there.
    pub fn stopped(stopped: Stopped, guard: Guard) -> Resolve {
        Resolve {
            ending: Ending::Stopped(stopped),
            guard,
            guest_time: Duration::ZERO,
        }
    }
}

/// Raised by the epoch callback when the guest used up its time.
#[derive(Debug, thiserror::Error)]
#[error("guest time budget of {0:?} used up")]
struct GuestTimeExceeded(Duration);

/// The runtime: engine, linker, the precompiled-component cache and the loaded plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    data: DataDir,
    engine_key: String,
    loaded: RwLock<HashMap<String, Arc<Plugin>>>,
}

/// Tuning of the pooling allocator. The keep-resident sizes avoid `madvise` on every
/// instance reuse, which is what serializes two threads on the kernel's memory map.
fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let instances = 1000;
    pool.total_component_instances(instances)
        // A wasm-component-ld component is three core modules with two tables.
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(MAX_MEMORY_MIB as usize * 1024 * 1024)
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(1 << 20);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

impl Runtime {
    /// Start the engine and its epoch ticker; plugin components live in `data`.
    pub fn new(data: DataDir) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&engine_config())
            .map_err(anyhow::Error::from)
            .context("starting the wasmtime engine")?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        Playbook::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        wasi::add_to_linker(&mut linker)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Runtime {
            engine,
            linker,
            data,
            engine_key: format!("{:016x}", hasher.finish()),
            loaded: RwLock::new(HashMap::new()),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile a component and read what it imports and what it says about itself.
    pub async fn inspect(&self, bytes: &[u8]) -> anyhow::Result<(Inspection, Option<Component>)> {
        let hash = hex::encode(Sha256::digest(bytes));
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            anyhow::anyhow!(
                "this file is not a WebAssembly component capdesk can load: {e:#}\n\
                 (build plugins with `cargo build --target wasm32-wasip2`; see the README's plugin guide)"
            )
        })?;
        let imports = self.imports(&component);
        let refused = imports.iter().find_map(|i| refuse_import(i));
        let mut inspection = Inspection {
            hash,
            size_bytes: bytes.len(),
            imports,
            refused,
            manifest: None,
        };
        if inspection.refused.is_some() {
            return Ok((inspection, None));
        }
        let pre = self.instance_pre(&component)?;
        let manifest = self.describe(&pre).await?;
        inspection.manifest = Some(manifest);
        Ok((inspection, Some(component)))
    }

    /// Install a component: refuse it if it imports anything capdesk does not offer,
    /// read its manifest, keep the bytes and the precompiled form in the data dir.
    pub async fn install(&self, bytes: &[u8]) -> anyhow::Result<Arc<Plugin>> {
        let (inspection, component) = self.inspect(bytes).await?;
        if let Some(why) = inspection.refused {
            anyhow::bail!("refused to install: {why}");
        }
        let component = component.expect("a component that was not refused");
        self.data.write_component(&inspection.hash, bytes)?;
        let precompiled = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("serializing the compiled component")?;
        self.data
            .write_cached(&self.cache_key(&inspection.hash), &precompiled)?;
        let plugin = Arc::new(Plugin {
            hash: inspection.hash.clone(),
            manifest: inspection.manifest.expect("inspected manifest"),
            imports: inspection.imports,
            pre: self.instance_pre(&component)?,
            handler: Handler::find(&component)?,
        });
        self.loaded
            .write()
            .expect("plugin map")
            .insert(plugin.hash.clone(), plugin.clone());
        Ok(plugin)
    }

    /// The plugin with this content hash: from memory, else from the precompiled cache,
    /// else compiled again from the stored component (and cached).
    pub async fn load(&self, hash: &str) -> anyhow::Result<Arc<Plugin>> {
        if let Some(p) = self.loaded.read().expect("plugin map").get(hash) {
            return Ok(p.clone());
        }
        let component = self.load_component(hash)?;
        let pre = self.instance_pre(&component)?;
        let manifest = self.describe(&pre).await?;
        let imports = self.imports(&component);
        let plugin = Arc::new(Plugin {
            hash: hash.to_string(),
            manifest,
            imports,
            pre,
            handler: Handler::find(&component)?,
        });
        self.loaded
            .write()
            .expect("plugin map")
            .insert(hash.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Deserialize the precompiled component, recompiling when the cache is missing or
    /// was made by a different engine.
    pub fn load_component(&self, hash: &str) -> anyhow::Result<Component> {
        let key = self.cache_key(hash);
        if let Some(bytes) = self.data.read_cached(&key)? {
            // SAFETY: the cache holds only what `Component::serialize` wrote into this
            // data dir; wasmtime checks that the engine configuration matches.
            match unsafe { Component::deserialize(&self.engine, &bytes) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!("precompiled plugin {hash} unusable ({e:#}); recompiling"),
            }
        }
        let bytes = self.data.read_component(hash)?;
        let component = Component::new(&self.engine, &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling stored plugin component {hash}"))?;
        self.data.write_cached(&key, &component.serialize()?)?;
        Ok(component)
    }

    /// The names of everything a component imports.
    fn imports(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn cache_key(&self, hash: &str) -> String {
        format!("{hash}-{}", self.engine_key)
    }

    fn instance_pre(&self, component: &Component) -> anyhow::Result<PlaybookPre<RunState>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("linking the plugin against the capdesk:playbook interfaces")?;
        Ok(PlaybookPre::new(pre)?)
    }

    fn store(&self, guard: Option<Guard>, limits: Limits, seed: u64) -> Store<RunState> {
        let start_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let state = RunState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_mib.min(MAX_MEMORY_MIB) as usize * 1024 * 1024)
                .trap_on_grow_failure(true)
                .build(),
            memory_mib: limits.memory_mib.min(MAX_MEMORY_MIB),
            wasi: wasi::InertWasi::new(seed, start_unix),
            guard,
            started: Instant::now(),
            host_time: Duration::ZERO,
            guest_budget: Duration::from_millis(limits.guest_ms.into()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let s = ctx.data();
            if s.guest_time() >= s.guest_budget {
                return Err(GuestTimeExceeded(s.guest_budget).into());
            }
            // Let other runs on this executor thread make progress, then check again.
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    async fn describe(&self, pre: &PlaybookPre<RunState>) -> anyhow::Result<Manifest> {
        let mut store = self.store(None, Limits::default(), 0);
        let result = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .capdesk_playbook_handler()
                .call_describe(&mut store)
                .await
        }
        .await;
        match result {
            Ok(m) => Manifest::from_wit(m),
            Err(e) => Err(anyhow::anyhow!(
                "the plugin failed while describing itself: {}",
                stop_reason(&e, store.data()).reason
            )),
        }
    }

    /// Start a fresh instance of the plugin for one run: its own store, memory limit,
    /// guest-time budget and seeded WASI. Triage and resolve then run on it.
    pub async fn instantiate(
        &self,
        plugin: &Plugin,
        limits: Limits,
        seed: u64,
    ) -> Result<Instance, Stopped> {
        let mut store = self.store(None, limits, seed);
        match plugin
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
        {
            Ok(instance) => Ok(Instance {
                store,
                instance,
                handler: plugin.handler,
            }),
            Err(e) => Err(stop_reason(&e, store.data())),
        }
    }
}

/// One live instance of a plugin, for one run. Dropping it frees its pooled slot.
pub struct Instance {
    store: Store<RunState>,
    instance: wasmtime::component::Instance,
    handler: Handler,
}

impl Instance {
    /// The handler function at `index`, typed as the caller says.
    ///
    /// # Safety
    /// `index` is one of the instance's [`Handler`] functions and `P`/`R` are its WIT
    /// signature, as the generated bindings checked when the plugin described itself.
    unsafe fn handler_function<P, R>(&mut self, index: ComponentExportIndex) -> TypedFunc<P, R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self
            .instance
            .get_func(&mut self.store, index)
            .expect("a handler function found when the plugin was loaded");
        // SAFETY: the caller's contract above.
        unsafe { TypedFunc::new_unchecked(func) }
    }

    /// How sure the plugin is that it resolves `ticket` (0..1). No host functions are
    /// available during triage.
    pub async fn triage(&mut self, ticket: &Ticket) -> Result<f32, Stopped> {
        let ticket = wit_ticket(ticket);
        // SAFETY: `triage: func(ticket: ticket) -> f32` in the WIT.
        let triage = unsafe { self.handler_function::<(&WitTicket,), (f32,)>(self.handler.triage) };
        match triage.call_async(&mut self.store, (&ticket,)).await {
            Ok((score,)) if score.is_finite() => Ok(score.clamp(0.0, 1.0)),
            Ok(_) => Ok(0.0),
            Err(e) => Err(stop_reason(&e, self.store.data())),
        }
    }

    /// Resolve `ticket` on this instance, every host call going through `guard`.
    pub async fn resolve(mut self, ticket: &Ticket, guard: Guard) -> Resolve {
        self.store.data_mut().guard = Some(guard);
        let ticket = wit_ticket(ticket);
        // SAFETY: `resolve: func(ticket: ticket) -> outcome` in the WIT.
        let resolve =
            unsafe { self.handler_function::<(&WitTicket,), (WitOutcome,)>(self.handler.resolve) };
        let ending = match resolve.call_async(&mut self.store, (&ticket,)).await {
            Ok((o,)) => Ending::Finished(Outcome {
                resolved: matches!(o.resolution, Resolution::Resolved),
                note: o.note,
                closeout: o.closeout,
                vars: o.vars,
            }),
            Err(e) => match e.downcast_ref::<Interrupt>() {
                Some(interrupt) => Ending::Interrupted(interrupt.clone()),
                None => Ending::Stopped(stop_reason(&e, self.store.data())),
            },
        };
        let guest_time = self.store.data().guest_time();
        let guard = self
            .store
            .into_data()
            .guard
            .expect("the guard stays in the store for the whole resolve");
        Resolve {
            ending,
            guard,
            guest_time,
        }
    }
}

/// A readable reason for a trap, timeout or memory overrun.
fn stop_reason(e: &wasmtime::Error, state: &RunState) -> Stopped {
    let stderr = state.wasi.stderr();
    let detail = if stderr.is_empty() {
        String::new()
    } else {
        format!(" (plugin output: {})", last_lines(&stderr, 3))
    };
    let reason = if let Some(GuestTimeExceeded(budget)) = e.downcast_ref::<GuestTimeExceeded>() {
        format!(
            "the plugin was stopped after using its {} ms of guest time (a loop that never ends?)",
            budget.as_millis()
        )
    } else if format!("{e:?}").contains("forcing trap when growing memory") {
        format!(
            "the plugin was stopped when it tried to use more than its {} MiB of memory",
            state.memory_mib
        )
    } else if let Some(trap) = e.downcast_ref::<Trap>() {
        match trap {
            Trap::StackOverflow => {
                "the plugin overflowed its stack (unbounded recursion?)".to_string()
            }
            // Rust guests keep their stack at the bottom of linear memory, so running
            // off its end is an access below address 0: an out-of-bounds trap.
            Trap::MemoryOutOfBounds => "the plugin crashed with an out-of-bounds memory access \
                 (most often a stack overflow from unbounded recursion)"
                .to_string(),
            Trap::UnreachableCodeReached if !stderr.is_empty() => "the plugin crashed".to_string(),
            Trap::Interrupt => "the plugin was interrupted".to_string(),
            other => format!("the plugin crashed: {other}"),
        }
    } else {
        format!("the plugin failed: {e:#}")
    };
    Stopped {
        reason: format!("{reason}{detail}"),
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("capdesk-epoch".into())
        .spawn(move || {
            while let Some(e) = engine.upgrade() {
                e.increment_epoch();
                drop(e);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
