#!/usr/bin/env python3
# Copied from the shared tools of the team (shared/tools/module-cycles.py, outside this repo) so CI
# runs the same check; tests/layers.rs re-implements it in Rust (and also follows crate-root
# re-exports such as `crate::RoutingPool` to the module that defines them).
"""usage: module-cycles.py SRC_DIR
Top-level modules of a Rust crate (src/x.rs or src/x/) as nodes, `crate::x` references
(in `use` lines and paths) as edges; prints each strongly connected group of more than one
module and, last, "modules in cycles: N of M (largest group K)"."""
import os, re, sys
src = sys.argv[1]
mods = {}
for name in os.listdir(src):
    p = os.path.join(src, name)
    if name.endswith('.rs') and name not in ('lib.rs', 'main.rs'):
        mods[name[:-3]] = [p]
    elif os.path.isdir(p):
        mods[name] = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith('.rs')]
ref = re.compile(r'\bcrate::([a-z_][a-z0-9_]*)')
group = re.compile(r'\bcrate::\{([^}]*)\}', re.S)
edges = {m: set() for m in mods}
for m, files in mods.items():
    for f in files:
        text = open(f, encoding='utf-8').read()
        text = re.sub(r'//[^\n]*', '', text)           # comments and docs do not import
        found = set(ref.findall(text))
        for g in group.findall(text):
            found |= {x.strip().split('::')[0] for x in g.split(',') if x.strip()}
        edges[m] |= {t for t in found if t in mods and t != m}
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(c)
sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index: visit(v)
cyc = [sorted(c) for c in sccs if len(c) > 1]
for c in cyc: print('cycle:', ' '.join(c))
inc = sum(len(c) for c in cyc)
print(f"modules in cycles: {inc} of {len(mods)} (largest group {max([len(c) for c in cyc], default=1)})")
sys.exit(1 if cyc else 0)
