//! `conformance client`: the sandbox hub (the real server on its own temporary SQLite
//! database, one town, one `source` client) a vendor's client pushes to, run until the client
//! has gone through the plan or the time limit, then judged.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::sandbox::Sandbox;
use crate::api::{self, AppState, Bind, Limits};
use crate::auth::Role;
use crate::conformance::{Run, client};
use crate::schema::SchemaVersion;
use crate::store::{Location, Store, clients};

/// The sandbox's town (みどり町 of the demo council).
const TOWN: &str = "119016";
const TOWN_NAME: &str = "みどり町（適合性試験サンドボックス）";
/// How the sandbox names itself in its own audit trail.
const SANDBOX: &str = "conformance-sandbox";
const CLIENT_NAME: &str = "vendor-client";

/// How a client run is set up.
pub struct Settings {
    /// Address the sandbox listens on (port 0: any free port, printed).
    pub listen: String,
    /// Longest the sandbox waits for the client, from its start.
    pub time_limit: Duration,
    /// The run ends once the plan is applied and the client has been quiet this long.
    pub quiet: Duration,
    /// How long the plan's slow answer is held back.
    pub slow: Duration,
    /// The client's product name, printed in the reports.
    pub client_name: Option<String>,
}

/// The sandbox's database and keys, removed when the run ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("kodomo-hub-sandbox-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)?;
        crate::keys::ensure_private_dir(&path).map_err(std::io::Error::other)?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Start the sandbox, wait for the client to go through the plan (or the time limit), stop,
/// and judge. Errors are the tool's (it could not set the sandbox up).
pub fn run(settings: &Settings, version: &SchemaVersion) -> anyhow::Result<Run> {
    let scratch = ScratchDir::new()?;
    let store = Store::open(
        &Location::Sqlite(scratch.0.join("sandbox.db")),
        &crate::keys::KeyPaths::in_dir(&scratch.0),
    )?;
    let token = {
        let mut conn = store.conn()?;
        clients::add_municipality(&mut conn, TOWN, TOWN_NAME, None, None, SANDBOX)?;
        let (token, hash) = crate::auth::new_token();
        clients::add_client(
            &mut conn,
            &clients::NewClient {
                binding: &crate::auth::Binding::Municipality(TOWN.into()),
                name: CLIENT_NAME,
                roles: &[Role::Source.as_str().to_string()],
                record_types: None,
                token_hash: &hash,
                cert_fingerprint: None,
            },
            SANDBOX,
        )?;
        token
    };
    let listener = TcpListener::bind(&settings.listen)?;
    let base_url = format!("http://{}", listener.local_addr()?);
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "kodomo-hub conformance client sandbox (synthetic data only)"
        )?;
        writeln!(out, "base_url: {base_url}")?;
        writeln!(out, "municipality: {TOWN} {TOWN_NAME}")?;
        writeln!(out, "token: {token}")?;
        writeln!(
            out,
            "record types: every type of schema version {}",
            version.major
        )?;
        writeln!(out, "plan: {}", client::plan_text(settings.slow))?;
        writeln!(
            out,
            "waiting up to {} s for the client; the run ends {} s after it falls quiet once the plan is applied",
            settings.time_limit.as_secs(),
            settings.quiet.as_secs()
        )?;
        out.flush()?;
    }
    let sandbox = Arc::new(Sandbox::new(TOWN, settings.slow));
    let state = AppState::new(store, Limits::default());
    let started = Instant::now();
    let (time_limit, quiet) = (settings.time_limit, settings.quiet);
    let watched = sandbox.clone();
    let interposer = api::sandbox::interposer(sandbox.clone());
    actix_web::rt::System::new().block_on(async move {
        let server = api::server(state, Bind::Listener(listener), None, Some(interposer))?;
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            while started.elapsed() < time_limit && !watched.done(quiet) {
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            handle.stop(true).await;
        });
        server.await
    })?;
    Ok(client::verdict(
        &sandbox.attempts(),
        sandbox.steps_applied(),
        time_limit,
        &version.major.to_string(),
        format!(
            "{} pushing to the sandbox {base_url} (municipality {TOWN})",
            settings.client_name.as_deref().unwrap_or("the client")
        ),
    ))
}
