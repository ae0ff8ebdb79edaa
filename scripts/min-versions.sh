#!/usr/bin/env bash
# Checks that Cargo.toml's version requirements are honest: builds the library with every direct
# (normal, non-dev) dependency downgraded to the lowest version its requirement allows
# (`cargo update -p NAME@CURRENT --precise X.Y.Z`, "0.9" meaning 0.9.0), then
# `cargo check --all-features --lib`. Works on the lock file in place and restores it on exit,
# whatever happens. A failure means a requirement is lower than what the code (or the rest of
# the dependency graph) needs: raise it in Cargo.toml.
#
#   scripts/min-versions.sh           # downgrade all direct dependencies, check
#   scripts/min-versions.sh --list    # only print NAME@CURRENT -> MINIMUM
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

saved=$(mktemp "${TMPDIR:-/tmp}/rwsplit-lock.XXXXXX")
cp Cargo.lock "$saved"
restore() {
  cp "$saved" Cargo.lock
  rm -f "$saved"
}
trap restore EXIT

# NAME@CURRENT MINIMUM, one line per direct dependency of the rwsplit package.
prog=$(cat <<'PY'
import json, re, sys
meta = json.load(sys.stdin)
root = next(p for p in meta["packages"] if p["name"] == "rwsplit")
pkgs = {p["id"]: p for p in meta["packages"]}
node = next(n for n in meta["resolve"]["nodes"] if n["id"] == root["id"])
current = {}
for d in node["deps"]:
    if any(k["kind"] is None for k in d["dep_kinds"]):
        p = pkgs[d["pkg"]]
        current[p["name"]] = p["version"]
seen = set()
for dep in root["dependencies"]:
    if dep["kind"] is not None or dep["name"] in seen:
        continue
    seen.add(dep["name"])
    req = dep["req"]
    m = re.fullmatch(r"\^?=?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", req)
    if not m:
        sys.exit(f"{dep['name']}: cannot take the minimum of requirement {req!r}")
    minimum = ".".join(x or "0" for x in m.groups())
    if dep["name"] not in current:
        sys.exit(f"{dep['name']}: not in the resolved graph (a feature missing?)")
    print(f"{dep['name']}@{current[dep['name']]} {minimum}")
PY
)
mapfile -t plan < <(cargo metadata --format-version 1 --locked --all-features | python3 -c "$prog")
((${#plan[@]})) || { echo "no direct dependencies found" >&2; exit 1; }

for line in "${plan[@]}"; do
  read -r spec minimum <<<"$line"
  echo "-- ${spec} -> ${minimum}"
  [[ "${1:-}" == --list ]] && continue
  if [[ "${spec#*@}" != "$minimum" ]]; then
    cargo update -q -p "$spec" --precise "$minimum"
  fi
done
[[ "${1:-}" == --list ]] && exit 0
echo "-- cargo check --all-features --lib with the minimum versions"
cargo check --all-features --lib
echo "-- every direct dependency builds at its declared minimum"
