#!/bin/bash
# integration/vm/guest/wifi.sh — netbond with a Wi-Fi port: bond0 = eth0 (wired,
# primary) + wlan0 (mac80211_hwsim station, wpa_supplicant supervised by netbond), all
# scenarios in ONE guest run:
#   1. boot with wired + Wi-Fi: eth0 active, DHCPv4 + DHCPv6 on bond0, wlan0 COMPLETED
#   2. wired unplugged (lan0 down): failover to wlan0, bond0 MAC = wlan0's, the same IPv4
#      address re-confirmed over Wi-Fi (netbond log + dnsmasq DHCPREQUEST from wlan0's
#      MAC), reachable from the LAN through the AP, IPv6 address kept; unplug->ACK time
#   3. wired back: eth0 active, same addresses
#   4. wpa_cli on the same control socket while netbond is attached (PING, STATUS, and
#      a wpa_cli disconnect/reconnect seen by netbond)
#   5. the CLI: netbond status --json (wifi array), netbond wifi wlan0 status/reassociate
#   6. wpa_supplicant killed (SIGKILL): netbond restarts it, COMPLETED again
#   7. wlan0 deleted and re-created (iw): released from bond0 + supplicant stopped, then
#      re-enslaved + supplicant restarted, COMPLETED again
#   8. start with only Wi-Fi (the dhclient case): a lease over Wi-Fi on the first
#      attempt; wired plugged in later: same address re-confirmed from eth0's MAC
# Radios: mac80211_hwsim radios=2; phy of wlan1 moved into netns lan, where hostapd
# (WPA2-PSK, bridge=br0) runs the AP; wlan0 stays in the root namespace.
# Output: TAP. Run: NETBOND_BIN=... integration/vm/run-vm.sh integration/vm/guest/wifi.sh
# The guest runs the host's userland; run-vm.sh installs what this line lists:
# vm-host-tools: hostapd=hostapd wpa_supplicant=wpasupplicant wpa_cli=wpasupplicant iw=iw
. "$(dirname "$0")/lib.sh"
BOND=bond0
M0=$(port_mac 0)
CTRL=/run/wpa_supplicant
SSID=nb-test PSK=nb-secret-123
CFG=/tmp/nb.toml WPA_CONF=/tmp/wpa.conf
nb_bond_conf $CFG eth0 wlan0
nb_wifi_conf $CFG wlan0 $WPA_CONF
nb_release_on_stop $CFG   # step 8 asserts bond0 deleted at SIGTERM
wpa_conf $WPA_CONF "$SSID" "$PSK"
PING=ping; command -v ping >/dev/null || PING="busybox ping"
lan_ping() { ip netns exec lan $PING -c1 -W2 "$1"; }
HAP_PID=
bail() { echo "Bail out! $*"; nb_tail 30; dn_tail; nb_alive && nb_stop 5
         [ -n "$HAP_PID" ] && kill "$HAP_PID" 2>/dev/null; dnsmasq_stop; capture_stop; finish; }
dn_xids() { dn_since | sed -n 's/.*\]: \([0-9]*\) DHCP\(DISCOVER\|REQUEST\)(br0).*/\1/p' | sort -u | wc -l; }
nb_cli() { "$NETBOND_BIN" "$@" --run-dir $W/run; }
wpacli() { wpa_cli -p $CTRL -i wlan0 "$@"; }
# one exec per poll: wpa_state=COMPLETED on wlan0's control socket
wpa_completed() { [[ $(wpacli status 2>/dev/null) == *wpa_state=COMPLETED* ]]; }
# sup_pid: $SUP = the PID(s) of the wpa_supplicant that netbond ($NB_PID) runs, by /proc
# (builtins only; hostapd is another binary, and only netbond's children count)
sup_pid() {
  local d c s; SUP=
  [ -n "$NB_PID" ] || return 1
  for d in /proc/[0-9]*; do
    read -r c < $d/comm 2>/dev/null || continue
    [ "$c" = wpa_supplicant ] || continue
    read -r s < $d/stat 2>/dev/null || continue
    s=${s##*) }; set -- $s          # state ppid ...
    [ "$1" != Z ] && [ "$2" = "$NB_PID" ] && SUP="$SUP ${d#/proc/}"
  done
  SUP=${SUP# }; [ -n "$SUP" ]
}
# any non-zombie wpa_supplicant at all (netbond's or an orphan of it)
any_sup() {
  local d c s
  for d in /proc/[0-9]*; do
    read -r c < $d/comm 2>/dev/null || continue
    [ "$c" = wpa_supplicant ] || continue
    read -r s < $d/stat 2>/dev/null || continue; s=${s##*) }
    [ "${s%% *}" != Z ] && return 0
  done; return 1
}
proc_alive() { local s; [ -r /proc/$1/stat ] && read -r s < /proc/$1/stat && s=${s##*) } && [ "${s%% *}" != Z ]; }
nb_logged() { nb_since | grep -q -- "$1"; }
# gap DESC CMD...: 'ok' when CMD succeeds, else 'not ok # TODO' (a known daemon gap that
# shows up only sometimes, e.g. a race: reported, not a failure)
gap() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"
        else TAP_N=$((TAP_N+1)); TAP_TODO=$((TAP_TODO+1)); echo "not ok $TAP_N - $d # TODO known gap"; fi; }

[ -n "${NETBOND_BIN:-}" ] && [ -x "$NETBOND_BIN" ] || { echo "Bail out! NETBOND_BIN not set or not executable: '${NETBOND_BIN:-}'"; finish; }
for t in hostapd wpa_supplicant wpa_cli iw; do
  command -v $t >/dev/null || { echo "Bail out! $t is not installed on the host (run-vm.sh installs it: hostapd wpasupplicant iw)"; finish; }
done
grep -q '\[\[wifi\]\]\|wifi' <<< "$("$NETBOND_BIN" --help 2>&1)" || diag "netbond --help does not mention wifi (daemon Wi-Fi support missing?)"

step "setup: modules (with mac80211_hwsim radios=2), LAN namespace, AP, dnsmasq"
check "modules bonding, veth, bridge, mac80211_hwsim radios=2" load_modules mac80211_hwsim radios=2
check "netns lan: br0 + eth0<->lan0" lan_setup
del_port 1                               # eth1<->lan1 unused here: bond0 = eth0 + wlan0
wait_for "link_exists wlan0 && link_exists wlan1" 5
rd /sys/class/net/wlan0/phy80211/name; PHY0=$REPLY
rd /sys/class/net/wlan1/phy80211/name; PHY1=$REPLY
MW=$(mac wlan0)
diag "wlan0=$MW ($PHY0), wlan1=$(mac wlan1) ($PHY1), eth0=$M0"
check "iw phy $PHY1 set netns name lan (the AP radio)" iw phy "$PHY1" set netns name lan
hostapd_conf $W/hostapd.conf "$SSID" "$PSK"
if ip netns exec lan hostapd -B -t -P $W/hostapd.pid -f $W/hostapd.log $W/hostapd.conf >/dev/null 2>&1 \
   && wait_for "[ -s $W/hostapd.pid ]" 5; then
  rd $W/hostapd.pid; HAP_PID=$REPLY; ok "hostapd (WPA2-PSK '$SSID') on wlan1 in lan, bridged to br0"
else not_ok "hostapd on wlan1 in lan" "$(tail -5 $W/hostapd.log 2>/dev/null)"; bail "no AP"; fi
check "dnsmasq running on br0" dnsmasq_start
capture_start

# ======================================================================== 1
step "1. boot with wired + Wi-Fi"
dn_mark; nb_mark; now_cs; T_START=$_NOW
nb_start $CFG
if wait_for "link_exists $BOND" 10; then ok "bond0 created by netbond"
else not_ok "bond0 created by netbond" "netbond alive: $(nb_alive && echo yes || echo no)"; bail "no bond0"; fi
wait_for "has_slave eth0 && has_slave wlan0" 10
check "eth0 and wlan0 enslaved" eval 'has_slave eth0 && has_slave wlan0'
diag "slaves (enslave order): $(slaves)"
wait_for "is_active eth0" 5
is "$(active_slave)" eth0 "active_slave = eth0 (wired, primary)"
if wait_for "sup_pid" 10; then SUP1=$SUP; ok "netbond started wpa_supplicant on wlan0 (pid $SUP1)"
else not_ok "netbond started wpa_supplicant on wlan0" "$(nb_since | grep -i -E 'wpa|wlan0' | tail -5)"; SUP1=; fi
if wait_for "addr4_in $BOND" 20; then
  A4=$(addr4_in $BOND); now_cs
  ok "IPv4 address on bond0: $A4 ($(fmt_cs $((_NOW-T_START))) s after start)"
else not_ok "IPv4 address on bond0" "bond0: $(ip -br addr show dev $BOND)"; bail "no IPv4 lease"; fi
check "netbond logged 'dhcp4: bond0: bound $A4/24 ... chaddr $M0'" nb_logged "dhcp4: bond0: bound $A4/24 .*chaddr $M0"
# wlan0 (hwsim, loaded first) has a lower ifindex than eth0: enslaved first, the bond
# briefly takes its MAC and drops carrier until the primary eth0 takes over
check "startup: bond0's MAC was never wlan0's (primary enslaved first)" eval "! nb_logged 'bond0: MAC changed to $MW'"
if wait_for "addr6_in $BOND" 30; then A6=$(addr6_in $BOND); ok "IPv6 address on bond0: $A6"
else not_ok "IPv6 address on bond0" "bond0: $(ip -br -6 addr show dev $BOND)"; A6=none; fi
check "netbond logged 'dhcp6: bond0: bound $A6/128'" nb_logged "dhcp6: bond0: bound .*$A6/128"
if wait_for wpa_completed 30; then now_cs; ok "wlan0: wpa_state=COMPLETED ($(fmt_cs $((_NOW-T_START))) s after start)"
else not_ok "wlan0: wpa_state=COMPLETED" "$(wpacli status 2>&1 | tr '\n' ' ')" "$(nb_since | grep -i -E 'wpa|wlan0' | tail -5)"; fi
wait_for "nb_logged 'wlan0.* CONNECTED'" 5
check "netbond logged wlan0's CONNECTED event" nb_logged 'wlan0.* CONNECTED'
check "lan -> $A4 ping (wired)" lan_ping "$A4"

# ======================================================================== 2
step "2. wired unplugged: failover to Wi-Fi"
ip -o monitor address > $W/ipmon.txt 2>&1 & MON_PID=$!
sleep 0.3
switch_port failover down wlan0 "$MW" 5
if reconfirmed "$A4" "$MW" 20; then
  now_cs; T_ACK=$((_NOW-SWITCH_T0))
  ok "failover: $A4 re-confirmed over Wi-Fi ($(fmt_cs $T_ACK) s after unplug)"
  diag "UNPLUG-TO-LEASE (guest clock, incl. polling): $(fmt_cs $T_ACK) s"
else not_ok "failover: $A4 re-confirmed over Wi-Fi" "$(nb_since | tail -8)" "$(dn_since | grep DHCP | tail -4)"; fi
check "failover: dnsmasq saw DHCPREQUEST for $A4 with wlan0's MAC" dn_has "DHCPREQUEST(br0) $A4 $MW"
MS=$(reconfirm_ms "$A4" "$MW")
if [ -n "$MS" ]; then ok "netbond logged 're-confirmed $A4 from new MAC $MW in $MS ms'"; diag "FAILOVER-TO-WIFI-ACK: $MS ms (netbond's clock)"
else not_ok "netbond logged 're-confirmed $A4 from new MAC $MW in N ms'" "$(nb_since | grep dhcp4 | tail -4)"; fi
check "failover: no DHCPDISCOVER (address kept, not re-acquired)" eval "! dn_has 'DHCPDISCOVER(br0)'"
is "$(addr4_in $BOND)" "$A4" "failover: bond0 still has $A4"
check "failover: lan -> $A4 ping through the AP" lan_ping "$A4"
is "$(addr6_in $BOND)" "$A6" "failover: bond0 still has $A6"
check "failover: wlan0 still COMPLETED" wpa_completed

# ======================================================================== 3
step "3. wired back"
switch_port failback up eth0 "$M0" 10
if reconfirmed "$A4" "$M0" 15; then
  ok "failback: $A4 re-confirmed from eth0's MAC"; MS=$(reconfirm_ms "$A4" "$M0"); [ -n "$MS" ] && diag "FAILBACK-TO-ACK: $MS ms"
else not_ok "failback: $A4 re-confirmed from eth0's MAC" "$(nb_since | tail -8)"; fi
is "$(addr4_in $BOND) $(addr6_in $BOND)" "$A4 $A6" "failback: bond0 still has $A4 and $A6"
check "failback: lan -> $A4 ping" lan_ping "$A4"
sleep 0.2; kill $MON_PID 2>/dev/null; wait $MON_PID 2>/dev/null
if grep -q -E "^Deleted.* inet6? ($A4|$A6)/" $W/ipmon.txt; then
  not_ok "$A4/$A6 never left bond0 during failover/failback (ip monitor)" "$(grep Deleted $W/ipmon.txt | head -3)"
else ok "$A4 and $A6 never left bond0 during failover/failback (ip monitor)"; fi

# ======================================================================== 4
step "4. wpa_cli beside netbond on the same control socket"
is "$(wpacli ping 2>&1)" PONG "wpa_cli ping -> PONG"
ST=$(wpacli status 2>&1)
check "wpa_cli status: wpa_state=COMPLETED, ssid=$SSID" eval "[[ \$ST == *wpa_state=COMPLETED* && \$ST == *ssid=$SSID* ]]"
nb_mark
check "wpa_cli disconnect -> OK" eval '[ "$(wpacli disconnect 2>&1)" = OK ]'
if wait_for "nb_logged 'wlan0.* DISCONNECTED'" 5; then ok "netbond saw the DISCONNECTED event caused by wpa_cli"
else not_ok "netbond saw the DISCONNECTED event caused by wpa_cli" "$(nb_since | tail -5)"; fi
nb_mark
check "wpa_cli reconnect -> OK" eval '[ "$(wpacli reconnect 2>&1)" = OK ]'
if wait_for "nb_logged 'wlan0.* CONNECTED' && wpa_completed" 15; then ok "reconnect: COMPLETED again, netbond saw CONNECTED ($(fmt_cs $WAITED_CS) s)"
else not_ok "reconnect: COMPLETED again, netbond saw CONNECTED" "$(wpacli status 2>&1 | grep wpa_state)" "$(nb_since | tail -5)"; fi
check "netbond still running" nb_alive
is "$(wpacli ping 2>&1)" PONG "wpa_cli ping still PONG"

# ======================================================================== 5
step "5. the CLI: status --json, wifi wlan0 status/reassociate"
JS=$(nb_cli status --json 2>&1); echo "$JS" > $W/status.json
check "status --json: a wifi entry for wlan0" eval "grep -q '\"iface\": *\"wlan0\"' <<< \"\$JS\" && grep -q '\"wifi\"' <<< \"\$JS\""
check "status --json: wlan0 wpa_state COMPLETED" eval "grep -q '\"wpa_state\": *\"COMPLETED\"' <<< \"\$JS\""
check "status --json: wlan0 ssid $SSID" eval "grep -q '\"ssid\": *\"$SSID\"' <<< \"\$JS\""
check "status --json: wlan0 bssid = the AP's" eval "grep -qi '\"bssid\": *\"$(ip netns exec lan cat /sys/class/net/wlan1/address)\"' <<< \"\$JS\""
WS=$(nb_cli wifi wlan0 status 2>&1); RC=$?
echo "$WS" > $W/wifi-status.txt
is "$RC" 0 "netbond wifi wlan0 status: exit 0"
check "netbond wifi wlan0 status: COMPLETED" eval "[[ \$WS == *COMPLETED* ]]"
[[ $WS == *COMPLETED* ]] || diag "wifi status said: $(head -5 <<< "$WS")"
nb_mark
OUT=$(nb_cli wifi wlan0 reassociate 2>&1); RC=$?
is "$RC" 0 "netbond wifi wlan0 reassociate: exit 0"
[ "$RC" = 0 ] || diag "reassociate said: $OUT"
if wait_for "nb_logged 'wlan0.* CONNECTED' && wpa_completed" 15; then ok "reassociate: a new CONNECTED event, COMPLETED ($(fmt_cs $WAITED_CS) s)"
else not_ok "reassociate: a new CONNECTED event, COMPLETED" "$(nb_since | tail -5)"; fi
is "$(active_slave)" eth0 "reassociate: wired still active"

# ======================================================================== 6
step "6. wpa_supplicant killed: netbond restarts it"
nb_mark
if sup_pid; then OLD=$SUP
  kill -9 $OLD; now_cs; T_KILL=$_NOW
  if wait_for "! proc_alive $OLD && sup_pid && [ \"\$SUP\" != $OLD ]" 15; then
    ok "SIGKILL: netbond restarted wpa_supplicant (pid $OLD -> $SUP, $(fmt_cs $WAITED_CS) s)"
  else not_ok "SIGKILL: netbond restarted wpa_supplicant" "pid now: ${SUP:-none}" "$(nb_since | tail -6)"; fi
  check "netbond logged the exit of pid $OLD" nb_logged "wpa_supplicant (pid $OLD)"
  if wait_for wpa_completed 30; then now_cs; ok "after the restart: COMPLETED ($(fmt_cs $((_NOW-T_KILL))) s after the kill)"
  else not_ok "after the restart: COMPLETED" "$(wpacli status 2>&1 | grep wpa_state)" "$(nb_since | tail -6)"; fi
  check "after the restart: wpa_cli ping -> PONG" eval '[ "$(wpacli ping 2>&1)" = PONG ]'
  wait_for "nb_cli status --json | grep -q '\"wpa_state\": *\"COMPLETED\"'" 5
  check "after the restart: status --json shows COMPLETED" eval "nb_cli status --json | grep -q '\"wpa_state\": *\"COMPLETED\"'"
else not_ok "SIGKILL: netbond's wpa_supplicant found" "no wpa_supplicant child of netbond (pid $NB_PID)"; fi
check "netbond still running" nb_alive

# ======================================================================== 7
step "7. wlan0 deleted and re-created"
nb_mark; sup_pid; OLD=$SUP
check "iw dev wlan0 del" iw dev wlan0 del
if wait_for "! has_slave wlan0" 5; then ok "wlan0 gone from bond0's slaves"; else not_ok "wlan0 gone from bond0's slaves" "slaves: $(slaves)"; fi
if wait_for "! sup_pid" 10; then ok "netbond stopped wlan0's wpa_supplicant (pid ${OLD:-?})"
else not_ok "netbond stopped wlan0's wpa_supplicant" "still running: $SUP" "$(nb_since | tail -6)"; fi
check "no orphaned wpa_supplicant" eval "! any_sup"
check "netbond still running" nb_alive
is "$(active_slave)" eth0 "wired still active"
nb_mark
check "iw phy $PHY0 interface add wlan0 type managed" iw phy "$PHY0" interface add wlan0 type managed
is "$(mac wlan0)" "$MW" "re-created wlan0 has the same MAC"
if wait_for "has_slave wlan0" 10; then ok "re-created wlan0 enslaved ($(fmt_cs $WAITED_CS) s)"
else not_ok "re-created wlan0 enslaved" "slaves: $(slaves)" "$(nb_since | tail -6)"; fi
if wait_for "sup_pid" 10; then ok "netbond started a new wpa_supplicant (pid $SUP)"
else not_ok "netbond started a new wpa_supplicant" "$(nb_since | tail -6)"; fi
if wait_for wpa_completed 30; then ok "re-created wlan0: COMPLETED ($(fmt_cs $WAITED_CS) s)"
else not_ok "re-created wlan0: COMPLETED" "$(wpacli status 2>&1 | grep wpa_state)" "$(nb_since | tail -6)"; fi
is "$(addr4_in $BOND)" "$A4" "bond0 still has $A4"

# ======================================================================== 8
step "8. start with only Wi-Fi (the dhclient case), then plug the wire in"
dn_mark; nb_mark
nb_stop 10
is "$NB_RC" 0 "SIGTERM: netbond exited 0"
wait_for "! link_exists $BOND" 3
check "SIGTERM: bond0 deleted" eval "! link_exists $BOND"
if wait_for "! any_sup" 5; then ok "SIGTERM: wpa_supplicant stopped with netbond"
else not_ok "SIGTERM: wpa_supplicant stopped with netbond"; fi
ip -n lan link set lan0 down
dn_mark; nb_mark; now_cs; T_START=$_NOW
nb_start $CFG
wait_for "link_exists $BOND && is_active wlan0" 15
is "$(active_slave)" wlan0 "Wi-Fi-only start: active_slave = wlan0"
if wait_for "addr4_in $BOND" 30; then
  now_cs; A4W=$(addr4_in $BOND)
  ok "Wi-Fi-only start: IPv4 address $A4W ($(fmt_cs $((_NOW-T_START))) s after start)"
  diag "WIFI-ONLY-START-TO-LEASE: $(fmt_cs $((_NOW-T_START))) s (address $A4W; before: $A4)"
else not_ok "Wi-Fi-only start: IPv4 address" "$(nb_since | tail -10)" "$(dn_since | grep DHCP | tail -4)"; A4W=none; fi
check "Wi-Fi-only start: wlan0 COMPLETED" wpa_completed
# wlan0 has carrier from the association on, before the 4-way handshake: a DISCOVER
# sent in between is lost. netbond resends it (same xid) the moment the supplicant
# reports COMPLETED, so the lease must follow COMPLETED closely, not a backoff later.
NB_DISC=$(nb_since | sed '/dhcp4: bond0: bound/q' | grep -c 'dhcp4: bond0: sent DISCOVER')
DN_DISC=$(dn_since | grep -c 'DHCPDISCOVER(br0)')
diag "Wi-Fi-only start: netbond sent $NB_DISC DISCOVER(s) before the lease, the server got $DN_DISC"
check "Wi-Fi-only start: no DISCOVER retransmission after a backoff (lease on the first exchange)" eval '[ "$DN_DISC" -le 1 ]'
FIRST=$(dn_since | grep -E 'DHCP(DISCOVER|REQUEST)\(br0\)' | head -1)
diag "first DHCP message at the server: ${FIRST#*dnsmasq-dhcp}"
check "Wi-Fi-only start: the first DHCP message at the server has wlan0's MAC" eval "[[ \"\$FIRST\" == *$MW* ]]"
check "Wi-Fi-only start: a DHCPACK, no DHCPNAK" eval "dn_has 'DHCPACK(br0) $A4W $MW' && ! dn_has DHCPNAK"
check "Wi-Fi-only start: a single DHCP transaction (one xid)" eval '[ "$(dn_xids)" = 1 ]'
diag "DHCPv4 transactions at the server since the start: $(dn_xids)"
check "netbond logged 'bound $A4W/24 ... chaddr $MW'" nb_logged "dhcp4: bond0: bound $A4W/24 .*chaddr $MW"
check "Wi-Fi-only start: lan -> $A4W ping through the AP" lan_ping "$A4W"
dn_mark; nb_mark; now_cs; T_UP=$_NOW
ip -n lan link set lan0 up
wait_for "is_active eth0" 10
is "$(active_slave)" eth0 "wire plugged in: active_slave = eth0"
wait_for "mac_is $BOND $M0" 3
is "$(mac $BOND)" "$M0" "wire plugged in: bond0 MAC = eth0's"
if reconfirmed "$A4W" "$M0" 15; then
  now_cs; ok "wire plugged in: $A4W re-confirmed from eth0's MAC ($(fmt_cs $((_NOW-T_UP))) s)"
else not_ok "wire plugged in: $A4W re-confirmed from eth0's MAC" "$(nb_since | tail -8)"; fi
is "$(addr4_in $BOND)" "$A4W" "wire plugged in: same address $A4W"
check "wire plugged in: lan -> $A4W ping" lan_ping "$A4W"
nb_stop 10
is "$NB_RC" 0 "final SIGTERM: netbond exited 0"

step "done"
kill "$HAP_PID" 2>/dev/null
capture_stop; dnsmasq_stop
if [ $TAP_FAILS -gt 0 ]; then
  echo "# --- netbond log (last 50 lines)"; tail -50 "$NB_LOG" | sed 's/^/#   nb| /'
  echo "# --- dnsmasq DHCP lines (last 20)"; dn_tail 20
  echo "# --- hostapd log (last 10)"; tail -10 $W/hostapd.log 2>/dev/null | sed 's/^/#   ap| /'
fi
finish
