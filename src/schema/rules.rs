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

/// Whether a character only separates groups of digits. After NFKC (full-width digits and
/// letters become ASCII, NBSP a space, `．` a dot) that is everything neither a letter nor a
/// digit — spaces, dashes, dots, colons, slashes, zero-width joiners, control characters —
/// and the prolonged sound mark `ー`, which Japanese text uses as a dash.
fn separates_digits(c: char) -> bool {
    !c.is_alphanumeric() || c == 'ー'
}

/// The My Number check digit rule: digit n from the right (n = 1..11) has weight n + 1 for
/// n ≤ 6 and n − 5 for n ≥ 7; the check digit is 11 − (sum mod 11), or 0 when that
/// remainder is 0 or 1.
fn has_my_number_check_digit(digits: &[u8]) -> bool {
    let sum: u32 = (1..=11)
        .map(|n| {
            let d = u32::from(digits[11 - n]);
            let w = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
            d * w
        })
        .sum();
    let remainder = sum % 11;
    let check = if remainder <= 1 { 0 } else { 11 - remainder };
    check == u32::from(digits[11])
}

/// A run of digits not interrupted by a letter, split into groups by separators.
#[derive(Default)]
struct DigitRun {
    digits: Vec<u8>,
    /// Where each group starts in `digits`.
    group_starts: Vec<usize>,
    in_group: bool,
}

impl DigitRun {
    fn digit(&mut self, d: u8) {
        if !self.in_group {
            self.group_starts.push(self.digits.len());
            self.in_group = true;
        }
        self.digits.push(d);
    }

    fn separator(&mut self) {
        self.in_group = false;
    }

    fn is_group_boundary(&self, at: usize) -> bool {
        at == self.digits.len() || self.group_starts.binary_search(&at).is_ok()
    }

    /// Whether whole consecutive groups of this run make twelve digits with a valid check
    /// digit; then clear the run. A single group longer than twelve digits is another kind of
    /// number (a 13-digit 法人番号, a long account number) and is never searched inside.
    fn end_has_my_number(&mut self) -> bool {
        let found = self.group_starts.iter().any(|&start| {
            self.is_group_boundary(start + 12)
                && start + 12 <= self.digits.len()
                && has_my_number_check_digit(&self.digits[start..start + 12])
        });
        *self = DigitRun::default();
        found
    }
}

/// 個人番号 (My Number): twelve digits whose last is a check digit over the first eleven. The
/// hub refuses any text that contains one so that none is ever stored or logged by mistake,
/// however it is written: the text is NFKC-normalised (full-width digits, NBSP …) and every
/// separator between digit groups is dropped, so `１２３４ ５６７８ ９０１８`,
/// `1234.5678.9018`, `1234\u{200D}5678…` and `MN:123456789018` are all found. Digits only
/// join across separators, never across letters.
pub fn contains_my_number(text: &str) -> bool {
    let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(text);
    let mut run = DigitRun::default();
    for c in normalized.chars() {
        if c.is_ascii_digit() {
            run.digit(c as u8 - b'0');
        } else if separates_digits(c) {
            run.separator();
        } else if run.end_has_my_number() {
            return true;
        }
    }
    run.end_has_my_number()
}

/// The one check for free text the hub stores or logs outside a record (a legal note, a
/// transfer's legal basis, note and escalation officer): not blank, at most `max_chars`
/// characters, and no My Number. The problem, if any, names `pointer`.
/// A guardian's objection note: as long as a form reference or a short reason needs.
pub const LEGAL_NOTE_MAX_CHARS: usize = 500;

pub fn free_text_problem(
    pointer: &str,
    text: &str,
    max_chars: usize,
) -> Option<crate::schema::FieldError> {
    let problem =
        |code: &str, message: String| Some(crate::schema::FieldError::new(pointer, code, message));
    if text.trim().is_empty() {
        problem("length", "must not be empty or blank".into())
    } else if text.chars().count() > max_chars {
        problem("length", format!("at most {max_chars} characters"))
    } else if contains_my_number(text) {
        problem(
            "my_number_like",
            "looks like it holds a My Number (個人番号), which the hub never stores".into(),
        )
    } else {
        None
    }
}

/// JSON pointer of the first string in `value` that looks like a My Number.
pub fn find_my_number_like(value: &Value, pointer: &mut String) -> bool {
    match value {
        Value::String(s) => contains_my_number(s),
        Value::Number(n) => contains_my_number(&n.to_string()),
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
        assert!(contains_my_number("123456789018"));
        assert!(contains_my_number("1234 5678 9018"));
        assert!(!contains_my_number("123456789012"));
        assert!(!contains_my_number("12345678901"));
    }

    #[test]
    fn my_number_found_however_written() {
        for text in [
            "１２３４５６７８９０１８",
            "１２３４－５６７８－９０１８",
            "1234.5678.9018",
            "1234\u{200D}5678\u{200D}9018",
            "1234\u{200B}5678\u{FEFF}9018",
            "1234\u{00A0}5678\u{00A0}9018",
            "1234ー5678ー9018",
            "MN:123456789018",
            "個人番号は123456789018です",
            "番号 1234-5678-9018 を確認",
            "1 2 3 4 5 6 7 8 9 0 1 8",
            "123456789018 20240501",
            "tel\t1234\r\n5678/9018",
        ] {
            assert!(contains_my_number(text), "{text:?}");
        }
        for text in [
            "1234567890180",
            "法人番号 1234567890123",
            "03-1234-5678",
            "児童福祉法第25条の3",
            "MN:12345678901",
            "1234a5678b9018",
            "123456789012",
            "",
        ] {
            assert!(!contains_my_number(text), "{text:?}");
        }
    }

    #[test]
    fn past_dates() {
        assert!(is_past_date("2020-02-29"));
        assert!(!is_past_date("2021-02-29"));
        assert!(!is_past_date("2999-01-01"));
        assert!(!is_past_date("2020-1-01"));
    }
}
