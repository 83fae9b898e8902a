#!/bin/bash
# integration/vm/guest/dhclient-compare.sh — a documented COMPARISON, not a test of
# netbond: the bond failover of bond.sh with ISC dhclient on a kernel-made bond0,
# to show what a classic client does when the bond's MAC changes under it.
#
# Needs ISC dhclient on the HOST (the guest runs the host's userland):
#   apt-get install -y isc-dhcp-client
#   integration/vm/run-vm.sh integration/vm/guest/dhclient-compare.sh
# env: NETBOND_GUEST_CMP_WAIT  seconds to watch after the failover [80: covers T1 of
#      dnsmasq's 2-minute lease, i.e. dhclient's first RENEW at ~60 s]
#
# What a Wi-Fi access point does is simulated on the LAN side: after the failover,
# frames arriving from eth1's port with eth0's (old) MAC as the Ethernet source are
# dropped (nftables, bridge family, in netns lan), as an AP drops 802.11 frames whose
# transmitter is not the associated station. Wired, the bridge would forward them.
. "$(dirname "$0")/lib.sh"
WAIT=${NETBOND_GUEST_CMP_WAIT:-80}
M0=$(port_mac 0) M1=$(port_mac 1)
command -v dhclient >/dev/null || { echo "Bail out! dhclient not installed on the host: apt-get install isc-dhcp-client"; finish; }

step "setup: modules, LAN, dnsmasq, kernel bond0 (same settings netbond uses)"
check "modules" load_modules
check "netns lan" lan_setup
check "dnsmasq" dnsmasq_start
capture_start
check "ip link add bond0 (active-backup, fail_over_mac active, miimon 100)" \
  ip link add bond0 type bond mode active-backup fail_over_mac active miimon 100
ip link set eth0 master bond0 && ip link set eth1 master bond0
ip link set bond0 type bond primary eth0
ip link set bond0 up
wait_for "is_active eth0" 5
is "$(active_slave)" eth0 "bond0 active = eth0"

step "dhclient -4 on bond0"
mkdir -p /var/lib/dhcp
dn_mark; now_cs; T0=$_NOW
dhclient -4 -d -v -lf $W/dhclient.leases -pf $W/dhclient.pid bond0 > $W/dhclient.log 2>&1 & DH_PID=$!
if wait_for "addr4_in bond0" 30; then A4=$(addr4_in bond0); now_cs
  ok "dhclient bound $A4 ($(fmt_cs $((_NOW-T0))) s)"
else not_ok "dhclient bound an address" "$(tail -5 $W/dhclient.log)"; kill $DH_PID; finish; fi

step "failover: lan0 down; the LAN now drops frames from eth1's port with eth0's MAC"
ip netns exec lan nft -f - <<EOF
table bridge nbcmp {
  chain pre { type filter hook prerouting priority -200; policy accept;
    iifname "lan1" ether saddr $M0 counter drop
  }
}
EOF
ip -o monitor address > $W/ipmon.txt 2>&1 & MON_PID=$!
dn_mark; now_cs; T_DOWN=$_NOW; TD_MARK=$({ wc -l < $W/br0-dhcp.txt; } 2>/dev/null || echo 0)
ip -n lan link set lan0 down
wait_for "is_active eth1 && mac_is bond0 $M1" 5
is "$(active_slave) $(mac bond0)" "eth1 $M1" "failover: eth1 active, bond0 MAC = eth1's"
diag "watching for $WAIT s (dnsmasq lease 2 min: dhclient RENEWs at T1 ~60 s after bind)"
sleep "$WAIT"
now_cs
kill $MON_PID 2>/dev/null

step "observations ($(fmt_cs $((_NOW-T_DOWN))) s after the failover)"
diag "dhclient log after the bind:"
sed -n '/^bound to/,$p' $W/dhclient.log | sed 's/^/#   dhclient| /' | tail -12
diag "dnsmasq DHCP lines since the failover:"
dn_since | grep -E 'DHCP[A-Z]+\(' | sed 's/^.*dnsmasq-dhcp[^:]*: /#   dn| /' | tail -12
N_OLD=$(dn_since | grep -E 'DHCP(DISCOVER|REQUEST)\(br0\)' | grep -c "$M0")
N_NEW=$(dn_since | grep -E 'DHCP(DISCOVER|REQUEST)\(br0\)' | grep -c "$M1")
diag "client messages at the server since the failover: chaddr=eth0 (old) MAC: $N_OLD, chaddr=eth1 (new) MAC: $N_NEW"
diag "frames dropped by the simulated AP (src = old MAC via lan1): $(ip netns exec lan nft list chain bridge nbcmp pre | grep -o 'packets [0-9]*')"
if [ -s $W/br0-dhcp.txt ]; then
  diag "DHCP frames seen on br0 after the failover (Ethernet src):"
  tail -n +$((TD_MARK+1)) $W/br0-dhcp.txt | awk '/^[0-9]/{print $2}' | sort | uniq -c | sed 's/^/#   /'
fi
diag "address on bond0 now: $(addr4 bond0) (was $A4); Deleted events: $(grep -c "^Deleted.* inet " $W/ipmon.txt)"
ip netns exec lan busybox ping -c1 -W2 "$A4" >/dev/null 2>&1 && diag "lan -> $A4 ping: works" || diag "lan -> $A4 ping: FAILS"
diag "netbond on the same failover (bond.sh): re-confirms $A4 from the new MAC within ~100 ms"
kill $DH_PID 2>/dev/null; wait $DH_PID 2>/dev/null
capture_stop; dnsmasq_stop
finish
