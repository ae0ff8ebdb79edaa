#!/usr/bin/env python3
"""Checks ops/grafana/rwsplit-dashboard.json beyond "it is JSON".

Usage: check_dashboard.py DASHBOARD.json [PROMTOOL]

* structure: uid, title, schemaVersion, unique panel ids, grid positions inside 24 columns,
  the `datasource` (type datasource) and `pool` template variables, every panel and query on
  the `${datasource}` variable (never a hard-coded datasource uid or `${DS_PROMETHEUS}`, which
  file provisioning does not resolve);
* queries: every metric is one that rwsplit exports (or ALERTS), and every rwsplit selector is
  filtered by the pool variable;
* PromQL: with PROMTOOL given, every query (Grafana variables replaced by sample values) is
  written as a recording rule to a temporary file and parsed by `promtool check rules`.

Exit status 0 when everything holds, 1 otherwise (each problem printed on stderr).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

COUNTERS = {
    "rwsplit_routed_statements_total",
    "rwsplit_retries_total",
    "rwsplit_fallbacks_total",
    "rwsplit_classifier_cache_total",
    "rwsplit_no_eligible_replica_total",
}
GAUGES = {
    "rwsplit_replica_lag_seconds",
    "rwsplit_server_up",
    "rwsplit_circuit_breaker_state",
    "rwsplit_pool_connections",
}
HISTOGRAMS = {"db_client_operation_duration_seconds", "rwsplit_causal_wait_seconds"}
KNOWN = COUNTERS | GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
POOL_FILTER = 'pool=~"$pool"'
# Grafana variables -> values that make the query valid PromQL for the parse check.
SAMPLE_VALUES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${pool}": ".*",
    "$pool": ".*",
}

problems = []


def problem(msg):
    problems.append(msg)


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    promtool = sys.argv[2] if len(sys.argv) == 3 else None
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)

    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problem(f"dashboard has no {key!r}")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problem("schemaVersion should be an integer >= 36")
    if dash.get("id") is not None:
        problem("dashboard id must be null (Grafana assigns it)")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem("template variable 'datasource' (type datasource, query prometheus) missing")
    pool = variables.get("pool")
    if not pool or pool.get("type") != "query" or not pool.get("includeAll") or pool.get("allValue") != ".*":
        problem("template variable 'pool' (query, includeAll, allValue '.*') missing")
    inputs = {i.get("name") for i in dash.get("__inputs", [])}
    if "DS_PROMETHEUS" not in inputs:
        problem("__inputs should declare DS_PROMETHEUS for import through the UI")

    exprs = []
    seen_ids = set()
    titles = set()
    for p in walk_panels(dash.get("panels", [])):
        pid, ptype, title = p.get("id"), p.get("type"), p.get("title", "")
        where = f"panel {pid} {title!r}"
        if pid in seen_ids:
            problem(f"{where}: duplicate panel id")
        seen_ids.add(pid)
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24 or g["w"] <= 0 or g["h"] <= 0:
            problem(f"{where}: bad gridPos {g}")
        if ptype == "row":
            continue
        if not title:
            problem(f"{where}: no title")
        if title in titles:
            problem(f"{where}: duplicate title")
        titles.add(title)
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"{where}: datasource must be the ${{datasource}} variable")
        targets = p.get("targets", [])
        if not targets:
            problem(f"{where}: no queries")
        refs = set()
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problem(f"{where} query {t.get('refId')}: datasource must be the ${{datasource}} variable")
            if t.get("refId") in refs:
                problem(f"{where}: duplicate refId {t.get('refId')}")
            refs.add(t.get("refId"))
            if not t.get("expr"):
                problem(f"{where} query {t.get('refId')}: empty expr")
                continue
            exprs.append((where + f" query {t.get('refId')}", t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            exprs.append((f"annotation {a.get('name')!r}", a["expr"]))
    if "${DS_PROMETHEUS}" in json.dumps({k: v for k, v in dash.items() if k not in ("__inputs", "templating")}):
        problem("${DS_PROMETHEUS} used outside the datasource variable: file provisioning cannot resolve it")

    for where, expr in exprs:
        for m in re.finditer(r"\b((?:rwsplit|db_client)_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?", expr):
            name, sel = m.group(1), m.group(2) or ""
            if name not in KNOWN:
                problem(f"{where}: unknown metric {name}")
            if POOL_FILTER not in sel:
                problem(f"{where}: {name} is not filtered by {POOL_FILTER}")
            if name in COUNTERS or name.endswith(("_bucket", "_count", "_sum")):
                # counters are only meaningful through rate()/increase()
                before = expr[: m.start()].rstrip()
                if not re.search(r"\b(rate|irate|increase)\($", before):
                    problem(f"{where}: counter {name} used without rate()/increase()")
        for v in re.findall(r"\$\{?([a-zA-Z_]\w*)", expr):
            if not v.startswith("__") and v not in variables:
                problem(f"{where}: undefined variable ${v}")

    if promtool and exprs:
        rules = []
        for i, (where, expr) in enumerate(exprs):
            e = expr
            for k, v in SAMPLE_VALUES.items():
                e = e.replace(k, v)
            if "$" in e:
                problem(f"{where}: unreplaced Grafana variable in {e!r}")
                continue
            rules.append({"record": f"dashboard:query_{i}", "expr": e})
        with tempfile.TemporaryDirectory() as tmp:
            rf = os.path.join(tmp, "dashboard-queries.yml")
            with open(rf, "w", encoding="utf-8") as f:
                json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
            r = subprocess.run([promtool, "check", "rules", rf], capture_output=True, text=True)
            if r.returncode != 0:
                # find the culprits: one query per file
                culprits = 0
                for rule in rules:
                    with open(rf, "w", encoding="utf-8") as f:
                        json.dump({"groups": [{"name": "dashboard", "rules": [rule]}]}, f)
                    one = subprocess.run([promtool, "check", "rules", rf], capture_output=True, text=True)
                    if one.returncode != 0:
                        culprits += 1
                        where = exprs[int(rule["record"].rsplit("_", 1)[1])][0]
                        msg = (one.stdout + one.stderr).strip().splitlines()[-1]
                        problem(f"{where}: promtool rejected {rule['expr']!r}: {msg}")
                if not culprits:
                    problem("promtool rejected the dashboard queries:\n" + r.stdout + r.stderr)

    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: OK ({len(seen_ids)} panels, {len(exprs)} queries" + (", PromQL parsed by promtool)" if promtool else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
