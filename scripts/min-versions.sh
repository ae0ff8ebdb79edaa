#!/usr/bin/env bash
# Checks that Cargo.toml's version requirements are honest: builds the library with every direct
# (normal, non-dev) dependency at the lowest version its requirement allows ("0.9" means 0.9.0,
# "0.1.41" means 0.1.41), then `cargo check --all-features --lib`.
#
# How: a scratch copy of the library package (manifest, lock file, src/), outside the workspace
# and without dev-dependencies or tool targets, whose requirements are pinned to `=MINIMUM`; the
# copied lock file is re-resolved from there (cargo changes only what the pins force, e.g. the
# futures crates that pin each other), so it is the lock file of this repository with the
# direct dependencies downgraded. The repository's own Cargo.lock is never touched. The build
# reuses the repository's target dir. A failure means a requirement is lower than what the code,
# or the rest of the dependency graph, needs: raise it in Cargo.toml.
#
#   scripts/min-versions.sh           # resolve at the minimums, print them, cargo check
#   scripts/min-versions.sh --list    # only print each direct dependency and its minimum
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/rwsplit-min-versions.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cp Cargo.toml Cargo.lock "$scratch/"
cp -R src "$scratch/src"
# Files the crate includes from its root (README for docs), if any.
for f in README.md LICENSE-MIT LICENSE-APACHE; do [[ -f $f ]] && cp "$f" "$scratch/"; done

# Rewrites the scratch manifest: [dependencies] pinned to =MINIMUM, everything else that is not
# the library itself dropped. Prints NAME MINIMUM per direct dependency.
python3 - "$scratch/Cargo.toml" <<'PY'
import re, sys, tomllib

path = sys.argv[1]
text = open(path).read()
manifest = tomllib.loads(text)

def minimum(name, req):
    m = re.fullmatch(r"\^?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", req.strip())
    if not m:
        sys.exit(f"{name}: cannot take the minimum of requirement {req!r}")
    return ".".join(x or "0" for x in m.groups())

out, section, pins = [], None, []
for line in text.splitlines():
    header = re.match(r"^\s*\[\[?([^\]]+)\]\]?\s*$", line)
    if header:
        section = header.group(1).strip()
    keep = section in (None, "package", "features", "dependencies", "lib")
    if not keep:
        continue
    if section == "dependencies" and not header:
        m = re.match(r'^(\s*([A-Za-z0-9_-]+)\s*=\s*)(\{.*\bversion\s*=\s*"([^"]+)".*\}|"([^"]+)")\s*$', line)
        if m:
            name, req = m.group(2), m.group(4) or m.group(5)
            low = minimum(name, req)
            pins.append((name, low))
            line = line.replace(f'"{req}"', f'"={low}"', 1)
    out.append(line)

declared = set(manifest.get("dependencies", {}))
found = {n for n, _ in pins}
if declared != found:
    sys.exit(f"could not rewrite the requirements of: {sorted(declared - found)}")
out += ["", "[workspace]", ""]
open(path, "w").write("\n".join(out))
for name, low in pins:
    print(name, low)
PY
if [[ "${1:-}" == --list ]]; then exit 0; fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cd "$scratch"
echo "-- resolving with the direct dependencies at their minimums (changes to the lock file):"
cargo update --workspace 2>&1 | grep -E '^\s*Downgrading ' || true
echo "-- direct dependencies as resolved:"
cargo tree -e normal --depth 1 --all-features --prefix none | tail -n +2 | sort -u | sed 's/^/   /'
echo "-- cargo check --all-features --lib"
cargo check --all-features --lib
echo "-- every direct dependency builds at its declared minimum"
