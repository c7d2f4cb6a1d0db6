//! Compiles the console (`server/console/`) into the binary: writes
//! `$OUT_DIR/console_assets.rs`, a table of every file under `console/`
//! (its URL path and its bytes through `include_bytes!`), which
//! `src/console.rs` includes.
//!
//! Why a generated table and not a crate: `include_bytes!` makes rustc
//! record each file as a dependency, so editing a file rebuilds the binary
//! with nothing else to touch, and the `rerun-if-changed` on the directory
//! below catches files added or removed. Nothing is transformed: the
//! console is plain ES modules and CSS, served as written.

use std::path::{Path, PathBuf};

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("console");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Every console file: its path under `console/` and its bytes.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("console_assets.rs");
    std::fs::write(dest, out).expect("write console_assets.rs");
}

/// Every file under `dir` as (path relative to `root` with `/`, absolute
/// path); hidden files (editor swap files, `.DS_Store`) are left out.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.display().to_string()));
        }
    }
}
