//! Tokens of a Go template: text, `{{`/`}}` with trim markers, comments,
//! and the words inside an action. Same token boundaries, line numbers and
//! error texts as Go's `text/template/parse` lexer. It never interprets.

/// Kinds of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // keywords
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl Tok {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            Tok::Block
                | Tok::Break
                | Tok::Continue
                | Tok::Dot
                | Tok::Define
                | Tok::Else
                | Tok::End
                | Tok::If
                | Tok::Nil
                | Tok::Range
                | Tok::Template
                | Tok::With
        )
    }
}

/// One token: kind, byte offset, text, line.
#[derive(Clone, Debug)]
pub struct Item {
    pub typ: Tok,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    /// Go's `item.String()`, used in "unexpected …" errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            Tok::Eof => write!(f, "EOF"),
            Tok::Error => write!(f, "{}", self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let head: String = self.val.chars().take(10).collect();
                    let q = crate::gofmt::quote(&head);
                    write!(f, "{}...", q)
                } else {
                    write!(f, "{}", crate::gofmt::quote(&self.val))
                }
            }
        }
    }
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "." => Tok::Dot,
        "block" => Tok::Block,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "define" => Tok::Define,
        "else" => Tok::Else,
        "end" => Tok::End,
        "if" => Tok::If,
        "range" => Tok::Range,
        "nil" => Tok::Nil,
        "template" => Tok::Template,
        "with" => Tok::With,
        _ => return None,
    })
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\r' | '\n'))
}

fn is_alnum(c: Option<char>) -> bool {
    matches!(c, Some(c) if c == '_' || c.is_alphabetic() || c.is_numeric())
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && matches!(b[1], b' ' | b'\t' | b'\r' | b'\n')
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && matches!(b[0], b' ' | b'\t' | b'\r' | b'\n') && b[1] == b'-'
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    items: Vec<Item>,
    paren_depth: i32,
    line: usize,
    start_line: usize,
}

enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Done,
}

/// Tokenize `input`; the last item is `Eof` or `Error`.
pub fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        at_eof: false,
        items: Vec::new(),
        paren_depth: 0,
        line: 1,
        start_line: 1,
    };
    let mut state = State::Text;
    loop {
        state = match state {
            State::Text => l.lex_text(),
            State::LeftDelim => l.lex_left_delim(),
            State::Comment => l.lex_comment(),
            State::RightDelim => l.lex_right_delim(),
            State::InsideAction => l.lex_inside_action(),
            State::Done => break,
        };
    }
    l.items
}

impl Lexer<'_> {
    fn next(&mut self) -> Option<char> {
        if self.pos >= self.input.len() {
            self.at_eof = true;
            return None;
        }
        let c = self.input[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn backup(&mut self) {
        if !self.at_eof && self.pos > 0 {
            let c = self.input[..self.pos].chars().next_back().unwrap_or('\0');
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }

    fn emit(&mut self, typ: Tok) {
        self.items.push(Item {
            typ,
            pos: self.start,
            val: self.input[self.start..self.pos].to_string(),
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while matches!(self.next(), Some(c) if valid.contains(c)) {}
        self.backup();
    }

    fn errorf(&mut self, msg: String) -> State {
        self.items.push(Item {
            typ: Tok::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
        State::Done
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = self.input[self.pos..].find(LEFT) {
            self.pos += x;
            let mut trim = 0;
            if has_left_trim(&self.input[self.pos + LEFT.len()..]) {
                let s = &self.input[self.start..self.pos];
                trim = s.len() - s.trim_end_matches([' ', '\t', '\r', '\n']).len();
            }
            self.pos -= trim;
            if self.pos > self.start {
                self.line += self.input[self.start..self.pos].matches('\n').count();
                self.emit(Tok::Text);
            }
            self.pos += trim;
            self.ignore();
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].matches('\n').count();
            self.emit(Tok::Text);
        }
        self.emit(Tok::Eof);
        State::Done
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim(rest) && rest[2..].starts_with(RIGHT) {
            return (true, true);
        }
        (rest.starts_with(RIGHT), false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT.len();
        let trim = has_left_trim(&self.input[self.pos..]);
        let after = if trim { 2 } else { 0 };
        if self.input[self.pos + after..].starts_with("/*") {
            self.pos += after;
            self.ignore();
            return State::Comment;
        }
        self.emit(Tok::LeftDelim);
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += 2;
        let Some(i) = self.input[self.pos..].find("*/") else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += i + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if trim {
            let s = &self.input[self.pos..];
            self.pos += s.len() - s.trim_start_matches([' ', '\t', '\r', '\n']).len();
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let trim = has_right_trim(&self.input[self.pos..]);
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += RIGHT.len();
        self.emit(Tok::RightDelim);
        if trim {
            let s = &self.input[self.pos..];
            self.pos += s.len() - s.trim_start_matches([' ', '\t', '\r', '\n']).len();
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let r = self.next();
        match r {
            None => return self.errorf("unclosed action".into()),
            Some(c) if is_space(Some(c)) => {
                self.backup();
                return self.lex_space();
            }
            Some('=') => self.emit(Tok::Assign),
            Some(':') => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".into());
                }
                self.emit(Tok::Declare);
            }
            Some('|') => self.emit(Tok::Pipe),
            Some('"') => return self.lex_quote(),
            Some('`') => return self.lex_raw_quote(),
            Some('$') => return self.lex_variable(),
            Some('\'') => return self.lex_char(),
            Some('.') => {
                let next = self.input.as_bytes().get(self.pos);
                if next.is_some_and(|b| !b.is_ascii_digit()) {
                    return self.lex_field_or_variable(Tok::Field);
                }
                self.backup();
                return self.lex_number();
            }
            Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                self.backup();
                return self.lex_number();
            }
            Some(c) if is_alnum(Some(c)) => {
                self.backup();
                return self.lex_identifier();
            }
            Some('(') => {
                self.emit(Tok::LeftParen);
                self.paren_depth += 1;
            }
            Some(')') => {
                self.emit(Tok::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren U+0029 ')'".into());
                }
            }
            Some(c) if (c as u32) < 0x80 && crate::gofmt::is_print(c) => self.emit(Tok::Char),
            Some(c) => return self.errorf(format!("unrecognized character in action: {}", go_u(c))),
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut n = 0;
        while is_space(self.peek()) {
            self.next();
            n += 1;
        }
        let rest = &self.input[self.pos - 1..];
        if has_right_trim(rest) && rest[2..].starts_with(RIGHT) {
            self.backup();
            if n == 1 {
                return State::RightDelim;
            }
        }
        self.emit(Tok::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        loop {
            let r = self.next();
            if is_alnum(r) {
                continue;
            }
            self.backup();
            let word = self.input[self.start..self.pos].to_string();
            if !self.at_terminator() {
                return self.errorf(format!("bad character {}", go_u(r.unwrap_or('\u{fffd}'))));
            }
            match keyword(&word) {
                Some(k) => self.emit(k),
                None if word.starts_with('.') => self.emit(Tok::Field),
                None if word == "true" || word == "false" => self.emit(Tok::Bool),
                None => self.emit(Tok::Identifier),
            }
            return State::InsideAction;
        }
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(Tok::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(Tok::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: Tok) -> State {
        if self.at_terminator() {
            self.emit(if typ == Tok::Variable { Tok::Variable } else { Tok::Dot });
            return State::InsideAction;
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alnum(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", go_u(r.unwrap_or('\u{fffd}'))));
        }
        self.emit(typ);
        State::InsideAction
    }

    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        match r {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.input[self.pos..].starts_with(RIGHT),
        }
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated character constant".into());
                }
                None | Some('\n') => return self.errorf("unterminated character constant".into()),
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(Tok::CharConstant);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let t = self.input[self.start..self.pos].to_string();
            return self.errorf(format!("bad number syntax: {}", crate::gofmt::quote(&t)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || self.input.as_bytes()[self.pos - 1] != b'i' {
                let t = self.input[self.start..self.pos].to_string();
                return self.errorf(format!("bad number syntax: {}", crate::gofmt::quote(&t)));
            }
            self.emit(Tok::Complex);
        } else {
            self.emit(Tok::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if is_alnum(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated quoted string".into());
                }
                None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(Tok::String);
        State::InsideAction
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".into()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(Tok::RawString);
        State::InsideAction
    }
}

/// Go's `%#U`: `U+0021 '!'`.
pub fn go_u(c: char) -> String {
    if crate::gofmt::is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}
