//! Variant kanji (異体字) folded to their standard form for matching.

use super::*;

/// Curated variant kanji (異体字) common in Japanese surnames: `variant<TAB>standard<TAB>note`.
pub(super) const VARIANT_KANJI_TSV: &str = include_str!("variant_kanji.tsv");
/// CJK compatibility ideographs and their canonical decompositions (what NFC/NFKC would do),
/// generated from the Unicode data; same TSV format.
pub(super) const COMPAT_IDEOGRAPHS_TSV: &str = include_str!("compat_ideographs.tsv");

pub(super) static BUILTIN_VARIANTS: LazyLock<VariantTable> = LazyLock::new(|| {
    let mut table = VariantTable::from_tsv(VARIANT_KANJI_TSV)
        .expect("src/identity/normalize/variant_kanji.tsv is valid");
    table
        .extend_from_tsv(COMPAT_IDEOGRAPHS_TSV)
        .expect("src/identity/normalize/compat_ideographs.tsv is valid");
    table
});

// Variant kanji table

/// Variant kanji (異体字) → standard form, used for matching keys only.
///
/// Only true variants of *one* character belong here (髙/高, 邊/辺, 齋/斎, 齊/斉); distinct
/// characters that happen to be confused (斉/斎) do not, since folding them would make two
/// different surnames match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantTable {
    pub(super) map: HashMap<char, String>,
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

    pub(super) fn fold_text(&self, text: &str) -> String {
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
