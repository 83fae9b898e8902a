#!/usr/bin/env bash
# Capture real DHCPv4/DHCPv6 server replies as fuzz seeds.
#
# Runs dnsmasq (server) and netbond (client) in two throwaway network namespaces joined
# by a veth pair, captures with tcpdump on the server side, and extracts the UDP
# payloads into fuzz/seeds/{dhcp4,dhcp6}/. Needs root, ip, dnsmasq, tcpdump, python3
# and a built netbond binary (NETBOND=path, default target/debug/netbond).
# Never touches the root namespace's interfaces; both namespaces are deleted on exit.
#
# The client uses a fixed identity (DUID, IAID 1, MAC) that the fuzz targets share, so
# the captured replies echo exactly the client identifier the targets' clients send.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NETBOND=${NETBOND:-$here/../target/debug/netbond}
[ "$(id -u)" = 0 ] || { echo "gen-seeds.sh: must run as root" >&2; exit 1; }
for p in ip dnsmasq tcpdump python3; do
  command -v "$p" >/dev/null || { echo "gen-seeds.sh: $p missing" >&2; exit 1; }
done
[ -x "$NETBOND" ] || { echo "gen-seeds.sh: no netbond binary at $NETBOND (set NETBOND=)" >&2; exit 1; }

S=nbtest-fuzz-$$-s
C=nbtest-fuzz-$$-c
tmp=$(mktemp -d /tmp/nbfuzz-seeds.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$S"
ip netns add "$C"
ip -n "$S" link set lo up
ip -n "$C" link set lo up
ip -n "$S" link add s0 type veth peer name c0 address 02:00:00:00:00:01 netns "$C"
ip netns exec "$S" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad'
ip -n "$S" addr add 10.78.0.1/24 dev s0
ip -n "$S" addr add fd78::1/64 dev s0 nodad
ip -n "$S" link set s0 up
ip -n "$C" link set c0 up

ip netns exec "$S" tcpdump -i s0 -n -U -s 0 -w "$tmp/cap.pcap" \
  'udp port 67 or udp port 68 or udp port 546 or udp port 547' 2>"$tmp/tcpdump.err" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$tmp/tcpdump.err" 2>/dev/null && break; sleep 0.1; done

ip netns exec "$S" dnsmasq -k -C /dev/null --port=0 --no-ping --bind-interfaces \
  --interface=s0 --user=root --dhcp-authoritative --log-dhcp \
  --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" \
  --dhcp-range=10.78.0.50,10.78.0.150,255.255.255.0,2m \
  --dhcp-range=fd78::100,fd78::1ff,64,2m \
  --dhcp-option=option:router,10.78.0.1 \
  --dhcp-option=option:dns-server,10.78.0.1,10.78.0.2,10.78.0.3,10.78.0.4 \
  --dhcp-option=option:domain-name,example.test \
  --dhcp-option=option:domain-search,a.example.test,b.example.test,example.test \
  --dhcp-option=option:classless-static-route,0.0.0.0/0,10.78.0.1,192.0.2.0/24,10.78.0.1 \
  --dhcp-option=option:mtu,1400 \
  --dhcp-option=option:ntp-server,10.78.0.1 \
  --dhcp-option=option6:dns-server,[fd78::1],[fd78::2] \
  --dhcp-option=option6:domain-search,example.test \
  --dhcp-option=option6:ntp-server,[fd78::1] \
  >"$tmp/dnsmasq.log" 2>&1 &
pids+=($!)
sleep 1

cat >"$tmp/netbond.toml" <<TOML
[identity]
duid = "00:01:00:01:2e:2d:01:bd:52:54:00:12:34:56"
iaid = "1"
[dhcp6]
mode = "stateful"
rapid_commit = false
TOML
run_nb() {
  ip netns exec "$C" "$NETBOND" run --iface c0 --state-dir "$tmp/state" --run-dir "$tmp/run" \
    --resolv-conf "$tmp/resolv.conf" --config "$tmp/netbond.toml" --log-level debug \
    >>"$tmp/netbond.log" 2>&1 &
  nbpid=$!
  pids+=($nbpid)
}
wait_file() { for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; return 1; }

# 1. DISCOVER/OFFER/REQUEST/ACK and Solicit/Advertise/Request/Reply.
run_nb
wait_file "$tmp/state/lease4-c0.json"
wait_file "$tmp/state/lease6-c0.json"
sleep 1
mkdir -p "$here/seeds/lease"
cp "$tmp/state/lease4-c0.json" "$tmp/state/lease6-c0.json" "$here/seeds/lease/"
kill -9 "$nbpid" 2>/dev/null || { echo "netbond exited early:" >&2; tail -n 20 "$tmp/netbond.log" >&2; }
wait "$nbpid" 2>/dev/null || true
# 2. Restart: INIT-REBOOT (ACK) and Confirm (Reply).
rm -f "$tmp/state/lease6-c0.json.confirmed"
run_nb
sleep 4
kill -9 "$nbpid" 2>/dev/null || { echo "netbond exited early:" >&2; tail -n 20 "$tmp/netbond.log" >&2; }
wait "$nbpid" 2>/dev/null || true
# 3. A saved lease on a foreign network: INIT-REBOOT REQUEST -> NAK.
sed -i 's/"10\.78\.0\.[0-9]*"/"10.99.0.5"/' "$tmp/state/lease4-c0.json"
run_nb
sleep 4
kill -TERM "$nbpid" 2>/dev/null || true  # RELEASE + DHCPv6 Release -> Reply
sleep 2
kill -INT "${pids[0]}" 2>/dev/null || true
sleep 0.5

python3 - "$tmp/cap.pcap" "$here/seeds" <<'PY'
import struct, sys, os, hashlib
data = open(sys.argv[1], 'rb').read()
out = sys.argv[2]
magic = struct.unpack('<I', data[:4])[0]
e = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
off = 24
names4 = {1:'discover',2:'offer',3:'request',4:'decline',5:'ack',6:'nak',7:'release',8:'inform'}
names6 = {1:'solicit',2:'advertise',3:'request',4:'confirm',5:'renew',6:'rebind',7:'reply',8:'release',9:'decline',10:'reconfigure',11:'inforeq'}
n = 0
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(e + 'IIII', data[off:off+16]); off += 16
    f = data[off:off+incl]; off += incl
    et = struct.unpack('>H', f[12:14])[0]; p = f[14:]
    if et == 0x0800:
        ihl = (p[0] & 15) * 4; proto = p[9]; l4 = p[ihl:]
    elif et == 0x86dd:
        proto = p[6]; l4 = p[40:]
    else:
        continue
    if proto != 17: continue
    sport, dport, ulen = struct.unpack('>HHH', l4[:6]); pl = l4[8:ulen]
    if sport in (67, 68):
        t = 0
        i = 240
        while i < len(pl) and pl[i] != 255:
            if pl[i] == 0: i += 1; continue
            if pl[i] == 53 and i + 2 < len(pl): t = pl[i+2]
            i += 2 + pl[i+1]
        d, name = 'dhcp4', names4.get(t, 'type%d' % t)
    elif sport in (546, 547):
        d, name = 'dhcp6', names6.get(pl[0], 'type%d' % pl[0])
    else:
        continue
    os.makedirs(os.path.join(out, d), exist_ok=True)
    fn = os.path.join(out, d, 'cap-%s-%s.bin' % (name, hashlib.sha1(pl).hexdigest()[:10]))
    open(fn, 'wb').write(pl); n += 1
print('extracted %d payloads' % n)
PY
ls -l "$here/seeds/dhcp4" "$here/seeds/dhcp6"
