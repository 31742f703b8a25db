//! Builds playbook crates into WebAssembly components for `wasm32-wasip2`, the way
//! capdesk's own build script bundles its plugins and the SDK's test harness builds the
//! plugin under test. Installs the target with rustup when it is missing, and otherwise
//! fails with the exact command to run.
//!
//! Components are built in release mode tuned for playbooks: `opt-level = "s"`, LTO,
//! one codegen unit, stripped, and a 32 KiB guest stack. The stack is part of the
//! plugin's linear memory, and every byte of that memory is reset after each run: Rust's
//! default 1 MiB stack, or even 64 KiB, costs time on every run (see the SDK's
//! performance notes).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Settings applied to every component build, as `cargo --config` overrides so they
/// hold for a plugin crate outside this workspace too.
const CONFIG: &[&str] = &[
    "profile.release.opt-level=\"s\"",
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.strip=true",
    "profile.release.debug=false",
    "target.wasm32-wasip2.rustflags=[\"-C\", \"link-arg=-zstack-size=32768\"]",
];

/// Environment a build script or test inherits from the outer cargo that must not leak
/// into the nested build (it would retarget it, or make it rebuild every time).
const SCRUB: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC_LINKER",
    "CARGO_PRIMARY_PACKAGE",
];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn scrubbed(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if SCRUB.contains(&key.as_ref())
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// Make sure the `wasm32-wasip2` standard library is installed, installing it with
/// rustup if it is not.
pub fn ensure_target() -> Result<(), String> {
    let sysroot = scrubbed(&rustc())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running `rustc --print sysroot`: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if lib.exists() {
        return Ok(());
    }
    let status = scrubbed("rustup").args(["target", "add", TARGET]).status();
    match status {
        Ok(s) if s.success() && lib.exists() => Ok(()),
        _ => Err(format!(
            "the Rust target {TARGET} is not installed and rustup could not install it; run \
             `rustup target add {TARGET}` (for the toolchain at {sysroot}) and build again"
        )),
    }
}

/// Build `packages` of the cargo workspace or crate at `manifest` into components under
/// `target_dir`, returning each component's path in the same order.
pub fn build_components(
    manifest: &Path,
    packages: &[&str],
    target_dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    ensure_target()?;
    let mut cmd = scrubbed(&cargo());
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .args(["--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir);
    for c in CONFIG {
        cmd.args(["--config", c]);
    }
    for p in packages {
        cmd.args(["-p", p]);
    }
    let output = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} for {TARGET} failed:\n{}",
            packages.join(", "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(packages
        .iter()
        .map(|p| {
            target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", p.replace('-', "_")))
        })
        .collect())
}

/// Build the crate at `crate_dir` (the directory holding its `Cargo.toml`) into a
/// component, in a target directory beside the crate's own.
pub fn build_crate(crate_dir: &Path) -> Result<PathBuf, String> {
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
    let name = package_name(&text)
        .ok_or_else(|| format!("{} has no [package] name", manifest.display()))?;
    let target_dir = workspace_target_dir(crate_dir).join("capdesk-wasm");
    let mut paths = build_components(&manifest, &[&name], &target_dir)?;
    Ok(paths.remove(0))
}

/// The `target/` directory cargo uses for the crate at `dir`: `CARGO_TARGET_DIR` if set,
/// else `target/` in the nearest ancestor holding a `Cargo.lock`.
pub fn workspace_target_dir(dir: &Path) -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    let mut here = Some(dir);
    while let Some(d) = here {
        if d.join("Cargo.lock").exists() {
            return d.join("target");
        }
        here = d.parent();
    }
    dir.join("target")
}

fn package_name(cargo_toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_package_name() {
        let toml = "[workspace]\nname = \"x\"\n[package]\nname = \"my-plugin\"\nversion = \"1\"\n";
        assert_eq!(super::package_name(toml).as_deref(), Some("my-plugin"));
    }
}
