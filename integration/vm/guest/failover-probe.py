#!/usr/bin/env python3
"""failover-probe.py — one timed bond failover, run INSIDE the VM by bench-failover.sh.

usage: failover-probe.py --bond bond0 --addr A --old-mac M0 --new-mac M1 --cap S
                         [--ns lan --down lan0] [--then 'SHELL CMD'] [--grace S]

One process does the whole measurement, so there is no fork/exec between t0 and the
unplug:
  1. opens (before t0) an rtnetlink socket for bond0's address and link events, an
     AF_PACKET socket on bond0 (every frame, kernel receive timestamps SO_TIMESTAMPNS,
     CLOCK_REALTIME) and an rtnetlink socket in netns NS (setns there and back);
  2. t0 = CLOCK_REALTIME, then RTM_NEWLINK "DOWN" for DOWN in NS (the LAN-side end of
     the wired port: the unplug) sent from that socket;
  3. starts --then CMD (if any) after the unplug (a reference dhclient restart);
  4. waits until the first DHCPACK with chaddr = NEW_MAC is received on bond0 (the
     confirmed lease over the backup), or CAP seconds; after an ACK, 0.3 s more for late
     events, or up to GRACE s until a v4 address is (back) on bond0.
Prints one line `key=value ...`: ack_ms (t0 -> kernel rx stamp of that DHCPACK), req_ms
(t0 -> the first DISCOVER/REQUEST with chaddr NEW_MAC), mac_ms (t0 -> RTM_NEWLINK with
bond0's MAC = NEW_MAC, stamped when this process reads it: an upper bound),
ack_addr, same (ack_addr == A), deleted (an RTM_DELADDR of A was seen), absent_ms (from it to the next v4 global address on
bond0, or to the end), sent_old/sent_new (DISCOVERs/REQUESTs after t0 by chaddr),
acks_old (DHCPACKs after t0 to OLD_MAC), naks.
The rtnetlink parsing and the DHCP reply parser are bench.py's (the guest sees the
host's / , so the repository is at the same path).
"""

import argparse
import ctypes
import os
import select
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import bench  # noqa: E402  (nl_open, nl_parse, dhcp_parse)

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
IFF_UP = 0x1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFLA_IFNAME = 3
LINGER = 300_000_000  # ns


def netns_socket(ns):
    """An rtnetlink socket that lives in netns NS (this process stays where it is)."""
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        if libc.setns(here, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(here)
        os.close(there)
    s.bind((0, 0))
    return s


def link_down_msg(name):
    nm = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(nm), IFLA_IFNAME) + nm
    attr += b"\0" * ((4 - len(attr) % 4) % 4)
    body = struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, 0, 0, IFF_UP) + attr
    return struct.pack("=IHHII", 16 + len(body), bench.RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body


def client_msg(frame):
    """An Ethernet frame -> chaddr of a DHCPDISCOVER or DHCPREQUEST, else None (a
    RELEASE, which the reference's restart sends first, is not an attempt at a lease)."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    b = 14 + (frame[14] & 0x0F) * 4 + 8
    if struct.unpack_from("!H", frame, b - 6)[0] != 67 or frame[b] != 1:
        return None
    o, mtype = b + 240, None
    while o + 2 < len(frame) and frame[o] != 255 and mtype is None:
        if frame[o] == 0:
            o += 1
        else:
            mtype = frame[o + 2] if frame[o] == 53 else None
            o += 2 + frame[o + 1]
    return ":".join("%02x" % x for x in frame[b + 28:b + 34]) if mtype in (1, 3) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bond", default="bond0")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--old-mac", required=True)
    ap.add_argument("--new-mac", required=True)
    ap.add_argument("--cap", type=float, required=True)
    ap.add_argument("--ns", default="lan")
    ap.add_argument("--down", default="lan0")
    ap.add_argument("--then")
    ap.add_argument("--grace", type=float, default=3.0)
    a = ap.parse_args()
    old_mac, new_mac = a.old_mac.lower(), a.new_mac.lower()
    idx = int(open(f"/sys/class/net/{a.bond}/ifindex").read())

    nl = bench.nl_open()
    pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    pk.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    pk.bind((a.bond, ETH_P_ALL))
    pk.setblocking(False)
    lan = netns_socket(a.ns)
    msg = link_down_msg(a.down)

    t0 = time.time_ns()
    lan.send(msg)
    err = struct.unpack_from("=i", lan.recv(4096), 16)[0]
    if err != 0:
        print(f"error=unplug_failed_{-err}", flush=True)
        return 2
    if a.then:  # the restarted client outlives this probe: the caller stops it by PID file
        subprocess.Popen(a.then, shell=True, start_new_session=True, stdin=subprocess.DEVNULL)

    def ms(t):
        return None if t is None else (t - t0) / 1e6

    t_ack = t_req = t_mac = t_del = None
    ack_addr = None
    absent_ns, present = 0, True
    sent = {"old": 0, "new": 0}
    acks_old = naks = 0
    deadline = t0 + int(a.cap * 1e9)
    while True:
        now = time.time_ns()
        # after the ACK: 0.3 s more for late events (bond0's MAC), up to GRACE for the address
        if t_ack is not None and now >= t_ack + (LINGER if present else int(a.grace * 1e9)):
            break
        if now >= deadline and t_ack is None:
            break
        r, _, _ = select.select([nl, pk], [], [], 0.05)
        if nl in r:
            try:
                buf = nl.recv(1 << 20)
            except BlockingIOError:
                buf = b""
            stamp = time.time_ns()
            for ev in bench.nl_parse(buf):
                if ev["ifindex"] != idx:
                    continue
                if ev["kind"] == "link" and ev["mac"] == new_mac and t_mac is None:
                    t_mac = stamp
                elif ev["kind"] == "addr" and ev["family"] == 4 and ev["scope"] == 0:
                    if not ev["new"] and ev["addr"] == a.addr and present:
                        present, t_del = False, stamp
                    elif ev["new"] and not present:
                        present = True
                        absent_ns += stamp - t_del
        if pk in r:
            while True:
                try:
                    data, anc, _fl, _from = pk.recvmsg(2048, socket.CMSG_SPACE(16))
                except BlockingIOError:
                    break
                stamp = time.time_ns()
                for lvl, typ, cd in anc:
                    if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("=qq", cd[:16])
                        stamp = sec * 1_000_000_000 + nsec
                if stamp < t0:
                    continue
                ch = client_msg(data)
                if ch is not None:
                    sent["new" if ch == new_mac else "old"] += 1
                    if ch == new_mac and t_req is None:
                        t_req = stamp
                    continue
                d = bench.dhcp_parse(data)
                if d is None:
                    continue
                mtype, yiaddr, chaddr = d
                if mtype == 6:
                    naks += 1
                elif mtype == 5 and chaddr == new_mac and t_ack is None:
                    t_ack, ack_addr = stamp, yiaddr
                elif mtype == 5 and chaddr == old_mac:
                    acks_old += 1
    end = time.time_ns()
    if not present:
        absent_ns += end - t_del

    def f(v):
        return "-" if v is None else f"{v:.1f}"
    print(" ".join([
        f"ack_ms={f(ms(t_ack))}", f"req_ms={f(ms(t_req))}", f"mac_ms={f(ms(t_mac))}",
        f"ack_addr={ack_addr or '-'}", f"same={int(ack_addr == a.addr)}",
        f"deleted={int(t_del is not None)}", f"absent_ms={absent_ns / 1e6:.1f}",
        f"still_absent={int(not present)}", f"sent_old={sent['old']}", f"sent_new={sent['new']}",
        f"acks_old={acks_old}", f"naks={naks}", f"waited_ms={(end - t0) / 1e6:.0f}",
    ]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
