//! Width folding: the NFKC subset that matters for Japanese municipal data.

use super::*;

/// Full-width forms of U+FF61..=U+FF9D (half-width katakana and punctuation), in order.
pub(super) const HALF_WIDTH_KANA: &str = "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";
/// Pairs (base, with dakuten).
pub(super) const DAKUTEN: &str = "カガキギクグケゲコゴサザシジスズセゼソゾタダチヂツヅテデトドハバヒビフブヘベホボウヴワヷヰヸヱヹヲヺヽヾ\
                       かがきぎくぐけげこごさざしじすずせぜそぞただちぢつづてでとどはばひびふぶへべほぼうゔゝゞ";
/// Pairs (base, with handakuten).
pub(super) const HANDAKUTEN: &str = "ハパヒピフプヘペホポはぱひぴふぷへぺほぽ";

pub(super) fn compose_voiced(base: char, mark: char) -> Option<char> {
    let pairs = match mark {
        '\u{3099}' | '\u{309B}' => DAKUTEN,
        '\u{309A}' | '\u{309C}' => HANDAKUTEN,
        _ => return None,
    };
    let chars: Vec<char> = pairs.chars().collect();
    chars
        .chunks_exact(2)
        .find(|pair| pair[0] == base)
        .map(|pair| pair[1])
}

pub(super) fn push_folded(out: &mut String, c: char) {
    let code = u32::from(c);
    match code {
        0x3000 => out.push(' '),
        0xFF01..=0xFF5E => out.push(char::from_u32(code - 0xFEE0).unwrap_or(c)),
        0xFF5F => out.push('⦅'),
        0xFF60 => out.push('⦆'),
        0xFF61..=0xFF9D => out.push(
            HALF_WIDTH_KANA
                .chars()
                .nth((code - 0xFF61) as usize)
                .unwrap_or(c),
        ),
        0xFF9E => push_voicing_mark(out, '\u{3099}'),
        0xFF9F => push_voicing_mark(out, '\u{309A}'),
        0x3099..=0x309C => push_voicing_mark(out, c),
        0xFFE0 => out.push('¢'),
        0xFFE1 => out.push('£'),
        0xFFE2 => out.push('¬'),
        0xFFE4 => out.push('¦'),
        0xFFE5 => out.push('¥'),
        0xFFE6 => out.push('₩'),
        0xFFE8 => out.push('│'),
        0xFFE9 => out.push('←'),
        0xFFEA => out.push('↑'),
        0xFFEB => out.push('→'),
        0xFFEC => out.push('↓'),
        0xFFED => out.push('■'),
        0xFFEE => out.push('○'),
        // Squared era names (㍻ etc.) appear in dates typed on old systems.
        0x337B => out.push_str("平成"),
        0x337C => out.push_str("昭和"),
        0x337D => out.push_str("大正"),
        0x337E => out.push_str("明治"),
        0x32FF => out.push_str("令和"),
        // Variation selectors (IVS, e.g. 葛 + U+E0100) only choose a glyph; zero-width
        // characters and BOMs are invisible. None may make two keys differ.
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF | 0x200B..=0x200D | 0x2060 | 0xFEFF => {}
        _ => out.push(c),
    }
}

/// A (half-width or combining or spacing) voiced mark joins the preceding kana when the
/// combination exists (ｶﾞ→ガ, か+゛→が); otherwise it stays as it is.
pub(super) fn push_voicing_mark(out: &mut String, mark: char) {
    if let Some(base) = out.chars().next_back()
        && let Some(voiced) = compose_voiced(base, mark)
    {
        out.pop();
        out.push(voiced);
        return;
    }
    out.push(mark);
}

/// NFKC-equivalent folding for the forms Japanese municipal systems mix, plus CJK
/// compatibility ideographs (through the built-in variant table, applied later).
pub(super) fn fold_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_folded(&mut out, c);
    }
    out
}

/// A dash typed after kana is a long-vowel mark (メアリ－ = メアリー); any other dash is `-`.
pub(super) fn fold_dashes_as_long_vowel(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dash(c) {
            let after_kana = out.chars().next_back().is_some_and(is_kana);
            out.push(if after_kana { 'ー' } else { '-' });
        } else {
            out.push(c);
        }
    }
    out
}
