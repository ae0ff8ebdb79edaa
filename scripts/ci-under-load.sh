#!/usr/bin/env bash
# Runs CI (.ci/run) N times in a row, each in a fresh clone of this repository's HEAD, with
# four CPU-burning processes beside it: the check that the suite holds on a loaded machine.
# Prints each run's duration and result; exits non-zero if any run failed.
#
#   scripts/ci-under-load.sh            # 3 runs, 4 burners
#   scripts/ci-under-load.sh -n 1 -b 2  # 1 run, 2 burners
#   scripts/ci-under-load.sh -c 'true'  # the same loop around another command (run in the
#                                       # clone), e.g. to check this script itself
#   scripts/ci-under-load.sh -t DIR     # all runs share the target dir DIR (the first run builds
#                                       # the dependencies, the later ones reuse them)
#
# The burners are `sh -c 'while :; do :; done'`; exactly their recorded PIDs are killed on exit
# (trap), never anything found by name. Clones go to a temporary directory, removed at the end
# (kept with -k). Each clone gets its own target dir unless -t names one to share;
# CARGO_TARGET_DIR from the environment is not used.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

runs=3 burners=4 keep=0 cmd=.ci/run shared=
while getopts 'n:b:c:t:kh' opt; do
  case "$opt" in
    n) runs=$OPTARG ;;
    b) burners=$OPTARG ;;
    c) cmd=$OPTARG ;;
    k) keep=1 ;;
    t) shared=$OPTARG ;;
    *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "-n: a positive count" >&2; exit 2; }
[[ "$burners" =~ ^[0-9]+$ ]] || { echo "-b: a count" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rwsplit-ci-load.XXXXXX")
burner_pids=()
cleanup() {
  local p
  for p in "${burner_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${burner_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((keep)); then echo "kept clones in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ((i = 0; i < burners; i++)); do
  sh -c 'while :; do :; done' &
  burner_pids+=("$!")
done
echo "== $burners CPU burners: pids ${burner_pids[*]:-none}"

unset CARGO_TARGET_DIR
if [ -n "$shared" ]; then
  mkdir -p "$shared"
  export CARGO_TARGET_DIR
  CARGO_TARGET_DIR=$(cd "$shared" && pwd)
  echo "== shared target dir: $CARGO_TARGET_DIR"
fi
results=()
failures=0
for ((run = 1; run <= runs; run++)); do
  clone="$work/run$run"
  git clone -q --no-hardlinks "$repo" "$clone"
  echo "== run $run/$runs: $cmd in $clone ($(git -C "$clone" rev-parse --short HEAD))"
  start=$SECONDS
  set +e
  (cd "$clone" && CI=true bash -c "$cmd") >"$work/run$run.log" 2>&1
  rc=$?
  set -e
  took=$((SECONDS - start))
  if ((rc == 0)); then verdict=ok; else verdict="FAILED (exit $rc)"; failures=$((failures + 1)); fi
  results+=("run $run: $((took / 60))m$((took % 60))s $verdict")
  echo "== ${results[-1]} (log: $work/run$run.log)"
  if ((rc != 0)); then
    tail -n 40 "$work/run$run.log"
    keep=1
  fi
  # A clone's build output is large: drop it once the run is over (logs stay).
  if ((keep == 0)); then rm -rf "$clone"; fi
done

echo "== summary ($burners burners)"
printf '   %s\n' "${results[@]}"
((failures == 0))
