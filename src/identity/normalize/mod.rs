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

mod address;
mod dates;
mod gaiji;
mod names;
mod variants;
mod width;

pub use address::{address_key, address_key_with};
pub use dates::parse_japanese_date;
pub use gaiji::GaijiTable;
pub use names::{kana_key, name_key, name_key_with};
pub use variants::VariantTable;
// The sections share their helpers through this module.
use address::*;
use gaiji::*;
use width::*;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

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
    use super::dates::*;
    use super::variants::*;
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
