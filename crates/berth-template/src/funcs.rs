//! The functions a template can call: Go's builtins (`and or not len index
//! slice print printf println eq ne lt le gt ge html js urlquery call`) and
//! Docker CLI's (`json split join title lower upper pad truncate`, plus the
//! header variants a `table` uses for its header row). Each keeps Go's
//! signature so argument errors read as Go's do. None has side effects.

use std::rc::Rc;

use crate::gofmt;
use crate::value::{Func, List, Param, Value, IFACE};

type Res = Result<Value, String>;

fn f(
    name: &str,
    params: Vec<Param>,
    variadic: Option<Param>,
    body: impl Fn(&[Value]) -> Res + 'static,
) -> (String, Rc<Func>) {
    (name.to_string(), Func::new(name, params, variadic, body))
}

/// `indirectInterface`: a nil interface is no value.
fn iface(v: &Value) -> Value {
    v.clone().unwrap_iface()
}

/// Go's builtin functions.
pub fn builtins() -> Vec<(String, Rc<Func>)> {
    use Param::*;
    vec![
        f("and", vec![Reflect], Some(Reflect), |_| Ok(Value::NoValue)),
        f("or", vec![Reflect], Some(Reflect), |_| Ok(Value::NoValue)),
        f("not", vec![Reflect], None, |a| Ok(Value::Bool(!iface(&a[0]).truth()))),
        f("len", vec![Reflect], None, |a| length(&a[0])),
        f("index", vec![Reflect], Some(Reflect), |a| index(&a[0], &a[1..])),
        f("slice", vec![Reflect], Some(Reflect), |a| slice(&a[0], &a[1..])),
        f("call", vec![Reflect], Some(Reflect), |a| call(&a[0], &a[1..])),
        f("print", vec![], Some(Any), |a| Ok(Value::str(gofmt::sprint(a)))),
        f("println", vec![], Some(Any), |a| Ok(Value::str(gofmt::sprintln(a)))),
        f("printf", vec![String], Some(Any), |a| {
            let Value::Str(fmt, _) = &a[0] else {
                return Ok(Value::str(""));
            };
            Ok(Value::str(gofmt::sprintf(fmt, &a[1..])))
        }),
        f("html", vec![], Some(Any), |a| {
            Ok(Value::str(html_escape(&eval_args(a))))
        }),
        f("js", vec![], Some(Any), |a| Ok(Value::str(js_escape(&eval_args(a))))),
        f("urlquery", vec![], Some(Any), |a| {
            Ok(Value::str(query_escape(&eval_args(a))))
        }),
        f("eq", vec![Reflect], Some(Reflect), |a| {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            eq(&a[0], &a[1..]).map(Value::Bool)
        }),
        f("ne", vec![Reflect, Reflect], None, |a| {
            eq(&a[0], &a[1..2]).map(|b| Value::Bool(!b))
        }),
        f("lt", vec![Reflect, Reflect], None, |a| {
            lt(&a[0], &a[1]).map(Value::Bool)
        }),
        f("le", vec![Reflect, Reflect], None, |a| {
            le(&a[0], &a[1]).map(Value::Bool)
        }),
        f("gt", vec![Reflect, Reflect], None, |a| {
            le(&a[0], &a[1]).map(|b| Value::Bool(!b))
        }),
        f("ge", vec![Reflect, Reflect], None, |a| {
            lt(&a[0], &a[1]).map(|b| Value::Bool(!b))
        }),
    ]
}

fn as_str(v: &Value) -> &str {
    match v {
        Value::Str(s, _) => s,
        _ => "",
    }
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        _ => 0,
    }
}

/// Docker CLI's template functions (`templates.basicFunctions`).
pub fn docker() -> Vec<(String, Rc<Func>)> {
    use Param::*;
    vec![
        f("json", vec![Any], None, |a| Ok(Value::str(go_json(&a[0])))),
        f("split", vec![String, String], None, |a| {
            Ok(Value::strings(&go_split(as_str(&a[0]), as_str(&a[1]))))
        }),
        f("join", vec![StringSlice, String], None, |a| {
            let Value::List(l) = &a[0] else {
                return Ok(Value::str(""));
            };
            let parts: Vec<&str> = l.items.iter().map(as_str).collect();
            Ok(Value::str(parts.join(as_str(&a[1]))))
        }),
        f("title", vec![String], None, |a| Ok(Value::str(go_title(as_str(&a[0]))))),
        f("lower", vec![String], None, |a| {
            Ok(Value::str(as_str(&a[0]).to_lowercase()))
        }),
        f("upper", vec![String], None, |a| {
            Ok(Value::str(as_str(&a[0]).to_uppercase()))
        }),
        f("pad", vec![String, Int, Int], None, |a| {
            let s = as_str(&a[0]);
            if s.is_empty() {
                return Ok(Value::str(""));
            }
            let (pre, post) = (as_int(&a[1]), as_int(&a[2]));
            if pre < 0 || post < 0 {
                return Err("strings: negative Repeat count".into());
            }
            Ok(Value::str(format!(
                "{}{s}{}",
                " ".repeat(pre as usize),
                " ".repeat(post as usize)
            )))
        }),
        f("truncate", vec![String, Int], None, |a| {
            let s = as_str(&a[0]);
            let n = as_int(&a[1]);
            if (s.len() as i64) < n {
                return Ok(Value::str(s));
            }
            if n < 0 {
                return Err(format!("runtime error: slice bounds out of range [:{n}]"));
            }
            let b = &s.as_bytes()[..n as usize];
            Ok(Value::str(std::string::String::from_utf8_lossy(b).into_owned()))
        }),
    ]
}

/// Docker's `HeaderFunctions`: the header row keeps the column names intact.
pub fn header() -> Vec<(String, Rc<Func>)> {
    use Param::*;
    let same = |a: &[Value]| Ok(a[0].clone());
    vec![
        f("json", vec![String], None, same),
        f("split", vec![String, String], None, same),
        f("join", vec![String, String], None, same),
        f("title", vec![String], None, same),
        f("lower", vec![String], None, same),
        f("upper", vec![String], None, same),
        f("truncate", vec![String, Int], None, same),
    ]
}

fn length(v: &Value) -> Res {
    match v {
        Value::Nil(t) if &**t != IFACE => Err("len of nil pointer".into()),
        Value::Nil(_) => Err("len of nil pointer".into()),
        Value::NoValue => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        other => match other.len() {
            Some(n) => Ok(Value::int(n as i64)),
            None => Err(format!("len of type {}", other.type_name())),
        },
    }
}

fn index_arg(i: &Value, cap: usize) -> Result<usize, String> {
    let x: i128 = match i {
        Value::Int(n, _) => *n as i128,
        Value::Uint(n, _) => *n as i128,
        Value::NoValue => return Err("cannot index slice/array with nil".into()),
        other => return Err(format!("cannot index slice/array with type {}", other.type_name())),
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: &Value, idx: &[Value]) -> Res {
    let mut item = iface(item);
    if let Value::NoValue = item {
        return Err("index of untyped nil".into());
    }
    for i in idx {
        let i = iface(i);
        if let Value::Nil(_) = item {
            return Err("index of nil pointer".into());
        }
        item = match &item {
            Value::List(l) => {
                let x = index_arg(&i, l.items.len())?;
                match l.items.get(x) {
                    Some(v) => v.clone(),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::Str(s, _) => {
                let x = index_arg(&i, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint(*b as u64, "uint8"),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::Map(m) => {
                let key = match &i {
                    Value::NoValue => return Err(format!("value is nil; should be of type {}", m.key)),
                    Value::Str(k, t) if t.as_deref().unwrap_or("string") == &*m.key => k.clone(),
                    other => return Err(format!("value has type {}; should be {}", other.type_name(), m.key)),
                };
                match m.entries.get(&*key) {
                    Some(v) => v.clone(),
                    None => crate::exec_zero(&m.elem),
                }
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: &Value, idx: &[Value]) -> Res {
    let item = iface(item);
    if let Value::NoValue = item {
        return Err("slice of untyped nil".into());
    }
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let cap = match &item {
        Value::Str(s, _) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.items.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut x = [0usize, cap, cap];
    for (n, i) in idx.iter().enumerate() {
        x[n] = index_arg(&iface(i), cap)?;
    }
    if x[0] > x[1] {
        return Err(format!("invalid slice index: {} > {}", x[0], x[1]));
    }
    if idx.len() == 3 && x[1] > x[2] {
        return Err(format!("invalid slice index: {} > {}", x[1], x[2]));
    }
    Ok(match &item {
        Value::Str(s, t) => {
            let b = &s.as_bytes()[x[0]..x[1]];
            Value::Str(std::string::String::from_utf8_lossy(b).into_owned().into(), t.clone())
        }
        Value::List(l) => Value::List(Rc::new(List {
            elem: l.elem.clone(),
            items: l.items[x[0]..x[1]].to_vec(),
            nil: false,
        })),
        _ => unreachable!("checked above"),
    })
}

fn call(fun: &Value, args: &[Value]) -> Res {
    let fun = iface(fun);
    let f = match &fun {
        Value::NoValue => return Err("call of nil".into()),
        Value::Func(f) => f.clone(),
        other => return Err(format!("non-function of type {}", other.type_name())),
    };
    let n = f.params.len();
    if f.variadic.is_some() {
        if args.len() < n {
            return Err(format!("wrong number of args: got {} want at least {n}", args.len()));
        }
    } else if args.len() != n {
        return Err(format!("wrong number of args: got {} want {n}", args.len()));
    }
    let mut argv = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let a = iface(a);
        let t = f.params.get(i).or(f.variadic.as_ref()).cloned().unwrap_or(Param::Any);
        let ok = match (&t, &a) {
            (Param::Any | Param::Reflect, _) => true,
            (_, Value::NoValue) => return Err(format!("arg {i}: value is nil; should be of type {}", t.go_type())),
            (Param::String, Value::Str(_, None)) => true,
            (Param::Int, Value::Int(..) | Value::Uint(..)) => true,
            (Param::Bool, Value::Bool(_)) => true,
            (Param::Float, Value::Float(_)) => true,
            (Param::StringSlice, Value::List(l)) => &*l.elem == "string",
            _ => false,
        };
        if !ok {
            return Err(format!(
                "arg {i}: value has type {}; should be {}",
                a.type_name(),
                t.go_type()
            ));
        }
        argv.push(a);
    }
    (f.body)(&argv)
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Uint,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(..) => Kind::Int,
        Value::Uint(..) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(..) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn eq(a1: &Value, rest: &[Value]) -> Result<bool, String> {
    let a1 = iface(a1);
    let k1 = basic_kind(&a1);
    for a in rest {
        let a = iface(a);
        let k2 = basic_kind(&a);
        let truth = if k1 != k2 {
            match (&a1, &a) {
                (Value::Int(i, _), Value::Uint(u, _)) => *i >= 0 && *i as u64 == *u,
                (Value::Uint(u, _), Value::Int(i, _)) => *i >= 0 && *u == *i as u64,
                _ => {
                    if !matches!(a1, Value::NoValue) && !matches!(a, Value::NoValue) {
                        return Err("incompatible types for comparison".into());
                    }
                    false
                }
            }
        } else {
            match (&a1, &a) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Int(x, _), Value::Int(y, _)) => x == y,
                (Value::Uint(x, _), Value::Uint(y, _)) => x == y,
                (Value::Str(x, _), Value::Str(y, _)) => x == y,
                _ => {
                    // Neither is a basic kind.
                    let nil1 = is_nil(&a1);
                    let nil2 = is_nil(&a);
                    if std::mem::discriminant(&a1) != std::mem::discriminant(&a)
                        && !matches!(a1, Value::NoValue)
                        && !matches!(a, Value::NoValue)
                    {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            gofmt::to_string(&a1),
                            a1.type_name(),
                            a.type_name(),
                            gofmt::to_string(&a)
                        ));
                    }
                    if nil1 || nil2 {
                        nil1 == nil2
                    } else {
                        match &a {
                            Value::List(_) | Value::Map(_) | Value::Func(_) => {
                                return Err(format!(
                                    "non-comparable type {}: {}",
                                    gofmt::to_string(&a),
                                    a.type_name()
                                ))
                            }
                            Value::Struct(s2) => {
                                if !comparable(&a) {
                                    return Err(format!(
                                        "non-comparable type {}: {}",
                                        gofmt::sprintf("%s", std::slice::from_ref(&a)),
                                        a.type_name()
                                    ));
                                }
                                match &a1 {
                                    Value::Struct(s1) => {
                                        Rc::ptr_eq(s1, s2) || gofmt::to_string(&a1) == gofmt::to_string(&a)
                                    }
                                    _ => false,
                                }
                            }
                            _ => false,
                        }
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `Type.Comparable` for a struct value: no slice, map or func inside.
fn comparable(v: &Value) -> bool {
    match v {
        Value::List(_) | Value::Map(_) | Value::Func(_) => false,
        Value::Struct(s) if !s.ptr => s.fields.iter().all(|f| comparable(&f.value)),
        _ => true,
    }
}

fn is_nil(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil(_) => true,
        Value::List(l) => l.nil,
        Value::Map(m) => m.nil,
        _ => false,
    }
}

fn lt(a1: &Value, a2: &Value) -> Result<bool, String> {
    let a1 = iface(a1);
    let k1 = basic_kind(&a1);
    if k1 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    let a2 = iface(a2);
    let k2 = basic_kind(&a2);
    if k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (&a1, &a2) {
            (Value::Int(i, _), Value::Uint(u, _)) => Ok(*i < 0 || (*i as u64) < *u),
            (Value::Uint(u, _), Value::Int(i, _)) => Ok(*i >= 0 && *u < *i as u64),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match (&a1, &a2) {
        (Value::Bool(_), _) => return Err("invalid type for comparison".into()),
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x, _), Value::Int(y, _)) => x < y,
        (Value::Uint(x, _), Value::Uint(y, _)) => x < y,
        (Value::Str(x, _), Value::Str(y, _)) => x < y,
        _ => false,
    })
}

fn le(a1: &Value, a2: &Value) -> Result<bool, String> {
    if lt(a1, a2)? {
        return Ok(true);
    }
    eq(a1, std::slice::from_ref(a2))
}

/// `evalArgs` of the escapers: one string as is, else Sprint of the printable values.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s, None)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::NoValue | Value::Nil(_) if a.type_name() == IFACE || matches!(a, Value::NoValue) => {
                Value::str("<no value>")
            }
            other => other.clone(),
        })
        .collect();
    gofmt::sprint(&printable)
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if (c as u32) < 0x80 => out.push(c),
            c if gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `strings.Split`.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(|c| c.to_string()).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

/// Go's `strings.Title`: upper-case the first letter of each word.
fn go_title(s: &str) -> String {
    let is_sep = |c: char| -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut out = String::new();
    for c in s.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Docker's `json` function: Go's `encoding/json` without HTML escaping.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::NoValue | Value::Nil(_) | Value::Func(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i, _) => out.push_str(&i.to_string()),
        Value::Uint(u, _) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Str(s, t) if t.as_deref() == Some("json.Number") => out.push_str(if s.is_empty() { "0" } else { s }),
        Value::Str(s, _) => json_string(s, out),
        Value::List(l) if l.nil => out.push_str("null"),
        Value::List(l) => {
            out.push('[');
            for (i, it) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(it, out);
            }
            out.push(']');
        }
        Value::Map(m) if m.nil => out.push_str("null"),
        Value::Map(m) => {
            out.push('{');
            for (i, (k, val)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                write_json(val, out);
            }
            out.push('}');
        }
        Value::Struct(s) => {
            if let Some(j) = &s.json {
                write_json(&Value::from_json(j), out);
                return;
            }
            out.push('{');
            let mut first = true;
            for fl in &s.fields {
                if fl.embedded {
                    let inner = go_json(&fl.value);
                    if inner.len() > 2 {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(&inner[1..inner.len() - 1]);
                    }
                    continue;
                }
                let Some(name) = &fl.json else { continue };
                if fl.omitempty && !matches!(fl.value, Value::Struct(_)) && !fl.value.truth() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(name, out);
                out.push(':');
                write_json(&fl.value, out);
            }
            out.push('}');
        }
    }
}

pub(crate) fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = gofmt::format_float_shortest(f, 'e');
        // e-09 → e-9
        if let Some(i) = s.find("e-0") {
            return format!("{}e-{}", &s[..i], &s[i + 3..]);
        }
        return s;
    }
    gofmt::format_float_shortest(f, 'f')
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}
