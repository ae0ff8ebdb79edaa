#!/usr/bin/env bash
# Runs the whole test suite against real servers: starts a MariaDB primary with two GTID
# replicas and a PostgreSQL primary with two streaming standbys on free loopback ports
# (installing the Debian packages when they are missing), runs `cargo test --all-features
# --no-fail-fast` with their URLs in the environment, then every example (scripts/examples.sh),
# and stops exactly the servers it started.
#
# Every test binary runs even when one fails; the end of the output names the suites (and the
# examples step) that failed, and the exit status is non-zero then.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test routing  # extra arguments go to cargo test (examples are skipped)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

stop_all() {
  "$repo/scripts/mariadb.sh" stop >/dev/null 2>&1 || true
  if [ -x "$repo/scripts/postgres.sh" ]; then "$repo/scripts/postgres.sh" stop >/dev/null 2>&1 || true; fi
  rm -f "${log:-}"
}
trap stop_all EXIT

"$repo/scripts/mariadb.sh" start --replicas 2 >/dev/null
# shellcheck disable=SC1090
source <("$repo/scripts/mariadb.sh" env)
if [ -x "$repo/scripts/postgres.sh" ]; then
  "$repo/scripts/postgres.sh" start --standbys 2 >/dev/null
  # shellcheck disable=SC1090
  source <("$repo/scripts/postgres.sh" env)
fi

log=$(mktemp "${TMPDIR:-/tmp}/rwsplit-test.XXXXXX")
failed=()
set +e
cargo test --all-features --no-fail-fast "$@" 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
set -e
if [ "$tests_rc" -ne 0 ]; then
  # cargo ends a --no-fail-fast run with "error: N targets failed:" and one line per target
  # (`--lib`, `--test drift`, `--doc`, ...); without that block the build itself failed.
  mapfile -t targets < <(sed -n '/^error: [0-9]* targets\{0,1\} failed:/,$p' "$log" | sed -n 's/^ *`\(.*\)`$/\1/p')
  if [ ${#targets[@]} -gt 0 ]; then
    failed+=("${targets[@]/#/cargo test }")
  else
    failed+=("cargo test (build failed, exit $tests_rc)")
  fi
fi

# Every example once, bounded, against the same servers (skipped when arguments narrow the run).
if [ $# -eq 0 ]; then
  "$repo/scripts/examples.sh" || failed+=("scripts/examples.sh")
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED:"
  printf '   %s\n' "${failed[@]}"
  exit 1
fi
echo "== all test suites passed"
