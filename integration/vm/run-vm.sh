#!/bin/bash
# integration/vm/run-vm.sh — run ONE guest script inside a throwaway QEMU VM that
# boots Debian's stock kernel (linux-image-amd64: bonding, veth, bridge,
# mac80211_hwsim, 9p and overlay as modules), with this host's / shared
# read-only over 9p (a tmpfs overlay on top: the guest may write anywhere,
# nothing reaches the host) and one writable 9p share for the results.
#
# usage: integration/vm/run-vm.sh [--kvm|--tcg] [--systemd] [--verbose] GUEST_SCRIPT [ARGS...]
#
# --systemd (or NETBOND_VM_SYSTEMD=1): boot the guest with systemd as PID 1 (the
#   host's systemd, over the same 9p root + tmpfs overlay). The guest's stage 2
#   removes /.dockerenv from the overlay (else systemd believes it runs in a
#   container), links tmpfiles.d/tmp.conf to /dev/null (tmpfiles would clean /tmp),
#   masks the slow boot units and every generator, keeps the journal in /run, and
#   boots nbvm.target, which starts nbvm-test.service: the guest script, its output
#   on the console and in guest.log, then an immediate poweroff.
#
# env:
#   NETBOND_BIN        netbond binary to test; must be visible on the host's /.
#                      Exported to the guest (absolute path) as NETBOND_BIN.
#   NETBOND_VM_CACHE   kernel/initramfs cache    [/var/tmp/netbond-vm]
#   NETBOND_VM_OUT     results dir (writable share, same path in the guest,
#                      exported there as NETBOND_VM_OUT)  [fresh mktemp dir]
#   NETBOND_VM_ACCEL   auto|kvm|tcg               [auto: KVM only if /dev/kvm is
#                      usable and is not PVM; a KVM guest that does not boot is
#                      retried once with TCG]
#   NETBOND_VM_TIMEOUT whole-run limit in s      [900]
#   NETBOND_VM_BOOT_TIMEOUT  limit until the guest script starts, in s [120]
#   NETBOND_VM_MEM     [1G]     NETBOND_VM_KPKG  kernel meta package [linux-image-amd64]
#   NETBOND_VM_NO_APT=1  never apt-get install missing host packages (fail instead)
#   Any variable named NETBOND_GUEST_* and RUST_LOG are passed to the guest too.
#
# Output: the guest console (the script's stdout+stderr) streams to our stdout;
# it is also saved as $NETBOND_VM_OUT/guest.log. Exit code: the guest script's;
# 125 if the VM could not be prepared or booted (never a silent skip); 2 on usage.
#
# Host needs (installed with apt-get when missing, as root): qemu-system-x86,
# kmod (depmod, modprobe), busybox-static, xz-utils, and for the guest scripts,
# which run the host's own userland: iproute2, dnsmasq-base, tcpdump (optional), and
# whatever the guest script lists on a '# vm-host-tools: CMD=PKG ...' line.
{ # one block: bash parses the whole script before running it (safe to edit during a run)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
CACHE=${NETBOND_VM_CACHE:-/var/tmp/netbond-vm}
KPKG=${NETBOND_VM_KPKG:-linux-image-amd64}   # NOT linux-image-cloud-amd64: no hwsim, no 9p
ACCEL=${NETBOND_VM_ACCEL:-auto}
MEM=${NETBOND_VM_MEM:-1G}
VERBOSE=0
SYSTEMD=${NETBOND_VM_SYSTEMD:-0}
log() { echo "[run-vm] $*" >&2; }
die() { echo "[run-vm] ERROR: $*" >&2; exit 125; }

while [ $# -gt 0 ]; do case "$1" in
  --kvm) ACCEL=kvm; shift ;; --tcg) ACCEL=tcg; shift ;;
  --verbose) VERBOSE=1; shift ;;
  --systemd) SYSTEMD=1; shift ;;
  -h|--help) sed -n '2,30p' "$SELF"; exit 0 ;;
  --) shift; break ;;
  -*) echo "unknown option $1" >&2; exit 2 ;;
  *) break ;; esac; done
[ $# -ge 1 ] || { echo "usage: $0 [--kvm|--tcg] [--systemd] [--verbose] GUEST_SCRIPT [ARGS...]" >&2; exit 2; }
SCRIPT=$(readlink -f "$1"); shift
[ -r "$SCRIPT" ] || { echo "no such guest script: $1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, 9p passthrough of /, netns in the guest)"
case "$ACCEL" in auto|kvm|tcg) ;; *) die "NETBOND_VM_ACCEL must be auto, kvm or tcg" ;; esac
if [ -n "${NETBOND_BIN:-}" ]; then
  NETBOND_BIN=$(readlink -f "$NETBOND_BIN")
  [ -x "$NETBOND_BIN" ] || die "NETBOND_BIN=$NETBOND_BIN is not an executable file"
fi

# ---- 1. host prerequisites (idempotent) ----------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v depmod >/dev/null             || need+=(kmod)
# static: it is the initramfs's only binary (a dynamic busybox would find no libc there)
{ command -v busybox >/dev/null && ! ldd "$(command -v busybox)" >/dev/null 2>&1 \
  && busybox --list 2>/dev/null | grep -qx udhcpc; } || need+=(busybox-static)
command -v xz >/dev/null                 || need+=(xz-utils)
command -v ip >/dev/null                 || need+=(iproute2)
command -v dnsmasq >/dev/null            || need+=(dnsmasq-base)   # -base: no host service
[ "$SYSTEMD" = 1 ] && { [ -x /lib/systemd/systemd ] || need+=(systemd); }
[ -e /usr/share/qemu/qboot.rom ] || [ -e /usr/share/seabios/qboot.rom ] || need+=(qemu-system-data)
# More host tools a guest script declares with a line '# vm-host-tools: CMD=PKG ...'
# (e.g. wifi.sh: hostapd=hostapd wpa_supplicant=wpasupplicant iw=iw).
for d in $(sed -n 's/^# vm-host-tools:[[:space:]]*//p' "$SCRIPT"); do
  c=${d%%=*}; p=${d#*=}
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || [ -x "/sbin/$c" ] \
    || [[ " ${need[*]} " == *" $p "* ]] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "${NETBOND_VM_NO_APT:-0}" = 1 ] && die "missing host packages: ${need[*]} (NETBOND_VM_NO_APT=1)"
  log "installing ${need[*]}"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
    || die "apt-get install ${need[*]} failed"
fi
QBOOT=/usr/share/qemu/qboot.rom; [ -e $QBOOT ] || QBOOT=/usr/share/seabios/qboot.rom
BUSYBOX=$(command -v busybox)

# ---- 2. kernel + initramfs in the cache (under a lock; reused by later runs) ---
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
KDIR=$CACHE/kernel
KIMG=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$KIMG" ]; then
  mkdir -p "$CACHE/debs"
  kpkg_of() { apt-cache depends "$KPKG" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  KVER_PKG=$(kpkg_of)
  if [ -z "$KVER_PKG" ]; then apt-get update -qq >&2 || true; KVER_PKG=$(kpkg_of); fi
  [ -n "$KVER_PKG" ] || die "cannot resolve $KPKG to a versioned kernel package (apt-cache depends)"
  log "downloading $KVER_PKG (~70 MB, once) into $CACHE"
  ( cd "$CACHE/debs" && apt-get download "$KVER_PKG" >&2 ) || die "apt-get download $KVER_PKG failed"
  rm -rf "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
  dpkg -x "$CACHE"/debs/"$KVER_PKG"_*.deb "$KDIR.tmp" || die "dpkg -x failed"
  rm -f "$CACHE"/debs/"$KVER_PKG"_*.deb
  rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
  KIMG=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
fi
KVER=${KIMG##*/vmlinuz-}
MODDIR=$KDIR/lib/modules/$KVER
[ -s "$MODDIR/modules.dep" ] || depmod -a -b "$KDIR" "$KVER" || die "depmod failed"  # the .deb has no modules.dep

# Uncompressed vmlinux => QEMU takes the PVH entry point: no real-mode setup and no
# in-guest XZ decompression (seconds under TCG). Falls back to the bzImage.
VMLINUX=$CACHE/vmlinux-$KVER
if [ ! -s "$VMLINUX" ]; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KIMG" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$KIMG" | xz -dcq > "$VMLINUX.tmp" 2>/dev/null || true  # trailing data => xz rc!=0
    if [ "$(head -c4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
      mv "$VMLINUX.tmp" "$VMLINUX"
    else rm -f "$VMLINUX.tmp"; fi
  fi
fi
if [ -s "$VMLINUX" ]; then BOOTK=$VMLINUX; else BOOTK=$KIMG; log "no vmlinux extracted; booting the bzImage (slower)"; fi

INITRD=$CACHE/initramfs-$KVER.cpio
if [ ! -s "$INITRD" ] || [ "$SELF" -nt "$INITRD" ] || [ "$BUSYBOX" -nt "$INITRD" ]; then
  T=$(mktemp -d)
  mkdir -p "$T"/{bin,dev,proc,sys,mnt,mod,newroot}
  cp "$BUSYBOX" "$T/bin/busybox"
  for a in sh mount insmod mkdir cat ln cp switch_root poweroff echo; do ln -s busybox "$T/bin/$a"; done
  for m in virtio_pci virtio_mmio 9pnet_virtio 9p overlay; do
    modprobe -d "$KDIR" -S "$KVER" --show-depends "$m"
  done | awk '$1=="insmod"{print $2}' | awk '!s[$0]++' > "$T/list"
  [ -s "$T/list" ] || die "modprobe --show-depends found no modules in $KDIR"
  while read -r ko; do
    case "$ko" in
      *.ko) cp "$ko" "$T/mod/" ;;
      *.ko.xz) xz -dc "$ko" > "$T/mod/$(basename "$ko" .xz)" ;;
      *.ko.zst) zstd -dcq "$ko" > "$T/mod/$(basename "$ko" .zst)" ;;
    esac
    b=${ko##*/}; echo "${b%%.ko*}"
  done < "$T/list" > "$T/modules.order"
  rm "$T/list"
  cat > "$T/init" <<'NBVM_INIT_EOF'
#!/bin/sh
# /init (busybox-static): virtio/9p/overlay modules, host / read-only over 9p with a
# tmpfs overlay on top, the results share at its host path, then switch_root.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /mod/$m.ko || echo "nbvm-init: insmod $m failed"; done
nbvm_mods= nbvm_out= nbvm_systemd=
for p in $(cat /proc/cmdline); do
  case $p in nbvm_mods=*|nbvm_out=*|nbvm_systemd=*) eval "${p%%=*}=\"${p#*=}\"" ;; esac
done
die() { echo "nbvm-init: FATAL: $*"; poweroff -f; }
mkdir -p /mnt/host /mnt/rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose,access=any hostroot /mnt/host \
  || die "mounting the host root (9p tag hostroot) failed"
mount -t tmpfs -o mode=0755 rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work nbvmroot /newroot \
  || die "overlay mount failed"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=0755 run $R/run
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
KVER=$(cat /proc/sys/kernel/osrelease)
[ -n "$nbvm_mods" ] && mkdir -p $R/lib/modules && ln -sfn "$nbvm_mods" $R/lib/modules/$KVER
[ -n "$nbvm_out" ] || die "no nbvm_out= on the kernel command line"
mkdir -p $R$nbvm_out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=any nbvmout $R$nbvm_out \
  || die "mounting the results share (9p tag nbvmout) failed"
echo "nbvm_out=$nbvm_out nbvm_systemd=$nbvm_systemd" > $R/run/nbvm.env
cp /stage2 $R/run/nbvm-stage2
exec switch_root $R /bin/sh /run/nbvm-stage2
NBVM_INIT_EOF
  cat > "$T/stage2" <<'NBVM_STAGE2_EOF'
#!/bin/sh
# PID 1 after switch_root (the host's /bin/sh): run $nbvm_out/cmd.sh (written by the
# host: exports + the guest script), tee to the console and guest.log, store the
# exit code in $nbvm_out/rc, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
. /run/nbvm.env
echo netbond-vm > /proc/sys/kernel/hostname
ip link set lo up 2>/dev/null || busybox ip link set lo up
cd /
if [ "$nbvm_systemd" = 1 ]; then
  # systemd as PID 1. Everything below lands in the tmpfs overlay, never on the host.
  # /.dockerenv (the host root has one) makes systemd think it runs in a container.
  rm -f /.dockerenv
  # Docker's policy-rc.d (exit 101) stops maintainer scripts from starting, restarting
  # or stopping services (deb-systemd-invoke obeys it); a real machine has none.
  rm -f /usr/sbin/policy-rc.d
  S=/etc/systemd/system
  mkdir -p /etc/tmpfiles.d $S/nbvm.target.wants /etc/systemd/system-generators /etc/systemd/journald.conf.d
  # tmpfiles would clean /tmp as the guest sees it (slow, and nothing to gain)
  ln -sf /dev/null /etc/tmpfiles.d/tmp.conf
  # Generators (fstab, getty, gpt-auto, sysv...) cost an exec each and add nothing here.
  for g in /lib/systemd/system-generators/*; do ln -sf /dev/null "/etc/systemd/system-generators/${g##*/}"; done
  # Slow or pointless here (the root is mounted, /dev is devtmpfs, no clock to sync):
  # masked. What stays: journald, modules-load, sysctl, the sockets, dbus if installed.
  for u in systemd-remount-fs.service systemd-random-seed.service systemd-timesyncd.service \
      systemd-pstore.service systemd-firstboot.service systemd-machine-id-commit.service \
      systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-repart.service \
      systemd-sysusers.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
      systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-journal-flush.service \
      systemd-tmpfiles-setup-dev.service systemd-tmpfiles-setup.service kmod-static-nodes.service \
      systemd-tmpfiles-clean.timer sys-kernel-config.mount sys-kernel-debug.mount \
      sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
      systemd-ask-password-console.path systemd-ask-password-wall.path \
      systemd-journald-audit.socket cryptsetup.target integritysetup.target veritysetup.target \
      e2scrub_reap.service postgresql.service getty.target systemd-logind.service \
      apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
      fstrim.timer man-db.timer; do
    ln -sf /dev/null "$S/$u"
  done
  printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' > /etc/systemd/journald.conf.d/nbvm.conf
  # The guest script runs in a service (its own cgroup, systemd's environment), output
  # to the console and guest.log; then an immediate poweroff (nothing to save).
  cat > /run/nbvm-run <<NBVM_RUN_EOF
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
: > "$nbvm_out/booted"
{ bash "$nbvm_out/cmd.sh" < /dev/null; echo \$? > "$nbvm_out/rc"; } 2>&1 | tee "$nbvm_out/guest.log" > /dev/ttyS0
sync
systemctl poweroff -ff || echo o > /proc/sysrq-trigger
NBVM_RUN_EOF
  chmod 755 /run/nbvm-run
  printf '[Unit]\nDescription=netbond VM test boot\nRequires=basic.target\nAfter=basic.target\n' > $S/nbvm.target
  printf '[Unit]\nDescription=netbond VM guest script\n[Service]\nType=exec\nExecStart=/run/nbvm-run\nStandardOutput=null\n' > $S/nbvm-test.service
  ln -sf $S/nbvm-test.service $S/nbvm.target.wants/nbvm-test.service
  exec /lib/systemd/systemd --unit=nbvm.target --log-level=warning --show-status=no
fi

: > "$nbvm_out/booted"
{ bash "$nbvm_out/cmd.sh" < /dev/null; echo $? > "$nbvm_out/rc"; } 2>&1 | tee "$nbvm_out/guest.log"
sync
busybox poweroff -f 2>/dev/null || echo o > /proc/sysrq-trigger
sleep 10
NBVM_STAGE2_EOF
  chmod 755 "$T/init" "$T/stage2"
  ( cd "$T" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null ) > "$INITRD.tmp" || die "cpio failed"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$T"
fi
flock -u 9

# ---- 3. results dir + the command the guest runs --------------------------------
if [ -n "${NETBOND_VM_OUT:-}" ]; then OUT=$NETBOND_VM_OUT; mkdir -p "$OUT"
else OUT=$(mktemp -d "${TMPDIR:-/tmp}/netbond-vm.XXXXXX"); fi
OUT=$(readlink -f "$OUT")
case "$OUT" in *[[:space:]]*) die "results dir path must not contain spaces: $OUT" ;; esac
rm -f "$OUT/rc" "$OUT/booted" "$OUT/guest.log" "$OUT/cmd.sh"
{
  echo "export NETBOND_VM_OUT=$(printf %q "$OUT")"
  [ -n "${NETBOND_BIN:-}" ] && echo "export NETBOND_BIN=$(printf %q "$NETBOND_BIN")"
  while IFS='=' read -r name _; do
    case "$name" in NETBOND_GUEST_*|RUST_LOG) echo "export $name=$(printf %q "${!name}")" ;; esac
  done < <(env)
  printf 'exec bash %q' "$SCRIPT"; printf ' %q' "$@"; echo
} > "$OUT/cmd.sh"

# ---- 4. accelerator ---------------------------------------------------------------
kvm_usable() {
  # /sys/module/kvm_pvm: /dev/kvm is a PVM hypervisor; a stock kernel crawls and dies
  # ("KVM internal error ... emulation failure"), so it does not count.
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]
}
if [ "$ACCEL" = auto ]; then
  if kvm_usable; then ACCEL=kvm; AUTO_FALLBACK=1; else ACCEL=tcg; AUTO_FALLBACK=0; fi
else AUTO_FALLBACK=0; fi
[ "$ACCEL" = kvm ] && [ -d /sys/module/kvm_pvm ] && log "WARNING: /dev/kvm is PVM; a stock kernel will not boot usefully (use --tcg)"

# ---- 5. boot ------------------------------------------------------------------------
KLOG="quiet loglevel=1"; [ $VERBOSE = 1 ] && KLOG="loglevel=7"
APPEND="console=ttyS0 panic=-1 mitigations=off $KLOG rdinit=/init nbvm_mods=$MODDIR nbvm_out=$OUT"
[ "$SYSTEMD" = 1 ] && APPEND="$APPEND nbvm_systemd=1"
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; true; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# boot ACCEL -> 0 when the guest script ran (rc file written), 1 when it did not boot,
# 2 when it booted but did not finish (timeout / crash).
boot() {
  local accel=$1 qaccel
  if [ "$accel" = kvm ]; then qaccel=(-accel kvm -cpu "${NETBOND_VM_KVM_CPU:-host}")
  else qaccel=(-accel tcg -cpu "${NETBOND_VM_TCG_CPU:-max}"); fi
  rm -f "$OUT/rc" "$OUT/booted" "$OUT/guest.log"
  log "kernel=$KVER accel=$accel image=${BOOTK##*/} out=$OUT"
  # -smp 1: under TCG a second vCPU makes every exec ~2.5x slower. qboot: faster than
  # SeaBIOS. -M microvm hangs under TCG (no PIT calibration).
  qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -display none \
    -M q35 -bios "$QBOOT" "${qaccel[@]}" -smp 1 -m "$MEM" \
    -serial stdio -kernel "$BOOTK" -initrd "$INITRD" -append "$APPEND" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev local,id=nbvmout,path="$OUT",security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=nbvmout,mount_tag=nbvmout </dev/null &
  QPID=$!
  local start=$SECONDS booted=0
  local boot_to=${NETBOND_VM_BOOT_TIMEOUT:-120} all_to=${NETBOND_VM_TIMEOUT:-900}
  while kill -0 "$QPID" 2>/dev/null; do
    if [ $booted = 0 ] && [ -e "$OUT/booted" ]; then booted=1; log "guest script started after $((SECONDS - start)) s"; fi
    if [ $booted = 0 ] && [ $((SECONDS - start)) -ge "$boot_to" ]; then
      log "guest did not reach its script within ${boot_to} s (accel=$accel): killing QEMU"; break; fi
    if [ $((SECONDS - start)) -ge "$all_to" ]; then
      log "whole-run timeout ${all_to} s reached: killing QEMU"; break; fi
    sleep 0.2
  done
  if kill -0 "$QPID" 2>/dev/null; then kill "$QPID"; sleep 1; kill -9 "$QPID" 2>/dev/null || true; fi
  local qrc=0; wait "$QPID" || qrc=$?
  QPID=
  [ -e "$OUT/booted" ] && booted=1
  log "qemu exited (rc=$qrc) after $((SECONDS - start)) s"
  [ -s "$OUT/rc" ] && return 0
  [ $booted = 1 ] && return 2
  return 1
}

T0=$(date +%s%N)
set +e
boot "$ACCEL"; B=$?
if [ $B = 1 ] && [ "$AUTO_FALLBACK" = 1 ]; then
  log "KVM guest did not boot; retrying with TCG"
  ACCEL=tcg; boot tcg; B=$?
fi
set -e
WALL=$(( ($(date +%s%N) - T0) / 1000000 ))
case $B in
  0) RC=$(cat "$OUT/rc")
     log "$(printf 'wall=%d.%03ds accel=%s guest_rc=%s log=%s' $((WALL/1000)) $((WALL%1000)) "$ACCEL" "$RC" "$OUT/guest.log")"
     exit "$RC" ;;
  1) die "the VM did not boot (accel=$ACCEL, kernel=$KVER; rerun with --verbose to see the kernel log)" ;;
  *) die "the guest script did not finish (timeout or guest crash; accel=$ACCEL); partial log: $OUT/guest.log" ;;
esac
}
