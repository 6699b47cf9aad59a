//! JSON that means one thing. serde_json keeps the last of two equal keys in an object, while
//! other parsers (a vendor's validator among them) keep the first: the hub and the sender would
//! then disagree on what was sent. Bodies are parsed here instead, in one pass, and an object
//! with a key twice is refused with the JSON pointer of the second occurrence.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not one JSON value with unique keys.
#[derive(Debug)]
pub enum StrictJsonError {
    Syntax(serde_json::Error),
    /// The pointer (RFC 6901) of the repeated key.
    DuplicateKey(String),
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictJsonError::Syntax(e) => write!(f, "{e}"),
            StrictJsonError::DuplicateKey(pointer) => {
                write!(f, "the key at {pointer} appears twice in its object")
            }
        }
    }
}

/// Parse `bytes` as a single JSON value whose objects have unique keys.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let path = RefCell::new(String::new());
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = UniqueKeys {
        path: &path,
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(pointer)) => Err(StrictJsonError::DuplicateKey(pointer)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(StrictJsonError::Syntax(e)),
    }
}

/// Builds a [`Value`] while tracking where it is, and stops at the first repeated key.
#[derive(Clone, Copy)]
struct UniqueKeys<'p> {
    path: &'p RefCell<String>,
    duplicate: &'p RefCell<Option<String>>,
}

impl UniqueKeys<'_> {
    /// Deserialize the next thing `read` yields with `segment` appended to the path.
    fn at<T>(&self, segment: &str, read: impl FnOnce(Self) -> T) -> T {
        let len = self.path.borrow().len();
        {
            let mut path = self.path.borrow_mut();
            path.push('/');
            path.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        let out = read(*self);
        self.path.borrow_mut().truncate(len);
        out
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let index = items.len().to_string();
            match self.at(&index, |seed| seq.next_element_seed(seed))? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if object.contains_key(&key) {
                let pointer = self.at(&key, |seed| seed.path.borrow().clone());
                *self.duplicate.borrow_mut() = Some(pointer);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = self.at(&key, |seed| access.next_value_seed(seed))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> String {
        match parse(text.as_bytes()) {
            Err(StrictJsonError::DuplicateKey(pointer)) => pointer,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn repeated_keys_are_named_by_pointer() {
        assert_eq!(duplicate(r#"{"a": 1, "a": 2}"#), "/a");
        assert_eq!(
            duplicate(r#"{"records": [{}, {"x": {"a/b": 1, "a/b": 1}}]}"#),
            "/records/1/x/a~1b"
        );
        assert_eq!(
            duplicate(r#"[{"k": 1}, {"k": [1, {"~": 0, "~": 0}]}]"#),
            "/1/k/1/~0"
        );
    }

    #[test]
    fn everything_else_parses_as_serde_json_does() {
        for text in [
            r#"{"a": {"b": [1, -2, 3.5, 1e3, true, null, "x\u00e9"]}, "b": {"a": 1}}"#,
            "[]",
            "  \"s\"  ",
            "18446744073709551615",
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse(text.as_bytes()).unwrap(), expected, "{text}");
        }
        for text in ["{", r#"{"a": 1} x"#, "", r#"{"a" 1}"#] {
            assert!(
                matches!(parse(text.as_bytes()), Err(StrictJsonError::Syntax(_))),
                "{text}"
            );
        }
    }
}
