//! The council-maintained 外字 conversion table and its application before matching.

use super::*;

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

pub(super) fn parse_code_point(field: &str) -> Result<char, String> {
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
pub(super) fn map_gaiji(text: &str, gaiji: Option<&GaijiTable>) -> Result<String, Unmapped> {
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
