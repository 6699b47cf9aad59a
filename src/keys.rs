//! The hub's secrets, kept in files of their own outside the database: the audit key (keys the
//! audit chains, so someone who can write the database cannot rewrite the trail and recompute
//! its hashes) and the Ed25519 signing key (signs packages between hubs and audit heads).
//!
//! Each file holds 32 bytes as 64 hex digits and is created 0600 by the hub; a key file that
//! group or others can read is refused. By default both live in the data directory (which the
//! hub creates 0700); PostgreSQL deployments with several hub processes point every process at
//! the same files (`--audit-key-file`, `--signing-key-file`).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use crate::store::StoreError;

pub const AUDIT_KEY_FILE: &str = "audit.key";
pub const SIGNING_KEY_FILE: &str = "signing.key";

/// Where the key files are.
#[derive(Debug, Clone)]
pub struct KeyPaths {
    pub audit: PathBuf,
    pub signing: PathBuf,
}

impl KeyPaths {
    /// Both files in `dir` under their default names.
    pub fn in_dir(dir: &Path) -> KeyPaths {
        KeyPaths {
            audit: dir.join(AUDIT_KEY_FILE),
            signing: dir.join(SIGNING_KEY_FILE),
        }
    }
}

/// The secret that keys the audit chains (HMAC-SHA256).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// The keys of the hub this process serves.
pub struct HubKeys {
    pub audit: AuditKey,
    pub signing: SigningKey,
}

/// Create `dir` (and its parents) private to the hub's user (0700): it holds the database and
/// the key files. An existing directory is not changed — `--data-dir` might name a directory
/// shared with other software — but one open to group or others is reported.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    let fail = |e: std::io::Error| StoreError::Connection(format!("{}: {e}", dir.display()));
    if dir.exists() {
        let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "data directory {} is open to group or others (mode {:o}); run chmod 700 on it",
                dir.display(),
                mode & 0o777
            );
        }
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)
}

/// Restrict an existing file to its owner (0600).
pub fn make_private(file: &Path) -> Result<(), StoreError> {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::Connection(format!("{}: {e}", file.display())))
}

fn key_error(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("key file {}: {why}", path.display()))
}

/// Read a key file; `None` if it does not exist.
pub fn read_key(path: &Path) -> Result<Option<[u8; 32]>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_error(path, e)),
    };
    let mode = std::fs::metadata(path)
        .map_err(|e| key_error(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "group or others may read it (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| key_error(path, "expected 32 bytes as 64 hex digits"))
}

/// Write `key` to `path` (0600) unless the file exists already; returns the key the file holds
/// afterwards (another process starting at the same moment may have won). The key is written
/// to a temporary file and linked into place, so no reader ever sees a half-written key.
pub fn write_key_once(path: &Path, key: &[u8; 32]) -> Result<[u8; 32], StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| key_error(path, e))?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&temp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })();
    let _ = std::fs::remove_file(&temp);
    written.map_err(|e| key_error(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the new directory entry durable too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    read_key(path)?.ok_or_else(|| key_error(path, "vanished right after it was written"))
}

/// A new key written beside the key file it will replace, waiting for `commit`.
pub struct StagedKey {
    staged: PathBuf,
    path: PathBuf,
}

/// The file a key waits in while a rotation is recorded: `<key file>.next`.
fn staged_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Write `key` (0600) beside the key file at `path`, to replace it once the database has
/// recorded the change: the key file always holds one whole key, and a rotation interrupted
/// in between leaves the new key in `<path>.next` for the operator (`load` says so).
pub fn stage_key(path: &Path, key: &[u8; 32]) -> Result<StagedKey, StoreError> {
    let staged = staged_path(path);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)?;
        file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
        file.sync_all()
    })();
    written.map_err(|e| {
        key_error(
            &staged,
            format!(
                "{e} (a file left by an interrupted key rotation? see the hub's start-up message)"
            ),
        )
    })?;
    Ok(StagedKey {
        staged,
        path: path.to_path_buf(),
    })
}

impl StagedKey {
    /// Put the staged key in place of the old one.
    pub fn commit(self) -> Result<(), StoreError> {
        std::fs::rename(&self.staged, &self.path).map_err(|e| key_error(&self.path, e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// 32 fresh random bytes.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random number generator");
    key
}

thread_local! {
    /// The keys of the store whose write transaction runs on this thread.
    static IN_TRANSACTION: std::cell::RefCell<Option<Arc<HubKeys>>> =
        const { std::cell::RefCell::new(None) };
}

/// While alive, `in_transaction` answers `keys` on this thread. Audit entries are appended on
/// plain diesel connections deep inside many write transactions; `write_tx!` puts the keys of
/// the connection's store in scope for its transaction rather than threading them through
/// every caller.
pub struct KeysInScope {
    previous: Option<Arc<HubKeys>>,
}

impl KeysInScope {
    pub fn enter(keys: Option<Arc<HubKeys>>) -> KeysInScope {
        KeysInScope {
            previous: IN_TRANSACTION.with(|current| current.replace(keys)),
        }
    }
}

impl Drop for KeysInScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        IN_TRANSACTION.with(|current| *current.borrow_mut() = previous);
    }
}

/// The keys of the store whose write transaction runs on this thread.
pub fn in_transaction() -> Result<Arc<HubKeys>, StoreError> {
    IN_TRANSACTION
        .with(|current| current.borrow().clone())
        .ok_or_else(|| {
            StoreError::Invalid(
                "no hub keys in scope: audit entries are appended inside write_tx!".into(),
            )
        })
}

/// Load the hub's keys for the database on `conn`, creating missing ones where that is safe,
/// and move a signing key still stored in the database (as hubs before the key file kept it)
/// into its file, clearing the column.
///
/// A missing key file is never silently replaced once the database depends on it: a new audit
/// key would make every keyed entry look forged, and a new signing key would break trust with
/// peer hubs — the hub refuses to start and says which file to restore.
pub fn load(conn: &mut crate::store::DbConn, paths: &KeyPaths) -> Result<HubKeys, StoreError> {
    use crate::store::tables::{audit_log, hub_signing_key};
    use diesel::prelude::*;

    let audit = match read_key(&paths.audit)? {
        Some(key) => key,
        None => {
            let keyed_entries = crate::on_conn!(conn, |c| audit_log::table
                .filter(audit_log::chain.is_not_null())
                .count()
                .get_result::<i64>(c))?;
            if keyed_entries > 0 {
                return Err(key_error(
                    &paths.audit,
                    format!(
                        "missing, but the audit trail holds {keyed_entries} entries keyed with it; restore it from your backup"
                    ),
                ));
            }
            write_key_once(&paths.audit, &random_key())?
        }
    };

    let stored = crate::on_conn!(conn, |c| hub_signing_key::table
        .select((hub_signing_key::public_key, hub_signing_key::secret_key))
        .first::<(String, String)>(c)
        .optional())?;
    let signing = match (read_key(&paths.signing)?, stored) {
        (Some(file), Some((_, secret))) if !secret.is_empty() && secret != hex::encode(file) => {
            return Err(key_error(
                &paths.signing,
                "differs from the signing key stored in the database; keep the one your peer hubs trust (kodomo-hub admin peer key) and remove the other",
            ));
        }
        (Some(file), _) => file,
        (None, Some((public, secret))) if secret.is_empty() => {
            return Err(key_error(
                &paths.signing,
                format!(
                    "missing; this hub's public key is {public} and peer hubs trust it; restore the file from your backup"
                ),
            ));
        }
        (None, Some((_, secret))) => {
            let bytes = hex::decode(&secret)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    StoreError::Invalid("the hub signing key in the database is damaged".into())
                })?;
            write_key_once(&paths.signing, &bytes)?
        }
        (None, None) => write_key_once(&paths.signing, &random_key())?,
    };
    let signing = SigningKey::from_bytes(&signing);
    let public = hex::encode(signing.verifying_key().as_bytes());
    // The key is in its file (durably) before the database forgets it.
    crate::write_tx!(conn, |c| {
        diesel::insert_into(hub_signing_key::table)
            .values((
                hub_signing_key::id.eq(1),
                hub_signing_key::public_key.eq(&public),
                hub_signing_key::secret_key.eq(""),
                hub_signing_key::created_at.eq(crate::store::now_rfc3339()),
            ))
            .on_conflict(hub_signing_key::id)
            .do_update()
            .set(hub_signing_key::secret_key.eq(""))
            .execute(c)?;
        let recorded = hub_signing_key::table
            .select(hub_signing_key::public_key)
            .first::<String>(c)?;
        if recorded != public {
            return Err(key_error(
                &paths.signing,
                format!(
                    "holds a key whose public half is {public}, but the database records {recorded} (if a key rotation was interrupted, {} holds the recorded key: move it into place)",
                    staged_path(&paths.signing).display()
                ),
            ));
        }
        Ok(())
    })?;
    Ok(HubKeys {
        audit: AuditKey(audit),
        signing,
    })
}
