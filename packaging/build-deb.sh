#!/bin/sh
# packaging/build-deb.sh [--binary PATH] [--deb-version V] [--fast] [-o OUT]
# Builds the Debian package with cargo-deb (metadata: [package.metadata.deb] in
# Cargo.toml): the binary, then the man page from its --help (packaging/man.sh),
# then `cargo deb`. Needs cargo-deb: `cargo install cargo-deb --locked`.
#   --binary PATH   package this netbond binary instead of building a release one
#                   (the VM test packages its debug build: no release build in CI)
#   --deb-version   e.g. 0.1.0-2 (default: the crate version, revision 1)
#   --fast          quicker, larger compression (tests)
#   -o OUT          output .deb file or directory [target/debian/]
set -eu
binary= debver= out= fast=
while [ $# -gt 0 ]; do case "$1" in
  --binary) binary=$2; shift 2 ;;
  --deb-version) debver=$2; shift 2 ;;
  --fast) fast=1; shift ;;
  -o|--output) out=$2; shift 2 ;;
  *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
esac; done
# paths given relative to the caller's directory
[ -n "$binary" ] && binary=$(readlink -f "$binary")
[ -n "$out" ] && out=$(readlink -m "$out")
cd "$(dirname "$0")/.."
cargo deb --version >/dev/null 2>&1 || {
  echo "build-deb.sh: cargo-deb is not installed: cargo install cargo-deb --locked" >&2; exit 1; }
if [ -n "$binary" ]; then
  # cargo-deb takes the binary from <target dir>/release/: stage it in a scratch one.
  [ -x "$binary" ] || { echo "build-deb.sh: $binary is not an executable" >&2; exit 1; }
  stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
  mkdir "$stage/release" && cp "$binary" "$stage/release/netbond"
  # A debug build is ~80 MB with its debug info; stripped like a release build it is
  # ~12 MB (dpkg under TCG spends ~20 s decompressing the unstripped one).
  strip --strip-debug "$stage/release/netbond" 2>/dev/null || true
  export CARGO_TARGET_DIR="$stage"
  bin=$stage/release/netbond
else
  cargo build --release -p netbond
  bin=${CARGO_TARGET_DIR:-target}/release/netbond
fi
# The man page goes where the [package.metadata.deb] assets expect it.
mkdir -p target/man
packaging/man.sh "$bin" | gzip -9n > target/man/netbond.8.gz
set -- --no-build
[ -n "$debver" ] && set -- "$@" --deb-version "$debver"
[ -n "$out" ] && set -- "$@" --output "$out"
[ -n "$fast" ] && set -- "$@" --fast
cargo deb -p netbond "$@"
