//! Where a JSON pointer lies in a file's text, as line and column, so a
//! report can send an editor straight to the offending keyword.

use std::collections::HashMap;

use crate::validate::escape_pointer_token;

/// Positions (1-based line and column) of every value in a JSON text, by
/// JSON pointer; for an object member, the position of its key.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    at: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Scans `text`. Malformed JSON yields the positions found before the
    /// error; the registry reports the error itself.
    pub fn of(text: &str) -> Self {
        let mut scanner = Scanner {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            at: HashMap::new(),
        };
        scanner.value(String::new(), None);
        Positions { at: scanner.at }
    }

    /// The position of `pointer`, or of its nearest existing ancestor (a
    /// removed keyword is reported where its parent is).
    pub fn find(&self, pointer: &str) -> (usize, usize) {
        let mut pointer = pointer;
        loop {
            if let Some(position) = self.at.get(pointer) {
                return *position;
            }
            match pointer.rfind('/') {
                Some(i) => pointer = &pointer[..i],
                None => return (1, 1),
            }
        }
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    at: HashMap<String, (usize, usize)>,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Scans one value at `pointer`; `key_at` is where its member key began.
    fn value(&mut self, pointer: String, key_at: Option<(usize, usize)>) {
        self.skip_ws();
        let here = (self.line, self.col);
        self.at
            .entry(pointer.clone())
            .or_insert(key_at.unwrap_or(here));
        match self.peek() {
            Some('{') => {
                self.bump();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some('}') => {
                            self.bump();
                            return;
                        }
                        Some(',') => {
                            self.bump();
                        }
                        Some('"') => {
                            let key_at = (self.line, self.col);
                            let key = self.string();
                            self.skip_ws();
                            if self.peek() != Some(':') {
                                return;
                            }
                            self.bump();
                            let child = format!("{pointer}/{}", escape_pointer_token(&key));
                            self.value(child, Some(key_at));
                        }
                        _ => return,
                    }
                }
            }
            Some('[') => {
                self.bump();
                let mut index = 0;
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(']') => {
                            self.bump();
                            return;
                        }
                        Some(',') => {
                            self.bump();
                        }
                        Some(_) => {
                            let before = self.i;
                            self.value(format!("{pointer}/{index}"), None);
                            index += 1;
                            if self.i == before {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            }
            Some('"') => {
                self.string();
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    self.bump();
                }
            }
            None => {}
        }
    }

    /// Scans a string literal and returns its unescaped text.
    fn string(&mut self) -> String {
        let mut out = String::new();
        self.bump();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            out.push(c);
                        }
                    }
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_elements() {
        let text = "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a/b\": { \"maximum\": 5 }\n  },\n  \"required\": [\"x\", \"y\"]\n}\n";
        let positions = Positions::of(text);
        assert_eq!(positions.find(""), (1, 1));
        assert_eq!(positions.find("/type"), (2, 3));
        assert_eq!(positions.find("/properties/a~1b"), (4, 5));
        assert_eq!(positions.find("/properties/a~1b/maximum"), (4, 14));
        assert_eq!(positions.find("/required/1"), (6, 21));
        // A pointer that is not in the file falls back to its parent.
        assert_eq!(positions.find("/properties/a~1b/minimum"), (4, 5));
        assert_eq!(positions.find("/nothing/here"), (1, 1));
    }

    #[test]
    fn survives_malformed_text() {
        let positions = Positions::of("{\"a\": [1, {\"b\": ");
        assert_eq!(positions.find("/a/1/b"), (1, 12));
        let _ = Positions::of("]]]}}}\"");
    }
}
