#!/bin/bash
# integration/vm/guest/bond.sh — netbond's bond mode against a real kernel bond and a
# real dnsmasq, all scenarios in ONE guest run (the boot is the expensive part):
#   1. netbond creates bond0 (active-backup, fail_over_mac=active, primary eth0),
#      enslaves eth0+eth1, gets DHCPv4 + DHCPv6 addresses on bond0
#   2. failover (primary's peer lan0 down): eth1 active, bond0 MAC = eth1's, the same
#      IPv4 address re-confirmed from eth1's MAC, never removed, still reachable
#   3. failback (lan0 up): eth0 active, MAC back, same address
#   4. hot-plug: eth2 appears -> enslaved; eth2 deleted -> released; netbond lives on
#   5. SIGTERM (on_stop = "release"): exit 0, bond0 deleted, DHCPRELEASE; restart: same IPv4 address
#  5b. on_stop = "keep": SIGTERM leaves bond0 and the address; the restart adopts bond0 and
#      confirms the address (no RELEASE, no DISCOVER, never deleted); stop --release cleans up
#   6. start with only the backup port up: a lease on the first try from eth1's MAC
#   7. an existing bond whose primary_reselect differs: refused (existing = "refuse"),
#      adopted with the difference logged (default)
#   8. a busy port (a macvlan holds it): the failed enslave is in the log and in
#      status, retried with backoff, and done once the port is freed
# Output: TAP. Run: NETBOND_BIN=... integration/vm/run-vm.sh integration/vm/guest/bond.sh
. "$(dirname "$0")/lib.sh"
BOND=bond0
M0=$(port_mac 0) M1=$(port_mac 1) M2=$(port_mac 2)
CFG=/tmp/nb.toml
nb_bond_conf $CFG "eth*"
nb_release_on_stop $CFG   # step 5 asserts the release at SIGTERM
PING=ping; command -v ping >/dev/null || PING="busybox ping"
lan_ping() { ip netns exec lan $PING -c1 -W2 "$1"; }
bail() { echo "Bail out! $*"; nb_tail 25; dn_tail; nb_alive && nb_stop 5; dnsmasq_stop; capture_stop; finish; }
# the "re-confirmed <addr> from new MAC <mac> in <N> ms" time from netbond's log
# DHCP messages at the server (dnsmasq --log-dhcp) since dn_mark
# number of distinct client transaction ids (DISCOVER/REQUEST) since dn_mark
dn_xids() { dn_since | sed -n 's/.*\]: \([0-9]*\) DHCP\(DISCOVER\|REQUEST\)(br0).*/\1/p' | sort -u | wc -l; }
# transactions that began with a DISCOVER (a start from scratch), since dn_mark
dn_discover_xids() { dn_since | sed -n 's/.*\]: \([0-9]*\) DHCPDISCOVER(br0).*/\1/p' | sort -u | wc -l; }

[ -n "${NETBOND_BIN:-}" ] && [ -x "$NETBOND_BIN" ] || { echo "Bail out! NETBOND_BIN not set or not executable: '${NETBOND_BIN:-}'"; finish; }

step "setup: modules, LAN namespace, dnsmasq, capture"
check "modules bonding (max_bonds=0), veth, bridge" load_modules
check "netns lan: br0 + eth0<->lan0 + eth1<->lan1" lan_setup
check "dnsmasq running on br0" dnsmasq_start
capture_start

# ======================================================================== 1
step "1. netbond creates bond0 and gets addresses"
ip -o monitor link > $W/linkmon.txt 2>&1 & LMON_PID=$!
sleep 0.3      # let the monitor subscribe
dn_mark; nb_mark; now_cs; T_START=$_NOW
nb_start $CFG
if wait_for "link_exists $BOND" 10; then ok "bond0 created by netbond"
else not_ok "bond0 created by netbond" "netbond alive: $(nb_alive && echo yes || echo no)"; bail "no bond0"; fi
wait_for "has_slave eth0 && has_slave eth1" 10
is "$(slaves)" "eth0 eth1" "both eth0 and eth1 enslaved"
wait_for "is_active eth0" 5
is "$(active_slave)" eth0 "active_slave = eth0 (primary)"
rd /sys/class/net/$BOND/bonding/fail_over_mac; is "$REPLY" "active 1" "fail_over_mac = active 1"
rd /sys/class/net/$BOND/bonding/mode; is "$REPLY" "active-backup 1" "mode = active-backup 1"
rd /sys/class/net/$BOND/bonding/primary; is "$REPLY" eth0 "primary = eth0"
if wait_for "addr4_in $BOND" 20; then
  A4=$(addr4_in $BOND); now_cs
  ok "IPv4 address on bond0 in 10.88.0.50-150: $A4 ($(fmt_cs $((_NOW-T_START))) s after start)"
else not_ok "IPv4 address on bond0 in 10.88.0.50-150" "bond0: $(ip -br addr show dev $BOND)"; bail "no IPv4 lease"; fi
check "netbond logged 'dhcp4: bond0: bound $A4/24 ... chaddr $M0'" \
  eval "nb_since | grep -q 'dhcp4: bond0: bound $A4/24 from .*chaddr $M0'"
check "dnsmasq: DHCPACK $A4 to eth0's MAC" dn_has "DHCPACK(br0) $A4 $M0"
if wait_for "addr6_in $BOND" 30; then
  A6=$(addr6_in $BOND); now_cs
  ok "IPv6 address on bond0 in fd88::100-1ff: $A6 ($(fmt_cs $((_NOW-T_START))) s after start)"
else not_ok "IPv6 address on bond0 in fd88::100-1ff" "bond0: $(ip -br -6 addr show dev $BOND)"; A6=; fi
[ -n "$A6" ] && check "netbond logged 'dhcp6: bond0: bound $A6/128'" eval "nb_since | grep -q 'dhcp6: bond0: bound .*$A6/128'"
check "lan -> $A4 ping" lan_ping "$A4"
kill $LMON_PID 2>/dev/null; wait $LMON_PID 2>/dev/null
# kernel truth: a port's RTM_NEWLINK without "master bond0" after one with it = released
# (ip prints veth ports as "eth0@if3")
released() { awk -v re="^[0-9]+: $1[:@]" '$0 ~ re {m=index($0," master bond0 ")>0; if(was&&!m)n++; was=m; seen++} END{print (seen ? n+0 : "no-events")}' $W/linkmon.txt; }
is "$(released eth0) $(released eth1)" "0 0" "startup: the kernel never released eth0/eth1 once enslaved (ip monitor link)"
check "startup: netbond's log shows no port leaving the bond ('left the bond')" eval "! nb_since | grep -q 'left the bond'"
check "startup: no 'set primary on bond0 failed' warning" eval "! grep -q 'set primary on bond0 failed' $NB_LOG"

# events from here to the end of 3 (netbond monitor, the JSON lines of the README)
"$NETBOND_BIN" monitor --json --run-dir $W/run > $W/events.jsonl 2> $W/events.err & EV_PID=$!
wait_for "grep -q 'following events' $W/events.err" 5 || diag "netbond monitor: $(cat $W/events.err)"
# ev TYPE: the event lines of that type so far
ev() { grep "\"type\":\"$1\"" $W/events.jsonl; }

# ======================================================================== 2
step "2. failover: lan0 down -> eth1"
cat /proc/net/bonding/$BOND > $W/bonding-before-failover.txt 2>&1
ip -o monitor address > $W/ipmon.txt 2>&1 & MON_PID=$!
sleep 0.3      # let the monitor subscribe
switch_port failover down eth1 "$M1" 5
if reconfirmed "$A4" "$M1" 15; then
  now_cs; ok "failover: $A4 re-confirmed from eth1's MAC ($(fmt_cs $((_NOW-SWITCH_T0))) s after lan0 down)"
else not_ok "failover: $A4 re-confirmed from eth1's MAC" "$(nb_since | tail -8)" "$(dn_since | grep DHCP | tail -4)"; fi
check "failover: dnsmasq saw a DHCPREQUEST for $A4 with chaddr = eth1's MAC" dn_has "DHCPREQUEST(br0) $A4 $M1"
MS=$(reconfirm_ms "$A4" "$M1")
if [ -n "$MS" ]; then ok "netbond logged 're-confirmed $A4 from new MAC $M1 in $MS ms'"; diag "FAILOVER-TO-ACK: $MS ms (netbond's clock)"
else not_ok "netbond logged 're-confirmed $A4 from new MAC $M1 in N ms'"; fi
check "failover: no DHCPDISCOVER (the address was kept, not re-acquired)" eval "! dn_has 'DHCPDISCOVER(br0)'"
is "$(addr4_in $BOND)" "$A4" "failover: bond0 still has $A4"
check "failover: lan -> $A4 ping" lan_ping "$A4"
cat /proc/net/bonding/$BOND > $W/bonding-after-failover.txt 2>&1
"$NETBOND_BIN" status --run-dir $W/run > $W/status-after-failover.txt 2>&1 || true

# ======================================================================== 3
step "3. failback: lan0 up -> eth0"
switch_port failback up eth0 "$M0" 10
if reconfirmed "$A4" "$M0" 15; then
  ok "failback: $A4 re-confirmed from eth0's MAC"; MS=$(reconfirm_ms "$A4" "$M0"); [ -n "$MS" ] && diag "FAILBACK-TO-ACK: $MS ms"
else not_ok "failback: $A4 re-confirmed from eth0's MAC" "$(nb_since | tail -8)"; fi
is "$(addr4_in $BOND)" "$A4" "failback: bond0 still has $A4"
check "failback: lan -> $A4 ping" lan_ping "$A4"
sleep 0.2; kill $MON_PID 2>/dev/null; wait $MON_PID 2>/dev/null
is "$(ev bond-active-changed | grep -o '"active_port":"[a-z0-9]*"' | tr '\n' ' ')" \
  '"active_port":"eth1" "active_port":"eth0" ' "events: bond-active-changed to eth1, then to eth0 (netbond monitor)"
is "$(ev dhcp4-reconfirmed | grep -c "\"address\":\"$A4\"")" 2 "events: dhcp4-reconfirmed of $A4 once per switch"
check "events: no dhcp4-lost or dhcp4-changed during failover/failback" eval "! ev 'dhcp4-\(lost\|changed\)'"
kill $EV_PID 2>/dev/null; wait $EV_PID 2>/dev/null
if grep -q "^Deleted.* inet $A4/" $W/ipmon.txt; then
  not_ok "$A4 never left bond0 during failover/failback (ip monitor)" "$(grep Deleted $W/ipmon.txt | head -3)"
else ok "$A4 never left bond0 during failover/failback (ip monitor: no Deleted)"; fi

# ======================================================================== 4
step "4. hot-plug eth2"
nb_mark
check "created veth eth2<->lan2 (lan end on br0)" add_port 2
if wait_for "has_slave eth2" 10; then ok "hot-plug: eth2 enslaved ($(fmt_cs $WAITED_CS) s)"
else not_ok "hot-plug: eth2 enslaved" "slaves: $(slaves)" "$(nb_since | tail -5)"; fi
is "$(active_slave)" eth0 "hot-plug: active_slave still eth0"
ip link del eth2
if wait_for "! has_slave eth2" 5; then ok "hot-unplug: eth2 released"; else not_ok "hot-unplug: eth2 released" "slaves: $(slaves)"; fi
check "hot-unplug: netbond still running" nb_alive
is "$(slaves)" "eth0 eth1" "hot-unplug: slaves back to eth0 eth1"
is "$(addr4_in $BOND)" "$A4" "hot-plug: bond0 still has $A4"

# ======================================================================== 5
step "5. SIGTERM, then start again"
dn_mark; nb_mark
nb_stop 10
is "$NB_RC" 0 "SIGTERM: netbond exited 0"
if wait_for "! link_exists $BOND" 3; then ok "SIGTERM: bond0 deleted"; else not_ok "SIGTERM: bond0 deleted" "$(ip -br link show $BOND)"; fi
wait_for "dn_has 'DHCPRELEASE(br0) $A4'" 3
check "SIGTERM: dnsmasq logged DHCPRELEASE of $A4" dn_has "DHCPRELEASE(br0) $A4"
dn_mark; nb_mark; now_cs; T_START=$_NOW
nb_start $CFG
if wait_for "link_exists $BOND" 10; then ok "restart: bond0 back"; else not_ok "restart: bond0 back"; bail "no bond0 after restart"; fi
if wait_for "addr4_in $BOND" 20; then
  now_cs; is "$(addr4_in $BOND)" "$A4" "restart: same IPv4 address $A4 ($(fmt_cs $((_NOW-T_START))) s after start)"
else not_ok "restart: same IPv4 address $A4" "bond0: $(ip -br addr show dev $BOND)"; fi
wait_for "has_slave eth0 && has_slave eth1 && is_active eth0" 5
is "$(active_slave)" eth0 "restart: active_slave = eth0"

# ======================================================================== 5b
step "5b. a restart that keeps the network (on_stop = keep, the default), then stop --release"
nb_stop 10
wait_for "! link_exists $BOND" 3
KCFG=/tmp/nb-keep.toml
nb_bond_conf $KCFG "eth*"
nb_start $KCFG
if wait_for "addr4_in $BOND" 20; then A4K=$(addr4_in $BOND); ok "keep: bound $A4K"
else A4K=none; not_ok "keep: bound" "$(nb_since | tail -6)"; fi
rd /sys/class/net/$BOND/ifindex; BIDX=$REPLY
ip -o monitor address > $W/addrmon.txt 2>&1 & AMON_PID=$!
sleep 0.3      # let the monitor subscribe
dn_mark; nb_mark
nb_stop 10
is "$NB_RC" 0 "keep: SIGTERM: netbond exited 0"
check "keep: SIGTERM: bond0 left in place" link_exists $BOND
check "keep: SIGTERM: eth0 and eth1 still enslaved" eval "has_slave eth0 && has_slave eth1"
is "$(addr4_in $BOND)" "$A4K" "keep: SIGTERM: $A4K still on bond0"
nb_start $KCFG
if wait_for "dn_has 'DHCPACK(br0) $A4K'" 15; then ok "keep: restart: $A4K confirmed by the server"
else not_ok "keep: restart: $A4K confirmed by the server" "$(nb_since | tail -6)" "$(dn_since | grep DHCP | tail -4)"; fi
check "keep: restart: netbond adopted the existing bond0" eval "nb_since | grep -q 'adopting the existing bond'"
rd /sys/class/net/$BOND/ifindex; is "$REPLY" "$BIDX" "keep: restart: the same bond0 (ifindex $BIDX)"
check "keep: no DHCPRELEASE and no DHCPDISCOVER at the server across the restart" \
  eval "! dn_has DHCPRELEASE && ! dn_has DHCPDISCOVER"
check "keep: lan -> $A4K ping after the restart" lan_ping "$A4K"
kill $AMON_PID 2>/dev/null; wait $AMON_PID 2>/dev/null
check "keep: $A4K never deleted (ip monitor address)" eval "! grep -q '^Deleted.* $A4K/' $W/addrmon.txt"
dn_mark
"$NETBOND_BIN" stop --release --run-dir $W/run >> "$NB_LOG" 2>&1
is "$?" 0 "netbond stop --release: exit 0"
if wait_for '! nb_alive' 10; then wait "$NB_PID"; NB_RC=$?; else NB_RC=timeout; fi
NB_PID=
is "$NB_RC" 0 "stop --release: netbond exited 0"
check "stop --release: bond0 deleted" eval "! link_exists $BOND"
wait_for "dn_has 'DHCPRELEASE(br0) $A4K'" 3
check "stop --release: dnsmasq logged DHCPRELEASE of $A4K" dn_has "DHCPRELEASE(br0) $A4K"
nb_start $CFG   # step 6 begins by stopping a releasing netbond
wait_for "addr4_in $BOND" 20

# ======================================================================== 6
step "6. start with only the backup port up"
nb_stop 10
is "$NB_RC" 0 "stop before scenario 6: netbond exited 0"
wait_for "! link_exists $BOND" 3
ip -n lan link set lan0 down
rd /sys/class/net/eth0/operstate; diag "eth0 operstate after lan0 down: $REPLY"
dn_mark; nb_mark; now_cs; T_START=$_NOW
nb_start $CFG
wait_for "link_exists $BOND && is_active eth1" 10
is "$(active_slave)" eth1 "backup-only start: active_slave = eth1"
if wait_for "addr4_in $BOND" 20; then
  now_cs; A4B=$(addr4_in $BOND)
  ok "backup-only start: IPv4 address $A4B ($(fmt_cs $((_NOW-T_START))) s after start)"
  # not asserted: after the DHCPRELEASE at stop dnsmasq deleted the lease, and it picks a
  # new client's address by a hash of chaddr (not of the client-id), so eth1's MAC may
  # get another address.
  diag "backup-only start: address $A4B (before the release: $A4)"
else not_ok "backup-only start: IPv4 address" "$(nb_since | tail -8)"; A4B=none; fi
FIRST=$(dn_since | grep -E 'DHCP(DISCOVER|REQUEST)\(br0\)' | head -1)
diag "first DHCP message at the server: ${FIRST#*dnsmasq-dhcp}"
check "backup-only start: the first DHCP message at the server has eth1's MAC" eval "[[ \"\$FIRST\" == *$M1* ]]"
check "backup-only start: no DHCP message from eth0's MAC" eval "! dn_since | grep -E 'DHCP[A-Z]*\(br0\)' | grep -q $M0"
check "backup-only start: a DHCPACK and no DHCPNAK" \
  eval "[ \"\$(dn_since | grep -c 'DHCPACK(br0)')\" -ge 1 ] && ! dn_has 'DHCPNAK'"
check "netbond logged 'bound $A4B/24 ... chaddr $M1'" eval "nb_since | grep -q 'dhcp4: bond0: bound $A4B/24 from .*chaddr $M1'"
# One DISCOVER transaction: no restart from scratch. The bond's own carrier flap while
# it settles on eth1 may come after the ACK, and a carrier that comes back makes netbond
# re-confirm its lease (a REQUEST for the same address), which is right.
check "backup-only start: one DISCOVER transaction, any other one a REQUEST for $A4B" \
  eval '[ "$(dn_discover_xids)" = 1 ] && ! dn_since | grep -E "DHCPREQUEST\(br0\)" | grep -vq " $A4B "'
diag "DHCPv4 transactions at the server since the start: $(dn_xids)"
nb_stop 10
is "$NB_RC" 0 "final SIGTERM: netbond exited 0"

# ======================================================================== 7
step "7. an existing bond with another primary_reselect: refused, or adopted with a warning"
ip link del $BOND 2>/dev/null; wait_for "! link_exists $BOND" 3
ip link add $BOND type bond mode active-backup fail_over_mac active miimon 100 primary_reselect better
rd /sys/class/net/$BOND/bonding/primary_reselect; diag "hand-made bond0: primary_reselect $REPLY"
CFG_REFUSE=/tmp/nb-refuse.toml
# right after the [bond] header: other sections may follow it
sed 's/^\[bond\]$/[bond]\nexisting = "refuse"/' $CFG > $CFG_REFUSE
nb_mark; nb_start $CFG_REFUSE
if wait_for '! nb_alive' 10; then wait $NB_PID; NB_RC=$?; NB_PID=; else NB_RC=running; nb_stop 5; fi
check "refuse: netbond did not start on a bond with primary_reselect better (exit $NB_RC)" eval '[ "$NB_RC" != 0 ] && [ "$NB_RC" != running ]'
check "refuse: the error names it ('primary_reselect is better, not always')" \
  eval "nb_since | grep -q 'primary_reselect is better, not always'"
nb_mark; nb_start $CFG
if wait_for "nb_since | grep -q 'adopting the existing bond as it is: .*primary_reselect is better, not always'" 10; then
  ok "adopt: the primary_reselect difference is logged"
else not_ok "adopt: the primary_reselect difference is logged" "$(nb_since | head -8)"; fi
wait_for "has_slave eth0 && has_slave eth1" 10
is "$(slaves)" "eth0 eth1" "adopt: eth0 and eth1 enslaved"

# ======================================================================== 8
step "8. a busy port: the failed enslave is shown, retried with backoff, done once freed"
# eth3 arrives already busy: a macvlan on it holds its receive handler, so the bond's
# enslave fails with EBUSY ("Device is in use"). It is made under another name and
# renamed, so netbond never sees a free eth3.
modprobe macvlan
ip link add tmp3 address "$(port_mac 3)" type veth peer name lan3 address 52:54:00:88:01:03 netns lan
ip -n lan link set lan3 master br0 up
ip link add mv3 link tmp3 type macvlan mode bridge
nb_mark; now_cs; T_BUSY=$_NOW
ip link set tmp3 name eth3
if wait_for "nb_since | grep -q 'could not enslave eth3 (attempt 1)'" 10; then
  ok "busy port: the failed enslave of eth3 is logged"
else not_ok "busy port: the failed enslave of eth3 is logged" "$(nb_since | tail -5)"; fi
"$NETBOND_BIN" status --json --run-dir $W/run > $W/status-busy.json 2>&1
"$NETBOND_BIN" status --run-dir $W/run > $W/status-busy.txt 2>&1
check "busy port: status --json shows eth3 as enslave-failed with its error" \
  eval "grep -q '\"enslave-failed\"' $W/status-busy.json && grep -q 'busy' $W/status-busy.json"
check "busy port: netbond status shows 'eth3 enslave-failed after N attempt(s)'" \
  eval "grep -q 'eth3 *enslave-failed after' $W/status-busy.txt"
sleep 5
N_TRIES=$(nb_since | grep -c 'could not enslave eth3 (attempt')
diag "attempts on eth3 in the first ~5 s: $N_TRIES"
check "busy port: retried with backoff (2 to 5 attempts in ~5 s, not a loop)" eval '[ "$N_TRIES" -ge 2 ] && [ "$N_TRIES" -le 5 ]'
check "busy port: eth3 is not a port yet" eval '! has_slave eth3'
ip link del mv3
if wait_for "has_slave eth3" 10; then ok "freed port: eth3 enslaved on the retry ($(fmt_cs $WAITED_CS) s after the macvlan went)"
else not_ok "freed port: eth3 enslaved on the retry" "slaves: $(slaves)" "$(nb_since | tail -5)"; fi
check "freed port: logged 'enslaved eth3 (after N failed attempt(s))'" \
  eval "nb_since | grep -q 'enslaved eth3 (after [0-9]* failed attempt'"
"$NETBOND_BIN" status --json --run-dir $W/run > $W/status-freed.json 2>&1
check "freed port: status no longer lists a failed enslave" eval "! grep -q 'enslave-failed' $W/status-freed.json"
nb_stop 10
is "$NB_RC" 0 "scenario 8: netbond exited 0"
ip link del $BOND 2>/dev/null; ip link del eth3 2>/dev/null

step "done"
capture_stop; dnsmasq_stop
if [ $TAP_FAILS -gt 0 ]; then
  echo "# --- netbond log (last 40 lines)"; tail -40 "$NB_LOG" | sed 's/^/#   nb| /'
  echo "# --- dnsmasq DHCP lines (last 20)"; dn_tail 20
fi
finish
