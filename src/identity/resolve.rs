//! Deciding who a record without a resident number is about. Exact agreement on the
//! normalised name, birth date and sex (and address where both sides have one) with exactly one
//! subject links; anything less certain goes to a person; nothing is ever guessed or dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::normalize::{GaijiTable, MatchKey, Unmapped, match_key};

/// A subject of the municipality that could be the person a record is about.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Candidate {
    pub resident_no: String,
    /// Fields that differ between the record and this subject (normalised comparison).
    pub differing_fields: Vec<String>,
}

/// What to do with one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Exactly one subject agrees on every compared field.
    Link(String),
    /// A person must decide (several exact candidates, a near match, an unmapped 外字).
    Review { reason: String },
    /// No subject resembles the record yet; it waits for one.
    Pending,
}

fn text<'a>(basic: &'a Value, field: &str) -> &'a str {
    basic.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The match key of a record's `basic_info`.
pub fn record_key(basic_info: &Value, gaiji: &GaijiTable) -> Result<MatchKey, Unmapped> {
    let sex = basic_info
        .get("sex")
        .and_then(Value::as_i64)
        .map(|s| s.to_string())
        .unwrap_or_default();
    match_key(
        text(basic_info, "name"),
        text(basic_info, "name_kana"),
        text(basic_info, "birth_date"),
        &sex,
        text(basic_info, "address"),
        gaiji,
    )
}

/// Fields on which record and subject disagree. Name, birth date and sex are always
/// compared; kana and address only when both sides have them (school data often has neither).
pub fn differences(record: &MatchKey, subject: &MatchKey) -> Vec<&'static str> {
    let mut differing = Vec::new();
    if record.name != subject.name || record.name.is_empty() {
        differing.push("name");
    }
    if record.birth_date.is_none() || record.birth_date != subject.birth_date {
        differing.push("birth_date");
    }
    if record.sex.is_none() || record.sex != subject.sex {
        differing.push("sex");
    }
    if !record.name_kana.is_empty()
        && !subject.name_kana.is_empty()
        && record.name_kana != subject.name_kana
    {
        differing.push("name_kana");
    }
    if !record.address.is_empty()
        && !subject.address.is_empty()
        && record.address != subject.address
    {
        differing.push("address");
    }
    differing
}

/// Decide, given the record's key and the subjects born the same day (with their keys).
pub fn decide(record: &MatchKey, subjects: &[(String, MatchKey)]) -> (Decision, Vec<Candidate>) {
    let mut candidates: Vec<Candidate> = subjects
        .iter()
        .map(|(resident_no, key)| Candidate {
            resident_no: resident_no.clone(),
            differing_fields: differences(record, key)
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
        .filter(|c| c.differing_fields.len() <= 1)
        .collect();
    candidates.sort_by(|a, b| {
        (a.differing_fields.len(), &a.resident_no).cmp(&(b.differing_fields.len(), &b.resident_no))
    });
    let exact: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.differing_fields.is_empty())
        .collect();
    let decision = match (exact.len(), candidates.len()) {
        (1, _) => Decision::Link(exact[0].resident_no.clone()),
        (n, _) if n > 1 => Decision::Review {
            reason: format!("{n} subjects match exactly; a person must choose"),
        },
        (0, 0) => Decision::Pending,
        _ => Decision::Review {
            reason: "near match: one field differs (e.g. a kana typo or a moved address)".into(),
        },
    };
    (decision, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str, kana: &str, birth: &str, sex: i64, address: &str) -> MatchKey {
        record_key(
            &json!({"name": name, "name_kana": kana, "birth_date": birth, "sex": sex, "address": address}),
            &GaijiTable::default(),
        )
        .expect("no gaiji")
    }

    #[test]
    fn one_exact_candidate_links_after_normalisation() {
        let record = key("髙橋　蓮", "ﾀｶﾊｼ ﾚﾝ", "2015-04-01", 1, "1丁目2番3号");
        let subjects = vec![
            (
                "R1".to_string(),
                key("高橋 蓮", "タカハシ レン", "2015-04-01", 1, "１－２－３"),
            ),
            (
                "R2".to_string(),
                key("高橋 湊", "タカハシ ミナト", "2015-04-01", 1, "1-2-3"),
            ),
        ];
        assert_eq!(decide(&record, &subjects).0, Decision::Link("R1".into()));
    }

    #[test]
    fn two_exact_candidates_go_to_review() {
        let record = key("佐藤 凛", "", "2016-05-05", 2, "");
        let subjects = vec![
            (
                "R1".to_string(),
                key("佐藤 凛", "サトウ リン", "2016-05-05", 2, "1-1-1"),
            ),
            (
                "R2".to_string(),
                key("佐藤 凛", "サトウ リン", "2016-05-05", 2, "2-2-2"),
            ),
        ];
        assert!(matches!(
            decide(&record, &subjects).0,
            Decision::Review { .. }
        ));
    }

    #[test]
    fn a_kana_typo_is_a_near_match_not_a_link() {
        let record = key("田中 陽翔", "タナカ ハルオ", "2014-01-01", 1, "");
        let subjects = vec![(
            "R1".to_string(),
            key("田中 陽翔", "タナカ ハルト", "2014-01-01", 1, ""),
        )];
        let (decision, candidates) = decide(&record, &subjects);
        assert!(matches!(decision, Decision::Review { .. }));
        assert_eq!(
            candidates[0].differing_fields,
            vec!["name_kana".to_string()]
        );
    }

    #[test]
    fn nobody_alike_stays_pending() {
        let record = key("山本 大和", "", "2013-03-03", 1, "");
        let subjects = vec![("R1".to_string(), key("中村 紬", "", "2013-03-03", 2, ""))];
        assert_eq!(decide(&record, &subjects).0, Decision::Pending);
    }
}
