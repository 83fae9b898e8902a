#!/usr/bin/env bash
# Fuzz smoke test for CI: build every target and run each for a bounded time; fail on
# any crash, panic, timeout or out-of-memory. Usage: fuzz/run-smoke.sh [seconds-per-target]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`), a C++ compiler (libFuzzer is
# built from source by libfuzzer-sys) and python3 (builds the corpus from seeds/). Works
# on a stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${1:-20}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
# SANITIZER=address for ASan + LeakSanitizer (about 15x slower); default none: the
# fuzzed code is safe Rust, and overflow checks and debug assertions stay on.
sanitizer=${SANITIZER:-none}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
[ -d corpus ] || python3 make-corpus.py >/dev/null
targets=$(cargo fuzz list --fuzz-dir .)
cargo fuzz build --fuzz-dir . -s "$sanitizer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
  mkdir -p "$work/$t" "$here/artifacts-found/$t"
  echo "== fuzz $t for ${secs}s"
  if cargo fuzz run --fuzz-dir . -s "$sanitizer" "$t" "$work/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$here/artifacts-found/$t/" -print_final_stats=1 \
      >"$work/$t.log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done" "$work/$t.log" || true
  else
    echo "!! $t FAILED; log tail:"
    tail -n 60 "$work/$t.log"
    failed+=("$t")
  fi
  rmdir "$here/artifacts-found/$t" 2>/dev/null || true
done
rmdir "$here/artifacts-found" 2>/dev/null || true
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: crashes in: ${failed[*]} (reproducers in fuzz/artifacts-found/)"
  echo "fuzz: $(( $(echo $targets | wc -w) - ${#failed[@]} )) passed, ${#failed[@]} failed"
  exit 1
fi
n=$(echo $targets | wc -w)
echo "fuzz: $n passed, 0 failed"
