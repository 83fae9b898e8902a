#!/usr/bin/env bash
# The full test suite: unit tests (proto engines, daemon modules), the network
# namespace tier against real dnsmasq, and the VM tier with a real kernel bond.
# Run as root on Debian/Ubuntu: it installs what the tiers need when missing.
# Usage: integration/test.sh            (everything)
#        integration/test.sh --no-vm    (skip nothing silently: the VM tier is simply
#                                        not run, and the script says so)
set -euo pipefail
cd "$(dirname "$0")/.."

want_vm=1
for a in "$@"; do
  case "$a" in
    --no-vm) want_vm=0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "integration/test.sh: the netns and VM tiers need root (network namespaces, raw sockets); run it with sudo" >&2
  exit 1
fi

# Packages the tiers need (Debian names).
need=()
command -v ip >/dev/null        || need+=(iproute2)
command -v dnsmasq >/dev/null   || need+=(dnsmasq-base)
command -v nft >/dev/null       || need+=(nftables)
command -v tcpdump >/dev/null   || need+=(tcpdump)
# The CNI tests: Debian's stock main plugins (bridge, macvlan) call netbond as IPAM,
# against dnsmasq and Kea (short leases);
# python3-yaml validates the Kubernetes manifests.
[ -x /usr/lib/cni/macvlan ]     || need+=(containernetworking-plugins)
command -v kea-dhcp4 >/dev/null || need+=(kea-dhcp4-server)
# Prefix delegation (netns/fallback.rs): dnsmasq cannot delegate prefixes.
command -v kea-dhcp6 >/dev/null || need+=(kea-dhcp6-server)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# podman on a netbond network: runc (crun cannot run on this kind of host) and a
# static busybox as the container's root file system.
command -v podman >/dev/null    || need+=(podman)
[ -x /usr/sbin/runc ]           || need+=(runc)
[ -x /bin/busybox ]             || need+=(busybox-static)
if [ "$want_vm" = 1 ]; then
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v depmod >/dev/null             || need+=(kmod)
  # The VM's initramfs needs a static busybox.
  { command -v busybox >/dev/null && ! ldd "$(command -v busybox)" >/dev/null 2>&1; } || need+=(busybox-static)
  command -v xz >/dev/null                 || need+=(xz-utils)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian enables Kea's services at install: a DHCP server must never run in the
  # root namespace (the tests start their own inside a namespace).
  if [[ " ${need[*]} " == *" kea-dhcp"* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now kea-dhcp4-server.service kea-dhcp6-server.service >/dev/null 2>&1 || true
  fi
fi
# cargo-deb (not packaged by Debian 12): the VM tier's vm_systemd test builds the .deb
# with it. ~1.5 min to compile once on 2 cores; later runs find it in ~/.cargo/bin.
if [ "$want_vm" = 1 ] && ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb"
  cargo install cargo-deb --locked --quiet
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Fuzz smoke: every cargo-fuzz target for a bounded time, so they cannot rot. The long
# runs and their figures are in fuzz/README.md.
command -v c++ >/dev/null || { apt-get install -y -qq g++ >/dev/null; }
bash fuzz/run-smoke.sh "${NETBOND_FUZZ_SECS:-15}"

# Benchmark smoke: one iteration of each measurement against the peers, so the
# harness cannot rot. Not a pass/fail on the numbers (see integration/bench/README.md).
if [ -x integration/bench/run.sh ]; then
  integration/bench/run.sh --smoke
fi

# Last, so its summary closes the output: unit tests, the netns tier, the hostile
# server tier, and (unless --no-vm) the VM tier with a real kernel bond and Wi-Fi.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [ "$want_vm" = 1 ]; then
  cargo test --workspace 2>&1 | tee "$log"
else
  echo "integration/test.sh: --no-vm: the VM tier (tests/vm) is not run"
  cargo test --workspace -- --skip vm_ 2>&1 | tee "$log"
fi
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
