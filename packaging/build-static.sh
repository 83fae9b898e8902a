#!/usr/bin/env bash
# The small static binary for embedded systems: musl, std rebuilt with
# panic=immediate-abort (no unwinding or panic formatting machinery), no unwind tables,
# non-PIE, opt-level "z" (the release profile). About 1.7 MB; prints its path.
#
# Needs the musl target and the rust-src component of the installed toolchain
# (`rustup target add x86_64-unknown-linux-musl; rustup component add rust-src`).
# -Z build-std is not stable: RUSTC_BOOTSTRAP=1 lets the stable compiler take it. Without
# rust-src it falls back to a plain musl build (about 2.5 MB).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target=x86_64-unknown-linux-musl
rustup target list --installed 2>/dev/null | grep -q "^$target" || rustup target add "$target" >&2
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
if rustup component list --installed 2>/dev/null | grep -q '^rust-src' \
   || rustup component add rust-src >&2; then
  # A separate target dir: std built this way must not mix with the ordinary builds.
  export CARGO_TARGET_DIR="$target_dir/static"
  RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Crelocation-model=static -Ctarget-feature=+crt-static" \
    cargo build --release --bin netbond --target "$target" -Z build-std=std,panic_abort >&2
else
  echo "build-static.sh: no rust-src; plain musl build (larger)" >&2
  export CARGO_TARGET_DIR="$target_dir"
  cargo build --release --bin netbond --target "$target" >&2
fi
echo "$CARGO_TARGET_DIR/$target/release/netbond"
