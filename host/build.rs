//! Builds the bundled plugins in `plugins/` for wasm32-wasip2 (installing the target
//! with rustup if needed) and generates `BUNDLED`, the table of their component bytes
//! that the binary embeds.

use std::path::{Path, PathBuf};

fn main() {
    let host_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = host_dir
        .parent()
        .expect("host/ sits in the workspace root")
        .to_path_buf();
    for watched in ["plugins", "sdk/src", "sdk/build/src", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut plugins: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .expect("reading plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    plugins.sort();
    let names: Vec<&str> = plugins.iter().map(String::as_str).collect();

    let target_dir = capdesk_build::workspace_target_dir(&root).join("capdesk-wasm");
    let components = capdesk_build::build_components(&root.join("Cargo.toml"), &names, &target_dir)
        .unwrap_or_else(|e| panic!("\n\ncould not build the bundled plugins:\n{e}\n"));

    let mut table = String::from(
        "/// The plugins bundled into this binary: (id, component bytes).\n\
         pub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in names.iter().zip(&components) {
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundled.rs");
    std::fs::write(out, table).expect("writing bundled.rs");
}
