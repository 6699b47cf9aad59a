//! Secrets at rest: the hub's Ed25519 signing key and its audit key live in files of their own
//! (0600), not in the database; a data directory the hub creates is 0700, and the database and
//! the demo's token file 0600. A database from before the key file had the signing key in a column: it is
//! moved into the file and the column cleared, keeping the public key peers trust.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{BIN, Backend, Hub, SQLITE_FILE, describe};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn public_key(hub: &Hub) -> String {
    let out = hub.cli(&["admin", "peer", "key"]);
    assert!(out.status.success(), "peer key: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stored_secret(hub: &Hub) -> String {
    hub.raw_db()
        .strings("SELECT secret_key AS v FROM hub_signing_key")
        .pop()
        .expect("the hub's key row")
}

/// `demo` in a data directory that does not exist yet: everything it creates is private.
#[test]
fn a_new_hub_creates_its_files_private() {
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("data");
    let out = Command::new(BIN)
        .args(["demo", "--households-per-town", "1", "--data-dir"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .env_remove("KODOMO_DATA_DIR")
        .output()
        .expect("run kodomo-hub demo");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(mode(&data), 0o700, "data directory");
    for file in [SQLITE_FILE, "audit.key", "signing.key", "demo-tokens.env"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    for entry in std::fs::read_dir(&data).expect("list data dir") {
        let path = entry.expect("entry").path();
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is open to others",
            path.display()
        );
    }
}

/// `migrate` may run from a machine that does not hold the hub's key files: it applies the
/// migrations and neither makes nor asks for keys.
#[test]
fn migrate_makes_no_keys() {
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("data");
    let out = Command::new(BIN)
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .env_remove("KODOMO_DATA_DIR")
        .output()
        .expect("run kodomo-hub migrate");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(data.join(SQLITE_FILE).exists());
    for key in ["audit.key", "signing.key"] {
        assert!(!data.join(key).exists(), "migrate made {key}");
    }
}

/// A database file left open to others by an older hub is tightened on the next start; its
/// data directory is not changed (it may be shared) but reported.
#[test]
fn an_existing_database_is_tightened_and_an_open_directory_reported() {
    let mut hub = Hub::start(Backend::Sqlite);
    hub.kill_server();
    chmod(hub.data_dir(), 0o755);
    chmod(&hub.data_dir().join(SQLITE_FILE), 0o644);
    hub.restart();
    assert_eq!(mode(&hub.data_dir().join(SQLITE_FILE)), 0o600);
    assert_eq!(
        mode(hub.data_dir()),
        0o755,
        "an existing directory is left as it is"
    );
    let log = hub.server_log();
    assert!(log.contains("chmod 700"), "{log}");
}

fn the_signing_key_lives_in_its_file_not_the_database(backend: Backend) {
    let hub = Hub::start(backend);
    let key_file = hub.data_dir().join("signing.key");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(stored_secret(&hub), "", "the database holds no secret key");
    let secret = std::fs::read_to_string(&key_file).expect("read signing.key");
    let public = public_key(&hub);
    assert_eq!(public.len(), 64, "{public}");
    let db_public = hub
        .raw_db()
        .strings("SELECT public_key AS v FROM hub_signing_key")
        .pop();
    assert_eq!(db_public.as_deref(), Some(public.as_str()));
    assert_eq!(secret.trim().len(), 64);
}

/// A database written before the key file existed holds the secret in `hub_signing_key`: the
/// next start writes it to the file (0600) and clears the column; the public key is unchanged.
fn a_signing_key_in_the_database_moves_to_its_file(backend: Backend) {
    let mut hub = Hub::start(backend);
    let public = public_key(&hub);
    hub.kill_server();
    let key_file = hub.data_dir().join("signing.key");
    let secret = std::fs::read_to_string(&key_file).expect("read signing.key");
    hub.raw_db().execute(&format!(
        "UPDATE hub_signing_key SET secret_key = '{}'",
        secret.trim()
    ));
    std::fs::remove_file(&key_file).expect("remove signing.key");
    hub.restart();
    assert_eq!(stored_secret(&hub), "");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).expect("read"), secret);
    assert_eq!(public_key(&hub), public);
}

/// Once the secret lives only in its file, losing the file does not quietly make a new key
/// (peer hubs trust the old one): the hub refuses to open and says what to restore.
fn a_lost_signing_key_is_not_replaced(backend: Backend) {
    let mut hub = Hub::start(backend);
    let public = public_key(&hub);
    hub.kill_server();
    std::fs::remove_file(hub.data_dir().join("signing.key")).expect("remove");
    let out = hub.cli(&["admin", "peer", "key"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signing.key") && stderr.contains(&public) && stderr.contains("restore"),
        "{stderr}"
    );
    assert!(!hub.data_dir().join("signing.key").exists());
}

both_backends!(
    the_signing_key_lives_in_its_file_not_the_database,
    a_signing_key_in_the_database_moves_to_its_file,
    a_lost_signing_key_is_not_replaced,
);
