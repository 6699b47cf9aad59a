//! Scopes: clients bound to a town, a joint-use council or the nation; councils managed from
//! the CLI; a council's operator sees its own council only and never a child; clients
//! registered before scopes existed are migrated in place.

use crate::common;

use common::{Backend, Hub, Resp, describe};
use serde_json::{Value, json};

const NORTH_A: &str = "131016";
const NORTH_B: &str = "131024";
const SOUTH_C: &str = "011002";
const LONE_D: &str = "282014";
const CHILD: &str = "R-SCOPE-1";

fn cli_ok(hub: &Hub, args: &[&str]) -> String {
    let out = hub.cli(args);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli_err(hub: &Hub, args: &[&str]) -> String {
    let out = hub.cli(args);
    assert!(
        !out.status.success(),
        "{args:?} must fail: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Towns A and B in council `north`, C in `south`, D in none.
fn councils(hub: &Hub) {
    cli_ok(
        hub,
        &[
            "admin",
            "council",
            "add",
            "north",
            "北部広域連携協議会",
            "--operator-contact",
            "ops@north.invalid",
        ],
    );
    cli_ok(hub, &["admin", "council", "add", "south", "南部協議会"]);
    for (town, name) in [
        (NORTH_A, "北A町"),
        (NORTH_B, "北B町"),
        (SOUTH_C, "南C市"),
        (LONE_D, "単独D市"),
    ] {
        hub.add_town(town, name);
    }
    for (council, town) in [("north", NORTH_A), ("north", NORTH_B), ("south", SOUTH_C)] {
        cli_ok(hub, &["admin", "council", "member", "add", council, town]);
    }
}

fn councils_are_managed_from_the_cli(backend: Backend) {
    let hub = Hub::start(backend);
    councils(&hub);
    let list = cli_ok(&hub, &["admin", "council", "list"]);
    assert!(
        list.contains(&format!(
            "north\t北部広域連携協議会\tops@north.invalid\t{NORTH_A},{NORTH_B}"
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!("south\t南部協議会\t\t{SOUTH_C}")),
        "{list}"
    );
    // A town belongs to one council at most; unknown councils and towns are refused.
    let taken = cli_err(
        &hub,
        &["admin", "council", "member", "add", "south", NORTH_A],
    );
    assert!(
        taken.contains("already belongs to council north"),
        "{taken}"
    );
    let unknown = cli_err(&hub, &["admin", "council", "member", "add", "east", LONE_D]);
    assert!(unknown.contains("not registered"), "{unknown}");
    let not_member = cli_err(
        &hub,
        &["admin", "council", "member", "remove", "north", SOUTH_C],
    );
    assert!(not_member.contains("not a member"), "{not_member}");
    let twice = cli_err(&hub, &["admin", "council", "add", "north", "again"]);
    assert!(twice.contains("already registered"), "{twice}");
    // Leaving shows in the list, and the town's council label in the town list follows.
    cli_ok(
        &hub,
        &["admin", "council", "member", "remove", "north", NORTH_B],
    );
    let list = cli_ok(&hub, &["admin", "council", "list"]);
    assert!(
        list.contains(&format!(
            "north\t北部広域連携協議会\tops@north.invalid\t{NORTH_A}\n"
        )),
        "{list}"
    );
    let towns = cli_ok(&hub, &["admin", "municipality", "list"]);
    assert!(towns.contains(&format!("{NORTH_B}\t北B町\t\t")), "{towns}");
    // A council named as a label when a town is registered (as before councils were
    // entities) becomes a council of that code.
    cli_ok(
        &hub,
        &[
            "admin",
            "municipality",
            "add",
            "141003",
            "横浜市",
            "--council",
            "kanagawa",
        ],
    );
    let list = cli_ok(&hub, &["admin", "council", "list"]);
    assert!(list.contains("kanagawa\tkanagawa\t\t141003"), "{list}");
    // Every change is audited.
    let actions = hub.raw_db().strings(
        "SELECT action AS v FROM audit_log WHERE action LIKE 'admin.council.%' ORDER BY seq",
    );
    assert_eq!(
        actions,
        [
            "admin.council.add",
            "admin.council.add",
            "admin.council.member.add",
            "admin.council.member.add",
            "admin.council.member.add",
            "admin.council.member.remove",
        ]
    );
}

both_backends!(councils_are_managed_from_the_cli);

fn clients_are_bound_to_a_scope(backend: Backend) {
    let hub = Hub::start(backend);
    councils(&hub);
    hub.add_client(NORTH_A, "desk", "caseworker", None);
    hub.add_scoped_client(&["--council", "north"], "operator", "council-admin");
    hub.add_scoped_client(&["--nation"], "analyst", "national-analyst");
    // Names are unique within a scope, not across scopes.
    hub.add_scoped_client(&["--council", "south"], "operator", "council-admin");
    // Roles a scope cannot hold are refused, naming the scope.
    for (scope, role) in [
        (&["--council", "north"][..], "caseworker"),
        (&["--council", "north"][..], "transfer-officer"),
        (&["--nation"][..], "council-admin"),
        (&["--municipality", NORTH_A][..], "national-analyst"),
    ] {
        let mut args = vec!["admin", "client", "add", "--name", "x", "--role", role];
        args.extend(scope);
        let err = cli_err(&hub, &args);
        assert!(err.contains("cannot hold"), "{scope:?} {role}: {err}");
    }
    let unknown = cli_err(
        &hub,
        &[
            "admin",
            "client",
            "add",
            "--council",
            "east",
            "--name",
            "x",
            "--role",
            "council-admin",
        ],
    );
    assert!(
        unknown.contains("council:east is not registered"),
        "{unknown}"
    );
    let both = cli_err(
        &hub,
        &[
            "admin",
            "client",
            "add",
            "--nation",
            "--council",
            "north",
            "--name",
            "x",
            "--role",
            "council-admin",
        ],
    );
    assert!(both.contains("cannot be used with"), "{both}");
    let twice = cli_err(
        &hub,
        &[
            "admin",
            "client",
            "add",
            "--council",
            "north",
            "--name",
            "operator",
            "--role",
            "council-admin",
        ],
    );
    assert!(twice.contains("already exists in council:north"), "{twice}");

    let list = cli_ok(&hub, &["admin", "client", "list"]);
    for expected in [
        format!("municipality:{NORTH_A}\tdesk\tcaseworker\t*\tactive"),
        "council:north\toperator\tcouncil-admin\t*\tactive".into(),
        "council:south\toperator\tcouncil-admin\t*\tactive".into(),
        "nation\tanalyst\tnational-analyst\t*\tactive".into(),
    ] {
        assert!(list.contains(&expected), "{expected} in\n{list}");
    }
    // Rotation and revocation name the client by its scope.
    let new_token = cli_ok(
        &hub,
        &["admin", "token", "rotate", "--nation", "--name", "analyst"],
    );
    assert_eq!(
        hub.get("/v1/indicators/releases", Some(new_token.trim()))
            .status,
        200
    );
    cli_ok(
        &hub,
        &[
            "admin",
            "client",
            "revoke",
            "--council",
            "south",
            "--name",
            "operator",
        ],
    );
    let list = cli_ok(&hub, &["admin", "client", "list"]);
    assert!(
        list.contains("council:south\toperator\tcouncil-admin\t*\trevoked"),
        "{list}"
    );
    assert!(
        list.contains("council:north\toperator\tcouncil-admin\t*\tactive"),
        "{list}"
    );
}

both_backends!(clients_are_bound_to_a_scope);

fn push_child(hub: &Hub, town: &str, token: &str, resident_no: &str) {
    let town = common::Town {
        code: town.into(),
        token: token.into(),
    };
    let pushed = hub.push(
        &town,
        &[json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("s-{resident_no}"),
            "subject": {"resident_no": resident_no}, "effective_date": "2019-04-01",
            "household_no": "H-1", "name": "北 花子", "birth_date": "2019-04-01", "sex": 2,
            "role": "child",
        })],
    );
    assert_eq!(pushed["rejected"], 0, "{pushed}");
}

fn client_names(listed: &Value) -> Vec<String> {
    listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["scope"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

const READ: [(&str, &str); 2] = [("X-Purpose", "case_handling"), ("X-Actor", "ops-1")];

/// A child the caller may not see answers exactly like a child that does not exist.
fn assert_hidden_like_missing(hub: &Hub, token: &str, town: &str, who: &str) {
    let profile = |resident_no: &str| -> Resp {
        hub.get_with(
            &format!("/v1/municipalities/{town}/subjects/{resident_no}"),
            Some(token),
            &READ,
        )
    };
    let hidden = profile(CHILD);
    assert_eq!(hidden.status, 404, "{who}: {}", hidden.text());
    common::assert_same_answer(&hidden, &profile("R-NOBODY"), who);
}

fn a_council_operator_sees_its_own_council_and_no_child(backend: Backend) {
    let hub = Hub::start(backend);
    councils(&hub);
    let source_a = hub.add_client(NORTH_A, "juki", "source,caseworker", None);
    hub.add_client(NORTH_B, "desk", "caseworker", None);
    hub.add_client(SOUTH_C, "desk", "caseworker", None);
    push_child(&hub, NORTH_A, &source_a, CHILD);
    let north = hub.add_scoped_client(&["--council", "north"], "operator", "council-admin");
    let south = hub.add_scoped_client(&["--council", "south"], "operator", "council-admin");
    let nation = hub.add_scoped_client(&["--nation"], "analyst", "national-analyst");

    let listed = hub.get("/v1/councils/north/clients", Some(&north)).ok();
    assert_eq!(listed["council"]["name"], "北部広域連携協議会");
    assert_eq!(listed["council"]["operator_contact"], "ops@north.invalid");
    assert_eq!(listed["council"]["towns"], json!([NORTH_A, NORTH_B]));
    assert_eq!(
        client_names(&listed),
        [
            format!("municipality:{NORTH_A} juki"),
            format!("municipality:{NORTH_B} desk"),
            "council:north operator".into(),
        ]
    );
    assert!(!listed.to_string().contains("token"), "{listed}");
    // Another council, and councils for the nation, answer like a council that does not exist.
    let missing = hub.get("/v1/councils/nowhere/clients", Some(&north));
    missing.problem(404, "not_found");
    for (who, token, council) in [
        ("north operator", &north, "south"),
        ("south operator", &south, "north"),
        ("national analyst", &nation, "north"),
    ] {
        let refused = hub.get(&format!("/v1/councils/{council}/clients"), Some(token));
        let reference = hub.get("/v1/councils/nowhere/clients", Some(token));
        common::assert_same_answer(&refused, &reference, who);
    }
    // Personal routes: the council's operator and the nation's analyst never see a child,
    // even of the council's own towns.
    assert_hidden_like_missing(&hub, &north, NORTH_A, "north operator");
    assert_hidden_like_missing(&hub, &nation, NORTH_A, "national analyst");
    // The caseworker of the town does see it (the child is there).
    assert_eq!(
        hub.get_with(
            &format!("/v1/municipalities/{NORTH_A}/subjects/{CHILD}"),
            Some(&source_a),
            &READ
        )
        .status,
        200
    );
    // The council's towns are looked up on every call: a town that leaves takes its clients
    // out of the operator's view at once.
    cli_ok(
        &hub,
        &["admin", "council", "member", "remove", "north", NORTH_B],
    );
    let listed = hub.get("/v1/councils/north/clients", Some(&north)).ok();
    assert_eq!(
        client_names(&listed),
        [
            format!("municipality:{NORTH_A} juki"),
            "council:north operator".into()
        ]
    );
    // The refusals are audited with their reason (the analyst asked for north and for a
    // council that does not exist: both are beyond its scope), in the hub's chain.
    let refused = hub.raw_db().strings(
        "SELECT result || ' ' || chain AS v FROM audit_log \
         WHERE action = 'council.clients' AND client_name = 'analyst'",
    );
    assert_eq!(refused, ["denied:scope hub", "denied:scope hub"]);
}

both_backends!(a_council_operator_sees_its_own_council_and_no_child);

/// The migration's own SQL, to take a database back to the shape it had before scopes.
fn scopes_down_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            include_str!("../../migrations/sqlite/2026-12-04-000050_scopes/down.sql")
        }
        Backend::Postgres => {
            include_str!("../../migrations/postgres/2026-12-04-000050_scopes/down.sql")
        }
    }
}

/// Clients registered before scopes existed (each under a town) are migrated in place: a
/// `council-admin` of a council's town becomes the council's client, a `national-analyst` the
/// nation's; everyone else keeps their town; tokens keep working.
fn clients_registered_under_towns_are_migrated(backend: Backend) {
    let hub = Hub::start(backend);
    // Towns registered the old way: the council only a label.
    for (code, name, council) in [
        (NORTH_A, "北A町", Some("north")),
        (NORTH_B, "北B町", Some("north")),
        (LONE_D, "単独D市", None),
    ] {
        let mut args = vec!["admin", "municipality", "add", code, name];
        if let Some(council) = council {
            args.extend(["--council", council]);
        }
        cli_ok(&hub, &args);
    }
    let mut db = hub.raw_db();
    db.batch(scopes_down_sql(backend));
    db.execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261204000050'");
    let token = |n: u8| format!("khub_{}", format!("{n:02}").repeat(32));
    for (id, town, name, roles) in [
        (1, NORTH_A, "admin", "council-admin"),
        (2, NORTH_A, "analyst", "national-analyst"),
        (3, NORTH_A, "juki", "source,caseworker"),
        (4, LONE_D, "admin", "council-admin"),
    ] {
        // Inserted in id order, so the database numbers them as listed.
        db.execute(&format!(
            "INSERT INTO clients (municipality_code, name, roles, token_hash, created_at) \
             VALUES ('{town}', '{name}', '{roles}', '{}', '2026-11-30T00:00:00Z')",
            kodomo_hub::auth::hash_token(&token(id))
        ));
    }
    drop(db);
    // The next command migrates the database.
    let list = cli_ok(&hub, &["admin", "client", "list"]);
    for expected in [
        "1\tcouncil:north\tadmin\tcouncil-admin\t*\tactive".to_string(),
        "2\tnation\tanalyst\tnational-analyst\t*\tactive".into(),
        format!("3\tmunicipality:{NORTH_A}\tjuki\tsource,caseworker\t*\tactive"),
        format!("4\tmunicipality:{LONE_D}\tadmin\tcouncil-admin\t*\tactive"),
    ] {
        assert!(list.contains(&expected), "{expected} in\n{list}");
    }
    let councils = cli_ok(&hub, &["admin", "council", "list"]);
    assert!(
        councils.contains(&format!("north\tnorth\t\t{NORTH_A},{NORTH_B}")),
        "{councils}"
    );
    // The migrated tokens work with their new scopes.
    let listed = hub.get("/v1/councils/north/clients", Some(&token(1))).ok();
    assert_eq!(
        client_names(&listed),
        [
            "council:north admin",
            &format!("municipality:{NORTH_A} juki")
        ]
    );
    push_child(&hub, NORTH_A, &token(3), CHILD);
    assert_hidden_like_missing(&hub, &token(1), NORTH_A, "migrated council admin");
    assert_hidden_like_missing(&hub, &token(2), NORTH_A, "migrated national analyst");
    hub.get("/v1/councils/north/clients", Some(&token(2)))
        .problem(404, "not_found");
    // New clients get fresh ids after the migrated ones.
    hub.add_client(NORTH_B, "desk", "caseworker", None);
    let list = cli_ok(&hub, &["admin", "client", "list"]);
    assert!(
        list.contains(&format!("5\tmunicipality:{NORTH_B}\tdesk")),
        "{list}"
    );
}

both_backends!(clients_registered_under_towns_are_migrated);

/// Rejected records of a push response per error code (each record once per code).
fn codes_of(pushed: &Value) -> std::collections::BTreeMap<String, i64> {
    let mut codes = std::collections::BTreeMap::new();
    for result in pushed["results"].as_array().expect("results") {
        if result["status"] != "rejected" {
            continue;
        }
        let mut seen: Vec<String> = result["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["code"].as_str().expect("code").to_string())
            .collect();
        seen.sort();
        seen.dedup();
        for code in seen {
            *codes.entry(code).or_insert(0) += 1;
        }
    }
    codes
}

fn town_of<'a>(figures: &'a Value, code: &str) -> &'a Value {
    figures["towns"]
        .as_array()
        .expect("towns")
        .iter()
        .find(|t| t["municipality_code"] == code)
        .unwrap_or_else(|| panic!("{code} in {figures}"))
}

fn source_of<'a>(town: &'a Value, source: &str) -> &'a Value {
    town["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == source)
        .unwrap_or_else(|| panic!("{source} in {town}"))
}

/// The operator's 2 a.m. view: per town and per source, last push, records per day,
/// rejections by code, identity queue, open transfers and feed lag — its own towns only, no
/// personal data — and the same figures in /metrics with a `municipality` label.
fn a_council_operator_reads_its_towns_operations(backend: Backend) {
    let hub = Hub::start(backend);
    councils(&hub);
    let juki = hub.add_client(NORTH_A, "juki", "source,caseworker", None);
    let school = hub.add_client(NORTH_A, "school-sys", "source", None);
    let south_source = hub.add_client(SOUTH_C, "juki", "source", None);
    let officer = hub.add_client(NORTH_A, "officer", "transfer-officer", None);
    let town_a = common::Town {
        code: NORTH_A.into(),
        token: juki.clone(),
    };
    // Three children, and two records refused for different reasons.
    let child = |id: &str, resident_no: &str| {
        json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": id,
            "subject": {"resident_no": resident_no}, "effective_date": "2019-04-01",
            "household_no": "H-OPS", "name": "運用 花子", "birth_date": "2019-04-01", "sex": 2,
            "role": "child",
        })
    };
    let mut missing_date = child("bad-1", "R-BAD-1");
    missing_date
        .as_object_mut()
        .unwrap()
        .remove("effective_date");
    let mut bad_sex = child("bad-2", "R-BAD-2");
    bad_sex["sex"] = json!("girl");
    let pushed = hub.push(
        &town_a,
        &[
            child("ops-1", CHILD),
            child("ops-2", "R-OPS-2"),
            child("ops-3", "R-OPS-3"),
            missing_date,
            bad_sex,
        ],
    );
    assert_eq!(pushed["rejected"], 2, "{pushed}");
    let rejected_codes = codes_of(&pushed);
    assert!(!rejected_codes.is_empty(), "{pushed}");
    // A school record naming no resident number waits in the identity queue.
    let unknown = hub.push(
        &common::Town {
            code: NORTH_A.into(),
            token: school.clone(),
        },
        &[json!({
            "record_type": "school-attendance", "schema_version": "1.0",
            "source_record_id": "sa-unknown",
            "subject": {"basic_info": {"name": "不明 次郎", "birth_date": "2018-01-01", "sex": 1}},
            "effective_date": "2026-03-20", "school_year": 2025, "period": "year",
            "absence_days": 40,
        })],
    );
    assert_eq!(unknown["rejected"], 0, "{unknown}");
    hub.push(
        &common::Town {
            code: SOUTH_C.into(),
            token: south_source,
        },
        &[child("south-1", "R-SOUTH-1")],
    );
    // A transfer from A to B, open.
    let offered = hub.post(
        "/v1/transfers",
        Some(&officer),
        Some("application/json"),
        &[("X-Actor", "officer-1")],
        json!({"destination": NORTH_B, "children": [CHILD], "legal_basis": "test",
               "reason": "moved", "escalate_to": "chief"})
        .to_string(),
    );
    assert_eq!(offered.status, 201, "{}", offered.text());
    // A consumer reads the first change of A's feed and stops.
    let page = hub
        .get_with(
            &format!("/v1/municipalities/{NORTH_A}/changes?after=0&limit=1"),
            Some(&juki),
            &READ,
        )
        .ok();
    let cursor = page["next_cursor"].as_i64().expect("cursor");

    let north = hub.add_scoped_client(&["--council", "north"], "operator", "council-admin");
    let response = hub.get("/v1/councils/north/operations", Some(&north));
    let text = response.text();
    let figures = response.ok();
    for personal in [CHILD, "運用 花子", "不明 次郎", "H-OPS", "2019-04-01"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let towns: Vec<&str> = figures["towns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["municipality_code"].as_str().unwrap())
        .collect();
    assert_eq!(towns, [NORTH_A, NORTH_B], "its own towns only");
    let a = town_of(&figures, NORTH_A);
    let juki_figures = source_of(a, "juki");
    assert!(juki_figures["last_push_at"].as_str().is_some(), "{a}");
    let days = juki_figures["days"].as_array().expect("days");
    assert_eq!(days.len(), 1, "{a}");
    assert_eq!(days[0]["received"], 5);
    assert_eq!(days[0]["rejected"], 2);
    assert_eq!(days[0]["rejection_rate"], 0.4);
    assert_eq!(days[0]["rejections_by_code"], json!(rejected_codes));
    assert_eq!(
        days[0]["day"],
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    );
    let school_figures = source_of(a, "school-sys");
    assert_eq!(
        school_figures["identity_pending"].as_i64().unwrap()
            + school_figures["identity_review"].as_i64().unwrap(),
        1,
        "{school_figures}"
    );
    assert_eq!(
        a["transfers"],
        json!({"outgoing": 1, "incoming": 0, "escalated": 0})
    );
    let b = town_of(&figures, NORTH_B);
    assert_eq!(
        b["transfers"],
        json!({"outgoing": 0, "incoming": 1, "escalated": 0})
    );
    assert_eq!(b["sources"], json!([]));
    // The consumer stopped after one change: the rest of A's versions are its lag.
    let consumers = a["feed_consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 1, "{a}");
    assert_eq!(consumers[0]["client"], "juki");
    assert_eq!(consumers[0]["cursor"], cursor);
    let versions = hub.raw_db().strings(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS v FROM record_versions WHERE municipality_code = '{NORTH_A}'"
    ));
    let versions: i64 = versions[0].parse().unwrap();
    assert!(versions >= 4, "{versions}");
    assert_eq!(consumers[0]["lag"], versions - 1);

    // Another council's operator, and the nation, see no such council; bad input is a problem.
    let south = hub.add_scoped_client(&["--council", "south"], "operator", "council-admin");
    let nation = hub.add_scoped_client(&["--nation"], "analyst", "national-analyst");
    for (who, token) in [("south operator", &south), ("national analyst", &nation)] {
        common::assert_same_answer(
            &hub.get("/v1/councils/north/operations", Some(token)),
            &hub.get("/v1/councils/nowhere/operations", Some(token)),
            who,
        );
        hub.get("/v1/councils/north/operations", Some(token))
            .problem(404, "not_found");
    }
    let bad = hub
        .get("/v1/councils/north/operations?days=0", Some(&north))
        .problem(400, "invalid_query");
    assert!(bad["detail"].as_str().unwrap().contains("days"), "{bad}");
    // A town's caseworker is no operator either.
    hub.get("/v1/councils/north/operations", Some(&juki))
        .problem(404, "not_found");

    // The same figures in Prometheus, labelled by municipality.
    let metrics = hub.get("/metrics", None).text();
    for line in [
        format!(
            "kodomo_hub_source_records_received_total{{municipality=\"{NORTH_A}\",source=\"juki\"}} 5"
        ),
        format!(
            "kodomo_hub_source_records_received_total{{municipality=\"{SOUTH_C}\",source=\"juki\"}} 1"
        ),
        format!("kodomo_hub_transfers_open{{municipality=\"{NORTH_A}\",direction=\"outgoing\"}} 1"),
        format!("kodomo_hub_transfers_open{{municipality=\"{NORTH_B}\",direction=\"incoming\"}} 1"),
        format!("kodomo_hub_transfers_escalated{{municipality=\"{NORTH_A}\"}} 0"),
        format!(
            "kodomo_hub_feed_lag_versions{{municipality=\"{NORTH_A}\",consumer=\"juki\"}} {}",
            versions - 1
        ),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    for (code, n) in &rejected_codes {
        let line = format!(
            "kodomo_hub_source_records_rejected_total{{municipality=\"{NORTH_A}\",source=\"juki\",code=\"{code}\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "kodomo_hub_source_last_push_timestamp_seconds{{municipality=\"{NORTH_A}\",source=\"juki\"}} "
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains(CHILD) && !metrics.contains("花子"),
        "{metrics}"
    );
}

both_backends!(a_council_operator_reads_its_towns_operations);
