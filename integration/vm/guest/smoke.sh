#!/bin/bash
# integration/vm/guest/smoke.sh — proves the VM tier works: modules load, the kernel
# makes an active-backup bond, and veth + bridge + dnsmasq in netns lan give a DHCPv4
# lease to busybox udhcpc. Run: integration/vm/run-vm.sh integration/vm/guest/smoke.sh
. "$(dirname "$0")/lib.sh"

step "modules"
check "modprobe bonding max_bonds=0, veth, bridge" load_modules
check "no automatic bond0 (max_bonds=0)" test ! -e /sys/class/net/bond0

step "kernel bond"
check "ip link add bond0 type bond mode active-backup" ip link add bond0 type bond mode active-backup fail_over_mac active miimon 100
rd /sys/class/net/bond0/bonding/mode; is "$REPLY" "active-backup 1" "bond0 mode"
rd /sys/class/net/bond0/bonding/fail_over_mac; is "$REPLY" "active 1" "bond0 fail_over_mac"

step "LAN: netns lan, br0, veth pairs, dnsmasq"
check "lan namespace, br0, eth0<->lan0, eth1<->lan1" lan_setup
check "dnsmasq started in netns lan" dnsmasq_start
capture_start

step "DHCPv4 with busybox udhcpc on eth0 (kernel bond not involved)"
ip link set eth0 up
if busybox udhcpc -i eth0 -f -q -n -t 5 -T 1 -A 1 -s /bin/true > $W/udhcpc.log 2>&1; then
  ok "busybox udhcpc got a lease: $(grep -o 'lease of [0-9.]* obtained' $W/udhcpc.log)"
else not_ok "busybox udhcpc got a lease" "$(tail -3 $W/udhcpc.log)"; fi
wait_for "grep -q 'DHCPACK(br0)' $DN_LOG" 3
check "dnsmasq logged the DHCPACK with eth0's MAC" grep -q "DHCPACK(br0) $LAN4\.[0-9]* $(port_mac 0)" $DN_LOG

step "enslave a port (must be down) into bond0"
ip link set eth1 down
check "ip link set eth1 master bond0" ip link set eth1 master bond0
ip link set bond0 up
check "bond0 slaves = eth1" has_slave eth1

if [ -n "${NETBOND_BIN:-}" ]; then
  check "the netbond binary runs in the guest ($NETBOND_BIN)" "$NETBOND_BIN" --version
fi
capture_stop; dnsmasq_stop
finish
