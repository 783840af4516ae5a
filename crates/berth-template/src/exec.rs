//! Running a parsed template over a [`Value`]: Go's evaluation order,
//! variable scoping, field/method lookup, argument checking and execution
//! error texts (`template: NAME:LINE:COL: executing "NAME" at <node>: …`).
//! It writes only into the returned string.

use std::collections::HashMap;
use std::rc::Rc;

use crate::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use crate::value::{Func, List, Param, Value, IFACE};
use crate::{gofmt, MissingKey};

/// Deepest `{{template}}` nesting before giving up.
const MAX_DEPTH: usize = 1000;

/// The node an error is reported at.
#[derive(Clone, Copy)]
enum At<'a> {
    None,
    Arg(&'a Arg),
    Cmd(&'a Command),
    Pipe(&'a Pipe),
    Node(&'a Node),
}

enum Ctl {
    Break,
    Continue,
    Err(String),
}

type R<T> = Result<T, Ctl>;

/// Functions visible to a template (name → function; builtin or not).
pub struct FuncMap {
    pub funcs: HashMap<String, (Rc<Func>, bool)>,
}

pub(crate) struct Exec<'a> {
    tree: &'a Tree,
    name: &'a str,
    funcs: &'a FuncMap,
    missing: MissingKey,
    out: String,
    vars: Vec<(String, Value)>,
    at: At<'a>,
    depth: usize,
    /// Dot is a range element of a `[]interface {}` or `map[…]interface {}`
    /// (its static type, named in errors, is `interface {}`).
    dot_iface: bool,
}

/// Run template `name` of `tree` on `data`.
pub(crate) fn execute(
    tree: &Tree,
    name: &str,
    funcs: &FuncMap,
    missing: MissingKey,
    data: &Value,
) -> Result<String, String> {
    match execute_partial(tree, name, funcs, missing, data) {
        (out, None) => Ok(out),
        (_, Some(e)) => Err(e),
    }
}

/// Run template `name`; return the output so far and the error, if any.
pub(crate) fn execute_partial<'a>(
    tree: &'a Tree,
    name: &'a str,
    funcs: &'a FuncMap,
    missing: MissingKey,
    data: &Value,
) -> (String, Option<String>) {
    let mut e = Exec {
        tree,
        name,
        funcs,
        missing,
        out: String::new(),
        vars: vec![("$".into(), data.clone().unwrap_iface())],
        at: At::None,
        depth: 0,
        dot_iface: false,
    };
    let data = &data.clone().unwrap_iface();
    let Some(root) = tree.templates.get(name) else {
        return (
            String::new(),
            Some(format!(
                "template: {}: {} is an incomplete or empty template",
                name,
                gofmt::quote(name)
            )),
        );
    };
    match e.walk_list(data, root) {
        Ok(()) | Err(Ctl::Break) | Err(Ctl::Continue) => (e.out, None),
        Err(Ctl::Err(m)) => (e.out, Some(m)),
    }
}

pub(crate) fn zero_of(t: &str) -> Value {
    match t {
        "string" => Value::str(""),
        "bool" => Value::Bool(false),
        "int" => Value::Int(0, "int"),
        "int64" => Value::Int(0, "int64"),
        "uint64" => Value::Uint(0, "uint64"),
        "float64" => Value::Float(0.0),
        _ if t.starts_with("[]") => Value::List(Rc::new(List {
            elem: t[2..].into(),
            items: Vec::new(),
            nil: true,
        })),
        _ if t.starts_with("map[") => {
            let close = t.find(']').unwrap_or(t.len() - 1);
            Value::Map(Rc::new(crate::value::Map {
                key: t[4..close].into(),
                elem: t[close + 1..].into(),
                entries: Default::default(),
                nil: true,
            }))
        }
        _ => Value::Nil(t.into()),
    }
}

impl<'a> Exec<'a> {
    fn errorf(&self, msg: impl std::fmt::Display) -> Ctl {
        let name = self.name;
        let (pos, context) = match self.at {
            At::None => return Ctl::Err(format!("template: {name}: {msg}")),
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Node(n) => (node_pos(n), n.to_string()),
        };
        let text = &self.tree.text[..pos.min(self.tree.text.len())];
        let (line, col) = match text.rfind('\n') {
            None => (1, pos),
            Some(i) => (1 + text.matches('\n').count(), pos - (i + 1)),
        };
        Ctl::Err(format!(
            "template: {}:{}:{}: executing {} at <{}>: {}",
            self.tree.name,
            line,
            col,
            gofmt::quote(name),
            context,
            msg
        ))
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> R<()> {
        for n in list {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'a Node) -> R<()> {
        self.at = At::Node(node);
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                Ok(())
            }
            Node::Action { pipe, .. } => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at = At::Node(node);
                    self.print_value(node, &v)?;
                }
                Ok(())
            }
            Node::Break { .. } => Err(Ctl::Break),
            Node::Continue { .. } => Err(Ctl::Continue),
            Node::Branch {
                kind: Branch::Range,
                pipe,
                list,
                else_list,
                ..
            } => self.walk_range(dot, node, pipe, list, else_list.as_deref()),
            Node::Branch {
                kind,
                pipe,
                list,
                else_list,
                ..
            } => {
                let mark = self.vars.len();
                let r = (|| {
                    let val = self.eval_pipeline(dot, pipe)?;
                    if val.truth() {
                        if *kind == Branch::With {
                            let saved = std::mem::replace(&mut self.dot_iface, false);
                            let r = self.walk_list(&val, list);
                            self.dot_iface = saved;
                            r
                        } else {
                            self.walk_list(dot, list)
                        }
                    } else if let Some(e) = else_list {
                        self.walk_list(dot, e)
                    } else {
                        Ok(())
                    }
                })();
                self.vars.truncate(mark);
                r
            }
            Node::Template { name, pipe, .. } => {
                let tree: &'a Tree = self.tree;
                let Some((key, body)) = tree.templates.get_key_value(name) else {
                    return Err(self.errorf(format!("template {} not defined", gofmt::quote(name))));
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})")));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::NoValue,
                };
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = self.name;
                self.name = key.as_str();
                self.depth += 1;
                let saved_iface = std::mem::replace(&mut self.dot_iface, false);
                let r = self.walk_list(&new_dot, body);
                self.dot_iface = saved_iface;
                self.depth -= 1;
                self.name = saved_name;
                self.vars = saved;
                r
            }
        }
    }

    fn walk_range(
        &mut self,
        dot: &Value,
        node: &'a Node,
        pipe: &'a Pipe,
        list: &'a [Node],
        else_list: Option<&'a [Node]>,
    ) -> R<()> {
        self.at = At::Node(node);
        let mark0 = self.vars.len();
        let r = (|| {
            let val = self.eval_pipeline(dot, pipe)?;
            let mark = self.vars.len();
            let ndecl = pipe.decl.len();
            let elem_iface = match &val {
                Value::List(l) => &*l.elem == IFACE,
                Value::Map(m) => &*m.elem == IFACE,
                _ => false,
            };
            let one = |this: &mut Self, index: Value, elem: Value| -> R<bool> {
                let n = this.vars.len();
                if ndecl > 0 {
                    this.vars[n - 1].1 = elem.clone();
                }
                if ndecl > 1 {
                    this.vars[n - 2].1 = index;
                }
                let saved = this.dot_iface;
                this.dot_iface = elem_iface;
                let r = this.walk_list(&elem, list);
                this.dot_iface = saved;
                this.vars.truncate(mark);
                match r {
                    Ok(()) | Err(Ctl::Continue) => Ok(true),
                    Err(Ctl::Break) => Ok(false),
                    Err(e) => Err(e),
                }
            };
            match &val {
                Value::List(l) if !l.items.is_empty() => {
                    for (i, it) in l.items.iter().enumerate() {
                        if !one(self, Value::int(i as i64), it.clone())? {
                            break;
                        }
                    }
                    return Ok(());
                }
                Value::Map(m) if !m.entries.is_empty() => {
                    let key_type = if &*m.key == "string" { None } else { Some(m.key.clone()) };
                    for (k, v) in &m.entries {
                        if !one(self, Value::Str(k.as_str().into(), key_type.clone()), v.clone())? {
                            break;
                        }
                    }
                    return Ok(());
                }
                Value::List(_) | Value::Map(_) | Value::NoValue => {}
                other => return Err(self.errorf(format!("range can't iterate over {}", gofmt::to_string(other)))),
            }
            if let Some(e) = else_list {
                self.walk_list(dot, e)?;
            }
            Ok(())
        })();
        self.vars.truncate(mark0);
        match r {
            Err(Ctl::Break) => Ok(()),
            other => other,
        }
    }

    fn print_value(&mut self, node: &'a Node, v: &Value) -> R<()> {
        let s = match v {
            Value::NoValue => "<no value>".to_string(),
            Value::Struct(s) if s.ptr => {
                let inner = Value::Struct(Rc::new(crate::value::Struct {
                    type_name: s.type_name.clone(),
                    ptr: false,
                    fields: s.fields.clone(),
                    methods: s.methods.clone(),
                    json: s.json.clone(),
                }));
                gofmt::to_string(&inner)
            }
            Value::Func(_) => {
                let n = match node {
                    Node::Action { pipe, .. } => pipe.to_string(),
                    other => other.to_string(),
                };
                return Err(self.errorf(format!("can't print {} of type {}", n, v.type_name())));
            }
            other => gofmt::to_string(other),
        };
        self.out.push_str(&s);
        Ok(())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(v.unwrap_iface());
        }
        let value = value.unwrap_or(Value::NoValue);
        for (_, name) in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                } else {
                    return Err(self.errorf(format!("undefined variable: {name}")));
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: Option<&'a [Arg]>, fin: &Option<Value>) -> R<()> {
        if let Some(a) = args {
            if a.len() > 1 || fin.is_some() {
                return Err(self.errorf(format!("can't give argument to non-function {}", a[0])));
            }
        } else if fin.is_some() {
            return Err(self.errorf("can't give argument to non-function"));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'a Command, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot, dot.clone(), first, idents, Some(&cmd.args), fin);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, Some(&cmd.args), fin),
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, first, name, At::Cmd(cmd), Some(&cmd.args), fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(Some(&cmd.args), &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { .. } => return self.eval_variable(dot, first, Some(&cmd.args), fin),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(Some(&cmd.args), &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { .. } => self.ideal_constant(first),
            Arg::String { text, .. } => Ok(Value::str(text.as_str())),
            _ => Err(self.errorf(format!("can't evaluate command {}", gofmt::quote(&first.to_string())))),
        }
    }

    fn ideal_constant(&mut self, n: &'a Arg) -> R<Value> {
        self.at = At::Arg(n);
        let Arg::Number { num, .. } = n else {
            return Ok(Value::NoValue);
        };
        let t = &num.text;
        let is_hex_int =
            t.len() > 2 && t.starts_with('0') && (t.as_bytes()[1] | 0x20) == b'x' && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if num.is_float && !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(num.float));
        }
        if num.is_int {
            return Ok(Value::Int(num.int, "int"));
        }
        if num.is_uint {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Value::NoValue)
    }

    fn eval_variable(&mut self, dot: &Value, v: &'a Arg, args: Option<&'a [Arg]>, fin: Option<Value>) -> R<Value> {
        self.at = At::Arg(v);
        let Arg::Variable { idents, .. } = v else {
            return Ok(Value::NoValue);
        };
        let value = match self.vars.iter().rev().find(|(n, _)| *n == idents[0]) {
            Some((_, val)) => val.clone(),
            None => return Err(self.errorf(format!("undefined variable: {}", idents[0]))),
        };
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, v, &idents[1..], args, fin)
    }

    fn eval_chain(&mut self, dot: &Value, chain: &'a Arg, args: Option<&'a [Arg]>, fin: Option<Value>) -> R<Value> {
        self.at = At::Arg(chain);
        let Arg::Chain { node, fields, .. } = chain else {
            return Ok(Value::NoValue);
        };
        if matches!(**node, Arg::Nil { .. }) {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let recv = self.eval_arg(dot, None, node)?;
        self.eval_field_chain(dot, recv, chain, fields, args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        node: &'a Arg,
        idents: &'a [String],
        args: Option<&'a [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        let mut iface = matches!(node, Arg::Field { .. }) && self.dot_iface;
        for id in &idents[..n - 1] {
            let next_iface = elem_is_iface(&recv);
            recv = self.eval_field(dot, id, node, None, None, recv, iface)?;
            iface = next_iface;
        }
        self.eval_field(dot, &idents[n - 1], node, args, fin, recv, iface)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &'a Arg,
        args: Option<&'a [Arg]>,
        fin: Option<Value>,
        recv: Value,
        iface: bool,
    ) -> R<Value> {
        let typ = if iface { IFACE.to_string() } else { recv.type_name() };
        let has_args = args.is_some_and(|a| a.len() > 1) || fin.is_some();
        match &recv {
            Value::NoValue => {
                if self.missing == MissingKey::Error {
                    return Err(self.errorf(format!("nil data; no entry for key {}", gofmt::quote(name))));
                }
                return Ok(Value::NoValue);
            }
            Value::Nil(_) => {
                return Err(self.errorf(format!("nil pointer evaluating {typ}.{name}")));
            }
            Value::Struct(s) => {
                if let Some(m) = s.method(name) {
                    let m = m.clone();
                    return self.eval_call(dot, &m, false, At::Arg(node), name, args, fin);
                }
                if let Some(f) = s.field(name) {
                    if has_args {
                        return Err(self.errorf(format!("{name} has arguments but cannot be invoked as function")));
                    }
                    return Ok(f.value.clone());
                }
            }
            Value::Map(m) if &*m.key == "string" => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                return match m.entries.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => match self.missing {
                        MissingKey::Default => Ok(Value::NoValue),
                        MissingKey::Zero => Ok(zero_of(&m.elem)),
                        MissingKey::Error => {
                            Err(self.errorf(format!("map has no entry for key {}", gofmt::quote(name))))
                        }
                    },
                };
            }
            _ => {}
        }
        Err(self.errorf(format!("can't evaluate field {name} in type {typ}")))
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'a Arg,
        name: &str,
        node: At<'a>,
        args: Option<&'a [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(ident);
        let Some((f, builtin)) = self.funcs.funcs.get(name).cloned() else {
            return Err(self.errorf(format!("{} is not a defined function", gofmt::quote(name))));
        };
        self.eval_call(dot, &f, builtin, node, name, args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value,
        f: &Rc<Func>,
        builtin: bool,
        node: At<'a>,
        name: &str,
        args: Option<&'a [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let args: &'a [Arg] = match args {
            Some(a) => &a[1..],
            None => &[],
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = f.params.len();
        if f.variadic.is_some() {
            if num_in < num_fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {num_fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != num_fixed {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {num_fixed} got {num_in}"
            )));
        }
        if builtin && (name == "and" || name == "or") {
            let mut v = Value::NoValue;
            for a in args {
                v = self.eval_arg(dot, Some(&Param::Reflect), a)?;
                if v.clone().unwrap_iface().truth() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = fv;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        let fixed_n = num_fixed.min(args.len());
        for (i, a) in args[..fixed_n].iter().enumerate() {
            argv.push(self.eval_arg(dot, Some(&f.params[i]), a)?);
        }
        if let Some(vt) = &f.variadic {
            for a in &args[fixed_n..] {
                argv.push(self.eval_arg(dot, Some(vt), a)?);
            }
        }
        if let Some(fv) = fin {
            let t = if f.variadic.is_some() && num_in > num_fixed {
                f.variadic.clone().unwrap_or(Param::Any)
            } else {
                f.params.get(num_in - 1).cloned().unwrap_or(Param::Any)
            };
            argv.push(self.validate_type(fv, Some(&t))?);
        }
        match (f.body)(&argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = node;
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&mut self, value: Value, typ: Option<&Param>) -> R<Value> {
        let Some(typ) = typ else { return Ok(value) };
        if let Value::NoValue = value {
            return match typ {
                Param::Any => Ok(Value::Nil(IFACE.into())),
                Param::Reflect => Ok(Value::NoValue),
                Param::StringSlice => Ok(zero_of("[]string")),
                _ => Err(self.errorf(format!("invalid value; expected {}", typ.go_type()))),
            };
        }
        let ok = match typ {
            Param::Any | Param::Reflect => true,
            Param::String => matches!(value, Value::Str(_, None)),
            Param::Int => matches!(value, Value::Int(_, "int")),
            Param::Bool => matches!(value, Value::Bool(_)),
            Param::Float => matches!(value, Value::Float(_)),
            Param::StringSlice => matches!(&value, Value::List(l) if &*l.elem == "string"),
        };
        if !ok {
            return Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                typ.go_type(),
                value.type_name()
            )));
        }
        Ok(value)
    }

    fn eval_arg(&mut self, dot: &Value, typ: Option<&Param>, n: &'a Arg) -> R<Value> {
        self.at = At::Arg(n);
        match n {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), typ),
            Arg::Nil { .. } => {
                return match typ {
                    Some(Param::Any) => Ok(Value::Nil(IFACE.into())),
                    Some(Param::Reflect) | None => Ok(Value::NoValue),
                    Some(Param::StringSlice) => Ok(zero_of("[]string")),
                    Some(t) => Err(self.errorf(format!("cannot assign nil to {}", t.go_type()))),
                };
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_chain(dot, dot.clone(), n, idents, Some(std::slice::from_ref(n)), None)?;
                return self.validate_type(v, typ);
            }
            Arg::Variable { .. } => {
                let v = self.eval_variable(dot, n, None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, typ);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, n, name, At::Arg(n), None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain(dot, n, None, None)?;
                return self.validate_type(v, typ);
            }
            _ => {}
        }
        match typ {
            Some(Param::Bool) => match n {
                Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                _ => Err(self.errorf(format!("expected bool; found {n}"))),
            },
            Some(Param::Float) => match n {
                Arg::Number { num, .. } if num.is_float => Ok(Value::Float(num.float)),
                _ => Err(self.errorf(format!("expected float; found {n}"))),
            },
            Some(Param::Int) => match n {
                Arg::Number { num, .. } if num.is_int => Ok(Value::Int(num.int, "int")),
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Some(Param::String) => match n {
                Arg::String { text, .. } => Ok(Value::str(text.as_str())),
                _ => Err(self.errorf(format!("expected string; found {n}"))),
            },
            Some(Param::Any) | Some(Param::Reflect) | None => self.eval_empty_interface(dot, n),
            Some(t) => Err(self.errorf(format!("can't handle {n} for arg of type {}", t.go_type()))),
        }
    }

    fn eval_empty_interface(&mut self, dot: &Value, n: &'a Arg) -> R<Value> {
        self.at = At::Arg(n);
        match n {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Number { .. } => self.ideal_constant(n),
            Arg::String { text, .. } => Ok(Value::str(text.as_str())),
            _ => Err(self.errorf(format!("can't handle assignment of {n} to empty interface argument"))),
        }
    }
}

fn node_pos(n: &Node) -> usize {
    match n {
        Node::Action { pos, .. }
        | Node::Branch { pos, .. }
        | Node::Template { pos, .. }
        | Node::Break { pos }
        | Node::Continue { pos } => *pos,
        Node::Text(_) => 0,
    }
}

/// Whether a field read from `v` comes out of an `interface {}` slot.
fn elem_is_iface(v: &Value) -> bool {
    matches!(v, Value::Map(m) if &*m.elem == IFACE)
}
