#!/usr/bin/env bash
# Bounded fuzz run of the classifier (fuzz/fuzz_targets/classify.rs) with cargo-fuzz on the
# STABLE toolchain: `--sanitizer none` needs no nightly (no -Z flags); libFuzzer's coverage
# instrumentation (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*) is stable.
# The crate forbids unsafe code, so AddressSanitizer would add little; panics and the target's
# oracles (no replica route for anything turned into a write) are what is checked.
#
#   scripts/fuzz.sh [SECONDS]   build, then fuzz for SECONDS (default 60); exit 1 on a crash,
#                               a panic, an oracle violation, a timeout or an OOM
#   scripts/fuzz.sh --seeds     regenerate fuzz/corpus/classify/ from tests/corpus/*.tsv
#
# Installs cargo-fuzz when missing. Builds in FUZZ_TARGET_DIR (default: fuzz/target), never in
# CARGO_TARGET_DIR: the fuzz build's coverage flags share nothing with other builds, and a
# target dir of its own lets it run beside them (.ci/run runs it beside the test suite).
# The committed seeds are read-only input: new inputs go to fuzz/work/classify/, crashes to
# fuzz/artifacts/classify/ (both git-ignored). Reproduce a crash with
#   cargo fuzz run --sanitizer none --fuzz-dir fuzz classify fuzz/artifacts/classify/crash-...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
FUZZ_DIR=$ROOT/fuzz
TARGET=classify
SEEDS=$FUZZ_DIR/corpus/$TARGET
WORK=$FUZZ_DIR/work/$TARGET
CARGO_FUZZ_VERSION=${CARGO_FUZZ_VERSION:-^0.13}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ_DIR/target}

ensure_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then
    return
  fi
  echo "== installing cargo-fuzz ($CARGO_FUZZ_VERSION) from crates.io"
  local start=$SECONDS
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
  echo "== cargo-fuzz installed in $((SECONDS - start)) s"
}

fuzz() {
  cargo fuzz "$1" --sanitizer none --fuzz-dir "$FUZZ_DIR" "${@:2}"
}

# Seeds: one file per corpus line, first byte = dialect selector (m = MySQL, p = PostgreSQL,
# s = SQLite, as in the target), the SQL after it byte for byte (no newline), named
# DIALECT-LINE-CLASS. SQLite gets the PostgreSQL lines too. The candidates are reduced with
# libFuzzer's -merge=1 to those that add coverage (about 1,500 lines to about 800 files).
regenerate_seeds() {
  ensure_cargo_fuzz
  fuzz build "$TARGET"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/merged"
  local spec
  for spec in m:mysql p:postgres s:postgres; do
    local sel=${spec%%:*} name=${spec#*:}
    # MySQL and PostgreSQL lines in one batch, then SQLite's, so that SQLite keeps only the
    # lines that reach code the first batch does not.
    local dir=$tmp/candidates-$([ "$sel" = s ] && echo 2 || echo 1)
    mkdir -p "$dir"
    awk -F'\t' -v sel="$sel" -v dir="$dir" '
      /^#/ || index($0, "\t") == 0 { next }
      {
        sql = substr($0, index($0, "\t") + 1)
        dialect = (sel == "m") ? "mysql" : (sel == "p") ? "postgres" : "sqlite"
        file = sprintf("%s/%s-%04d-%s", dir, dialect, NR, $1)
        printf "%s%s", sel, sql > file
        close(file)
      }' "tests/corpus/$name.tsv"
  done
  echo "== $(find "$tmp"/candidates-* -type f | wc -l) candidate seeds; merging by coverage"
  local batch
  for batch in "$tmp/candidates-1" "$tmp/candidates-2"; do
    fuzz run "$TARGET" "$tmp/merged" "$batch" -- -merge=1 -use_counters=0 -max_len=4096 >"$tmp/merge.log" 2>&1 || {
      tail -40 "$tmp/merge.log"
      echo "merge failed" >&2
      return 1
    }
  done
  rm -rf "$SEEDS"
  mkdir -p "$SEEDS"
  local keep
  keep=$(cd "$tmp/merged" && ls)
  local f
  for f in "$tmp"/candidates-*/*; do
    if grep -qx "$(sha1sum <"$f" | cut -d' ' -f1)" <<<"$keep"; then
      cp "$f" "$SEEDS/"
    fi
  done
  echo "== kept $(find "$SEEDS" -type f | wc -l) seeds in ${SEEDS#"$ROOT"/}"
}

if [ "${1:-}" = "--seeds" ]; then
  regenerate_seeds
  exit 0
fi

DURATION=${1:-60}
case $DURATION in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] | --seeds" >&2; exit 2 ;;
esac

ensure_cargo_fuzz
echo "== $(rustc --version); $(cargo fuzz --version)"
echo "== building fuzz target $TARGET"
start=$SECONDS
fuzz build "$TARGET"
echo "== built in $((SECONDS - start)) s; fuzzing for $DURATION s"
mkdir -p "$WORK"
# First corpus dir is where libFuzzer writes new inputs: the scratch dir, never the seeds.
fuzz run "$TARGET" "$WORK" "$SEEDS" -- \
  -max_total_time="$DURATION" \
  -rss_limit_mb=2048 \
  -max_len=4096 \
  -timeout=10 \
  -dict="$FUZZ_DIR/$TARGET.dict" \
  -print_final_stats=1
echo "== fuzzing found nothing in $DURATION s"
