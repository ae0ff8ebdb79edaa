#!/usr/bin/env bash
# Validates tests/corpus/postgres.tsv against the real cluster from scripts/postgres.sh.
#
#   scripts/postgres-corpus-check.sh [--start] [--report FILE] [CORPUS.tsv]
#
#   --start   start a primary + 1 standby first and stop it again at the end
#             (otherwise the cluster from `scripts/postgres.sh start` is used)
#
# Steps:
#   1. load tests/corpus/postgres_schema.sql on the primary as rwsplit, wait for replay
#   2. every line, one psql session each, on STANDBY 1 as rwsplit:
#        read lines MUST succeed; for the other classes record which ones succeed on a
#        hot standby (dangerous for a naive router). A line that fails only because it
#        needs a transaction block (LOCK, SET LOCAL, SAVEPOINT ...) is retried inside
#        BEGIN ... ROLLBACK and reported as "ok-in-tx".
#   3. every line, in file order, on the PRIMARY as rwsplit: read/write/lock/side_effect/
#        session/multi are expected to succeed (failures are listed, not fatal);
#        garbage lines MUST fail with SQLSTATE 42601 (syntax error)
#   4. reload the schema so the fixture is pristine again
# Exit status: 0 when every read line ran on the standby and every garbage line was a
# syntax error; 1 otherwise. The per-line results go to --report (default: stdout summary
# only, details in $STATE/postgres/corpus-report.tsv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
PG_SCRIPT="$HERE/postgres.sh"
CORPUS="$REPO_ROOT/tests/corpus/postgres.tsv"
START=0
REPORT=""
while (($#)); do
    case "$1" in
        --start) START=1; shift ;;
        --report) REPORT="$2"; shift 2 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) CORPUS="$1"; shift ;;
    esac
done

if ((START)); then
    "$PG_SCRIPT" start --standbys 1 >/dev/null
    trap '"$PG_SCRIPT" stop >/dev/null 2>&1 || true' EXIT
fi
eval "$("$PG_SCRIPT" env)"
: "${RWSPLIT_PG_PRIMARY:?}" "${RWSPLIT_PG_STANDBY_1:?}"
STATE_ROOT="${RWSPLIT_STATE_DIR:-$REPO_ROOT/.servers}"
[[ -n "$REPORT" ]] || REPORT="$STATE_ROOT/postgres/corpus-report.tsv"

PSQL="$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -n "$PSQL" && -x "$PSQL" ]] || PSQL="$(command -v psql)"

# psql for one line: prints "ok" or "err <SQLSTATE> <message>"
run_sql() { # url sql [wrap-in-tx]
    local url="$1" sql="$2" out rc
    local args=(-X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose)
    if [[ "${3:-}" == tx ]]; then args+=(-c BEGIN -c "$sql" -c ROLLBACK); else args+=(-c "$sql"); fi
    set +e
    out="$(PGOPTIONS="-c statement_timeout=10s -c lock_timeout=2s -c client_min_messages=error" \
        PGCONNECT_TIMEOUT=5 "$PSQL" "$url" "${args[@]}" </dev/null 2>&1 >/dev/null)"
    rc=$?
    set -e
    if ((rc == 0)); then echo ok; return; fi
    local code msg
    code="$(sed -nE 's/^.*(ERROR|FATAL):  ([0-9A-Z]{5}): .*$/\2/p' <<<"$out" | head -n 1)"
    msg="$(grep -m1 -E 'ERROR|FATAL|error' <<<"$out" | sed -E 's/^.*(ERROR|FATAL):  ([0-9A-Z]{5}: )?//' | tr '\t' ' ' || true)"
    [[ -n "$code" ]] || code="-----"
    echo "err $code ${msg:-$out}"
}

"$PG_SCRIPT" load-schema >/dev/null 2>&1

mapfile -t LINES < <(grep -vE '^(#|[[:space:]]*$)' "$CORPUS")
declare -A N_TOTAL=() N_STANDBY_OK=() N_PRIMARY_OK=()
READ_FAIL=0 GARBAGE_FAIL=0
: >"$REPORT"
printf 'class\tstandby\tprimary\tsql\n' >>"$REPORT"

declare -a SB_RES=()
i=0
for line in "${LINES[@]}"; do
    cls="${line%%$'\t'*}"; sql="${line#*$'\t'}"
    res="$(run_sql "$RWSPLIT_PG_STANDBY_1" "$sql")"
    if [[ "$res" == err*"can only be used in transaction blocks"* ]]; then
        res2="$(run_sql "$RWSPLIT_PG_STANDBY_1" "$sql" tx)"
        [[ "$res2" == ok ]] && res="ok-in-tx" || res="$res | in tx: $res2"
    fi
    SB_RES[i]="$res"; i=$((i + 1))
done

# primary pass, in file order
"$PG_SCRIPT" load-schema >/dev/null 2>&1
declare -a PR_RES=()
i=0
for line in "${LINES[@]}"; do
    cls="${line%%$'\t'*}"; sql="${line#*$'\t'}"
    res="$(run_sql "$RWSPLIT_PG_PRIMARY" "$sql")"
    if [[ "$res" == err*"can only be used in transaction blocks"* ]]; then
        res2="$(run_sql "$RWSPLIT_PG_PRIMARY" "$sql" tx)"
        [[ "$res2" == ok ]] && res="ok-in-tx" || res="$res | in tx: $res2"
    fi
    PR_RES[i]="$res"; i=$((i + 1))
done
"$PG_SCRIPT" load-schema >/dev/null 2>&1

i=0
for line in "${LINES[@]}"; do
    cls="${line%%$'\t'*}"; sql="${line#*$'\t'}"
    sb="${SB_RES[i]}"; pr="${PR_RES[i]}"; i=$((i + 1))
    N_TOTAL[$cls]=$(( ${N_TOTAL[$cls]:-0} + 1 ))
    [[ "$sb" == ok* ]] && N_STANDBY_OK[$cls]=$(( ${N_STANDBY_OK[$cls]:-0} + 1 ))
    [[ "$pr" == ok* ]] && N_PRIMARY_OK[$cls]=$(( ${N_PRIMARY_OK[$cls]:-0} + 1 ))
    printf '%s\t%s\t%s\t%s\n' "$cls" "$sb" "$pr" "$sql" >>"$REPORT"
    if [[ "$cls" == read && "$sb" != ok ]]; then
        READ_FAIL=$((READ_FAIL + 1)); echo "READ FAILED ON STANDBY: $sql -> $sb"
    fi
    if [[ "$cls" == garbage && "$pr" != "err 42601 "* ]]; then
        GARBAGE_FAIL=$((GARBAGE_FAIL + 1)); echo "GARBAGE NOT A SYNTAX ERROR ON PRIMARY: $sql -> $pr"
    fi
done

echo "class          lines  ok-on-standby  ok-on-primary"
for cls in read write lock side_effect session multi garbage; do
    printf '%-13s %6d %14d %14d\n' "$cls" "${N_TOTAL[$cls]:-0}" "${N_STANDBY_OK[$cls]:-0}" "${N_PRIMARY_OK[$cls]:-0}"
done
echo
echo "non-read lines that SUCCEED on the hot standby (a naive router sending them there would not notice):"
awk -F'\t' 'NR > 1 && $1 != "read" && $2 ~ /^ok/ { printf "  %-12s %-9s %s\n", $1, $2, $4 }' "$REPORT"
echo
echo "details: $REPORT"
((READ_FAIL == 0 && GARBAGE_FAIL == 0))
