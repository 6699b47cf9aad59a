//! One town's counts for a fiscal year, from what the town holds: its subjects, its current
//! records, its opt-outs, and the transfers it sent or received. Pure: no database, no HTTP.
//!
//! Definitions (also in the README):
//! - **In scope in fiscal year X**: a subject of the town who was 0–17 on some day of the
//!   year (born on or before 31 March X+1, 18th birthday after 1 April X), not registered as
//!   moved in after the year or moved out before it (`moved_in_on`, `moved_out_on`, or an
//!   accepted transfer out decided before the year), and not opted out (不同意).
//! - **Basic items**: the hub's applicability rules (the same evaluator as the child profile),
//!   over the child's and its guardians' current records effective on or before 31 March X+1.
//! - **Funnel**: in-scope children with a support-outcome record of the town's own (not
//!   copied by a transfer) decided in the year, counted at every stage up to the furthest one
//!   reached, in total and per difficulty type named on those records.
//! - **Transfers**: transfers the town offered in the year (a cohort), with how many of them
//!   were accepted, declined, or escalated, and the days from offer to acceptance.
//! - **Continuity**: children of transfers the town accepted in the year, and those with a
//!   support-outcome record of the town's own decided within 90 days of acceptance.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Months, NaiveDate};
use serde_json::Value;

use super::table::{
    self, ALL, ANY, CHILDREN_IN_SCOPE, CHILDREN_WITH_ITEM, MOVED_ACCEPTED, MOVED_SUPPORTED,
    Measure, TRANSFERS_ACCEPTED, TRANSFERS_DECLINED, TRANSFERS_ESCALATED, TRANSFERS_SENT,
    TownCounts,
};
use super::{Catalogue, FiscalYear, SUPPORT_OUTCOME};
use crate::schema::RuleSet;
use crate::schema::applicability::EvaluatedRecord;
use crate::transfer::TransferStatus;

/// Days after acceptance within which the destination's support counts as continued.
pub const CONTINUITY_DAYS: i64 = 90;

/// A subject of the town.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub resident_no: String,
    pub birth_date: Option<NaiveDate>,
    pub household_no: Option<String>,
    pub role: Option<String>,
    pub guardians: Vec<String>,
    pub moved_in_on: Option<NaiveDate>,
    pub moved_out_on: Option<NaiveDate>,
}

/// A current (not retracted) record of the town.
#[derive(Debug, Clone)]
pub struct Fact {
    pub about: String,
    pub record_type: String,
    pub source_record_id: String,
    pub effective_date: String,
    pub data: Value,
    /// Copied into the town by an accepted transfer (`record_provenance`).
    pub transferred: bool,
}

/// A child of a transfer, with the destination's resident number once accepted.
#[derive(Debug, Clone)]
pub struct MovedChild {
    pub origin_resident_no: String,
    pub destination_resident_no: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TransferFact {
    pub origin: String,
    pub destination: Option<String>,
    pub status: TransferStatus,
    pub offered_on: NaiveDate,
    pub decided_on: Option<NaiveDate>,
    pub escalated: bool,
    pub children: Vec<MovedChild>,
}

/// Everything one town holds that the indicators read.
#[derive(Debug, Clone, Default)]
pub struct TownData {
    pub code: String,
    pub people: Vec<Person>,
    pub opted_out: HashSet<String>,
    pub facts: Vec<Fact>,
}

fn date_of(value: Option<&Value>) -> Option<NaiveDate> {
    value
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

fn in_scope(person: &Person, fy: FiscalYear, moved_away: Option<NaiveDate>) -> bool {
    let Some(birth) = person.birth_date else {
        return false;
    };
    let adult_on = birth.checked_add_months(Months::new(18 * 12));
    birth <= fy.end()
        && adult_on.is_some_and(|d| d > fy.start())
        && person.moved_in_on.is_none_or(|d| d <= fy.end())
        && person.moved_out_on.is_none_or(|d| d >= fy.start())
        && moved_away.is_none_or(|d| d >= fy.start())
}

/// Bit `n` set for every basic item `n` that applies to one person's records.
fn item_mask(rules: &RuleSet, about: &str, facts: &[&Fact]) -> u32 {
    let evaluated: Vec<EvaluatedRecord> = facts
        .iter()
        .map(|f| EvaluatedRecord {
            record_type: &f.record_type,
            source_record_id: &f.source_record_id,
            data: &f.data,
            about,
        })
        .collect();
    rules
        .evaluate(&evaluated)
        .iter()
        .fold(0, |mask, item| mask | (1u32 << item.item.min(31)))
}

pub fn town_counts(
    town: &TownData,
    transfers: &[TransferFact],
    rules: &RuleSet,
    catalogue: &Catalogue,
    fy: FiscalYear,
) -> TownCounts {
    let mut counts: BTreeMap<Measure, i64> = table::count_measures(catalogue)
        .into_iter()
        .map(|m| (m, 0))
        .collect();
    let mut add = |indicator: &str, category: &str, n: i64| {
        *counts.entry(Measure::new(indicator, category)).or_insert(0) += n;
    };
    let end = fy.end().format("%Y-%m-%d").to_string();

    // Children who left by an accepted transfer (or one delivered to another hub), and when.
    let mut moved_away: HashMap<&str, NaiveDate> = HashMap::new();
    for t in transfers.iter().filter(|t| {
        t.origin == town.code
            && matches!(
                t.status,
                TransferStatus::Accepted | TransferStatus::Delivered
            )
            && t.decided_on.is_some()
    }) {
        for child in &t.children {
            if let Some(on) = t.decided_on {
                moved_away.insert(&child.origin_resident_no, on);
            }
        }
    }

    let mut by_person: HashMap<&str, Vec<&Fact>> = HashMap::new();
    for fact in &town.facts {
        by_person.entry(&fact.about).or_default().push(fact);
    }
    let rule_types: HashSet<&str> = rules.rules.iter().map(|r| r.record_type.as_str()).collect();
    // Items applying to each person with records (a guardian's apply to each of its children).
    let masks: HashMap<&str, u32> = by_person
        .iter()
        .map(|(about, facts)| {
            let relevant: Vec<&Fact> = facts
                .iter()
                .filter(|f| rule_types.contains(f.record_type.as_str()) && f.effective_date <= end)
                .copied()
                .collect();
            (*about, item_mask(rules, about, &relevant))
        })
        .collect();
    let mask_of = |about: &str| masks.get(about).copied().unwrap_or(0);
    let mut household_guardians: HashMap<&str, Vec<&str>> = HashMap::new();
    for person in &town.people {
        if let (Some(household), Some("guardian")) = (&person.household_no, person.role.as_deref())
        {
            household_guardians
                .entry(household)
                .or_default()
                .push(&person.resident_no);
        }
    }

    let categories: Vec<&str> = std::iter::once(ALL)
        .chain(catalogue.difficulties.iter().map(String::as_str))
        .collect();
    for person in &town.people {
        let away = moved_away.get(person.resident_no.as_str()).copied();
        if town.opted_out.contains(&person.resident_no) || !in_scope(person, fy, away) {
            continue;
        }
        add(CHILDREN_IN_SCOPE, ALL, 1);
        let mut mask = mask_of(&person.resident_no);
        let household = person
            .household_no
            .as_deref()
            .and_then(|h| household_guardians.get(h))
            .into_iter()
            .flatten()
            .copied();
        for guardian in person.guardians.iter().map(String::as_str).chain(household) {
            mask |= mask_of(guardian);
        }
        for item in &catalogue.items {
            if mask & (1 << item.min(&31)) != 0 {
                add(CHILDREN_WITH_ITEM, &table::item_category(*item), 1);
            }
        }
        if mask != 0 {
            add(CHILDREN_WITH_ITEM, ANY, 1);
        }
        // Furthest stage reached in the year, overall and per difficulty type.
        let mut reached: HashMap<&str, usize> = HashMap::new();
        for fact in by_person
            .get(person.resident_no.as_str())
            .into_iter()
            .flatten()
        {
            if fact.record_type != SUPPORT_OUTCOME || fact.transferred {
                continue;
            }
            let decided = date_of(fact.data.get("decided_on"));
            let rank = fact
                .data
                .get("stage")
                .and_then(Value::as_str)
                .and_then(|s| catalogue.stage_rank(s));
            let (Some(decided), Some(rank)) = (decided, rank) else {
                continue;
            };
            if !fy.contains(decided) {
                continue;
            }
            let types = fact
                .data
                .get("difficulty_types")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            for category in std::iter::once(ALL).chain(types) {
                let best = reached.entry(category).or_insert(rank);
                *best = (*best).max(rank);
            }
        }
        for category in &categories {
            if let Some(rank) = reached.get(category) {
                for stage in &catalogue.stages[..=*rank] {
                    add(&table::funnel(stage), category, 1);
                }
            }
        }
    }

    let mut acceptance_days = Vec::new();
    for t in transfers {
        let counted = t
            .children
            .iter()
            .any(|c| !town.opted_out.contains(&c.origin_resident_no));
        if t.origin != town.code || !fy.contains(t.offered_on) || !counted {
            continue;
        }
        add(TRANSFERS_SENT, ALL, 1);
        if t.escalated {
            add(TRANSFERS_ESCALATED, ALL, 1);
        }
        match (t.status, t.decided_on) {
            (TransferStatus::Accepted, Some(on)) => {
                add(TRANSFERS_ACCEPTED, ALL, 1);
                acceptance_days.push((on - t.offered_on).num_days());
            }
            (TransferStatus::Declined, _) => add(TRANSFERS_DECLINED, ALL, 1),
            _ => {}
        }
    }

    for t in transfers {
        let Some(accepted_on) = t.decided_on.filter(|on| {
            t.destination.as_deref() == Some(&town.code)
                && t.status == TransferStatus::Accepted
                && fy.contains(*on)
        }) else {
            continue;
        };
        let until = accepted_on + chrono::Duration::days(CONTINUITY_DAYS);
        for here in t
            .children
            .iter()
            .filter_map(|c| c.destination_resident_no.as_deref())
        {
            if town.opted_out.contains(here) {
                continue;
            }
            add(MOVED_ACCEPTED, ALL, 1);
            let supported = by_person.get(here).into_iter().flatten().any(|f| {
                f.record_type == SUPPORT_OUTCOME
                    && !f.transferred
                    && date_of(f.data.get("decided_on"))
                        .is_some_and(|d| accepted_on <= d && d <= until)
            });
            if supported {
                add(MOVED_SUPPORTED, ALL, 1);
            }
        }
    }
    TownCounts {
        counts,
        acceptance_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Standard;
    use serde_json::json;

    fn person(no: &str, birth: &str) -> Person {
        Person {
            resident_no: no.into(),
            birth_date: NaiveDate::parse_from_str(birth, "%Y-%m-%d").ok(),
            role: Some("child".into()),
            ..Person::default()
        }
    }

    fn fact(about: &str, record_type: &str, id: &str, data: Value) -> Fact {
        Fact {
            about: about.into(),
            record_type: record_type.into(),
            source_record_id: id.into(),
            effective_date: "2025-05-01".into(),
            data,
            transferred: false,
        }
    }

    fn count(counts: &TownCounts, indicator: &str, category: &str) -> i64 {
        counts.counts[&Measure::new(indicator, category)]
    }

    #[test]
    fn scope_funnel_items_and_opt_out() {
        let standard = Standard::load();
        let version = standard.latest();
        let catalogue = Catalogue::from_standard(version);
        let mut mother = person("M1", "1990-01-01");
        mother.role = Some("guardian".into());
        mother.household_no = Some("H1".into());
        let mut child = person("C1", "2015-06-01");
        child.household_no = Some("H1".into());
        let town = TownData {
            code: "131016".into(),
            people: vec![
                mother,
                child,
                person("C2", "2007-04-02"), // 18 on 2 April 2025: in scope for one day
                person("C3", "2007-03-31"), // 18 before the year began
                person("C4", "2026-04-01"), // born after the year
                person("C5", "2016-01-01"), // opted out
            ],
            opted_out: ["C5".to_string()].into(),
            facts: vec![
                fact(
                    "M1",
                    "public-assistance",
                    "pa",
                    json!({"started_on": "2024-01-01"}),
                ),
                fact(
                    "C1",
                    SUPPORT_OUTCOME,
                    "so1",
                    json!({"decided_on": "2025-05-01", "stage": "reviewed", "difficulty_types": ["poverty"]}),
                ),
                fact(
                    "C1",
                    SUPPORT_OUTCOME,
                    "so2",
                    json!({"decided_on": "2024-05-01", "stage": "support_started", "difficulty_types": ["abuse"]}),
                ),
                fact(
                    "C5",
                    SUPPORT_OUTCOME,
                    "so3",
                    json!({"decided_on": "2025-05-01", "stage": "extracted", "difficulty_types": ["abuse"]}),
                ),
            ],
        };
        let counts = town_counts(
            &town,
            &[],
            &version.applicability,
            &catalogue,
            FiscalYear(2025),
        );
        assert_eq!(count(&counts, CHILDREN_IN_SCOPE, ALL), 2);
        assert_eq!(
            count(&counts, CHILDREN_WITH_ITEM, "18"),
            1,
            "a guardian's item applies to the child"
        );
        assert_eq!(count(&counts, CHILDREN_WITH_ITEM, ANY), 1);
        assert_eq!(count(&counts, "funnel_extracted", ALL), 1);
        assert_eq!(count(&counts, "funnel_reviewed", "poverty"), 1);
        assert_eq!(
            count(&counts, "funnel_support_needed", ALL),
            0,
            "only the year's records"
        );
        assert_eq!(
            count(&counts, "funnel_extracted", "abuse"),
            0,
            "opted-out children are excluded"
        );
    }

    #[test]
    fn transfers_and_continuity() {
        let standard = Standard::load();
        let version = standard.latest();
        let catalogue = Catalogue::from_standard(version);
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let moved = |origin: &str, here: Option<&str>| MovedChild {
            origin_resident_no: origin.into(),
            destination_resident_no: here.map(str::to_string),
        };
        let transfer = |status, offered: &str, decided: Option<&str>, children| TransferFact {
            origin: "131016".into(),
            destination: Some("011002".into()),
            status,
            offered_on: day(offered),
            decided_on: decided.map(day),
            escalated: false,
            children,
        };
        let transfers = vec![
            transfer(
                TransferStatus::Accepted,
                "2025-05-01",
                Some("2025-05-11"),
                vec![moved("O1", Some("D1")), moved("O2", Some("D2"))],
            ),
            transfer(
                TransferStatus::Accepted,
                "2025-06-01",
                Some("2025-06-05"),
                vec![moved("O3", Some("D3"))],
            ),
            transfer(
                TransferStatus::Declined,
                "2025-07-01",
                Some("2025-07-02"),
                vec![moved("O4", None)],
            ),
            TransferFact {
                escalated: true,
                ..transfer(
                    TransferStatus::Offered,
                    "2025-08-01",
                    None,
                    vec![moved("O5", None)],
                )
            },
            transfer(
                TransferStatus::Accepted,
                "2024-05-01",
                Some("2024-05-02"),
                vec![moved("O6", Some("D6"))],
            ),
        ];
        let origin = TownData {
            code: "131016".into(),
            ..TownData::default()
        };
        let counts = town_counts(
            &origin,
            &transfers,
            &version.applicability,
            &catalogue,
            FiscalYear(2025),
        );
        assert_eq!(
            count(&counts, TRANSFERS_SENT, ALL),
            4,
            "the year's cohort of offers"
        );
        assert_eq!(count(&counts, TRANSFERS_ACCEPTED, ALL), 2);
        assert_eq!(count(&counts, TRANSFERS_DECLINED, ALL), 1);
        assert_eq!(count(&counts, TRANSFERS_ESCALATED, ALL), 1);
        assert_eq!(counts.acceptance_days, vec![10, 4]);

        let own = |about: &str, decided: &str, transferred| Fact {
            transferred,
            ..fact(
                about,
                SUPPORT_OUTCOME,
                &format!("so-{about}-{decided}"),
                json!({"decided_on": decided, "stage": "support_started", "difficulty_types": ["abuse"]}),
            )
        };
        let destination = TownData {
            code: "011002".into(),
            opted_out: ["D3".to_string()].into(),
            facts: vec![
                own("D1", "2025-07-01", false), // 51 days after acceptance: continued
                own("D2", "2025-09-01", false), // 113 days: too late
                own("D2", "2025-05-20", true), // copied by the transfer: not the destination's support
            ],
            ..TownData::default()
        };
        let counts = town_counts(
            &destination,
            &transfers,
            &version.applicability,
            &catalogue,
            FiscalYear(2025),
        );
        assert_eq!(
            count(&counts, MOVED_ACCEPTED, ALL),
            2,
            "D3 opted out; D6 arrived the year before"
        );
        assert_eq!(count(&counts, MOVED_SUPPORTED, ALL), 1);
        assert_eq!(count(&counts, TRANSFERS_SENT, ALL), 0);
    }
}
