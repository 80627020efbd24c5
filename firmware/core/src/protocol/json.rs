//! A small allocation-free JSON scanner: validates a whole document and reports every
//! `key: value` pair (at any depth) to a callback, in document order.
//!
//! Strings are handed out raw (escape sequences are validated but not decoded; see
//! [`Value::Str`]). The Infineon device's parser does not support escapes at all, so no message
//! in this protocol needs them.

/// A value as the scanner saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string: the raw bytes between the quotes (escapes not decoded).
    Str(&'a str),
    /// A number, as written.
    Number(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// The start of an object; its members follow with `depth + 1`.
    Object,
    /// The start of an array; members of objects inside follow with a greater depth.
    Array,
}

impl<'a> Value<'a> {
    /// The string value, if this is a string without escapes.
    #[must_use]
    pub fn as_plain_str(&self) -> Option<&'a str> {
        match self {
            Self::Str(s) if !s.contains('\\') => Some(s),
            _ => None,
        }
    }
}

/// One `key: value` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// 0 for members of the top-level object.
    pub depth: u8,
    /// The raw key.
    pub key: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// Why a document is not acceptable JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Nothing but whitespace.
    Empty,
    /// The top-level value is not an object.
    NotAnObject,
    /// A syntax error (or truncation) at this byte offset.
    Syntax(usize),
    /// A string is not UTF-8 (byte offset of the string).
    Utf8(usize),
    /// Nested deeper than 16 levels.
    TooDeep,
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty document"),
            Self::NotAnObject => f.write_str("not a JSON object"),
            Self::Syntax(at) => write!(f, "JSON syntax error at byte {at}"),
            Self::Utf8(at) => write!(f, "string at byte {at} is not UTF-8"),
            Self::TooDeep => f.write_str("nested too deeply"),
        }
    }
}

const MAX_DEPTH: u8 = 16;

/// Scans `doc`, which must be one JSON object (whitespace around it allowed), calling `f` for
/// every member of every object in it.
///
/// # Errors
/// [`JsonError`] for anything that is not a single well-formed object; `f` may already have
/// seen some fields.
pub fn scan<'a, F: FnMut(Field<'a>)>(doc: &'a [u8], mut f: F) -> Result<(), JsonError> {
    let mut p = Parser { b: doc, i: 0 };
    p.ws();
    match p.peek() {
        None => return Err(JsonError::Empty),
        Some(b'{') => {}
        Some(_) => return Err(JsonError::NotAnObject),
    }
    p.object(0, &mut f)?;
    p.ws();
    if p.i != doc.len() {
        return Err(JsonError::Syntax(p.i));
    }
    Ok(())
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(JsonError::Syntax(self.i))
        }
    }

    fn object<F: FnMut(Field<'a>)>(&mut self, depth: u8, f: &mut F) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            self.value(Some(key), depth, f)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(JsonError::Syntax(self.i)),
            }
        }
    }

    fn array<F: FnMut(Field<'a>)>(&mut self, depth: u8, f: &mut F) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(None, depth, f)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(JsonError::Syntax(self.i)),
            }
        }
    }

    fn value<F: FnMut(Field<'a>)>(
        &mut self,
        key: Option<&'a str>,
        depth: u8,
        f: &mut F,
    ) -> Result<(), JsonError> {
        let mut emit = |value| {
            if let Some(key) = key {
                f(Field { depth, key, value });
            }
        };
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                emit(Value::Str(s));
            }
            Some(b'{') => {
                emit(Value::Object);
                self.object(depth + 1, f)?;
            }
            Some(b'[') => {
                emit(Value::Array);
                self.array(depth + 1, f)?;
            }
            Some(b't') => {
                self.literal(b"true")?;
                emit(Value::Bool(true));
            }
            Some(b'f') => {
                self.literal(b"false")?;
                emit(Value::Bool(false));
            }
            Some(b'n') => {
                self.literal(b"null")?;
                emit(Value::Null);
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = self.number()?;
                emit(Value::Number(n));
            }
            _ => return Err(JsonError::Syntax(self.i)),
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(JsonError::Syntax(self.i))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        if self.digits() == 0 {
            return Err(JsonError::Syntax(self.i));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(JsonError::Syntax(self.i));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError::Syntax(self.i));
            }
        }
        // ASCII only.
        core::str::from_utf8(&self.b[start..self.i]).map_err(|_| JsonError::Syntax(start))
    }

    fn string(&mut self) -> Result<&'a str, JsonError> {
        let open = self.i;
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err(JsonError::Syntax(self.i)),
                Some(b'"') => break,
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.i += 1;
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(JsonError::Syntax(self.i));
                            }
                            self.i += 5;
                        }
                        _ => return Err(JsonError::Syntax(self.i)),
                    }
                }
                Some(c) if c < 0x20 => return Err(JsonError::Syntax(self.i)),
                Some(_) => self.i += 1,
            }
        }
        let s = core::str::from_utf8(&self.b[start..self.i]).map_err(|_| JsonError::Utf8(open))?;
        self.i += 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(doc: &str) -> Result<heapless::Vec<(u8, &str, Value<'_>), 16>, JsonError> {
        let mut v = heapless::Vec::new();
        scan(doc.as_bytes(), |f| {
            let _ = v.push((f.depth, f.key, f.value));
        })?;
        Ok(v)
    }

    #[test]
    fn scans_members_in_order_at_every_depth() {
        let v = fields(r#" {"a":"x", "b": 12, "c": {"d": [1, {"e": null}]}, "f": true} "#).unwrap();
        assert_eq!(
            v.as_slice(),
            &[
                (0, "a", Value::Str("x")),
                (0, "b", Value::Number("12")),
                (0, "c", Value::Object),
                (1, "d", Value::Array),
                (3, "e", Value::Null),
                (0, "f", Value::Bool(true)),
            ]
        );
        assert_eq!(fields("{}").unwrap().len(), 0);
        assert_eq!(
            fields(r#"{"k":"a\"b\u00e9"}"#).unwrap()[0].2,
            Value::Str(r#"a\"b\u00e9"#)
        );
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "  ",
            "[1]",
            "\"s\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1}x",
            "{\"a\":01x}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\n\"}",
            "{a:1}",
            "{\"a\":-}",
            "{\"a\":1.}",
            "{\"a\":\"\\u12\"}",
        ] {
            assert!(fields(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(scan(b"{\"a\":\"\xff\"}", |_| {}), Err(JsonError::Utf8(5)));
        let deep = "{\"a\":".repeat(20) + "1" + &"}".repeat(20);
        assert_eq!(fields(&deep), Err(JsonError::TooDeep));
    }
}
