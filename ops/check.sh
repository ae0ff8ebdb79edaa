#!/usr/bin/env bash
# Validates the operations files in ops/:
#   * promtool check rules   ops/prometheus/rwsplit-alerts.yml
#   * promtool test rules    ops/prometheus/rwsplit-alerts.test.yml  (every alert firing / not)
#   * promtool check config  ops/prometheus/prometheus.yml           (loads the rules file too)
#   * the Grafana dashboard: valid JSON (python3 -m json.tool), then ops/lib/check_dashboard.py
#     (structure, datasource/pool variables, metric names, pool filters, PromQL parsed by promtool)
#   * the Grafana provisioning files and docker-compose.yml parse as YAML (when PyYAML is there)
# Installs Debian's `prometheus` package (which provides promtool) with apt-get when promtool is
# missing, without letting the package start a Prometheus server. Exits non-zero on any failure.
#
#   ops/check.sh                 # from anywhere; PROMTOOL=/path/to/promtool to use another one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# ------------------------------------------------------------------------------- promtool
install_promtool() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "promtool is missing and we are not root: apt-get install prometheus" >&2; exit 1; }
    sudo=(sudo)
  fi
  step "installing Debian package prometheus (for promtool)"
  # The package's maintainer scripts start a prometheus service; a policy-rc.d that answers 101
  # (action forbidden) stops invoke-rc.d from doing so. Only ours is removed afterwards.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    # removed again below, or by this trap if the install is interrupted
    trap "${sudo[*]} rm -f $policy" EXIT
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    ours=1
  fi
  local before
  before=$(pgrep -x prometheus || true)
  local rc=0
  { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || rc=$?
  if [ "$ours" -eq 1 ]; then
    "${sudo[@]}" rm -f "$policy"
    trap - EXIT
  fi
  # Belt and braces: stop exactly the prometheus processes that appeared during the install.
  local pid
  for pid in $(pgrep -x prometheus || true); do
    if ! grep -qx "$pid" <<<"$before"; then
      echo "stopping prometheus server (pid $pid) started by the package install"
      "${sudo[@]}" kill "$pid" || true
    fi
  done
  [ "$rc" -eq 0 ] || { echo "apt-get install prometheus failed ($rc)" >&2; exit 1; }
}

PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
if [ -z "$PROMTOOL" ]; then
  install_promtool
  PROMTOOL=$(command -v promtool || true)
  [ -n "$PROMTOOL" ] || { echo "promtool still missing after installing prometheus" >&2; exit 1; }
fi
echo "promtool: $("$PROMTOOL" --version 2>&1 | head -n1)"

# ------------------------------------------------------------------------------- Prometheus
step "promtool check rules ops/prometheus/rwsplit-alerts.yml"
"$PROMTOOL" check rules ops/prometheus/rwsplit-alerts.yml || fail "promtool check rules"

step "promtool test rules ops/prometheus/rwsplit-alerts.test.yml"
"$PROMTOOL" test rules ops/prometheus/rwsplit-alerts.test.yml || fail "promtool test rules"

step "promtool check config ops/prometheus/prometheus.yml"
"$PROMTOOL" check config ops/prometheus/prometheus.yml || fail "promtool check config"

# ------------------------------------------------------------------------------- Grafana
step "dashboard JSON: python3 -m json.tool ops/grafana/rwsplit-dashboard.json"
if python3 -m json.tool ops/grafana/rwsplit-dashboard.json >/dev/null; then
  step "dashboard content: ops/lib/check_dashboard.py"
  python3 ops/lib/check_dashboard.py ops/grafana/rwsplit-dashboard.json "$PROMTOOL" || fail "dashboard check"
else
  fail "dashboard is not valid JSON"
fi

# ------------------------------------------------------------------------------- YAML
step "YAML: Grafana provisioning and docker-compose.yml"
py=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    py=$candidate
    break
  fi
done
if [ -n "$py" ]; then
  "$py" - ops/grafana/provisioning/datasources/*.yml ops/grafana/provisioning/dashboards/*.yml docker-compose.yml <<'PY' || fail "YAML"
import sys, yaml
bad = 0
for path in sys.argv[1:]:
    try:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
        if path.endswith("docker-compose.yml"):
            services = doc["services"]
            for name in ("jaeger", "prometheus", "grafana"):
                if name not in services:
                    raise ValueError(f"service {name} missing")
        elif doc.get("apiVersion") != 1:
            raise ValueError("apiVersion must be 1")
        print(f"{path}: OK")
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"{path}: {e}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
else
  echo "skipped: no python3 with PyYAML (pip install pyyaml, or apt-get install python3-yaml)"
fi

if [ "$failures" -gt 0 ]; then
  echo "ops/check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "ops/check.sh: all checks passed"
