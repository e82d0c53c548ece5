#!/usr/bin/env python3
"""The module map of README.md, checked: prints which top-level module of src/ imports
which (test code excluded) and fails when the graph has a cycle, when a module imports
something its row does not allow, or when an AWS SDK or clap type shows up outside the
one module allowed to hold it.

    python3 scripts/modgraph.py [SRC]
"""
import glob
import os
import re
import sys

# README.md's "may import" column. Keep the two in step.
ALLOWED = {
    "cli": {"commands", "config", "image", "version"},
    "commands": None,  # the edge: anything
    "engine": {"config", "history", "model", "ports", "version"},
    "history": {"model", "version"},
    "model": {"version"},
    "ports": {"model", "version"},
    "read_only": {"ports", "model", "version"},
    "aws": {"ports", "model", "config", "history", "image", "probe", "clock", "version"},
    "probe": {"ports", "model", "version"},
    "clock": {"model"},
    "image": {"config", "ports", "model", "clock", "version"},
    "config": {"history", "model", "version"},
    "report": {"ports", "model", "version"},
    "sim": {"engine", "history", "ports", "model", "config", "version"},
    "exit": set(),
    "logging": set(),
    "version": set(),
}
# Types that stay in one place.
CONFINED = [
    (re.compile(r"\baws_(sdk_[a-z0-9_]+|config|smithy_[a-z_]+)::"), "aws"),
    (re.compile(r"\bclap::"), "cli"),
]


def code_of(path):
    text = open(path, encoding="utf-8").read()
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    graph, problems = {}, []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top in ("main", "lib"):
            continue
        code = code_of(path)
        uses = {m for m in re.findall(r"crate::([a-z_]+)", code) if m != top}
        graph.setdefault(top, set()).update(uses)
        for pattern, home in CONFINED:
            if top != home and pattern.search(code):
                problems.append(f"{rel}: {pattern.pattern} belongs in src/{home}/ only")
    for top, uses in sorted(graph.items()):
        print(f"{top:10} -> {', '.join(sorted(uses)) or '-'}")
        allowed = ALLOWED.get(top, set())
        if top not in ALLOWED:
            problems.append(f"{top}: not in the module map (README.md, scripts/modgraph.py)")
        elif allowed is not None and not uses <= allowed:
            problems.append(f"{top} imports {', '.join(sorted(uses - allowed))}, which its row does not allow")

    def visit(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                problems.append("cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    done = set()
    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    for p in sorted(set(problems)):
        print("modgraph:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
