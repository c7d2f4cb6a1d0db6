//! The web console's files, compiled into the binary by `build.rs` from
//! `server/console/` (plain ES modules, CSS and vendored libraries, served
//! as written: no JavaScript toolchain, nothing to regenerate). Each file
//! gets its content type and a strong ETag (a hash of its bytes) once, at
//! first use. `api::console` serves them.

use std::collections::HashMap;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};

mod files {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// One console file, ready to serve.
#[derive(Debug)]
pub struct Asset {
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its strong ETag, quoted (`"<16 hex digits of its SHA-256>"`).
    pub etag: String,
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    files::FILES
        .iter()
        .map(|(path, bytes)| {
            let digest = Sha256::digest(bytes);
            let asset = Asset {
                bytes,
                content_type: content_type(path),
                etag: format!("\"{}\"", hex::encode(&digest[..8])),
            };
            (*path, asset)
        })
        .collect()
});

/// The file at `path` (relative to `server/console/`, e.g. `app.js`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.get(path)
}

/// Every file's path, sorted.
pub fn paths() -> Vec<&'static str> {
    files::FILES.iter().map(|(p, _)| *p).collect()
}

/// The content type of a file by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_file_is_compiled_in_with_a_known_type() {
        let paths = paths();
        assert!(paths.contains(&"index.html"), "{paths:?}");
        assert!(paths.contains(&"app.js"), "{paths:?}");
        for p in paths {
            let a = asset(p).expect("listed files are served");
            assert_ne!(
                a.content_type, "application/octet-stream",
                "{p}: give its extension a content type"
            );
            assert_eq!(a.etag.len(), 18);
        }
    }
}
