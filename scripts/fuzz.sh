#!/usr/bin/env bash
# fuzz.sh [--smoke] SECONDS [TARGET...]: runs the libFuzzer targets of fuzz/ for SECONDS each
# (all targets by default), starting from the committed seeds (fuzz/seeds/TARGET) and growing
# fuzz/corpus/TARGET, which stays out of git (not with --smoke). Crashes, timeouts, out-of-
# memory and leaks land in fuzz/artifacts/TARGET/ and fail the run: add them to
# fuzz/regressions/TARGET/ so the test suite replays them forever.
# Long runs build optimized with AddressSanitizer. --smoke (the test suite's bounded run)
# builds unoptimized without a sanitizer: it compiles in 3 minutes instead of 10, and in 20 s
# it runs as many inputs (the parsers are safe Rust; the debug build checks overflows).
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
build=()
# Where new inputs go: the committed corpus, except in a smoke run, which reads it and
# writes what it finds to a scratch directory, leaving the checkout as it was.
scratch=""
if [ "${1:-}" = "--smoke" ]; then
  build=(--dev --sanitizer none)
  scratch=$(mktemp -d /tmp/sealer-fuzz.XXXXXX)
  shift
fi
seconds=${1:?usage: fuzz.sh [--smoke] SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kubefile clusterfile kubeversion)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
marker=$(mktemp /tmp/sealer-fuzz-start.XXXXXX)
trap 'rm -rf "$marker" ${scratch:+"$scratch"}' EXIT
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # New inputs go to the first directory; the others are read.
  dirs=("corpus/$t" "seeds/$t")
  [ -z "$scratch" ] || { mkdir -p "$scratch/$t"; dirs=("$scratch/$t" "corpus/$t" "seeds/$t"); }
  touch "$marker"
  # A slow input is a finding (timeout-*), and so is one that needs too much memory (oom-*).
  RUSTC_BOOTSTRAP=1 cargo fuzz run "${build[@]}" "$t" "${dirs[@]}" -- -max_total_time="$seconds" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY)' || true
  # The run above stops with a non-zero status on a finding; what it found, this run, is
  # what counts (older artifacts are someone's earlier work).
  found=$(find "artifacts/$t" -newer "$marker" -type f \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  if [ -n "$found" ]; then
    echo "fuzz target $t found inputs that fail: $found" >&2
    exit 1
  fi
done
