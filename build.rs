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
