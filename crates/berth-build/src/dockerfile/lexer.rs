//! Line- and word-level scanning of Dockerfile text: parser directives,
//! comments, line continuations, heredoc bodies, flag words, quote-aware
//! word splitting and the JSON (exec form) check.
//!
//! It knows nothing about what an instruction means and never expands
//! variables; it only cuts text into pieces and remembers where each piece
//! came from (line and column) so errors can point at the source.

use super::{Directives, ParseError};

/// One instruction's text: the first physical line plus its continuation
/// lines, escape characters removed, comment and empty lines inside the
/// continuation skipped (as Docker does).
#[derive(Debug, Clone)]
pub struct LogicalLine {
    /// Joined text, without leading/trailing whitespace.
    pub text: String,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Last physical line consumed (before heredoc bodies).
    pub end_line: usize,
    /// Line of the first empty line inside the continuation, if any.
    pub empty_continuation: Option<usize>,
    /// (byte offset in `text`, physical line, 1-based column at that offset).
    segments: Vec<(usize, usize, usize)>,
}

impl LogicalLine {
    /// Physical (line, column) of a byte offset in `text`.
    pub fn pos(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|(start, _, _)| *start <= offset)
            .copied()
            .unwrap_or((0, self.line, 1));
        let chars = self.text[seg.0..offset].chars().count();
        (seg.1, seg.2 + chars)
    }
}

/// Reads physical lines and hands out logical lines and heredoc bodies.
pub struct Reader<'a> {
    lines: Vec<&'a str>,
    /// Index of the next unread line (0-based).
    next: usize,
    pub escape: char,
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// If `s` ends (ignoring trailing spaces and tabs) with the escape
/// character, returns the text before it.
fn strip_continuation(s: &str, escape: char) -> Option<&str> {
    let t = s.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

/// Number of chars of leading whitespace.
fn leading_ws(s: &str) -> (usize, usize) {
    let trimmed = s.trim_start();
    let bytes = s.len() - trimmed.len();
    (bytes, s[..bytes].chars().count())
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a str) -> Self {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let mut lines: Vec<&str> = source.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        Reader {
            lines,
            next: 0,
            escape: '\\',
        }
    }

    /// Reads the parser directives at the very top of the file. Scanning
    /// stops at the first line that is not a known directive (an unknown
    /// directive, any other comment, an empty line, or an instruction).
    pub fn directives(&mut self, file: &str) -> Result<Directives, ParseError> {
        let mut d = Directives::default();
        let mut seen: Vec<String> = Vec::new();
        while let Some(raw) = self.lines.get(self.next) {
            let Some((key, value, col)) = parse_directive_line(raw) else {
                break;
            };
            let line = self.next + 1;
            if seen.contains(&key) {
                return Err(ParseError::new(
                    file,
                    line,
                    1,
                    format!("only one {key} parser directive can be used"),
                ));
            }
            match key.as_str() {
                "syntax" => d.syntax = Some(value),
                "check" => d.check = Some(value),
                "escape" => {
                    d.escape = match value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        _ => {
                            return Err(ParseError::new(
                                file,
                                line,
                                col,
                                format!("invalid escape token '{value}' does not match ` or \\"),
                            ))
                        }
                    }
                }
                _ => break,
            }
            seen.push(key);
            self.next += 1;
        }
        self.escape = d.escape;
        Ok(d)
    }

    /// The next instruction's logical line, or `None` at end of file.
    pub fn next_logical(&mut self) -> Option<LogicalLine> {
        // Skip empty and comment lines between instructions.
        while let Some(raw) = self.lines.get(self.next) {
            if is_blank(raw) || is_comment(raw) {
                self.next += 1;
            } else {
                break;
            }
        }
        let first = *self.lines.get(self.next)?;
        self.next += 1;
        let line_no = self.next;
        let (skip_bytes, skip_chars) = leading_ws(first);
        let first = &first[skip_bytes..];
        let mut out = LogicalLine {
            text: String::new(),
            line: line_no,
            end_line: line_no,
            empty_continuation: None,
            segments: vec![(0, line_no, skip_chars + 1)],
        };
        let mut current = first;
        loop {
            match strip_continuation(current, self.escape) {
                None => {
                    out.text.push_str(current);
                    break;
                }
                Some(before) => {
                    out.text.push_str(before);
                    // Find the next line that carries text.
                    let mut next_text = None;
                    while let Some(raw) = self.lines.get(self.next) {
                        self.next += 1;
                        if is_comment(raw) {
                            continue;
                        }
                        if is_blank(raw) {
                            out.empty_continuation.get_or_insert(self.next);
                            continue;
                        }
                        next_text = Some(*raw);
                        break;
                    }
                    let Some(raw) = next_text else { break };
                    out.end_line = self.next;
                    out.segments.push((out.text.len(), self.next, 1));
                    current = raw;
                }
            }
        }
        let trimmed_len = out.text.trim_end().len();
        out.text.truncate(trimmed_len);
        Some(out)
    }

    /// Reads a heredoc body up to its delimiter line. Returns the body
    /// (each line ending in `\n`, leading tabs stripped when `chomp`) and
    /// the delimiter's line number, or `None` if the file ends first.
    pub fn heredoc_body(&mut self, name: &str, chomp: bool) -> Option<(String, usize)> {
        let mut content = String::new();
        while let Some(raw) = self.lines.get(self.next) {
            self.next += 1;
            let candidate = if chomp { raw.trim_start_matches('\t') } else { raw };
            if candidate == name {
                return Some((content, self.next));
            }
            content.push_str(candidate);
            content.push('\n');
        }
        None
    }
}

/// `# key = value` at the top of a file → (lowercase key, value, value column).
fn parse_directive_line(raw: &str) -> Option<(String, String, usize)> {
    let rest = raw.trim_start().strip_prefix('#')?;
    let rest = rest.trim_start();
    let key_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..key_len];
    if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after = rest[key_len..].trim_start().strip_prefix('=')?;
    let value = after.trim();
    if value.is_empty() {
        return None;
    }
    let key = key.to_ascii_lowercase();
    if !matches!(key.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    let col = raw.len() - after.trim_start().len();
    Some((key, value.to_string(), raw[..col].chars().count() + 1))
}

/// A word with its byte offset in the text it was cut from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub offset: usize,
}

/// Splits on unquoted whitespace, keeping quotes and escape characters in
/// the words (they are processed later, by expansion).
pub fn split_words_raw(text: &str, escape: char) -> Vec<Word> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push(Word {
                    text: std::mem::take(&mut cur),
                    offset: s,
                });
            }
            continue;
        }
        start.get_or_insert(i);
        cur.push(c);
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                }
            }
            Some(q) => {
                if c == escape {
                    if let Some((_, n)) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == escape {
                    if let Some((_, n)) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(s) = start {
        words.push(Word { text: cur, offset: s });
    }
    words
}

/// Splits on whitespace only (Docker's rule for FROM, EXPOSE, shell-form
/// COPY/ADD/VOLUME: quotes do not group).
pub fn split_whitespace_offsets(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push(Word {
                    text: text[s..i].to_string(),
                    offset: s,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(Word {
            text: text[s..].to_string(),
            offset: s,
        });
    }
    words
}

/// A `--name[=value]` word from the start of an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFlag {
    pub name: String,
    /// `None` for `--link`, `Some("")` for `--from=`.
    pub value: Option<String>,
    /// Byte offset of the `--` in the arguments text.
    pub offset: usize,
}

/// Takes the leading `--flag` words off `args` (quotes removed, escape
/// character taken literally). A lone `--` ends the flags. Returns the flags
/// and the byte offset where the remaining arguments start.
pub fn extract_flags(args: &str, escape: char) -> (Vec<RawFlag>, usize) {
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &args[pos..];
        let ws = rest.len() - rest.trim_start().len();
        pos += ws;
        let rest = &args[pos..];
        if !rest.starts_with("--") {
            return (flags, pos);
        }
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut it = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = it.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == escape => {
                    if let Some((_, n)) = it.next() {
                        word.push(n);
                    }
                }
                Some(_) => word.push(c),
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == escape => {
                    if let Some((_, n)) = it.next() {
                        word.push(n);
                    }
                }
                None => word.push(c),
            }
        }
        pos = start + end;
        if word == "--" {
            let rest = &args[pos..];
            return (flags, pos + (rest.len() - rest.trim_start().len()));
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        flags.push(RawFlag {
            name,
            value,
            offset: start,
        });
    }
}

/// Result of trying to read arguments as exec form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonForm {
    /// Not a JSON array: shell form.
    NotJson,
    Strings(Vec<String>),
    /// A JSON array with something other than strings in it (an error in
    /// Docker).
    NonString,
}

/// Exec form is a valid JSON array of strings; anything else is shell form.
pub fn json_array(text: &str) -> JsonForm {
    let t = text.trim();
    if !t.starts_with('[') {
        return JsonForm::NotJson;
    }
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonForm::NonString,
                }
            }
            JsonForm::Strings(out)
        }
        _ => JsonForm::NotJson,
    }
}

/// A heredoc marker word (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) →
/// (name without quotes, expand, chomp tabs).
pub fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => quoted = true,
            '\\' => {
                quoted = true;
                if let Some(n) = chars.next() {
                    name.push(n);
                }
            }
            _ => name.push(c),
        }
    }
    if name.is_empty() {
        return None;
    }
    Some((name, !quoted, chomp))
}

impl Reader<'_> {
    /// Number of physical lines consumed so far (= the 1-based number of
    /// the last line read).
    pub fn lines_read(&self) -> usize {
        self.next
    }
}
