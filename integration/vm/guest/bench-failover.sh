#!/bin/bash
# integration/vm/guest/bench-failover.sh — benchmark item 8: time from unplugging the
# wired port of an active-backup bond to a confirmed lease (a DHCPACK to the new MAC)
# over the backup, netbond against the reference setup (kernel bond as the reference
# units make it + ISC dhclient with the reference's dhclient.conf). ONE guest run, the
# scenarios one after the other, NETBOND_GUEST_RUNS runs each:
#   netbond-wired      netbond, bond0 = eth0 (primary) + eth1
#   dhclient-wired     dhclient -4 running on bond0 since before the unplug (the units
#                      with the sleep done long ago); the LAN drops frames with the old
#                      MAC from eth1's port (an AP's behaviour, as dhclient-compare.sh)
#   dhclient-restart-wired  the same, and at the unplug dhclient@bond0 is restarted the
#                      way the unit does it (ExecStop: dhclient -r, sleep 1; ExecStartPre:
#                      sleep 8; ExecStart: dhclient -d ... -i bond0): the reference's
#                      best case, should anything restart it (nothing in the units does)
#   netbond-wifi       netbond, bond0 = eth0 + wlan0 (mac80211_hwsim, hostapd in netns
#                      lan, wpa_supplicant supervised by netbond)
#   dhclient-wifi, dhclient-restart-wifi  the two reference rows with eth0 + wlan0
#                      (wpa_supplicant started as supplicant@wlan0 does; a real AP, no rule)
# Each run: failover-probe.py takes t0 and sets lan0 (the wired port's LAN end) down
# itself, then stamps the DHCP frames on bond0 (kernel receive stamps) and bond0's
# address events. Then the wire is plugged back and the client is back on eth0 before
# the next run. Output: TAP for the lab itself, and one line per run for the host:
#   # BENCH failover scenario=S run=N ack_ms=.. req_ms=.. mac_ms=.. ack_addr=.. same=..
#     deleted=.. absent_ms=.. ... cap_s=.. netbond_ms=..
# env: NETBOND_GUEST_RUNS [5]  NETBOND_GUEST_DH_RUNS (the dhclient scenarios) [RUNS]
#      NETBOND_GUEST_NB_CAP [10]  NETBOND_GUEST_DH_CAP [20]
#      NETBOND_GUEST_LATE_CAP [30]  NETBOND_GUEST_SCENARIOS [all six, comma list]
# Run: NETBOND_BIN=... integration/vm/run-vm.sh integration/vm/guest/bench-failover.sh
# vm-host-tools: python3=python3 dhclient=isc-dhcp-client nft=nftables hostapd=hostapd wpa_supplicant=wpasupplicant iw=iw
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE=$HERE/failover-probe.py
DH_SCRIPT=$(cd "$HERE/../../bench" && pwd)/dhclient-script.sh
RUNS=${NETBOND_GUEST_RUNS:-5} DH_RUNS=${NETBOND_GUEST_DH_RUNS:-${NETBOND_GUEST_RUNS:-5}}
NB_CAP=${NETBOND_GUEST_NB_CAP:-10} DH_CAP=${NETBOND_GUEST_DH_CAP:-20} LATE_CAP=${NETBOND_GUEST_LATE_CAP:-30}
SCEN=,${NETBOND_GUEST_SCENARIOS:-netbond-wired,dhclient-wired,dhclient-restart-wired,netbond-wifi,dhclient-wifi,dhclient-restart-wifi},
want() { [[ $SCEN == *,$1,* ]]; }
BOND=bond0
M0=$(port_mac 0) M1=$(port_mac 1)
bench() { echo "# BENCH failover scenario=$1 run=$2 ${*:3}"; }
plug() { ip -n lan link set lan0 up; }

[ -n "${NETBOND_BIN:-}" ] && [ -x "$NETBOND_BIN" ] || { echo "Bail out! NETBOND_BIN not set or not executable: '${NETBOND_BIN:-}'"; finish; }
command -v python3 >/dev/null || { echo "Bail out! python3 missing on the host"; finish; }
echo "# BENCH failover-info runs=$RUNS dh_runs=$DH_RUNS nb_cap=$NB_CAP dh_cap=$DH_CAP late_cap=$LATE_CAP kernel=$(uname -r)"

step "setup: modules, LAN namespace, dnsmasq"
check "modules bonding, veth, bridge" load_modules
check "netns lan: br0 + eth0<->lan0 + eth1<->lan1" lan_setup
check "dnsmasq running on br0" dnsmasq_start

# nb_failovers SCENARIO BACKUP_MAC: RUNS timed failovers of the running netbond (bound on
# eth0), each followed by a failback confirmed from eth0's MAC.
nb_failovers() {
  local s=$1 mnew=$2 i pr ms a4
  if wait_for "is_active eth0 && addr4_in $BOND" 30; then a4=$(addr4_in $BOND); ok "$s: netbond bound $a4 on bond0 (eth0 active)"
  else not_ok "$s: netbond bound an address on bond0" "$(nb_since | tail -8)"; bench "$s" 0 error=no_initial_lease; return 1; fi
  for i in $(seq 1 "$RUNS"); do
    sleep 0.5
    nb_mark
    pr=$(python3 "$PROBE" --bond $BOND --addr "$a4" --old-mac "$M0" --new-mac "$mnew" --cap "$NB_CAP")
    ms=$(reconfirm_ms "$a4" "$mnew")
    bench "$s" "$i" "$pr cap_s=$NB_CAP netbond_ms=${ms:--}"
    nb_mark; plug
    wait_for "is_active eth0 && [ -n \"\$(reconfirm_ms $a4 $M0)\" ] && addr4_in $BOND" 20 \
      || { not_ok "$s run $i: failback to eth0 confirmed" "$(nb_since | tail -6)"; return 1; }
  done
  ok "$s: $RUNS failovers measured"
}

# ======================================================================== netbond, wired
if want netbond-wired; then
  step "netbond-wired: bond0 = eth0 + eth1"
  nb_bond_conf $W/nb-wired.toml eth0 eth1
  nb_release_on_stop $W/nb-wired.toml   # the reference runs after it need bond0 gone
  nb_mark; nb_start $W/nb-wired.toml
  nb_failovers netbond-wired "$M1"
  nb_stop 10; is "$NB_RC" 0 "netbond-wired: netbond exited 0 on SIGTERM"
  wait_for "! link_exists $BOND" 3
fi

# ======================================================================== reference, wired
# The reference's /etc/dhclient.conf, verbatim but for the comments.
cat > $W/ref-dhclient.conf <<'EOF'
initial-interval 2;
reboot 5;
timeout 10;
retry 20;
send dhcp-client-identifier 00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4 ;
send host-name "laptop";
EOF
DH_ARGS="-4 -cf $W/ref-dhclient.conf -sf $DH_SCRIPT -lf $W/dhclient.leases -pf $W/dhclient.pid"
dh_pid() { rd $W/dhclient.pid; [ -n "$REPLY" ] && [ -d /proc/$REPLY ] && echo "$REPLY"; }
dh_stop() { local p; p=$(dh_pid) && { kill "$p"; wait_for "[ ! -d /proc/$p ]" 5; }; rm -f $W/dhclient.pid; }
# dh_start: dhclient@bond0's ExecStart (without its sleep), in the background
dh_start() { setsid dhclient $DH_ARGS -d -i $BOND >> $W/dhclient.log 2>&1 < /dev/null & }
# ref_bond PORT...: bond0 as master@bond0 + slave@ units make it (modprobe.d options:
# miimon=100 mode=active-backup fail_over_mac=active; PRI=eth0)
ref_bond() {
  local p
  ip link add $BOND type bond mode active-backup fail_over_mac active miimon 100 || return 1
  echo -n eth0 > /sys/class/net/$BOND/bonding/primary
  ip link set $BOND up
  for p in "$@"; do ip link set "$p" down; ip addr flush dev "$p"; ip link set "$p" master $BOND; ip link set "$p" up; done
}
# the LAN drops frames with eth0's MAC arriving from eth1's port (an AP drops frames from
# a transmitter that is not the associated station)
ap_rule() {
  ip netns exec lan nft -f - <<EOF
table bridge nbap {
  chain pre { type filter hook prerouting priority -200; policy accept;
    iifname "lan1" ether saddr $M0 counter drop
  }
}
EOF
}
ap_rule_del() { ip netns exec lan nft delete table bridge nbap 2>/dev/null; return 0; }
# the unit restart (ExecStop, ExecStartPre, ExecStart), run by the probe at the unplug
RESTART="dhclient $DH_ARGS -r $BOND >> $W/dhclient.log 2>&1; sleep 1; sleep 8; exec dhclient $DH_ARGS -d -i $BOND >> $W/dhclient.log 2>&1"
# dh_failovers SCENARIO CAP NEW_MAC AP_RULE(0|1) [THEN]: DH_RUNS timed failovers, a fresh
# dhclient bound on eth0 before each
dh_failovers() {
  local s=$1 cap=$2 mnew=$3 rule=$4 then=${5:-} i pr a4
  for i in $(seq 1 "$DH_RUNS"); do
    dh_stop; dn_mark; dh_start
    if wait_for "dn_has 'DHCPACK(br0) .* $M0' && addr4_in $BOND" 30; then a4=$(addr4_in $BOND)
    else not_ok "$s run $i: dhclient bound on eth0" "$(tail -5 $W/dhclient.log)"; bench "$s" "$i" error=no_initial_lease; return 1; fi
    [ "$rule" = 1 ] && ap_rule; sleep 0.5
    pr=$(python3 "$PROBE" --bond $BOND --addr "$a4" --old-mac "$M0" --new-mac "$mnew" --cap "$cap" ${then:+--then "$then"})
    bench "$s" "$i" "$pr cap_s=$cap"
    ap_rule_del; plug
    wait_for "is_active eth0 && mac_is $BOND $M0" 10
  done
  ok "$s: $DH_RUNS failovers measured (dhclient bound $a4 before each)"
}
if want dhclient-wired || want dhclient-restart-wired; then
  if command -v dhclient >/dev/null; then
    step "reference: kernel bond0 = eth0 + eth1, dhclient with the reference's dhclient.conf"
    check "reference bond0 (active-backup, fail_over_mac active, miimon 100, primary eth0)" ref_bond eth0 eth1
    wait_for "is_active eth0" 5
    if want dhclient-wired; then
      step "dhclient-wired: dhclient running, no restart"
      dh_failovers dhclient-wired "$DH_CAP" "$M1" 1
    fi
    if want dhclient-restart-wired; then
      step "dhclient-restart-wired: dhclient@bond0 restarted at the unplug (release, sleep 1 + 8)"
      dh_failovers dhclient-restart-wired "$LATE_CAP" "$M1" 1 "$RESTART"
    fi
    dh_stop
    ip link del $BOND
  else
    diag "dhclient not installed: reference scenarios skipped"
    bench dhclient-wired 0 error=dhclient_not_installed
  fi
fi
wpa_ok() { [[ $(wpa_cli -p /run/wpa_supplicant -i wlan0 status 2>/dev/null) == *wpa_state=COMPLETED* ]]; }

# ======================================================================== Wi-Fi
HAP=
if want netbond-wifi || want dhclient-wifi || want dhclient-restart-wifi; then
  step "Wi-Fi lab: mac80211_hwsim radios=2, hostapd on wlan1 in netns lan (bridged to br0)"
  del_port 1
  HAP=
  if load_modules mac80211_hwsim radios=2 && wait_for "link_exists wlan0 && link_exists wlan1" 5; then
    rd /sys/class/net/wlan1/phy80211/name; iw phy "$REPLY" set netns name lan
    MW=$(mac wlan0)
    hostapd_conf $W/hostapd.conf nb-bench nb-bench-123
    wpa_conf $W/wpa.conf nb-bench nb-bench-123
    nb_bond_conf $W/nb-wifi.toml eth0 wlan0
    nb_wifi_conf $W/nb-wifi.toml wlan0 $W/wpa.conf
    nb_release_on_stop $W/nb-wifi.toml
    if ip netns exec lan hostapd -B -t -P $W/hostapd.pid -f $W/hostapd.log $W/hostapd.conf >/dev/null 2>&1 \
       && wait_for "[ -s $W/hostapd.pid ]" 5; then rd $W/hostapd.pid; HAP=$REPLY; ok "hostapd on wlan1 (netns lan)"
    else not_ok "hostapd on wlan1 (netns lan)" "$(tail -5 $W/hostapd.log 2>/dev/null)"; fi
  else not_ok "mac80211_hwsim radios=2: wlan0 + wlan1"; fi
fi
if want netbond-wifi; then
  step "netbond-wifi: bond0 = eth0 + wlan0 (wpa_supplicant supervised by netbond)"
  if [ -n "$HAP" ]; then
    nb_mark; nb_start $W/nb-wifi.toml
    # the backup must be associated before the first unplug
    if wait_for wpa_ok 40; then
      ok "netbond-wifi: wlan0 associated (COMPLETED)"
      nb_failovers netbond-wifi "$MW"
    else not_ok "netbond-wifi: wlan0 associated" "$(nb_since | grep -i wlan0 | tail -5)"; bench netbond-wifi 0 error=wifi_not_associated; fi
    nb_stop 10; is "$NB_RC" 0 "netbond-wifi: netbond exited 0 on SIGTERM"
    wait_for "! link_exists $BOND" 3
  else bench netbond-wifi 0 error=no_access_point; fi
fi
if want dhclient-wifi || want dhclient-restart-wifi; then
  step "reference, Wi-Fi: kernel bond0 = eth0 + wlan0, wpa_supplicant as supplicant@wlan0 runs it"
  if [ -n "$HAP" ] && command -v dhclient >/dev/null; then
    check "reference bond0 = eth0 + wlan0" ref_bond eth0 wlan0
    wpa_supplicant -B -P $W/wpa.pid -c $W/wpa.conf -Dnl80211,wext,wired -i wlan0 > $W/wpa.log 2>&1
    if wait_for wpa_ok 40 && wait_for "is_active eth0" 5; then
      ok "reference: wlan0 associated (COMPLETED), eth0 active"
      want dhclient-wifi && dh_failovers dhclient-wifi "$DH_CAP" "$MW" 0
      want dhclient-restart-wifi && dh_failovers dhclient-restart-wifi "$LATE_CAP" "$MW" 0 "$RESTART"
    else not_ok "reference: wlan0 associated" "$(tail -5 $W/wpa.log)"; bench dhclient-wifi 0 error=wifi_not_associated; fi
    dh_stop
    rd $W/wpa.pid; [ -n "$REPLY" ] && kill "$REPLY" 2>/dev/null
    ip link del $BOND
  else bench dhclient-wifi 0 error=no_access_point_or_dhclient; fi
fi
[ -n "$HAP" ] && kill "$HAP" 2>/dev/null

step "done"
dnsmasq_stop
if [ $TAP_FAILS -gt 0 ]; then
  echo "# --- netbond log (last 30 lines)"; nb_tail 30
  echo "# --- dnsmasq DHCP lines (last 20)"; dn_tail 20
  echo "# --- dhclient log (last 10)"; tail -10 $W/dhclient.log 2>/dev/null | sed 's/^/#   dh| /'
fi
finish
