//! Hostile Dockerfiles: what an attacker (or a generated file gone wrong)
//! feeds the front end to crash or exhaust the builder. Each stops with an
//! error that points into the file, and never overflows the stack.

use std::collections::BTreeMap;

use super::expand::{map_lookup, MAX_NESTING, MAX_WORD_LEN};
use super::*;

fn parse_ok(src: &str) -> Dockerfile {
    parse(src, "Dockerfile").unwrap_or_else(|e| panic!("parse failed: {e}"))
}

/// Expands the first instruction of the first stage with no variables set.
fn expand_first(df: &Dockerfile) -> Result<Instruction, ExpandError> {
    let none = BTreeMap::new();
    let look = map_lookup(&none);
    expand_instruction(&df.stages[0].instructions[0], &look, '\\').map_err(|e| e.with_file(&df.file))
}

/// `${X:-${X:-…z}…}`, `depth` levels.
fn nested(depth: usize) -> String {
    format!("{}z{}", "${X:-".repeat(depth), "}".repeat(depth))
}

#[test]
fn env_nested_fourteen_thousand_deep_is_refused_at_its_line() {
    // The 84 KB file: it used to abort the builder (SIGABRT, stack overflow).
    let df = parse_ok(&format!("FROM scratch\nENV A={}\n", nested(14_000)));
    let e = expand_first(&df).unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.column), ("Dockerfile", 2, 1), "{e}");
    assert!(
        e.to_string()
            .starts_with("Dockerfile:2:1: substitutions nest more than 64 deep"),
        "{e}"
    );
}

#[test]
fn arg_nested_fourteen_thousand_deep_is_refused_globally_and_in_a_stage() {
    let text = nested(14_000);
    let df = parse_ok(&format!("ARG G={text}\nFROM scratch\nARG A={text}\n"));
    let e = df.checked_global_arg_values(&BTreeMap::new()).unwrap_err();
    assert_eq!((e.line, e.column), (1, 5), "{e}");
    assert!(e.message.contains("nest more than"), "{e}");
    let e = expand_first(&df).unwrap_err();
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    // The lenient lookups (stage graph, lint) survive it too.
    assert_eq!(df.global_arg_values(&BTreeMap::new())["G"], text);
    let _ = check(&df);
}

#[test]
fn twenty_thousand_unterminated_substitutions_are_refused() {
    let df = parse_ok(&format!("FROM scratch\nENV A={}\n", "${X:-".repeat(20_000)));
    let e = expand_first(&df).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("nest more than"), "{e}");
}

#[test]
fn nesting_up_to_the_limit_still_expands() {
    let df = parse_ok(&format!("FROM scratch\nENV A={}\n", nested(MAX_NESTING)));
    match expand_first(&df).unwrap().kind {
        InstructionKind::Env(pairs) => assert_eq!(pairs[0].1, "z"),
        k => panic!("{k:?}"),
    }
    let df = parse_ok(&format!("FROM scratch\nENV A={}\n", nested(MAX_NESTING + 1)));
    assert!(expand_first(&df).is_err());
}

/// `ARG A0=x`, `ARG A{i+1}=${Ai}${Ai}`, … as the 618-byte file.
fn doubling_chain(n: usize) -> String {
    let mut s = String::from("ARG A0=x\n");
    for i in 0..n {
        s.push_str(&format!("ARG A{}=${{A{i}}}${{A{i}}}\n", i + 1));
    }
    s
}

#[test]
fn a_doubling_global_arg_chain_stops_at_the_word_limit() {
    let df = parse_ok(&format!("{}FROM scratch\n", doubling_chain(30)));
    let e = df
        .checked_global_arg_values(&BTreeMap::new())
        .unwrap_err()
        .with_file("Dockerfile");
    // A20 is 1 MiB, the most a word may hold; A21 (line 22) would be 2 MiB.
    assert_eq!(1usize << 20, MAX_WORD_LEN);
    assert_eq!((e.line, e.column), (22, 5), "{e}");
    assert!(
        e.to_string()
            .starts_with("Dockerfile:22:5: the expanded word is longer than 1 MiB"),
        "{e}"
    );
    // Where errors are not reported, the values stay bounded.
    let lenient = df.global_arg_values(&BTreeMap::new());
    let total: usize = lenient.values().map(|v| v.len()).sum();
    assert!(total < 4 * MAX_WORD_LEN, "{total} bytes");
}

#[test]
fn a_doubling_chain_inside_a_stage_stops_at_the_word_limit() {
    // As the executor does: each ARG expanded with the ones before it.
    let df = parse_ok(&format!("FROM scratch\n{}", doubling_chain(30)));
    let mut vals = BTreeMap::new();
    let mut failed = None;
    for ins in &df.stages[0].instructions {
        let expanded = expand_instruction(ins, &map_lookup(&vals), '\\');
        match expanded {
            Ok(x) => {
                let InstructionKind::Arg(decls) = x.kind else { panic!() };
                for d in decls {
                    vals.insert(d.name, d.default.unwrap_or_default());
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let e = failed.expect("the chain is refused");
    assert_eq!(e.line, 23, "{e}");
    assert!(e.message.contains("longer than 1 MiB"), "{e}");
}

#[test]
fn many_copies_of_a_long_value_in_one_instruction_are_refused() {
    // Each word within the limit, together far past it.
    let m: BTreeMap<String, String> = [("V".to_string(), "v".repeat(MAX_WORD_LEN / 2))].into();
    let look = map_lookup(&m);
    let pairs: Vec<String> = (0..40).map(|i| format!("K{i}=$V")).collect();
    let df = parse_ok(&format!("FROM scratch\nENV {}\n", pairs.join(" ")));
    let e = expand_instruction(&df.stages[0].instructions[0], &look, '\\').unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("MiB in all"), "{e}");
}

#[test]
fn costly_patterns_stop_instead_of_running_for_hours() {
    let m: BTreeMap<String, String> = [("V".to_string(), "a".repeat(20_000))].into();
    let look = map_lookup(&m);
    let e = expand("${V##*a*a*a*a*a*a*a*b}", &look, '\\').unwrap_err();
    assert!(e.message.contains("took more than"), "{e}");
    // A pattern as long as the value recursed once per character before.
    let long = format!("${{V#{}}}", "a".repeat(200_000));
    assert_eq!(expand(&long, &look, '\\').unwrap(), "a".repeat(20_000));
    // Replacement that multiplies the value is bounded like any word.
    let m: BTreeMap<String, String> = [
        ("V".to_string(), "a".repeat(1000)),
        ("W".to_string(), "w".repeat(100_000)),
    ]
    .into();
    let look = map_lookup(&m);
    let e = expand("${V//a/$W}", &look, '\\').unwrap_err();
    assert!(e.message.contains("longer than 1 MiB"), "{e}");
}

#[test]
fn deep_json_heredocs_and_continuations_parse_without_recursion() {
    // A JSON array nested 100,000 deep is not exec form: shell form.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let df = parse_ok(&format!("FROM scratch\nCMD {deep}\n"));
    assert!(matches!(
        df.stages[0].instructions[0].kind,
        InstructionKind::Cmd(ShellOrExec::Shell(_))
    ));
    // 50,000 heredoc markers on one line and no bodies.
    let markers: String = (0..50_000).map(|i| format!(" <<E{i}")).collect();
    let e = parse(&format!("FROM scratch\nRUN{markers}\n"), "Dockerfile").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    // 200,000 continuation lines make one instruction.
    let df = parse_ok(&format!("FROM scratch\nRUN a{}\n", " \\\n a".repeat(200_000)));
    assert_eq!(df.stages[0].instructions.len(), 1);
}

#[test]
fn thousands_of_chained_stages_walk_without_recursion_and_globals_are_worked_out_once() {
    // Each stage stands on the one before: the stage graph used to recurse
    // once per stage, and worked the global ARGs out again for every one.
    let mut text = doubling_chain(20);
    text.push_str("FROM scratch AS s0\n");
    for i in 1..5000 {
        text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    let df = parse_ok(&text);
    let last = df.target_stage(None).unwrap();
    let args = BTreeMap::new();
    assert_eq!(df.needed_for_with_args(last, &args).len(), 5000);
    assert!(df.dependency_cycle(&args).is_empty());
    assert!(check(&df).len() < 10_000);
}
