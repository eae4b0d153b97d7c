//! Strings that match a `pattern`, for the witness sampler.
//!
//! Schema patterns are mostly simple: literals, classes such as `[a-z]` or
//! `\d`, groups with alternatives, quantifiers and anchors. This module
//! reads that much of ECMA-262 syntax and writes a few matching strings (the
//! fewest repetitions, one more of each, the last alternative). Anything
//! else (lookaround, backreferences) gives no string. Nothing here is
//! trusted: the checker verifies every witness with the validator, so a
//! string this module gets wrong is dropped, never reported. It imports
//! nothing of its own crate.

/// A few strings matching `pattern`, simplest first; empty when the pattern
/// uses syntax this module does not read.
pub(crate) fn strings(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parser = Parser {
        chars: &chars,
        at: 0,
    };
    let Some(tree) = parser.alternatives() else {
        return Vec::new();
    };
    if parser.at != chars.len() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for mode in [Mode::Fewest, Mode::OneMore, Mode::LastAlternative] {
        let mut text = String::new();
        write(&tree, mode, &mut text);
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// Which string to write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each quantifier at its minimum, the first alternative.
    Fewest,
    /// Each quantifier one above its minimum where allowed.
    OneMore,
    /// The last alternative of each group.
    LastAlternative,
}

/// A parsed pattern: alternatives of sequences of quantified atoms.
enum Node {
    /// One of several sequences.
    Alternatives(Vec<Vec<Node>>),
    /// One character from a set.
    Class(Class),
    /// An atom repeated between `min` and `max` times.
    Repeat(Box<Node>, u32, Option<u32>),
    /// An anchor or boundary: matches no character.
    Empty,
}

/// A character class: inclusive ranges, possibly negated.
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn one(c: char) -> Class {
        Class {
            ranges: vec![(c, c)],
            negated: false,
        }
    }

    /// A character of the class: the first of its first range, or for a
    /// negated class the first ordinary character outside it.
    fn pick(&self) -> Option<char> {
        if !self.negated {
            return self.ranges.first().map(|r| r.0);
        }
        ['a', 'x', 'A', '0', '_', '-', '.', ' ']
            .into_iter()
            .find(|c| !self.ranges.iter().any(|(lo, hi)| lo <= c && c <= hi))
    }
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn alternatives(&mut self) -> Option<Node> {
        let mut alternatives = vec![self.sequence()?];
        while self.eat('|') {
            alternatives.push(self.sequence()?);
        }
        Some(Node::Alternatives(alternatives))
    }

    fn sequence(&mut self) -> Option<Vec<Node>> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            nodes.push(self.quantified(atom)?);
        }
        Some(nodes)
    }

    fn atom(&mut self) -> Option<Node> {
        match self.next()? {
            '^' | '$' => Some(Node::Empty),
            '.' => Some(Node::Class(Class::one('a'))),
            '[' => self.class().map(Node::Class),
            '(' => {
                if self.eat('?') {
                    // Only non-capturing and named groups: lookaround
                    // constrains the text around it, which this module
                    // does not track.
                    if self.eat(':') {
                    } else if self.eat('<') && !matches!(self.peek(), Some('=' | '!')) {
                        while self.next()? != '>' {}
                    } else {
                        return None;
                    }
                }
                let inner = self.alternatives()?;
                self.eat(')').then_some(inner)
            }
            '\\' => self.escape(false),
            '*' | '+' | '?' | ')' => None,
            c => Some(Node::Class(Class::one(c))),
        }
    }

    /// After a `\`: a class such as `\d`, an escaped character, or (outside
    /// a class) an anchor. Backreferences are refused.
    fn escape(&mut self, in_class: bool) -> Option<Node> {
        let c = self.next()?;
        let class = |ranges: &[(char, char)], negated: bool| {
            Some(Node::Class(Class {
                ranges: ranges.to_vec(),
                negated,
            }))
        };
        const DIGITS: &[(char, char)] = &[('0', '9')];
        const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
        const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];
        match c {
            'd' => class(DIGITS, false),
            'D' => class(DIGITS, true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            'b' | 'B' if !in_class => Some(Node::Empty),
            'n' => Some(Node::Class(Class::one('\n'))),
            't' => Some(Node::Class(Class::one('\t'))),
            'r' => Some(Node::Class(Class::one('\r'))),
            'u' | 'x' => {
                let digits = if c == 'u' { 4 } else { 2 };
                let mut code = 0;
                for _ in 0..digits {
                    code = code * 16 + self.next()?.to_digit(16)?;
                }
                char::from_u32(code).map(|c| Node::Class(Class::one(c)))
            }
            '1'..='9' => None,
            c if c.is_ascii_alphanumeric() => None,
            c => Some(Node::Class(Class::one(c))),
        }
    }

    /// After a `[`: ranges up to the closing `]`.
    fn class(&mut self) -> Option<Class> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let start = if c == '\\' {
                match self.escape(true)? {
                    Node::Class(inner) if !inner.negated && inner.ranges.len() == 1 => {
                        inner.ranges[0].0
                    }
                    Node::Class(inner) if !inner.negated => {
                        ranges.extend(inner.ranges);
                        continue;
                    }
                    _ => return None,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|c| *c != ']') {
                self.at += 1;
                let end = match self.next()? {
                    '\\' => match self.escape(true)? {
                        Node::Class(inner) if inner.ranges.len() == 1 => inner.ranges[0].0,
                        _ => return None,
                    },
                    end => end,
                };
                ranges.push((start, end));
            } else {
                ranges.push((start, start));
            }
        }
        Some(Class { ranges, negated })
    }

    fn quantified(&mut self, atom: Node) -> Option<Node> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let start = self.at;
                self.at += 1;
                match self.bounds() {
                    Some(bounds) => {
                        self.at -= 1;
                        bounds
                    }
                    None => {
                        // A `{` that opens no quantifier is a literal.
                        self.at = start;
                        return Some(atom);
                    }
                }
            }
            _ => return Some(atom),
        };
        self.at += 1;
        // Lazy quantifiers match the same strings.
        self.eat('?');
        Some(Node::Repeat(Box::new(atom), min, max))
    }

    /// `n}`, `n,}` or `n,m}` after a `{`, leaving the position just past
    /// the `}`.
    fn bounds(&mut self) -> Option<(u32, Option<u32>)> {
        let min = self.number()?;
        let max = if self.eat(',') {
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.number()?)
            }
        } else {
            Some(min)
        };
        self.eat('}').then_some((min, max))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        digits.parse().ok()
    }
}

fn write(node: &Node, mode: Mode, out: &mut String) {
    match node {
        Node::Empty => {}
        Node::Class(class) => {
            if let Some(c) = class.pick() {
                out.push(c);
            }
        }
        Node::Alternatives(alternatives) => {
            let chosen = if mode == Mode::LastAlternative {
                alternatives.last()
            } else {
                alternatives.first()
            };
            for node in chosen.into_iter().flatten() {
                write(node, mode, out);
            }
        }
        Node::Repeat(atom, min, max) => {
            let more = (mode == Mode::OneMore && max.is_none_or(|max| max > *min)) as u32;
            for _ in 0..min.saturating_add(more).min(64) {
                write(atom, mode, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, expected: &[&str]) {
        assert_eq!(strings(pattern), expected, "{pattern}");
    }

    #[test]
    fn common_patterns_give_matching_strings() {
        check("^[a-z]{2}$", &["aa"]);
        check("^[a-z]+$", &["a", "aa"]);
        check("^a", &["a"]);
        check("^(eu|us)-\\d{1,3}$", &["eu-0", "eu-00", "us-0"]);
        check("^[^0-9]*x?$", &["", "ax"]);
        check("^[A-Z][a-z0-9_-]*$", &["A", "Aa"]);
        check("^\\w+@\\w+\\.com$", &["a@a.com", "aa@aa.com"]);
        check("^(?:ab){2}c{2,}$", &["ababcc", "ababccc"]);
        check("a{,2}", &["a{,2}"]);
    }

    #[test]
    fn unsupported_syntax_gives_no_string() {
        check("^(?=a)a$", &[]);
        check("(a)\\1", &[]);
        check("[a-", &[]);
        check("a)", &[]);
        check("\\p{L}", &[]);
    }
}
