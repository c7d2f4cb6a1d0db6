//! The layers of the crate, as a table a test holds the code to: every
//! top-level module has a rank, and a module may use only modules of a
//! lower rank; inside each module, its submodules use each other without a
//! cycle. The table is the architecture (README, "Architecture"); the test
//! reads the sources, so a new `use` that goes upward fails `cargo test`.

/// Top-level modules by layer, highest first. A module uses only modules
/// of the layers below its own.
pub const LAYERS: &[&[&str]] = &[
    // The binary's commands.
    &["cli"],
    // Serving: binding and shutdown; logging setup.
    &["server", "telemetry"],
    // The HTTP boundary; the command-line clients of a server or a store.
    &["api", "backup_cli", "policy_cli"],
    // Features built on the services: deal transitions. `serve`'s options.
    &["pipeline", "config"],
    // Use cases per resource: validate, authorize, write atomically.
    &["service", "cli_client"],
    // Computations the services run: settlement inputs, key accounts.
    &["incentive", "accounts"],
    // Policies: the hook interface and both runtimes.
    &["policy"],
    // Who may do what.
    &["auth"],
    // Types and rules without I/O; the console's files; metrics.
    &["domain", "console", "metrics"],
    // The store: the `Store` trait, sled, group commit, backup.
    &["store"],
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::LAYERS;

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The module path of a source file (`service/deals.rs` → `service`,
    /// `deals`; `policy/wasm/mod.rs` → `policy`, `wasm`).
    fn module_of(src: &Path, file: &Path) -> Vec<String> {
        let rel = file
            .strip_prefix(src)
            .expect("under src")
            .with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts
    }

    /// The code of a file without its unit tests (they may reach anywhere).
    fn without_tests(text: &str) -> &str {
        match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => text,
        }
    }

    /// The names that follow `prefix` (`crate::`, `super::`) in `text`.
    fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.match_indices(prefix)
            .filter(|(i, _)| {
                // Not part of a longer path such as `dealflow_crate::`.
                !text[..*i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
            .map(|(i, _)| {
                let rest = &text[i + prefix.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .filter(|n| !n.is_empty())
            .collect()
    }

    struct Crate {
        /// Top-level module → the top-level modules it uses.
        top: BTreeMap<String, BTreeSet<String>>,
        /// (module, submodule) → the submodules of the same module it uses.
        inner: BTreeMap<(String, String), BTreeSet<String>>,
    }

    fn read_crate() -> Crate {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
        let submodules = |top: &str| -> BTreeSet<String> {
            modules
                .iter()
                .filter(|m| m.len() >= 2 && m[0] == top)
                .map(|m| m[1].clone())
                .collect()
        };
        let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut inner: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let module = module_of(&src, file);
            let Some(own) = module.first() else { continue };
            if own == "lib" || own == "main" || own == "layers" {
                continue;
            }
            let text = std::fs::read_to_string(file).expect("read source");
            let code = without_tests(&text);
            let used = top.entry(own.clone()).or_default();
            for name in names_after(code, "crate::") {
                if name != own {
                    used.insert(name.to_string());
                }
            }
            if module.len() >= 2 {
                let siblings = submodules(own);
                let sub = &module[1];
                let uses = inner.entry((own.clone(), sub.clone())).or_default();
                let own_path = format!("crate::{own}::");
                let mut names = names_after(code, &own_path);
                if module.len() == 2 {
                    names.extend(names_after(code, "super::"));
                }
                for name in names {
                    if name != sub && siblings.contains(name) {
                        uses.insert(name.to_string());
                    }
                }
            }
        }
        Crate { top, inner }
    }

    fn rank(module: &str) -> Option<usize> {
        LAYERS
            .iter()
            .position(|layer| layer.contains(&module))
            .map(|i| LAYERS.len() - i)
    }

    #[test]
    fn every_top_level_module_uses_only_the_layers_below_it() {
        let krate = read_crate();
        let mut wrong = Vec::new();
        for (module, used) in &krate.top {
            let Some(own) = rank(module) else {
                wrong.push(format!("`{module}` is in no layer of layers::LAYERS"));
                continue;
            };
            for u in used {
                match rank(u) {
                    Some(r) if r < own => {}
                    Some(_) => wrong.push(format!("`{module}` uses `{u}`, a layer not below it")),
                    None => {} // an item of lib.rs (a re-export), not a module
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // The table names only modules that exist.
        for layer in LAYERS {
            for m in *layer {
                assert!(
                    krate.top.contains_key(*m),
                    "layers::LAYERS names `{m}`, no such module"
                );
            }
        }
    }

    #[test]
    fn no_module_has_submodules_that_use_each_other_in_a_cycle() {
        let krate = read_crate();
        let mut cycles = Vec::new();
        for (module, sub) in krate.inner.keys() {
            // A path back from what `sub` uses to `sub` is a cycle.
            let mut seen = BTreeSet::new();
            let mut stack: Vec<(String, Vec<String>)> = krate.inner[&(module.clone(), sub.clone())]
                .iter()
                .map(|n| (n.clone(), vec![sub.clone(), n.clone()]))
                .collect();
            while let Some((at, path)) = stack.pop() {
                if at == *sub {
                    cycles.push(format!("{module}: {}", path.join(" → ")));
                    break;
                }
                if !seen.insert(at.clone()) {
                    continue;
                }
                if let Some(next) = krate.inner.get(&(module.clone(), at.clone())) {
                    for n in next {
                        let mut p = path.clone();
                        p.push(n.clone());
                        stack.push((n.clone(), p));
                    }
                }
            }
        }
        assert!(cycles.is_empty(), "{}", cycles.join("\n"));
    }

    #[test]
    fn the_reader_sees_uses_it_must() {
        // The two ways code names a module, and what it must not take for one.
        let code = "use crate::store::keys;\nlet x = super::repo::encode(&v);\nother_crate::a();";
        assert_eq!(names_after(code, "crate::"), vec!["store"]);
        assert_eq!(names_after(code, "super::"), vec!["repo"]);
        assert_eq!(without_tests("a\n#[cfg(test)]\nmod tests {\nb\n}"), "a\n");
    }
}
