//! Matching precision of identity resolution (名寄せ) on synthetic children.
//!
//! `bench matching --children N --seed S` registers a fresh town, pushes N synthetic children
//! as `subject` records of its resident register (住基), then one school record per child
//! (校務支援: `basic_info` and a student number only, no resident number) with realistic
//! perturbations in fixed proportions, plus school records of children the register does not
//! know. Everything goes through the library ingest path, so resolution runs exactly as it does
//! for a push. Each record's outcome (`records.subject_resident_no` and its identity queue
//! status) is then compared with the ground truth the generator kept.
//!
//! The one number that must never move is `linked_wrongly`: a record silently attached to the
//! wrong child is the failure that matters (SPEC §5). Review and pending are safe outcomes whose
//! volume is the cost a town pays in manual work.
//!
//! Every name is invented from common surname and given-name lists; no real person is used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{self, Role};
use crate::demo::{Rng, with_check_digit};
use crate::identity::normalize::{GaijiTable, kana_key, name_key};
use crate::ingest::{Candidate, Ingestor, ResultDetail, Submission, chunked};
use crate::on_conn;
use crate::schema::Standard;
use crate::store::tables::{identity_queue, records};
use crate::store::{Backend, DbConn, Store, clients};

/// The resident-register source and the school-administration source of the bench town.
const REGISTER_SOURCE: &str = "juki";
const SCHOOL_SOURCE: &str = "koumu";

/// Surnames whose standard form has variant kanji (異体字) that the built-in table folds.
/// `(standard, variants, kana)`.
const VARIANT_SURNAMES: [(&str, &[&str], &str); 22] = [
    ("高橋", &["髙橋"], "タカハシ"),
    ("山崎", &["山﨑", "山嵜"], "ヤマザキ"),
    ("渡辺", &["渡邉", "渡邊"], "ワタナベ"),
    ("斎藤", &["齋藤"], "サイトウ"),
    ("浜田", &["濵田", "濱田"], "ハマダ"),
    ("吉田", &["𠮷田"], "ヨシダ"),
    ("高田", &["髙田"], "タカダ"),
    ("宮崎", &["宮﨑"], "ミヤザキ"),
    ("沢田", &["澤田"], "サワダ"),
    ("広瀬", &["廣瀬"], "ヒロセ"),
    ("桜井", &["櫻井"], "サクライ"),
    ("島田", &["嶋田"], "シマダ"),
    ("富田", &["冨田"], "トミタ"),
    ("中島", &["中嶋"], "ナカジマ"),
    ("吉川", &["𠮷川"], "ヨシカワ"),
    ("藤沢", &["藤澤"], "フジサワ"),
    ("黒田", &["黑田"], "クロダ"),
    ("浅野", &["淺野"], "アサノ"),
    ("柳田", &["栁田"], "ヤナギダ"),
    ("峰岸", &["峯岸"], "ミネギシ"),
    ("桑原", &["桒原"], "クワハラ"),
    ("徳永", &["德永"], "トクナガ"),
];

/// Surnames without variant forms. `(kanji, kana)`.
const PLAIN_SURNAMES: [(&str, &str); 40] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("清水", "シミズ"),
    ("森", "モリ"),
    ("池田", "イケダ"),
    ("橋本", "ハシモト"),
    ("阿部", "アベ"),
    ("石川", "イシカワ"),
    ("山下", "ヤマシタ"),
    ("中川", "ナカガワ"),
    ("石井", "イシイ"),
    ("小川", "オガワ"),
    ("前田", "マエダ"),
    ("岡田", "オカダ"),
    ("長谷川", "ハセガワ"),
    ("藤田", "フジタ"),
    ("後藤", "ゴトウ"),
    ("近藤", "コンドウ"),
    ("村上", "ムラカミ"),
    ("遠藤", "エンドウ"),
    ("青木", "アオキ"),
    ("坂本", "サカモト"),
    ("福田", "フクダ"),
    ("西村", "ニシムラ"),
    ("太田", "オオタ"),
    ("三浦", "ミウラ"),
    ("藤原", "フジワラ"),
];

/// Given names `(kanji or as registered, kana, sex)`.
const GIVEN_NAMES: [(&str, &str, i64); 60] = [
    ("蓮", "レン", 1),
    ("陽翔", "ハルト", 1),
    ("蒼", "アオイ", 1),
    ("湊", "ミナト", 1),
    ("悠真", "ユウマ", 1),
    ("大和", "ヤマト", 1),
    ("樹", "イツキ", 1),
    ("悠人", "ユウト", 1),
    ("朝陽", "アサヒ", 1),
    ("颯太", "ソウタ", 1),
    ("大翔", "ヒロト", 1),
    ("陸", "リク", 1),
    ("奏太", "カナタ", 1),
    ("結翔", "ユイト", 1),
    ("律", "リツ", 1),
    ("碧", "アオ", 1),
    ("蒼空", "ソラ", 1),
    ("陽太", "ヨウタ", 1),
    ("翔", "ショウ", 1),
    ("健太", "ケンタ", 1),
    ("拓海", "タクミ", 1),
    ("颯", "ハヤテ", 1),
    ("瑛太", "エイタ", 1),
    ("晴", "ハル", 1),
    ("新", "アラタ", 1),
    ("陽向", "ヒナタ", 1),
    ("岳", "ガク", 1),
    ("航", "ワタル", 1),
    ("凪", "ナギ", 1),
    ("ジョージ", "ジョージ", 1),
    ("陽葵", "ヒマリ", 2),
    ("凛", "リン", 2),
    ("結菜", "ユイナ", 2),
    ("芽依", "メイ", 2),
    ("紬", "ツムギ", 2),
    ("咲良", "サクラ", 2),
    ("葵", "アオイ", 2),
    ("澪", "ミオ", 2),
    ("莉子", "リコ", 2),
    ("結衣", "ユイ", 2),
    ("杏", "アン", 2),
    ("美桜", "ミオ", 2),
    ("心春", "コハル", 2),
    ("陽菜", "ヒナ", 2),
    ("花", "ハナ", 2),
    ("詩", "ウタ", 2),
    ("彩花", "アヤカ", 2),
    ("琴音", "コトネ", 2),
    ("結月", "ユヅキ", 2),
    ("楓", "カエデ", 2),
    ("美月", "ミヅキ", 2),
    ("柚希", "ユズキ", 2),
    ("千尋", "チヒロ", 2),
    ("七海", "ナナミ", 2),
    ("愛莉", "アイリ", 2),
    ("心愛", "ココア", 2),
    ("真央", "マオ", 2),
    ("優奈", "ユウナ", 2),
    ("さくら", "サクラ", 2),
    ("ひかり", "ヒカリ", 2),
];

/// Town areas (町名) of the bench town's addresses.
const AREAS: [&str; 12] = [
    "本町", "栄町", "旭町", "中央", "東町", "西町", "緑町", "若葉", "桜台", "南台", "朝日", "末広",
];

/// The council's 外字 table for the bench: vendor private-use code points of the surname
/// kanji that rosters typically cannot hold.
const GAIJI_TABLE: &str =
    "code_point,standard,note\nU+E001,髙,はしご高\nU+E002,﨑,たつさき\nU+E003,邉,渡邉の邉\n";
/// Which standard kanji each mapped 外字 of [`GAIJI_TABLE`] stands for (after folding).
const GAIJI_FOR: [(char, char); 3] = [('高', '\u{E001}'), ('崎', '\u{E002}'), ('辺', '\u{E003}')];
/// A private-use code point the table does not map.
const UNMAPPED_GAIJI: char = '\u{E0F0}';

/// How a school record was derived from the child it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Exact,
    VariantKanji,
    WidthAndSpaces,
    MissingKana,
    TwinSibling,
    GaijiMapped,
    KanaTypo,
    MovedAddress,
    SameNameDuplicate,
    GaijiUnmapped,
    NotInRegister,
    NotInRegisterNameOnly,
}

/// What a correct hub does with a record of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// Linked automatically to the child it is about.
    Link,
    /// Left to a person, with the child among the candidates.
    Review,
    /// Waits: the register does not know the child.
    Pending,
}

impl Kind {
    /// Share in percent: of the register's children, or (not in register) on top of them.
    const ALL: [(Kind, usize); 12] = [
        (Kind::Exact, 35),
        (Kind::VariantKanji, 12),
        (Kind::WidthAndSpaces, 12),
        (Kind::MissingKana, 10),
        (Kind::TwinSibling, 6),
        (Kind::GaijiMapped, 2),
        (Kind::KanaTypo, 8),
        (Kind::MovedAddress, 8),
        (Kind::SameNameDuplicate, 6),
        (Kind::GaijiUnmapped, 1),
        (Kind::NotInRegister, 5),
        (Kind::NotInRegisterNameOnly, 5),
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Exact => "exact_copy",
            Kind::VariantKanji => "variant_kanji",
            Kind::WidthAndSpaces => "width_kana_spaces_address_notation",
            Kind::MissingKana => "missing_kana",
            Kind::TwinSibling => "twin_sibling",
            Kind::GaijiMapped => "gaiji_mapped",
            Kind::KanaTypo => "kana_typo",
            Kind::MovedAddress => "moved_address",
            Kind::SameNameDuplicate => "same_name_same_birthday_duplicate",
            Kind::GaijiUnmapped => "gaiji_unmapped",
            Kind::NotInRegister => "not_in_register",
            Kind::NotInRegisterNameOnly => "not_in_register_name_only",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Exact => "identical name, kana, birth date, sex and address",
            Kind::VariantKanji => {
                "surname in a variant form on one side (髙/高, 﨑/崎, 邉/辺, 齋/斎, 𠮷/吉 …)"
            }
            Kind::WidthAndSpaces => {
                "half-width or hiragana kana, full-width or no space in the name, address as 1-2-3 / １－２－３ / 番地"
            }
            Kind::MissingKana => "no kana (half of them no address either)",
            Kind::TwinSibling => {
                "twins: same surname, birth date and address, different given names; record without kana and address"
            }
            Kind::GaijiMapped => {
                "surname kanji as a private-use 外字 (U+E001…) that the council table maps"
            }
            Kind::KanaTypo => "one kana character mistyped",
            Kind::MovedAddress => "the family moved: a different address",
            Kind::SameNameDuplicate => {
                "another child of the register has the same name, birth date and sex; record without address"
            }
            Kind::GaijiUnmapped => "a private-use 外字 the council table does not map (U+E0F0)",
            Kind::NotInRegister => "child unknown to the register; record with kana and address",
            Kind::NotInRegisterNameOnly => {
                "child unknown to the register; record with name, birth date and sex only"
            }
        }
    }

    fn expected(self) -> Expected {
        match self {
            Kind::Exact
            | Kind::VariantKanji
            | Kind::WidthAndSpaces
            | Kind::MissingKana
            | Kind::TwinSibling
            | Kind::GaijiMapped => Expected::Link,
            Kind::KanaTypo | Kind::MovedAddress | Kind::SameNameDuplicate | Kind::GaijiUnmapped => {
                Expected::Review
            }
            Kind::NotInRegister | Kind::NotInRegisterNameOnly => Expected::Pending,
        }
    }

    fn in_register(self) -> bool {
        !matches!(self, Kind::NotInRegister | Kind::NotInRegisterNameOnly)
    }

    /// Kinds whose child may reach the register only after the school record (転入届 late):
    /// only those a correct hub can still link once the child arrives.
    fn may_arrive_late(self) -> bool {
        matches!(
            self,
            Kind::Exact | Kind::VariantKanji | Kind::WidthAndSpaces | Kind::MissingKana
        )
    }
}

/// One resident-register entry.
#[derive(Debug, Clone)]
struct Person {
    resident_no: String,
    household_no: String,
    surname: String,
    /// The surname's standard form (for perturbations).
    surname_standard: &'static str,
    surname_kana: &'static str,
    given: &'static str,
    given_kana: &'static str,
    sex: i64,
    birth: NaiveDate,
    /// (area, chome, ban, go)
    address: (&'static str, u64, u64, u64),
}

impl Person {
    fn name(&self) -> String {
        format!("{} {}", self.surname, self.given)
    }
    fn kana(&self) -> String {
        format!("{} {}", self.surname_kana, self.given_kana)
    }
}

fn address_text((area, a, b, c): (&str, u64, u64, u64)) -> String {
    format!("{area}{a}丁目{b}番{c}号")
}

/// What the generator knows about one school record.
struct Truth {
    kind: Kind,
    /// The child the record is about (`None`: not in the register).
    resident_no: Option<String>,
    /// The other register entry with the same name, birth date and sex (duplicates).
    duplicate: Option<String>,
    /// The child's register entry arrived after the school record.
    late: bool,
}

const FULL_KANA: &str = "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";
const HALF_KANA: &str = "ｦｧｨｩｪｫｬｭｮｯｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ";
const VOICED: &str = "ガギグゲゴザジズゼゾダヂヅデドバビブベボ";
const VOICED_BASE: &str = "カキクケコサシスセソタチツテトハヒフヘホ";
const SEMI_VOICED: &str = "パピプペポ";
const SEMI_VOICED_BASE: &str = "ハヒフヘホ";

fn half_of(c: char) -> Option<char> {
    FULL_KANA
        .chars()
        .position(|f| f == c)
        .and_then(|i| HALF_KANA.chars().nth(i))
}

/// Katakana as old systems store it: half-width, voiced marks as separate characters.
fn half_width_kana(kana: &str) -> String {
    let mut out = String::new();
    for c in kana.chars() {
        if let Some(h) = half_of(c) {
            out.push(h);
        } else if let Some(i) = VOICED.chars().position(|v| v == c) {
            let base = VOICED_BASE.chars().nth(i).and_then(half_of).unwrap_or(c);
            out.push(base);
            out.push('ﾞ');
        } else if let Some(i) = SEMI_VOICED.chars().position(|v| v == c) {
            let base = SEMI_VOICED_BASE
                .chars()
                .nth(i)
                .and_then(half_of)
                .unwrap_or(c);
            out.push(base);
            out.push('ﾟ');
        } else if c == 'ヴ' {
            out.push_str("ｳﾞ");
        } else if c == '　' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Katakana written in hiragana (some school systems keep the reading so).
fn hiragana(kana: &str) -> String {
    kana.chars()
        .map(|c| match u32::from(c) {
            code @ 0x30A1..=0x30F6 => char::from_u32(code - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn full_width_digits(n: u64) -> String {
    n.to_string()
        .chars()
        .map(|d| char::from_u32(u32::from(d) - u32::from('0') + 0xFF10).unwrap_or(d))
        .collect()
}

/// The same address in another notation a municipal system might use.
fn renotated_address(rng: &mut Rng, (area, a, b, c): (&str, u64, u64, u64)) -> String {
    match rng.below(5) {
        0 => format!("{area}{a}-{b}-{c}"),
        1 => format!(
            "{area}{}－{}－{}",
            full_width_digits(a),
            full_width_digits(b),
            full_width_digits(c)
        ),
        2 => format!("{area}{a}丁目{b}番地{c}"),
        3 => format!("{area}　{a}丁目{b}番{c}号"),
        _ => format!(
            "{area}{}丁目{}番{}号",
            full_width_digits(a),
            full_width_digits(b),
            full_width_digits(c)
        ),
    }
}

/// The kana with one character replaced by another kana (a typing mistake).
fn kana_with_typo(rng: &mut Rng, kana: &str) -> String {
    const REPLACEMENTS: [char; 20] = [
        'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ',
        'タ', 'チ', 'ツ', 'テ', 'ト',
    ];
    let chars: Vec<char> = kana.chars().collect();
    let positions: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] != ' ').collect();
    loop {
        let at = positions[rng.below(positions.len() as u64) as usize];
        let replacement = *rng.pick(&REPLACEMENTS);
        if replacement == chars[at] {
            continue;
        }
        let mut typo = chars.clone();
        typo[at] = replacement;
        let typo: String = typo.into_iter().collect();
        if kana_key(&typo) != kana_key(kana) {
            return typo;
        }
    }
}

/// Generates the register and the school records with their ground truth.
struct World {
    rng: Rng,
    /// Normalised (name, birth date, sex) of everyone generated, so no two people agree by
    /// accident (only the deliberate duplicates do).
    keys: HashSet<(String, NaiveDate, i64)>,
    register: Vec<Person>,
    /// Register entries pushed after the school records.
    late_register: Vec<Person>,
    school: Vec<(Value, Truth)>,
    next_person: u64,
    next_record: u64,
}

fn key_of(
    surname_standard: &str,
    given: &str,
    birth: NaiveDate,
    sex: i64,
) -> (String, NaiveDate, i64) {
    let name = name_key(&format!("{surname_standard}{given}"), &GaijiTable::new())
        .expect("generated names have no 外字");
    (name, birth, sex)
}

impl World {
    fn new(seed: u64) -> World {
        World {
            rng: Rng::new(seed),
            keys: HashSet::new(),
            register: Vec::new(),
            late_register: Vec::new(),
            school: Vec::new(),
            next_person: 0,
            next_record: 0,
        }
    }

    fn birth(&mut self) -> NaiveDate {
        // School age on 2025-04-01: born 2009-04-02 ..= 2019-04-01.
        let first = NaiveDate::from_ymd_opt(2009, 4, 2).expect("valid date");
        first + Duration::days(self.rng.below(3652) as i64)
    }

    fn address(&mut self) -> (&'static str, u64, u64, u64) {
        (
            *self.rng.pick(&AREAS),
            self.rng.below(5) + 1,
            self.rng.below(30) + 1,
            self.rng.below(20) + 1,
        )
    }

    /// A surname `(as registered, standard, kana)`: a variant-capable one when asked, and
    /// then in its variant form on the register about half the time.
    fn surname(
        &mut self,
        variant_capable: bool,
        gaiji_capable: bool,
    ) -> (String, &'static str, &'static str) {
        if gaiji_capable {
            let options: Vec<&(&str, &[&str], &str)> = VARIANT_SURNAMES
                .iter()
                .filter(|(standard, _, _)| {
                    standard
                        .chars()
                        .any(|c| GAIJI_FOR.iter().any(|(k, _)| *k == c))
                })
                .collect();
            let (standard, _, kana) = **self.rng.pick(&options);
            return (standard.to_string(), standard, kana);
        }
        let variant_share = VARIANT_SURNAMES.len() as u64 * 100
            / (VARIANT_SURNAMES.len() + PLAIN_SURNAMES.len()) as u64;
        if variant_capable || self.rng.chance(variant_share) {
            let (standard, variants, kana) = *self.rng.pick(&VARIANT_SURNAMES);
            let registered = if self.rng.chance(50) {
                self.rng.pick(variants).to_string()
            } else {
                standard.to_string()
            };
            (registered, standard, kana)
        } else {
            let (kanji, kana) = *self.rng.pick(&PLAIN_SURNAMES);
            (kanji.to_string(), kanji, kana)
        }
    }

    /// A new person with a (name, birth date, sex) nobody else has.
    fn person(&mut self, variant_capable: bool, gaiji_capable: bool) -> Person {
        loop {
            let (surname, surname_standard, surname_kana) =
                self.surname(variant_capable, gaiji_capable);
            let (given, given_kana, sex) = *self.rng.pick(&GIVEN_NAMES);
            let birth = self.birth();
            if !self
                .keys
                .insert(key_of(surname_standard, given, birth, sex))
            {
                continue;
            }
            self.next_person += 1;
            let address = self.address();
            return Person {
                resident_no: format!("C{:07}", self.next_person),
                household_no: format!("H{:07}", self.next_person),
                surname,
                surname_standard,
                surname_kana,
                given,
                given_kana,
                sex,
                birth,
                address,
            };
        }
    }

    /// The twin of `first`: same household, surname, birth date and address.
    fn twin_of(&mut self, first: &Person) -> Person {
        loop {
            let (given, given_kana, sex) = *self.rng.pick(&GIVEN_NAMES);
            if !self
                .keys
                .insert(key_of(first.surname_standard, given, first.birth, sex))
            {
                continue;
            }
            self.next_person += 1;
            return Person {
                resident_no: format!("C{:07}", self.next_person),
                given,
                given_kana,
                sex,
                ..first.clone()
            };
        }
    }

    /// Another register entry with the same name, birth date and sex, living elsewhere; its
    /// surname may be written in another variant form.
    fn duplicate_of(&mut self, first: &Person) -> Person {
        self.next_person += 1;
        let surname = VARIANT_SURNAMES
            .iter()
            .find(|(standard, _, _)| *standard == first.surname_standard)
            .map(|(standard, variants, _)| {
                if self.rng.chance(50) {
                    self.rng.pick(variants).to_string()
                } else {
                    standard.to_string()
                }
            })
            .unwrap_or_else(|| first.surname.clone());
        let mut address = self.address();
        while address == first.address {
            address = self.address();
        }
        Person {
            resident_no: format!("D{:07}", self.next_person),
            household_no: format!("H{:07}", self.next_person),
            surname,
            address,
            ..first.clone()
        }
    }

    fn school_record(&mut self, basic: Value, truth: Truth) {
        self.next_record += 1;
        let n = self.next_record;
        let weight = 20.0 + self.rng.below(300) as f64 / 10.0;
        let record = json!({
            "record_type": "school-health-exam",
            "schema_version": "1.0",
            "source_record_id": format!("{SCHOOL_SOURCE}-{n:07}"),
            "subject": {"basic_info": basic, "local_ids": {"student_no": format!("S{n:07}")}},
            "effective_date": "2025-04-20",
            "examined_on": "2025-04-20",
            "weight_kg": weight,
        });
        self.school.push((record, truth));
    }

    /// The school record of a register child, perturbed as `kind` says.
    fn record_for(&mut self, child: &Person, kind: Kind, duplicate: Option<String>, late: bool) {
        let exact = json!({
            "name": child.name(),
            "name_kana": child.kana(),
            "birth_date": child.birth.format("%Y-%m-%d").to_string(),
            "sex": child.sex,
            "address": address_text(child.address),
        });
        let mut basic = exact.clone();
        match kind {
            Kind::Exact => {}
            Kind::VariantKanji => {
                // The other side holds the other form of the surname.
                let (_, variants, _) = VARIANT_SURNAMES
                    .iter()
                    .find(|(standard, _, _)| *standard == child.surname_standard)
                    .expect("variant-capable surname");
                let other = if child.surname == child.surname_standard {
                    self.rng.pick(variants).to_string()
                } else {
                    child.surname_standard.to_string()
                };
                basic["name"] = json!(format!("{other} {}", child.given));
            }
            Kind::WidthAndSpaces => {
                basic["name"] = json!(match self.rng.below(3) {
                    0 => format!("{}　{}", child.surname, child.given),
                    1 => format!("{}{}", child.surname, child.given),
                    _ => format!(" {}  {} ", child.surname, child.given),
                });
                basic["name_kana"] = json!(match self.rng.below(3) {
                    0 => half_width_kana(&child.kana()),
                    1 => hiragana(&child.kana()),
                    _ => format!("{}　{}", child.surname_kana, child.given_kana),
                });
                basic["address"] = json!(renotated_address(&mut self.rng, child.address));
            }
            Kind::MissingKana => {
                basic.as_object_mut().expect("object").remove("name_kana");
                if self.rng.chance(50) {
                    basic.as_object_mut().expect("object").remove("address");
                }
            }
            Kind::TwinSibling | Kind::SameNameDuplicate => {
                let object = basic.as_object_mut().expect("object");
                object.remove("address");
                object.remove("name_kana");
            }
            Kind::GaijiMapped | Kind::GaijiUnmapped => {
                let surname: String = child
                    .surname_standard
                    .chars()
                    .map(|c| match GAIJI_FOR.iter().find(|(k, _)| *k == c) {
                        Some(_) if kind == Kind::GaijiUnmapped => UNMAPPED_GAIJI,
                        Some((_, gaiji)) => *gaiji,
                        None => c,
                    })
                    .collect();
                basic["name"] = json!(format!("{surname} {}", child.given));
            }
            Kind::KanaTypo => {
                basic["name_kana"] = json!(kana_with_typo(&mut self.rng, &child.kana()));
            }
            Kind::MovedAddress => {
                let mut moved = self.address();
                while moved == child.address {
                    moved = self.address();
                }
                basic["address"] = json!(address_text(moved));
            }
            Kind::NotInRegister | Kind::NotInRegisterNameOnly => {
                unreachable!("records of children outside the register are made apart")
            }
        }
        self.school_record(
            basic,
            Truth {
                kind,
                resident_no: Some(child.resident_no.clone()),
                duplicate,
                late,
            },
        );
    }

    /// A school record of a child the register does not know.
    fn record_outside(&mut self, kind: Kind) {
        let child = self.person(false, false);
        let mut basic = json!({
            "name": child.name(),
            "birth_date": child.birth.format("%Y-%m-%d").to_string(),
            "sex": child.sex,
        });
        if kind == Kind::NotInRegister {
            basic["name_kana"] = json!(child.kana());
            basic["address"] = json!(address_text(child.address));
        }
        self.school_record(
            basic,
            Truth {
                kind,
                resident_no: None,
                duplicate: None,
                late: false,
            },
        );
    }

    fn register_child(&mut self, person: Person, late: bool) {
        if late {
            self.late_register.push(person);
        } else {
            self.register.push(person);
        }
    }

    /// Build the town: `children` register children and their school records, plus records of
    /// children outside the register, in a shuffled order.
    fn generate(&mut self, children: usize) {
        // Units: one child, or a pair of twins.
        let mut units: Vec<Kind> = Vec::new();
        let mut planned = 0;
        for (kind, share) in Kind::ALL {
            if !kind.in_register() {
                continue;
            }
            let mut count = children * share / 100;
            if kind == Kind::TwinSibling {
                count -= count % 2;
                units.extend(std::iter::repeat_n(kind, count / 2));
            } else {
                units.extend(std::iter::repeat_n(kind, count));
            }
            planned += count;
        }
        units.extend(std::iter::repeat_n(
            Kind::Exact,
            children.saturating_sub(planned),
        ));
        for (kind, share) in Kind::ALL {
            if !kind.in_register() {
                units.extend(std::iter::repeat_n(kind, children * share / 100));
            }
        }
        shuffle(&mut self.rng, &mut units);
        for kind in units {
            match kind {
                Kind::NotInRegister | Kind::NotInRegisterNameOnly => self.record_outside(kind),
                Kind::TwinSibling => {
                    let first = self.person(false, false);
                    let second = self.twin_of(&first);
                    for twin in [first, second] {
                        self.record_for(&twin, kind, None, false);
                        self.register_child(twin, false);
                    }
                }
                Kind::SameNameDuplicate => {
                    let variant_capable = self.rng.chance(50);
                    let child = self.person(variant_capable, false);
                    let other = self.duplicate_of(&child);
                    self.record_for(&child, kind, Some(other.resident_no.clone()), false);
                    self.register_child(child, false);
                    self.register_child(other, false);
                }
                _ => {
                    let child = self.person(
                        kind == Kind::VariantKanji,
                        kind == Kind::GaijiMapped || kind == Kind::GaijiUnmapped,
                    );
                    let late = kind.may_arrive_late() && self.rng.chance(10);
                    self.record_for(&child, kind, None, late);
                    self.register_child(child, late);
                }
            }
        }
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

fn subject_record(person: &Person) -> Value {
    json!({
        "record_type": "subject",
        "schema_version": "1.0",
        "source_record_id": format!("{REGISTER_SOURCE}-{}", person.resident_no),
        "subject": {"resident_no": person.resident_no},
        "effective_date": person.birth.format("%Y-%m-%d").to_string(),
        "household_no": person.household_no,
        "name": person.name(),
        "name_kana": person.kana(),
        "birth_date": person.birth.format("%Y-%m-%d").to_string(),
        "sex": person.sex,
        "address": address_text(person.address),
        "role": "child",
    })
}

/// Outcome counts of a group of records.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Outcomes {
    pub records: usize,
    pub linked_correctly: usize,
    /// Linked to a child the record is not about (or linked though the child is not in the
    /// register). Must be 0.
    pub linked_wrongly: usize,
    pub review: usize,
    /// Review items whose candidates include the child the record is about.
    pub review_with_true_candidate: usize,
    pub pending: usize,
    /// Stored records without any resolution state (must be 0: nothing silently dropped).
    pub unresolved: usize,
    /// Records that ended as the generator expected.
    pub as_expected: usize,
}

#[derive(Debug, Serialize)]
pub struct KindOutcome {
    pub kind: &'static str,
    pub description: &'static str,
    pub expected: Expected,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

#[derive(Debug, Serialize)]
pub struct MatchingBench {
    pub backend: String,
    pub municipality_code: String,
    pub seed: u64,
    /// Children of the register (twins included, duplicates not).
    pub children: usize,
    /// Register entries pushed (children and same-name duplicates).
    pub register_subjects: usize,
    /// Register entries pushed only after the school records (late 転入 entry).
    pub register_subjects_late: usize,
    /// School records pushed (one per child plus children outside the register).
    pub school_records: usize,
    pub stored_school_records: usize,
    pub totals: Outcomes,
    /// linked correctly / all links.
    pub precision: f64,
    /// linked correctly / records a correct hub links automatically.
    pub automatic_link_recall: f64,
    /// Share of all records a person has to look at.
    pub review_share: f64,
    pub kinds: Vec<KindOutcome>,
    /// Records whose child's register entry arrived after them (a subset of the kinds above).
    pub late_register: Outcomes,
    /// Review items by reason.
    pub review_reasons: BTreeMap<String, usize>,
    pub seconds_register: f64,
    pub seconds_school: f64,
    pub seconds_late_register: f64,
    pub school_records_per_second: f64,
    pub machine: String,
    pub when: String,
}

/// A town code of the bench range that is not registered yet, so runs never mix.
fn fresh_town(conn: &mut DbConn) -> anyhow::Result<String> {
    for base in 11950..=11999 {
        let code = with_check_digit(&base.to_string());
        if clients::municipality(conn, &code)?.is_none() {
            return Ok(code);
        }
    }
    anyhow::bail!("every matching-bench town code (11950x–11999x) is taken; use a fresh --data-dir")
}

fn register_town(conn: &mut DbConn, town: &str) -> anyhow::Result<()> {
    clients::add_municipality(conn, town, "名寄せベンチ町", None, None, "bench")?;
    for (name, types) in [
        (REGISTER_SOURCE, "subject"),
        (SCHOOL_SOURCE, "school-health-exam"),
    ] {
        let (_, hash) = auth::new_token();
        clients::add_client(
            conn,
            &clients::NewClient {
                binding: &auth::Binding::Municipality(town.to_string()),
                name,
                roles: &[Role::Source.as_str().to_string()],
                record_types: Some(&[types.to_string()]),
                token_hash: &hash,
                cert_fingerprint: None,
            },
            "bench",
        )?;
    }
    let entry = crate::audit::AuditEntry {
        municipality_code: town.to_string(),
        client_name: Some("bench".into()),
        roles: Some("admin".into()),
        action: "admin.gaiji.import".into(),
        result: "ok".into(),
        ..Default::default()
    };
    crate::store::identity::import_gaiji(conn, town, GAIJI_TABLE, &entry)?;
    Ok(())
}

fn push(
    conn: &mut DbConn,
    ingestor: &Ingestor,
    town: &str,
    source: &str,
    records: Vec<Value>,
) -> anyhow::Result<f64> {
    let submission = Submission {
        municipality: town.to_string(),
        source: source.to_string(),
        allowed_types: None,
        client_id: None,
    };
    let count = records.len();
    let started = Instant::now();
    let candidates = records
        .into_iter()
        .enumerate()
        .map(|(index, record)| Candidate {
            index,
            row: None,
            parsed: Ok(record),
        });
    let report = ingestor.ingest(
        conn,
        &submission,
        false,
        ResultDetail::Rejected,
        chunked(candidates),
    )?;
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.rejected == 0 && report.created as usize == count,
        "{source}: {} of {count} created, {} rejected: {:?}",
        report.created,
        report.rejected,
        report.results.first()
    );
    Ok(took)
}

fn reason_class(reason: &str) -> String {
    if reason.contains("match exactly") {
        "several subjects match exactly".into()
    } else if reason.starts_with("near match") {
        "near match (one field differs)".into()
    } else if reason.starts_with("unmapped 外字") {
        "unmapped 外字".into()
    } else {
        reason.chars().take(60).collect()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        round3(n as f64 / d as f64)
    }
}

/// `bench matching`: precision of identity resolution on `children` synthetic children.
pub fn matching(store: Store, children: usize, seed: u64) -> anyhow::Result<MatchingBench> {
    anyhow::ensure!(children >= 10, "--children must be at least 10");
    let backend = match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    let ingestor = Ingestor::new(Arc::new(Standard::load()));
    let mut conn = store.conn()?;
    let town = fresh_town(&mut conn)?;
    register_town(&mut conn, &town)?;

    let mut world = World::new(seed);
    world.generate(children);
    let register: Vec<Value> = world.register.iter().map(subject_record).collect();
    let late_register: Vec<Value> = world.late_register.iter().map(subject_record).collect();
    let (register_count, late_count) = (register.len(), late_register.len());
    let (school, truths): (Vec<Value>, Vec<Truth>) =
        std::mem::take(&mut world.school).into_iter().unzip();
    let school_count = school.len();
    let ids: Vec<String> = school
        .iter()
        .map(|r| {
            r["source_record_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();

    eprintln!(
        "matching bench: town {town}, {register_count} register entries (+{late_count} late), {school_count} school records"
    );
    let seconds_register = push(&mut conn, &ingestor, &town, REGISTER_SOURCE, register)?;
    let seconds_school = push(&mut conn, &ingestor, &town, SCHOOL_SOURCE, school)?;
    let seconds_late_register = push(&mut conn, &ingestor, &town, REGISTER_SOURCE, late_register)?;

    let linked: HashMap<String, Option<String>> = on_conn!(&mut conn, |c| records::table
        .filter(records::municipality_code.eq(&town))
        .filter(records::source.eq(SCHOOL_SOURCE))
        .select((records::source_record_id, records::subject_resident_no))
        .load::<(String, Option<String>)>(c))?
    .into_iter()
    .collect();
    let queue: HashMap<String, (String, String, String)> =
        on_conn!(&mut conn, |c| identity_queue::table
            .filter(identity_queue::municipality_code.eq(&town))
            .filter(identity_queue::source.eq(SCHOOL_SOURCE))
            .select((
                identity_queue::source_record_id,
                identity_queue::status,
                identity_queue::reason,
                identity_queue::candidates,
            ))
            .load::<(String, String, String, String)>(c))?
        .into_iter()
        .map(|(id, status, reason, candidates)| (id, (status, reason, candidates)))
        .collect();

    let mut totals = Outcomes::default();
    let mut late = Outcomes::default();
    let mut by_kind: BTreeMap<Kind, Outcomes> = BTreeMap::new();
    let mut review_reasons = BTreeMap::new();
    let mut automatic_expected = 0;
    for (id, truth) in ids.iter().zip(&truths) {
        let expected = truth.kind.expected();
        if expected == Expected::Link {
            automatic_expected += 1;
        }
        let mut outcome = Outcomes {
            records: 1,
            ..Outcomes::default()
        };
        let stored = linked.get(id);
        match (stored.cloned().flatten(), queue.get(id)) {
            (Some(resident_no), _) => {
                if truth.resident_no.as_deref() == Some(resident_no.as_str()) {
                    outcome.linked_correctly = 1;
                    outcome.as_expected = usize::from(expected == Expected::Link);
                } else {
                    outcome.linked_wrongly = 1;
                }
            }
            (None, Some((status, reason, candidates))) if status == "review" => {
                outcome.review = 1;
                *review_reasons.entry(reason_class(reason)).or_insert(0) += 1;
                let candidates: Vec<String> = serde_json::from_str::<Vec<Value>>(candidates)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| c["resident_no"].as_str().map(str::to_string))
                    .collect();
                let has = |r: &Option<String>| r.as_ref().is_none_or(|r| candidates.contains(r));
                let true_candidate = truth.resident_no.is_some() && has(&truth.resident_no);
                outcome.review_with_true_candidate = usize::from(true_candidate);
                // The unmapped 外字 cannot be compared, so it has no candidates by design.
                outcome.as_expected = usize::from(
                    expected == Expected::Review
                        && (truth.kind == Kind::GaijiUnmapped
                            || (true_candidate && has(&truth.duplicate))),
                );
            }
            (None, Some((status, _, _))) if status == "pending" => {
                outcome.pending = 1;
                outcome.as_expected = usize::from(expected == Expected::Pending);
            }
            _ => outcome.unresolved = usize::from(stored.is_some()),
        }
        for group in [&mut totals, by_kind.entry(truth.kind).or_default()] {
            add(group, &outcome);
        }
        if truth.late {
            add(&mut late, &outcome);
        }
    }
    let links = totals.linked_correctly + totals.linked_wrongly;
    let kinds = by_kind
        .into_iter()
        .map(|(kind, outcomes)| KindOutcome {
            kind: kind.name(),
            description: kind.description(),
            expected: kind.expected(),
            outcomes,
        })
        .collect();
    Ok(MatchingBench {
        backend: backend.to_string(),
        municipality_code: town,
        seed,
        children: world
            .register
            .iter()
            .chain(&world.late_register)
            .filter(|p| p.resident_no.starts_with('C'))
            .count(),
        register_subjects: register_count + late_count,
        register_subjects_late: late_count,
        school_records: school_count,
        stored_school_records: linked.len(),
        precision: ratio(totals.linked_correctly, links),
        automatic_link_recall: ratio(totals.linked_correctly, automatic_expected),
        review_share: ratio(totals.review, totals.records),
        totals,
        kinds,
        late_register: late,
        review_reasons,
        seconds_register: round3(seconds_register),
        seconds_school: round3(seconds_school),
        seconds_late_register: round3(seconds_late_register),
        school_records_per_second: (school_count as f64 / seconds_school).round(),
        machine: super::machine(),
        when: crate::store::now_rfc3339(),
    })
}

fn add(total: &mut Outcomes, one: &Outcomes) {
    total.records += one.records;
    total.linked_correctly += one.linked_correctly;
    total.linked_wrongly += one.linked_wrongly;
    total.review += one.review;
    total.review_with_true_candidate += one.review_with_true_candidate;
    total.pending += one.pending;
    total.unresolved += one.unresolved;
    total.as_expected += one.as_expected;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::normalize::address_key;

    fn name(text: &str) -> String {
        name_key(text, &GaijiTable::new()).expect("no 外字")
    }

    #[test]
    fn every_variant_surname_folds_to_its_standard_form() {
        for (standard, variants, _) in VARIANT_SURNAMES {
            for variant in variants {
                assert_eq!(name(variant), name(standard), "{variant} vs {standard}");
            }
        }
    }

    #[test]
    fn width_perturbations_keep_the_keys() {
        let mut rng = Rng::new(3);
        for (_, kana, _) in GIVEN_NAMES {
            let full = format!("タカハシ {kana}");
            assert_eq!(kana_key(&half_width_kana(&full)), kana_key(&full), "{full}");
            assert_eq!(kana_key(&hiragana(&full)), kana_key(&full), "{full}");
            let typo = kana_with_typo(&mut rng, &full);
            assert_ne!(kana_key(&typo), kana_key(&full));
        }
        for _ in 0..200 {
            let address = (
                "緑町",
                1 + rng.below(5),
                1 + rng.below(30),
                1 + rng.below(20),
            );
            let other = renotated_address(&mut rng, address);
            assert_eq!(
                address_key(&other),
                address_key(&address_text(address)),
                "{other}"
            );
        }
    }

    #[test]
    fn mapped_gaiji_fold_like_the_kanji_they_stand_for() {
        let table = GaijiTable::from_csv(GAIJI_TABLE).expect("valid table");
        for (standard, gaiji) in GAIJI_FOR {
            assert_eq!(
                name_key(&format!("{gaiji}田"), &table).expect("mapped"),
                name(&format!("{standard}田"))
            );
        }
    }

    #[test]
    fn the_plan_has_the_announced_proportions() {
        let mut world = World::new(7);
        world.generate(1000);
        let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
        for (_, truth) in &world.school {
            *counts.entry(truth.kind).or_default() += 1;
        }
        for (kind, share) in Kind::ALL {
            assert_eq!(counts[&kind], 1000 * share / 100, "{kind:?}");
        }
        let children = world
            .register
            .iter()
            .chain(&world.late_register)
            .filter(|p| p.resident_no.starts_with('C'))
            .count();
        assert_eq!(children, 1000);
    }

    #[test]
    fn a_small_town_resolves_without_a_wrong_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(
            &crate::store::Location::Sqlite(dir.path().join("m.sqlite3")),
            &crate::keys::KeyPaths::in_dir(dir.path()),
        )
        .expect("store");
        let result = matching(store, 400, 11).expect("bench runs");
        assert_eq!(result.totals.linked_wrongly, 0, "{result:#?}");
        assert_eq!(result.totals.unresolved, 0, "{result:#?}");
        assert_eq!(result.stored_school_records, result.school_records);
        for kind in &result.kinds {
            if kind.expected == Expected::Link {
                // Links only fail for the late register entries that wait in review.
                assert!(
                    kind.outcomes.linked_correctly + result.late_register.records
                        >= kind.outcomes.records,
                    "{kind:#?}"
                );
            }
        }
    }
}
