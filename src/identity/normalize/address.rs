//! Addresses: numbers written in kanji and block numbers (`1丁目2番3号` = `1-2-3`).

use super::*;

pub(super) fn kanji_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '零' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

pub(super) fn is_kanji_numeral(c: char) -> bool {
    kanji_digit(c).is_some() || matches!(c, '十' | '百' | '千')
}

/// `十二` → 12, `二十三` → 23, `百五` → 105, `二〇二五` → 2025 (positional); malformed → None.
pub(super) fn parse_kanji_number(run: &[char]) -> Option<u32> {
    if run.is_empty() {
        return None;
    }
    if run.iter().all(|&c| kanji_digit(c).is_some()) {
        return run.iter().try_fold(0u32, |acc, &c| {
            acc.checked_mul(10)?.checked_add(kanji_digit(c)?)
        });
    }
    let mut total = 0;
    let mut pending: Option<u32> = None;
    let mut last_unit = u32::MAX;
    for &c in run {
        if let Some(d) = kanji_digit(c) {
            if pending.is_some() {
                return None;
            }
            pending = Some(d);
            continue;
        }
        let unit = match c {
            '十' => 10,
            '百' => 100,
            '千' => 1000,
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        let multiplier = pending.take().unwrap_or(1);
        if multiplier == 0 {
            return None;
        }
        total += multiplier * unit;
    }
    Some(total + pending.unwrap_or(0))
}

pub(super) fn starts_with_str(chars: &[char], s: &str) -> bool {
    let mut rest = chars.iter();
    s.chars().all(|c| rest.next() == Some(&c))
}

pub(super) fn ends_with_str(chars: &[char], s: &str) -> bool {
    let n = s.chars().count();
    chars.len() >= n && starts_with_str(&chars[chars.len() - n..], s)
}

/// Whether `out` ends with one of `labels` that itself follows a digit (e.g. `3丁目`).
pub(super) fn ends_with_number_label(out: &[char], labels: &[&str]) -> bool {
    labels.iter().any(|label| {
        let n = label.chars().count();
        ends_with_str(out, label) && out.len() > n && out[out.len() - n - 1].is_ascii_digit()
    })
}

/// Kanji numerals become digits only where they are clearly block numbers: before 丁目, or
/// continuing a number chain (`3丁目五番地十二` → `3丁目5番地12`). `一番町` and `八千代` stay.
pub(super) fn convert_block_numerals(chars: &[char]) -> Vec<char> {
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_kanji_numeral(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_kanji_numeral(chars[i]) {
            i += 1;
        }
        let run = &chars[start..i];
        let rest = &chars[i..];
        let block = starts_with_str(rest, "丁目")
            || (ends_with_number_label(&out, &["丁目"])
                && ["番", "号"].iter().any(|l| starts_with_str(rest, l)))
            || (ends_with_number_label(&out, &["番地", "番"])
                && (rest.is_empty() || starts_with_str(rest, "号")));
        match parse_kanji_number(run).filter(|_| block) {
            Some(value) => out.extend(value.to_string().chars()),
            None => out.extend_from_slice(run),
        }
    }
    out
}

// Addresses

/// Labels after a block number, longest first.
pub(super) const NUMBER_LABELS: [&str; 4] = ["丁目", "番地", "番", "号"];
/// A label followed by one of these is part of a name (`3番町`, `12番街`, `101号室`, `2号棟`).
pub(super) const LABEL_KEEPERS: [char; 6] = ['室', '棟', '館', '町', '街', '通'];

pub(super) fn is_number_connector(c: char) -> bool {
    is_dash(c) || matches!(c, 'の' | 'ノ' | '之' | 'ー')
}

/// `1丁目2番3号`, `1丁目2番地3`, `1-2-3`, `1の2の3` → `1-2-3`.
pub(super) fn canonical_block_numbers(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len() * 3);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_ascii_digit() {
            out.push(if is_dash(c) { '-' } else { c });
            i += 1;
            continue;
        }
        while i < chars.len() && chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
        }
        let rest = &chars[i..];
        let label = NUMBER_LABELS
            .iter()
            .find(|l| starts_with_str(rest, l))
            .map_or(0, |l| l.chars().count());
        let after_label = i + label;
        if label > 0
            && chars
                .get(after_label)
                .is_some_and(|c| LABEL_KEEPERS.contains(c))
        {
            out.extend(&chars[i..after_label]);
            i = after_label;
            continue;
        }
        let mut next = after_label;
        if chars.get(next).is_some_and(|&c| is_number_connector(c)) {
            next += 1;
        }
        if next > i && chars.get(next).is_some_and(char::is_ascii_digit) {
            out.push('-');
            i = next;
        } else {
            // A trailing label (`1丁目`, `2番地`) carries nothing the digits do not.
            i = after_label;
        }
    }
    out
}

/// The matching key for an address; private-use characters are left as they are (use
/// [`address_key_with`] to convert them through the council table).
///
/// Full-width digits and letters become half-width, kanji block numbers become digits
/// (`十二丁目` → `12丁目`), and every way of writing the block numbers (`1丁目2番3号`,
/// `1丁目2番地3`, `1-2-3`, `１－２－３`, `1の2の3`) becomes `1-2-3`. The town part is folded
/// like a name (spaces, variant kanji) and `ヶ`/`ヵ` are read as `ケ`/`カ` (霞ヶ関 = 霞ケ関).
pub fn address_key(address: &str) -> String {
    match address_key_impl(address, None) {
        Ok(key) => key,
        Err(_) => unreachable!("without a table private-use characters are kept, not refused"),
    }
}

/// [`address_key`] with 外字 converted through the council table first.
pub fn address_key_with(address: &str, gaiji: &GaijiTable) -> Result<String, Unmapped> {
    address_key_impl(address, Some(gaiji))
}

pub(super) fn address_key_impl(
    address: &str,
    gaiji: Option<&GaijiTable>,
) -> Result<String, Unmapped> {
    let mapped = map_gaiji(address, gaiji)?;
    let folded = fold_width(&mapped);
    let chars: Vec<char> = folded
        .chars()
        .filter(|&c| !is_separator(c))
        .map(|c| match c {
            'ヶ' => 'ケ',
            'ヵ' => 'カ',
            other => other,
        })
        .collect();
    let numbered = convert_block_numerals(&chars);
    let canonical = canonical_block_numbers(&numbered);
    Ok(VariantTable::builtin()
        .fold_text(&canonical)
        .to_ascii_uppercase())
}
