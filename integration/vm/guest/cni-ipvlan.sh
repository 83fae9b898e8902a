#!/bin/bash
# integration/vm/guest/cni-ipvlan.sh — netbond as the IPAM of Debian's stock ipvlan CNI
# plugin (the host kernel has no ipvlan; this VM's stock kernel has). Two containers
# on one ipvlan master share its MAC: each must still get its own address (RFC 4361
# client-ids differ) and, with broadcast "auto", receive the server's replies before
# it has an address (the BOOTP broadcast flag). DEL releases.
# Run: integration/vm/run-vm.sh integration/vm/guest/cni-ipvlan.sh (NETBOND_BIN set)
. "$(dirname "$0")/lib.sh"

CNI=/usr/lib/cni
step "modules, LAN, dnsmasq"
check "modprobe veth, bridge, ipvlan" load_modules ipvlan
check "lan namespace, br0, eth0<->lan0, eth1<->lan1" lan_setup
ip link set eth0 up
check "dnsmasq started in netns lan" dnsmasq_start
if [ ! -x $CNI/ipvlan ] || [ -z "${NETBOND_BIN:-}" ]; then
  not_ok "Debian's containernetworking-plugins in the guest ($CNI/ipvlan) and NETBOND_BIN" \
    "install containernetworking-plugins on the host (the guest sees the host's /usr)"
  finish
fi

step "netbond cni serve"
mkdir -p $W/cni-bin
ln -sf "$NETBOND_BIN" $W/cni-bin/netbond
SOCK=$W/cni.sock
"$NETBOND_BIN" cni serve --socket $SOCK --state-dir $W/cni-state --log-level debug > $W/cni-daemon.log 2>&1 &
NB_CNI=$!
check "the daemon listens on $SOCK" wait_for "[ -S $SOCK ]" 10

conf() {
  printf '{"cniVersion":"1.0.0","name":"lan","type":"ipvlan","master":"eth0","mode":"l2","ipam":{"type":"netbond","daemonSocketPath":"%s"}}' "$SOCK"
}
# cni CMD CONTAINER: run the ipvlan plugin; stdout to $W/CONTAINER.CMD.json
cni() {
  CNI_COMMAND=$1 CNI_CONTAINERID=cid-$2 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=eth0 \
    CNI_PATH=$W/cni-bin:$CNI $CNI/ipvlan <<< "$(conf)" > $W/$2.$1.json 2>$W/$2.$1.err
}
# The plugin pretty-prints: "address": "10.88.0.83/24"
v4_of() { grep -o '"address": *"[0-9.]*/' "$1" | head -1 | grep -o '[0-9][0-9.]*[0-9]'; }

step "ADD two ipvlan containers (one shared MAC)"
dn_mark
for c in ct1 ct2; do
  ip netns add $c
  if cni ADD $c; then ok "ipvlan ADD $c"; else not_ok "ipvlan ADD $c" "$(cat $W/$c.ADD.json $W/$c.ADD.err)" "$(tail -20 $W/cni-daemon.log)"; fi
done
A1=$(v4_of $W/ct1.ADD.json); A2=$(v4_of $W/ct2.ADD.json)
diag "ct1 $A1, ct2 $A2"
if [ -n "$A1" ] && [ -n "$A2" ] && [ "$A1" != "$A2" ]; then ok "two different addresses ($A1, $A2)"
else not_ok "two different addresses" "ct1 '$A1' ct2 '$A2'"; fi
check "ct1's eth0 has $A1" eval "ip -n ct1 -4 -o addr show dev eth0 | grep -q ' $A1/'"
check "ct2's eth0 has $A2" eval "ip -n ct2 -4 -o addr show dev eth0 | grep -q ' $A2/'"
M1=$(ip -n ct1 -o link show eth0 | grep -o 'link/ether [0-9a-f:]*'); M2=$(ip -n ct2 -o link show eth0 | grep -o 'link/ether [0-9a-f:]*')
is "$M1" "$M2" "both containers have the same MAC (ipvlan)"
check "the daemon detected ipvlan and asked for broadcast replies" grep -q "(ipvlan): asking for broadcast replies" $W/cni-daemon.log
check "dnsmasq answered by broadcast" dn_has "broadcast response"
check "ct1 reaches the server" ip netns exec ct1 ping -c1 -W2 $LAN4.1

step "DEL releases"
dn_mark
check "ipvlan DEL ct1" cni DEL ct1
check "dnsmasq logged DHCPRELEASE for $A1" wait_for "dn_has 'DHCPRELEASE(br0) $A1 '" 10
check "a second DEL succeeds" cni DEL ct1
check "ipvlan DEL ct2" cni DEL ct2

kill $NB_CNI 2>/dev/null; wait $NB_CNI 2>/dev/null
ip netns del ct1; ip netns del ct2
dnsmasq_stop
finish
