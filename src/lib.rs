//! kodomo-hub: the library behind the `kodomo-hub` binary, organised by capability.
//!
//! Layers, each using only those below it: faces (`api`, `cli`, and the `bench`/`demo` tools)
//! → workflows (`ingest`, `transfer::workflow`, `transfer::exchange`, the `indicators`
//! pipeline, `screening::workflow`, the `conformance` kit) → `store` (with `keys`: answers
//! questions and records facts; it never decides) → domain (`schema`, `identity`, `transfer`,
//! `indicators`, `screening`, `access`, `audit`). Who may see what is decided by `access`
//! alone. The `layering` tests below check the rule on the source.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
#[cfg(feature = "tools")]
pub mod bench;
pub mod cli;
pub mod conformance;
#[cfg(feature = "tools")]
pub mod demo;
pub mod identity;
pub mod indicators;
pub mod ingest;
pub mod keys;
pub mod schema;
pub mod screening;
pub mod store;
pub mod transfer;

#[cfg(test)]
mod layering {
    //! The layering rule above, checked on the source: a file may name only the layers below
    //! its own (text search for `crate::` paths; a `use` of a forbidden layer fails the test).

    use std::path::{Path, PathBuf};

    const FACES: &[&str] = &["crate::api", "crate::cli", "crate::bench", "crate::demo"];
    const WORKFLOWS: &[&str] = &[
        "crate::ingest",
        "crate::transfer::workflow",
        "crate::transfer::exchange",
        "crate::indicators::pipeline",
        "crate::screening::workflow",
        "crate::conformance",
    ];
    const STORE: &[&str] = &["crate::store"];

    /// Files of each layer, as paths under `src/` (a directory means every file in it).
    const DOMAIN: &[&str] = &[
        "schema",
        "identity",
        "access",
        "audit",
        "auth",
        "transfer/mod.rs",
        "transfer/package",
        "transfer/trust.rs",
        "indicators/mod.rs",
        "indicators/audit",
        "indicators/compute.rs",
        "indicators/disclosure.rs",
        "indicators/progress.rs",
        "indicators/publication.rs",
        "indicators/table.rs",
        "screening/mod.rs",
        "screening/engine.rs",
    ];
    const STORE_FILES: &[&str] = &["store", "keys.rs"];
    const WORKFLOW_FILES: &[&str] = &[
        "ingest",
        "transfer/workflow.rs",
        "transfer/exchange.rs",
        "indicators/pipeline.rs",
        "screening/workflow.rs",
        "conformance",
    ];

    fn files(entries: &[&str]) -> Vec<PathBuf> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for entry in entries {
            let path = src.join(entry);
            if path.is_dir() {
                let mut stack = vec![path];
                while let Some(dir) = stack.pop() {
                    for item in std::fs::read_dir(&dir).expect("source directory") {
                        let item = item.expect("directory entry").path();
                        if item.is_dir() {
                            stack.push(item);
                        } else if item.extension().is_some_and(|e| e == "rs") {
                            found.push(item);
                        }
                    }
                }
            } else {
                assert!(path.is_file(), "{} is listed but missing", path.display());
                found.push(path);
            }
        }
        found
    }

    fn violations(layer: &[&str], forbidden: &[&[&str]]) -> Vec<String> {
        let mut found = Vec::new();
        for file in files(layer) {
            let text = std::fs::read_to_string(&file).expect("source file");
            // Unit tests (at the end of a file) may borrow the demo generator and the like.
            let code = text
                .split("\n#[cfg(test)]")
                .next()
                .and_then(|t| t.split("\n#[cfg(all(test").next())
                .unwrap_or_default();
            for path in forbidden.iter().flat_map(|f| f.iter()) {
                if code.contains(&format!("{path}::")) || code.contains(&format!("{path};")) {
                    found.push(format!("{} names {path}", file.display()));
                }
            }
        }
        found
    }

    #[test]
    fn the_domain_names_no_store_workflow_or_face() {
        assert_eq!(
            violations(DOMAIN, &[STORE, WORKFLOWS, FACES]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_store_names_no_workflow_or_face() {
        assert_eq!(
            violations(STORE_FILES, &[WORKFLOWS, FACES]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn workflows_name_no_face() {
        assert_eq!(violations(WORKFLOW_FILES, &[FACES]), Vec::<String>::new());
    }
}
