//! Dates as municipal systems write them: Gregorian, 和暦 and compact forms.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Era {
    Taisho,
    Showa,
    Heisei,
    Reiwa,
}

impl Era {
    /// First and last day (inclusive). The day of an imperial succession belongs to both
    /// eras only for 大正/昭和 (1926-12-25); Heisei began the day after Showa 64-01-07 and
    /// Reiwa the day after Heisei 31-04-30.
    fn bounds(self) -> (NaiveDate, Option<NaiveDate>) {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid era boundary");
        match self {
            Era::Taisho => (d(1912, 7, 30), Some(d(1926, 12, 25))),
            Era::Showa => (d(1926, 12, 25), Some(d(1989, 1, 7))),
            Era::Heisei => (d(1989, 1, 8), Some(d(2019, 4, 30))),
            Era::Reiwa => (d(2019, 5, 1), None),
        }
    }

    /// Numeric era codes used by resident-register exports (`GYYMMDD`, e.g. `5070401`).
    /// 1 (明治) is not supported: that calendar predates these records.
    fn from_code(code: char) -> Option<Era> {
        match code {
            '2' => Some(Era::Taisho),
            '3' => Some(Era::Showa),
            '4' => Some(Era::Heisei),
            '5' => Some(Era::Reiwa),
            _ => None,
        }
    }

    fn date(self, year: u32, month: u32, day: u32) -> Option<NaiveDate> {
        if year == 0 {
            return None;
        }
        let (start, end) = self.bounds();
        let gregorian = start.year() + i32::try_from(year).ok()? - 1;
        let date = NaiveDate::from_ymd_opt(gregorian, month, day)?;
        (date >= start && end.is_none_or(|end| date <= end)).then_some(date)
    }
}

pub(super) const ERA_PREFIXES: [(&str, Era); 8] = [
    ("令和", Era::Reiwa),
    ("平成", Era::Heisei),
    ("昭和", Era::Showa),
    ("大正", Era::Taisho),
    ("R", Era::Reiwa),
    ("H", Era::Heisei),
    ("S", Era::Showa),
    ("T", Era::Taisho),
];

/// Reads leading ASCII digits; returns (value, digit count, rest).
pub(super) fn take_digits(s: &str) -> Option<(u32, usize, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || n > 9 {
        return None;
    }
    Some((s[..n].parse().ok()?, n, &s[n..]))
}

/// `Y<sep>M<sep>D` with one separator style: `-`, `/`, `.` or `年`/`月`(/`日`).
/// Returns (year, year digit count, month, day).
pub(super) fn parse_ymd(s: &str) -> Option<(u32, usize, u32, u32)> {
    let (year, year_len, rest) = take_digits(s)?;
    let sep = rest.chars().next()?;
    let (month_sep, end) = match sep {
        '-' | '/' | '.' => (sep, None),
        '年' => ('月', Some('日')),
        _ => return None,
    };
    let (month, month_len, rest) = take_digits(&rest[sep.len_utf8()..])?;
    let rest = rest.strip_prefix(month_sep)?;
    let (day, day_len, rest) = take_digits(rest)?;
    let rest = match end {
        Some(e) => rest.strip_prefix(e).unwrap_or(rest),
        None => rest,
    };
    (rest.is_empty() && month_len <= 2 && day_len <= 2).then_some((year, year_len, month, day))
}

pub(super) fn split_yymmdd(digits: &str) -> Option<(u32, u32, u32)> {
    Some((
        digits.get(0..2)?.parse().ok()?,
        digits.get(2..4)?.parse().ok()?,
        digits.get(4..6)?.parse().ok()?,
    ))
}

pub(super) fn parse_gregorian(s: &str) -> Option<NaiveDate> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.len() {
            8 => NaiveDate::from_ymd_opt(
                s[0..4].parse().ok()?,
                s[4..6].parse().ok()?,
                s[6..8].parse().ok()?,
            ),
            7 => {
                let era = Era::from_code(s.chars().next()?)?;
                let (y, m, d) = split_yymmdd(&s[1..])?;
                era.date(y, m, d)
            }
            _ => None,
        };
    }
    let (year, year_len, month, day) = parse_ymd(s)?;
    if year_len != 4 {
        return None; // `25/4/1` is ambiguous; refuse rather than guess the century.
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

pub(super) fn parse_wareki(s: &str) -> Option<NaiveDate> {
    let (rest, era) = ERA_PREFIXES.iter().find_map(|(prefix, era)| {
        let n = prefix.len();
        (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(prefix))
            .then(|| (&s[n..], *era))
    })?;
    // 元年 is year 1.
    if let Some(after) = rest.strip_prefix('元') {
        let (year, _, month, day) = parse_ymd(&format!("1{after}"))?;
        return era.date(year, month, day);
    }
    if rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_digit()) {
        let (y, m, d) = split_yymmdd(rest)?; // R070401
        return era.date(y, m, d);
    }
    let (year, year_len, month, day) = parse_ymd(rest)?;
    if year_len > 2 {
        return None;
    }
    era.date(year, month, day)
}

/// Drops a trailing time of day (`2025/4/1 0:00:00`, as spreadsheets export dates).
pub(super) fn strip_time_of_day(text: &str) -> &str {
    if let Some((date, time)) = text.rsplit_once([' ', 'T'])
        && !time.is_empty()
        && time.contains(':')
        && time
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
    {
        return date.trim_end();
    }
    text
}

/// Parses the date notations found in municipal CSV exports.
///
/// Gregorian: `2025-04-01`, `2025/4/1`, `2025.4.1`, `20250401`, `2025年4月1日`.
/// 和暦: `令和7年4月1日`, `令和元年5月1日`, `R07.04.01`, `R7.4.1`, `R070401`, `H31.4.30`,
/// `平成31年4月30日`, `S64.1.7`, `㍻31年4月30日`, kanji numerals (`令和七年四月一日`), and
/// resident-register era codes `GYYMMDD` (2 大正, 3 昭和, 4 平成, 5 令和; `5070401`).
/// Full-width digits and symbols are accepted. Era boundaries are enforced (H31.5.1 and
/// R1.4.30 are not dates), as is calendar validity; a two-digit Gregorian year is refused.
pub fn parse_japanese_date(text: &str) -> Option<NaiveDate> {
    let folded = fold_width(text);
    let trimmed = strip_time_of_day(folded.trim());
    let compact: Vec<char> = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    // Kanji numerals anywhere in a date are numbers (there is no town name to protect).
    let mut s = String::with_capacity(compact.len());
    let mut i = 0;
    while i < compact.len() {
        if is_kanji_numeral(compact[i]) {
            let start = i;
            while i < compact.len() && is_kanji_numeral(compact[i]) {
                i += 1;
            }
            s.push_str(&parse_kanji_number(&compact[start..i])?.to_string());
        } else {
            s.push(compact[i]);
            i += 1;
        }
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        parse_gregorian(&s)
    } else {
        parse_wareki(&s)
    }
}
