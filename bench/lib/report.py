#!/usr/bin/python3
"""report.py RESULTS.md HEADER.md OUTDIR SCENARIO...

Writes RESULTS.md: the header, then one section per scenario known so far.
Sections of scenarios run now come from OUTDIR/<scenario>.md; sections of
scenarios not run this time (bench/run --only) are kept from the old file,
each with the date it was measured.
"""
import os
import re
import sys

ORDER = ["run-true", "exec", "detached-20", "ps-200", "import-1g", "images-1000", "inspect",
         "save-load-200m", "build-cold", "build-noop", "build-onefile", "build-multiarch", "context-500m",
         "push-pull", "rss"]


def sections(text):
    out = {}
    for m in re.finditer(r"<!-- scenario:(\S+) -->\n(.*?)<!-- /scenario:\1 -->", text, re.S):
        body = m.group(2)
        # The "## name" heading is written anew with the section: drop the old one(s).
        heading = f"## {m.group(1)}\n\n"
        while body.startswith(heading):
            body = body[len(heading):]
        out[m.group(1)] = body
    return out


def main():
    results, header, outdir, *ran = sys.argv[1:]
    old = sections(open(results).read()) if os.path.exists(results) else {}
    new = dict(old)
    fresh = set()
    for s in ran:
        p = os.path.join(outdir, f"{s}.md")
        if os.path.exists(p):
            new[s] = open(p).read().rstrip() + "\n"
            fresh.add(s)
    names = [s for s in ORDER if s in new] + sorted(s for s in new if s not in ORDER)
    with open(results, "w") as f:
        f.write(open(header).read().rstrip() + "\n\n")
        kept = [s for s in names if s not in fresh]
        if kept:
            f.write("Sections kept from an earlier run (each says when it was measured): "
                    + ", ".join(kept) + ".\n\n")
        for s in names:
            f.write(f"<!-- scenario:{s} -->\n## {s}\n\n{new[s]}<!-- /scenario:{s} -->\n\n")


if __name__ == "__main__":
    main()
