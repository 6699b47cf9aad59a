//! Anonymised outcome indicators through the real interfaces: the `indicators` CLI publishes
//! (after the disclosure audit), the HTTP API serves releases as JSON and CSV. Boundaries of
//! the floor, small towns, differencing between town and prefecture tables, roles, the CSV
//! byte-order mark and the immutability of the ledger.

use crate::common;

use std::process::Output;

use common::{Backend, Hub, Town, describe};
use kodomo_hub::demo::with_check_digit;
use serde_json::{Value, json};

const FY: &str = "2025";

/// Register a town with council and population, and a source+caseworker client for it.
fn town(hub: &Hub, base: &str, council: Option<&str>, population: Option<i64>) -> Town {
    let code = with_check_digit(base);
    let name = format!("町{code}");
    let population = population.map(|p| p.to_string());
    let mut args = vec!["admin", "municipality", "add", code.as_str(), name.as_str()];
    if let Some(council) = council {
        args.extend(["--council", council]);
    }
    if let Some(population) = &population {
        args.extend(["--population", population.as_str()]);
    }
    let out = hub.cli(&args);
    assert!(out.status.success(), "add town {code}: {}", describe(&out));
    let token = hub.add_client(&code, "system", "source,caseworker", None);
    Town { code, token }
}

/// `n` children (born 2021, in scope in fiscal 2025) in `town`, resident numbers `<code>-<i>`.
fn children(hub: &Hub, town: &Town, n: usize) {
    if n == 0 {
        return;
    }
    let records: Vec<Value> = (0..n)
        .map(|i| {
            common::subject(
                &format!("s-{}-{i}", town.code),
                &format!("{}-{i}", town.code),
                "試験 太郎",
            )
        })
        .collect();
    let report = hub.push(town, &records);
    assert_eq!(report["rejected"], 0, "{report}");
}

/// A support-outcome record (decided in fiscal 2025) for the first `n` children of `town`.
fn screened(hub: &Hub, town: &Town, n: usize, stage: &str, difficulty: &str) {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let mut r = common::record(
                "support-outcome",
                &format!("so-{}-{stage}-{difficulty}-{i}", town.code),
                &format!("{}-{i}", town.code),
            );
            r["decided_on"] = json!("2025-06-01");
            r["effective_date"] = json!("2025-06-01");
            r["stage"] = json!(stage);
            r["difficulty_types"] = json!([difficulty]);
            r
        })
        .collect();
    let report = hub.push(town, &records);
    assert_eq!(report["rejected"], 0, "{report}");
}

fn release(hub: &Hub, extra: &[&str]) -> Output {
    let mut args = vec!["indicators", "release", "--fiscal-year", FY];
    args.extend(extra);
    hub.cli(&args)
}

fn released(hub: &Hub) -> i64 {
    let out = release(hub, &[]);
    assert!(out.status.success(), "release: {}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .split("release ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no release id in: {stdout}"))
}

fn fetch(hub: &Hub, token: &str, id: i64) -> Value {
    hub.get(&format!("/v1/indicators/releases/{id}"), Some(token))
        .ok()
}

fn cell<'a>(
    release: &'a Value,
    level: &str,
    geography: &str,
    indicator: &str,
    category: &str,
) -> &'a Value {
    release["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| {
            c["level"] == level
                && c["geography"] == geography
                && c["indicator"] == indicator
                && c["category"] == category
        })
        .unwrap_or_else(|| panic!("no cell {level} {geography} {indicator}/{category}"))
}

fn in_scope<'a>(release: &'a Value, level: &str, geography: &str) -> &'a Value {
    cell(release, level, geography, "children_in_scope", "all")
}

/// National staff, bound to the nation.
fn analyst(hub: &Hub) -> String {
    hub.add_scoped_client(&["--nation"], "analyst", "national-analyst")
}

/// Floor − 1 is hidden, the floor is shown, zero is shown; aggregates are rounded.
fn floor_boundaries(backend: Backend) {
    let hub = Hub::start(backend);
    let big = Some(100_000);
    // Prefecture 13: 10 (the floor), 0, and 50 children.
    let at_floor = town(&hub, "13101", None, big);
    let empty = town(&hub, "13102", None, big);
    let large = town(&hub, "13103", None, big);
    // Prefecture 14: 9 (floor − 1), 30 and 40 children.
    let below = town(&hub, "14101", None, big);
    let partner = town(&hub, "14102", None, big);
    let other = town(&hub, "14103", None, big);
    for (t, n) in [
        (&at_floor, 10),
        (&empty, 0),
        (&large, 50),
        (&below, 9),
        (&partner, 30),
        (&other, 40),
    ] {
        children(&hub, t, n);
    }
    let id = released(&hub);
    let r = fetch(&hub, &analyst(&hub), id);
    assert_eq!(in_scope(&r, "municipality", &at_floor.code)["value"], 10);
    assert_eq!(in_scope(&r, "municipality", &empty.code)["value"], 0);
    let hidden = in_scope(&r, "municipality", &below.code);
    assert_eq!(hidden["value"], "X", "{hidden}");
    assert_eq!(hidden["suppressed"], "below_floor");
    // Its prefecture total is published (rounded), so one more town must be hidden with it.
    let complement = in_scope(&r, "municipality", &partner.code);
    assert_eq!(complement["value"], "X", "{complement}");
    assert_eq!(complement["suppressed"], "complementary");
    assert_eq!(in_scope(&r, "municipality", &other.code)["value"], 40);
    let prefecture = in_scope(&r, "prefecture", "14");
    assert_eq!(
        (prefecture["value"].clone(), prefecture["rounded"].clone()),
        (json!(80), json!(true))
    );
    assert_eq!(in_scope(&r, "nation", "JP")["value"], 140);
    // No number for a hidden cell anywhere in the answer.
    assert!(
        r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["suppressed"].is_null() || c["value"] == "X")
    );
}

/// Small towns: none of their counts under 2,000 people, floor 20 up to 25,000.
fn small_towns(backend: Backend) {
    let hub = Hub::start(backend);
    let tiny = town(&hub, "13101", None, Some(1_500));
    let unknown = town(&hub, "13102", None, None);
    let large = town(&hub, "13103", None, Some(100_000));
    let medium = town(&hub, "14101", None, Some(20_000));
    let big_15 = town(&hub, "14102", None, Some(100_000));
    let big_12 = town(&hub, "14103", None, Some(100_000));
    for (t, n) in [
        (&tiny, 40),
        (&unknown, 0),
        (&large, 60),
        (&medium, 15),
        (&big_15, 15),
        (&big_12, 12),
    ] {
        children(&hub, t, n);
    }
    let id = released(&hub);
    let r = fetch(&hub, &analyst(&hub), id);
    for small in [&tiny, &unknown] {
        let c = in_scope(&r, "municipality", &small.code);
        assert_eq!(
            (c["value"].clone(), c["suppressed"].clone()),
            (json!("X"), json!("small_population")),
            "{c}"
        );
    }
    let c = in_scope(&r, "municipality", &medium.code);
    assert_eq!(
        (c["value"].clone(), c["suppressed"].clone()),
        (json!("X"), json!("below_floor")),
        "15 < 20 in a town of 20,000: {c}"
    );
    assert_eq!(
        in_scope(&r, "municipality", &big_15.code)["value"],
        15,
        "15 ≥ 10 in a large town"
    );
    assert_eq!(
        in_scope(&r, "municipality", &big_12.code)["suppressed"],
        "complementary"
    );
}

/// Municipality and prefecture tables with exactly one small town: the audit proves its count
/// cannot be recovered by subtraction; without complementary suppression it is refused.
fn differencing(backend: Backend) {
    let hub = Hub::start(backend);
    let small = town(&hub, "13101", None, Some(1_500));
    let a = town(&hub, "13102", None, Some(100_000));
    let b = town(&hub, "13103", None, Some(100_000));
    for (t, n) in [(&small, 4), (&a, 40), (&b, 25)] {
        children(&hub, t, n);
    }
    // Weakened: only primary suppression. The prefecture total (69 → 70, so 65…74) minus the
    // two published towns pins the small town to 0…9, narrower than its floor of 20.
    let weak = release(&hub, &["--no-complementary-suppression"]);
    let text = describe(&weak);
    assert!(
        !weak.status.success(),
        "a weakened release must be refused: {text}"
    );
    assert!(
        text.contains(&format!(
            "EXPOSED municipality {} children_in_scope/all",
            small.code
        )),
        "the report names the small town's cell: {text}"
    );
    let token = analyst(&hub);
    let none = hub.get("/v1/indicators/releases", Some(&token)).ok();
    assert_eq!(none["releases"], json!([]), "nothing refused is stored");

    let id = released(&hub);
    let r = fetch(&hub, &token, id);
    assert_eq!(in_scope(&r, "municipality", &small.code)["value"], "X");
    assert_eq!(in_scope(&r, "municipality", &a.code)["value"], 40);
    let hidden_partner = in_scope(&r, "municipality", &b.code);
    assert_eq!(
        hidden_partner["value"], "X",
        "subtraction needs a second hidden town: {hidden_partner}"
    );
    assert_eq!(in_scope(&r, "prefecture", "13")["value"], 70);
    // The audit's proof, recorded with the release and repeatable over the whole ledger.
    let narrowest = r["audit"]["narrowest_width"]
        .as_i64()
        .expect("bounded cells");
    assert!(
        narrowest >= 20,
        "every hidden cell keeps an interval of at least its floor: {r}"
    );
    let audit = hub.cli(&["indicators", "audit"]);
    assert!(audit.status.success(), "{}", describe(&audit));
    // A second weakened release cannot be differenced against the first: nothing changed, so
    // every count keeps the status release 1 gave it, the complementary cell included.
    let weak = release(&hub, &["--no-complementary-suppression"]);
    assert!(weak.status.success(), "{}", describe(&weak));
    let latest = hub.get("/v1/indicators/releases", Some(&token)).ok();
    let second = latest["releases"][1]["id"]
        .as_i64()
        .expect("a second release");
    let again = fetch(&hub, &token, second);
    assert_eq!(in_scope(&again, "municipality", &b.code)["value"], "X");
    assert_eq!(in_scope(&again, "municipality", &small.code)["value"], "X");
}

/// A national analyst reads releases (no personal field); before publication nobody but a
/// council administrator sees a figure, and only for its own council.
fn roles(backend: Backend) {
    let hub = Hub::start(backend);
    let north = town(&hub, "13101", Some("north"), Some(100_000));
    let north2 = town(&hub, "13102", Some("north"), Some(100_000));
    let south = town(&hub, "14101", Some("south"), Some(100_000));
    for (t, n) in [(&north, 30), (&north2, 40), (&south, 50)] {
        children(&hub, t, n);
    }
    screened(&hub, &north, 12, "support_started", "poverty");
    let national = analyst(&hub);
    let admin = hub.add_scoped_client(&["--council", "north"], "admin", "council-admin");
    // A council-admin registered under a town previews that town alone.
    let town_admin = hub.add_client(&north.code, "town-admin", "council-admin", None);
    let preview = "/v1/indicators/preview?fiscal_year=2025";

    // Before publication: no release, no preview for a caseworker or the national analyst.
    assert_eq!(
        hub.get("/v1/indicators/releases", Some(&national)).ok()["releases"],
        json!([])
    );
    hub.get(preview, Some(&south.token))
        .problem(403, "forbidden");
    hub.get(preview, Some(&national)).problem(403, "forbidden");
    let seen = hub.get(preview, Some(&admin)).ok();
    assert_eq!(seen["would_publish"], true, "{seen}");
    let geographies: std::collections::BTreeSet<String> = seen["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["level"].as_str().unwrap(),
                c["geography"].as_str().unwrap()
            )
        })
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        format!("municipality {}", north.code),
        format!("municipality {}", north2.code),
        "council north".to_string(),
    ]
    .into();
    assert_eq!(
        geographies, expected,
        "only the admin's own council before publication"
    );
    let own = hub.get(preview, Some(&town_admin)).ok();
    let own_cells: std::collections::BTreeSet<String> = own["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["level"].as_str().unwrap(),
                c["geography"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        own_cells,
        [format!("municipality {}", north.code)].into(),
        "a town's own council-admin sees its town alone"
    );
    assert_eq!(in_scope(&seen, "municipality", &north.code)["value"], 30);

    let id = released(&hub);
    let list = hub.get("/v1/indicators/releases", Some(&national)).ok();
    assert_eq!(list["releases"][0]["id"], id);
    assert_eq!(list["releases"][0]["fiscal_year"], 2025);
    let r = hub.get(&format!("/v1/indicators/releases/{id}"), Some(&national));
    let text = r.text();
    let body = r.ok();
    assert_eq!(
        cell(
            &body,
            "municipality",
            &north.code,
            "funnel_support_started",
            "poverty"
        )["value"],
        12
    );
    assert_eq!(in_scope(&body, "council", "south")["value"], 50);
    for personal in [
        format!("{}-0", north.code),
        "試験".to_string(),
        "resident_no".into(),
        "birth_date".into(),
    ] {
        assert!(
            !text.contains(&personal),
            "a release carries no personal field ({personal})"
        );
    }
    // Published figures are public to every client; an unknown release is a problem.
    assert_eq!(fetch(&hub, &south.token, id)["id"], id);
    hub.get("/v1/indicators/releases/999", Some(&national))
        .problem(404, "not_found");
    hub.get("/v1/indicators/releases/x", Some(&national))
        .problem(400, "invalid_request");
    assert_eq!(hub.get("/v1/indicators/releases", None).status, 401);
}

/// CSV: UTF-8 with a byte-order mark, by `?format=csv` or `Accept: text/csv`; hidden cells
/// carry `X`, never a number.
fn csv_with_bom(backend: Backend) {
    let hub = Hub::start(backend);
    let a = town(&hub, "13101", None, Some(100_000));
    let b = town(&hub, "13102", None, Some(1_500));
    let c = town(&hub, "13103", None, Some(100_000));
    children(&hub, &a, 50);
    children(&hub, &b, 5);
    children(&hub, &c, 30);
    let id = released(&hub);
    let token = analyst(&hub);
    let by_query = hub.get(
        &format!("/v1/indicators/releases/{id}?format=csv"),
        Some(&token),
    );
    let by_accept = hub.get_with(
        &format!("/v1/indicators/releases/{id}"),
        Some(&token),
        &[("Accept", "text/csv")],
    );
    for r in [&by_query, &by_accept] {
        assert_eq!(r.status, 200);
        assert!(
            r.content_type().starts_with("text/csv"),
            "{}",
            r.content_type()
        );
        assert_eq!(&r.body[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark first");
    }
    assert_eq!(by_query.body, by_accept.body);
    let text = String::from_utf8(by_query.body[3..].to_vec()).expect("UTF-8");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let mut small_town_rows = 0;
    let mut labelled = 0;
    for row in rows.records() {
        let row = row.unwrap();
        // Every row says which release, year and rule set it comes from.
        assert_eq!(&row[column("公表番号")], id.to_string());
        assert_eq!(&row[column("年度")], FY);
        assert!(row[column("公表日時")].starts_with("20"), "{row:?}");
        assert!(!row[column("判定ルール版")].is_empty(), "{row:?}");
        if row[column("地域コード")] == b.code && row[column("単位")] == *"count" {
            small_town_rows += 1;
            assert_eq!(&row[column("値")], "X", "{row:?}");
            assert_eq!(&row[column("秘匿理由")], "small_population");
        }
        if row[column("地域コード")] == a.code && row[column("指標コード")] == *"children_in_scope"
        {
            assert_eq!(&row[column("値")], "50");
            assert_eq!(&row[column("地域名")], format!("町{}", a.code));
            assert_eq!(&row[column("指標名")], "対象児童数");
            assert_eq!(&row[column("区分名")], "総数");
        }
        if row[column("指標コード")] == *"funnel_support_started"
            && row[column("区分コード")] == *"young_carer"
        {
            assert_eq!(
                &row[column("指標名")],
                "スクリーニング・支援の段階別児童数(支援開始)"
            );
            assert_eq!(&row[column("区分名")], "ヤングケアラー");
            labelled += 1;
        }
    }
    assert!(
        small_town_rows > 50,
        "every count of the small town is there, as X"
    );
    assert!(labelled > 0, "difficulty types carry their Japanese labels");
    // Answers stay JSON when JSON is asked for.
    let json_answer = hub.get(
        &format!("/v1/indicators/releases/{id}?format=json"),
        Some(&token),
    );
    assert!(json_answer.content_type().starts_with("application/json"));
    hub.get(
        &format!("/v1/indicators/releases/{id}?format=xml"),
        Some(&token),
    )
    .problem(400, "invalid_request");
}

/// The ledger is immutable: the database refuses to change or remove a published cell, and a
/// new release adds to the ledger without touching earlier ones.
fn ledger_is_immutable(backend: Backend) {
    let hub = Hub::start(backend);
    let a = town(&hub, "13101", None, Some(100_000));
    children(&hub, &a, 30);
    let first = released(&hub);
    let token = analyst(&hub);
    let before = fetch(&hub, &token, first);
    let mut db = hub.raw_db();
    for sql in [
        "UPDATE indicator_cells SET value = 31 WHERE indicator = 'children_in_scope'",
        "DELETE FROM indicator_cells",
        "UPDATE indicator_releases SET fiscal_year = 2024",
        "DELETE FROM indicator_releases",
    ] {
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.execute(sql)));
        assert!(refused.is_err(), "the database must refuse: {sql}");
    }
    children(&hub, &a, 35);
    let second = released(&hub);
    assert_ne!(first, second);
    assert_eq!(
        fetch(&hub, &token, first),
        before,
        "an earlier release never changes"
    );
    assert_eq!(
        in_scope(&fetch(&hub, &token, second), "municipality", &a.code)["value"],
        35
    );
    let audit = hub.cli(&["indicators", "audit"]);
    assert!(audit.status.success(), "{}", describe(&audit));
}

/// A peer hub's towns are registered here only so transfers can name them: they are that
/// hub's to count, never a geography of this hub's releases.
fn peer_towns_are_not_counted(backend: Backend) {
    let hub = Hub::start(backend);
    let own = town(&hub, "13101", Some("協議会"), Some(30_000));
    children(&hub, &own, 25);
    let peer_town = with_check_digit("27100");
    let key = kodomo_hub::transfer::package::new_signing_key();
    let public_key = hex::encode(key.verifying_key().as_bytes());
    let town_arg = format!("{peer_town}=他ハブの町");
    let out = hub.cli(&[
        "admin",
        "peer",
        "add",
        "--name",
        "osaka-hub",
        "--public-key",
        &public_key,
        "--town",
        &town_arg,
    ]);
    assert!(out.status.success(), "peer add: {}", describe(&out));
    let id = released(&hub);
    let release = fetch(&hub, &analyst(&hub), id);
    let geographies: Vec<&str> = release["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(|c| c["geography"].as_str())
        .collect();
    assert!(geographies.contains(&own.code.as_str()), "{geographies:?}");
    assert!(
        !geographies.contains(&peer_town.as_str()),
        "{geographies:?}"
    );
    assert!(
        !geographies.contains(&"27"),
        "no prefecture of the peer's town: {geographies:?}"
    );
}

/// Late records revise a year: after release 1, two late support outcomes in a small town
/// (5 → 7, still below its floor) — the release used to be refused as "EXPOSED". The revision
/// is published beside release 1 (which never changes), every count it did not change keeps
/// the status and value release 1 gave it, and the re-audit of both passes.
fn revision_after_late_records(backend: Backend) {
    let hub = Hub::start(backend);
    let a = town(&hub, "13101", Some("協議会"), Some(100_000));
    let b = town(&hub, "13102", Some("協議会"), Some(100_000));
    let small = town(&hub, "13103", Some("協議会"), Some(20_000));
    let c = town(&hub, "14101", None, Some(300_000));
    for (t, n) in [(&a, 40), (&b, 30), (&small, 12), (&c, 60)] {
        children(&hub, t, n);
    }
    screened(&hub, &a, 25, "support_started", "abuse");
    screened(&hub, &b, 15, "support_started", "abuse");
    screened(&hub, &c, 30, "support_started", "poverty");
    screened(&hub, &small, 5, "support_started", "abuse");
    let first = released(&hub);
    let token = analyst(&hub);
    let before = fetch(&hub, &token, first);
    // Two records arrive months late (the first five are the same records again).
    screened(&hub, &small, 7, "support_started", "abuse");
    let second = released(&hub);
    assert_ne!(first, second);
    assert_eq!(
        fetch(&hub, &token, first),
        before,
        "release 1 never changes"
    );
    let after = fetch(&hub, &token, second);
    // A support-started record counts at every stage up to it.
    let changed = |c: &Value| {
        c["indicator"]
            .as_str()
            .is_some_and(|i| i.starts_with("funnel_"))
            && (c["category"] == "all" || c["category"] == "abuse")
            && [small.code.as_str(), "13", "JP", "協議会"]
                .contains(&c["geography"].as_str().unwrap_or(""))
    };
    let mut compared = 0;
    for old in before["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["unit"] == "count")
    {
        if changed(old) {
            continue;
        }
        let new = cell(
            &after,
            old["level"].as_str().unwrap(),
            old["geography"].as_str().unwrap(),
            old["indicator"].as_str().unwrap(),
            old["category"].as_str().unwrap(),
        );
        assert_eq!(
            (&new["value"], &new["suppressed"]),
            (&old["value"], &old["suppressed"]),
            "an unchanged count keeps its status: {old} → {new}"
        );
        compared += 1;
    }
    assert!(compared > 100, "{compared}");
    let late = cell(
        &after,
        "municipality",
        &small.code,
        "funnel_support_started",
        "abuse",
    );
    assert_eq!(
        late["value"], "X",
        "7 is still below the floor of 20: {late}"
    );
    let audit = hub.cli(&["indicators", "audit"]);
    assert!(audit.status.success(), "{}", describe(&audit));
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("2 release(s) together"),
        "{}",
        describe(&audit)
    );
}

/// `bench indicators` through the CLI on a small configuration: the release is published
/// (the bench fails on a refusal), its phases, linear programs, information loss and peak
/// RSS are reported, and the ledger re-audits clean. (`--realistic` needs minutes even for a
/// few dozen towns in a debug build — see BENCHMARKS.md — so its population model is
/// unit-tested and the national run is measured in release builds.)
fn bench_reports_the_release(backend: Backend) {
    let hub = Hub::start(backend);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().to_string_lossy().to_string();
    let refused = hub.cli(&[
        "bench",
        "indicators",
        "--towns",
        "5",
        "--out",
        out_path.as_str(),
    ]);
    assert!(!refused.status.success(), "--towns needs --realistic");
    let args = [
        "bench",
        "indicators",
        "--children",
        "15000",
        "--out",
        out_path.as_str(),
    ];
    let out = hub.cli(&args);
    assert!(out.status.success(), "{}", describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["shape"], "uniform");
    assert_eq!(report["towns"], 2);
    assert!(report["peak_rss_mb"].as_f64() > Some(0.0), "{report}");
    assert!(report["release_seconds"].as_f64() > Some(0.0), "{report}");
    let loss = &report["information_loss"];
    assert!(loss["count_cells"].as_u64() > Some(100), "{report}");
    let hidden_counts =
        loss["primary_cells"].as_u64().unwrap() + loss["secondary_cells"].as_u64().unwrap();
    assert!(
        hidden_counts <= report["hidden_cells"].as_u64().unwrap(),
        "{report}"
    );
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    for phase in [
        "compute",
        "protect",
        "audit: certificates",
        "audit: council sub-tables",
        "audit: prefecture sub-tables",
    ] {
        assert!(phases.contains(&phase), "{phase} in {phases:?}");
    }
    let list = hub.cli(&["indicators", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("fiscal year 2025"));
    let audit = hub.cli(&["indicators", "audit"]);
    assert!(audit.status.success(), "{}", describe(&audit));
}

/// A code with a correct check digit but no prefecture (01–47) would become a prefecture
/// geography 00, 48 or 99 in every release: registration refuses it.
fn prefecture_codes_are_validated(backend: Backend) {
    let hub = Hub::start(backend);
    for code in ["001015", "481017", "992011"] {
        let out = hub.cli(&["admin", "municipality", "add", code, "架空町"]);
        assert!(!out.status.success(), "{code} accepted: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("prefecture 01–47"),
            "{code}: {}",
            describe(&out)
        );
    }
    for base in ["01100", "47201"] {
        let code = with_check_digit(base);
        let out = hub.cli(&["admin", "municipality", "add", &code, "実在町"]);
        assert!(out.status.success(), "{code}: {}", describe(&out));
    }
    let listed = hub.cli(&["admin", "municipality", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains("架空町"), "{listed}");
}

both_backends!(
    bench_reports_the_release,
    revision_after_late_records,
    prefecture_codes_are_validated,
    peer_towns_are_not_counted,
    floor_boundaries,
    small_towns,
    differencing,
    roles,
    csv_with_bom,
    ledger_is_immutable
);
