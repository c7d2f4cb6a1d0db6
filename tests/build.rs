//! Builds the example plugins (`plugins/*`) into WebAssembly components for
//! the end-to-end tests, and tells the tests where they are.
//!
//! For each plugin: `cargo build --release --target wasm32-unknown-unknown
//! -p <plugin>` in a separate target directory (`target/wasm-plugins`: the
//! outer cargo holds the lock on its own), with the outer build's flags
//! cleared; then the core module is componentized with `wit-component` and
//! written to `OUT_DIR`, and its path exported as `PLUGIN_<NAME>` (e.g.
//! `PLUGIN_NEW_BRAND_BONUS`) for `env!`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The example plugins (package names).
const PLUGINS: &[&str] = &[
    "large-deal-guard",
    "handover-review",
    "new-brand-bonus",
    "hostile-plugin",
];

/// The target plugins are built for.
const TARGET: &str = "wasm32-unknown-unknown";

/// Variables of the outer build that must not leak into the inner one.
const CLEARED: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "RUSTDOC",
    "RUSTC_LINKER",
    "LLVM_PROFILE_FILE",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for watched in [
        "plugins",
        "tests/hostile-plugin",
        "plugin-sdk/src",
        "plugin-sdk/wit",
        "plugin-sdk/Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    ensure_wasm_target();
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                workspace.join(d)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-plugins");
    build_plugins(&workspace, &target_dir);

    for plugin in PLUGINS {
        let core_path = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", plugin.replace('-', "_")));
        let core = std::fs::read(&core_path).unwrap_or_else(|e| {
            panic!("cannot read the built plugin {}: {e}", core_path.display())
        });
        let component = wit_component::ComponentEncoder::default()
            .module(&core)
            .and_then(|e| e.validate(true).encode())
            .unwrap_or_else(|e| {
                panic!(
                    "cannot componentize {plugin} ({}): {e:#}",
                    core_path.display()
                )
            });
        let out = out_dir.join(format!("{plugin}.wasm"));
        std::fs::write(&out, component)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
        let var = format!("PLUGIN_{}", plugin.replace('-', "_").to_uppercase());
        println!("cargo:rustc-env={var}={}", out.display());
    }
}

/// Installs the wasm target with rustup unless the toolchain has it.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).join("lib").is_dir()) {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`rustup target add {TARGET}` failed ({s}); the example plugins need that target: install it and \
             build again"
        ),
        Err(e) => panic!(
            "cannot run `rustup target add {TARGET}` ({e}); the example plugins need that target: install it \
             (with rustup, or your toolchain's equivalent) and build again"
        ),
    }
}

/// Builds every plugin for the wasm target in `target_dir`.
fn build_plugins(workspace: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", target_dir)
        // Build-script output on stdout would be read as cargo directives.
        .stdout(Stdio::null());
    for plugin in PLUGINS {
        cmd.args(["-p", plugin]);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if CLEARED.contains(&key.as_ref())
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("DEP_")
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the example plugins: {e}"));
    assert!(
        status.success(),
        "building the example plugins for {TARGET} failed ({status}); run `cargo build --release --target {TARGET} \
         -p {}` to see why",
        PLUGINS.join(" -p ")
    );
}
