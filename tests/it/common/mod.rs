//! Test harness: runs the real `kodomo-hub` binary (server and admin CLI) against a fresh
//! SQLite data directory or a fresh PostgreSQL database, and talks to it over HTTP.
//!
//! PostgreSQL tests need `KODOMO_TEST_PG_URL` (a database the harness may connect to in order
//! to run `CREATE DATABASE`); every PostgreSQL test creates and drops its own database, so
//! tests run in parallel.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_kodomo-hub");
pub const PG_ENV: &str = "KODOMO_TEST_PG_URL";
pub const PG_SKIP: &str =
    "skipped: KODOMO_TEST_PG_URL not set (PostgreSQL tests need a database; .ci/run sets it)";

/// Valid municipality codes (check digit verified).
pub const TOWN: &str = "131016";
pub const OTHER_TOWN: &str = "011002";
pub const THIRD_TOWN: &str = "282014";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiate each behaviour `fn name(backend: Backend)` as `name::sqlite` and
/// `name::postgres`. The PostgreSQL variant is built as ignored when `KODOMO_TEST_PG_URL` is
/// not set (build.rs), so `cargo test` reports how many did not run; set at build time but
/// not at run time, it is skipped with a message.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite);
                }
                #[test]
                #[cfg_attr(
                    kodomo_no_pg,
                    ignore = "PostgreSQL: KODOMO_TEST_PG_URL was not set when the tests were built (.ci/run sets it)"
                )]
                fn postgres() {
                    if $crate::common::pg_url().is_none() {
                        println!("{}", $crate::common::PG_SKIP);
                        return;
                    }
                    super::$name($crate::common::Backend::Postgres);
                }
            }
        )*
    };
}

pub fn pg_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let without_path = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{without_path}/{db}?{q}"),
        None => format!("{without_path}/{db}"),
    }
}

fn pg_admin(sql: &str) -> Result<(), String> {
    use diesel::{Connection, RunQueryDsl};
    let url = pg_url().ok_or("KODOMO_TEST_PG_URL not set")?;
    let mut conn = diesel::PgConnection::establish(&url).map_err(|e| e.to_string())?;
    diesel::sql_query(sql)
        .execute(&mut conn)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// Where a hub keeps its data; drops the PostgreSQL database when done.
pub enum Db {
    Sqlite,
    Postgres { url: String, name: String },
}

impl Db {
    fn create(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => Db::Sqlite,
            Backend::Postgres => {
                let admin = pg_url().expect("PostgreSQL tests need KODOMO_TEST_PG_URL");
                // Named by the run (`.ci/run` sets the prefix), so a run drops only its own.
                let prefix = std::env::var("KODOMO_TEST_DB_PREFIX").unwrap_or_else(|_| "kh".into());
                let name = format!("{prefix}_{}", unique_suffix());
                pg_admin(&format!("CREATE DATABASE {name}"))
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin}: {e}"));
                Db::Postgres {
                    url: with_database(&admin, &name),
                    name,
                }
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { name, .. } = self {
            let _ = pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// An HTTP answer, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("response body is UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response ({}) is not JSON: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Assert a 200 answer and return its JSON.
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "expected 200, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Assert an RFC 9457 problem with this status and code; returns the problem.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "problem content type, got {:?}",
            self.content_type()
        );
        let p = self.json();
        assert_eq!(p["code"], code, "problem code in {p}");
        assert_eq!(p["status"], status, "problem status in {p}");
        assert!(
            p["type"].as_str().is_some_and(|t| !t.is_empty()),
            "problem type in {p}"
        );
        assert!(
            p["title"].as_str().is_some_and(|t| !t.is_empty()),
            "problem title in {p}"
        );
        assert!(
            p["detail"].as_str().is_some_and(|t| !t.is_empty()),
            "problem detail in {p}"
        );
        p
    }
}

/// A running hub (the real binary) with its own data; killed and cleaned up on drop.
pub struct Hub {
    pub base: String,
    pub backend: Backend,
    pub agent: ureq::Agent,
    child: Child,
    db: Db,
    dir: tempfile::TempDir,
    log_path: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A request with the bearer token, content type and extra headers the tests ask for.
fn with_headers<B>(
    mut req: ureq::RequestBuilder<B>,
    token: Option<&str>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(900)))
        .build()
        .into()
}

/// Wait for `GET /readyz` to answer 200. `Err(true)` if the process exited first.
fn wait_ready(child: &mut Child, base: &str, timeout: Duration) -> Result<(), bool> {
    let started = Instant::now();
    let quick: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    while started.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(true);
        }
        if let Ok(r) = quick.get(format!("{base}/readyz")).call()
            && r.status().as_u16() == 200
            && listens(child.id(), base)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(false)
}

/// Is the process `pid` the one listening on `base`'s port (and not another test's server
/// that took the port meanwhile)? Reads /proc; assumes yes where /proc is unavailable.
fn listens(pid: u32, base: &str) -> bool {
    let Some(port) = base.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
        return true;
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let wanted = format!(":{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            (cols.len() > 9 && cols[1].ends_with(&wanted) && cols[3] == "0A")
                .then(|| cols[9].to_string())
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return true;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
}

fn read_resp(mut response: ureq::http::Response<ureq::Body>) -> Resp {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .expect("read response body");
    Resp {
        status,
        headers,
        body,
    }
}

impl Hub {
    /// Start a hub on `backend` with an empty database.
    pub fn start(backend: Backend) -> Hub {
        Hub::start_with(backend, &[])
    }

    /// Start a hub with extra `serve` arguments (e.g. `--demo`).
    pub fn start_with(backend: Backend, extra: &[&str]) -> Hub {
        Hub::start_env(backend, extra, &[])
    }

    /// Start a hub with extra `serve` arguments and extra environment variables for the server
    /// process (e.g. `RUST_LOG`).
    pub fn start_env(backend: Backend, extra: &[&str], env: &[(&str, &str)]) -> Hub {
        let db = Db::create(backend);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let base = format!("http://127.0.0.1:{port}");
            let log_path = dir.path().join(format!("server-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("server log file");
            let mut cmd = Command::new(BIN);
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .args(extra);
            db_args(&mut cmd, &db, dir.path());
            cmd.envs(env.iter().copied());
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("start kodomo-hub serve");
            match wait_ready(&mut child, &base, Duration::from_secs(120)) {
                Ok(()) => {
                    return Hub {
                        base,
                        backend,
                        agent: agent(),
                        child,
                        db,
                        dir,
                        log_path,
                    };
                }
                Err(exited) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !exited {
                        panic!("kodomo-hub did not become ready in time; log:\n{last_log}");
                    }
                    // Exited early (e.g. the port was taken meanwhile): try another port.
                }
            }
        }
        panic!("kodomo-hub did not start; log:\n{last_log}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server process wrote to stdout and stderr so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).expect("read the server log")
    }

    /// A direct connection to this hub's database (for inspecting or tampering with rows).
    pub fn raw_db(&self) -> RawDb {
        RawDb::connect(&self.db, self.dir.path())
    }

    /// Run the admin CLI against this hub's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.db, self.dir.path(), args)
    }

    /// `admin municipality add <code> <name>`; panics if it fails.
    pub fn add_town(&self, code: &str, name: &str) {
        let out = self.cli(&["admin", "municipality", "add", code, name]);
        assert!(out.status.success(), "add town {code}: {}", describe(&out));
    }

    /// `admin client add --municipality <town>`; returns the printed token.
    pub fn add_client(
        &self,
        town: &str,
        name: &str,
        roles: &str,
        record_types: Option<&str>,
    ) -> String {
        let mut scope = vec!["--municipality", town];
        if let Some(types) = record_types {
            scope.extend(["--record-types", types]);
        }
        self.add_scoped_client(&scope, name, roles)
    }

    /// `admin client add` bound to the scope given as its arguments (`--council north`,
    /// `--nation`); returns the printed token.
    pub fn add_scoped_client(&self, scope: &[&str], name: &str, roles: &str) -> String {
        let mut args = vec!["admin", "client", "add", "--name", name, "--role", roles];
        args.extend(scope);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "add client {name}: {}",
            describe(&out)
        );
        token_from(&out)
    }

    /// A town with one client holding both the source and the caseworker roles.
    pub fn town(&self, code: &str) -> Town {
        self.add_town(code, &format!("町{code}"));
        let token = self.add_client(code, "system", "source,caseworker", None);
        Town {
            code: code.to_string(),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET as a caseworker would: declaring a purpose (case handling) and the staff member.
    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.get_with(
            path,
            token,
            &[("X-Purpose", "case_handling"), ("X-Actor", "staff-001")],
        )
    }

    /// GET with exactly these extra headers.
    pub fn get_with(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let req = with_headers(self.agent.get(self.url(path)), token, None, headers);
        read_resp(req.call().unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }

    /// PUT a body with an optional content type and extra headers.
    pub fn put(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: impl ureq::AsSendBody,
    ) -> Resp {
        let req = with_headers(self.agent.put(self.url(path)), token, content_type, headers);
        read_resp(req.send(body).unwrap_or_else(|e| panic!("PUT {path}: {e}")))
    }

    /// DELETE with exactly these extra headers.
    pub fn delete_with(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let req = with_headers(self.agent.delete(self.url(path)), token, None, headers);
        read_resp(req.call().unwrap_or_else(|e| panic!("DELETE {path}: {e}")))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.delete_with(path, token, &[])
    }

    /// POST a body with an optional content type and extra headers.
    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: impl ureq::AsSendBody,
    ) -> Resp {
        let req = with_headers(
            self.agent.post(self.url(path)),
            token,
            content_type,
            headers,
        );
        read_resp(
            req.send(body)
                .unwrap_or_else(|e| panic!("POST {path}: {e}")),
        )
    }

    /// POST a JSON batch `{"records": [...]}` to a town.
    pub fn push_json(&self, town: &Town, records: &[Value]) -> Resp {
        self.push_json_query(town, "", records)
    }

    pub fn push_json_query(&self, town: &Town, query: &str, records: &[Value]) -> Resp {
        let body = json!({ "records": records }).to_string();
        self.post(
            &format!("/v1/municipalities/{}/records{query}", town.code),
            Some(&town.token),
            Some("application/json"),
            &[],
            body,
        )
    }

    /// Push a JSON batch that must be answered 200; returns the report.
    pub fn push(&self, town: &Town, records: &[Value]) -> Value {
        self.push_json(town, records).ok()
    }

    pub fn history(&self, town: &Town, id: &str) -> Resp {
        self.get(
            &format!("/v1/municipalities/{}/records/{id}/history", town.code),
            Some(&town.token),
        )
    }

    pub fn profile(&self, town: &Town, resident_no: &str) -> Resp {
        self.get(
            &format!("/v1/municipalities/{}/subjects/{resident_no}", town.code),
            Some(&town.token),
        )
    }

    /// Every change of the town's feed, paging with `limit`.
    pub fn all_changes(&self, town: &Town, limit: usize) -> Vec<Value> {
        let mut cursor = 0i64;
        let mut all = Vec::new();
        loop {
            let page = self
                .get(
                    &format!(
                        "/v1/municipalities/{}/changes?after={cursor}&limit={limit}",
                        town.code
                    ),
                    Some(&town.token),
                )
                .ok();
            let changes = page["changes"].as_array().expect("changes array").clone();
            let next = page["next_cursor"].as_i64().expect("next_cursor");
            if changes.is_empty() {
                assert_eq!(next, cursor, "an empty page keeps the cursor");
                return all;
            }
            assert!(changes.len() <= limit, "page larger than limit");
            assert!(next > cursor, "cursor moves forward");
            all.extend(changes);
            cursor = next;
        }
    }

    /// Peak resident set size of the server process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A town and a token with the source and caseworker roles in it.
#[derive(Debug, Clone)]
pub struct Town {
    pub code: String,
    pub token: String,
}

fn db_args(cmd: &mut Command, db: &Db, data_dir: &Path) {
    cmd.env_remove("DATABASE_URL")
        .env_remove("KODOMO_DATA_DIR")
        .arg("--data-dir")
        .arg(data_dir);
    if let Db::Postgres { url, .. } = db {
        cmd.arg("--database-url").arg(url);
    }
}

/// Run the CLI with `args`, adding the database arguments after the first word when it is
/// `admin` (whose database options come before its sub-subcommand) or at the end otherwise.
fn cli(db: &Db, data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    match args.split_first() {
        Some((first, rest)) if *first == "admin" => {
            cmd.arg(first);
            db_args(&mut cmd, db, data_dir);
            cmd.args(rest);
        }
        _ => {
            cmd.args(args);
            db_args(&mut cmd, db, data_dir);
        }
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run kodomo-hub CLI")
}

/// The SQLite file the hub keeps in its data directory (see `store::Location::resolve`).
pub const SQLITE_FILE: &str = "kodomo-hub.sqlite3";

/// A direct connection to a hub's database, bypassing the hub.
pub enum RawDb {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

/// One row of `audit_log`, read directly from the database.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct AuditRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub municipality_code: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub at: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub client_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub client_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub actor: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub roles: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub subject: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub action: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub purpose: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub legal_basis: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub result: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub detail: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub prev_hash: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub hash: String,
    /// The municipality's chain, or `hub`.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub chain: Option<String>,
    /// Position in the chain (from 1).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub chain_seq: Option<i64>,
}

impl AuditRow {
    /// Every stored text of the row, for "does this value appear anywhere" checks.
    pub fn texts(&self) -> Vec<&str> {
        [
            Some(self.municipality_code.as_str()),
            self.client_name.as_deref(),
            self.actor.as_deref(),
            self.roles.as_deref(),
            self.subject.as_deref(),
            Some(self.action.as_str()),
            self.purpose.as_deref(),
            self.legal_basis.as_deref(),
            Some(self.result.as_str()),
            self.detail.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl RawDb {
    fn connect(db: &Db, data_dir: &Path) -> RawDb {
        use diesel::{Connection, RunQueryDsl};
        match db {
            Db::Sqlite => {
                let path = data_dir.join(SQLITE_FILE);
                assert!(path.exists(), "no SQLite database at {}", path.display());
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                diesel::sql_query("PRAGMA busy_timeout = 30000")
                    .execute(&mut conn)
                    .expect("set busy_timeout");
                RawDb::Sqlite(conn)
            }
            Db::Postgres { url, .. } => RawDb::Postgres(
                diesel::PgConnection::establish(url)
                    .unwrap_or_else(|e| panic!("connect to {url}: {e}")),
            ),
        }
    }

    /// Run one SQL statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &str) -> usize {
        use diesel::RunQueryDsl;
        match self {
            RawDb::Sqlite(c) => diesel::sql_query(sql).execute(c),
            RawDb::Postgres(c) => diesel::sql_query(sql).execute(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Run a script of several statements (a migration's SQL, say).
    pub fn batch(&mut self, sql: &str) {
        use diesel::connection::SimpleConnection;
        match self {
            RawDb::Sqlite(c) => c.batch_execute(sql),
            RawDb::Postgres(c) => c.batch_execute(sql),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The text column `v` of every row `sql` selects.
    pub fn strings(&mut self, sql: &str) -> Vec<String> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        match self {
            RawDb::Sqlite(c) => diesel::sql_query(sql).load::<Text>(c),
            RawDb::Postgres(c) => diesel::sql_query(sql).load::<Text>(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|t| t.v)
        .collect()
    }

    /// Every audit entry, in order.
    pub fn audit_rows(&mut self) -> Vec<AuditRow> {
        use diesel::RunQueryDsl;
        let sql = "SELECT seq, municipality_code, at, client_id, client_name, actor, roles, \
                   subject, action, purpose, legal_basis, result, detail, prev_hash, hash, \
                   chain, chain_seq FROM audit_log ORDER BY seq";
        match self {
            RawDb::Sqlite(c) => diesel::sql_query(sql).load::<AuditRow>(c),
            RawDb::Postgres(c) => diesel::sql_query(sql).load::<AuditRow>(c),
        }
        .unwrap_or_else(|e| panic!("read audit_log: {e}"))
    }
}

/// A database and data directory for CLI-only tests (no server).
pub struct CliEnv {
    db: Db,
    dir: tempfile::TempDir,
}

impl CliEnv {
    pub fn new(backend: Backend) -> CliEnv {
        CliEnv {
            db: Db::create(backend),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn run(&self, args: &[&str]) -> Output {
        cli(&self.db, self.dir.path(), args)
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn token_from(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("khub_"))
        .or_else(|| stdout.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or_else(|| panic!("no token printed: {}", describe(out)))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Records

/// Every record type of schema v1 (schema/v1/records/*.json).
pub const RECORD_TYPES: [&str; 15] = [
    "subject",
    "child-protection-case",
    "temporary-protection",
    "infant-checkup",
    "school-health-exam",
    "mental-health-handbook",
    "disabled-child-support",
    "school-attendance",
    "school-wellbeing-check",
    "pregnancy-notification",
    "prenatal-checkup",
    "postnatal-checkup",
    "public-assistance",
    "child-rearing-allowance",
    "support-outcome",
];

/// The envelope of a record about `resident_no`.
pub fn envelope(record_type: &str, id: &str, resident_no: &str) -> Value {
    json!({
        "record_type": record_type,
        "schema_version": "1.0",
        "source_record_id": id,
        "subject": {"resident_no": resident_no},
        "effective_date": "2024-05-01",
    })
}

/// A valid record of `record_type` with id `id` about `resident_no`.
pub fn record(record_type: &str, id: &str, resident_no: &str) -> Value {
    let fields = match record_type {
        "subject" => json!({
            "household_no": "H0001", "name": "山田 花子", "name_kana": "ヤマダ ハナコ",
            "birth_date": "2021-04-02", "sex": 2, "address": "千代田1-1-1", "role": "child",
            "guardians": ["G0001"], "moved_in_on": "2021-04-02", "support_measure": false,
        }),
        "child-protection-case" => json!({
            "registered_on": "2024-04-01", "closed_on": "2024-06-01",
            "case_class": "support_needed_child",
        }),
        "temporary-protection" => json!({"started_on": "2024-04-01", "ended_on": "2024-04-21"}),
        "infant-checkup" => json!({
            "checkup": "1y6m", "attended": true, "attended_on": "2022-10-05",
            "hit_emotionally": false, "left_alone_at_home": false, "long_without_food": false,
            "covered_mouth": false, "shook_violently": false, "weight_percentile": 40,
        }),
        "school-health-exam" => json!({
            "examined_on": "2024-04-20", "weight_kg": 25.4, "height_cm": 125.0,
            "obesity_degree": -3.5,
        }),
        "mental-health-handbook" => json!({
            "issued_on": "2023-01-10", "main_disorder_code": "F32.1", "grade": 2,
        }),
        "disabled-child-support" => {
            json!({"decided_on": "2023-05-01", "certificate_no": "0123456789"})
        }
        "school-attendance" => json!({
            "school_year": 2023, "period": "term1", "absence_days": 3, "late_days": 1,
            "school_days": 70,
        }),
        "school-wellbeing-check" => json!({
            "checked_on": "2024-02-01", "instrument": "こころの健康観察", "result": "watch",
        }),
        "pregnancy-notification" => json!({"notified_on": "2020-09-01", "gestational_weeks": 10}),
        "prenatal-checkup" => {
            json!({"attended": true, "visited_on": "2020-10-01", "gestational_weeks": 14})
        }
        "postnatal-checkup" => {
            json!({"visited_on": "2021-04-20", "epds_total": 5, "epds_item10": 0})
        }
        "public-assistance" => json!({"started_on": "2022-01-01", "ended_on": "2023-01-01"}),
        "child-rearing-allowance" => json!({"effective_on": "2023-11-01", "category": "partial"}),
        "support-outcome" => json!({
            "decided_on": "2024-03-01", "stage": "reviewed", "difficulty_types": ["poverty"],
            "review_outcome": "watch",
        }),
        other => panic!("no sample for record type {other}"),
    };
    let mut record = envelope(record_type, id, resident_no);
    let target = record.as_object_mut().expect("object");
    for (k, v) in fields.as_object().expect("object") {
        target.insert(k.clone(), v.clone());
    }
    record
}

/// A subject record for `resident_no` with the given name.
pub fn subject(id: &str, resident_no: &str, name: &str) -> Value {
    let mut r = record("subject", id, resident_no);
    r["name"] = json!(name);
    r
}

/// The per-record results of a report.
pub fn results(report: &Value) -> Vec<Value> {
    report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("report has results: {report}"))
        .clone()
}

/// The result for the record at `index`.
pub fn result_at(report: &Value, index: usize) -> Value {
    results(report)
        .into_iter()
        .find(|r| r["index"] == index)
        .unwrap_or_else(|| panic!("no result for index {index} in {report}"))
}

/// `(code, pointer)` pairs of a rejected result's errors, sorted.
pub fn error_pairs(result: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = result["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {result}"))
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap_or_default().to_string(),
                e["pointer"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

/// Assert the result is `rejected` with exactly these `(code, pointer)` errors.
pub fn assert_rejected(result: &Value, expected: &[(&str, &str)]) {
    assert_eq!(result["status"], "rejected", "expected rejection: {result}");
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(c, p)| (c.to_string(), p.to_string()))
        .collect();
    want.sort();
    assert_eq!(error_pairs(result), want, "errors of {result}");
    for e in result["errors"].as_array().expect("errors") {
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "every error has a message: {e}"
        );
    }
}

/// Count of results with `status`.
pub fn count_status(report: &Value, status: &str) -> usize {
    results(report)
        .iter()
        .filter(|r| r["status"] == status)
        .count()
}

// ---------------------------------------------------------------------------------------
// Crash and restart

impl Hub {
    /// Kill the server process with SIGKILL (no shutdown, nothing flushed) and reap it. The
    /// data directory and the database stay, for `restart`.
    pub fn kill_server(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start a new server (on a new port) on this hub's existing data directory and database,
    /// killing the current one first if it still runs. `base` changes; tokens stay valid.
    pub fn restart(&mut self) {
        self.restart_with(&[], &[]);
    }

    /// `restart` with extra `serve` arguments and environment variables.
    pub fn restart_with(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        self.kill_server();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let base = format!("http://127.0.0.1:{port}");
            let log_path = self.dir.path().join(format!("server-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("server log file");
            let mut cmd = Command::new(BIN);
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .args(extra);
            db_args(&mut cmd, &self.db, self.dir.path());
            cmd.envs(env.iter().copied());
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("restart kodomo-hub serve");
            match wait_ready(&mut child, &base, Duration::from_secs(120)) {
                Ok(()) => {
                    self.child = child;
                    self.base = base;
                    self.log_path = log_path;
                    return;
                }
                Err(exited) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !exited {
                        panic!("restarted kodomo-hub did not become ready; log:\n{last_log}");
                    }
                }
            }
        }
        panic!("kodomo-hub did not restart; log:\n{last_log}");
    }

    /// The PostgreSQL URL of this hub's database (None on SQLite).
    pub fn pg_database_url(&self) -> Option<&str> {
        match &self.db {
            Db::Postgres { url, .. } => Some(url),
            Db::Sqlite => None,
        }
    }
}

/// Headers that differ between any two answers (the time of day, connection bookkeeping).
const VARYING_HEADERS: [&str; 3] = ["date", "x-request-id", "connection"];

/// `resp` must be indistinguishable from `reference` — status, headers (but the date) and
/// body: what a caller who may not see something gets when it does not exist.
pub fn assert_same_answer(resp: &Resp, reference: &Resp, context: &str) {
    let comparable = |r: &Resp| -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !VARYING_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        headers.sort();
        headers
    };
    assert_eq!(
        (resp.status, comparable(resp), resp.text()),
        (reference.status, comparable(reference), reference.text()),
        "{context}: must answer exactly like something that does not exist"
    );
}

// ---------------------------------------------------------------------------------------
// Slow clients

/// A POST whose chunked body the test sends piece by piece, as a client on a slow link does.
/// The request asks the server to close the connection after its answer, so the answer is
/// everything read until the end of the stream.
pub struct SlowUpload {
    stream: std::net::TcpStream,
}

impl SlowUpload {
    pub fn start(hub: &Hub, path: &str, token: &str, headers: &[(&str, &str)]) -> SlowUpload {
        use std::io::Write;
        let address = hub.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect to the hub");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("read timeout");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .expect("send the request head");
        SlowUpload { stream }
    }

    /// Send one chunk of the body; an error means the server closed the connection.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream
            .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
        self.stream.write_all(bytes)?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()
    }

    /// End the body and read the answer.
    pub fn finish(mut self) -> Resp {
        use std::io::Write;
        self.stream
            .write_all(b"0\r\n\r\n")
            .expect("end the request body");
        self.answer()
    }

    /// Read the answer the server gave without waiting for the rest of the body: its head,
    /// then as many bytes as its Content-Length says (or everything until the connection
    /// closes). The server may keep the connection open while the request body is unfinished.
    pub fn answer(mut self) -> Resp {
        use std::io::Read;
        let mut raw = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            if let Some(wanted) = complete_length(&raw)
                && raw.len() >= wanted
            {
                break;
            }
            match self.stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
            }
        }
        parse_http_response(&raw)
    }
}

/// The length of a whole answer whose head has arrived and names its Content-Length.
fn complete_length(raw: &[u8]) -> Option<usize> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    })?;
    Some(head_end + length)
}

fn parse_http_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .unwrap_or(0);
            if size == 0 || rest.len() < eol + 2 + size {
                break;
            }
            decoded.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = decoded;
    }
    Resp {
        status,
        headers,
        body,
    }
}
