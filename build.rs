//! Embeds every file under `schema/` into the binary so the hub always serves and enforces
//! exactly the standard it was built with, wherever it runs.
use std::{env, fs, path::Path};

fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("schema dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push(format!(
                "({rel:?}, include_str!({:?})),",
                path.canonicalize().unwrap()
            ));
        }
    }
}

fn main() {
    // The PostgreSQL half of the integration suite needs a database. Without
    // KODOMO_TEST_PG_URL those tests are built as ignored, so `cargo test` counts them as such
    // instead of passing them silently (tests/it/common: `both_backends!`).
    println!("cargo::rustc-check-cfg=cfg(kodomo_no_pg)");
    println!("cargo:rerun-if-env-changed=KODOMO_TEST_PG_URL");
    if env::var("KODOMO_TEST_PG_URL").map_or(true, |url| url.trim().is_empty()) {
        println!("cargo:rustc-cfg=kodomo_no_pg");
    }
    let root = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    let mut files = Vec::new();
    collect(root, root, &mut files);
    let code = format!(
        "/// Every schema file as (path relative to `schema/`, contents).\npub static SCHEMA_FILES: &[(&str, &str)] = &[\n{}\n];\n",
        files.join("\n")
    );
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("schema_files.rs"),
        code,
    )
    .unwrap();
}
