#!/usr/bin/env bash
# rwsplit end-to-end benchmarks (see BENCHMARKS.md).
#
#   scripts/bench.sh [load]    MariaDB: routed vs direct (hand routing), then PostgreSQL: routed vs
#                              pgpool-II; prints a table, p50/p99 comparisons and finally
#                                routed/direct throughput ratio: 0.985
#                                routed/pgpool throughput ratio: 1.730
#                              (medians of the paired ratios, 3 decimals)
#   scripts/bench.sh mysql     only the MariaDB part (prints only the routed/direct line)
#   scripts/bench.sh postgres  only the PostgreSQL part (prints only the routed/pgpool line)
#   scripts/bench.sh instructions  client instructions per statement of a 90/10 mix, one statement
#                              at a time (tools/examples/instructions.rs), routed and by hand,
#                              under callgrind, on MariaDB and PostgreSQL (one replica each):
#                              instruction counts do not depend on the machine's load; prints
#                                mysql: routed/direct instructions per statement: 1.1xx (+N)
#                              per backend (medians of BENCH_INSTR_RUNS [3] runs; BENCH_OPS
#                              [3000]; BENCH_INSTR_BACKENDS ["mysql postgres"], or sqlite;
#                              BENCH_INSTR_BIN: another build of the example, to compare)
#   scripts/bench.sh memory    no server: 1,000,000 distinct statements through the classifier,
#                              RSS every 100k (shows the plateau at the cache budget)
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [20]         MariaDB: rounds of one routed and one direct window, alternating
#                             inside one loadgen process (`--mode interleaved`), order flipping
#                             every round; the paired ratios are per round
#   BENCH_WINDOW [3]          MariaDB: measured seconds per window
#   BENCH_AA [1]              MariaDB: then the same rounds with direct on both sides (A/A):
#                             the spread of those ratios is the machine's noise floor
#   BENCH_PAIRS [5]           PostgreSQL: routed/pgpool pairs of runs; the order alternates
#   BENCH_SECONDS [10]        PostgreSQL: measured seconds per run (after BENCH_WARMUP [1] s)
#   BENCH_CONCURRENCY [32]    concurrent tasks (= connections per pool)
#   BENCH_WRITE_RATIO [0.1]   share of single-row updates (the rest: point selects by PK)
#   BENCH_ROWS [10000]        rows in loadgen_kv
#   BENCH_PG_DIRECT [0]       1: also run PostgreSQL direct (hand routing) in each pair
#   BENCH_STATEMENTS [1000000], BENCH_EVERY [100000], BENCH_CACHE_BYTES [library default]
#                             memory mode
#   BENCH_OUT [<state>/bench] where results.jsonl and the logs go
#   RWSPLIT_STATE_DIR [/tmp/rwsplit-bench]  servers' state dir; a dedicated default so this
#                             never restarts servers another run or test suite is using
#   BENCH_REUSE [0]           1: use servers already running in RWSPLIT_STATE_DIR (and leave
#                             them running); otherwise start them here and stop them on exit
#   CARGO_TARGET_DIR          honoured when building the loadgen example
#
# Only servers started by this script are stopped (trap on EXIT), through the scripts that
# started them, which only ever signal the PIDs in their own state dirs.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)"
export RWSPLIT_STATE_DIR="${RWSPLIT_STATE_DIR:-/tmp/rwsplit-bench}"
PAIRS="${BENCH_PAIRS:-5}"
SECS="${BENCH_SECONDS:-10}"
MY_ROUNDS="${BENCH_ROUNDS:-20}"
MY_SECS="${BENCH_WINDOW:-3}"
AA="${BENCH_AA:-1}"
WARMUP="${BENCH_WARMUP:-1}"
CONC="${BENCH_CONCURRENCY:-32}"
WRATIO="${BENCH_WRITE_RATIO:-0.1}"
ROWS="${BENCH_ROWS:-10000}"
PG_DIRECT="${BENCH_PG_DIRECT:-0}"
REUSE="${BENCH_REUSE:-0}"
OUT="${BENCH_OUT:-$RWSPLIT_STATE_DIR/bench}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
LOADGEN="$TARGET_DIR/release/examples/loadgen"

log() { printf '[bench.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

STARTED=()
cleanup() {
    local rc=$? s
    # reverse start order: pgpool before the PostgreSQL servers behind it
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        s="${STARTED[i]}"
        log "stopping $s (started by this run)"
        "$REPO_ROOT/scripts/$s.sh" stop >/dev/null 2>&1 || log "stopping $s failed"
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME ARGS...: eval the env the script prints; with BENCH_REUSE=1 use a running one.
start_server() {
    local name="$1"; shift
    local env
    if [[ "$REUSE" == 1 ]] && env="$("$REPO_ROOT/scripts/$name.sh" env 2>/dev/null)"; then
        log "$name: reusing the servers in $RWSPLIT_STATE_DIR"
    else
        log "$name: starting ($*) in $RWSPLIT_STATE_DIR"
        STARTED+=("$name")
        env="$("$REPO_ROOT/scripts/$name.sh" start "$@" 2>"$OUT/$name-start.log")" \
            || { tail -n 30 "$OUT/$name-start.log" >&2; die "$name start failed"; }
    fi
    eval "$env"
}

build_loadgen() {
    log "building the loadgen example (release, features mysql,postgres)"
    (cd "$REPO_ROOT" && cargo build --release --quiet -p rwsplit-tools --features mysql,postgres --example loadgen) \
        || die "cargo build failed"
    [[ -x "$LOADGEN" ]] || die "no $LOADGEN after the build"
}

# run_one BACKEND MODE WINDOWS ARGS...: one bounded loadgen run of WINDOWS measured windows;
# appends its JSON lines (one per window) to results.jsonl.
run_one() {
    local backend="$1" mode="$2" windows="$3"; shift 3
    local out
    out="$(timeout --signal=INT --kill-after=10 $((SECS * windows + WARMUP * 2 + 120)) \
        "$LOADGEN" --mode "$mode" --backend "$backend" --concurrency "$CONC" \
        --duration "$SECS" --warmup "$WARMUP" --write-ratio "$WRATIO" --rows "$ROWS" "$@" \
        2>>"$OUT/loadgen.err")" || die "loadgen $backend/$mode failed (see $OUT/loadgen.err)"
    printf '%s\n' "$out" >>"$OUT/results.jsonl"
    while IFS= read -r line; do log "  $backend $mode: $line"; done <<<"$out"
}

bench_mysql() {
    start_server mariadb --replicas 1
    : "${RWSPLIT_MYSQL_PRIMARY:?}" "${RWSPLIT_MYSQL_REPLICA_1:?}"
    local urls=(--primary "$RWSPLIT_MYSQL_PRIMARY" --replica "$RWSPLIT_MYSQL_REPLICA_1")
    # One process alternating routed and direct windows: neighbours' load drifts over
    # seconds to minutes, so windows seconds apart see the same machine.
    log "MariaDB: $MY_ROUNDS interleaved rounds of routed/direct, ${MY_SECS}s windows, concurrency $CONC"
    SECS="$MY_SECS" run_one mysql interleaved $((MY_ROUNDS * 2)) "${urls[@]}" --rounds "$MY_ROUNDS"
    if [[ "$AA" == 1 ]]; then
        log "MariaDB: A/A noise floor, $MY_ROUNDS interleaved rounds of direct/direct"
        SECS="$MY_SECS" run_one mysql interleaved $((MY_ROUNDS * 2)) "${urls[@]}" \
            --rounds "$MY_ROUNDS" --pair direct,direct
    fi
}

bench_postgres() {
    start_server postgres --standbys 1
    start_server pgpool
    : "${RWSPLIT_PG_PRIMARY:?}" "${RWSPLIT_PG_STANDBY_1:?}" "${RWSPLIT_PGPOOL_URL:?}"
    local urls=(--primary "$RWSPLIT_PG_PRIMARY" --replica "$RWSPLIT_PG_STANDBY_1") p
    local proxy=(--proxy "$RWSPLIT_PGPOOL_URL" --primary "$RWSPLIT_PG_PRIMARY" --replica "$RWSPLIT_PG_STANDBY_1")
    log "PostgreSQL: $PAIRS pairs of routed/pgpool, ${SECS}s each, concurrency $CONC"
    for ((p = 1; p <= PAIRS; p++)); do
        if ((p % 2)); then
            run_one postgres routed 1 "${urls[@]}"; run_one postgres proxy 1 "${proxy[@]}"
        else
            run_one postgres proxy 1 "${proxy[@]}"; run_one postgres routed 1 "${urls[@]}"
        fi
        if [[ "$PG_DIRECT" == 1 ]]; then run_one postgres direct 1 "${urls[@]}"; fi
    done
}

# report WHICH...: table of every run, per-mode medians, paired ratios (python3).
report() {
    python3 - "$OUT/results.jsonl" "$@" <<'EOF'
import json, statistics, sys
path, which = sys.argv[1], sys.argv[2:]
runs = [json.loads(l) for l in open(path) if l.strip()]
med = statistics.median

print()
print(f"{'backend':<9} {'mode':<8} {'run':>3} {'ops':>9} {'ops/s':>10} {'p50 us':>9} {'p99 us':>9} {'errors':>6} {'cpu us/op':>9}")
seen = {}
for r in runs:
    k = (r["backend"], r["mode"])
    seen[k] = seen.get(k, 0) + 1
    print(f"{r['backend']:<9} {r['mode']:<8} {seen[k]:>3} {r['ops']:>9} {r['throughput']:>10.1f} "
          f"{r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['errors']:>6} {r.get('client_cpu_us_per_op', float('nan')):>9.2f}")

print()
print("medians per mode:")
by = {}
for r in runs:
    by.setdefault((r["backend"], r["mode"]), []).append(r)
# An A/A run (direct vs direct-b) comes after the routed/direct windows: keep its first side
# apart from the direct windows the routed ones pair with.
aa_b = by.get(("mysql", "direct-b"), [])
if aa_b:
    d = by[("mysql", "direct")]
    by[("mysql", "direct")], by[("mysql", "direct-a")] = d[:-len(aa_b)], d[-len(aa_b):]
    if not by[("mysql", "direct")]:
        del by[("mysql", "direct")]
for (b, m), rs in by.items():
    cpu = [x["client_cpu_us_per_op"] for x in rs if "client_cpu_us_per_op" in x]
    cpu = f"  client CPU {med(cpu):6.2f} us/op" if cpu else ""
    print(f"  {b:<9} {m:<8} n={len(rs)}  ops/s {med(x['throughput'] for x in rs):10.1f}  "
          f"p50 {med(x['p50_us'] for x in rs):8.1f} us  p99 {med(x['p99_us'] for x in rs):8.1f} us  "
          f"errors {sum(x['errors'] for x in rs)}{cpu}")

def paired(backend, base):
    a = by.get((backend, "routed"), [])
    b = by.get((backend, base), [])
    n = min(len(a), len(b))
    if n == 0:
        return None
    # runs were made in pairs in order: the i-th routed run pairs with the i-th baseline run
    t = [a[i]["throughput"] / b[i]["throughput"] for i in range(n)]
    p50 = [a[i]["p50_us"] / b[i]["p50_us"] for i in range(n)]
    p99 = [a[i]["p99_us"] / b[i]["p99_us"] for i in range(n)]
    return n, t, p50, p99

labels = {"mysql": ("direct", "routed/direct"), "postgres": ("proxy", "routed/pgpool")}
if aa_b:
    r = [x["throughput"] / y["throughput"] for x, y in zip(by[("mysql", "direct-a")], aa_b)]
    print(f"direct/direct A/A noise floor (mysql, {len(r)} pairs): paired throughput ratios "
          + " ".join(f"{x:.3f}" for x in r))
    print(f"direct/direct A/A median {med(r):.3f}, middle half {sorted(r)[len(r)//4]:.3f}"
          f"..{sorted(r)[(3*len(r))//4]:.3f}")
final = []
print()
for backend in which:
    base, label = labels[backend]
    res = paired(backend, base)
    if res is None:
        print(f"{label}: no paired runs")
        continue
    n, t, p50, p99 = res
    print(f"{label} ({backend}, {n} pairs): paired throughput ratios "
          + " ".join(f"{x:.3f}" for x in t))
    print(f"{label} p50 latency ratio: {med(p50):.3f}  (routed p50 "
          f"{med(x['p50_us'] for x in by[(backend, 'routed')]):.1f} us vs {base} "
          f"{med(x['p50_us'] for x in by[(backend, base)]):.1f} us)")
    print(f"{label} p99 latency ratio: {med(p99):.3f}  (routed p99 "
          f"{med(x['p99_us'] for x in by[(backend, 'routed')]):.1f} us vs {base} "
          f"{med(x['p99_us'] for x in by[(backend, base)]):.1f} us)")
    if backend == "postgres" and ("postgres", "direct") in by:
        d = by[("postgres", "direct")]
        print(f"postgres direct (hand routing) medians: ops/s {med(x['throughput'] for x in d):.1f}  "
              f"p50 {med(x['p50_us'] for x in d):.1f} us  p99 {med(x['p99_us'] for x in d):.1f} us")
    final.append(f"{label} throughput ratio: {med(t):.3f}")
print()
for line in final:
    print(line)
EOF
}

cmd_memory() {
    build_loadgen # same features as the load runs, so the two never rebuild each other
    local args=(--mode memory --statements "${BENCH_STATEMENTS:-1000000}" --every "${BENCH_EVERY:-100000}")
    [[ -n "${BENCH_CACHE_BYTES:-}" ]] && args+=(--cache-bytes "$BENCH_CACHE_BYTES")
    mkdir -p "$OUT"
    "$LOADGEN" "${args[@]}" >"$OUT/memory.jsonl"
    python3 - "$OUT/memory.jsonl" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'statements':>11} {'VmRSS MiB':>10} {'cache entries':>13} {'cache MiB':>10} {'elapsed s':>9}")
for r in rows:
    print(f"{r['statements']:>11} {r['rss_kib']/1024:>10.1f} {r['cache_entries']:>13} "
          f"{r['cache_bytes']/1048576:>10.2f} {r['elapsed_s']:>9.2f}")
tail = [r["rss_kib"] for r in rows if r["statements"] >= rows[-1]["statements"] // 2]
print(f"RSS over the second half: min {min(tail)/1024:.1f} MiB, max {max(tail)/1024:.1f} MiB "
      f"(growth {(max(tail)-min(tail))/1024:.1f} MiB)")
EOF2
}

# Instructions counted inside glibc's malloc.c and arena.c (allocation, free and their bins) in
# the callgrind file $1: the part of the count that depends on the heap's history.
malloc_internals() {
    callgrind_annotate --inclusive=no --threshold=100 "$1" 2>/dev/null | awk '
        /PROGRAM TOTALS/ { next }
        /\/malloc\/(malloc|arena)\.c:/ { c = $1; gsub(",", "", c); sum += c }
        END { printf "%d\n", sum }'
}

# Client instructions per statement (callgrind's Ir), routed and direct. Callgrind counts only
# the measured loop (`--toggle-collect`), not the set-up; the sockets are blocking
# (INSTR_BLOCKING), so every statement takes one path through the client, whatever the servers'
# speed; glibc's malloc gets fixed thresholds (no adaptive mmap threshold, no trimming). What is
# left to vary is malloc's search through its bins, which depends on the heap's history: each
# backend runs BENCH_INSTR_RUNS times and the median and each run's difference are printed, and
# each difference split into malloc's own code and the rest (which repeats within a few
# instructions from run to run, so it shows a change of a few dozen instructions).
cmd_instructions() {
    command -v valgrind >/dev/null 2>&1 || {
        log "installing valgrind"
        apt-get install -y -qq valgrind >/dev/null
    }
    local ops runs backends
    ops="${BENCH_OPS:-3000}"
    runs="${BENCH_INSTR_RUNS:-3}"
    read -r -a backends <<<"${BENCH_INSTR_BACKENDS:-mysql postgres}"
    mkdir -p "$OUT"
    log "building tools/examples/instructions.rs (release)"
    (cd "$REPO_ROOT" && cargo build --release -q -p rwsplit-tools \
        --features mysql,postgres,sqlite,metrics --example instructions) || die "cargo build failed"
    local bin="${BENCH_INSTR_BIN:-$TARGET_DIR/release/examples/instructions}"
    local b
    for b in "${backends[@]}"; do
        case "$b" in
            mysql) start_server mariadb --replicas 1 ;;
            postgres) start_server postgres --standbys 1 ;;
            sqlite) ;;
            *) die "BENCH_INSTR_BACKENDS: mysql, postgres or sqlite, not $b" ;;
        esac
    done
    : >"$OUT/instructions.txt"
    local run mode f
    for b in "${backends[@]}"; do
        for ((run = 1; run <= runs; run++)); do
            for mode in direct routed; do
                f="$OUT/callgrind.$b.$mode.$run"
                rm -f "$f"*
                INSTR_BLOCKING=1 \
                GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864 \
                    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_loop*' \
                    --callgrind-out-file="$f" "$bin" "$b" "$mode" "$ops" 2>"$f.log" \
                    || { tail -n 20 "$f.log" >&2; die "$b $mode failed"; }
                echo "$b $run $mode $ops $(sed -n 's/^summary: //p' "$f") $(malloc_internals "$f")" \
                    >>"$OUT/instructions.txt"
            done
        done
    done
    python3 - "$OUT/instructions.txt" <<'EOF2'
import statistics, sys
per = {}
mall = {}
for line in open(sys.argv[1]):
    backend, run, mode, ops, count, inside = line.split()
    per.setdefault(backend, {}).setdefault(mode, []).append(int(count) / int(ops))
    mall.setdefault(backend, {}).setdefault(mode, []).append(int(inside) / int(ops))
for backend, modes in per.items():
    direct, routed = modes["direct"], modes["routed"]
    extra = [r - d for r, d in zip(routed, direct)]
    ratio = [r / d for r, d in zip(routed, direct)]
    m = mall[backend]
    inside = [r - d for r, d in zip(m["routed"], m["direct"])]
    print(f"{backend}: client instructions per statement: direct {statistics.median(direct):,.0f}, "
          f"routed {statistics.median(routed):,.0f}; routed - direct per run: "
          + ", ".join(f"{e:+,.0f}" for e in extra))
    print(f"{backend}: of which inside glibc malloc's own code (varies with the heap's history), "
          "per run: " + ", ".join(f"{i:+,.0f}" for i in inside)
          + "; outside it (repeats within a few instructions): "
          + ", ".join(f"{e - i:+,.0f}" for e, i in zip(extra, inside)))
    print(f"{backend}: routed/direct instructions per statement: {statistics.median(ratio):.3f} "
          f"(+{statistics.median(extra):,.0f})")
EOF2
}

main() {
    local cmd="${1:-load}"
    case "$cmd" in
        memory) cmd_memory; return ;;
        instructions) cmd_instructions; return ;;
        load | mysql | postgres) ;;
        -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT_PATH"; return ;;
        *) die "unknown command $cmd (load, mysql, postgres, memory or instructions)" ;;
    esac
    mkdir -p "$OUT"
    : >"$OUT/results.jsonl"
    : >"$OUT/loadgen.err"
    build_loadgen
    local which=()
    if [[ "$cmd" == load || "$cmd" == mysql ]]; then bench_mysql; which+=(mysql); fi
    if [[ "$cmd" == load || "$cmd" == postgres ]]; then bench_postgres; which+=(postgres); fi
    log "results: $OUT/results.jsonl"
    report "${which[@]}"
}

main "$@"
