//! Tests of the Dockerfile front end: parser, expansion, stage graph, lint.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ast::*;
use super::expand::{expand_from, expand_raw, map_lookup, undefined_vars};
use super::lint::check_with_base_env;
use super::parser::{parse_go_duration, parse_mount};
use super::*;

const COURSE: &str = include_str!("testdata/course.Dockerfile");
const HEALTH: &str = include_str!("testdata/healthcheck.Dockerfile");
const ENTRY: &str = include_str!("testdata/entrypoint.Dockerfile");
const HEREDOCS: &str = include_str!("testdata/heredocs.Dockerfile");
const WINDOWS: &str = include_str!("testdata/windows.Dockerfile");

fn p(src: &str) -> Dockerfile {
    match parse(src, "Dockerfile") {
        Ok(df) => df,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn perr(src: &str) -> ParseError {
    match parse(src, "Dockerfile") {
        Ok(df) => panic!("expected an error, got {df:?}"),
        Err(e) => e,
    }
}

fn ins(src: &str) -> Instruction {
    let df = p(src);
    df.stages[0].instructions[0].clone()
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ex(word: &str, pairs: &[(&str, &str)]) -> Result<String, ExpandError> {
    let m = vars(pairs);
    let look = map_lookup(&m);
    expand(word, &look, '\\')
}

fn rules(diags: &[Diagnostic]) -> Vec<&'static str> {
    diags.iter().map(|d| d.rule).collect()
}

// ---------------------------------------------------------------- fixtures

#[test]
fn course_file_parses_into_four_stages() {
    let df = p(COURSE);
    let names: Vec<_> = df.stages.iter().map(|s| s.name.clone().unwrap()).collect();
    assert_eq!(names, ["base", "download", "production", "shell"]);
    assert_eq!(df.stages[0].base, "python:alpine");
    assert_eq!(df.stages[1].base, "base");
    assert_eq!(df.stages[2].from_line, 8);
    let run = &df.stages[1].instructions[0];
    assert_eq!((run.line, run.end_line, run.column), (4, 6, 5));
    assert_eq!(run.keyword, "RUN");
    match &run.kind {
        InstructionKind::Run {
            cmd: ShellOrExec::Shell(s),
            heredocs,
            mounts,
            ..
        } => {
            assert_eq!(s, "apk add --no-cache         curl     && true");
            assert!(heredocs.is_empty() && mounts.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(run.original.starts_with("RUN apk add"));
    let curl = &df.stages[1].instructions[1];
    assert_eq!(curl.line, 7);
    match &curl.kind {
        InstructionKind::Run {
            cmd: ShellOrExec::Shell(s),
            ..
        } => {
            assert!(s.contains("\"Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:59.0)"), "{s}")
        }
        other => panic!("{other:?}"),
    }
    match &df.stages[2].instructions[0].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.from.as_deref(), Some("download"));
            assert_eq!(c.sources, ["/app/"]);
            assert_eq!(c.dest, "/app/");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        df.stages[2].instructions[1].kind,
        InstructionKind::Cmd(ShellOrExec::Exec(vec![
            "python3".into(),
            "-m".into(),
            "http.server".into()
        ]))
    );
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
}

#[test]
fn course_file_graph_and_lint() {
    let df = p(COURSE);
    assert_eq!(df.dependencies(2), [0, 1]);
    assert_eq!(df.needed_for(2), [0, 1, 2]);
    assert_eq!(df.needed_for(3), [0, 1, 3]);
    assert_eq!(df.needed_for(0), [0]);
    assert_eq!(df.target_stage(None), Some(3));
    assert_eq!(df.target_stage(Some("Production")), Some(2));
    let d = check(&df);
    // `FROM … as …`: FROM upper, as lower, on all four FROM lines.
    assert_eq!(rules(&d), ["FromAsCasing"; 4]);
    assert_eq!(d[1].line, 3);
}

#[test]
fn healthcheck_fixture() {
    let df = p(HEALTH);
    let hc = &df.stages[0].instructions[1];
    assert_eq!(hc.line, 3);
    match &hc.kind {
        InstructionKind::Healthcheck(Healthcheck::Cmd {
            cmd,
            interval,
            timeout,
            start_period,
            retries,
            ..
        }) => {
            assert_eq!(
                *cmd,
                ShellOrExec::Shell("curl --fail http://localhost:8000/ || exit 1".into())
            );
            assert_eq!(*interval, Some(Duration::from_secs(5)));
            assert_eq!(*timeout, Some(Duration::from_secs(3)));
            assert_eq!(*start_period, None);
            assert_eq!(*retries, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(check(&df).is_empty());
}

#[test]
fn entrypoint_and_cmd_fixture() {
    let df = p(ENTRY);
    let i = &df.stages[0].instructions;
    assert_eq!(
        i[0].kind,
        InstructionKind::Entrypoint(ShellOrExec::Exec(vec!["ls".into()]))
    );
    assert_eq!(
        i[1].kind,
        InstructionKind::Cmd(ShellOrExec::Exec(vec!["--help".into()]))
    );
    assert_eq!(i[1].original, "CMD [\"--help\"]");
}

#[test]
fn heredoc_fixture() {
    let df = p(HEREDOCS);
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    let i = &df.stages[0].instructions;
    assert_eq!(i.len(), 6);
    // RUN <<EOF alone: a script.
    match &i[0].kind {
        InstructionKind::Run { cmd, heredocs, .. } => {
            assert_eq!(*cmd, ShellOrExec::Shell("<<EOF".into()));
            assert_eq!(heredocs[0].content, "apk add --no-cache gcc\necho built > /done\n");
            assert!(heredocs[0].expand);
            assert_eq!(
                run_heredoc_plan(cmd, heredocs),
                Some(RunHeredocPlan::Script(
                    "apk add --no-cache gcc\necho built > /done\n".into()
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((i[0].line, i[0].end_line), (3, 6));
    // RUN python3 <<'PY': body on stdin via the shell, no expansion.
    match &i[1].kind {
        InstructionKind::Run { cmd, heredocs, .. } => {
            assert_eq!(heredocs[0].name, "PY");
            assert!(!heredocs[0].expand);
            assert_eq!(
                run_heredoc_plan(cmd, heredocs),
                Some(RunHeredocPlan::Shell(
                    "python3 <<'PY'\nprint(\"$HOME stays literal for the shell\")\nPY".into()
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    // Two heredocs on one RUN line.
    match &i[2].kind {
        InstructionKind::Run { heredocs, .. } => {
            let got: Vec<_> = heredocs.iter().map(|h| (h.name.as_str(), h.content.as_str())).collect();
            assert_eq!(got, [("A", "alpha\n"), ("B", "beta\n")]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((i[2].line, i[2].end_line), (10, 14));
    // COPY <<-EOT: tabs stripped, terminator may be indented with tabs.
    match &i[3].kind {
        InstructionKind::Copy(c) => {
            assert!(c.sources.is_empty());
            assert_eq!(c.dest, "/etc/motd");
            assert_eq!(c.heredocs[0].content, "hello ${USER}\n");
            assert!(c.heredocs[0].chomp_tabs);
        }
        other => panic!("{other:?}"),
    }
    match &i[4].kind {
        InstructionKind::Copy(c) => {
            let names: Vec<_> = c.heredocs.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["X", "Y"]);
            assert_eq!(c.heredocs[1].content, "y\n");
            assert_eq!(c.dest, "/dest/");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i[5].line, 23);
    // COPY heredoc bodies are expanded when the delimiter is unquoted.
    let m = vars(&[("USER", "bob")]);
    let e = expand_instruction(&i[3], &map_lookup(&m), '\\').unwrap();
    match e.kind {
        InstructionKind::Copy(c) => assert_eq!(c.heredocs[0].content, "hello bob\n"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn escape_directive_backtick() {
    let df = p(WINDOWS);
    assert_eq!(df.directives.escape, '`');
    let i = &df.stages[0].instructions;
    match &i[0].kind {
        InstructionKind::Copy(c) => assert_eq!(c.dest, "c:\\"),
        other => panic!("{other:?}"),
    }
    match &i[1].kind {
        InstructionKind::Run { cmd, .. } => {
            assert_eq!(*cmd, ShellOrExec::Shell("dir c:\\     && echo done".into()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((i[1].line, i[1].end_line), (4, 5));
}

// ---------------------------------------------------------------- directives and lines

#[test]
fn directives_only_at_the_top() {
    let df = p("# check=skip=JSONArgsRecommended\n# Syntax = foo/bar:1\nFROM a\n");
    assert_eq!(df.directives.syntax.as_deref(), Some("foo/bar:1"));
    assert_eq!(df.directives.check_skips(), ["JSONArgsRecommended"]);
    // After an ordinary comment, `# escape=` is just a comment.
    let df = p("# hello\n# escape=`\nFROM a\nRUN a `\n");
    assert_eq!(df.directives.escape, '\\');
    // After an empty line too.
    let df = p("\n# escape=`\nFROM a\n");
    assert_eq!(df.directives.escape, '\\');
    // Unknown directive ends the directives.
    let df = p("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(df.directives.escape, '\\');
}

#[test]
fn directive_errors() {
    let e = perr("# escape=x\nFROM a\n");
    assert_eq!((e.line, e.column), (1, 10));
    assert!(e.message.contains("invalid escape token"), "{e}");
    let e = perr("# syntax=a\n# syntax=b\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("only one syntax"), "{e}");
}

#[test]
fn continuation_skips_comments_and_empty_lines() {
    let df = p("FROM a\nRUN echo a \\\n# inner comment\n   \n  b\n");
    let i = &df.stages[0].instructions[0];
    assert_eq!(i.kind.name(), "RUN");
    match &i.kind {
        InstructionKind::Run { cmd, .. } => {
            assert_eq!(*cmd, ShellOrExec::Shell("echo a   b".into()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((i.line, i.end_line), (2, 5));
    assert_eq!(rules(&df.warnings), ["NoEmptyContinuation"]);
    assert_eq!(df.warnings[0].line, 4);
}

#[test]
fn comments_only_at_line_start_and_case_insensitive_keywords() {
    let df = p("from alpine\n  # indented comment\nrun echo hi # not a comment\nCoPy a b\n");
    let i = &df.stages[0].instructions;
    assert_eq!(i.len(), 2);
    match &i[0].kind {
        InstructionKind::Run { cmd, .. } => {
            assert_eq!(*cmd, ShellOrExec::Shell("echo hi # not a comment".into()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i[0].keyword, "run");
    assert_eq!(i[1].name(), "COPY");
}

#[test]
fn crlf_and_bom_are_handled() {
    let df = p("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n");
    match &df.stages[0].instructions[0].kind {
        InstructionKind::Run { cmd, .. } => assert_eq!(*cmd, ShellOrExec::Shell("x   y".into())),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- forms

#[test]
fn exec_form_requires_valid_json() {
    let i = ins("FROM a\nCMD [\"a\", 'b']\n");
    assert_eq!(i.kind, InstructionKind::Cmd(ShellOrExec::Shell("[\"a\", 'b']".into())));
    let df = p("FROM a\nCMD [\"a\", 'b']\nENTRYPOINT echo hi\n");
    assert_eq!(rules(&df.warnings), ["JSONArgsRecommended", "JSONArgsRecommended"]);
    assert_eq!(df.warnings[1].line, 3);
    assert!(df.warnings[1].message.contains("ENTRYPOINT"));
    let e = perr("FROM a\nCMD [1, 2]\n");
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("strings only"), "{e}");
    let i = ins("FROM a\nRUN [\"/bin/sh\", \"-c\", \"echo \\\"q\\\"\"]\n");
    match i.kind {
        InstructionKind::Run { cmd, .. } => assert_eq!(
            cmd,
            ShellOrExec::Exec(vec!["/bin/sh".into(), "-c".into(), "echo \"q\"".into()])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shell_needs_json() {
    assert_eq!(
        ins("FROM a\nSHELL [\"bash\", \"-c\"]\n").kind,
        InstructionKind::Shell(vec!["bash".into(), "-c".into()])
    );
    let e = perr("FROM a\nSHELL bash -c\n");
    assert_eq!((e.line, e.column), (2, 7));
}

#[test]
fn env_and_label_forms() {
    let df = p("FROM a\nENV a b c\nENV a=1 b=\"x y\" c=z\\ w\nLABEL \"com.x\"=\"v 1\" other=2\n");
    let i = &df.stages[0].instructions;
    assert_eq!(i[0].kind, InstructionKind::Env(vec![("a".into(), "b c".into())]));
    assert_eq!(
        i[1].kind,
        InstructionKind::Env(vec![
            ("a".into(), "1".into()),
            ("b".into(), "\"x y\"".into()),
            ("c".into(), "z\\ w".into())
        ])
    );
    assert_eq!(rules(&df.warnings), ["LegacyKeyValueFormat"]);
    // Expansion removes quotes and escapes as Docker does.
    let e = expand_instruction(&i[1], &|_| None, '\\').unwrap();
    assert_eq!(
        e.kind,
        InstructionKind::Env(vec![
            ("a".into(), "1".into()),
            ("b".into(), "x y".into()),
            ("c".into(), "z w".into())
        ])
    );
    let e = expand_instruction(&i[2], &|_| None, '\\').unwrap();
    assert_eq!(
        e.kind,
        InstructionKind::Label(vec![("com.x".into(), "v 1".into()), ("other".into(), "2".into())])
    );
}

#[test]
fn env_errors() {
    let e = perr("FROM a\nENV onlykey\n");
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("ENV must have two arguments"), "{e}");
    let e = perr("FROM a\nENV a=1 b\n");
    assert_eq!((e.line, e.column), (2, 9));
    assert!(e.message.contains("can't find = in \"b\""), "{e}");
}

#[test]
fn simple_instructions() {
    let df = p("FROM a\nEXPOSE 80/tcp 443\nVOLUME [\"/data\", \"/x y\"]\nVOLUME /a /b\nUSER app:app\nWORKDIR /w\nSTOPSIGNAL SIGTERM\nARG A B=2 C=\"x y\"\nMAINTAINER me <me@x>\n");
    let k: Vec<_> = df.stages[0].instructions.iter().map(|i| i.kind.clone()).collect();
    assert_eq!(k[0], InstructionKind::Expose(vec!["80/tcp".into(), "443".into()]));
    assert_eq!(k[1], InstructionKind::Volume(vec!["/data".into(), "/x y".into()]));
    assert_eq!(k[2], InstructionKind::Volume(vec!["/a".into(), "/b".into()]));
    assert_eq!(k[3], InstructionKind::User("app:app".into()));
    assert_eq!(k[4], InstructionKind::Workdir("/w".into()));
    assert_eq!(k[5], InstructionKind::Stopsignal("SIGTERM".into()));
    assert_eq!(
        k[6],
        InstructionKind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None,
                line: 8,
                column: 5
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into()),
                line: 8,
                column: 7
            },
            ArgDecl {
                name: "C".into(),
                default: Some("\"x y\"".into()),
                line: 8,
                column: 11
            },
        ])
    );
    assert_eq!(k[7], InstructionKind::Maintainer("me <me@x>".into()));
}

// ---------------------------------------------------------------- flags

#[test]
fn copy_and_add_flags() {
    let i = ins(
        "FROM a\nCOPY --from=build --chown=1:2 --chmod=0755 --link --exclude=*.md --exclude=.git --parents a b /d/\n",
    );
    match i.kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.chown.as_deref(), Some("1:2"));
            assert_eq!(c.chmod.as_deref(), Some("0755"));
            assert!(c.link && c.parents && !c.keep_git_dir);
            assert_eq!(c.exclude, ["*.md", ".git"]);
            assert_eq!(c.sources, ["a", "b"]);
            assert_eq!(c.dest, "/d/");
        }
        other => panic!("{other:?}"),
    }
    let i = ins("FROM a\nADD --keep-git-dir=true --checksum=sha256:abc --link=false https://x/y.tgz /y\n");
    match i.kind {
        InstructionKind::Add(c) => {
            assert!(c.keep_git_dir && !c.link);
            assert_eq!(c.checksum.as_deref(), Some("sha256:abc"));
        }
        other => panic!("{other:?}"),
    }
    let i = ins("FROM a\nCOPY [\"a b\", \"/c d/\"]\n");
    match i.kind {
        InstructionKind::Copy(c) => {
            assert!(c.json);
            assert_eq!(c.sources, ["a b"]);
            assert_eq!(c.dest, "/c d/");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn flag_errors_point_at_the_flag() {
    let e = perr("FROM a\nCOPY --form=x a b\n");
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.message, "unknown flag: --form");
    assert!(e.hint.as_deref().unwrap().contains("did you mean --from?"), "{e}");
    let e = perr("FROM a\nADD --from=x a b\n");
    assert_eq!(e.message, "unknown flag: --from");
    let e = perr("FROM a\nCOPY --chown a b\n");
    assert!(e.message.contains("missing a value on flag: --chown"), "{e}");
    let e = perr("FROM a\nCOPY --link=maybe a b\n");
    assert!(e.message.contains("expecting boolean"), "{e}");
    let e = perr("FROM a\nWORKDIR --x /a\n");
    assert_eq!((e.line, e.column), (2, 9));
    assert_eq!(e.hint.as_deref(), Some("WORKDIR takes no flags"));
    let e = perr("FROM a\nCOPY --from=a --from=b x y\n");
    assert!(e.message.contains("duplicate flag"), "{e}");
    // A flag on a continuation line is reported on that line.
    let e = perr("FROM a\nCOPY --link \\\n   --nope a b\n");
    assert_eq!((e.line, e.column), (3, 4));
}

#[test]
fn run_flags_and_mounts() {
    let i = ins("FROM a\nRUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip --mount=type=secret,id=tok,required --mount=target=/src,ro --network=none --security=insecure pip install\n");
    match i.kind {
        InstructionKind::Run {
            cmd,
            mounts,
            network,
            security,
            ..
        } => {
            assert_eq!(cmd, ShellOrExec::Shell("pip install".into()));
            assert_eq!(network.as_deref(), Some("none"));
            assert_eq!(security.as_deref(), Some("insecure"));
            assert_eq!(mounts.len(), 3);
            assert_eq!(mounts[0].kind, MountKind::Cache);
            assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
            assert_eq!(mounts[0].options["sharing"], "locked");
            assert_eq!(mounts[0].options["id"], "pip");
            assert_eq!(mounts[1].kind, MountKind::Secret);
            assert_eq!(mounts[1].target, None);
            assert_eq!(mounts[1].options["required"], "true");
            assert_eq!(mounts[2].kind, MountKind::Bind);
            assert_eq!(mounts[2].options["readonly"], "true");
        }
        other => panic!("{other:?}"),
    }
    let m = parse_mount("type=bind,src=ctx,dst=/x,rw,from=build").unwrap();
    assert_eq!(m.target.as_deref(), Some("/x"));
    assert_eq!(m.options["source"], "ctx");
    assert_eq!(m.options["readonly"], "false");
    assert_eq!(m.options["from"], "build");
    assert!(parse_mount("type=cache").unwrap_err().contains("target"));
    assert!(parse_mount("type=nfs,target=/x")
        .unwrap_err()
        .contains("unsupported mount type"));
    let e = perr("FROM a\nRUN --mount=type=cache,target=/x,colour=red true\n");
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("unexpected key 'colour'"), "{e}");
    let e = perr("FROM a\nRUN --network=bridge true\n");
    assert!(e.message.contains("unsupported network mode"), "{e}");
    let e = perr("FROM a\nRUN --security=x true\n");
    assert!(e.message.contains("unsupported security mode"), "{e}");
}

#[test]
fn healthcheck_variants_and_errors() {
    assert_eq!(
        ins("FROM a\nHEALTHCHECK NONE\n").kind,
        InstructionKind::Healthcheck(Healthcheck::None)
    );
    match ins(
        "FROM a\nHEALTHCHECK --interval=1m30s --start-period=0 --start-interval=500ms --retries=4 CMD [\"true\"]\n",
    )
    .kind
    {
        InstructionKind::Healthcheck(Healthcheck::Cmd {
            cmd,
            interval,
            start_period,
            start_interval,
            retries,
            ..
        }) => {
            assert_eq!(cmd, ShellOrExec::Exec(vec!["true".into()]));
            assert_eq!(interval, Some(Duration::from_secs(90)));
            assert_eq!(start_period, None);
            assert_eq!(start_interval, Some(Duration::from_millis(500)));
            assert_eq!(retries, Some(4));
        }
        other => panic!("{other:?}"),
    }
    let e = perr("FROM a\nHEALTHCHECK --interval=5 CMD true\n");
    assert_eq!((e.line, e.column), (2, 13));
    assert!(e.message.contains("invalid duration for --interval"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK --timeout=5x CMD true\n");
    assert!(e.message.contains("unknown unit"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK --timeout=10us CMD true\n");
    assert!(e.message.contains("less than 1ms"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK --retries=-1 CMD true\n");
    assert!(e.message.contains("negative"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK NONE true\n");
    assert!(e.message.contains("takes no arguments"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK curl x\n");
    assert_eq!((e.line, e.column), (2, 13));
    assert!(e.message.contains("try CMD"), "{e}");
    let e = perr("FROM a\nHEALTHCHECK CMD\n");
    assert!(e.message.contains("missing command"), "{e}");
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
    assert_eq!(parse_go_duration("2m3s"), Ok(Duration::from_secs(123)));
    assert_eq!(parse_go_duration("10µs"), Ok(Duration::from_micros(10)));
    assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    assert!(parse_go_duration("-1s").is_err());
    assert!(parse_go_duration("s").is_err());
    assert!(parse_go_duration("").is_err());
}

// ---------------------------------------------------------------- ONBUILD and FROM

#[test]
fn onbuild() {
    let i = ins("FROM a\nONBUILD COPY --chown=1 . /app\n");
    match i.kind {
        InstructionKind::Onbuild(inner) => {
            assert_eq!(inner.name(), "COPY");
            assert_eq!(inner.column, 9);
            assert_eq!(inner.original, "COPY --chown=1 . /app");
        }
        other => panic!("{other:?}"),
    }
    let e = perr("FROM a\nONBUILD ONBUILD RUN x\n");
    assert_eq!((e.line, e.column), (2, 9));
    assert!(e.message.contains("ONBUILD ONBUILD"), "{e}");
    for kw in ["FROM b", "MAINTAINER me"] {
        let e = perr(&format!("FROM a\nONBUILD {kw}\n"));
        assert!(e.message.contains("isn't allowed as an ONBUILD trigger"), "{e}");
    }
}

#[test]
fn from_forms() {
    let df = p("ARG V=3\nFROM --platform=$BUILDPLATFORM golang:${V} AS Build\nFROM scratch\n");
    assert_eq!(
        df.global_args,
        [ArgDecl {
            name: "V".into(),
            default: Some("3".into()),
            line: 1,
            column: 5
        }]
    );
    let s = &df.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s.base, "golang:${V}");
    assert_eq!((s.from_line, df.stages[1].index), (2, 1));
    let g = df.global_arg_values(&BTreeMap::new());
    let (base, plat) = expand_from(s, &map_lookup(&g), '\\').unwrap();
    assert_eq!((base.as_str(), plat.as_deref()), ("golang:3", Some("")));
    let e = perr("FROM a b\n");
    assert!(e.message.contains("one or three arguments"), "{e}");
    let e = perr("FROM a AS 1st\n");
    assert_eq!((e.line, e.column), (1, 11));
    assert!(e.message.contains("invalid name for build stage"), "{e}");
    let e = perr("FROM --platform linux/amd64 a\n");
    assert!(e.message.contains("missing a value"), "{e}");
}

// ---------------------------------------------------------------- errors

#[test]
fn unknown_instruction_suggests() {
    let e = perr("FROM a\n  RUNN make\n");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.message, "unknown instruction \"RUNN\"");
    assert_eq!(e.hint.as_deref(), Some("did you mean RUN?"));
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:3: unknown instruction \"RUNN\"\n  hint: did you mean RUN?"
    );
    let e = perr("FROM a\ncopyy a b\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean COPY?"));
    let e = perr("FROM a\nXYZZYPLUGH a\n");
    assert_eq!(e.hint, None);
}

#[test]
fn missing_arguments() {
    let e = perr("FROM a\nCOPY onlyone\n");
    assert_eq!((e.line, e.column), (2, 6));
    assert!(
        e.message
            .contains("COPY requires at least two arguments, but only one was provided"),
        "{e}"
    );
    let e = perr("FROM a\nRUN\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("RUN requires at least one argument"), "{e}");
    let e = perr("FROM a\nWORKDIR\n");
    assert!(e.message.contains("WORKDIR requires exactly one argument"), "{e}");
    let e = perr("FROM\n");
    assert_eq!((e.line, e.column), (1, 5));
}

#[test]
fn instruction_before_from() {
    let e = perr("ARG X\n# c\nRUN echo\nFROM a\n");
    assert_eq!((e.line, e.column), (3, 1));
    assert!(e.message.contains("RUN instruction before the first FROM"), "{e}");
    assert!(e.hint.is_some());
}

#[test]
fn empty_file() {
    for src in ["", "\n\n", "# just a comment\n", "# syntax=x\n"] {
        let e = perr(src);
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.message, "the Dockerfile has no instructions");
    }
    let e = perr("ARG A\n");
    assert!(e.message.contains("no FROM"), "{e}");
}

#[test]
fn unterminated_heredoc() {
    let e = perr("FROM a\nRUN cat <<EOF\nhello\n");
    assert_eq!((e.line, e.column), (2, 9));
    assert!(e.message.contains("unterminated heredoc \"EOF\""), "{e}");
    let e = perr("FROM a\nCOPY <<A /x\n");
    assert_eq!((e.line, e.column), (2, 6));
    let e = perr("FROM a\nCOPY x <<A\nA\n");
    assert!(e.message.contains("destination"), "{e}");
}

#[test]
fn heredoc_markers() {
    use super::lexer::heredoc_marker;
    assert_eq!(heredoc_marker("<<EOF"), Some(("EOF".into(), true, false)));
    assert_eq!(heredoc_marker("<<-EOF"), Some(("EOF".into(), true, true)));
    assert_eq!(heredoc_marker("<<\"EOF\""), Some(("EOF".into(), false, false)));
    assert_eq!(heredoc_marker("<<'EOF'"), Some(("EOF".into(), false, false)));
    assert_eq!(heredoc_marker("3<<X"), Some(("X".into(), true, false)));
    assert_eq!(heredoc_marker("<<"), None);
    assert_eq!(heredoc_marker("a<<EOF"), None);
    assert_eq!(heredoc_marker("<<<word"), None);
}

#[test]
fn heredoc_not_in_exec_form_or_other_instructions() {
    let df = p("FROM a\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nCMD cat <<EOF\n");
    match &df.stages[0].instructions[0].kind {
        InstructionKind::Run { heredocs, .. } => assert!(heredocs.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(df.stages[0].instructions.len(), 2);
}

// ---------------------------------------------------------------- expansion

#[test]
fn expansion_basics() {
    let v = [("A", "1"), ("E", ""), ("P", "/usr/local/lib.tar.gz")];
    assert_eq!(ex("$A-${A}_$Z.", &v).unwrap(), "1-1_.");
    assert_eq!(ex("${Z:-d} ${E:-d} ${E-d} ${Z-d}", &v).unwrap(), "d d  d");
    assert_eq!(ex("${A:+x} ${E:+x} ${E+x} ${Z+x}|", &v).unwrap(), "x  x |");
    assert_eq!(ex("${Z:-${A}b}", &v).unwrap(), "1b");
    assert_eq!(
        ex("${P#*/} ${P##*/} ${P%.*} ${P%%.*}", &v).unwrap(),
        "usr/local/lib.tar.gz lib.tar.gz /usr/local/lib.tar /usr/local/lib"
    );
    assert_eq!(
        ex("${P/l/L} ${P//l/L}", &v).unwrap(),
        "/usr/Local/lib.tar.gz /usr/LocaL/Lib.tar.gz"
    );
    assert_eq!(ex("\\$A \\${A} a\\ b", &v).unwrap(), "$A ${A} a b");
    assert_eq!(
        ex("'$A \"x\"' \"$A 'y' \\$A \\\"\"", &v).unwrap(),
        "$A \"x\" 1 'y' $A \""
    );
    assert_eq!(ex("$ $1 a$", &v).unwrap(), "$  a$");
    let e = ex("${Z:?must be set}", &v).unwrap_err();
    assert_eq!(e.message, "Z: must be set");
    assert!(ex("${A:?x}", &v).is_ok());
    assert!(ex("${E?x}", &v).is_ok());
    assert!(ex("'open", &v).unwrap_err().message.contains("single-quote"));
    assert!(ex("\"open", &v).unwrap_err().message.contains("double-quote"));
    assert!(ex("${A", &v).is_err());
    assert!(ex("${}", &v).is_err());
    assert!(ex("${A:=x}", &v).unwrap_err().message.contains("unsupported modifier"));
}

#[test]
fn expansion_words_and_escape_char() {
    let m = vars(&[("PORTS", "80 443"), ("ONE", "x")]);
    let look = map_lookup(&m);
    assert_eq!(
        expand_words("$PORTS \"8 9\" ${ONE}y ''", &look, '\\').unwrap(),
        ["80", "443", "8 9", "xy", ""]
    );
    assert_eq!(expand("`$ONE c:\\dir", &look, '`').unwrap(), "$ONE c:\\dir");
    assert_eq!(
        expand_raw("echo \"$ONE\" '\\$ONE'", &look, '\\').unwrap(),
        "echo \"x\" '\\$ONE'"
    );
    assert_eq!(
        undefined_vars("$A ${B:-$C} ${ONE:+$D} ${E-x}", &look, '\\'),
        ["A", "C", "D"]
    );
}

#[test]
fn expand_instruction_only_touches_expandable_fields() {
    let df = p("FROM a\nRUN echo $HOME\nWORKDIR $HOME/app\nCOPY --chown=$U:$U --from=$S $SRC /d/$N\nEXPOSE $PORTS\nRUN --mount=type=cache,target=$HOME/.cache,id=$S true\nUSER \"$U\"\n");
    let m = vars(&[
        ("HOME", "/root"),
        ("U", "1000"),
        ("S", "build"),
        ("SRC", "a.txt"),
        ("N", "x"),
        ("PORTS", "80 443"),
    ]);
    let look = map_lookup(&m);
    let i = &df.stages[0].instructions;
    let e: Vec<_> = i
        .iter()
        .map(|x| expand_instruction(x, &look, '\\').unwrap().kind)
        .collect();
    assert_eq!(e[0], i[0].kind, "RUN is left to the shell");
    assert!(!expands_in(&i[0].kind) && expands_in(&i[1].kind));
    assert_eq!(e[1], InstructionKind::Workdir("/root/app".into()));
    match &e[2] {
        InstructionKind::Copy(c) => {
            assert_eq!(c.chown.as_deref(), Some("1000:1000"));
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.sources, ["a.txt"]);
            assert_eq!(c.dest, "/d/x");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e[3], InstructionKind::Expose(vec!["80".into(), "443".into()]));
    match &e[4] {
        InstructionKind::Run { mounts, cmd, .. } => {
            assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
            assert_eq!(mounts[0].options["id"], "build");
            assert_eq!(*cmd, ShellOrExec::Shell("true".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e[5], InstructionKind::User("1000".into()));
    let bad = p("FROM a\nWORKDIR ${X:?need X}\n");
    let err = expand_instruction(&bad.stages[0].instructions[0], &|_| None, '\\').unwrap_err();
    assert_eq!((err.line, err.column), (2, 1));
    assert_eq!(err.with_file("Dockerfile").to_string(), "Dockerfile:2:1: X: need X");
}

// ---------------------------------------------------------------- graph

#[test]
fn stage_lookup_and_dependencies() {
    let src = "ARG BASE=builder\nFROM alpine AS builder\nFROM busybox AS other\nFROM ${BASE} AS final\nCOPY --from=1 /a /a\nRUN --mount=type=bind,from=builder,target=/x true\nFROM final\nFROM nosuch\nCOPY --from=nginx:latest /etc /etc\n";
    let df = p(src);
    assert_eq!(df.stage_by_name_or_index("OTHER").map(|s| s.index), Some(1));
    assert_eq!(df.stage_by_name_or_index("0").map(|s| s.index), Some(0));
    assert!(df.stage_by_name_or_index("9").is_none());
    assert!(df.stage_by_name_or_index("nosuch").is_none());
    assert_eq!(df.base_stage(2, &BTreeMap::new()), Some(0));
    assert_eq!(df.dependencies(2), [0, 1]);
    assert_eq!(df.dependencies(3), [2]);
    assert!(df.dependencies(4).is_empty(), "image names are not stages");
    assert_eq!(df.needed_for(3), [0, 1, 2, 3]);
    assert_eq!(df.needed_for(4), [4]);
    // A build arg changes FROM ${BASE}.
    let args = vars(&[("BASE", "other")]);
    assert_eq!(df.base_stage(2, &args), Some(1));
    assert_eq!(df.needed_for_with_args(2, &args), [0, 1, 2]);
    let args = vars(&[("BASE", "debian")]);
    assert_eq!(df.dependencies_with_args(2, &args), [0, 1]);
    assert!(df.dependency_cycle(&BTreeMap::new()).is_empty());
}

#[test]
fn copy_from_uses_stage_args_and_cycles_terminate() {
    let df = p("FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nARG SRC=one\nCOPY --from=$SRC /y /y\n");
    assert_eq!(df.dependencies(1), [0]);
    assert_eq!(df.dependencies(0), [1]);
    assert_eq!(df.needed_for(1), [0, 1]);
    assert_eq!(df.dependency_cycle(&BTreeMap::new()), [0, 1]);
}

// ---------------------------------------------------------------- lint

#[test]
fn lint_stage_names() {
    let df = p("FROM a AS Dup\nFROM b AS dup\nFROM c as scratch\n");
    let d = check(&df);
    assert_eq!(
        rules(&d),
        [
            "StageNameCasing",
            "DuplicateStageName",
            "FromAsCasing",
            "ReservedStageName"
        ]
    );
    assert_eq!(d[1].line, 2);
    assert!(d[0].message.contains("'Dup'"));
}

#[test]
fn lint_from_args() {
    let df = p("ARG VERSION=1\nFROM alpine:${VERSON} AS a\nFROM --platform=$TARGETPLATFORM alpine:$VERSION\nFROM --platform=$BUILDPLATFORM b\n");
    let d = check(&df);
    assert_eq!(rules(&d), ["UndefinedArgInFrom", "RedundantTargetPlatform"]);
    assert_eq!(d[0].line, 2);
    assert!(
        d[0].message.contains("'VERSON'") && d[0].message.contains("did you mean VERSION?"),
        "{}",
        d[0].message
    );
}

#[test]
fn lint_undefined_var() {
    let src = "ARG G=1\nFROM alpine AS base\nENV HOMEDIR=/home/app\nARG USERNAME\nWORKDIR $HOMEDIR\nUSER $USERNAME\nCOPY $G /x\nCOPY --chown=$TARGETARCH a /b\nENV A=1 B=$A\nRUN echo $NOT_CHECKED\nLABEL x=$HOMEDR\nFROM base\nWORKDIR $HOMEDIR/$PATH\nWORKDIR $GOPATH\n";
    let df = p(src);
    let d: Vec<_> = check(&df).into_iter().filter(|d| d.rule == "UndefinedVar").collect();
    let got: Vec<_> = d.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (7, "Usage of undefined variable '$G'"),
            (9, "Usage of undefined variable '$A'"),
            (11, "Usage of undefined variable '$HOMEDR' (did you mean $HOMEDIR?)"),
            (14, "Usage of undefined variable '$GOPATH' (did you mean $PATH?)"),
        ]
    );
    assert_eq!(d[0].column, 6);
    // With the base image's ENV known, $GOPATH is defined.
    let d = check_with_base_env(&df, &|img| {
        (img == "alpine").then(|| vec!["PATH".into(), "GOPATH".into()])
    });
    assert!(!d.iter().any(|d| d.message.contains("GOPATH")));
}

#[test]
fn lint_casing_maintainer_multiple_workdir() {
    let src = "FROM a\nrun x\nRUN y\nMAINTAINER me\nCMD a\nCMD [\"b\"]\nENTRYPOINT [\"e\"]\nWORKDIR rel\nWORKDIR /abs\nWORKDIR rel2\n";
    let d = check(&p(src));
    assert_eq!(
        rules(&d),
        [
            "ConsistentInstructionCasing",
            "MaintainerDeprecated",
            "JSONArgsRecommended",
            "MultipleInstructionsDisallowed",
            "WorkdirRelativePath"
        ]
    );
    let lines: Vec<_> = d.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 4, 5, 5, 8]);
    assert!(d[0].message.contains("'run'") && d[0].message.contains("uppercase"));
    // Majority lowercase flags the uppercase ones.
    let d = check(&p("from a\nrun x\nRUN y\n"));
    assert_eq!(rules(&d), ["ConsistentInstructionCasing"]);
    assert_eq!(d[0].line, 3);
}

#[test]
fn lint_copy_from_index() {
    let df = p("FROM a\nFROM b\nCOPY --from=0 /a /a\nCOPY --from=1 /b /b\nCOPY --from=5 /c /c\nCOPY --from=nginx /d /d\nRUN --mount=from=3,target=/x true\n");
    let d: Vec<_> = check(&df)
        .into_iter()
        .filter(|d| d.rule == "CopyFromInvalidStage")
        .collect();
    let lines: Vec<_> = d.iter().map(|d| d.line).collect();
    assert_eq!(lines, [4, 5, 7]);
    assert!(d.iter().all(|d| d.severity == Severity::Error));
    assert!(d[0].message.contains("current stage"));
}

#[test]
fn lint_check_directive() {
    let src =
        "# check=skip=JSONArgsRecommended,MaintainerDeprecated;error=true\nFROM a\nMAINTAINER me\nCMD x\nFROM b as c\n";
    let d = check(&p(src));
    assert_eq!(rules(&d), ["FromAsCasing"]);
    assert_eq!(d[0].severity, Severity::Error);
    let d = check(&p("# check=skip=all\nFROM a\nMAINTAINER me\n"));
    assert!(d.is_empty());
}

#[test]
fn diagnostics_display() {
    let d = check(&p("FROM a\nMAINTAINER me\n"));
    assert_eq!(
        d[0].to_string(),
        "2:1: warning: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"
    );
}
