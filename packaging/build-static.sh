#!/usr/bin/env bash
# The static binary for small systems: musl, opt-level "z", LTO, panic=abort (the
# release profile), no unwind tables and non-PIE (.cargo/config.toml). Built with the
# stable toolchain alone. Prints the binary's path on stdout (the build log goes to
# stderr).
#
# Usage: packaging/build-static.sh [--minimal] [--build-std]
#   --minimal    no default features: DHCPv4/DHCPv6 on plain interfaces, without the
#                bond, Wi-Fi, CNI, hooks, import and demo (README, "Cargo features")
#   --build-std  the older, smaller route: std rebuilt with panic=immediate-abort. Not
#                stable: needs the rust-src component and sets RUSTC_BOOTSTRAP=1, which
#                lets the stable compiler take nightly flags. Opt-in only.
#
# Needs the musl target (`rustup target add x86_64-unknown-linux-musl`; added when
# missing).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
minimal=0
build_std=0
for a in "$@"; do
  case "$a" in
    --minimal) minimal=1 ;;
    --build-std) build_std=1 ;;
    *) echo "build-static.sh: unknown option $a (use --minimal, --build-std)" >&2; exit 2 ;;
  esac
done
target=x86_64-unknown-linux-musl
rustup target list --installed 2>/dev/null | grep -q "^$target" || rustup target add "$target" >&2
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
features=()
# Its own target dir: the full and minimal builds would otherwise rebuild each other.
[ "$minimal" = 1 ] && { features=(--no-default-features); target_dir="$target_dir/minimal"; }
if [ "$build_std" = 1 ]; then
  rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src >&2
  # A separate target dir: std built this way must not mix with the ordinary builds.
  export CARGO_TARGET_DIR="$target_dir/static"
  RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Crelocation-model=static -Ctarget-feature=+crt-static" \
    cargo build --release --bin netbond --target "$target" "${features[@]}" -Z build-std=std,panic_abort >&2
else
  export CARGO_TARGET_DIR="$target_dir"
  cargo build --release --bin netbond --target "$target" "${features[@]}" >&2
fi
echo "$CARGO_TARGET_DIR/$target/release/netbond"
