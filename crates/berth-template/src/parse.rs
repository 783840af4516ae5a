//! The parse tree of a Go template, built from [`crate::lex`] tokens with Go's
//! grammar (`if/else if/range/with/template/define/block/break/continue`,
//! pipelines, declarations) and Go's parse error texts
//! (`template: NAME:LINE: …`). It never evaluates anything.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::lex::{lex, Item, Tok};

/// A number literal with every interpretation Go allows for it.
#[derive(Clone, Debug, Default)]
pub struct Number {
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int: i64,
    pub uint: u64,
    pub float: f64,
}

/// An operand or command word.
#[derive(Clone, Debug)]
pub enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Rc<Pipe>),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
}

/// A command: a function/field and its arguments.
#[derive(Clone, Debug)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A pipeline, with optional variable declarations.
#[derive(Clone, Debug)]
pub struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<(usize, String)>,
    pub cmds: Vec<Command>,
}

/// Which control structure a branch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    If,
    Range,
    With,
}

/// A node of a template body.
#[derive(Clone, Debug)]
pub enum Node {
    Text(String),
    Action {
        pos: usize,
        pipe: Rc<Pipe>,
    },
    Branch {
        kind: Branch,
        pos: usize,
        pipe: Rc<Pipe>,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Rc<Pipe>>,
    },
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
}

/// A parsed template: named bodies (the main one is `name`).
#[derive(Clone, Debug)]
pub struct Tree {
    pub name: String,
    pub text: Rc<str>,
    pub templates: BTreeMap<String, Rc<Vec<Node>>>,
}

// ---- String(), as Go's nodes print themselves in error contexts ----

impl Arg {
    /// Byte offset of the node.
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    out.push('.');
                    out.push_str(i);
                }
            }
            Arg::Variable { idents, .. } => out.push_str(&idents.join(".")),
            Arg::Identifier { name, .. } => out.push_str(name),
            Arg::Dot { .. } => out.push('.'),
            Arg::Nil { .. } => out.push_str("nil"),
            Arg::Bool { val, .. } => out.push_str(if *val { "true" } else { "false" }),
            Arg::Number { num, .. } => out.push_str(&num.text),
            Arg::String { quoted, .. } => out.push_str(quoted),
            Arg::Pipe(p) => p.write(out),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = &**node {
                    out.push('(');
                    p.write(out);
                    out.push(')');
                } else {
                    node.write(out);
                }
                for f in fields {
                    out.push('.');
                    out.push_str(f);
                }
            }
        }
    }
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

impl Command {
    fn write(&self, out: &mut String) {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if let Arg::Pipe(p) = a {
                out.push('(');
                p.write(out);
                out.push(')');
            } else {
                a.write(out);
            }
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

impl Pipe {
    fn write(&self, out: &mut String) {
        if !self.decl.is_empty() {
            let names: Vec<&str> = self.decl.iter().map(|(_, n)| n.as_str()).collect();
            out.push_str(&names.join(", "));
            out.push_str(" := ");
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            c.write(out);
        }
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

fn write_list(list: &[Node], out: &mut String) {
    for n in list {
        n.write(out);
    }
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Text(t) => out.push_str(&format!("{:?}", t)),
            Node::Action { pipe, .. } => {
                out.push_str("{{");
                pipe.write(out);
                out.push_str("}}");
            }
            Node::Branch {
                kind,
                pipe,
                list,
                else_list,
                ..
            } => {
                out.push_str("{{");
                out.push_str(match kind {
                    Branch::If => "if",
                    Branch::Range => "range",
                    Branch::With => "with",
                });
                out.push(' ');
                pipe.write(out);
                out.push_str("}}");
                write_list(list, out);
                if let Some(e) = else_list {
                    out.push_str("{{else}}");
                    write_list(e, out);
                }
                out.push_str("{{end}}");
            }
            Node::Template { name, pipe, .. } => {
                out.push_str("{{template ");
                out.push_str(&crate::gofmt::quote(name));
                if let Some(p) = pipe {
                    out.push(' ');
                    p.write(out);
                }
                out.push_str("}}");
            }
            Node::Break { .. } => out.push_str("{{break}}"),
            Node::Continue { .. } => out.push_str("{{continue}}"),
        }
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

fn is_empty_tree(list: &[Node]) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']).is_empty(),
        _ => false,
    })
}

// ---- the parser ----

/// What ends an item list (Go's endNode / elseNode).
enum Stop {
    End,
    Else { is_if: bool },
}

enum Parsed {
    Node(Node),
    Stop(Stop),
}

struct Parser<'a> {
    name: String,
    items: Vec<Item>,
    next: usize,
    seen: usize,
    vars: Vec<String>,
    funcs: &'a dyn Fn(&str) -> bool,
    range_depth: usize,
    action_line: usize,
    templates: BTreeMap<String, Rc<Vec<Node>>>,
}

type PResult<T> = Result<T, String>;

/// Parse `text` as the template `name`; `has_func` tells which function names exist.
pub fn parse(name: &str, text: &str, has_func: &dyn Fn(&str) -> bool) -> Result<Tree, String> {
    let items = lex(text);
    let mut p = Parser {
        name: name.to_string(),
        items,
        next: 0,
        seen: 0,
        vars: vec!["$".into()],
        funcs: has_func,
        range_depth: 0,
        action_line: 0,
        templates: BTreeMap::new(),
    };
    let root = p.parse_top()?;
    p.add(name, root)?;
    Ok(Tree {
        name: name.to_string(),
        text: text.into(),
        templates: p.templates,
    })
}

impl Parser<'_> {
    fn item(&self, i: usize) -> &Item {
        &self.items[i.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let it = self.item(self.next).clone();
        self.seen = self.seen.max(self.next.min(self.items.len() - 1));
        if self.next < self.items.len() {
            self.next += 1;
        }
        it
    }

    fn backup(&mut self) {
        self.next -= 1;
    }

    fn peek(&mut self) -> Item {
        let it = self.next();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.typ != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.backup();
        it
    }

    fn errorf(&self, msg: impl std::fmt::Display) -> String {
        format!("template: {}:{}: {}", self.name, self.item(self.seen).line, msg)
    }

    fn unexpected(&self, token: &Item, context: &str) -> String {
        if token.typ == Tok::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, t: Tok, context: &str) -> PResult<Item> {
        let tok = self.next_non_space();
        if tok.typ != t {
            return Err(self.unexpected(&tok, context));
        }
        Ok(tok)
    }

    fn add(&mut self, name: &str, root: Vec<Node>) -> PResult<()> {
        match self.templates.get(name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return Err(self.errorf(format!(
                        "template: multiple definition of template {}",
                        crate::gofmt::quote(name)
                    )));
                }
            }
            _ => {
                self.templates.insert(name.to_string(), Rc::new(root));
            }
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().typ != Tok::Eof {
            if self.peek().typ == Tok::LeftDelim {
                let delim = self.next;
                self.next();
                if self.next_non_space().typ == Tok::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.next = delim;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::Stop(s) => {
                    return Err(self.errorf(format!(
                        "unexpected {}",
                        match s {
                            Stop::End => "{{end}}",
                            Stop::Else { .. } => "{{else}}",
                        }
                    )))
                }
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let tok = self.next_non_space();
        if tok.typ != Tok::String && tok.typ != Tok::RawString {
            return Err(self.unexpected(&tok, context));
        }
        let name = unquote(&tok.val).map_err(|e| self.errorf(e))?;
        self.expect(Tok::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, stop) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(stop, Stop::End) {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add(&name, list)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Stop)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != Tok::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::Stop(s) => return Ok((list, s)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let tok = self.next_non_space();
        match tok.typ {
            Tok::Text => Ok(Parsed::Node(Node::Text(tok.val))),
            Tok::LeftDelim => {
                self.action_line = tok.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&tok, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let tok = self.next_non_space();
        match tok.typ {
            Tok::Block => return self.block_control().map(Parsed::Node),
            Tok::Break | Tok::Continue => {
                let what = if tok.typ == Tok::Break {
                    "{{break}}"
                } else {
                    "{{continue}}"
                };
                let t = self.next_non_space();
                if t.typ != Tok::RightDelim {
                    return Err(self.unexpected(&t, what));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{what} outside {{{{range}}}}")));
                }
                return Ok(Parsed::Node(if tok.typ == Tok::Break {
                    Node::Break { pos: tok.pos }
                } else {
                    Node::Continue { pos: tok.pos }
                }));
            }
            Tok::Else => {
                let peek = self.peek_non_space();
                if peek.typ == Tok::If {
                    return Ok(Parsed::Stop(Stop::Else { is_if: true }));
                }
                self.expect(Tok::RightDelim, "else")?;
                return Ok(Parsed::Stop(Stop::Else { is_if: false }));
            }
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Parsed::Stop(Stop::End));
            }
            Tok::If => return self.control(Branch::If).map(Parsed::Node),
            Tok::Range => return self.control(Branch::Range).map(Parsed::Node),
            Tok::With => return self.control(Branch::With).map(Parsed::Node),
            Tok::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Parsed::Node(Node::Action {
            pos,
            pipe: Rc::new(pipe),
        }))
    }

    fn control(&mut self, kind: Branch) -> PResult<Node> {
        let context = match kind {
            Branch::If => "if",
            Branch::Range => "range",
            Branch::With => "with",
        };
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if kind == Branch::Range {
            self.range_depth += 1;
        }
        let (list, stop) = self.item_list()?;
        if kind == Branch::Range {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        match stop {
            Stop::End => {}
            Stop::Else { is_if } => {
                if kind == Branch::If && is_if {
                    // {{else if …}}: an if nested in the else list, sharing our {{end}}.
                    self.next(); // the "if"
                    let nested = self.control(Branch::If)?;
                    else_list = Some(vec![nested]);
                } else {
                    let (e, stop) = self.item_list()?;
                    if !matches!(stop, Stop::End) {
                        return Err(self.errorf("expected end; found {{else}}"));
                    }
                    else_list = Some(e);
                }
            }
        }
        self.vars.truncate(nvars);
        Ok(Node::Branch {
            kind,
            pos: pipe.pos,
            pipe: Rc::new(pipe),
            list,
            else_list,
        })
    }

    fn template_name(&self, tok: &Item, context: &str) -> PResult<String> {
        match tok.typ {
            Tok::String | Tok::RawString => unquote(&tok.val).map_err(|e| self.errorf(e)),
            _ => Err(self.unexpected(tok, context)),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let tok = self.next_non_space();
        let name = self.template_name(&tok, context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, stop) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(stop, Stop::End) {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add(&name, list)?;
        Ok(Node::Template {
            pos: tok.pos,
            name,
            pipe: Some(Rc::new(pipe)),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let tok = self.next_non_space();
        let name = self.template_name(&tok, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != Tok::RightDelim {
            self.backup();
            pipe = Some(Rc::new(self.pipeline(context, Tok::RightDelim)?));
        }
        Ok(Node::Template {
            pos: tok.pos,
            name,
            pipe,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let tok = self.peek_non_space();
        let mut pipe = Pipe {
            pos: tok.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != Tok::Variable {
                break;
            }
            let save = self.next;
            self.next_non_space(); // the variable
            let after_var = self.peek();
            let next = self.peek_non_space();
            if next.typ == Tok::Assign || next.typ == Tok::Declare {
                pipe.is_assign = next.typ == Tok::Assign;
                self.next_non_space();
                pipe.decl.push((v.pos, v.val.clone()));
                self.vars.push(v.val.clone());
            } else if next.typ == Tok::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push((v.pos, v.val.clone()));
                self.vars.push(v.val.clone());
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().typ {
                        Tok::Variable | Tok::RightDelim | Tok::RightParen => continue 'decls,
                        _ => return Err(self.errorf("range can only initialize variables")),
                    }
                }
                return Err(self.errorf(format!("too many declarations in {context}")));
            } else {
                let _ = after_var;
                self.next = save;
            }
            break;
        }
        loop {
            let tok = self.next_non_space();
            if tok.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match tok.typ {
                Tok::Bool
                | Tok::CharConstant
                | Tok::Complex
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawString
                | Tok::String
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return Err(self.unexpected(&tok, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool { .. } | Arg::Dot { .. } | Arg::Nil { .. } | Arg::Number { .. } | Arg::String { .. }
            ) {
                return Err(self.errorf(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let tok = self.next();
            match tok.typ {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&tok, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else { return Ok(None) };
        if self.peek().typ != Tok::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == Tok::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos: chain_pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos: chain_pos, idents }
            }
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number { .. } | Arg::Nil { .. } | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    crate::gofmt::quote(&node.to_string())
                )))
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let tok = self.next_non_space();
        Ok(Some(match tok.typ {
            Tok::Identifier => {
                if !(self.funcs)(&tok.val) {
                    return Err(self.errorf(format!("function {} not defined", crate::gofmt::quote(&tok.val))));
                }
                Arg::Identifier {
                    pos: tok.pos,
                    name: tok.val,
                }
            }
            Tok::Dot => Arg::Dot { pos: tok.pos },
            Tok::Nil => Arg::Nil { pos: tok.pos },
            Tok::Variable => {
                let idents: Vec<String> = tok.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!("undefined variable {}", crate::gofmt::quote(&idents[0]))));
                }
                Arg::Variable { pos: tok.pos, idents }
            }
            Tok::Field => Arg::Field {
                pos: tok.pos,
                idents: tok.val[1..].split('.').map(str::to_string).collect(),
            },
            Tok::Bool => Arg::Bool {
                pos: tok.pos,
                val: tok.val == "true",
            },
            Tok::CharConstant | Tok::Number => {
                let num = parse_number(&tok.val, tok.typ).map_err(|e| self.errorf(e))?;
                Arg::Number { pos: tok.pos, num }
            }
            Tok::Complex => return Err(self.errorf(format!("complex numbers are not supported: {}", tok.val))),
            Tok::LeftParen => Arg::Pipe(Rc::new(self.pipeline("parenthesized pipeline", Tok::RightParen)?)),
            Tok::String | Tok::RawString => {
                let text = unquote(&tok.val).map_err(|e| self.errorf(e))?;
                Arg::String {
                    pos: tok.pos,
                    quoted: tok.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// Go's `strconv.Unquote` for "…", `…` and '…' literals.
pub fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if s.len() < 2 {
        return Err(bad());
    }
    let q = s.as_bytes()[0];
    if q != s.as_bytes()[s.len() - 1] {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    if q == b'`' {
        if body.contains('`') {
            return Err(bad());
        }
        return Ok(body.replace('\r', ""));
    }
    if q != b'"' && q != b'\'' {
        return Err(bad());
    }
    let mut out = String::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, q as char)?;
        out.push_str(&c);
        rest = tail;
        if q == b'\'' && !rest.is_empty() {
            return Err(bad());
        }
    }
    Ok(out)
}

/// One (possibly escaped) character of a quoted literal.
fn unquote_char(s: &str, quote: char) -> Result<(String, &str), String> {
    let bad = || "invalid syntax".to_string();
    let mut chars = s.chars();
    let c = chars.next().ok_or_else(bad)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(bad());
    }
    if c != '\\' {
        if c == '\n' {
            return Err(bad());
        }
        return Ok((c.to_string(), chars.as_str()));
    }
    let e = chars.next().ok_or_else(bad)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return Err(bad());
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c.to_string(), rest));
    }
    let (n, radix) = match e {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (3, 8),
        _ => return Err(bad()),
    };
    let digits = if radix == 8 { &s[1..] } else { rest };
    if digits.len() < n || !digits.is_char_boundary(n) {
        return Err(bad());
    }
    let v = u32::from_str_radix(&digits[..n], radix).map_err(|_| bad())?;
    let tail = &digits[n..];
    if e == 'x' || radix == 8 {
        if v > 255 {
            return Err(bad());
        }
        // A byte value; only ASCII is representable in a Rust string.
        let c = char::from_u32(v).ok_or_else(bad)?;
        return Ok((c.to_string(), tail));
    }
    let c = char::from_u32(v).ok_or_else(bad)?;
    Ok((c.to_string(), tail))
}

fn parse_go_int(text: &str) -> Option<(bool, u64)> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits, prefixed) = if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, r, true)
    } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, r, true)
    } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, r, true)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..], true)
    } else {
        (10, body, false)
    };
    // underscores: only between digits (or after a base prefix)
    if digits.contains('_') {
        let mut prev_us = !prefixed;
        for c in digits.chars() {
            if c == '_' {
                if prev_us {
                    return None;
                }
                prev_us = true;
            } else {
                prev_us = false;
            }
        }
        if prev_us {
            return None;
        }
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let v = u64::from_str_radix(&clean, radix).ok()?;
    Some((neg, v))
}

/// Go's `newNumber`: every reading of a number literal.
fn parse_number(text: &str, typ: Tok) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        ..Number::default()
    };
    if typ == Tok::CharConstant {
        let (c, tail) = unquote_char(&text[1..], '\'')?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let r = c.chars().next().unwrap_or('\0') as i64;
        n.int = r;
        n.is_int = true;
        n.uint = r as u64;
        n.is_uint = true;
        n.float = r as f64;
        n.is_float = true;
        return Ok(n);
    }
    if text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text}"));
    }
    if let Some((neg, mag)) = parse_go_int(text) {
        if !neg {
            n.is_uint = true;
            n.uint = mag;
        }
        if neg && mag <= (i64::MAX as u64) + 1 {
            n.is_int = true;
            n.int = (mag as i64).wrapping_neg();
            if n.int == 0 {
                n.is_uint = true;
                n.uint = 0;
            }
        } else if !neg && mag <= i64::MAX as u64 {
            n.is_int = true;
            n.int = mag as i64;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", crate::gofmt::quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if (f as i64) as f64 == f {
            n.is_int = true;
            n.int = f as i64;
        }
        if f >= 0.0 && (f as u64) as f64 == f {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", crate::gofmt::quote(text)));
    }
    Ok(n)
}

fn parse_go_float(text: &str) -> Option<f64> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    if clean.starts_with("0x") || clean.starts_with("0X") || clean.contains(['p', 'P']) {
        return None; // hex floats: rare in templates
    }
    let f: f64 = clean.parse().ok()?;
    if f.is_infinite() {
        return None;
    }
    Some(f)
}
