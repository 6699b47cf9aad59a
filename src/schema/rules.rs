//! The checks JSON Schema cannot express by itself. Schemas name them (custom formats
//! `municipality-code` and `past-date`, keywords `x-field-order` and `x-no-my-number`); this
//! module is their only implementation.

use chrono::{FixedOffset, NaiveDate, Utc};
use serde_json::Value;

/// 全国地方公共団体コード: six digits, the last a check digit over the first five
/// (weights 6,5,4,3,2; `(11 − sum mod 11) mod 10`).
pub fn is_valid_municipality_code(code: &str) -> bool {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if code.len() != 6 || digits.len() != 6 {
        return false;
    }
    let sum: u32 = digits[..5]
        .iter()
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    let prefecture = digits[0] * 10 + digits[1];
    (1..=47).contains(&prefecture) && (11 - sum % 11) % 10 == digits[5]
}

/// Today in Japan, the calendar every date in the standard refers to.
pub fn today_in_japan() -> NaiveDate {
    let jst = FixedOffset::east_opt(9 * 3600).expect("valid offset");
    Utc::now().with_timezone(&jst).date_naive()
}

/// A calendar date written exactly as YYYY-MM-DD (chrono alone also accepts `2021-4-2`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// An ISO calendar date that is not after today (Japan time).
pub fn is_past_date(text: &str) -> bool {
    parse_date(text).is_some_and(|d| d <= today_in_japan())
}

/// 個人番号 (My Number): twelve digits whose last is a check digit over the first eleven.
/// The hub refuses anything that looks like one so that none is ever stored by mistake.
pub fn looks_like_my_number(text: &str) -> bool {
    let digits: Vec<u32> = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '　'))
        .map(|c| c.to_digit(10))
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_default();
    if digits.len() != 12 {
        return false;
    }
    // Weights per the My Number check digit rule: digit n (from the right, n = 1..11) has
    // weight n + 1 for n ≤ 6 and n − 5 for n ≥ 7.
    let sum: u32 = (1..=11)
        .map(|n| {
            let d = digits[11 - n];
            let w = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
            d * w
        })
        .sum();
    let remainder = sum % 11;
    let check = if remainder <= 1 { 0 } else { 11 - remainder };
    check == digits[11]
}

/// JSON pointer of the first string in `value` that looks like a My Number.
pub fn find_my_number_like(value: &Value, pointer: &mut String) -> bool {
    match value {
        Value::String(s) => looks_like_my_number(s),
        Value::Number(n) => looks_like_my_number(&n.to_string()),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let len = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let found = find_my_number_like(item, pointer);
            if !found {
                pointer.truncate(len);
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(key, item)| {
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let found = find_my_number_like(item, pointer);
            if !found {
                pointer.truncate(len);
            }
            found
        }),
        _ => false,
    }
}

/// Is `lesser` ≤ `greater`? Numbers compare numerically, dates as dates; anything else
/// (including a malformed date) is left to the type and format checks.
pub fn in_order(lesser: &Value, greater: &Value) -> bool {
    match (lesser, greater) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a <= b,
            _ => true,
        },
        (Value::String(a), Value::String(b)) => match (parse_date(a), parse_date(b)) {
            (Some(a), Some(b)) => a <= b,
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn municipality_check_digit() {
        // 131016 千代田区, 011002 札幌市, 282014 姫路市
        for good in ["131016", "011002", "282014"] {
            assert!(is_valid_municipality_code(good), "{good}");
        }
        // 001015, 481017 and 992011 carry a correct check digit but no prefecture (01–47).
        for bad in [
            "131017", "13101", "13101a", "0110020", "001015", "481017", "992011",
        ] {
            assert!(!is_valid_municipality_code(bad), "{bad}");
        }
    }

    #[test]
    fn my_number_check_digit() {
        // 12345678901 → check digit 8 by the published algorithm.
        assert!(looks_like_my_number("123456789018"));
        assert!(looks_like_my_number("1234 5678 9018"));
        assert!(!looks_like_my_number("123456789012"));
        assert!(!looks_like_my_number("12345678901"));
    }

    #[test]
    fn past_dates() {
        assert!(is_past_date("2020-02-29"));
        assert!(!is_past_date("2021-02-29"));
        assert!(!is_past_date("2999-01-01"));
        assert!(!is_past_date("2020-1-01"));
    }
}
