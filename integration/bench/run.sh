#!/usr/bin/env bash
# netbond benchmark: netbond against dhclient, dhcpcd, busybox udhcpc and WIDE dhcp6c in
# network namespaces with dnsmasq. Writes integration/bench/results.md (with --smoke:
# results-smoke.md) and prints it.
#
# Usage: integration/bench/run.sh [--runs N] [--smoke] [--scale-max N] [--only LIST]
#                                 [--musl | --no-musl] [--keep]
#   --runs N       runs per client and test (default 10; dhcpcd's default config, the
#                  MAC-change peers, RSS and scale use fewer: see the report)
#   --smoke        1 run each, 5 s idle window, 5 s MAC-change cap, scale up to 16,
#                  no musl build: for CI (the benchmark is not pass/fail on targets)
#   --scale-max N  largest N for the scale test (1, 16, 64, 256, 1024; default 1024,
#                  smoke 16)
#   --scale-runs N runs per N and client in the scale test (default 5; smoke 1)
#   --scale-server kea | dnsmasq-mem | dnsmasq   the scale test's server (default kea,
#                  installed when missing; dnsmasq-mem = dnsmasq without a lease file)
#   --only LIST    comma list of cold4,cold6,mac,rss,idle,scale,size,failover (failover:
#                  one QEMU VM, integration/vm/run-vm.sh; `--only failover` alone writes
#                  results-failover.md / results-failover-smoke.md instead)
#   --musl         build the static musl binaries (full and minimal features) even
#                  with --smoke; --no-musl: never
#   --keep         keep the work directory (client logs, dnsmasq logs)
#
# Exit status: 0 when the harness ran, whatever the numbers; non-zero when something is
# broken (netbond crashed, exited non-zero, or never bound; the lab could not be built).
# Needs root (network namespaces). Installs the peers from Debian when missing.
# Network safety: every client and server runs in namespaces made here and deleted on
# exit; nothing runs in, or changes, the root namespace (failover: inside a QEMU VM that
# has no network device at all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

runs=10
smoke=0
musl=auto
only=size
only_set=0
pyargs=()
cmdline="integration/bench/run.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --smoke) smoke=1; shift ;;
    --scale-max) pyargs+=(--scale-max "$2"); shift 2 ;;
    --scale-max=*) pyargs+=(--scale-max "${1#*=}"); shift ;;
    --scale-runs) pyargs+=(--scale-runs "$2"); shift 2 ;;
    --scale-server) pyargs+=(--scale-server "$2"); shift 2 ;;
    --only) only="$2"; only_set=1; pyargs+=(--only "$2"); shift 2 ;;
    --only=*) only="${1#*=}"; only_set=1; pyargs+=(--only "$only"); shift ;;
    --musl) musl=1; shift ;;
    --no-musl) musl=0; shift ;;
    --keep) pyargs+=(--keep); shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
# the musl build only feeds item 7 (size)
[ "$musl" = auto ] && [[ ",$only," != *,size,* ]] && musl=0
[ "$musl" = auto ] && { [ "$smoke" = 1 ] && musl=0 || musl=1; }

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: needs root (network namespaces, raw sockets): sudo $0 ..." >&2
  exit 1
fi

# ------------------------------------------------------------------ packages (Debian)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
need=()
command -v ip >/dev/null        || need+=(iproute2)
command -v dnsmasq >/dev/null   || need+=(dnsmasq-base)
command -v nft >/dev/null       || need+=(nftables)
command -v nsenter >/dev/null   || need+=(util-linux)
command -v python3 >/dev/null   || need+=(python3)
peers=()
command -v dhclient >/dev/null  || peers+=(isc-dhcp-client)
command -v busybox >/dev/null   || peers+=(busybox-static)
command -v dhcp6c >/dev/null    || peers+=(wide-dhcpv6-client)
if ! command -v dhcpcd >/dev/null; then
  # dhcpcd-base has the binary without a system service; older releases: dhcpcd5.
  peers+=(dhcpcd-base)
fi
# The scale item's server (Kea, built for load) and the server's own load generator
# (perfdhcp, in kea-admin), which measures the server's capacity in the same run.
if [ "$only_set" = 0 ] || [[ ",$only," == *,scale,* ]]; then
  command -v kea-dhcp4 >/dev/null || [ -x /usr/sbin/kea-dhcp4 ] || peers+=(kea-dhcp4-server)
  command -v perfdhcp >/dev/null || [ -x /usr/sbin/perfdhcp ] || peers+=(kea-admin)
fi
if [ ${#need[@]} -gt 0 ] || [ ${#peers[@]} -gt 0 ]; then
  echo "run.sh: installing: ${need[*]} ${peers[*]}" >&2
  # Keep package scripts from starting any service (a DHCP client in the root namespace).
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  apt-get update -qq
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  for p in "${peers[@]}"; do
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 \
      || { [ "$p" = dhcpcd-base ] && apt-get install -y -qq --no-install-recommends dhcpcd5 >/dev/null 2>&1; } \
      || echo "run.sh: could not install $p: its rows will say 'not installed'" >&2
  done
  [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  # The package enables its own service (serving nothing with its stock config): the
  # benchmark only ever runs kea-dhcp4 inside its namespaces.
  if [[ " ${peers[*]} " == *" kea-dhcp4-server "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now kea-dhcp4-server.service >/dev/null 2>&1 || true
  fi
fi

# ------------------------------------------------------------------------ build
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
t0=$(date +%s)
echo "run.sh: cargo build --release" >&2
cargo build --release --bin netbond >&2
bin="$target_dir/release/netbond"
musl_args=()
if [ "$musl" = 1 ]; then
  echo "run.sh: packaging/build-static.sh, full and --minimal (static musl, stable toolchain)" >&2
  if static_bin="$("$repo/packaging/build-static.sh" 2> >(tee /tmp/netbond-bench-musl.$$.log >&2))" &&
     min_bin="$("$repo/packaging/build-static.sh" --minimal 2> >(tee -a /tmp/netbond-bench-musl.$$.log >&2))"; then
    musl_args=(--musl-bin "$static_bin" --musl-min-bin "$min_bin")
  else
    why="$(grep -m1 -A1 '^error' /tmp/netbond-bench-musl.$$.log 2>/dev/null | tr -s ' \n' ' ' | tr '|`' '  ' | cut -c1-160)"
    musl_args=(--musl-note "static build failed: ${why:-see the build log}")
  fi
  rm -f /tmp/netbond-bench-musl.$$.log
else
  musl_args=(--musl-note "not built in this run (--smoke or --no-musl; run without --smoke)")
fi
echo "run.sh: build took $(( $(date +%s) - t0 )) s" >&2

# ------------------------------------------------------------------------ run
prefix="nbb$$"
cleanup() {
  # Namespaces (and what runs in them) made by this run only.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git_rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD -- src proto Cargo.toml 2>/dev/null || git_rev="$git_rev + uncommitted changes"
[ "$smoke" = 1 ] && pyargs+=(--smoke)
python3 "$here/bench.py" --bin "$bin" "${musl_args[@]}" --runs "$runs" --prefix "$prefix" \
  --cmdline "$cmdline" --git "commit $git_rev" "${pyargs[@]}"
