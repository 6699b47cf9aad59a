//! Normalisation of the basic four items (基本4情報: 氏名・生年月日・性別・住所) plus the kana
//! name, producing *matching keys* for identity resolution (名寄せ).
//!
//! Why this exists: school data (校務支援) usually carries no resident number (宛名番号), so it
//! has to be matched on the basic four items. Cities that did this reported two failure modes:
//! one city matched about 2,000 records by hand because number and address input rules differed
//! between departments (全角/半角, `1丁目2番3号` against `1-2-3`), and one village's matching
//! errors fell to zero only after the 外字 in its roster were converted to standard kanji
//! *before* matching (seeds/002, 喬木村). So the order below is deliberate: 外字 first, then
//! width folding, then separators, then variant kanji.
//!
//! Everything here is pure: no database, no I/O. The keys are for comparison only — SPEC §5:
//! the stored original is never altered, and a private-use character without a council
//! conversion is an error ([`Unmapped`]), never a guess.
//!
//! Width folding is a hand-written NFKC subset (full-width ASCII, half-width katakana with voiced
//! marks, half-width symbols, squared era names, CJK compatibility ideographs through a generated
//! table), so no normalisation crate is needed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Curated variant kanji (異体字) common in Japanese surnames: `variant<TAB>standard<TAB>note`.
const VARIANT_KANJI_TSV: &str = include_str!("variant_kanji.tsv");
/// CJK compatibility ideographs and their canonical decompositions (what NFC/NFKC would do),
/// generated from the Unicode data; same TSV format.
const COMPAT_IDEOGRAPHS_TSV: &str = include_str!("compat_ideographs.tsv");

static BUILTIN_VARIANTS: LazyLock<VariantTable> = LazyLock::new(|| {
    let mut table =
        VariantTable::from_tsv(VARIANT_KANJI_TSV).expect("src/identity/variant_kanji.tsv is valid");
    table
        .extend_from_tsv(COMPAT_IDEOGRAPHS_TSV)
        .expect("src/identity/compat_ideographs.tsv is valid");
    table
});

// ---------------------------------------------------------------------------------------------
// Errors and character classes
// ---------------------------------------------------------------------------------------------

/// A private-use character (外字) with no entry in the council's [`GaijiTable`].
///
/// `position` is the 0-based index in *characters* (not bytes) of the text that was being
/// normalised (for [`match_key`], the name or the address, whichever failed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unmapped {
    pub character: char,
    pub position: usize,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "private-use character U+{:04X} at position {} has no entry in the 外字 conversion table",
            u32::from(self.character),
            self.position
        )
    }
}

impl std::error::Error for Unmapped {}

/// Whether `c` lies in one of the Unicode private-use areas (where CP932/vendor 外字 land).
pub fn is_private_use(c: char) -> bool {
    matches!(u32::from(c), 0xE000..=0xF8FF | 0xF_0000..=0xF_FFFD | 0x10_0000..=0x10_FFFD)
}

fn is_middle_dot(c: char) -> bool {
    matches!(
        c,
        '・' | '･' | '·' | '\u{2027}' | '\u{2219}' | '\u{22C5}' | '\u{0387}'
    )
}

/// Characters dropped before comparison: whitespace and middle dots (姓名の区切り).
fn is_separator(c: char) -> bool {
    c.is_whitespace() || is_middle_dot(c)
}

/// Hyphen, dash and minus look-alikes that different systems emit for the same key stroke.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2500}' | '\u{FE63}' | '\u{FF0D}'
    )
}

fn is_kana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | '\u{30A1}'..='\u{30FA}' | 'ー' | '\u{31F0}'..='\u{31FF}')
}

// ---------------------------------------------------------------------------------------------
// 外字 conversion table
// ---------------------------------------------------------------------------------------------

/// The council-maintained 外字 conversion table: private-use code point → standard text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaijiTable {
    entries: BTreeMap<char, String>,
}

impl GaijiTable {
    /// Every conversion, in code point order.
    pub fn entries(&self) -> impl Iterator<Item = (char, &str)> {
        self.entries.iter().map(|(c, s)| (*c, s.as_str()))
    }

    /// An empty table: every private-use character is then [`Unmapped`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `code_point,standard[,note]` rows. `code_point` is `U+E001` or the literal
    /// character; the header row `code_point,standard,note` is optional; blank lines and lines
    /// starting with `#` are ignored; fields may be quoted (a note may contain commas).
    pub fn from_csv(text: &str) -> Result<GaijiTable, String> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut table = GaijiTable::new();
        let mut first = true;
        for record in reader.records() {
            let record = record.map_err(|e| format!("外字 table: {e}"))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            let is_header = first
                && record
                    .get(0)
                    .is_some_and(|f| f.eq_ignore_ascii_case("code_point"));
            first = false;
            if is_header {
                continue;
            }
            if !(2..=3).contains(&record.len()) {
                return Err(format!(
                    "line {line}: expected code_point,standard[,note], got {} fields",
                    record.len()
                ));
            }
            let code_point =
                parse_code_point(&record[0]).map_err(|e| format!("line {line}: {e}"))?;
            table
                .insert(code_point, &record[1])
                .map_err(|e| format!("line {line}: {e}"))?;
        }
        Ok(table)
    }

    /// Adds one conversion, with the same checks as [`GaijiTable::from_csv`].
    pub fn insert(&mut self, code_point: char, standard: &str) -> Result<(), String> {
        let name = format!("U+{:04X}", u32::from(code_point));
        if !is_private_use(code_point) {
            return Err(format!("{name} is not a private-use code point"));
        }
        if standard.trim().is_empty() {
            return Err(format!("{name} has an empty standard text"));
        }
        if let Some(bad) = standard.chars().find(|&c| is_private_use(c)) {
            return Err(format!(
                "{name}: standard text contains the private-use character U+{:04X}",
                u32::from(bad)
            ));
        }
        if let Some(bad) = standard.chars().find(|c| c.is_control()) {
            return Err(format!(
                "{name}: standard text contains the control character U+{:04X}",
                u32::from(bad)
            ));
        }
        match self.entries.get(&code_point) {
            Some(existing) if existing != standard => Err(format!(
                "{name} is listed twice ({existing} and {standard})"
            )),
            _ => {
                self.entries.insert(code_point, standard.to_owned());
                Ok(())
            }
        }
    }

    /// The standard text for a private-use character, if the council has converted it.
    pub fn map(&self, c: char) -> Option<&str> {
        self.entries.get(&c).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_code_point(field: &str) -> Result<char, String> {
    if let Some(hex) = field
        .strip_prefix("U+")
        .or_else(|| field.strip_prefix("u+"))
    {
        if !(4..=6).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("bad code point {field:?}"));
        }
        let value = u32::from_str_radix(hex, 16).map_err(|e| format!("{field:?}: {e}"))?;
        return char::from_u32(value).ok_or_else(|| format!("{field:?} is not a character"));
    }
    let mut chars = field.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!(
            "code point {field:?} must be U+XXXX or a single character"
        )),
    }
}

/// Replaces private-use characters through the table; `None` keeps them as they are.
fn map_gaiji(text: &str, gaiji: Option<&GaijiTable>) -> Result<String, Unmapped> {
    let mut out = String::with_capacity(text.len());
    for (position, c) in text.chars().enumerate() {
        if !is_private_use(c) {
            out.push(c);
            continue;
        }
        match gaiji {
            Some(table) => match table.map(c) {
                Some(standard) => out.push_str(standard),
                None => {
                    return Err(Unmapped {
                        character: c,
                        position,
                    });
                }
            },
            None => out.push(c),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Variant kanji table
// ---------------------------------------------------------------------------------------------

/// Variant kanji (異体字) → standard form, used for matching keys only.
///
/// Only true variants of *one* character belong here (髙/高, 邊/辺, 齋/斎, 齊/斉); distinct
/// characters that happen to be confused (斉/斎) do not, since folding them would make two
/// different surnames match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantTable {
    map: HashMap<char, String>,
}

impl VariantTable {
    /// The built-in table: `variant_kanji.tsv` plus the CJK compatibility ideographs.
    pub fn builtin() -> &'static VariantTable {
        &BUILTIN_VARIANTS
    }

    /// Parses `variant<TAB>standard[<TAB>note]` lines (`#` comments and blank lines ignored).
    pub fn from_tsv(text: &str) -> Result<VariantTable, String> {
        let mut table = VariantTable::default();
        table.extend_from_tsv(text)?;
        Ok(table)
    }

    /// Adds rows (e.g. a council's own additions). All or nothing: on error the table is
    /// unchanged. Chains (A→B, B→C) are resolved so that folding is idempotent; cycles fail.
    pub fn extend_from_tsv(&mut self, text: &str) -> Result<(), String> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut map = self.map.clone();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.trim_end_matches('\r');
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let mut fields = raw.split('\t');
            let variant = fields.next().unwrap_or_default().trim();
            let standard = fields
                .next()
                .ok_or_else(|| format!("line {line}: expected variant<TAB>standard[<TAB>note]"))?
                .trim();
            let mut chars = variant.chars();
            let v = match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(format!(
                        "line {line}: variant {variant:?} must be one character"
                    ));
                }
            };
            if standard.is_empty() || standard.chars().any(|c| c.is_whitespace()) {
                return Err(format!("line {line}: bad standard text {standard:?}"));
            }
            if is_private_use(v) || standard.chars().any(is_private_use) {
                return Err(format!(
                    "line {line}: private-use characters belong in the 外字 table"
                ));
            }
            if standard.chars().eq(std::iter::once(v)) {
                return Err(format!("line {line}: {v} maps to itself"));
            }
            match map.get(&v) {
                Some(existing) if existing != standard => {
                    return Err(format!(
                        "line {line}: {v} is already mapped to {existing}, not {standard}"
                    ));
                }
                _ => {
                    map.insert(v, standard.to_owned());
                }
            }
        }
        // Resolve chains to a fixed point so that key(key(x)) == key(x).
        let snapshot = map.clone();
        for (variant, standard) in map.iter_mut() {
            let mut current = standard.clone();
            let mut steps = 0;
            while current.chars().any(|c| snapshot.contains_key(&c)) {
                steps += 1;
                if steps > 8 {
                    return Err(format!("cycle in variant table at {variant}"));
                }
                current = current
                    .chars()
                    .map(|c| snapshot.get(&c).cloned().unwrap_or_else(|| c.to_string()))
                    .collect();
            }
            if current.chars().eq(std::iter::once(*variant)) {
                return Err(format!("cycle in variant table at {variant}"));
            }
            *standard = current;
        }
        self.map = map;
        Ok(())
    }

    /// The standard form of a variant character.
    pub fn fold(&self, c: char) -> Option<&str> {
        self.map.get(&c).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn fold_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match self.fold(c) {
                Some(s) => out.push_str(s),
                None => out.push(c),
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Width folding (the NFKC subset that matters for Japanese municipal data)
// ---------------------------------------------------------------------------------------------

/// Full-width forms of U+FF61..=U+FF9D (half-width katakana and punctuation), in order.
const HALF_WIDTH_KANA: &str = "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";
/// Pairs (base, with dakuten).
const DAKUTEN: &str = "カガキギクグケゲコゴサザシジスズセゼソゾタダチヂツヅテデトドハバヒビフブヘベホボウヴワヷヰヸヱヹヲヺヽヾ\
                       かがきぎくぐけげこごさざしじすずせぜそぞただちぢつづてでとどはばひびふぶへべほぼうゔゝゞ";
/// Pairs (base, with handakuten).
const HANDAKUTEN: &str = "ハパヒピフプヘペホポはぱひぴふぷへぺほぽ";

fn compose_voiced(base: char, mark: char) -> Option<char> {
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

fn push_folded(out: &mut String, c: char) {
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
fn push_voicing_mark(out: &mut String, mark: char) {
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
fn fold_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_folded(&mut out, c);
    }
    out
}

/// A dash typed after kana is a long-vowel mark (メアリ－ = メアリー); any other dash is `-`.
fn fold_dashes_as_long_vowel(text: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Numbers written in kanji
// ---------------------------------------------------------------------------------------------

fn kanji_digit(c: char) -> Option<u32> {
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

fn is_kanji_numeral(c: char) -> bool {
    kanji_digit(c).is_some() || matches!(c, '十' | '百' | '千')
}

/// `十二` → 12, `二十三` → 23, `百五` → 105, `二〇二五` → 2025 (positional); malformed → None.
fn parse_kanji_number(run: &[char]) -> Option<u32> {
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

fn starts_with_str(chars: &[char], s: &str) -> bool {
    let mut rest = chars.iter();
    s.chars().all(|c| rest.next() == Some(&c))
}

fn ends_with_str(chars: &[char], s: &str) -> bool {
    let n = s.chars().count();
    chars.len() >= n && starts_with_str(&chars[chars.len() - n..], s)
}

/// Whether `out` ends with one of `labels` that itself follows a digit (e.g. `3丁目`).
fn ends_with_number_label(out: &[char], labels: &[&str]) -> bool {
    labels.iter().any(|label| {
        let n = label.chars().count();
        ends_with_str(out, label) && out.len() > n && out[out.len() - n - 1].is_ascii_digit()
    })
}

/// Kanji numerals become digits only where they are clearly block numbers: before 丁目, or
/// continuing a number chain (`3丁目五番地十二` → `3丁目5番地12`). `一番町` and `八千代` stay.
fn convert_block_numerals(chars: &[char]) -> Vec<char> {
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

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/// Labels after a block number, longest first.
const NUMBER_LABELS: [&str; 4] = ["丁目", "番地", "番", "号"];
/// A label followed by one of these is part of a name (`3番町`, `12番街`, `101号室`, `2号棟`).
const LABEL_KEEPERS: [char; 6] = ['室', '棟', '館', '町', '街', '通'];

fn is_number_connector(c: char) -> bool {
    is_dash(c) || matches!(c, 'の' | 'ノ' | '之' | 'ー')
}

/// `1丁目2番3号`, `1丁目2番地3`, `1-2-3`, `1の2の3` → `1-2-3`.
fn canonical_block_numbers(chars: &[char]) -> String {
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

fn address_key_impl(address: &str, gaiji: Option<&GaijiTable>) -> Result<String, Unmapped> {
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

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
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

const ERA_PREFIXES: [(&str, Era); 8] = [
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
fn take_digits(s: &str) -> Option<(u32, usize, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || n > 9 {
        return None;
    }
    Some((s[..n].parse().ok()?, n, &s[n..]))
}

/// `Y<sep>M<sep>D` with one separator style: `-`, `/`, `.` or `年`/`月`(/`日`).
/// Returns (year, year digit count, month, day).
fn parse_ymd(s: &str) -> Option<(u32, usize, u32, u32)> {
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

fn split_yymmdd(digits: &str) -> Option<(u32, u32, u32)> {
    Some((
        digits.get(0..2)?.parse().ok()?,
        digits.get(2..4)?.parse().ok()?,
        digits.get(4..6)?.parse().ok()?,
    ))
}

fn parse_gregorian(s: &str) -> Option<NaiveDate> {
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

fn parse_wareki(s: &str) -> Option<NaiveDate> {
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
fn strip_time_of_day(text: &str) -> &str {
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

// ---------------------------------------------------------------------------------------------
// Sex
// ---------------------------------------------------------------------------------------------

/// Sex as the SPEC's code: 1 male, 2 female. "Not stated" (9), "unknown" (0) and anything
/// unrecognised are `None`, because an unknown value must never count as agreement.
pub fn sex_code(text: &str) -> Option<u8> {
    let folded = fold_width(text);
    let compact: String = folded
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    match compact.as_str() {
        "1" | "男" | "男性" | "M" | "MALE" => Some(1),
        "2" | "女" | "女性" | "F" | "FEMALE" => Some(2),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Match keys
// ---------------------------------------------------------------------------------------------

/// Field names of a [`MatchKey`], as in the SPEC's subject (`basic_info`).
pub const MATCH_FIELDS: [&str; 5] = ["name", "name_kana", "birth_date", "sex", "address"];
/// The basic four items (基本4情報) that decide a match; the kana name only supports it.
pub const BASIC_FOUR: [&str; 4] = ["name", "birth_date", "sex", "address"];

/// Normalised basic information of one person, for comparison only (never stored in place of
/// the original). Empty strings and `None` mean "not given".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatchKey {
    pub name: String,
    pub name_kana: String,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<u8>,
    pub address: String,
}

impl MatchKey {
    /// The fields (in [`MATCH_FIELDS`] order) that do not agree. A field missing on either side
    /// counts as differing: an unknown value is never evidence of the same person.
    pub fn differing_fields(&self, other: &MatchKey) -> Vec<&'static str> {
        let agree = [
            !self.name.is_empty() && self.name == other.name,
            !self.name_kana.is_empty() && self.name_kana == other.name_kana,
            self.birth_date.is_some() && self.birth_date == other.birth_date,
            self.sex.is_some() && self.sex == other.sex,
            !self.address.is_empty() && self.address == other.address,
        ];
        MATCH_FIELDS
            .iter()
            .zip(agree)
            .filter(|(_, same)| !same)
            .map(|(field, _)| *field)
            .collect()
    }

    /// The fields (in [`MATCH_FIELDS`] order) this key has no value for.
    pub fn missing_fields(&self) -> Vec<&'static str> {
        let missing = [
            self.name.is_empty(),
            self.name_kana.is_empty(),
            self.birth_date.is_none(),
            self.sex.is_none(),
            self.address.is_empty(),
        ];
        MATCH_FIELDS
            .iter()
            .zip(missing)
            .filter(|(_, m)| *m)
            .map(|(field, _)| *field)
            .collect()
    }

    /// Whether all of the basic four items are present on both sides and agree.
    pub fn basic_four_match(&self, other: &MatchKey) -> bool {
        let differing = self.differing_fields(other);
        BASIC_FOUR.iter().all(|f| !differing.contains(f))
    }
}

/// The raw basic information of a record, as received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BasicFour<'a> {
    pub name: &'a str,
    pub name_kana: &'a str,
    pub birth_date: &'a str,
    pub sex: &'a str,
    pub address: &'a str,
}

impl BasicFour<'_> {
    /// See [`match_key`].
    pub fn match_key(&self, gaiji: &GaijiTable) -> Result<MatchKey, Unmapped> {
        match_key(
            self.name,
            self.name_kana,
            self.birth_date,
            self.sex,
            self.address,
            gaiji,
        )
    }
}

/// Builds the normalised key of one person. An unparseable date or unrecognised sex becomes
/// `None` (and so never matches); an unconverted 外字 in the name (checked first) or address
/// is an error.
pub fn match_key(
    name: &str,
    kana: &str,
    birth_date: &str,
    sex: &str,
    address: &str,
    gaiji: &GaijiTable,
) -> Result<MatchKey, Unmapped> {
    Ok(MatchKey {
        name: name_key(name, gaiji)?,
        name_kana: kana_key(kana),
        birth_date: parse_japanese_date(birth_date),
        sex: sex_code(sex),
        address: address_key_with(address, gaiji)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn key(name: &str) -> String {
        name_key(name, &GaijiTable::new()).expect("no 外字")
    }

    fn council_table() -> GaijiTable {
        GaijiTable::from_csv(
            "code_point,standard,note\n\
             U+E001,髙,はしご高の外字\n\
             U+E002,吉,つちよし\n\
             \u{F0001},塚,\"plane 15, literal\"\n",
        )
        .expect("valid table")
    }

    // ---- names ------------------------------------------------------------------------------

    #[test]
    fn name_folds_full_width_letters_digits_and_symbols() {
        assert_eq!(key("ＡＢＣ１２３（）"), "ABC123()");
        assert_eq!(key("ＡＢＣ"), key("ABC"));
    }

    #[test]
    fn name_upper_cases_ascii_letters() {
        assert_eq!(key("Smith Anna"), key("SMITH ANNA"));
        assert_eq!(key("ｓｍｉｔｈ"), "SMITH");
    }

    #[test]
    fn name_removes_half_and_full_width_spaces() {
        assert_eq!(key("山田 花子"), "山田花子");
        assert_eq!(key("山田\u{3000}花子"), "山田花子");
        assert_eq!(key(" 山田\t花子 "), "山田花子");
    }

    #[test]
    fn name_removes_middle_dots() {
        assert_eq!(key("スミス・アンナ"), "スミスアンナ");
        assert_eq!(key("ｽﾐｽ･ｱﾝﾅ"), "スミスアンナ");
        assert_eq!(key("SMITH·ANNA"), "SMITHANNA");
    }

    #[test]
    fn name_folds_half_width_katakana_with_voiced_marks() {
        assert_eq!(key("ﾊﾟｳﾞｪﾙ ﾀﾞﾝ"), "パヴェルダン");
    }

    #[test]
    fn name_treats_a_dash_after_kana_as_long_vowel() {
        assert_eq!(key("メアリ－"), "メアリー");
        assert_eq!(key("メアリ-"), key("メアリー"));
        assert_eq!(key("SMITH－JONES"), "SMITH-JONES");
    }

    #[test]
    fn name_does_not_fold_hiragana_into_katakana() {
        assert_ne!(key("さくら"), key("サクラ"));
    }

    #[test]
    fn name_folds_the_variant_kanji_named_in_the_brief() {
        let pairs = [
            ("髙橋", "高橋"),
            ("山\u{FA11}", "山崎"),
            ("渡邉", "渡辺"),
            ("渡邊", "渡辺"),
            ("齋藤", "斎藤"),
            ("濵田", "浜田"),
            ("德永", "徳永"),
            ("大\u{FA10}", "大塚"),
            ("\u{20BB7}田", "吉田"),
            ("曻", "昇"),
            ("槇原", "槙原"),
            ("冨田", "富田"),
        ];
        for (variant, standard) in pairs {
            assert_eq!(key(variant), key(standard), "{variant} vs {standard}");
            assert_eq!(key(variant), standard, "{variant}");
        }
    }

    #[test]
    fn name_keeps_distinct_characters_apart() {
        // 齊 is the old form of 斉, 齋 of 斎; 斉藤 and 斎藤 are different surnames.
        assert_eq!(key("齊藤"), "斉藤");
        assert_eq!(key("齋藤"), "斎藤");
        assert_ne!(key("斉藤"), key("斎藤"));
    }

    #[test]
    fn name_folds_cjk_compatibility_ideographs_like_nfc() {
        // U+FA19 神 and U+F9DC 隆 have canonical decompositions to the unified ideographs.
        assert_eq!(key("\u{FA19}田\u{F9DC}"), "神田隆");
        // A compatibility ideograph of an old form folds all the way: U+F907 → 龜 → 亀.
        assert_eq!(key("\u{F907}田"), "亀田");
        assert_eq!(key("\u{FA6D}"), "館");
    }

    #[test]
    fn name_ignores_variation_selectors_and_invisible_characters() {
        assert_eq!(key("葛\u{E0100}西"), "葛西");
        assert_eq!(key("葛\u{FE00}西\u{200B}"), "葛西");
        assert_eq!(key("\u{FEFF}葛西"), "葛西");
    }

    #[test]
    fn name_maps_private_use_characters_through_the_council_table() {
        let table = council_table();
        // The mapped text is folded further: U+E001 → 髙 → 高.
        assert_eq!(name_key("\u{E001}橋", &table).unwrap(), "高橋");
        assert_eq!(name_key("\u{E002}田", &table).unwrap(), "吉田");
        assert_eq!(name_key("大\u{F0001}", &table).unwrap(), "大塚");
    }

    #[test]
    fn name_refuses_unmapped_private_use_characters_with_position() {
        let table = council_table();
        let err = name_key("山田 \u{E0FF}子", &table).unwrap_err();
        assert_eq!(
            err,
            Unmapped {
                character: '\u{E0FF}',
                position: 3
            }
        );
        for c in [
            '\u{E000}',
            '\u{F8FF}',
            '\u{F0000}',
            '\u{FFFFD}',
            '\u{100000}',
            '\u{10FFFD}',
        ] {
            let err = name_key(&format!("田{c}"), &GaijiTable::new()).unwrap_err();
            assert_eq!((err.character, err.position), (c, 1));
        }
        assert!(err.to_string().contains("U+E0FF"));
    }

    #[test]
    fn private_use_ranges() {
        assert!(is_private_use('\u{E000}'));
        assert!(is_private_use('\u{F8FF}'));
        assert!(!is_private_use('\u{F900}'));
        assert!(!is_private_use('\u{D7FF}'));
        assert!(is_private_use('\u{F0000}'));
        assert!(!is_private_use('\u{FFFFE}'));
        assert!(is_private_use('\u{10FFFD}'));
        assert!(!is_private_use('\u{10FFFF}'));
    }

    #[test]
    fn name_key_is_idempotent_over_the_builtin_table() {
        let table = VariantTable::builtin();
        for (variant, standard) in &table.map {
            assert!(
                standard.chars().all(|c| table.fold(c).is_none()),
                "{variant} → {standard} is a chain"
            );
        }
        for name in ["髙\u{FA11}", "渡邊 德", "ＳＭＩＴＨ・ｱﾝﾅ"] {
            assert_eq!(key(&key(name)), key(name));
        }
    }

    // ---- variant table ----------------------------------------------------------------------

    #[test]
    fn builtin_variant_table_loads_with_enough_surname_pairs() {
        let curated = VariantTable::from_tsv(VARIANT_KANJI_TSV).unwrap();
        assert!(curated.len() >= 20, "only {} pairs", curated.len());
        assert!(VariantTable::builtin().len() > curated.len());
        assert_eq!(VariantTable::builtin().fold('髙'), Some("高"));
        assert!(!VariantTable::builtin().is_empty());
    }

    #[test]
    fn variant_table_resolves_chains_and_extends() {
        let mut table = VariantTable::from_tsv("# comment\nA\tB\tnote\nB\tC\n").unwrap();
        assert_eq!(table.fold('A'), Some("C"));
        table.extend_from_tsv("C\tD\n").unwrap();
        assert_eq!(table.fold('A'), Some("D"));
        assert_eq!(table.fold('B'), Some("D"));
        assert_eq!(table.len(), 3);
        let gaiji = GaijiTable::new();
        assert_eq!(name_key_with("AB", &gaiji, &table).unwrap(), "DD");
    }

    #[test]
    fn variant_table_rejects_bad_rows() {
        assert!(
            VariantTable::from_tsv("AB\tC\n").is_err(),
            "two-character variant"
        );
        assert!(VariantTable::from_tsv("A\n").is_err(), "missing standard");
        assert!(VariantTable::from_tsv("A\t\n").is_err(), "empty standard");
        assert!(VariantTable::from_tsv("A\tA\n").is_err(), "self map");
        assert!(VariantTable::from_tsv("A\tB\nB\tA\n").is_err(), "cycle");
        assert!(VariantTable::from_tsv("A\tB\nA\tC\n").is_err(), "conflict");
        assert!(
            VariantTable::from_tsv("\u{E001}\t高\n").is_err(),
            "外字 key"
        );
        let mut table = VariantTable::from_tsv("A\tB\n").unwrap();
        assert!(table.extend_from_tsv("C\tD\nX\n").is_err());
        assert_eq!(
            table.fold('C'),
            None,
            "failed extension leaves the table unchanged"
        );
    }

    // ---- kana -------------------------------------------------------------------------------

    #[test]
    fn kana_half_width_to_full_width_matches_nfkc() {
        // Expected strings produced with Python's unicodedata.normalize("NFKC", …).
        let half: String = (0xFF61..=0xFF9D).filter_map(char::from_u32).collect();
        assert_eq!(
            fold_width(&half),
            "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
        );
        assert_eq!(
            kana_key("ｶﾞｷﾞｸﾞｹﾞｺﾞｻﾞｼﾞｽﾞｾﾞｿﾞﾀﾞﾁﾞﾂﾞﾃﾞﾄﾞﾊﾞﾋﾞﾌﾞﾍﾞﾎﾞｳﾞﾜﾞｦﾞ"),
            "ガギグゲゴザジズゼゾダヂヅデドバビブベボヴヷヺ"
        );
        assert_eq!(kana_key("ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ"), "パピプペポ");
    }

    #[test]
    fn kana_voiced_marks() {
        assert_eq!(kana_key("ｶﾞ"), "ガ");
        assert_eq!(kana_key("ﾊﾟ"), "パ");
        assert_eq!(kana_key("ﾔﾏﾀﾞ ﾊﾅｺ"), "ヤマダハナコ");
        // A mark with nothing to join stays.
        assert_eq!(kana_key("ｱﾞ"), "ア\u{3099}");
    }

    #[test]
    fn kana_combining_and_spacing_marks_compose() {
        assert_eq!(kana_key("か\u{3099}"), "ガ");
        assert_eq!(kana_key("ハ\u{309A}"), "パ");
        assert_eq!(kana_key("ウ゛"), "ヴ");
    }

    #[test]
    fn kana_hiragana_to_katakana() {
        assert_eq!(kana_key("やまだ はなこ"), "ヤマダハナコ");
        assert_eq!(kana_key("ゔぁ"), "ヴァ");
        assert_eq!(kana_key("いすゞ"), "イスヾ");
        assert_eq!(kana_key("やまだ"), kana_key("ﾔﾏﾀﾞ"));
    }

    #[test]
    fn kana_removes_spaces_and_middle_dots() {
        assert_eq!(kana_key("スミス・アンナ"), "スミスアンナ");
        assert_eq!(kana_key("ｽﾐｽ･ｱﾝﾅ"), "スミスアンナ");
        assert_eq!(kana_key("ヤマダ\u{3000}ハナコ"), "ヤマダハナコ");
        assert_eq!(kana_key("ヤマダ·ハナコ"), "ヤマダハナコ");
    }

    #[test]
    fn kana_keeps_small_kana() {
        assert_eq!(kana_key("ｼｮｳｯｧ"), "ショウッァ");
        assert_eq!(kana_key("きょう"), "キョウ");
        assert_ne!(kana_key("キョウ"), kana_key("キヨウ"));
        assert_eq!(kana_key("ヶヵ"), "ヶヵ");
    }

    #[test]
    fn kana_keeps_long_vowel_mark() {
        assert_eq!(kana_key("ユーキ"), "ユーキ");
        assert_eq!(kana_key("ﾕｰｷ"), "ユーキ");
        assert_eq!(kana_key("ゆーき"), "ユーキ");
        assert_eq!(kana_key("ユ－キ"), "ユーキ");
        assert_ne!(kana_key("ユーキ"), kana_key("ユキ"));
    }

    // ---- dates ------------------------------------------------------------------------------

    #[test]
    fn dates_gregorian() {
        assert_eq!(parse_japanese_date("2025-04-01"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("2025/4/1"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("2025.4.1"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("20250401"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("2025年4月1日"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date(" 2025/04/01 "), date(2025, 4, 1));
        assert_eq!(
            parse_japanese_date("２０２５－０４－０１"),
            date(2025, 4, 1)
        );
        assert_eq!(parse_japanese_date("2025/4/1 0:00:00"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("2025-04-01T09:30"), date(2025, 4, 1));
        assert_eq!(
            parse_japanese_date("2025/4/1\u{3000}0:00"),
            date(2025, 4, 1)
        );
    }

    #[test]
    fn dates_wareki() {
        assert_eq!(parse_japanese_date("令和7年4月1日"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("令和元年5月1日"), date(2019, 5, 1));
        assert_eq!(parse_japanese_date("R07.04.01"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("R7.4.1"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("r7/4/1"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("R070401"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("H31.4.30"), date(2019, 4, 30));
        assert_eq!(parse_japanese_date("平成31年4月30日"), date(2019, 4, 30));
        assert_eq!(parse_japanese_date("S64.1.7"), date(1989, 1, 7));
        assert_eq!(parse_japanese_date("昭和64年1月7日"), date(1989, 1, 7));
        assert_eq!(parse_japanese_date("令和７年４月１日"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("令和 7年 4月 1日"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("Ｒ７．４．１"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("㍻31年4月30日"), date(2019, 4, 30));
        assert_eq!(parse_japanese_date("令和七年四月一日"), date(2025, 4, 1));
        assert_eq!(
            parse_japanese_date("平成三十年十二月二十五日"),
            date(2018, 12, 25)
        );
        assert_eq!(parse_japanese_date("大正15年12月25日"), date(1926, 12, 25));
        assert_eq!(parse_japanese_date("昭和元年12月25日"), date(1926, 12, 25));
    }

    #[test]
    fn dates_resident_register_era_codes() {
        assert_eq!(parse_japanese_date("5070401"), date(2025, 4, 1));
        assert_eq!(parse_japanese_date("4310430"), date(2019, 4, 30));
        assert_eq!(parse_japanese_date("3640107"), date(1989, 1, 7));
        assert_eq!(parse_japanese_date("4310501"), None);
        assert_eq!(
            parse_japanese_date("1450101"),
            None,
            "明治 is not supported"
        );
    }

    #[test]
    fn dates_enforce_era_boundaries() {
        assert_eq!(parse_japanese_date("H31.5.1"), None);
        assert_eq!(parse_japanese_date("R1.4.30"), None);
        assert_eq!(parse_japanese_date("R1.5.1"), date(2019, 5, 1));
        assert_eq!(parse_japanese_date("S64.1.8"), None);
        assert_eq!(parse_japanese_date("H1.1.7"), None);
        assert_eq!(parse_japanese_date("H1.1.8"), date(1989, 1, 8));
        assert_eq!(parse_japanese_date("平成元年1月8日"), date(1989, 1, 8));
        assert_eq!(parse_japanese_date("S1.12.24"), None);
        assert_eq!(parse_japanese_date("T15.12.26"), None);
        assert_eq!(parse_japanese_date("R0.5.1"), None);
        assert_eq!(parse_japanese_date("H32.1.1"), None);
    }

    #[test]
    fn dates_enforce_calendar_validity() {
        assert_eq!(parse_japanese_date("2025-02-29"), None);
        assert_eq!(parse_japanese_date("2024-02-29"), date(2024, 2, 29));
        assert_eq!(parse_japanese_date("R7.2.29"), None);
        assert_eq!(parse_japanese_date("R6.2.29"), date(2024, 2, 29));
        assert_eq!(parse_japanese_date("2025-13-01"), None);
        assert_eq!(parse_japanese_date("2025-04-31"), None);
        assert_eq!(parse_japanese_date("20250431"), None);
    }

    #[test]
    fn dates_refuse_ambiguous_or_malformed_text() {
        for text in [
            "",
            "  ",
            "25/4/1",
            "2025-04/01",
            "2025/4/1/2",
            "2025-004-01",
            "R7年4.1",
            "令和7年4月1日X",
            "X2025-04-01",
            "2025-04-01 noon",
            "R123.4.1",
            "不明",
            "令和七十十年",
        ] {
            assert_eq!(parse_japanese_date(text), None, "{text:?}");
        }
    }

    // ---- addresses --------------------------------------------------------------------------

    #[test]
    fn address_block_number_notations_share_one_key() {
        let expected = "本町1-2-3";
        for text in [
            "本町1丁目2番3号",
            "本町1丁目2番地3",
            "本町1丁目2番地の3",
            "本町1-2-3",
            "本町１－２－３",
            "本町1の2の3",
            "本町１丁目２番３号",
            "本町一丁目2番3号",
            "本町1ー2ー3",
            "本町1‐2−3",
            "本町 1丁目 2-3",
        ] {
            assert_eq!(address_key(text), expected, "{text}");
        }
    }

    #[test]
    fn address_kanji_block_numbers_become_digits() {
        let numerals = [
            "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二",
        ];
        for (n, numeral) in (1..).zip(numerals) {
            assert_eq!(
                address_key(&format!("本町{numeral}丁目")),
                format!("本町{n}")
            );
        }
        assert_eq!(address_key("本町二十三丁目"), "本町23");
        assert_eq!(address_key("本町三丁目五番地十二"), "本町3-5-12");
        assert_eq!(
            address_key("本町三丁目五番十二号"),
            address_key("本町3-5-12")
        );
    }

    #[test]
    fn address_keeps_numerals_that_are_part_of_names() {
        assert_eq!(address_key("一番町1-2"), "一番町1-2");
        assert_eq!(address_key("八千代一丁目"), "八千代1");
        assert_eq!(address_key("本町3番町"), "本町3番町");
        assert_eq!(
            address_key("本町1-2-3 コーポ101号室"),
            "本町1-2-3コーポ101号室"
        );
        assert_eq!(address_key("本町1-2 A2号棟"), "本町1-2A2号棟");
    }

    #[test]
    fn address_trailing_labels_carry_no_information() {
        assert_eq!(address_key("本町1丁目"), address_key("本町1"));
        assert_eq!(address_key("字本郷123番地"), "字本郷123");
        assert_eq!(address_key("字本郷123番地の4"), "字本郷123-4");
        assert_eq!(
            address_key("本町1-2-3コーポ"),
            address_key("本町1丁目2番3号コーポ")
        );
    }

    #[test]
    fn address_folds_width_spaces_and_variants_in_the_town_name() {
        assert_eq!(address_key("髙田町 ２丁目"), "高田町2");
        assert_eq!(address_key("ｱｵﾊﾞ台1-1"), "アオバ台1-1");
        assert_eq!(address_key("霞ヶ丘1-1"), address_key("霞ケ丘1-1"));
        assert_eq!(address_key("Ａ棟"), "A棟");
        assert_eq!(address_key("〒100-0001"), "〒100-0001");
    }

    #[test]
    fn address_private_use_characters() {
        assert_eq!(address_key("\u{E001}田1-1"), "\u{E001}田1-1");
        let table = council_table();
        assert_eq!(
            address_key_with("\u{E001}田1-1", &table).unwrap(),
            "高田1-1"
        );
        let err = address_key_with("本町\u{E0FF}1-1", &table).unwrap_err();
        assert_eq!(err.position, 2);
    }

    #[test]
    fn kanji_numbers() {
        let parse = |s: &str| parse_kanji_number(&s.chars().collect::<Vec<_>>());
        assert_eq!(parse("十二"), Some(12));
        assert_eq!(parse("二十"), Some(20));
        assert_eq!(parse("二十三"), Some(23));
        assert_eq!(parse("百五"), Some(105));
        assert_eq!(parse("二〇二五"), Some(2025));
        assert_eq!(parse("十十"), None);
        assert_eq!(parse("一二十"), None);
        assert_eq!(parse(""), None);
    }

    // ---- 外字 table -------------------------------------------------------------------------

    #[test]
    fn gaiji_csv_parses_both_code_point_forms_header_and_notes() {
        let table = council_table();
        assert_eq!(table.len(), 3);
        assert_eq!(table.map('\u{E001}'), Some("髙"));
        assert_eq!(table.map('\u{F0001}'), Some("塚"));
        assert_eq!(table.map('\u{E003}'), None);
        let no_header =
            GaijiTable::from_csv("\u{FEFF}u+e001,高\n\n# comment\n\u{E002},吉,\n").unwrap();
        assert_eq!(no_header.len(), 2);
        assert_eq!(no_header.map('\u{E002}'), Some("吉"));
        assert_eq!(
            GaijiTable::from_csv("U+10FFFD,𠮷")
                .unwrap()
                .map('\u{10FFFD}'),
            Some("𠮷")
        );
        assert!(GaijiTable::from_csv("").unwrap().is_empty());
    }

    #[test]
    fn gaiji_csv_rejects_bad_rows() {
        for (text, why) in [
            ("U+4E00,一", "not private use"),
            ("高,高", "literal not private use"),
            ("U+E001,\u{E002}", "standard contains private use"),
            (
                "U+E001,髙\u{F0000}",
                "standard contains plane-15 private use",
            ),
            ("U+E001,", "empty standard"),
            ("U+E001", "one field"),
            ("U+E001,高,note,extra", "four fields"),
            ("U+ZZZZ,高", "bad hex"),
            ("U+E0,高", "short hex"),
            ("U+D800,高", "surrogate"),
            ("\u{E001}\u{E002},高", "two literal characters"),
            ("U+E001,高\nU+E001,崎", "conflicting duplicate"),
            ("code_point,standard\nU+0041,A", "header then bad row"),
        ] {
            assert!(GaijiTable::from_csv(text).is_err(), "{why}: {text:?}");
        }
        let err = GaijiTable::from_csv("U+E001,高\nU+0041,A").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(
            GaijiTable::from_csv("U+E001,高\nU+E001,高").is_ok(),
            "identical duplicate"
        );
    }

    #[test]
    fn gaiji_insert_applies_the_same_checks() {
        let mut table = GaijiTable::new();
        assert!(table.insert('\u{E010}', "辺").is_ok());
        assert!(table.insert('A', "辺").is_err());
        assert!(table.insert('\u{E011}', "\u{E012}").is_err());
        assert_eq!(table.len(), 1);
    }

    // ---- sex and match keys -----------------------------------------------------------------

    #[test]
    fn sex_codes() {
        for text in ["1", "１", "男", "男性", "M", "male"] {
            assert_eq!(sex_code(text), Some(1), "{text}");
        }
        for text in ["2", "２", "女", "女性", "F", "Female"] {
            assert_eq!(sex_code(text), Some(2), "{text}");
        }
        for text in ["9", "0", "", "不明", "3"] {
            assert_eq!(sex_code(text), None, "{text}");
        }
    }

    fn resident_register() -> MatchKey {
        match_key(
            "髙橋 花子",
            "ﾀｶﾊｼ ﾊﾅｺ",
            "R2.6.15",
            "2",
            "本町一丁目2番3号",
            &GaijiTable::new(),
        )
        .unwrap()
    }

    #[test]
    fn match_key_agrees_across_notations() {
        let school = BasicFour {
            name: "高橋\u{3000}花子",
            name_kana: "たかはし はなこ",
            birth_date: "2020-06-15",
            sex: "女",
            address: "本町１－２－３",
        }
        .match_key(&GaijiTable::new())
        .unwrap();
        let register = resident_register();
        assert_eq!(school, register);
        assert!(school.differing_fields(&register).is_empty());
        assert!(school.basic_four_match(&register));
        assert_eq!(register.name, "高橋花子");
        assert_eq!(register.name_kana, "タカハシハナコ");
        assert_eq!(register.birth_date, date(2020, 6, 15));
        assert_eq!(register.sex, Some(2));
        assert_eq!(register.address, "本町1-2-3");
    }

    #[test]
    fn match_key_reports_the_differing_field() {
        let register = resident_register();
        let other = match_key(
            "高橋花子",
            "タカハシハナコ",
            "2020-06-16",
            "2",
            "本町1-2-3",
            &GaijiTable::new(),
        )
        .unwrap();
        assert_eq!(register.differing_fields(&other), vec!["birth_date"]);
        assert!(!register.basic_four_match(&other));
    }

    #[test]
    fn match_key_missing_values_never_agree() {
        let gaiji = GaijiTable::new();
        let a = match_key("高橋花子", "", "不明", "9", "", &gaiji).unwrap();
        let b = match_key("高橋花子", "", "不明", "9", "", &gaiji).unwrap();
        assert_eq!(
            a.differing_fields(&b),
            vec!["name_kana", "birth_date", "sex", "address"]
        );
        assert_eq!(
            a.missing_fields(),
            vec!["name_kana", "birth_date", "sex", "address"]
        );
        assert!(!a.basic_four_match(&b));
        // Without the kana name the basic four still decide.
        let register = resident_register();
        let school = match_key("髙橋花子", "", "R2.6.15", "2", "本町1-2-3", &gaiji).unwrap();
        assert_eq!(school.differing_fields(&register), vec!["name_kana"]);
        assert!(school.basic_four_match(&register));
    }

    #[test]
    fn match_key_propagates_unmapped_gaiji() {
        let table = council_table();
        let err = match_key("\u{E0FF}橋", "", "", "", "", &table).unwrap_err();
        assert_eq!(err.position, 0);
        let err = match_key("高橋", "", "", "", "本\u{E0FE}町", &table).unwrap_err();
        assert_eq!((err.character, err.position), ('\u{E0FE}', 1));
        let ok = match_key("\u{E001}橋", "", "", "", "", &table).unwrap();
        assert_eq!(ok.name, "高橋");
    }
}
