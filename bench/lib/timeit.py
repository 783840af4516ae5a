#!/usr/bin/python3
"""Interleaved side-by-side timing for bench/ (stdlib only).

Usage (options after a --case apply to that case):

  timeit.py --name NAME --title TITLE [--reps N] [--warmup W]
            [--target TEXT] [--note TEXT]... [--metric time|stdout]
            [--unit KiB] [--vs-max LABEL,LABEL] [--diff LABEL,LABEL]...
            --case LABEL CMD [--prep CMD] [--after CMD] [--mntns PATH]
            --skip LABEL REASON         (a row that says why it has no number)
            ...

The first --case (or --skip) is the base ("berth"); every other row gets
base median / row median. A command without shell metacharacters is
exec'd directly (no shell start-up in the timing); anything else runs under
`bash -c`. Every command sees BENCH_REP (0 = warm-up). --prep and --after
run untimed around each timed run. --mntns runs the command inside that
mount namespace (setns in the child between fork and exec: no extra exec).

Metric "time" (default) records wall-clock seconds; "stdout" records the
number the command prints (e.g. an RSS in KiB).

--diff A,B adds a line with what A costs over B: the median of the
per-round differences A − B (both ran in the same round, one after the
other, so drift in the machine's load hits both), and the difference of
their medians.

A timed command that fails turns its row into "failed (exit N): <stderr>":
never a made-up number. Prints one markdown section on stdout.
"""

import ctypes
import datetime
import os
import shlex
import statistics
import subprocess
import sys
import time

SHELL_CHARS = set("|&;<>()$`\\\"'*?[]#~{}\n")


class Case:
    def __init__(self, label, cmd):
        self.label = label
        self.cmd = cmd
        self.prep = None
        self.after = None
        self.mntns = None
        self.skip = None  # reason text when the row has no number
        self.samples = []
        self.failed = None


def parse(argv):
    opts = {"name": "", "title": "", "reps": 10, "warmup": 1, "target": None,
            "notes": [], "metric": "time", "unit": None, "vs_max": None,
            "diffs": []}
    cases = []
    i = 0

    def take():
        nonlocal i
        i += 1
        if i >= len(argv):
            sys.exit(f"timeit.py: {argv[i - 1]} needs a value")
        return argv[i]

    while i < len(argv):
        a = argv[i]
        if a == "--name":
            opts["name"] = take()
        elif a == "--title":
            opts["title"] = take()
        elif a == "--reps":
            opts["reps"] = int(take())
        elif a == "--warmup":
            opts["warmup"] = int(take())
        elif a == "--target":
            opts["target"] = take()
        elif a == "--note":
            opts["notes"].append(take())
        elif a == "--metric":
            opts["metric"] = take()
        elif a == "--unit":
            opts["unit"] = take()
        elif a == "--vs-max":
            opts["vs_max"] = take().split(",")
        elif a == "--diff":
            pair = take().split(",")
            if len(pair) != 2:
                sys.exit("timeit.py: --diff needs LABEL,LABEL")
            opts["diffs"].append(pair)
        elif a == "--case":
            label = take()
            cases.append(Case(label, take()))
        elif a == "--skip":
            label = take()
            c = Case(label, None)
            c.skip = take()
            cases.append(c)
        elif a in ("--prep", "--after", "--mntns"):
            if not cases:
                sys.exit(f"timeit.py: {a} before any --case")
            setattr(cases[-1], a[2:], take())
        else:
            sys.exit(f"timeit.py: unknown argument {a!r}")
        i += 1
    return opts, cases


def argv_of(cmd):
    words = cmd.split()
    if any(ch in SHELL_CHARS for ch in cmd) or (words and "=" in words[0]):
        return ["/bin/bash", "-c", cmd]
    return shlex.split(cmd)


def setns_fn(path):
    if not path:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS = 0x00020000

    def enter():
        fd = os.open(path, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNS) != 0:
            os._exit(121)
        os.close(fd)
    return enter


def run_untimed(cmd, env, what):
    p = subprocess.run(["/bin/bash", "-c", cmd], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return f"{what} failed (exit {p.returncode}): {tail(p.stderr)}"
    return None


def tail(b):
    s = b.decode(errors="replace").strip().replace("\n", " ⏎ ").replace("|", "\\|")
    return (s[-200:] if s else "no output")


def run_timed(case, env, metric):
    args = argv_of(case.cmd)
    t0 = time.perf_counter()
    p = subprocess.run(args, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if metric == "stdout" else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, preexec_fn=setns_fn(case.mntns))
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        return None, f"failed (exit {p.returncode}): {tail(p.stderr)}"
    if metric == "stdout":
        try:
            return float(p.stdout.decode().split()[-1]), None
        except (ValueError, IndexError):
            return None, f"failed: printed no number ({tail(p.stdout)})"
    return dt, None


def fmt(v, metric, unit):
    if v is None:
        return "—"
    if metric == "stdout":
        if unit == "KiB":
            return f"{v / 1024:.2f} MiB"
        return f"{v:g} {unit or ''}".strip()
    if v < 1:
        return f"{v * 1000:.1f} ms"
    return f"{v:.2f} s"


def main():
    opts, cases = parse(sys.argv[1:])
    reps, warmup, metric = opts["reps"], opts["warmup"], opts["metric"]
    live = [c for c in cases if c.skip is None]
    for rep in range(warmup + reps):
        for c in live:
            if c.failed:
                continue
            env = dict(os.environ, BENCH_REP=str(rep))
            if c.prep:
                err = run_untimed(c.prep, env, "prep")
                if err:
                    c.failed = err
                    continue
            v, err = run_timed(c, env, metric)
            if err:
                c.failed = err
            elif rep >= warmup:
                c.samples.append(v)
            if c.after:
                err = run_untimed(c.after, env, "cleanup")
                if err and not c.failed:
                    c.failed = err
            print(f"  [{opts['name']}] rep {rep}{' (warm-up)' if rep < warmup else ''} "
                  f"{c.label}: {fmt(v, metric, opts['unit']) if v is not None else c.failed}",
                  file=sys.stderr)

    def median(c):
        return statistics.median(c.samples) if c.samples and not c.failed else None

    base = cases[0] if cases else None
    bmed = median(base) if base else None
    out = []
    out.append(f"### {opts['name']}: {opts['title']}\n")
    what = "values" if metric == "stdout" else "wall-clock times"
    wu = f"after {warmup} warm-up" if warmup else "no warm-up"
    out.append(f"{reps} repetitions, {wu}, interleaved (A B A B …); "
               f"{what}; measured {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.")
    if opts["target"]:
        out.append(f"\nTarget: {opts['target']}.")
    for n in opts["notes"]:
        out.append("\n" + n)
    out.append("")
    head = base.label if base else "base"
    out.append(f"| engine | median | min | max | {head}/peer |")
    out.append("|---|---:|---:|---:|---:|")
    for c in cases:
        if c.skip is not None:
            out.append(f"| {c.label} | {c.skip} | — | — | — |")
            continue
        if c.failed:
            out.append(f"| {c.label} | {c.failed} | — | — | — |")
            continue
        m = median(c)
        if c is base:
            ratio = "1.00×"
        elif bmed is not None and m:
            ratio = f"{bmed / m:.2f}×"
        else:
            ratio = "—"
        out.append(f"| {c.label} | {fmt(m, metric, opts['unit'])} | "
                   f"{fmt(min(c.samples), metric, opts['unit'])} | "
                   f"{fmt(max(c.samples), metric, opts['unit'])} | {ratio} |")
    if opts["vs_max"]:
        meds = {c.label: median(c) for c in cases}
        ms = [meds.get(l) for l in opts["vs_max"]]
        names = ", ".join(opts["vs_max"])
        if bmed is not None and all(ms):
            out.append(f"\n{head} / max({names}) = **{bmed / max(ms):.2f}×**")
        else:
            out.append(f"\n{head} / max({names}): —")
    if opts["diffs"]:
        out.append("")
    by_label = {c.label: c for c in cases}
    for a, b in opts["diffs"]:
        ca, cb = by_label.get(a), by_label.get(b)
        if not ca or not cb or median(ca) is None or median(cb) is None:
            out.append(f"- {a} over {b}: —")
            continue
        per_round = statistics.median(x - y for x, y in zip(ca.samples, cb.samples))
        out.append(f"- {a} over {b}: **{per_round * 1000:+.1f} ms** (median of the per-round "
                   f"differences; difference of the medians {(median(ca) - median(cb)) * 1000:+.1f} ms)")
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
