//! A synthetic joint-use council with realistic, entirely invented children and families.
//! Never real people. The same generator feeds the benchmarks.

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};

use crate::auth::{self, Role};
use crate::ingest::{Candidate, Ingestor, ResultDetail, Submission, chunked};
use crate::store::{DbConn, StoreResult, clients};

/// Deterministic xorshift generator: the same seed gives the same council.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SURNAMES: [(&str, &str); 12] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("髙橋", "タカハシ"),
    ("田中", "タナカ"),
    ("渡邉", "ワタナベ"),
    ("伊藤", "イトウ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("山﨑", "ヤマザキ"),
    ("齋藤", "サイトウ"),
];
const GIVEN: [(&str, &str, i64); 12] = [
    ("蓮", "レン", 1),
    ("陽翔", "ハルト", 1),
    ("蒼", "アオイ", 1),
    ("湊", "ミナト", 1),
    ("悠真", "ユウマ", 1),
    ("大和", "ヤマト", 1),
    ("陽葵", "ヒマリ", 2),
    ("凛", "リン", 2),
    ("結菜", "ユイナ", 2),
    ("芽依", "メイ", 2),
    ("紬", "ツムギ", 2),
    ("咲良", "サクラ", 2),
];
const ADULT_GIVEN: [(&str, &str, i64); 4] = [
    ("美咲", "ミサキ", 2),
    ("由美", "ユミ", 2),
    ("健太", "ケンタ", 1),
    ("大輔", "ダイスケ", 1),
];

/// A synthetic town of the demo council.
pub struct DemoTown {
    pub code: String,
    pub name: &'static str,
    pub population: i64,
}

/// Municipality code with its check digit appended to a five-digit base.
pub fn with_check_digit(base: &str) -> String {
    let sum: u32 = base
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    format!("{base}{}", (11 - sum % 11) % 10)
}

pub fn towns() -> Vec<DemoTown> {
    [
        ("11901", "みどり町", 18_500),
        ("11902", "さくら村", 1_800),
        ("11903", "あおば町", 32_000),
    ]
    .into_iter()
    .map(|(base, name, population)| DemoTown {
        code: with_check_digit(base),
        name,
        population,
    })
    .collect()
}

/// Sources of the demo (one per department system) and the record types each pushes.
pub const SOURCES: [(&str, &[&str]); 5] = [
    ("juki", &["subject"]),
    (
        "boshi-hoken",
        &[
            "infant-checkup",
            "pregnancy-notification",
            "prenatal-checkup",
            "postnatal-checkup",
        ],
    ),
    (
        "fukushi",
        &[
            "public-assistance",
            "child-rearing-allowance",
            "mental-health-handbook",
            "disabled-child-support",
        ],
    ),
    (
        "kodomo-center",
        &[
            "child-protection-case",
            "temporary-protection",
            "support-outcome",
        ],
    ),
    (
        "koumu",
        &[
            "school-attendance",
            "school-health-exam",
            "school-wellbeing-check",
        ],
    ),
];

fn source_of(record_type: &str) -> &'static str {
    SOURCES
        .iter()
        .find(|(_, types)| types.contains(&record_type))
        .map(|(name, _)| *name)
        .expect("every record type has a demo source")
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Generates households and their records for one town.
pub struct Generator {
    rng: Rng,
    reference: NaiveDate,
    records: Vec<Value>,
    serial: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            reference: NaiveDate::from_ymd_opt(2026, 3, 31).expect("valid date"),
            records: Vec::new(),
            serial: 0,
        }
    }

    fn push(&mut self, record_type: &str, about: &str, effective: NaiveDate, fields: Value) {
        self.serial += 1;
        let mut record = json!({
            "record_type": record_type,
            "schema_version": "1.0",
            "source_record_id": format!("{}-{:07}", source_of(record_type), self.serial),
            "subject": {"resident_no": about},
            "effective_date": date(effective),
        });
        if let (Some(target), Value::Object(fields)) = (record.as_object_mut(), fields) {
            target.extend(fields);
        }
        self.records.push(record);
    }

    fn days_ago(&mut self, max: u64) -> NaiveDate {
        self.reference - Duration::days(self.rng.below(max) as i64 + 1)
    }

    /// One household: guardians, children and every kind of record about them.
    pub fn household(&mut self, town_code: &str, household: u64) {
        let (surname, surname_kana) = *self.rng.pick(&SURNAMES);
        let household_no = format!("H{town_code}{household:05}");
        let address = format!(
            "{}丁目{}番{}号",
            self.rng.below(5) + 1,
            self.rng.below(30) + 1,
            self.rng.below(20) + 1
        );
        let mother_no = format!("{town_code}{household:05}01");
        let (mother_name, mother_kana, _) = ADULT_GIVEN[self.rng.below(2) as usize];
        let mother_birth = self.reference - Duration::days(365 * 28 + self.rng.below(3650) as i64);
        self.push(
            "subject",
            &mother_no,
            mother_birth,
            json!({
                "household_no": household_no, "name": format!("{surname} {mother_name}"),
                "name_kana": format!("{surname_kana} {mother_kana}"), "birth_date": date(mother_birth),
                "sex": 2, "address": address, "role": "guardian",
            }),
        );
        let children = 1 + self.rng.below(3);
        let mut youngest_birth = None;
        for child in 0..children {
            let (given, given_kana, sex) = *self.rng.pick(&GIVEN);
            let birth = self.reference - Duration::days(self.rng.below(365 * 15) as i64 + 30);
            youngest_birth = youngest_birth.max(Some(birth));
            let resident_no = format!("{town_code}{household:05}1{child}");
            let support_measure = self.rng.chance(2);
            self.push(
                "subject",
                &resident_no,
                birth,
                json!({
                    "household_no": household_no, "name": format!("{surname} {given}"),
                    "name_kana": format!("{surname_kana} {given_kana}"), "birth_date": date(birth),
                    "sex": sex, "address": address, "role": "child",
                    "guardians": [mother_no], "support_measure": support_measure,
                }),
            );
            self.child_records(&resident_no, birth);
        }
        if let Some(birth) = youngest_birth.filter(|b| (self.reference - *b).num_days() < 365 * 3) {
            self.maternal_records(&mother_no, birth);
        }
        self.household_records(&mother_no);
    }

    fn child_records(&mut self, child: &str, birth: NaiveDate) {
        let age_days = (self.reference - birth).num_days();
        for (checkup, due_days) in [("4m", 120), ("1y6m", 550), ("3y", 1100)] {
            if age_days < due_days + 30 {
                continue;
            }
            let on = birth + Duration::days(due_days + self.rng.below(25) as i64);
            let attended = !self.rng.chance(6);
            let mut fields = json!({"checkup": checkup, "attended": attended});
            if attended {
                fields["attended_on"] = json!(date(on));
                for item in ["hit_emotionally", "left_alone_at_home", "long_without_food"] {
                    fields[item] = json!(self.rng.chance(4));
                }
                if checkup != "3y" {
                    fields["covered_mouth"] = json!(self.rng.chance(2));
                    fields["shook_violently"] = json!(self.rng.chance(2));
                }
                if checkup != "4m" {
                    fields["weight_percentile"] = json!(self.rng.below(99) + 1);
                }
            }
            self.push("infant-checkup", child, on, fields);
        }
        if age_days > 365 * 6 + 180 {
            let year = 2025;
            for term in ["term1", "term2", "term3"] {
                let school_days = 60 + self.rng.below(15);
                let absence = if self.rng.chance(8) {
                    8 + self.rng.below(20)
                } else {
                    self.rng.below(4)
                };
                let on = NaiveDate::from_ymd_opt(year + 1, 3, 20).expect("date");
                let late = self.rng.below(5);
                let fields = json!({"school_year": year, "period": term, "absence_days": absence,
                                    "late_days": late, "school_days": school_days});
                self.push("school-attendance", child, on, fields);
            }
            let on = NaiveDate::from_ymd_opt(2025, 4, 20 + self.rng.below(8) as u32).expect("d");
            let age = (on - birth).num_days() as f64 / 365.0;
            let weight = 7.0 + age * 2.6 + self.rng.below(60) as f64 / 10.0;
            let obesity = self.rng.below(50) as i64 - 25;
            let fields = json!({"examined_on": date(on), "weight_kg": (weight * 10.0).round() / 10.0,
                                "height_cm": (80.0 + age * 5.8).round(), "obesity_degree": obesity});
            self.push("school-health-exam", child, on, fields);
            let on = self.days_ago(300);
            let result =
                *self
                    .rng
                    .pick(&["no_concern", "no_concern", "no_concern", "watch", "concern"]);
            self.push(
                "school-wellbeing-check",
                child,
                on,
                json!({"checked_on": date(on), "instrument": "こころの健康観察", "result": result}),
            );
        }
        if self.rng.chance(4) {
            let on = self.days_ago(900).max(birth);
            let closed = self.rng.chance(30).then(|| date(on + Duration::days(60)));
            let mut fields = json!({"registered_on": date(on), "case_class": *self.rng.pick(&["protected_child", "support_needed_child"])});
            if let Some(closed) = closed.filter(|c| c.as_str() <= date(self.reference).as_str()) {
                fields["closed_on"] = json!(closed);
            }
            self.push("child-protection-case", child, on, fields);
            if self.rng.chance(30) {
                let start = on + Duration::days(10);
                self.push(
                    "temporary-protection",
                    child,
                    start,
                    json!({"started_on": date(start), "ended_on": date(start + Duration::days(21))}),
                );
            }
        }
        if self.rng.chance(3) {
            let on = self.days_ago(700).max(birth);
            let certificate = format!("{:010}", self.rng.below(10_000_000_000));
            self.push(
                "disabled-child-support",
                child,
                on,
                json!({"decided_on": date(on), "certificate_no": certificate}),
            );
        }
        if self.rng.chance(10) {
            let on = self.days_ago(400).max(birth);
            let stages = ["extracted", "reviewed", "support_needed", "support_started"];
            let reached = 1 + self.rng.below(4) as usize;
            let difficulty = *self.rng.pick(&[
                "abuse",
                "poverty",
                "school_refusal",
                "young_carer",
                "postpartum_depression",
            ]);
            for (step, stage) in stages.iter().take(reached).enumerate() {
                let at = on + Duration::days(step as i64 * 7);
                let at = at.min(self.reference);
                let mut fields = json!({"decided_on": date(at), "stage": stage, "difficulty_types": [difficulty]});
                if *stage == "reviewed" {
                    fields["review_outcome"] = json!(if reached > 2 {
                        "preventive_support"
                    } else {
                        "watch"
                    });
                }
                self.push("support-outcome", child, at, fields);
            }
        }
    }

    fn maternal_records(&mut self, mother: &str, child_birth: NaiveDate) {
        let notified = child_birth - Duration::days(230 - self.rng.below(60) as i64);
        let weeks = ((280 - (child_birth - notified).num_days()) / 7).clamp(4, 40);
        self.push(
            "pregnancy-notification",
            mother,
            notified,
            json!({"notified_on": date(notified), "gestational_weeks": weeks}),
        );
        for visit in 0..3 {
            let on = notified + Duration::days(30 * (visit + 1));
            let attended = !self.rng.chance(5);
            let mut fields = json!({"attended": attended});
            if attended {
                fields["visited_on"] = json!(date(on));
            }
            self.push("prenatal-checkup", mother, on, fields);
        }
        let on = child_birth + Duration::days(14 + self.rng.below(14) as i64);
        if on <= self.reference {
            let total = if self.rng.chance(12) {
                9 + self.rng.below(15)
            } else {
                self.rng.below(9)
            };
            let item10 = if total >= 9 && self.rng.chance(30) {
                1
            } else {
                0
            };
            self.push(
                "postnatal-checkup",
                mother,
                on,
                json!({"visited_on": date(on), "epds_total": total, "epds_item10": item10}),
            );
        }
    }

    fn household_records(&mut self, guardian: &str) {
        if self.rng.chance(6) {
            let on = self.days_ago(1500);
            self.push(
                "public-assistance",
                guardian,
                on,
                json!({"started_on": date(on)}),
            );
        }
        if self.rng.chance(15) {
            let on = NaiveDate::from_ymd_opt(self.reference.year() - 1, 11, 1).expect("date");
            let category = *self.rng.pick(&["full", "partial", "suspended"]);
            self.push(
                "child-rearing-allowance",
                guardian,
                on,
                json!({"effective_on": date(on), "category": category}),
            );
        }
        if self.rng.chance(3) {
            let on = self.days_ago(1000);
            let code = *self.rng.pick(&["F32", "F41.1", "F43"]);
            let fields = json!({"issued_on": date(on), "main_disorder_code": code, "grade": 2});
            self.push("mental-health-handbook", guardian, on, fields);
        }
    }

    pub fn take_records(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.records)
    }
}

/// The demo council's code.
pub const DEMO_COUNCIL: &str = "demo-council";

/// Tokens made for the demo, to print once: what each client is registered under, its name
/// and its token.
pub struct DemoTokens {
    pub lines: Vec<(auth::Binding, String, String)>,
}

/// Create the council, its clients, and push every town's synthetic records through the
/// normal ingest path. Returns the tokens made.
pub fn load(
    conn: &mut DbConn,
    ingestor: &Ingestor,
    households_per_town: u64,
) -> Result<DemoTokens, crate::ingest::IngestError> {
    let mut tokens = DemoTokens { lines: Vec::new() };
    clients::add_council(
        conn,
        DEMO_COUNCIL,
        "デモ広域連携協議会",
        Some("operator@demo-council.invalid"),
        "demo",
    )?;
    for (t, town) in towns().iter().enumerate() {
        clients::add_municipality(
            conn,
            &town.code,
            town.name,
            Some(DEMO_COUNCIL),
            Some(town.population),
            "demo",
        )?;
        for (source, types) in SOURCES {
            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            add_demo_client(
                conn,
                &town.code,
                source,
                &[Role::Source],
                Some(&types),
                &mut tokens,
            )?;
        }
        add_demo_client(
            conn,
            &town.code,
            "caseworker",
            &[Role::Caseworker],
            None,
            &mut tokens,
        )?;
        // Every other role, so each section of the README can be tried.
        let staff: [(&str, &[Role]); 3] = [
            ("transfer-officer", &[Role::TransferOfficer]),
            // The desk that handles DV cases: sees children under a support measure.
            (
                "dv-desk",
                &[
                    Role::Caseworker,
                    Role::TransferOfficer,
                    Role::SupportMeasureReader,
                ],
            ),
            ("auditor", &[Role::Auditor]),
        ];
        for (name, roles) in staff {
            add_demo_client(conn, &town.code, name, roles, None, &mut tokens)?;
        }
        ingest_households(
            conn,
            ingestor,
            &town.code,
            households_per_town,
            t as u64 + 1,
        )?;
    }
    // The council's operator and national staff, bound to their own scopes.
    add_scoped_demo_client(
        conn,
        auth::Binding::Council(DEMO_COUNCIL.into()),
        "council-admin",
        &[Role::CouncilAdmin],
        None,
        &mut tokens,
    )?;
    add_scoped_demo_client(
        conn,
        auth::Binding::Nation,
        "national-analyst",
        &[Role::NationalAnalyst],
        None,
        &mut tokens,
    )?;
    Ok(tokens)
}

/// Generate `households` synthetic households of one town (seeded, so the same every time) and
/// ingest them through the normal path, each record type from its own source.
pub fn ingest_households(
    conn: &mut DbConn,
    ingestor: &Ingestor,
    town_code: &str,
    households: u64,
    seed: u64,
) -> Result<(), crate::ingest::IngestError> {
    let mut generator = Generator::new(seed);
    for household in 1..=households {
        generator.household(town_code, household);
    }
    let records = generator.take_records();
    for (source, _) in SOURCES {
        let submission = Submission {
            municipality: town_code.to_string(),
            source: source.to_string(),
            allowed_types: None,
            client_id: None,
        };
        let mine = records
            .iter()
            .filter(|r| {
                r["source_record_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&format!("{source}-")))
            })
            .enumerate()
            .map(|(index, record)| Candidate {
                index,
                row: None,
                parsed: Ok(record.clone()),
            });
        let report = ingestor.ingest(
            conn,
            &submission,
            false,
            ResultDetail::Rejected,
            chunked(mine),
        )?;
        if let Some(bad) = report.results.first() {
            panic!("demo generated an invalid record: {bad:?}");
        }
    }
    crate::store::records::analyze_after_bulk_load(conn)?;
    Ok(())
}

fn add_demo_client(
    conn: &mut DbConn,
    municipality: &str,
    name: &str,
    roles: &[Role],
    record_types: Option<&[String]>,
    tokens: &mut DemoTokens,
) -> StoreResult<()> {
    let binding = auth::Binding::Municipality(municipality.to_string());
    add_scoped_demo_client(conn, binding, name, roles, record_types, tokens)
}

fn add_scoped_demo_client(
    conn: &mut DbConn,
    binding: auth::Binding,
    name: &str,
    roles: &[Role],
    record_types: Option<&[String]>,
    tokens: &mut DemoTokens,
) -> StoreResult<()> {
    let (token, hash) = auth::new_token();
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    clients::add_client(
        conn,
        &clients::NewClient {
            binding: &binding,
            name,
            roles: &roles,
            record_types,
            token_hash: &hash,
            cert_fingerprint: None,
        },
        "demo",
    )?;
    tokens.lines.push((binding, name.to_string(), token));
    Ok(())
}
