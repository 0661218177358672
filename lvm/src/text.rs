//! LVM2's text configuration format, as metadata areas hold it: sections `name { ... }`,
//! assignments `key = value` with strings, integers and arrays, `#` comments. Parsed into an
//! ordered tree that prints back in lvm2's layout, so that fields this crate does not model
//! (tags, flags, other keys) survive a rewrite.

use std::fmt::Write as _;

use crate::{Error, Result};

/// Most nesting accepted (lvm2 metadata uses four levels).
const MAX_DEPTH: usize = 16;

/// A value on the right of `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A quoted string (unescaped).
    Str(String),
    /// An integer.
    Int(i64),
    /// Any other bare token (lvm2 config floats), kept as written.
    Raw(String),
    /// `[a, b, ...]`.
    Array(Vec<Value>),
}

/// One item of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// `key = value`.
    Field(String, Value),
    /// `name { ... }`.
    Section(String, Vec<Node>),
}

impl Node {
    /// The item's name.
    pub fn name(&self) -> &str {
        match self {
            Node::Field(n, _) | Node::Section(n, _) => n,
        }
    }
}

/// Parses metadata text (up to a NUL, which ends it).
///
/// # Errors
/// [`Error::Syntax`] naming the line.
pub fn parse(text: &[u8]) -> Result<Vec<Node>> {
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let mut p = Parser {
        s: &text[..end],
        pos: 0,
        line: 1,
    };
    let nodes = p.items(0)?;
    p.skip_blank();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected '}'"));
    }
    Ok(nodes)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Syntax {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn skip_blank(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'#' => {
                    while self.s.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_blank();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    fn word(&mut self) -> Result<String> {
        self.skip_blank();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+' | b'/')
        }) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a name or value"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn items(&mut self, depth: usize) -> Result<Vec<Node>> {
        if depth > MAX_DEPTH {
            return Err(self.err("sections nested too deeply"));
        }
        let mut nodes = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'}') => return Ok(nodes),
                _ => {}
            }
            let name = self.word()?;
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let inner = self.items(depth + 1)?;
                    self.expect(b'}')?;
                    nodes.push(Node::Section(name, inner));
                }
                Some(b'=') => {
                    self.pos += 1;
                    let v = self.value(depth)?;
                    nodes.push(Node::Field(name, v));
                }
                _ => return Err(self.err(format!("expected '=' or '{{' after {name}"))),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                if depth > MAX_DEPTH {
                    return Err(self.err("arrays nested too deeply"));
                }
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(_) => {
                let w = self.word()?;
                Ok(match w.parse::<i64>() {
                    Ok(n) => Value::Int(n),
                    Err(_) => Value::Raw(w),
                })
            }
            None => Err(self.err("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let Some(&c) = self.s.get(self.pos + 1) else {
                        return Err(self.err("unterminated string"));
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(&c) => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Prints nodes in lvm2's on-disk layout (no indentation, a blank line before sections).
pub fn print(nodes: &[Node]) -> String {
    let mut out = String::new();
    print_into(&mut out, nodes);
    out
}

fn print_into(out: &mut String, nodes: &[Node]) {
    for n in nodes {
        match n {
            Node::Field(k, v) => {
                let _ = writeln!(out, "{k} = {}", value_text(v));
            }
            Node::Section(k, inner) => {
                // lvm2 finds the VG's name at the very start of the text: no blank line first.
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = writeln!(out, "{k} {{");
                print_into(out, inner);
                out.push_str("}\n");
            }
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => {
            let mut q = String::with_capacity(s.len() + 2);
            q.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        }
        Value::Int(n) => n.to_string(),
        Value::Raw(r) => r.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// Lookups in a section's items.
pub(crate) trait Items {
    fn field(&self, name: &str) -> Option<&Value>;
    fn field_mut(&mut self, name: &str) -> Option<&mut Value>;
    fn section(&self, name: &str) -> Option<&Vec<Node>>;
    fn section_mut(&mut self, name: &str) -> Option<&mut Vec<Node>>;
    /// Sets `name` to `v`, adding the field at the end when it is missing.
    fn set(&mut self, name: &str, v: Value);
}

impl Items for Vec<Node> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.iter().find_map(|n| match n {
            Node::Field(k, v) if k == name => Some(v),
            _ => None,
        })
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.iter_mut().find_map(|n| match n {
            Node::Field(k, v) if k == name => Some(v),
            _ => None,
        })
    }

    fn section(&self, name: &str) -> Option<&Vec<Node>> {
        self.iter().find_map(|n| match n {
            Node::Section(k, v) if k == name => Some(v),
            _ => None,
        })
    }

    fn section_mut(&mut self, name: &str) -> Option<&mut Vec<Node>> {
        self.iter_mut().find_map(|n| match n {
            Node::Section(k, v) if k == name => Some(v),
            _ => None,
        })
    }

    fn set(&mut self, name: &str, v: Value) {
        match self.field_mut(name) {
            Some(slot) => *slot = v,
            None => self.push(Node::Field(name.to_owned(), v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lvm2_metadata_back_to_the_same_tree() {
        let text = b"vg {\nid = \"abc\"\nseqno = 4\nstatus = [\"READ\", \"WRITE\"]\n\nlogical_volumes {\n\nlv {\nstripes = [\n\"pv0\", 0\n]\n}\n}\n}\n# Generated by LVM2\n\ncontents = \"Text Format Volume Group\"\nversion = 1\ncreation_host = \"vm\"\t# Linux\n\0garbage";
        let nodes = parse(text).expect("parse");
        assert_eq!(nodes.len(), 4);
        let Node::Section(name, vg) = &nodes[0] else {
            panic!("{nodes:?}")
        };
        assert_eq!(name, "vg");
        assert_eq!(vg.field("seqno"), Some(&Value::Int(4)));
        let lv = vg
            .section("logical_volumes")
            .and_then(|l| l.section("lv"))
            .expect("lv");
        assert_eq!(
            lv.field("stripes"),
            Some(&Value::Array(vec![Value::Str("pv0".into()), Value::Int(0)]))
        );
        assert_eq!(parse(print(&nodes).as_bytes()).expect("reparse"), nodes);
    }

    #[test]
    fn bad_text_names_its_line() {
        for (text, line) in [
            (&b"vg {\nid = \n}"[..], 3),
            (b"vg {\n\"x\"", 2),
            (b"vg {\nid = \"open", 2),
            (b"a = [1, 2", 1),
            (b"}", 1),
        ] {
            match parse(text) {
                Err(Error::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let deep = "a {".repeat(40);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
