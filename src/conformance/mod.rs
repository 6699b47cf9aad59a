//! The conformance kit (SPEC §8): requirements with stable ids, test vectors derived from the
//! schemas, and three runners a supplier uses without us — `files` (offline checks of export
//! files), `server` (scenarios against any server claiming the hub API, over HTTP or HTTPS)
//! and `client` (a sandbox hub that judges how a client pushes) — whose results are written
//! as `result.json`, `junit.xml` and `report.html`.

pub mod catalog;
pub mod client;
pub mod files;
pub mod messages;
pub mod report;
pub mod server;
pub mod vectors;

use serde::{Deserialize, Serialize};

/// Version of the suite (requirements, vectors and scenarios); bumped when any of them changes.
/// 1.1.0: a batch over its record limit is 422 (KDL-API-014); packages carry objections;
/// body and line limits (KDL-API-020, 021); conditional updates (KDL-API-022).
/// 1.2.0: the client suite (KDL-CLI-001…005) judged by the client sandbox.
/// 1.3.0: outcome messages between hubs (KDL-XFER-003) with file vectors.
pub const SUITE_VERSION: &str = "1.3.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Shall,
    Should,
    May,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "SHALL" => Some(Level::Shall),
            "SHOULD" => Some(Level::Should),
            "MAY" => Some(Level::May),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Shall => "SHALL",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// A SHOULD/MAY feature the supplier did not declare, or no input of the kind it checks.
    NotApplicable,
    /// Could not be verified; blocks a conformant verdict.
    Incomplete,
    /// The tool itself failed.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Incomplete => "incomplete",
            Status::Error => "error",
        }
    }
}

/// One finding. Carries locations and codes only — never a value from the input, so a report
/// can be handed over without personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// NDJSON line or CSV row (1-based; the CSV header is row 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Position of the record in a JSON file (0-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    /// Byte offset in the file (XML syntax and canonical-form problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The client's push (1-based, in arrival order) in a client run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<usize>,
    pub pointer: String,
    pub code: String,
    pub message_ja: String,
    pub message_en: String,
}

impl Issue {
    /// An issue with the standard bilingual text of `code`.
    pub fn new(pointer: impl Into<String>, code: &str) -> Issue {
        let (ja, en) = messages::describe(code);
        Issue {
            file: None,
            row: None,
            column: None,
            record: None,
            offset: None,
            push: None,
            pointer: pointer.into(),
            code: code.to_string(),
            message_ja: ja.to_string(),
            message_en: en.to_string(),
        }
    }

    /// An issue whose text is specific to the check (written by the tool, never input data).
    pub fn explained(code: &str, ja: impl Into<String>, en: impl Into<String>) -> Issue {
        Issue {
            message_ja: ja.into(),
            message_en: en.into(),
            ..Issue::new("", code)
        }
    }
}

/// The outcome of one test (one requirement id) in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    pub id: String,
    pub level: Level,
    pub requirement_ja: String,
    pub requirement_en: String,
    pub status: Status,
    /// Why the status is not_applicable, incomplete or error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Conformant,
    NotConformant,
    Incomplete,
    ToolError,
}

impl Verdict {
    /// Exit code of the runner: 0 conformant, 1 a SHALL test failed, 2 incomplete, 4 tool error
    /// (3, usage error, is decided before a run exists).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Conformant => 0,
            Verdict::NotConformant => 1,
            Verdict::Incomplete => 2,
            Verdict::ToolError => 4,
        }
    }
}

/// Everything a run found; `result.json` is this, serialised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub tool: String,
    pub tool_version: String,
    pub suite_version: String,
    /// `files`, `server` or `client`.
    pub suite: String,
    pub schema_version: String,
    pub started_at: String,
    /// The server a server run checked (base URL, municipality, record type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The same, item by item (server runs), for the printed report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTarget>,
    /// Every input file (files checked; a server run's capabilities file), with its SHA-256.
    pub inputs: Vec<Input>,
    /// Features the supplier declared (capabilities file).
    pub declared_features: Vec<String>,
    pub verdict: Verdict,
    pub tests: Vec<TestResult>,
}

impl Run {
    pub fn new(suite: &str, schema_version: &str, declared_features: Vec<String>) -> Run {
        Run {
            tool: "kodomo-hub".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            suite_version: SUITE_VERSION.into(),
            suite: suite.into(),
            schema_version: schema_version.into(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            target: None,
            server: None,
            inputs: Vec::new(),
            declared_features,
            verdict: Verdict::Incomplete,
            tests: Vec::new(),
        }
    }

    /// Conformant only if every in-scope SHALL test passed and nothing is left unverified.
    pub fn decide(&mut self) {
        let any = |s: Status| self.tests.iter().any(|t| t.status == s);
        self.verdict = if self
            .tests
            .iter()
            .any(|t| t.status == Status::Fail && t.level == Level::Shall)
        {
            Verdict::NotConformant
        } else if any(Status::Error) {
            Verdict::ToolError
        } else if any(Status::Incomplete) {
            Verdict::Incomplete
        } else {
            Verdict::Conformant
        };
    }
}

/// The server a server run checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerTarget {
    pub base_url: String,
    /// 全国地方公共団体コード (6 digits) the tokens belong to.
    pub municipality: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality_name: Option<String>,
    /// Record type the scenarios push.
    pub record_type: String,
}

/// Capabilities a supplier declares for optional (SHOULD/MAY) features; tests of undeclared
/// features are not applicable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub features: Vec<String>,
    /// Most records the server accepts in one JSON batch (for the limit scenario).
    #[serde(default)]
    pub max_batch_records: Option<usize>,
    /// Largest request body in bytes the server accepts (for the body-size scenario; 32 MiB
    /// if absent).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Longest NDJSON line in bytes the server accepts (for the line-length scenario; 1 MiB
    /// if absent).
    #[serde(default)]
    pub max_line_bytes: Option<usize>,
}

impl Capabilities {
    /// Read a capabilities file; returns it with the file as an input of the run.
    pub fn load(path: &std::path::Path) -> anyhow::Result<(Capabilities, Input)> {
        let bytes = std::fs::read(path)?;
        let input = Input::of(&path.display().to_string(), &bytes);
        Ok((serde_json::from_slice(&bytes)?, input))
    }
}

impl Input {
    pub fn of(name: &str, bytes: &[u8]) -> Input {
        use sha2::Digest;
        Input {
            name: name.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }
}
