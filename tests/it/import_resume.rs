//! File import (SPEC §10): an import killed with SIGKILL part-way and run again ends in exactly
//! the state of one clean import — no lost and no duplicated records or versions — and an export
//! (CSV, UTF-8 or CP932) imports back into a fresh database as the same records.
//!
//! These tests run the real binary as a child process against their own database (a SQLite
//! data directory, or a PostgreSQL database created and dropped here).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, Backend, TOWN, describe, pg_url};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

const SOURCE: &str = "kenko";
/// Records in the large file: enough for a debug build to take a few seconds.
const RECORDS: usize = 60_000;
/// Records of the round trip (every record type, resolution included).
const ROUND_TRIP_RECORDS: usize = 6_000;
const RECORD_TYPES: [&str; 5] = [
    "subject",
    "school-attendance",
    "school-health-exam",
    "infant-checkup",
    "support-outcome",
];

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let root = base[authority..]
        .find('/')
        .map_or(base, |i| &base[..authority + i]);
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

fn pg_admin(sql: &str) {
    let url = pg_url().expect("KODOMO_TEST_PG_URL");
    let mut conn = diesel::PgConnection::establish(&url).expect("connect to PostgreSQL");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A fresh database of its own, with a data directory for files.
struct Database {
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Database {
    fn new(backend: Backend) -> Database {
        let pg = (backend == Backend::Postgres).then(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "kh_resume_{}_{}_{nanos}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            );
            pg_admin(&format!("CREATE DATABASE {name}"));
            (with_database(&pg_url().expect("url"), &name), name)
        });
        let db = Database {
            dir: tempfile::tempdir().expect("temp dir"),
            pg,
        };
        db.run(&["admin", "municipality", "add", TOWN, "テスト町"]);
        db
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with `args` and this database's location (after `admin`, as its options
    /// come before its sub-subcommand; otherwise at the end).
    fn command(&self, args: &[&str]) -> Command {
        let mut location = vec![
            "--data-dir".to_string(),
            self.dir().to_string_lossy().to_string(),
        ];
        if let Some((url, _)) = &self.pg {
            location.extend(["--database-url".to_string(), url.clone()]);
        }
        let mut cmd = Command::new(BIN);
        cmd.env_remove("DATABASE_URL")
            .env_remove("KODOMO_DATA_DIR")
            .stdin(Stdio::null());
        match args.split_first() {
            Some((&"admin", rest)) => cmd.arg("admin").args(&location).args(rest),
            _ => cmd.args(args).args(&location),
        };
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kodomo-hub")
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.output(args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        out
    }

    fn import(&self, files: &[&Path], encoding: Option<&str>) -> Output {
        let files: Vec<String> = files
            .iter()
            .map(|f| f.to_string_lossy().to_string())
            .collect();
        let mut args = vec!["import", "--municipality", TOWN, "--source", SOURCE];
        if let Some(encoding) = encoding {
            args.extend(["--encoding", encoding]);
        }
        args.extend(files.iter().map(String::as_str));
        self.run(&args)
    }

    fn export(&self, record_type: &str, encoding: &str) -> Vec<u8> {
        self.run(&[
            "export",
            "--municipality",
            TOWN,
            "--record-type",
            record_type,
            "--format",
            "csv",
            "--encoding",
            encoding,
        ])
        .stdout
    }

    fn snapshot(&self) -> Snapshot {
        macro_rules! read {
            ($c:expr) => {{
                let c = $c;
                let mut records = diesel::sql_query(
                    "SELECT source, source_record_id, record_type, content_hash, \
                     subject_resident_no, version FROM records ORDER BY source_record_id",
                )
                .load::<RecordRow>(c)
                .expect("records");
                records.sort();
                let mut versions =
                    diesel::sql_query("SELECT source_record_id, version FROM record_versions")
                        .load::<VersionRow>(c)
                        .expect("record_versions");
                versions.sort();
                let mut queue = diesel::sql_query(
                    "SELECT source_record_id, status, resident_no FROM identity_queue",
                )
                .load::<QueueRow>(c)
                .expect("identity_queue");
                queue.sort();
                Snapshot {
                    records,
                    versions,
                    queue,
                }
            }};
        }
        match &self.pg {
            Some((url, _)) => read!(&mut diesel::PgConnection::establish(url).expect("connect")),
            None => read!(
                &mut diesel::SqliteConnection::establish(
                    &self.dir().join(common::SQLITE_FILE).to_string_lossy()
                )
                .expect("open SQLite")
            ),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((_, name)) = &self.pg {
            pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, QueryableByName)]
struct RecordRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_record_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    record_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    content_hash: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    subject_resident_no: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_record_id: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_record_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    resident_no: Option<String>,
}

/// What a database holds, in a comparable form.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Vec<RecordRow>,
    versions: Vec<VersionRow>,
    queue: Vec<QueueRow>,
}

impl Snapshot {
    /// Every record stored once with one version, and the ids are exactly `expected`.
    fn assert_each_once(&self, expected: &[String]) {
        let ids: Vec<&str> = self
            .records
            .iter()
            .map(|r| r.source_record_id.as_str())
            .collect();
        let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(ids.len(), want.len(), "record count");
        assert!(ids == want, "every source_record_id exactly once");
        assert!(
            self.records.iter().all(|r| r.version == 1),
            "no record has a second version"
        );
        let versions: Vec<&str> = self
            .versions
            .iter()
            .map(|v| v.source_record_id.as_str())
            .collect();
        assert!(versions == want, "exactly one stored version per record");
    }
}

const SURNAMES: [&str; 8] = [
    "佐藤", "髙橋", "山﨑", "渡邉", "田中", "伊藤", "中村", "小林",
];
const GIVEN: [(&str, &str, i64); 6] = [
    ("蓮", "レン", 1),
    ("陽翔", "ハルト", 1),
    ("湊", "ミナト", 1),
    ("陽葵", "ヒマリ", 2),
    ("凛", "リン", 2),
    ("紬", "ツムギ", 2),
];
const KANA: [&str; 8] = [
    "サトウ",
    "タカハシ",
    "ヤマザキ",
    "ワタナベ",
    "タナカ",
    "イトウ",
    "ナカムラ",
    "コバヤシ",
];

/// The n-th child of the file: a unique birth date, so resolution never depends on order.
fn child(n: usize) -> Value {
    let (given, given_kana, sex) = GIVEN[n % GIVEN.len()];
    let birth = chrono::NaiveDate::from_ymd_opt(2010, 1, 1).expect("date")
        + chrono::Duration::days(n as i64);
    json!({
        "name": format!("{} {given}", SURNAMES[n % SURNAMES.len()]),
        "name_kana": format!("{} {given_kana}", KANA[n % KANA.len()]),
        "birth_date": birth.format("%Y-%m-%d").to_string(),
        "sex": sex,
        "address": format!("本町{}丁目{}番{}号", n % 5 + 1, n % 30 + 1, n % 20 + 1),
    })
}

/// Record `i` of the large file. Every 12th line is a register entry; the others are records
/// about the latest child, by resident number, except every 50th, which carries only the basic
/// information and a student number (resolved on import).
fn line(i: usize) -> Value {
    let n = i / 12;
    let resident_no = format!("R{n:06}");
    let id = format!("rec-{i:06}");
    let envelope = |record_type: &str, subject: Value| {
        json!({"record_type": record_type, "schema_version": "1.0", "source_record_id": id,
               "subject": subject, "effective_date": "2024-05-01"})
    };
    let mut record = if i.is_multiple_of(12) {
        let mut r = envelope("subject", json!({"resident_no": resident_no}));
        let basic = child(n);
        for (k, v) in basic.as_object().expect("object") {
            r[k] = v.clone();
        }
        r["household_no"] = json!(format!("H{n:06}"));
        r["role"] = json!("child");
        r["guardians"] = json!([format!("G{n:06}"), format!("G{n:06}B")]);
        r["support_measure"] = json!(false);
        return r;
    } else if i % 50 == 1 {
        envelope(
            "school-health-exam",
            json!({"basic_info": child(n), "local_ids": {"student_no": format!("S{n:06}")}}),
        )
    } else {
        envelope(RECORD_TYPES[1 + i % 4], json!({"resident_no": resident_no}))
    };
    match record["record_type"].as_str().expect("type") {
        "school-attendance" => {
            record["school_year"] = json!(2023);
            record["period"] = json!("term1");
            record["absence_days"] = json!(i % 40);
            record["late_days"] = json!(i % 7);
            record["school_days"] = json!(70);
        }
        "school-health-exam" => {
            record["examined_on"] = json!("2024-04-20");
            record["weight_kg"] = json!(20.0 + (i % 300) as f64 / 10.0);
            record["height_cm"] = json!(120.5);
        }
        "infant-checkup" => {
            record["checkup"] = json!("1y6m");
            record["attended"] = json!(true);
            record["attended_on"] = json!("2022-10-05");
            record["hit_emotionally"] = json!(i.is_multiple_of(9));
            record["weight_percentile"] = json!((i % 99) as f64 + 0.5);
        }
        _ => {
            record["decided_on"] = json!("2024-03-01");
            record["stage"] = json!("reviewed");
            record["difficulty_types"] = json!(["poverty", "school_refusal"]);
            record["review_outcome"] = json!("watch");
        }
    }
    record
}

fn write_large_file(dir: &Path) -> (PathBuf, Vec<String>) {
    let mut text = String::with_capacity(RECORDS * 320);
    let mut ids = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let record = line(i);
        ids.push(record["source_record_id"].as_str().expect("id").to_string());
        text.push_str(&record.to_string());
        text.push('\n');
    }
    let path = dir.join("kenko-export.ndjson");
    std::fs::write(&path, text).expect("write the large file");
    (path, ids)
}

fn state_of(file: &Path) -> Option<Value> {
    let mut name = file.file_name().expect("name").to_os_string();
    name.push(".import-state.json");
    let text = std::fs::read(file.with_file_name(name)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn killed_import_resumes_to_the_state_of_a_clean_import(backend: Backend) {
    let started = Instant::now();
    let db = Database::new(backend);
    let (file, ids) = write_large_file(db.dir());

    // Start the import and SIGKILL it once some chunks have committed, before the end.
    let mut child = db
        .command(&[
            "import",
            "--municipality",
            TOWN,
            "--source",
            SOURCE,
            &file.to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the import");
    let deadline = Instant::now() + Duration::from_secs(300);
    let committed = loop {
        if let Some(state) = state_of(&file) {
            let committed = state["committed"].as_u64().unwrap_or(0);
            if committed >= 3000 {
                child.kill().expect("SIGKILL the import");
                break committed;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the import ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "no progress in the state file");
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = child.wait().expect("wait for the killed import");
    assert!(!status.success(), "the import was killed, not finished");
    let state = state_of(&file).expect("state file after the kill");
    assert_eq!(state["complete"], false, "{state}");
    let at_kill = state["committed"].as_u64().expect("committed");
    assert!(
        at_kill >= committed && (at_kill as usize) < RECORDS,
        "killed part-way: {state}"
    );
    let partial = db.snapshot();
    assert!(
        partial.records.len() >= at_kill as usize && partial.records.len() < RECORDS,
        "{} records stored, {at_kill} committed by the state file",
        partial.records.len()
    );
    let interrupted_after = started.elapsed();

    // Run it again: it resumes after the last checkpoint and completes.
    let out = db.import(&[&file], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("60000 records"), "{stdout}");
    let state = state_of(&file).expect("state file");
    assert_eq!(state["complete"], true, "{state}");
    assert_eq!(state["committed"], RECORDS, "{state}");
    assert_eq!(state["rejected"], 0, "{state}");
    assert_eq!(
        state["updated"], 0,
        "a rerun never makes new versions: {state}"
    );
    assert_eq!(
        state["created"].as_u64().expect("created") + state["unchanged"].as_u64().expect("n"),
        RECORDS as u64,
        "{state}"
    );
    let resumed = db.snapshot();
    resumed.assert_each_once(&ids);

    // The same file imported once, cleanly, into a fresh database (from a fresh directory, so
    // no state file is shared).
    let clean = Database::new(backend);
    let copy = clean.dir().join("kenko-export.ndjson");
    std::fs::copy(&file, &copy).expect("copy the file");
    clean.import(&[&copy], None);
    let clean_state = clean.snapshot();
    clean_state.assert_each_once(&ids);
    assert_eq!(resumed.records, clean_state.records, "same records");
    assert_eq!(resumed.versions, clean_state.versions, "same versions");
    assert_eq!(resumed.queue, clean_state.queue, "same identity resolution");
    let linked = resumed
        .queue
        .iter()
        .filter(|q| q.status == "linked")
        .count();
    assert_eq!(
        linked,
        RECORDS.div_ceil(50),
        "every basic-info record linked"
    );
    eprintln!(
        "{backend:?}: killed after {} of {RECORDS} committed ({:.1}s), whole test {:.1}s",
        at_kill,
        interrupted_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Export (CSV in UTF-8 and in CP932) and import the export into fresh databases under the
/// same source: the same records, resolved the same way.
fn export_imports_back_as_the_same_records(backend: Backend) {
    let started = Instant::now();
    let records: Vec<Value> = (0..ROUND_TRIP_RECORDS).map(line).collect();
    let ids: Vec<String> = records
        .iter()
        .map(|r| r["source_record_id"].as_str().expect("id").to_string())
        .collect();
    let original = Database::new(backend);
    let file = original.dir().join("kenko.ndjson");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, text).expect("write");
    original.import(&[&file], None);
    let clean_state = original.snapshot();
    clean_state.assert_each_once(&ids);
    assert_eq!(
        clean_state
            .queue
            .iter()
            .filter(|q| q.status == "linked")
            .count(),
        ROUND_TRIP_RECORDS.div_ceil(50)
    );
    for encoding in ["utf-8", "cp932"] {
        let target = Database::new(backend);
        let (mut files, mut copies) = (Vec::new(), Vec::new());
        for record_type in RECORD_TYPES {
            let bytes = original.export(record_type, encoding);
            if encoding == "cp932" && record_type == "subject" {
                assert!(
                    std::str::from_utf8(&bytes).is_err(),
                    "a CP932 export of Japanese names is not UTF-8"
                );
            }
            let path = target.dir().join(format!("{record_type}.csv"));
            std::fs::write(&path, &bytes).expect("write the export");
            files.push(path);
            // A copy with no import state beside it, for the import into the original.
            let copy = original.dir().join(format!("{record_type}-{encoding}.csv"));
            std::fs::write(&copy, &bytes).expect("write the export");
            copies.push(copy);
        }
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let out = target.import(&paths, Some(encoding).filter(|e| *e == "cp932"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(" 0 created"), "{stdout}");
        assert_eq!(
            stdout.matches(", 0 rejected").count(),
            RECORD_TYPES.len(),
            "{stdout}"
        );
        let round_trip = target.snapshot();
        round_trip.assert_each_once(&ids);
        assert!(
            round_trip.records == clean_state.records,
            "{encoding} export imports back as the same records (first difference: {:?})",
            round_trip
                .records
                .iter()
                .zip(&clean_state.records)
                .find(|(a, b)| a != b)
        );
        assert_eq!(round_trip.queue, clean_state.queue, "{encoding}");
        // Importing the export into the database it came from changes nothing.
        let copies: Vec<&Path> = copies.iter().map(PathBuf::as_path).collect();
        let again = original.import(&copies, Some(encoding).filter(|e| *e == "cp932"));
        let again = String::from_utf8_lossy(&again.stdout);
        assert_eq!(
            again.matches(" 0 created, 0 updated").count(),
            RECORD_TYPES.len(),
            "{again}"
        );
        assert_eq!(original.snapshot(), clean_state, "{encoding}");
    }
    eprintln!(
        "{backend:?}: export round trips of {ROUND_TRIP_RECORDS} records {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn small_file(dir: &Path, records: &[Value]) -> PathBuf {
    let path = dir.join("small.ndjson");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).expect("write");
    path
}

/// A completed import's state file sits beside the file (on the USB stick). Importing the same
/// file into another database — staging then production, or after a restore — must import it,
/// not skip every record because the state file says they were committed (elsewhere).
fn a_state_file_from_another_database_does_not_skip_records(backend: Backend) {
    let records: Vec<Value> = (0..5).map(|i| line(i * 12 + 2)).collect();
    let ids: Vec<String> = records
        .iter()
        .map(|r| r["source_record_id"].as_str().expect("id").to_string())
        .collect();
    let first = Database::new(backend);
    let file = small_file(first.dir(), &records);
    first.import(&[&file], None);
    first.snapshot().assert_each_once(&ids);

    let second = Database::new(backend);
    let out = second.import(&[&file], None);
    let stored = second.snapshot();
    assert_eq!(
        stored.records.len(),
        records.len(),
        "the second database holds the file's records; the import said: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stored.assert_each_once(&ids);
}

/// A record whose number field was sent as a JSON integer (`"weight_kg": 30`) exports as `30`;
/// importing that export back into the same hub must find it unchanged, not store a new version
/// (`30.0`) of every such record.
fn an_export_imports_back_unchanged_with_integer_numbers(backend: Backend) {
    let mut record = line(5);
    assert_eq!(record["record_type"], "school-health-exam");
    record["weight_kg"] = json!(30);
    record["height_cm"] = json!(121);
    let db = Database::new(backend);
    let file = small_file(db.dir(), &[record]);
    db.import(&[&file], None);
    let before = db.snapshot();
    let export = db.dir().join("export.csv");
    std::fs::write(&export, db.export("school-health-exam", "utf-8")).expect("write export");
    let out = db.import(&[&export], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(db.snapshot(), before);
}

/// Names with 外字 (private-use characters, as CP932's user-defined area F040–F9FC holds them)
/// are imported from CP932 files; the CP932 export must write them back the same way rather
/// than refuse the whole export.
fn a_cp932_export_keeps_gaiji(backend: Backend) {
    let mut record = line(1);
    assert_eq!(record["record_type"], "school-health-exam");
    record["subject"]["basic_info"]["name"] = json!("\u{E001}橋 蓮");
    let db = Database::new(backend);
    let file = small_file(db.dir(), &[record]);
    db.import(&[&file], None);
    let out = db.output(&[
        "export",
        "--municipality",
        TOWN,
        "--record-type",
        "school-health-exam",
        "--encoding",
        "cp932",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        out.stdout.windows(2).any(|w| w == [0xF0, 0x41]),
        "U+E001 written as CP932 F0 41"
    );
    let target = Database::new(backend);
    let path = target.dir().join("export.csv");
    std::fs::write(&path, &out.stdout).expect("write export");
    target.import(&[&path], Some("cp932"));
    assert_eq!(target.snapshot().records, db.snapshot().records);
}

/// Finding 6 of issue 14: staff open exports in a spreadsheet, so no text cell may start
/// with a formula character (`=`, `+`, `-`, `@`, tab, CR); each gets a leading `'`, and
/// importing the export gives back exactly the values that were stored.
fn an_export_neutralises_formulas_and_imports_back_the_same_values(backend: Backend) {
    let formulas = [
        ("/subject/basic_info/name", "=cmd|' /C calc'!A0"),
        ("/subject/basic_info/name_kana", "@SUM(A1)"),
        ("/subject/basic_info/address", "+SUM(1,2)"),
        ("/subject/local_ids/student_no", "-2+3"),
    ];
    let quoted = [
        ("/subject/basic_info/address", "\tTAB"),
        ("/subject/local_ids/student_no", "'=already quoted"),
    ];
    let db = Database::new(backend);
    let records: Vec<Value> = [&formulas[..], &quoted[..]]
        .iter()
        .enumerate()
        .map(|(i, values)| {
            let mut record = line(50 * i + 1);
            for (pointer, value) in values.iter() {
                *record.pointer_mut(pointer).expect(pointer) = json!(value);
            }
            record
        })
        .collect();
    let file = small_file(db.dir(), &records);
    db.import(&[&file], None);
    let before = db.snapshot();
    assert_eq!(before.records.len(), 2, "both records stored");
    for encoding in ["utf-8", "cp932"] {
        let bytes = db.export("school-health-exam", encoding);
        let text = match encoding {
            "utf-8" => String::from_utf8(bytes.clone()).expect("UTF-8"),
            _ => encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned(),
        };
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<String> = reader
            .records()
            .flat_map(|row| {
                row.expect("CSV row")
                    .iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        for (_, value) in formulas.iter().chain(&quoted) {
            assert!(
                cells.contains(&format!("'{value}")),
                "{value:?} guarded in {text}"
            );
        }
        let starts_formula = |c: &String| c.starts_with(['=', '+', '@', '\t', '\r']);
        assert!(!cells.iter().any(starts_formula), "{text}");
        assert!(
            !cells
                .iter()
                .any(|c| c.starts_with('-') && c.parse::<f64>().is_err()),
            "only numbers may start with '-': {text}"
        );
        let target = Database::new(backend);
        let path = target.dir().join("export.csv");
        std::fs::write(&path, &bytes).expect("write export");
        target.import(&[&path], Some(encoding).filter(|e| *e == "cp932"));
        assert_eq!(target.snapshot().records, before.records, "{encoding}");
    }
}

both_backends!(
    an_export_neutralises_formulas_and_imports_back_the_same_values,
    killed_import_resumes_to_the_state_of_a_clean_import,
    export_imports_back_as_the_same_records,
    a_state_file_from_another_database_does_not_skip_records,
    an_export_imports_back_unchanged_with_integer_numbers,
    a_cp932_export_keeps_gaiji,
);
