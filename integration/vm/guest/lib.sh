# integration/vm/guest/lib.sh — helpers for guest scripts run by ../run-vm.sh.
# Sourced (bash) INSIDE the throwaway VM: root, the host's / read-only under a tmpfs
# overlay, so the guest's root namespace is ours to use. Under TCG every exec costs
# 0.1-0.2 s: helpers use bash builtins and sysfs reads wherever they can.
#
# Provides:
#   TAP:      ok DESC | not_ok DESC [DIAG...] | check DESC CMD... | is GOT WANT DESC
#             diag TEXT | finish   (prints the plan, copies logs, exits 0 or 1)
#   timing:   now_cs (-> $_NOW, uptime in centiseconds) | fmt_cs CS | step TITLE
#   waiting:  wait_for 'CMD' [TIMEOUT_S]   (polls every 0.1 s; 0 when CMD succeeded)
#   kernel:   load_modules [EXTRA_MODULE ARGS...] (bonding max_bonds=0, veth, bridge)
#   LAN:      lan_setup (netns lan, br0 10.88.0.1/24 + fd88::1/64, eth0<->lan0,
#             eth1<->lan1) | add_port N | del_port N | dnsmasq_start | dnsmasq_stop
#             stop_bg VAR (SIGTERM + reap the job whose PID is in $VAR)
#             capture_start / capture_stop (tcpdump on br0 in lan, text, if installed)
#             dn_mark (remember dnsmasq log length) | dn_since (dnsmasq lines since mark)
#             dn_has TEXT (dnsmasq logged TEXT since the mark)
#   sysfs:    rd FILE (-> $REPLY) | mac IF | active_slave | slaves | has_slave IF
#             addrs 4|6 IF | addr4 IF | addr4_in IF | addr6_in IF
#   netbond:  nb_start CONFIG | nb_stop (SIGTERM; $NB_RC) | nb_alive | nb_mark/nb_since
#             reconfirm_ms ADDR MAC | reconfirmed ADDR MAC TIMEOUT_S
#   failover: switch_port LABEL up|down PORT MAC TIMEOUT_S (lan0 up/down, expect PORT
#             active and bond0's MAC = MAC; $SWITCH_T0 = when lan0 changed)
#   configs:  nb_bond_conf FILE PORT... | nb_wifi_conf FILE IFACE WPA_CONF | nb_release_on_stop FILE
#             wpa_conf FILE SSID PSK | hostapd_conf FILE SSID PSK
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=${W:-/run/nbtest}                 # guest-private scratch (tmpfs)
mkdir -p "$W"
OUTDIR=${NETBOND_VM_OUT:-$W}        # writable share: copied back to the host
LAN4=10.88.0
LAN6=fd88:
TAP_N=0
TAP_FAILS=0
TAP_FAILED=()

# ------------------------------------------------------------------ TAP
ok()     { TAP_N=$((TAP_N+1)); echo "ok $TAP_N - $1"; }
not_ok() { TAP_N=$((TAP_N+1)); TAP_FAILS=$((TAP_FAILS+1)); TAP_FAILED+=("$TAP_N - $1")
           echo "not ok $TAP_N - $1"; shift; local l; for l in "$@"; do echo "#   $l"; done; }
diag()   { local l; while IFS= read -r l; do echo "# $l"; done <<< "$*"; }
check()  { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d" "command failed: $*"; fi; }
is()     { if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3" "got:      '$1'" "expected: '$2'"; fi; }
# finish: plan line, summary, copy logs to the results share, exit status.
finish() {
  echo "1..$TAP_N"
  now_cs
  if [ $TAP_FAILS = 0 ]; then echo "# no failures: $TAP_N ok (guest uptime $(fmt_cs $_NOW) s)"
  else echo "# FAILED $TAP_FAILS of $TAP_N (guest uptime $(fmt_cs $_NOW) s):"
       local f; for f in "${TAP_FAILED[@]}"; do echo "#   not ok $f"; done; fi
  [ "$OUTDIR" != "$W" ] && mkdir -p "$OUTDIR/guest-files" && cp -r "$W"/. "$OUTDIR/guest-files/" 2>/dev/null
  [ $TAP_FAILS = 0 ]; exit $?
}

# ------------------------------------------------------------------ time
now_cs() { local u; read -r u _ < /proc/uptime; u=${u/./}; _NOW=$((10#$u)); }
fmt_cs() { printf '%d.%02d' $(($1/100)) $(($1%100)); }
now_cs; _STEP=$_NOW
step() { now_cs; echo "# --- [t=$(fmt_cs $_NOW)s +$(fmt_cs $((_NOW-_STEP)))s] $*"; _STEP=$_NOW; }

# wait_for 'CMD' [TIMEOUT_S]: run CMD (eval'd, output discarded) every 0.1 s until it
# succeeds (returns 0) or TIMEOUT_S (default 10) pass (returns 1). $WAITED_CS = time spent.
wait_for() {
  local cmd=$1 t=${2:-10} start end
  now_cs; start=$_NOW; end=$((_NOW + t*100))
  until eval "$cmd" >/dev/null 2>&1; do
    now_cs; if [ $_NOW -ge $end ]; then WAITED_CS=$((_NOW-start)); return 1; fi
    sleep 0.1
  done
  now_cs; WAITED_CS=$((_NOW-start)); return 0
}

# ------------------------------------------------------------------ sysfs readers
rd()           { REPLY=; [ -r "$1" ] && read -r REPLY < "$1" 2>/dev/null; return 0; }
mac()          { rd /sys/class/net/$1/address; echo "$REPLY"; }
active_slave() { rd /sys/class/net/${BOND:-bond0}/bonding/active_slave; echo "$REPLY"; }
slaves()       { rd /sys/class/net/${BOND:-bond0}/bonding/slaves; echo "$REPLY"; }
has_slave()    { rd /sys/class/net/${BOND:-bond0}/bonding/slaves; [[ " $REPLY " == *" $1 "* ]]; }
is_active()    { rd /sys/class/net/${BOND:-bond0}/bonding/active_slave; [ "$REPLY" = "$1" ]; }
mac_is()       { rd /sys/class/net/$1/address; [ "$REPLY" = "$2" ]; }
link_exists()  { [ -e /sys/class/net/$1 ]; }
# addrs 4|6 IF: IF's global addresses of that family, one a line, without the prefix
addrs() { ip -$1 -o addr show dev "$2" scope global 2>/dev/null | awk '{split($4,a,"/"); print a[1]}'; }
# addr4 IF: the first global IPv4 address (no prefix), or empty
addr4() { local a; for a in $(addrs 4 "$1"); do echo "$a"; break; done; return 0; }
# addr4_in IF: the IPv4 address in 10.88.0.50-150 (prints it; fails if none)
addr4_in() {
  local a h
  for a in $(addrs 4 "$1"); do
    h=${a##*.}; [ "${a%.*}" = "$LAN4" ] && [ "$h" -ge 50 ] && [ "$h" -le 150 ] && { echo "$a"; return 0; }
  done; return 1
}
# addr6_in IF: the IPv6 address in fd88::100-1ff (prints it; fails if none)
addr6_in() {
  local a
  for a in $(addrs 6 "$1"); do
    [[ $a =~ ^fd88::1[0-9a-f]{2}$ ]] && { echo "$a"; return 0; }
  done; return 1
}

# ------------------------------------------------------------------ kernel
# load_modules [MODULE ARGS...]: bonding (max_bonds=0: no automatic bond0), veth,
# bridge, then an optional extra module with its arguments (e.g. mac80211_hwsim radios=2).
load_modules() {
  local rc=0
  modprobe bonding max_bonds=0 || rc=1
  modprobe veth || rc=1
  modprobe bridge || rc=1
  if [ $# -gt 0 ]; then modprobe "$@" || rc=1; fi
  return $rc
}

# ------------------------------------------------------------------ LAN
# Fixed MACs make the logs readable: ethN = 52:54:00:88:00:0N, lanN = 52:54:00:88:01:0N.
port_mac() { printf '52:54:00:88:00:%02x' "$1"; }
# add_port N: veth ethN (root ns, left DOWN) <-> lanN (netns lan, on br0, up)
add_port() {
  ip link add eth$1 address "$(port_mac $1)" type veth peer name lan$1 \
     address "$(printf '52:54:00:88:01:%02x' "$1")" netns lan || return 1
  ip -n lan link set lan$1 master br0 up
}
del_port() { ip link del eth$1; }
lan_setup() {
  ip netns add lan || return 1
  ip -n lan link set lo up
  ip -n lan link add br0 type bridge stp_state 0 forward_delay 0 || return 1
  ip -n lan addr add $LAN4.1/24 dev br0
  ip -n lan addr add fd88::1/64 dev br0 nodad
  ip -n lan link set br0 up
  add_port 0 && add_port 1
}
# dnsmasq on br0 in netns lan: DHCPv4 10.88.0.50-150, stateful DHCPv6 fd88::100-1ff,
# RA, 2-minute leases (dnsmasq's shortest), --no-ping (else each OFFER waits ~3 s).
# $DN_EXTRA: more dnsmasq arguments (e.g. --dhcp-option=6,10.88.0.1 to hand out DNS).
DN_LOG=$W/dnsmasq.log
dnsmasq_start() {
  ip netns exec lan dnsmasq -k -C /dev/null --port=0 --no-ping --bind-interfaces --interface=br0 \
    --dhcp-authoritative \
    --dhcp-range=$LAN4.50,$LAN4.150,255.255.255.0,2m \
    --dhcp-range=fd88::100,fd88::1ff,64,2m --enable-ra \
    --dhcp-leasefile=$W/dnsmasq.leases --pid-file=$W/dnsmasq.pid \
    --log-dhcp --log-facility=$DN_LOG --user=root --group=root ${DN_EXTRA:-} &
  DN_PID=$!
  wait_for "[ -s $W/dnsmasq.pid ]" 10
}
# stop_bg VAR: SIGTERM and reap the background job whose PID is in $VAR; clear VAR
stop_bg() { local p=${!1:-}; [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; printf -v "$1" '%s' ''; return 0; }
dnsmasq_stop() { stop_bg DN_PID; }
# dnsmasq log: lines since the last dn_mark
dn_mark()  { DN_MARK=$({ wc -l < "$DN_LOG"; } 2>/dev/null || echo 0); }
dn_since() { tail -n +$((${DN_MARK:-0}+1)) "$DN_LOG" 2>/dev/null; }
dn_has()   { dn_since | grep -q "$1"; }
# DHCP packets at the server: tcpdump on br0 in netns lan (if installed), text with MACs
capture_start() {
  command -v tcpdump >/dev/null || { echo "# tcpdump not installed: no capture (dnsmasq --log-dhcp only)"; return 0; }
  ip netns exec lan tcpdump -Z root -i br0 -n -e -l -vv \
    'udp port 67 or udp port 68 or udp port 546 or udp port 547' > $W/br0-dhcp.txt 2>$W/tcpdump.err &
  TD_PID=$!
}
capture_stop() { stop_bg TD_PID; }

# ------------------------------------------------------------------ configs
# nb_bond_conf FILE PORT...: a netbond config with the bond the reference units make
# (active-backup, fail_over_mac active, miimon 100, primary eth0); PORTs: names or globs
nb_bond_conf() {
  local f=$1 p ports=; shift
  for p in "$@"; do ports="$ports${ports:+, }\"$p\""; done
  cat > "$f" <<EOF
[bond]
name = "bond0"
mode = "active-backup"
fail_over_mac = "active"
miimon = 100
primary = "eth0"
ports = [$ports]
EOF
}
# nb_release_on_stop FILE: append [daemon] on_stop = "release": SIGTERM then releases the
# leases, deconfigures and deletes the bond (the seed's behaviour, which these scripts'
# stop/restart steps assert). netbond's default, "keep", leaves all of it in place.
nb_release_on_stop() {
  cat >> "$1" <<EOF

[daemon]
on_stop = "release"
EOF
}
# nb_wifi_conf FILE IFACE WPA_CONF: append a [[wifi]] section (netbond supervises the
# supplicant); key names as in src/config.rs
nb_wifi_conf() {
  cat >> "$1" <<EOF

[[wifi]]
iface = "$2"
mode = "supervise"
config = "$3"
driver = "nl80211"
EOF
}
# wpa_conf FILE SSID PSK: wpa_supplicant, WPA2-PSK, control sockets in /run/wpa_supplicant
wpa_conf() {
  cat > "$1" <<EOF
ctrl_interface=/run/wpa_supplicant
network={
    ssid="$2"
    psk="$3"
    key_mgmt=WPA-PSK
    scan_freq=2412
}
EOF
}
# hostapd_conf FILE SSID PSK: a WPA2-PSK AP on wlan1 (channel 1), bridged to br0
hostapd_conf() {
  cat > "$1" <<EOF
interface=wlan1
bridge=br0
driver=nl80211
ctrl_interface=/run/hostapd
ssid=$2
hw_mode=g
channel=1
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=$3
EOF
}

# ------------------------------------------------------------------ netbond
NB_LOG=$W/netbond.log
NB_PID=
# nb_start CONFIG [EXTRA ARGS...]: netbond in the background, log appended to $NB_LOG
nb_start() {
  local cfg=$1; shift
  [ -n "${NETBOND_BIN:-}" ] || { echo "# NETBOND_BIN is not set"; return 1; }
  mkdir -p $W/state $W/run
  echo "===== nb_start $(date +%T) =====" >> "$NB_LOG"
  "$NETBOND_BIN" run --config "$cfg" --state-dir $W/state --run-dir $W/run \
     --resolv-conf /tmp/resolv.conf --log-level debug "$@" >> "$NB_LOG" 2>&1 &
  NB_PID=$!
}
nb_alive() { [ -n "$NB_PID" ] && kill -0 "$NB_PID" 2>/dev/null; }
# nb_stop [TIMEOUT_S]: SIGTERM, wait; $NB_RC = exit code (124 if it had to be killed)
nb_stop() {
  NB_RC=
  [ -n "$NB_PID" ] || { NB_RC=255; return 1; }
  kill -TERM "$NB_PID" 2>/dev/null
  if wait_for '! nb_alive' "${1:-10}"; then wait "$NB_PID"; NB_RC=$?
  else kill -KILL "$NB_PID" 2>/dev/null; wait "$NB_PID" 2>/dev/null; NB_RC=124; fi
  NB_PID=
  [ "$NB_RC" = 0 ]
}
nb_mark()  { NB_MARK=$({ wc -l < "$NB_LOG"; } 2>/dev/null || echo 0); }
nb_since() { tail -n +$((${NB_MARK:-0}+1)) "$NB_LOG" 2>/dev/null; }
# reconfirm_ms ADDR MAC: N from netbond's "re-confirmed ADDR from new MAC MAC in N ms"
# since nb_mark (empty if none)
reconfirm_ms() { nb_since | sed -n "s/.*re-confirmed $1 from new MAC $2 in \([0-9]*\) ms.*/\1/p" | tail -1; }
# reconfirmed ADDR MAC TIMEOUT_S: wait until dnsmasq ACKed ADDR to MAC or netbond
# logged the re-confirmation
reconfirmed() { wait_for "dn_has 'DHCPACK(br0) $1 $2' || [ -n \"\$(reconfirm_ms $1 $2)\" ]" "$3"; }
# switch_port LABEL up|down PORT MAC TIMEOUT_S: marks both logs, sets the LAN end of
# eth0 (lan0) up or down, and checks that PORT becomes the active port (within
# TIMEOUT_S) and bond0 takes MAC. $SWITCH_T0: the uptime (cs) when lan0 changed.
switch_port() {
  local label=$1 updown=$2 port=$3 want=$4 limit=$5
  dn_mark; nb_mark; now_cs; SWITCH_T0=$_NOW
  ip -n lan link set lan0 "$updown"
  wait_for "is_active $port" "$limit"
  now_cs; diag "active_slave changed after $(fmt_cs $((_NOW-SWITCH_T0))) s"
  is "$(active_slave)" "$port" "$label: active_slave = $port"
  wait_for "mac_is $BOND $want" 3
  is "$(mac $BOND)" "$want" "$label: bond0 MAC = $port's MAC"
}
# nb_tail [N]: the last N netbond log lines as TAP comments
nb_tail() { tail -n "${1:-15}" "$NB_LOG" 2>/dev/null | sed 's/^/#   nb| /'; }
dn_tail() { grep -E 'DHCP|RTR' "$DN_LOG" 2>/dev/null | sed 's/^.*dnsmasq-dhcp[^:]*: /#   dn| /' | tail -n "${1:-12}"; }

echo "# guest: kernel $(uname -r), $(ip -V 2>&1), $(dnsmasq --version 2>/dev/null | head -1 | cut -d' ' -f1-3)"
