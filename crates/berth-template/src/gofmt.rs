//! Go's `fmt` for template values: `Sprint`, `Sprintln`, `Sprintf` and the
//! `%v` forms (`[a b]`, `map[a:1 b:2]`, `{x y}`, `<nil>`), with Go's float
//! and quoting rules. It never does I/O; it only builds strings.

use crate::value::{Value, IFACE};

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(..));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&fmt_value(a, 'v', &Flags::default(), 0));
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(|a| fmt_value(a, 'v', &Flags::default(), 0)).collect();
    let mut out = parts.join(" ");
    out.push('\n');
    out
}

/// `%v` of one value at top level.
/// The Go type whose values print as `1m30s` (its JSON is nanoseconds).
pub const DURATION: &str = "time.Duration";

/// Go's `time.Duration.String`: `0s`, `1.5s`, `1m0s`, `1h2m3s`, `500ms`, `10µs`, `7ns`.
pub fn go_duration(d: i64) -> String {
    // `n/div` with its fraction, trailing zeros dropped.
    fn frac(n: u64, div: u64) -> String {
        let (int, rem) = (n / div, n % div);
        if rem == 0 {
            return int.to_string();
        }
        let width = div.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    }
    if d == 0 {
        return "0s".into();
    }
    let u = d.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 1_000_000))
    } else {
        let secs = u / 1_000_000_000;
        let s = frac(secs % 60 * 1_000_000_000 + u % 1_000_000_000, 1_000_000_000);
        let (h, m) = (secs / 3600, secs / 60 % 60);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else if m > 0 {
            format!("{m}m{s}s")
        } else {
            format!("{s}s")
        }
    };
    if d < 0 {
        format!("-{body}")
    } else {
        body
    }
}

pub fn to_string(v: &Value) -> String {
    fmt_value(v, 'v', &Flags::default(), 0)
}

#[derive(Default, Clone)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    /// `%+v`: struct field names (the `+` is not a sign then).
    plus_v: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Flags {
    /// Pad `s` to the width (spaces, or zeros after the sign when `zero`).
    fn pad(&self, s: &str) -> String {
        let Some(w) = self.width else { return s.to_string() };
        let n = s.chars().count();
        if n >= w {
            return s.to_string();
        }
        let fill = w - n;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else if self.zero {
            format!("{}{s}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }

    /// Pad a number: zeros go after the sign.
    fn pad_num(&self, s: &str) -> String {
        if self.zero && !self.minus {
            if let Some(w) = self.width {
                let (sign, digits) = match s.chars().next() {
                    Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &s[1..]),
                    _ => (String::new(), s),
                };
                let n = s.chars().count();
                if n < w {
                    return format!("{sign}{}{digits}", "0".repeat(w - n));
                }
                return s.to_string();
            }
        }
        let mut f = self.clone();
        f.zero = false;
        f.pad(s)
    }
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let b = format.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= b.len() {
            break;
        }
        i += 1; // the '%'
        let mut f = Flags::default();
        while i < b.len() {
            match b[i] {
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b'+' => f.plus = true,
                b'#' => f.sharp = true,
                b' ' => f.space = true,
                b'0' => f.zero = !f.minus,
                _ => break,
            }
            i += 1;
        }
        // width
        if i < b.len() && b[i] == b'*' {
            i += 1;
            match args.get(argi) {
                Some(Value::Int(n, _)) => {
                    if *n < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    f.width = Some(n.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i > s {
                f.width = format[s..i].parse().ok();
            }
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            if i < b.len() && b[i] == b'*' {
                i += 1;
                match args.get(argi) {
                    Some(Value::Int(n, _)) if *n >= 0 => f.prec = Some(*n as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let s = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                f.prec = Some(format[s..i].parse().unwrap_or(0));
            }
        }
        if i >= b.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('?');
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        if verb == 'v' && f.plus {
            f.plus = false;
            f.plus_v = true;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(a) => {
                argi += 1;
                if verb == 'T' {
                    out.push_str(&f.pad(&type_of(a)));
                } else {
                    out.push_str(&fmt_value(a, verb, &f, 0));
                }
            }
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::NoValue => "<nil>".to_string(),
                _ => format!("{}={}", type_of(a), to_string(a)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn type_of(v: &Value) -> String {
    match v {
        Value::NoValue => "<nil>".into(),
        Value::Nil(t) if &**t == IFACE => "<nil>".into(),
        other => other.type_name(),
    }
}

fn bad_verb(v: &Value, verb: char) -> String {
    match v {
        Value::NoValue => format!("%!{verb}(<nil>)"),
        Value::Nil(t) if &**t == IFACE => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), to_string(v)),
    }
}

/// Format one operand with `verb` (Go's `printArg`/`printValue`).
fn fmt_value(v: &Value, verb: char, f: &Flags, depth: usize) -> String {
    match v {
        Value::NoValue => {
            if depth == 0 {
                match verb {
                    'v' | 'T' => f.pad("<nil>"),
                    _ => bad_verb(v, verb),
                }
            } else {
                "<invalid reflect.Value>".into()
            }
        }
        Value::Nil(t) => {
            if &**t == IFACE && depth == 0 {
                return match verb {
                    'v' => f.pad("<nil>"),
                    _ => bad_verb(v, verb),
                };
            }
            match verb {
                'v' | 's' | 'p' => f.pad("<nil>"),
                _ if t.starts_with('*') => f.pad("<nil>"),
                _ => bad_verb(v, verb),
            }
        }
        Value::Bool(b) => match verb {
            't' | 'v' => f.pad(if *b { "true" } else { "false" }),
            _ => bad_verb(v, verb),
        },
        // time.Duration's String method: what %v and %s print.
        Value::Int(i, DURATION) if matches!(verb, 'v' | 's') => f.pad(&go_duration(*i)),
        Value::Int(i, _) => fmt_int(*i < 0, i.unsigned_abs(), verb, f).unwrap_or_else(|| bad_verb(v, verb)),
        Value::Uint(u, _) => fmt_int(false, *u, verb, f).unwrap_or_else(|| bad_verb(v, verb)),
        Value::Float(x) => fmt_float_verb(*x, verb, f).unwrap_or_else(|| bad_verb(v, verb)),
        Value::Str(s, _) => fmt_str(s, verb, f).unwrap_or_else(|| bad_verb(v, verb)),
        Value::List(l) => {
            if matches!(verb, 's' | 'q' | 'x' | 'X') && &*l.elem == "uint8" {
                // []byte prints as a string; not produced from JSON.
            }
            let mut out = String::from("[");
            for (i, it) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&fmt_value(it, verb, f, depth + 1));
            }
            out.push(']');
            out
        }
        Value::Map(m) => {
            let mut out = String::from("map[");
            for (i, (k, val)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&fmt_str(k, verb, f).unwrap_or_else(|| bad_verb(&Value::str(k.as_str()), verb)));
                out.push(':');
                out.push_str(&fmt_value(val, verb, f, depth + 1));
            }
            out.push(']');
            out
        }
        Value::Struct(s) => {
            if s.ptr && depth > 0 {
                // Go prints the address of a nested pointer; no address exists here.
                return fmt_int(
                    false,
                    0xc000010000,
                    'x',
                    &Flags {
                        sharp: true,
                        ..Flags::default()
                    },
                )
                .unwrap_or_default();
            }
            let mut out = String::new();
            if s.ptr {
                out.push('&');
            }
            out.push('{');
            for (i, fl) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if f.plus_v {
                    out.push_str(&fl.name);
                    out.push(':');
                }
                out.push_str(&fmt_value(&fl.value, verb, f, depth + 1));
            }
            out.push('}');
            out
        }
        Value::Func(_) => match verb {
            'v' | 'p' => f.pad("0x4a5b60"),
            _ => bad_verb(v, verb),
        },
    }
}

fn fmt_int(neg: bool, mag: u64, verb: char, f: &Flags) -> Option<String> {
    let digits = match verb {
        'v' | 'd' => mag.to_string(),
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'c' => {
            let c = if neg {
                '\u{fffd}'
            } else {
                char::from_u32(mag as u32).unwrap_or('\u{fffd}')
            };
            return Some(f.pad(&c.to_string()));
        }
        'q' => {
            let c = if neg {
                '\u{fffd}'
            } else {
                char::from_u32(mag as u32).unwrap_or('\u{fffd}')
            };
            return Some(f.pad(&quote_rune(c)));
        }
        'U' => {
            let s = format!("U+{mag:04X}");
            return Some(f.pad(&s));
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => return None,
        _ => return None,
    };
    let mut digits = digits;
    if let Some(p) = f.prec {
        if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
        if p == 0 && mag == 0 {
            digits = String::new();
        }
    }
    let prefix = if f.sharp {
        match verb {
            'b' => "0b",
            'o' => "0",
            'x' => "0x",
            'X' => "0X",
            _ => "",
        }
    } else if verb == 'O' {
        "0o"
    } else {
        ""
    };
    let sign = if neg {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{prefix}{digits}");
    if f.prec.is_some() {
        let mut g = f.clone();
        g.zero = false;
        Some(g.pad(&s))
    } else {
        Some(f.pad_num(&s))
    }
}

fn fmt_str(s: &str, verb: char, f: &Flags) -> Option<String> {
    let s: String = match f.prec {
        Some(p) if matches!(verb, 'v' | 's') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    match verb {
        'v' | 's' => Some(f.pad(&s)),
        'q' => Some(f.pad(&if f.sharp && !s.contains('`') {
            format!("`{s}`")
        } else {
            quote(&s)
        })),
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = match f.prec {
                Some(p) => &bytes[..p.min(bytes.len())],
                None => bytes,
            };
            let mut out = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if f.space && i > 0 {
                    out.push(' ');
                }
                if f.sharp && (f.space || i == 0) {
                    out.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    out.push_str(&format!("{b:02x}"));
                } else {
                    out.push_str(&format!("{b:02X}"));
                }
            }
            Some(f.pad(&out))
        }
        _ => None,
    }
}

fn fmt_float_verb(x: f64, verb: char, f: &Flags) -> Option<String> {
    let (fmt, prec) = match verb {
        'v' => ('g', None),
        'g' | 'G' => (verb, None),
        'e' | 'E' => (verb, Some(6)),
        'f' | 'F' => ('f', Some(6)),
        _ => return None,
    };
    let prec = f.prec.or(prec);
    let mut s = format_float(x, fmt, prec);
    if f.sharp && !s.contains('.') && x.is_finite() {
        // '#' forces a decimal point.
        match s.find(['e', 'E']) {
            Some(i) => s.insert(i, '.'),
            None => s.push('.'),
        }
    }
    if !s.starts_with('-') {
        if f.plus {
            s.insert(0, '+');
        } else if f.space {
            s.insert(0, ' ');
        }
    }
    if !x.is_finite() {
        let mut g = f.clone();
        g.zero = false;
        return Some(g.pad(&s));
    }
    Some(f.pad_num(&s))
}

/// Decimal digits of |x| (no trailing zeros) and the decimal point position.
fn digits_of(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let s = match sig {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), x.abs()),
        None => format!("{:e}", x.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == [b'0'] {
        return (Vec::new(), 0);
    }
    (d, exp + 1)
}

fn fmt_e(neg: bool, d: &[u8], dp: i32, prec: usize, e: char) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push(d.first().map(|c| *c as char).unwrap_or('0'));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map(|c| *c as char).unwrap_or('0'));
        }
    }
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fmt_f(neg: bool, d: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map(|c| *c as char).unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            let j = dp + i;
            out.push(if j >= 0 {
                d.get(j as usize).map(|c| *c as char).unwrap_or('0')
            } else {
                '0'
            });
        }
    }
    out
}

/// `strconv.FormatFloat(x, fmt, prec, 64)` for 'e', 'E', 'f', 'g', 'G'.
pub fn format_float(x: f64, fmt: char, prec: Option<usize>) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = x.is_sign_negative();
    match fmt {
        'f' => {
            let p = prec.unwrap_or(6);
            let s = format!("{:.*}", p, x.abs());
            if neg {
                format!("-{s}")
            } else {
                s
            }
        }
        'e' | 'E' => {
            let p = prec.unwrap_or(6);
            let (d, dp) = digits_of(x, Some(p + 1));
            fmt_e(neg, &d, dp, p, fmt)
        }
        _ => {
            let e = if fmt == 'G' { 'E' } else { 'e' };
            let shortest = prec.is_none();
            let (d, dp) = match prec {
                None => digits_of(x, None),
                Some(p) => digits_of(x, Some(p.max(1))),
            };
            let nd = d.len().max(1) as i32;
            let mut p = match prec {
                None => nd,
                Some(p) => p.max(1) as i32,
            };
            let mut eprec = p;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if d.is_empty() {
                // zero
                return if neg { "-0".into() } else { "0".into() };
            }
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                return fmt_e(neg, &d, dp, (p - 1).max(0) as usize, e);
            }
            if p > dp {
                p = nd;
            }
            fmt_f(neg, &d, dp, (p - dp).max(0) as usize)
        }
    }
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => escape_char(c, &mut out),
        }
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    match c {
        '\'' => out.push_str("\\'"),
        '\\' => out.push_str("\\\\"),
        _ => escape_char(c, &mut out),
    }
    out.push('\'');
    out
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if is_print(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `unicode.IsPrint` (approximation: graphic characters and the ASCII space).
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters and private use / unassigned blocks Go treats as non-printable.
    !matches!(u, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF)
}

/// `strconv.FormatFloat(x, fmt, -1, 64)`: the shortest digits that read
/// back as `x`, in 'e' or 'f' form.
pub fn format_float_shortest(x: f64, fmt: char) -> String {
    if !x.is_finite() {
        return format_float(x, 'g', None);
    }
    let neg = x.is_sign_negative();
    let (d, dp) = digits_of(x, None);
    if d.is_empty() {
        return match fmt {
            'e' => fmt_e(neg, &d, 0, 0, 'e'),
            _ => {
                if neg {
                    "-0".into()
                } else {
                    "0".into()
                }
            }
        };
    }
    let nd = d.len() as i32;
    match fmt {
        'e' => fmt_e(neg, &d, dp, (nd - 1) as usize, 'e'),
        _ => fmt_f(neg, &d, dp, (nd - dp).max(0) as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (0, "0s"),
            (7, "7ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-5_000_000_000, "-5s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d}");
        }
    }
}
