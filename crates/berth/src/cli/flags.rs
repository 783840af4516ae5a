//! The one flag-parsing convention of every command, set on clap once (not
//! per command): Docker's boolean syntax (`--all`, `--all=false`,
//! `-d=false`, `-it`), and clap's errors rewritten in the docker CLI's
//! words and exit codes (an unknown or malformed flag exits 125, a wrong
//! number of arguments or an unknown command exits 1).

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

/// Every `SetTrue` flag of `cmd` and of all its subcommands becomes a flag
/// that takes an optional `=VALUE` parsed as Go's `strconv.ParseBool` does
/// (what pflag, behind the docker CLI, accepts): `--rm`, `--rm=true`,
/// `--tty=false`, `-d=0`, and clusters such as `-it` keep working.
pub fn docker_style(cmd: Command) -> Command {
    let name = cmd.get_name().to_string();
    docker_usages(bool_flags(cmd), &name)
}

fn bool_flags(cmd: Command) -> Command {
    cmd.mut_args(bool_flag).mut_subcommands(bool_flags)
}

/// Every subcommand's usage line as the docker CLI writes it (`berth rm
/// [OPTIONS] CONTAINER [CONTAINER...]`, not clap's `<CONTAINER>...`).
fn docker_usages(cmd: Command, prefix: &str) -> Command {
    cmd.mut_subcommands(|sc| {
        let full = format!("{prefix} {}", sc.get_name());
        let usage = docker_usage(&sc, &full);
        docker_usages(sc, &full).override_usage(usage)
    })
}

/// `FULL [OPTIONS] OPERAND…`: `[OPTIONS]` when it has flags besides
/// `--help`, `COMMAND` for a command of commands, an operand as its value
/// name, `[NAME]` when optional, `NAME [NAME...]` when repeated (a value
/// name that spells out its own shape, `IMAGE [COMMAND] [ARG...]`, as is).
fn docker_usage(cmd: &Command, full: &str) -> String {
    let mut parts = vec![full.to_string()];
    let flags = cmd
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set() && a.get_id() != "help");
    if flags {
        parts.push("[OPTIONS]".into());
    }
    if cmd.has_subcommands() {
        parts.push("COMMAND".into());
    }
    for p in cmd.get_positionals().filter(|p| !p.is_hide_set()) {
        let name = p
            .get_value_names()
            .map(|v| v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| p.get_id().as_str().to_uppercase());
        let many = p.get_num_args().is_some_and(|r| r.max_values() > 1) || matches!(p.get_action(), ArgAction::Append);
        parts.push(match (name.contains(' '), p.is_required_set(), many) {
            (true, _, _) => name,
            (false, true, false) => name,
            (false, true, true) => format!("{name} [{name}...]"),
            (false, false, false) => format!("[{name}]"),
            (false, false, true) => format!("[{name}...]"),
        });
    }
    parts.join(" ")
}

fn bool_flag(a: Arg) -> Arg {
    if !matches!(a.get_action(), ArgAction::SetTrue) {
        return go_int(a);
    }
    a.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .default_value("false")
        .hide_default_value(true)
        .hide_possible_values(true)
        .value_parser(parse_go_bool)
}

/// An integer flag reads its value as Go's `strconv.ParseInt` (`uint16`:
/// `ParseUint`) and says so when it cannot (`strconv.ParseInt: parsing
/// "abc": invalid syntax`).
fn go_int(a: Arg) -> Arg {
    use std::any::TypeId;
    let t = a.get_value_parser().type_id();
    if t == TypeId::of::<i64>() {
        a.value_parser(parse_go_int::<i64>)
    } else if t == TypeId::of::<i32>() {
        a.value_parser(parse_go_int::<i32>)
    } else if t == TypeId::of::<u64>() {
        a.value_parser(parse_go_int::<u64>)
    } else if t == TypeId::of::<u32>() {
        a.value_parser(parse_go_int::<u32>)
    } else if t == TypeId::of::<u16>() {
        // Docker's only uint16 flag is `--blkio-weight`.
        a.value_parser(parse_go_uint::<u16>)
    } else {
        a
    }
}

pub fn parse_go_int<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    go_number(s, "ParseInt")
}

fn parse_go_uint<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    go_number(s, "ParseUint")
}

fn go_number<T: std::str::FromStr>(s: &str, func: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|_| {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        let why = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("strconv.{func}: parsing {s:?}: {why}")
    })
}

/// `--link-local-ip`: an address, in the docker CLI's words when it is not one.
pub fn link_local_ip(s: &str) -> Result<std::net::IpAddr, String> {
    s.parse()
        .map_err(|_| format!("IP address is not correctly formatted: {s}"))
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// What a failed parse prints and the exit code it ends with, as the
/// docker CLI: help and version on stdout with 0; a flag error on stderr
/// with 125 (`unknown flag: --bogus`, the usage, and where to look); a
/// wrong number of arguments or an unknown command with 1.
pub fn report(cmd: &Command, e: &clap::Error, argv: &[OsString]) -> i32 {
    let path = command_path(cmd, argv);
    if e.kind() == ErrorKind::DisplayHelp {
        // Help from the command as declared: flags read `-a, --all`, not
        // the `--all[=<ALL>]` the boolean syntax above would show.
        let plain = docker_usages(<super::Cli as clap::CommandFactory>::command(), "berth");
        let mut sub = find(&plain, &path).clone().bin_name(if path.is_empty() {
            "berth".to_string()
        } else {
            format!("berth {}", path.join(" "))
        });
        super::pipe::print(&sub.render_help().to_string());
        return 0;
    }
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    let sub = find(cmd, &path);
    let full = if path.is_empty() {
        "berth".to_string()
    } else {
        format!("berth {}", path.join(" "))
    };
    let usage = usage_line(sub, &full);
    let (code, first, see) = match e.kind() {
        ErrorKind::UnknownArgument => {
            let word = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            if word.starts_with('-') {
                (125, unknown_flag_text(&word), "Run")
            } else {
                (1, format!("berth: {}", arg_count_text(sub, &full)), "See")
            }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues
            if !context_str(e, ContextKind::InvalidArg).is_some_and(|a| a.starts_with('-')) =>
        {
            (1, format!("berth: {}", arg_count_text(sub, &full)), "See")
        }
        ErrorKind::InvalidSubcommand => {
            let word = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            eprintln!("berth: unknown command: {full} {word}\n\nRun '{full} --help' for more information");
            return 1;
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `berth network`: Docker shows the group's help.
            let mut s = sub.clone().bin_name(full.clone());
            eprintln!("{}", s.render_help());
            return if path.is_empty() { 0 } else { 1 };
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let value = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            let flag = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            let reason = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_else(|| {
                match e.get(ContextKind::ValidValue) {
                    Some(v) => format!("valid values are {v}"),
                    None => "invalid value".to_string(),
                }
            });
            (
                125,
                format!(
                    "invalid argument {value:?} for \"{}\" flag: {reason}",
                    flag_names(sub, &flag)
                ),
                "Run",
            )
        }
        _ => {
            let text = e.to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            // clap's own usage and tip lines are replaced by Docker's.
            let first = text.split("\n\n").next().unwrap_or(text).trim_end().to_string();
            (125, first, "Run")
        }
    };
    eprintln!("{first}\n\n{usage}\n\n{see} '{full} --help' for more information");
    code
}

/// The words for an unknown flag that clap let through as an operand
/// (commands whose operands may start with a hyphen: `run IMAGE CMD…`).
pub fn unknown_flag_message(path: &[&str], word: &str) -> String {
    let cmd = docker_style(<super::Cli as clap::CommandFactory>::command());
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    let full = format!("berth {}", path.join(" "));
    format!(
        "{}\n\n{}\n\nRun '{full} --help' for more information",
        unknown_flag_text(word),
        usage_line(find(&cmd, &path), &full)
    )
}

fn usage_line(sub: &Command, full: &str) -> String {
    let mut s = sub.clone().bin_name(full.to_string());
    let u = s.render_usage().to_string();
    let u = u.trim_end();
    match u.strip_prefix("Usage: ") {
        Some(rest) => format!("Usage:  {rest}"),
        None => u.to_string(),
    }
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// pflag's words: `unknown flag: --bogus`, `unknown shorthand flag: 'z' in -z`.
fn unknown_flag_text(word: &str) -> String {
    if word.starts_with("--") {
        let name = word.split('=').next().unwrap_or(word);
        format!("unknown flag: {name}")
    } else {
        let c = word.chars().nth(1).unwrap_or('-');
        format!("unknown shorthand flag: '{c}' in {word}")
    }
}

/// `-n, --last` for an argument clap shows as `--last <LAST>`.
fn flag_names(cmd: &Command, shown: &str) -> String {
    let word = shown.split([' ', '=', '[']).next().unwrap_or(shown);
    let arg = cmd.get_arguments().find(|a| {
        a.get_long().is_some_and(|l| word == format!("--{l}")) || a.get_short().is_some_and(|s| word == format!("-{s}"))
    });
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => word.to_string(),
        },
        None => word.to_string(),
    }
}

/// The cobra-style sentence for a wrong number of operands:
/// `'berth rm' requires at least 1 argument`, `'berth rename' requires 2
/// arguments`, `'berth ps' accepts no arguments`.
fn arg_count_text(cmd: &Command, full: &str) -> String {
    let mut min = 0usize;
    let mut max = 0usize;
    for p in cmd.get_positionals() {
        let range = p.get_num_args().unwrap_or_else(|| 1.into());
        let many = range.max_values() > 1 || matches!(p.get_action(), ArgAction::Append);
        if p.is_required_set() {
            min += range.min_values().max(1);
        }
        max = if many || max == usize::MAX {
            usize::MAX
        } else {
            max + range.max_values()
        };
    }
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    if max == 0 {
        format!("'{full}' accepts no arguments")
    } else if max == usize::MAX {
        format!("'{full}' requires at least {min} {}", plural(min))
    } else if min == max {
        format!("'{full}' requires {min} {}", plural(min))
    } else if min == 0 {
        format!("'{full}' requires at most {max} {}", plural(max))
    } else {
        format!("'{full}' requires at least {min} and at most {max} arguments")
    }
}

/// `argv` with each `-x=VALUE` before the operands spelt `--long=VALUE`:
/// pflag reads `-d=false` as the flag `-d` with the value `false`, but
/// clap takes such a word for an operand when the operands may start with
/// a hyphen (`run IMAGE COMMAND…`).
pub fn normalize(cmd: &Command, argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut cur = cmd;
    let mut skip_value = false;
    let mut done = false;
    for (i, a) in argv.into_iter().enumerate() {
        if i == 0 || done {
            out.push(a);
            continue;
        }
        let word = a.to_string_lossy().into_owned();
        if skip_value {
            skip_value = false;
        } else if word == "--" {
            done = true;
        } else if word.starts_with('-') && word.len() > 1 {
            let mut chars = word.chars().skip(1);
            if let (Some(c), Some('=')) = (chars.next(), chars.next()) {
                if let Some(long) = cur
                    .get_arguments()
                    .find(|x| x.get_short() == Some(c))
                    .and_then(|x| x.get_long())
                {
                    out.push(format!("--{long}={}", &word[3..]).into());
                    continue;
                }
            }
            skip_value = !word.contains('=') && takes_value(cur, &word);
        } else if let Some(s) = cur
            .get_subcommands()
            .find(|s| s.get_name() == word || s.get_all_aliases().any(|x| x == word))
        {
            cur = s;
        } else {
            done = true;
        }
        out.push(a);
    }
    out
}

/// The subcommand names in `argv` (`["container", "ls"]`), found by walking
/// the command tree; values of the flags before each name are skipped.
pub fn command_path(cmd: &Command, argv: &[OsString]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cur = cmd;
    let mut skip_value = false;
    for a in argv.iter().skip(1) {
        let a = a.to_string_lossy();
        if skip_value {
            skip_value = false;
            continue;
        }
        if a == "--" {
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            skip_value = !a.contains('=') && takes_value(cur, &a);
            continue;
        }
        match cur
            .get_subcommands()
            .find(|s| s.get_name() == a || s.get_all_aliases().any(|x| x == a))
        {
            Some(s) => {
                path.push(s.get_name().to_string());
                cur = s;
            }
            None => break,
        }
    }
    path
}

fn takes_value(cmd: &Command, word: &str) -> bool {
    let found = if let Some(l) = word.strip_prefix("--") {
        cmd.get_arguments().find(|a| a.get_long() == Some(l))
    } else {
        // `-H x` takes one; a cluster `-it` only if its last letter does.
        word.chars()
            .last()
            .and_then(|c| cmd.get_arguments().find(|a| a.get_short() == Some(c)))
    };
    found.is_some_and(|a| a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0))
}

fn find<'a>(cmd: &'a Command, path: &[String]) -> &'a Command {
    let mut cur = cmd;
    for p in path {
        match cur.find_subcommand(p) {
            Some(s) => cur = s,
            None => break,
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false));
        }
        assert!(parse_go_bool("yes").is_err());
    }
}
