//! Matching keys of names and their kana.

use super::*;

/// The matching key for a kanji name, using the built-in variant table.
///
/// 外字 are converted first through `gaiji` (an unconverted one is an error, never a guess),
/// then full/half-width forms are folded, spaces and middle dots removed, variant kanji folded
/// and ASCII letters upper-cased (住基 stores romanised names in capitals, other systems not).
/// Hiragana and katakana are *not* folded into each other here: さくら and サクラ are
/// different registered names.
pub fn name_key(name: &str, gaiji: &GaijiTable) -> Result<String, Unmapped> {
    name_key_with(name, gaiji, VariantTable::builtin())
}

/// [`name_key`] with an explicit variant table (e.g. the built-in one extended by a council).
pub fn name_key_with(
    name: &str,
    gaiji: &GaijiTable,
    variants: &VariantTable,
) -> Result<String, Unmapped> {
    // 外字 first: one village's errors only disappeared once this came before matching.
    let mapped = map_gaiji(name, Some(gaiji))?;
    let folded = fold_width(&mapped);
    let compact: String = folded.chars().filter(|&c| !is_separator(c)).collect();
    let dashed = fold_dashes_as_long_vowel(&compact);
    Ok(variants.fold_text(&dashed).to_ascii_uppercase())
}

/// The matching key for a kana name: half-width katakana to full-width (voiced marks joined),
/// hiragana to katakana, spaces and middle dots removed. Small kana (ァ, ッ, ヶ) and the long
/// vowel mark ー are kept: they are part of the reading.
pub fn kana_key(kana: &str) -> String {
    let folded = fold_width(kana);
    let mut katakana = String::with_capacity(folded.len());
    for c in folded.chars() {
        if is_separator(c) {
            continue;
        }
        let code = u32::from(c);
        let converted = match code {
            0x3041..=0x3096 | 0x309D | 0x309E => char::from_u32(code + 0x60).unwrap_or(c),
            _ => c,
        };
        katakana.push(converted);
    }
    fold_dashes_as_long_vowel(&katakana).to_ascii_uppercase()
}
