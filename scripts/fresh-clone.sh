#!/usr/bin/env bash
# Proves the README's quick start from a fresh clone: clones this repository's HEAD into a
# scratch directory and runs the first command of the README's `## Quick start` block there,
# exactly as written. (The second command is the test suite itself, which .ci/run runs on a
# fresh clone; tests/it/readme.rs checks that the two stay the same.)
set -euo pipefail
cd "$(dirname "$0")/.."

# The first fenced block after `## Quick start`: its command lines, comments stripped.
commands=$(awk '
  /^## Quick start/ { section = 1; next }
  section && /^```/ { if (inside) exit; inside = 1; next }
  inside { sub(/[ \t]+#.*$/, ""); if ($0 != "") print }
' README.md)
[ "$(printf '%s\n' "$commands" | wc -l)" -eq 2 ] || {
  echo "fresh-clone: the README's Quick start block must hold exactly two commands, found:" >&2
  printf '%s\n' "$commands" >&2
  exit 1
}
quickstart=$(printf '%s\n' "$commands" | head -n 1)

scratch=$(mktemp -d /tmp/sealer-fresh-clone.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# The checkout may belong to another user than the one running CI (git's ownership check).
git -c safe.directory='*' clone --quiet --no-hardlinks "$PWD" "$scratch/sealer"
cd "$scratch/sealer"
# A newcomer has neither: the quickstart builds this clone's sealer.
unset SEALER_BIN
if installed=$(command -v sealer); then
  echo "fresh-clone: note: the quickstart will use $installed (on PATH) instead of building" >&2
fi
echo "fresh-clone: running \`$quickstart\` in a fresh clone ($scratch/sealer)" >&2
bash -c "$quickstart"
