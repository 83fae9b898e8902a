#!/usr/bin/env python3
"""netbond benchmark harness (driven by integration/bench/run.sh).

Two roles in one file:

* the orchestrator (default): builds network-namespace labs with dnsmasq, runs every
  client (netbond and the peers) alternately, and writes the Markdown report;
* the agent (`bench.py agent SPEC.json`): started by the orchestrator with
  `ip netns exec CLIENT_NS`, it opens an rtnetlink socket (addresses + links) *before*
  it starts the client(s), starts them, and timestamps the kernel's address events as it
  receives them (no polling; one CLOCK_MONOTONIC for the start and the events). It runs
  in its own mount namespace (made by `ip netns exec`) where it puts tmpfs over /run and
  the peers' state directories and a private file over /etc/resolv.conf, and in its own
  UTS namespace, so no client can touch the host's files, resolv.conf or hostname.

Network safety: everything happens in namespaces this script creates (names start with
the --prefix given by run.sh) and deletes on exit; every `ip` command names its
namespace (`ip -n NS` / `ip netns exec NS`); processes are stopped by PID.
"""

import argparse
import ctypes
import datetime
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DHCLIENT_SCRIPT = os.path.join(HERE, "dhclient-script.sh")
UDHCPC_SCRIPT = os.path.join(HERE, "udhcpc-script.sh")

# --------------------------------------------------------------------------- netlink

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_F_TENTATIVE, IFA_F_DADFAILED = 0x40, 0x08
SO_RCVBUFFORCE = 33


def nl_open():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
    s.setblocking(False)
    return s


def nl_attrs(buf, off, end):
    while off + 4 <= end:
        ln, typ = struct.unpack_from("=HH", buf, off)
        if ln < 4:
            break
        yield typ & 0x3FFF, buf[off + 4:off + ln]
        off += (ln + 3) & ~3


def nl_parse(buf):
    """Kernel rtnetlink messages -> event dicts."""
    out = []
    off = 0
    while off + 16 <= len(buf):
        ln, typ, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if ln < 16:
            break
        end = off + ln
        body = off + 16
        if typ in (RTM_NEWADDR, RTM_DELADDR):
            fam, plen, flags, scope, idx = struct.unpack_from("=BBBBI", buf, body)
            addr = local = None
            for t, d in nl_attrs(buf, body + 8, end):
                if t == IFA_ADDRESS:
                    addr = d
                elif t == IFA_LOCAL:
                    local = d
                elif t == IFA_FLAGS:
                    flags = struct.unpack("=I", d[:4])[0]
            raw = local if (fam == socket.AF_INET and local) else addr
            if raw is not None:
                out.append({
                    "kind": "addr", "new": typ == RTM_NEWADDR,
                    "family": 4 if fam == socket.AF_INET else 6,
                    "ifindex": idx, "addr": socket.inet_ntop(fam, raw),
                    "plen": plen, "scope": scope, "flags": flags,
                })
        elif typ in (RTM_NEWLINK, RTM_DELLINK):
            _fam, _pad, _type, idx, _fl, _ch = struct.unpack_from("=BBHiII", buf, body)
            mac = name = None
            for t, d in nl_attrs(buf, body + 16, end):
                if t == IFLA_ADDRESS:
                    mac = ":".join("%02x" % b for b in d)
                elif t == IFLA_IFNAME:
                    name = d.rstrip(b"\0").decode()
            out.append({"kind": "link", "new": typ == RTM_NEWLINK, "ifindex": idx,
                        "mac": mac, "name": name})
        off += (ln + 3) & ~3
    return out


# ------------------------------------------------------------------ DHCP sniffing


def pkt_open(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((ifname, 0x0800))
    s.setblocking(False)
    return s


def dhcp_parse(frame):
    """An Ethernet frame -> (msgtype, yiaddr, chaddr) for a DHCP reply, else None."""
    if len(frame) < 14 + 20 + 8 + 240:
        return None
    ip = 14
    ihl = (frame[ip] & 0x0F) * 4
    if frame[ip + 9] != 17:
        return None
    udp = ip + ihl
    dport = struct.unpack_from("!H", frame, udp + 2)[0]
    if dport != 68:
        return None
    b = udp + 8
    if frame[b] != 2:
        return None
    yiaddr = socket.inet_ntoa(frame[b + 16:b + 20])
    chaddr = ":".join("%02x" % x for x in frame[b + 28:b + 34])
    o = b + 240
    mtype = None
    while o < len(frame):
        code = frame[o]
        if code == 255:
            break
        if code == 0:
            o += 1
            continue
        if o + 1 >= len(frame):
            break
        ln = frame[o + 1]
        if code == 53 and ln >= 1:
            mtype = frame[o + 2]
        o += 2 + ln
    return mtype, yiaddr, chaddr


# --------------------------------------------------------------------- /proc reads


def proc_children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def proc_tree(pid):
    kids = proc_children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def counters(pids):
    """Summed over the processes and all their threads: context switches, schedstat
    timeslices and on-CPU ns, and utime+stime ticks."""
    c = {"vcsw": 0, "nvcsw": 0, "slices": 0, "cpu_ns": 0, "ticks": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
            fields = st[st.rfind(")") + 2:].split()
            c["ticks"] += int(fields[11]) + int(fields[12])
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            c["vcsw"] += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches:"):
                            c["nvcsw"] += int(line.split()[1])
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run_ns, _wait, slices = f.read().split()[:3]
                    c["cpu_ns"] += int(run_ns)
                    c["slices"] += int(slices)
        except OSError:
            pass
    return c


# ============================================================================ agent

CLONE_NEWUTS = 0x04000000


def agent_isolate(spec):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUTS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS)")
    tmp = spec["tmp"]

    def sh(*a):
        subprocess.run(a, check=True)
    # `ip netns exec` already gave us a private (slave) mount namespace; make it private.
    sh("mount", "--make-rprivate", "/")
    resolv = os.path.join(tmp, "etc-resolv.conf")
    open(resolv, "a").close()
    if os.path.lexists("/etc/resolv.conf"):
        sh("mount", "--bind", resolv, "/etc/resolv.conf")
    for d in ("/var/lib/dhcpcd", "/var/lib/dhcp", "/var/lib/dhcpv6", "/run"):
        if os.path.isdir(d):
            sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)


class Agent:
    def __init__(self, spec):
        self.spec = spec
        self.nl = nl_open()
        self.ifaces = spec["ifaces"]
        self.idx = {socket.if_nametoindex(n): n for n in self.ifaces}
        self.pkt = pkt_open(self.ifaces[0]) if spec["mode"] == "mac" else None
        lo, hi = spec.get("v6_iid", [0x100, 0x1FF])
        self.v6_iid = (lo, hi)
        self.first = {n: {} for n in self.ifaces}     # iface -> {"4": t, "6": t}
        self.addr = {n: {} for n in self.ifaces}      # iface -> {"4": a, "6": a}
        self.cur = {n: set() for n in self.ifaces}    # current v4/v6 global addrs
        self.events = []                              # (t, event) for the first iface
        self.dhcp = []                                # (t, mtype, yiaddr, chaddr)
        self.procs = []
        self.early_exit = []
        self.t0 = None
        self.overflow = False

    def usable(self, ev):
        if ev["scope"] != 0:
            return False
        if ev["family"] == 4:
            return True
        if ev["flags"] & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            return False
        iid = int.from_bytes(socket.inet_pton(socket.AF_INET6, ev["addr"])[8:], "big")
        return self.v6_iid[0] <= iid <= self.v6_iid[1]

    def pump(self, timeout):
        socks = [self.nl] + ([self.pkt] if self.pkt else [])
        r, _, _ = select.select(socks, [], [], max(0.0, timeout))
        for s in r:
            while True:
                try:
                    if s is self.nl:
                        data = s.recv(1 << 20)
                    else:
                        data, sa = s.recvfrom(4096)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == 105:  # ENOBUFS: events were lost
                        self.overflow = True
                        continue
                    raise
                t = time.monotonic()
                if s is self.nl:
                    for ev in nl_parse(data):
                        self.on_nl(t, ev)
                elif sa[2] in (0, 1):  # PACKET_HOST, PACKET_BROADCAST
                    d = dhcp_parse(data)
                    if d:
                        self.dhcp.append((t, *d))
        for name, p in self.procs:
            if p.poll() is not None and not any(e["name"] == name and e["pid"] == p.pid
                                                for e in self.early_exit):
                self.early_exit.append({"name": name, "pid": p.pid, "rc": p.returncode,
                                        "t_ms": ms(time.monotonic() - self.t0)})

    def on_nl(self, t, ev):
        name = self.idx.get(ev["ifindex"])
        if name is None:
            return
        if name == self.ifaces[0]:
            self.events.append((t, ev))
        if ev["kind"] != "addr" or ev["scope"] != 0:
            return
        key = (ev["family"], ev["addr"])
        if ev["new"]:
            self.cur[name].add(key)
            if self.usable(ev):
                fam = str(ev["family"])
                if fam not in self.first[name]:
                    self.first[name][fam] = t
                    self.addr[name][fam] = ev["addr"]
        else:
            self.cur[name].discard(key)

    def bound(self, want_by_iface):
        return all(all(f in self.first[n] for f in want) for n, want in want_by_iface.items())

    def wait(self, cond, deadline):
        while True:
            if cond():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            self.pump(min(deadline - now, 0.05))

    def sleep(self, secs):
        end = time.monotonic() + secs
        self.wait(lambda: False, end)

    def start(self):
        self.t0 = time.monotonic()
        for pr in self.spec["procs"]:
            log = open(pr["log"], "ab")
            p = subprocess.Popen(pr["argv"], stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=pr.get("env"),
                                 cwd=self.spec["tmp"])
            log.close()
            self.procs.append((pr["name"], p))

    def stop(self):
        trees = {p.pid: proc_tree(p.pid) for _, p in self.procs}
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        # With on_stop = "release" netbond releases and deconfigures every interface on
        # SIGTERM (the default keeps them; reset_client flushes before each run): allow for N.
        deadline = time.monotonic() + 3 + 0.02 * len(self.spec.get("ifaces", []))
        for _, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid, tree in trees.items():
            for q in tree:
                try:
                    os.kill(q, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        rcs = []
        for name, p in self.procs:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass
            rcs.append({"name": name, "rc": p.returncode})
        return rcs

    def rel(self, t):
        return None if t is None else ms(t - self.t0)


def ms(secs):
    return round(secs * 1000.0, 3)


def netbond_stats(argv):
    """`stats` of `netbond status --json` (writer threads, start window, and the count of
    durable writes that ran on the event loop, which must be 0)."""
    run_dir = argv[argv.index("--run-dir") + 1]
    try:
        r = subprocess.run([argv[0], "status", "--json", "--run-dir", run_dir],
                           capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout).get("stats")
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}


def run_agent(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    agent_isolate(spec)
    a = Agent(spec)
    res = {"ok": True, "error": None}
    want = {n: spec["want"] for n in spec["ifaces"]}
    a.start()
    got = a.wait(lambda: a.bound(want) or bool(a.early_exit), a.t0 + spec["timeout"])
    got = got and a.bound(want)
    res["bound"] = got
    res["t_addr"] = {n: {f: a.rel(t) for f, t in a.first[n].items()} for n in a.ifaces}
    res["addr"] = {n: dict(a.addr[n]) for n in a.ifaces}
    mode = spec["mode"]
    if got and mode == "rss":
        a.sleep(spec.get("settle", 1.0))
        res["rss"] = []
        for name, p in a.procs:
            tree = proc_tree(p.pid)
            res["rss"].append({"name": name, "procs": len(tree),
                               "hwm_kb": sum(status_kb(q, "VmHWM") for q in tree),
                               "rss_kb": sum(status_kb(q, "VmRSS") for q in tree)})
    elif got and mode == "idle":
        a.sleep(spec.get("settle", 3.0))
        trees = [q for _, p in a.procs for q in proc_tree(p.pid)]
        c0 = counters(trees)
        n0 = len(a.events)
        t_s = time.monotonic()
        a.sleep(spec["window"])
        c1 = counters(trees)
        res["idle"] = {k: c1[k] - c0[k] for k in c0}
        res["idle"]["window_s"] = round(time.monotonic() - t_s, 3)
        res["idle"]["procs"] = len(trees)
        res["idle"]["addr_events"] = len(a.events) - n0
    elif got and mode == "scale":
        res["t_all_ms"] = max(max(v.values()) for v in res["t_addr"].values())
        a.sleep(spec.get("settle", 1.0))
        if spec.get("status"):
            res["nb_stats"] = netbond_stats(spec["procs"][0]["argv"])
        pids = [q for _, p in a.procs for q in proc_tree(p.pid)]
        res["rss_kb"] = sum(status_kb(q, "VmRSS") for q in pids)
        res["hwm_kb"] = sum(status_kb(q, "VmHWM") for q in pids)
        res["nprocs"] = len(pids)
    elif got and mode == "mac":
        res["mac"] = agent_mac(a, spec)
    elif not got and mode == "scale":
        res["leased"] = sum(1 for n in a.ifaces if "4" in a.first[n])
    res["early_exit"] = a.early_exit
    res["overflow"] = a.overflow
    res["stop"] = a.stop()
    json.dump(res, sys.stdout)


def set_mac(ifc, mac):
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        hw = bytes(int(x, 16) for x in mac.split(":"))
        ifr = struct.pack("16sH14s", ifc.encode(), 1, hw)  # ARPHRD_ETHER
        fcntl.ioctl(s.fileno(), 0x8924, ifr)  # SIOCSIFHWADDR
    finally:
        s.close()


def agent_mac(a, spec):
    ifc = a.ifaces[0]
    a.sleep(spec.get("settle", 0.5))
    old = a.addr[ifc]["4"]
    new_mac = spec["new_mac"]
    old_mac = spec["old_mac"]
    # Server side: from now on the server hears only the new MAC.
    srv = spec["srv_fd"]  # /run/netns/<server ns>, opened by the orchestrator
    subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{srv}", "nft", "add", "element",
                    "netdev", "nbbench", "oldmacs", "{ %s }" % old_mac], check=True)
    # Change the MAC with SIOCSIFHWADDR from this process (no fork/exec in between), so
    # that the agent is back in select() at once and stamps the events as they arrive.
    t_cmd = time.monotonic()
    set_mac(ifc, new_mac)
    cap = spec["cap"]
    t_change = [None]

    def changed():
        if t_change[0] is None:
            for t, ev in a.events:
                if ev["kind"] == "link" and ev["mac"] == new_mac:
                    t_change[0] = t
                    break
        return t_change[0]

    def recovered():
        tc = changed()
        if tc is None:
            return False
        acks = [d for d in a.dhcp if d[0] >= tc and d[1] == 5]
        if not acks:
            return False
        present = (4, acks[0][2]) in a.cur[ifc]
        return present and time.monotonic() - acks[0][0] >= spec.get("grace", 0.5)

    a.wait(recovered, t_cmd + cap)
    tc = changed() or t_cmd
    acks = [d for d in a.dhcp if d[0] >= tc and d[1] == 5]
    naks = [d for d in a.dhcp if d[0] >= tc and d[1] == 6]
    # Absence of the old address: each RTM_DELADDR of it until the next v4 global
    # RTM_NEWADDR on the interface.
    absent, gaps, t_del = 0.0, [], None
    for t, ev in a.events:
        if t < tc or ev["kind"] != "addr" or ev["family"] != 4 or ev["scope"] != 0:
            continue
        if not ev["new"] and ev["addr"] == old and t_del is None:
            t_del = t
        elif ev["new"] and t_del is not None:
            gaps.append(ms(t - t_del))
            t_del = None
    still_absent = t_del is not None
    if still_absent:
        gaps.append(ms(time.monotonic() - t_del))
    absent = sum(gaps)
    final4 = sorted(x for f, x in a.cur[ifc] if f == 4)
    return {
        "old_addr": old, "final_addrs": final4,
        "change_seen": t_change[0] is not None,
        "ack_ms": ms(acks[0][0] - tc) if acks else None,
        "ack_addr": acks[0][2] if acks else None,
        "ack_chaddr": acks[0][3] if acks else None,
        "naks": len(naks),
        "absent_ms": round(absent, 3), "still_absent": still_absent,
        "deleted": bool(gaps),
        "recovered": bool(acks) and (4, acks[0][2]) in a.cur[ifc],
        "cap_s": cap,
    }


# ===================================================================== orchestrator

def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args, check=True, quiet=False, inp=None):
    r = subprocess.run(args, stdin=subprocess.DEVNULL if inp is None else None, input=inp,
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class Harness:
    """Owns every namespace and server process it makes; cleans up on exit."""

    def __init__(self, prefix, work):
        self.prefix = prefix
        self.work = work
        self.namespaces = []
        self.servers = []

    def ns(self, name):
        full = f"{self.prefix}-{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def reap(self, ns):
        """Kill what a client left running in its (our) namespace, e.g. dhcpcd's
        privilege-separation helpers, which re-parent to init and outlive their parent.
        Returns the names of the processes killed."""
        left = []
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    left.append(f.read().strip())
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if left:
            time.sleep(0.05)
        return left

    def cleanup(self):
        for p in self.servers:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
        for n in reversed(self.namespaces):
            # Anything still running inside our namespaces was started by us.
            pids = sh("ip", "netns", "pids", n, check=False).split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", n, check=False)
        self.namespaces = []


def sysctl(ns, *kv):
    sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *kv)


def rand_mac():
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple(random.randrange(256) for _ in range(5))


CLIENT_SYSCTLS = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                  "net.ipv6.conf.default.autoconf=0", "net.ipv4.conf.default.arp_notify=1",
                  "net.ipv4.conf.all.arp_notify=1"]


# Reset before every run, per interface: dhcpcd changes some of these and leaves them
# (accept_dad among them, which would put DAD into every later client's time).
IFACE_SYSCTLS = ["net.ipv6.conf.default.addr_gen_mode=0", "net.ipv6.conf.default.accept_ra=1",
                 "net.ipv6.conf.default.disable_ipv6=0", "net.ipv6.conf.default.accept_dad=0",
                 "net.ipv6.conf.default.autoconf=0"]


class Lab:
    """Pairs mode: `links` veth pairs s<k> (server ns, subnet 10.99.<base+k>.0/24 and
    fd99:0:0:<base+k>::/64) <-> c0 in its own client namespace per link.
    Bridge mode: one server ns with br0 (10.98.0.0/16), `links` veth pairs into ONE
    client namespace as c0..c<links-1>."""

    def __init__(self, h, name, links=1, bridge=False, ra=True, lease="2m", base=0,
                 server="dnsmasq"):
        self.h, self.name, self.bridge, self.links = h, name, bridge, links
        self.dir = os.path.join(h.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.srv = h.ns(f"{name}-s")
        sysctl(self.srv, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
               "net.ipv6.conf.all.forwarding=0")
        self.nets = []
        if bridge:
            cli = h.ns(f"{name}-c")
            sysctl(cli, *CLIENT_SYSCTLS)
            self.clients = [(cli, f"c{k}") for k in range(links)]
            b = ["link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0"]
            # A bridge takes at most 1023 ports: past 1000, a second bridge joined to
            # the first by a veth pair (one LAN, one server).
            if links > 1000:
                b += ["link add br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                      "link add bl0 type veth peer name bl1", "link set bl0 master br0 up",
                      "link set bl1 master br1 up", "link set br1 up"]
            for k in range(links):
                b.append(f"link add s{k} type veth peer name c{k} netns {cli}")
                b.append(f"link set s{k} master {'br0' if k < 1000 else 'br1'} up")
            b += ["addr add 10.98.0.1/16 dev br0", "addr add fd98::1/64 dev br0 nodad",
                  "link set br0 up"]
            sh("ip", "-n", self.srv, "-batch", "-", inp="\n".join(b) + "\n")
            # Where the host has br_netfilter loaded, every frame crossing the bridge
            # would also go through iptables/arptables hooks (per namespace: this one
            # only). That is the lab's cost, not a client's, and at N = 256 it was a
            # third of the broadcast flooding in netbond's profile: off.
            for knob in ("iptables", "ip6tables", "arptables"):
                subprocess.run(["ip", "netns", "exec", self.srv, "sysctl", "-q", "-w",
                                f"net.bridge.bridge-nf-call-{knob}=0"],
                               capture_output=True)
            c = [f"link set c{k} up" for k in range(links)]
            sh("ip", "-n", cli, "-batch", "-", inp="\n".join(c) + "\n")
            ranges = ["--interface=br0", f"--dhcp-range=10.98.1.0,10.98.254.254,255.255.0.0,{lease}",
                      f"--dhcp-range=fd98::100,fd98::ffff,64,{lease}"]
        else:
            self.clients = []
            ranges = []
            b = []
            for k in range(links):
                cli = h.ns(f"{name}-c{k}")
                sysctl(cli, *CLIENT_SYSCTLS)
                self.clients.append((cli, "c0"))
                n = base + k
                self.nets.append(n)
                b += [f"link add s{k} type veth peer name c0 netns {cli}",
                      f"addr add 10.99.{n}.1/24 dev s{k}",
                      f"addr add fd99:0:0:{n:x}::1/64 dev s{k} nodad", f"link set s{k} up"]
                ranges += [f"--interface=s{k}",
                           f"--dhcp-range=10.99.{n}.10,10.99.{n}.250,255.255.255.0,{lease}",
                           f"--dhcp-range=fd99:0:0:{n:x}::100,fd99:0:0:{n:x}::1ff,64,{lease}"]
            sh("ip", "-n", self.srv, "-batch", "-", inp="\n".join(b) + "\n")
            # Old-MAC filter for the MAC-change test: a netdev ingress drop of the old
            # source MAC (and, where the kernel has netdev egress, of frames to it).
            rules = ["table netdev nbbench {", " set oldmacs { type ether_addr; }"]
            for k in range(links):
                rules.append(f" chain in{k} {{ type filter hook ingress device s{k} priority 0; "
                             "ether saddr @oldmacs drop; }")
            rules.append("}")
            sh("ip", "netns", "exec", self.srv, "nft", "-f", "-", inp="\n".join(rules) + "\n")
            self.egress = True
            eg = [f"add chain netdev nbbench out{k} {{ type filter hook egress device s{k} priority 0; }}\n"
                  f"add rule netdev nbbench out{k} ether daddr @oldmacs drop" for k in range(links)]
            r = subprocess.run(["ip", "netns", "exec", self.srv, "nft", "-f", "-"],
                               input="\n".join(eg) + "\n", capture_output=True, text=True)
            self.egress = r.returncode == 0
            for cli, ifc in self.clients:
                sh("ip", "-n", cli, "link", "set", ifc, "up")
        self.ra = ra
        self.server = server
        if bridge:
            # Setup, not measured: a server started before the bridge has carrier (a
            # port up and forwarding) refuses it (Kea: "br0 is not running").
            deadline = time.time() + 30
            while "LOWER_UP" not in sh("ip", "-n", self.srv, "link", "show", "br0"):
                if time.time() > deadline:
                    raise RuntimeError("br0 has no carrier 30 s after its ports came up")
                time.sleep(0.05)
        if server == "kea":
            self.start_kea()
            return
        # "dnsmasq-mem": no lease file at all (--leasefile-ro), so the server does not
        # rewrite its whole lease database (and fsync nothing) per lease.
        leasefile = (["--leasefile-ro"] if server == "dnsmasq-mem"
                     else [f"--dhcp-leasefile={self.dir}/leases"])
        args = ["ip", "netns", "exec", self.srv, "dnsmasq", "-k", "-C", "/dev/null", "--port=0",
                "--no-ping", "--bind-interfaces", "--user=root", "--dhcp-authoritative",
                f"--pid-file={self.dir}/dnsmasq.pid",
                f"--log-facility={self.dir}/dnsmasq.log"] + leasefile + ranges
        if bridge:
            # dnsmasq hands out at most this many leases (default 1000): N = 1024 plus
            # the capacity probe's clients need more.
            args.append("--dhcp-lease-max=100000")
        if server == "dnsmasq-mem":
            # Per-packet log lines cost the server time too; the scale item needs none.
            args.append("--quiet-dhcp")
        if ra:
            args.append("--enable-ra")
        self.dnsmasq_args = args
        out = open(os.path.join(self.dir, "dnsmasq.out"), "ab")
        self.dnsmasq = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        h.servers.append(self.dnsmasq)
        deadline = time.time() + 15
        while True:
            ss = sh("ip", "netns", "exec", self.srv, "ss", "-Hlun", check=False)
            if ":67 " in ss and ":547 " in ss:
                break
            if self.dnsmasq.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"dnsmasq did not start in {self.srv}: "
                                   + open(os.path.join(self.dir, "dnsmasq.out")).read()[-2000:])
            time.sleep(0.05)

    def start_kea(self):
        """ISC Kea (bridge mode only, DHCPv4): in-memory leases (memfile, persist false),
        multi-threaded, warnings-only log: a server built for load."""
        if not self.bridge:
            raise RuntimeError("kea is only wired for the bridge lab")
        conf = {"Dhcp4": {
            "interfaces-config": {"interfaces": ["br0"], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": False},
            "multi-threading": {"enable-multi-threading": True, "thread-pool-size": 2,
                                "packet-queue-size": 4096},
            "authoritative": True,
            "valid-lifetime": 120, "renew-timer": 60, "rebind-timer": 105,
            "subnet4": [{"id": 1, "subnet": "10.98.0.0/16",
                         "pools": [{"pool": "10.98.1.0 - 10.98.254.254"}]}],
            "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                         "output_options": [{"output": f"{self.dir}/kea.log"}]}],
        }}
        path = os.path.join(self.dir, "kea-dhcp4.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        env = dict(os.environ, KEA_PIDFILE_DIR=self.dir, KEA_LOCKFILE_DIR=self.dir,
                   KEA_LOGGER_DESTINATION=f"{self.dir}/kea.log")
        out = open(os.path.join(self.dir, "kea.out"), "ab")
        self.dnsmasq = subprocess.Popen(["ip", "netns", "exec", self.srv, "kea-dhcp4", "-c", path],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        self.h.servers.append(self.dnsmasq)
        # Kea reads every interface of the namespace at start: seconds at N = 1024.
        deadline = time.time() + 20 + len(self.clients) * 0.05
        while True:
            ss = sh("ip", "netns", "exec", self.srv, "ss", "-Hlun", check=False)
            if ":67 " in ss:
                break
            if self.dnsmasq.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"kea-dhcp4 did not start in {self.srv}: "
                                   + open(os.path.join(self.dir, "kea.out")).read()[-2000:])
            time.sleep(0.05)

    def capacity(self, rates=(250, 500, 1000, 2000, 4000, 8000), secs=1):
        """The server's own capacity, measured in the same lab: ISC perfdhcp (C++, from
        Debian's kea-admin) on an extra port of the bridge, in its own namespace, as a
        relay (giaddr 10.98.0.2), offering new clients' DORA exchanges at each rate in
        turn for `secs` s. Capacity = the highest completed rate while fewer than 1 % of
        the exchanges are lost; latency = the mean DISCOVER-OFFER delay at the first
        rate. Returns {"per_s", "lat_ms", "steps"} or {"error": why}."""
        if not shutil.which("perfdhcp", path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return {"error": "perfdhcp not installed (kea-admin)"}
        if not getattr(self, "pns", None):
            self.pns = self.h.ns(f"{self.name}-p")
            sh("ip", "-n", self.srv, "link", "add", "sp", "type", "veth", "peer", "name", "p0",
               "netns", self.pns)
            sh("ip", "-n", self.srv, "link", "set", "sp", "master", "br0", "up")
            sh("ip", "-n", self.pns, "addr", "add", "10.98.0.2/16", "dev", "p0")
            sh("ip", "-n", self.pns, "link", "set", "p0", "up")
            time.sleep(0.2)
        best, lat, steps = 0.0, None, []
        # Right after its start (1024 ports) Kea was seen answering nothing for a moment
        # (its raw sockets still taking junk frames): one warm-up exchange, up to 10 s.
        for _ in range(20):
            r = subprocess.run(["ip", "netns", "exec", self.pns, "perfdhcp", "-4", "-l", "p0",
                                "-R", "1000000", "-n", "1", "10.98.0.1"],
                               capture_output=True, text=True, timeout=30)
            if re.search(r"received packets: [1-9]", r.stdout):
                break
            time.sleep(0.5)
        for rate in rates:
            try:
                r = subprocess.run(["ip", "netns", "exec", self.pns, "perfdhcp", "-4", "-l", "p0",
                                    "-r", str(rate), "-p", str(secs), "-R", "10000000",
                                    "10.98.0.1"], capture_output=True, text=True,
                                   timeout=secs + 20)
            except subprocess.TimeoutExpired:
                return {"error": "perfdhcp did not finish"}
            got = re.search(r"Rate: ([\d.]+) 4-way", r.stdout)
            drops = [float(x) for x in re.findall(r"drops ratio: ([\d.]+) %", r.stdout)]
            delay = re.findall(r"avg delay: ([\d.]+) ms", r.stdout)
            if not got or not drops:
                return {"error": f"perfdhcp: {(r.stdout + r.stderr)[-300:]}"}
            if lat is None and delay:
                lat = float(delay[0])
            steps.append({"rate": rate, "done": float(got.group(1)), "lost_pct": max(drops)})
            if max(drops) >= 1.0:
                break
            best = max(best, float(got.group(1)))
        return {"per_s": round(best), "lat_ms": lat, "steps": steps}

    def reset_client(self, k, new_mac=True):
        """Before a run: no global address, a fresh MAC, link up with its link-local."""
        cli, ifc = self.clients[k]
        cmds = [f"link set {ifc} down", f"addr flush dev {ifc}"]
        if new_mac:
            cmds.append(f"link set {ifc} address {rand_mac()}")
        sh("ip", "-n", cli, "-batch", "-", inp="\n".join(cmds) + "\n")
        # A previous client may have changed per-interface settings (dhcpcd sets
        # addr_gen_mode=none and accept_ra=0 and leaves them): put them back, alike for all.
        sysctl(cli, *(s.replace(".default.", f".{ifc}.") for s in CLIENT_SYSCTLS + IFACE_SYSCTLS))
        sh("ip", "-n", cli, "link", "set", ifc, "up")
        deadline = time.time() + 5
        while True:  # setup only (not measured): wait for the link-local address
            out = sh("ip", "-n", cli, "-6", "-o", "addr", "show", "dev", ifc, "scope", "link")
            if "fe80" in out and "tentative" not in out:
                break
            if time.time() > deadline:
                raise RuntimeError(f"{cli}/{ifc}: no link-local address after link up: {out}")
            time.sleep(0.01)
        if self.nets:
            sh("ip", "netns", "exec", self.srv, "nft", "flush", "set", "netdev", "nbbench", "oldmacs")

    def mac(self, k):
        cli, ifc = self.clients[k]
        return json.loads(sh("ip", "-n", cli, "-j", "link", "show", "dev", ifc))[0]["address"]


# ------------------------------------------------------------------------ clients

NETBOND_V6_STATEFUL = '[dhcp6]\nmode = "stateful"\nsolicit_delay = false\nrapid_commit = true\n'


class Clients:
    def __init__(self, args):
        self.bin = args.bin
        # The static builds (packaging/build-static.sh [--minimal]), when given: measured
        # as their own clients, "netbond static" and "netbond static minimal".
        self.static = args.musl_bin if args.musl_bin and os.path.exists(args.musl_bin) else None
        self.static_min = (args.musl_min_bin if args.musl_min_bin
                           and os.path.exists(args.musl_min_bin) else None)
        self.have = {n: shutil.which(n, path="/usr/sbin:/usr/bin:/sbin:/bin") for n in
                     ("dhclient", "dhcpcd", "busybox", "dhcp6c")}

    def available(self, name):
        base = name.split()[0].split("-")[0]
        if name == "netbond static":
            return bool(self.static)
        if name == "netbond static minimal":
            return bool(self.static_min)
        if base == "netbond":
            return True
        if base == "udhcpc":
            return bool(self.have["busybox"])
        return bool(self.have.get(base))

    def make(self, name, ifc, d, v4=True, v6=True, conf=""):
        """argv for a client, with all its files under d."""
        os.makedirs(d, exist_ok=True)
        if name.startswith("netbond"):
            with open(f"{d}/netbond.toml", "w") as f:
                f.write(conf)
            exe = {"netbond static": self.static,
                   "netbond static minimal": self.static_min}.get(name, self.bin)
            argv = [exe, "run", "--iface", ifc, "--state-dir", f"{d}/state", "--run-dir",
                    f"{d}/run", "--resolv-conf", f"{d}/resolv.conf", "--config", f"{d}/netbond.toml"]
            if not v4:
                argv.append("--no-dhcp4")
            if not v6:
                argv.append("--no-dhcp6")
            return argv
        if name == "dhclient":
            return [self.have["dhclient"], "-d", "-4", "-sf", DHCLIENT_SCRIPT, "-lf", f"{d}/leases",
                    "-pf", f"{d}/pid", ifc]
        if name == "dhclient -6":
            return [self.have["dhclient"], "-d", "-6", "-sf", DHCLIENT_SCRIPT, "-lf",
                    f"{d}/leases6", "-pf", f"{d}/pid6", ifc]
        if name.startswith("dhcpcd"):
            base = open("/etc/dhcpcd.conf").read() if os.path.exists("/etc/dhcpcd.conf") else ""
            if "noarp" in name:
                base += "\nnoarp\nnodelay\n"
            with open(f"{d}/dhcpcd.conf", "w") as f:
                f.write(base)
            fam = ["-4"] if (v4 and not v6) else (["-6"] if (v6 and not v4) else [])
            return [self.have["dhcpcd"], "-B", *fam, "-f", f"{d}/dhcpcd.conf", "-c", "/bin/true",
                    "--nohook", "resolv.conf", ifc]
        if name == "udhcpc":
            return [self.have["busybox"], "udhcpc", "-f", "-i", ifc, "-s", UDHCPC_SCRIPT]
        if name == "dhcp6c":
            with open(f"{d}/dhcp6c.conf", "w") as f:
                f.write(f"interface {ifc} {{\n  send ia-na 1;\n  send rapid-commit;\n}};\n"
                        "id-assoc na 1 { };\n")
            return [self.have["dhcp6c"], "-f", "-c", f"{d}/dhcp6c.conf", "-p", f"{d}/pid", ifc]
        raise ValueError(name)


def run_agent_in(h, ns, spec, tag):
    d = spec["tmp"]
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"spec-{tag}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                          "agent", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, pass_fds=spec.get("pass_fds", ()))
    return p


def agent_result(p):
    out, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"agent failed ({p.returncode}): {err[-3000:]}")
    return json.loads(out)


class Bench:
    def __init__(self, args, h):
        self.a, self.h = args, h
        self.c = Clients(args)
        self.failures = []   # harness-level failures (netbond crash, etc.)
        self.runs = 1 if args.smoke else args.runs
        self.seq = 0
        self.results = {}

    def tmpdir(self, what):
        self.seq += 1
        d = os.path.join(self.h.work, "runs", f"{self.seq:04d}-{what.replace(' ', '_')}")
        os.makedirs(d, exist_ok=True)
        return d

    def check_netbond(self, name, res, logpath):
        if not name.startswith("netbond"):
            return
        bad = [e for e in res.get("early_exit", []) if e["name"].startswith("netbond")]
        stop = [s for s in res.get("stop", []) if s["name"].startswith("netbond")
                and s["rc"] not in (0, None)]
        if bad or stop:
            tail = open(logpath, errors="replace").read()[-1500:] if os.path.exists(logpath) else ""
            self.failures.append(f"netbond exited abnormally ({bad or stop}); log tail:\n{tail}")
        elif not res.get("bound"):
            tail = open(logpath, errors="replace").read()[-1500:] if os.path.exists(logpath) else ""
            self.failures.append(f"netbond did not bind in a {name} run; log tail:\n{tail}")

    def one(self, lab, k, name, mode, want, timeout, v4=True, v6=True, conf="", extra=None):
        cli, ifc = lab.clients[k]
        d = self.tmpdir(name)
        argv = self.c.make(name, ifc, d, v4=v4, v6=v6, conf=conf)
        logp = os.path.join(d, "client.log")
        spec = {"mode": mode, "tmp": d, "ifaces": [ifc], "want": want, "timeout": timeout,
                "procs": [{"name": name, "argv": argv, "log": logp}],
                "v6_iid": [0x100, 0x1FF]}
        spec.update(extra or {})
        res = agent_result(run_agent_in(self.h, cli, spec, "x"))
        res["leftover"] = self.h.reap(cli)
        if res["leftover"]:
            log(f"{name}: killed leftover processes after stop: {res['leftover']}")
        res["log"] = logp
        self.check_netbond(name, res, logp)
        return res

    # ---------------------------------------------------------------- 1 + 2: cold start
    def cold(self, lab, fam):
        if fam == 4:
            clients = ["netbond", "dhclient", "dhcpcd noarp nodelay", "udhcpc", "dhcpcd"]
        else:
            clients = ["netbond", "dhcp6c", "dhclient -6", "dhcpcd"]
        runs_for = {c: self.runs for c in clients}
        timeout = {c: 10.0 for c in clients}
        if fam == 4:
            runs_for["dhcpcd"] = min(self.runs, 3)  # ~6 s each: random delay + ARP probe
            timeout["dhcpcd"] = 15.0
        samples = {c: [] for c in clients}
        fails = {c: 0 for c in clients}
        # One unrecorded warm-up run per client binary (page cache, shared libraries).
        for c in clients:
            if c == "dhcpcd" or not self.c.available(c):
                continue
            lab.reset_client(0)
            conf = NETBOND_V6_STATEFUL if (c == "netbond" and fam == 6) else ""
            r = self.one(lab, 0, c, "cold", str(fam), timeout[c], v4=(fam == 4),
                         v6=(fam == 6), conf=conf)
            log(f"cold v{fam} warm-up {c}: {r['t_addr']['c0'].get(str(fam))} ms (not counted)")
        # Whoever runs right after dhcpcd gets its DHCPv6 Reply ~100 ms late (seen for
        # every client, still after a 0.5 s pause; not isolated): alternate the other
        # clients round by round, and run dhcpcd's rounds after all of theirs.
        rest = [c for c in clients if not c.startswith("dhcpcd")]
        later = [c for c in clients if c.startswith("dhcpcd")]
        n_rounds = max(runs_for.values())
        schedule = [(i, c) for i in range(n_rounds) for c in rest]
        schedule += [(i, c) for c in later for i in range(n_rounds)]
        for i, c in schedule:
            if i >= runs_for[c] or not self.c.available(c):
                continue
            lab.reset_client(0)
            conf = NETBOND_V6_STATEFUL if (c == "netbond" and fam == 6) else ""
            r = self.one(lab, 0, c, "cold", str(fam), timeout[c], v4=(fam == 4),
                         v6=(fam == 6), conf=conf)
            t = r["t_addr"]["c0"].get(str(fam))
            if r["bound"] and t is not None:
                samples[c].append(t)
            else:
                fails[c] += 1
            log(f"cold v{fam} run {i + 1} {c}: "
                + (f"{t:.1f} ms" if t is not None else f"no address within {timeout[c]:.0f} s"))
        return {"samples": samples, "fails": fails, "runs": runs_for, "timeout": timeout}

    # ---------------------------------------------------------------- 3: MAC change
    def macchange(self, lab):
        peers = ["dhclient", "dhcpcd noarp nodelay", "udhcpc"]
        cap_peer = 5.0 if self.a.smoke else 20.0
        peer_runs = 1 if self.a.smoke else 2
        srv_fd = os.open(f"/run/netns/{lab.srv}", os.O_RDONLY)
        out = {}
        order = ["netbond"] + peers
        for i in range(self.runs):
            for c in order:
                if c != "netbond" and i >= peer_runs:
                    continue
                if not self.c.available(c):
                    continue
                lab.reset_client(0)
                old_mac = lab.mac(0)
                extra = {"old_mac": old_mac, "new_mac": rand_mac(), "srv_fd": srv_fd,
                         "srv_ns": lab.srv, "pass_fds": [srv_fd],
                         "cap": 5.0 if c == "netbond" else cap_peer, "settle": 0.5}
                r = self.one(lab, 0, c, "mac", "4", 10.0, v4=True, v6=False, extra=extra)
                m = r.get("mac")
                if m and c == "netbond":
                    txt = open(r["log"], errors="replace").read()
                    m["log_line"] = next((ln.strip() for ln in txt.splitlines()
                                          if "re-confirmed" in ln or "new MAC" in ln), None)
                out.setdefault(c, []).append(m if m else {"error": "never bound before the change"})
                log(f"mac run {i + 1} {c}: {json.dumps(m)}")
        os.close(srv_fd)
        return {"runs": out, "cap_peer": cap_peer, "egress": lab.egress}

    # ---------------------------------------------------------------- 4: RSS
    def rss(self, lab):
        rows = [("netbond", "46", True, True, NETBOND_V6_STATEFUL),
                ("netbond static", "46", True, True, NETBOND_V6_STATEFUL),
                ("netbond static minimal", "46", True, True, NETBOND_V6_STATEFUL),
                ("dhclient", "4", True, False, ""),
                ("dhcp6c", "6", False, True, ""), ("dhcpcd", "46", True, True, ""),
                ("udhcpc", "4", True, False, "")]
        out = {}
        runs = min(self.runs, 3)
        for i in range(runs):
            for name, want, v4, v6, conf in rows:
                if not self.c.available(name):
                    continue
                lab.reset_client(0)
                r = self.one(lab, 0, name, "rss", want, 20.0, v4=v4, v6=v6, conf=conf,
                             extra={"settle": 1.0})
                if r.get("rss"):
                    out.setdefault(name, []).append(r["rss"][0])
                else:
                    out.setdefault(name, []).append({"error": "not bound"})
                log(f"rss run {i + 1} {name}: {r.get('rss')}")
        return out

    # ---------------------------------------------------------------- 5: idle
    def idle(self, labs):
        window = 5.0 if self.a.smoke else 60.0
        rows = [("netbond", "46", True, True), ("dhclient", "4", True, False),
                ("dhcp6c", "6", False, True), ("dhcpcd", "4", True, True),
                ("udhcpc", "4", True, False)]
        procs = []
        lab_ns = {}
        for lab, label in labs:
            for k, (name, want, v4, v6) in enumerate(rows):
                if not self.c.available(name):
                    continue
                cli, ifc = lab.clients[k]
                d = self.tmpdir(f"idle-{label}-{name}")
                conf = NETBOND_V6_STATEFUL if (name == "netbond" and not lab.ra) else ""
                argv = self.c.make(name, ifc, d, v4=v4, v6=v6, conf=conf)
                spec = {"mode": "idle", "tmp": d, "ifaces": [ifc], "want": want,
                        "timeout": 30.0, "window": window, "settle": 3.0,
                        "procs": [{"name": name, "argv": argv, "log": f"{d}/client.log"}],
                        "v6_iid": [0x100, 0x1FF]}
                lab_ns[(label, name)] = cli
                procs.append((label, name, f"{d}/client.log", run_agent_in(self.h, cli, spec, "idle")))
        out = {}
        for label, name, logp, p in procs:
            r = agent_result(p)
            self.h.reap(lab_ns[(label, name)])
            self.check_netbond(name, r, logp)
            out.setdefault(label, {})[name] = r.get("idle") or {"error": "not bound"}
            log(f"idle {label} {name}: {out[label][name]}")
        return {"window": window, "rows": out}

    # ---------------------------------------------------------------- 6: scale
    SCALE_CLIENTS = ("netbond", "netbond tmpfs", "dhclient")

    def scale(self, lab_for):
        sizes = [n for n in (1, 16, 64, 256, 1024) if n <= self.a.scale_max]
        runs = 1 if self.a.smoke else self.a.scale_runs
        out, cap = {}, {}
        for n in sizes:
            lab = lab_for(n)
            cli = lab.clients[0][0]
            # The server's own capacity, in this lab, right before the clients' runs:
            # N leases take no client less than N / capacity.
            if n > 1:
                c = lab.capacity(rates=(1000, 4000) if self.a.smoke else
                                 (250, 500, 1000, 2000, 4000, 8000))
                cap[n] = c
                log(f"scale N={n} server capacity: {c}")
            for i in range(runs):
                for name in self.SCALE_CLIENTS:
                    base = name.split()[0]
                    if not self.c.available(base):
                        continue
                    if base == "dhclient" and n > self.a.scale_dhclient_max:
                        continue
                    if name == "netbond tmpfs" and n == 1:
                        continue
                    sh("ip", "-n", cli, "-batch", "-",
                       inp="".join(f"addr flush dev c{k} scope global\n" for k in range(n)))
                    d = self.tmpdir(f"scale{n}-{name}")
                    procs = []
                    if base == "netbond":
                        # Multi-interface mode: one process, every interface.
                        ifcs = ",".join(f"c{k}" for k in range(n))
                        argv = self.c.make(base, ifcs, f"{d}/nb", v4=True, v6=False)
                        if name == "netbond tmpfs":
                            # The agent mounts a tmpfs over /run in its mount namespace.
                            argv[argv.index("--state-dir") + 1] = "/run/netbond-state"
                        procs.append({"name": "netbond", "argv": argv,
                                      "log": f"{d}/nb/client.log"})
                    else:
                        for k in range(n):
                            argv = self.c.make(name, f"c{k}", f"{d}/c{k}", v4=True, v6=False)
                            procs.append({"name": f"{name}#{k}", "argv": argv,
                                          "log": f"{d}/c{k}/client.log"})
                    spec = {"mode": "scale", "tmp": d, "ifaces": [f"c{k}" for k in range(n)],
                            "want": "4", "timeout": 30.0 + n * 0.25, "procs": procs,
                            "settle": 1.0, "status": base == "netbond"}
                    r = agent_result(run_agent_in(self.h, cli, spec, "scale"))
                    self.h.reap(cli)
                    if base == "netbond":
                        for pr in procs[:1]:
                            self.check_netbond("netbond", r, pr["log"])
                    out.setdefault(n, {}).setdefault(name, []).append(
                        {"t_all_ms": r.get("t_all_ms"), "rss_kb": r.get("rss_kb"),
                         "hwm_kb": r.get("hwm_kb"), "nprocs": r.get("nprocs"),
                         "bound": r.get("bound"), "leased": r.get("leased"),
                         "overflow": r.get("overflow"), "stats": r.get("nb_stats")})
                    log(f"scale N={n} run {i + 1} {name}: {out[n][name][-1]}")
        return {"sizes": sizes, "runs": runs, "rows": out, "capacity": cap,
                "server": self.a.scale_server, "dhclient_max": self.a.scale_dhclient_max}


# --------------------------------------------------------------------------- report

def fmt_ms(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms"


def mmm(xs):
    if not xs:
        return None
    return min(xs), statistics.median(xs), max(xs)


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "kernel": os.uname().release, "cpu": cpu}


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def version_of(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        s = (r.stdout + r.stderr).strip().splitlines()
        return s[0].strip() if s else "?"
    except Exception:
        return "?"


def pkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                              text=True).stdout.strip() or "?"
    except Exception:
        return "?"


def verdict(ok):
    return "met" if ok else "MISSED"


def report(args, R, started, load0, load1, elapsed):
    m = machine_info()
    L = []
    P = L.append
    mode = ("smoke (1 run each)" if args.smoke else
            f"full ({args.runs} runs each; scale: {args.scale_runs})")
    P("# netbond benchmark results\n")
    P(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; mode: {mode}; wall time {elapsed:.0f} s")
    P(f"- Machine: {m['nproc']} CPUs, {m['cpu']}, kernel {m['kernel']}")
    P(f"- Load average (1/5/15 min) at start {' '.join(load0)}, at end {' '.join(load1)}"
      " (other builds on the machine inflate every client's numbers alike)")
    P(f"- Reproduce: `{args.cmdline}` (as root; installs the peers from Debian when missing)")
    P(f"- netbond: {args.git}; peers: dhclient (isc-dhcp-client {pkg_version('isc-dhcp-client')}), "
      f"dhcpcd {pkg_version('dhcpcd-base')}, busybox udhcpc {pkg_version('busybox-static')}, "
      f"dhcp6c (wide-dhcpv6-client {pkg_version('wide-dhcpv6-client')}), "
      f"server dnsmasq {pkg_version('dnsmasq-base')}")
    P("- Lab: network namespaces, veth pairs, dnsmasq `-C /dev/null --port=0 --no-ping "
      "--bind-interfaces --dhcp-authoritative --dhcp-range=...,2m --enable-ra`. "
      "Times come from rtnetlink address events (a socket opened before the client starts; "
      "CLOCK_MONOTONIC from just before fork/exec of the client to the RTM_NEWADDR). "
      "One unrecorded warm-up run per client binary first. "
      "Each run: fresh MAC, fresh state/lease dirs, link up with its link-local address before "
      "the client starts. **`accept_dad=0` and `autoconf=0` are set on every client interface, "
      "for every client alike** (no DAD wait; no SLAAC address counted as the DHCPv6 one).")
    P("")
    targets = []

    def cold_table(key, title, peers_note):
        C = R.get(key)
        if not C:
            return
        P(f"## {title}\n")
        P(peers_note + "\n")
        P("| client | runs (ok) | min | median | max | netbond median / this median |")
        P("|---|---|---|---|---|---|")
        nb = mmm(C["samples"].get("netbond", []))
        for c, xs in C["samples"].items():
            s = mmm(xs)
            n_ok = len(xs)
            nruns = n_ok + C["fails"][c]
            if nruns == 0:
                P(f"| {c} | not installed | - | - | - | - |")
                continue
            ratio = "-" if (c == "netbond" or not s or not nb) else f"{nb[1] / s[1]:.3f}"
            fails = f", {C['fails'][c]} without an address within {C['timeout'][c]:.0f} s" if C["fails"][c] else ""
            if s:
                P(f"| {c} | {nruns} ({n_ok}{fails}) | {fmt_ms(s[0])} | {fmt_ms(s[1])} | {fmt_ms(s[2])} | {ratio} |")
            else:
                P(f"| {c} | {nruns} (0{fails}) | - | - | - | - |")
        P("")
        return nb, {c: mmm(xs) for c, xs in C["samples"].items() if c != "netbond"}

    r1 = cold_table("cold4", "1. Cold start to an IPv4 address",
                    "Commands: `netbond run --iface c0 --no-dhcp6` (empty config); `dhclient -d -4 -sf "
                    "dhclient-script.sh` (Debian's dhclient.conf); `dhcpcd -B -4 -c /bin/true` with Debian's "
                    "/etc/dhcpcd.conf (\"dhcpcd\" = defaults: random start delay + ARP probe; fewer runs, "
                    "15 s cap) and with `noarp` + `nodelay` added; `busybox udhcpc -f -s udhcpc-script.sh`.")
    if r1:
        nb, peers = r1
        fastest = min((s[1], c) for c, s in peers.items() if s) if any(peers.values()) else None
        if nb:
            ok = nb[1] <= 5.0 and (fastest is None or nb[1] <= 0.25 * fastest[0])
            targets.append(("1", "cold start to IPv4, median", "<= 5 ms and <= 0.25x fastest peer",
                            f"{fmt_ms(nb[1])}; {nb[1] / fastest[0]:.3f}x {fastest[1]} ({fmt_ms(fastest[0])})"
                            if fastest else fmt_ms(nb[1]), verdict(ok)))
        else:
            targets.append(("1", "cold start to IPv4", "<= 5 ms", "no sample", "MISSED"))
    r2 = cold_table("cold6", "2. Cold start to a usable IPv6 address (IA_NA)",
                    "Commands: netbond with `[dhcp6] mode = \"stateful\"`, `solicit_delay = false`, "
                    "`rapid_commit = true`, `--no-dhcp4`; dhcp6c `-f` with `interface c0 { send ia-na 1; "
                    "send rapid-commit; }; id-assoc na 1 { };` (no script); `dhclient -d -6 -sf "
                    "dhclient-script.sh`; `dhcpcd -B -6 -c /bin/true` (Debian's dhcpcd.conf; it waits for "
                    "the RA). The peers keep their RFC 8415 random 0-1 s Solicit delay (their default); "
                    "netbond's is off by default. accept_dad=0 on every client interface: the measured time "
                    "has no link-local or address DAD in it, for every client.")
    if r2:
        nb, _ = r2
        targets.append(("2", "cold start to IPv6 (IA_NA), median", "<= 20 ms",
                        fmt_ms(nb[1]) if nb else "no sample", verdict(bool(nb) and nb[1] <= 20.0)))

    M = R.get("mac")
    if M:
        P("## 3. Live MAC change, server hears only the new MAC\n")
        P("The MAC of c0 is changed live (SIOCSIFHWADDR from the measuring process, arp_notify=1) while bound; before it, the server veth "
          "gets an nftables netdev ingress rule dropping the old source MAC"
          + (" (and an egress rule dropping frames to it)" if M["egress"] else "") +
          ". Time zero is the RTM_NEWLINK carrying the new MAC. \"ACK\" = the first DHCPACK received "
          "on c0 after the change (packet socket in the client namespace). \"absent\" = RTM_DELADDR of "
          f"the address until a v4 address is added again. Peers are capped at {M['cap_peer']:.0f} s per "
          "run (1-2 runs); the reference measurements on this lab: dhclient and dhcpcd never recover "
          "(they keep the old chaddr and lose the address at lease expiry), busybox udhcpc recovers "
          "after ~61 s (its renewal at T1) with a **different** address, because its client-id "
          "follows the MAC.\n")
        P("| client | runs | ACK after change (min / median / max) | address absent | same address | recovered | netbond log |")
        P("|---|---|---|---|---|---|---|")
        nb_ok = None
        for c, runs in M["runs"].items():
            good = [r for r in runs if "error" not in r]
            acks = [r["ack_ms"] for r in good if r.get("ack_ms") is not None and r.get("recovered")]
            s = mmm(acks)
            rec = sum(1 for r in good if r.get("recovered"))
            absent = [r["absent_ms"] for r in good]
            still = any(r.get("still_absent") for r in good)
            same = [bool(r.get("recovered")) and r.get("ack_addr") == r.get("old_addr") for r in good]
            if s:
                ackcol = f"{fmt_ms(s[0])} / {fmt_ms(s[1])} / {fmt_ms(s[2])}"
            else:
                ackcol = f"no recovery within {M['cap_peer'] if c != 'netbond' else 5:.0f} s"
            abscol = ("0 ms (never removed)" if absent and max(absent) == 0 else
                      (f"max {fmt_ms(max(absent))}" + (" (still absent at the cap)" if still else ""))
                      if absent else "-")
            samecol = f"{sum(same)}/{len(good)}" if good else "-"
            note = ""
            if c == "netbond":
                note = next((r.get("log_line") for r in good if r.get("log_line")), "") or ""
                note = note.split("dhcp4:", 1)[-1].strip() if note else ""
                nb_ok = (s, absent, same, len(good), rec)
            elif c == "udhcpc":
                note = "reference: recovers after ~61 s with a different address"
            P(f"| {c} | {len(runs)} | {ackcol} | {abscol} | {samecol} | {rec}/{len(runs)} | {note} |")
        P("")
        if nb_ok:
            s, absent, same, n, rec = nb_ok
            ok = bool(s) and s[1] <= 10.0 and absent and max(absent) == 0 and all(same) and rec == n
            targets.append(("3", "MAC change: same address, absent, ACK (median)",
                            "same, 0 ms, <= 10 ms",
                            f"same {sum(same)}/{n}, absent max {fmt_ms(max(absent) if absent else None)}, "
                            f"ACK {fmt_ms(s[1]) if s else 'none'}", verdict(ok)))

    S = R.get("rss")
    if S:
        P("## 4. Peak RSS (VmHWM) once bound\n")
        P("netbond doing DHCPv4 + DHCPv6 (`[dhcp6] mode = \"stateful\"`, RA on) on one interface, read 1 s after both "
          "addresses are on the interface; dhclient (v4); dhcp6c (v6); dhcpcd (v4 + v6, sum over all its "
          "privilege-separated processes); udhcpc (v4). Max over the runs.\n")
        P("| client | processes | VmHWM | VmRSS |")
        P("|---|---|---|---|")
        nbh = None
        for c, runs in S.items():
            good = [r for r in runs if "error" not in r]
            if not good:
                P(f"| {c} | - | not bound | - |")
                continue
            h = max(r["hwm_kb"] for r in good)
            rs = max(r["rss_kb"] for r in good)
            if c.startswith("netbond"):
                nbh = h if nbh is None else min(nbh, h)
            P(f"| {c} | {good[0]['procs']} | {h / 1024:.2f} MB | {rs / 1024:.2f} MB |")
        P("")
        targets.append(("4", "peak RSS, v4 + v6 (best netbond build)", "<= 2.5 MB",
                        f"{nbh / 1024:.2f} MB" if nbh else "no sample",
                        verdict(bool(nbh) and nbh / 1024 <= 2.5)))

    I = R.get("idle")
    if I:
        P(f"## 5. Idle: {I['window']:.0f} s with a bound lease on a quiet link\n")
        P("Lease 1 h (so no renewal is due in the window), measured after a 3 s settle. Wakeups = "
          "voluntary + involuntary context switches summed over all threads (and processes); "
          "\"slices\" = schedstat run slices; CPU from schedstat (ns on CPU) and utime+stime (ticks). "
          "\"RA off\": dnsmasq without `--enable-ra`, netbond `[dhcp6] mode = \"stateful\"`. "
          "\"RA on\": dnsmasq `--enable-ra` (periodic RAs), netbond default (mode auto). dhcpcd: "
          "default config, v4 + v6; with RA off it has no DHCPv6.\n")
        P("| client | RA | wakeups (ctxt switches) | run slices | CPU | addr events in window |")
        P("|---|---|---|---|---|---|")
        nb_idle = {}
        for label in ("RA off", "RA on"):
            for c, v in I["rows"].get(label, {}).items():
                if "error" in v:
                    P(f"| {c} | {label} | not bound | - | - | - |")
                    continue
                w = v["vcsw"] + v["nvcsw"]
                if c == "netbond":
                    nb_idle[label] = (w, v["cpu_ns"])
                P(f"| {c} | {label} | {w} | {v['slices']} | {v['cpu_ns'] / 1e6:.3f} ms "
                  f"({v['ticks']} ticks) | {v['addr_events']} |")
        P("")
        off = nb_idle.get("RA off")
        targets.append(("5", f"idle wakeups over {I['window']:.0f} s (RA off)", "0",
                        f"{off[0]} wakeups, {off[1] / 1e6:.3f} ms CPU" if off else "no sample",
                        verdict(bool(off) and off[0] == 0)))
        if "RA on" in nb_idle:
            targets.append(("5b", f"idle wakeups over {I['window']:.0f} s (RA on)", "(report)",
                            f"{nb_idle['RA on'][0]} wakeups", "-"))

    SC = R.get("scale")
    if SC:
        server = SC.get("server", "dnsmasq")
        server_desc = {
            "kea": "ISC Kea kea-dhcp4 on br0 (memfile leases with persist false, multi-threading "
                   "with 2 threads, warnings-only log)",
            "dnsmasq-mem": "dnsmasq on br0 without a lease file (`--leasefile-ro`, "
                           "`--quiet-dhcp`, `--no-ping`)",
            "dnsmasq": "dnsmasq on br0 with its lease file",
        }.get(server, server)
        P("## 6. Scale: N interfaces\n")
        P("netbond in multi-interface mode: **one process** for all N interfaces "
          "(`netbond run --iface c0,c1,... --no-dhcp6`), against N dhclient processes (`-4`, one "
          "per interface, as dhclient is normally run). One server namespace with a bridge "
          f"(10.98.0.0/16), N veth pairs into one client namespace; the server: {server_desc}. "
          "Time = from starting the client(s) to the last interface's address event. "
          "netbond's state directory (lease files, fsynced) on disk (ext4 or whatever holds "
          "the work directory) and on a tmpfs. **Server** = the server's own "
          "clients: its capacity in leases per second (ISC `perfdhcp`, C++, as a relay on an "
          "extra bridge port, offering DORA exchanges of new clients at 250, 500, 1000, ... /s "
          "for 1 s each; the highest completed rate with < 1 % lost), its mean "
          "DISCOVER-OFFER latency at the first rate, and so the least time any client needs "
          "for N leases; measured in the same lab right before the N's runs. RSS = sum of VmRSS over all processes once all are leased; "
          "\"per extra interface\" = (RSS at N - RSS at 1) / (N - 1). "
          f"{SC['runs']} run(s) per cell: median, and (min-max, spread = max/min).\n")

        def cell(runs):
            ok = [r["t_all_ms"] for r in runs if r.get("bound")]
            if not ok:
                return "not all leased", None, None
            lo, med, hi = mmm(ok)
            spread = hi / lo if lo else None
            extra = "" if len(ok) == len(runs) else f"; {len(runs) - len(ok)} not all leased"
            return (f"{fmt_ms(med)} ({fmt_ms(lo)}-{fmt_ms(hi)}, {spread:.2f}x{extra})",
                    med, spread)

        P("| N | server: capacity, latency, floor for N | netbond, one process | netbond, tmpfs state | N dhclient processes | netbond / dhclient |")
        P("|---|---|---|---|---|---|")
        per_n = {}
        for n in SC["sizes"]:
            rows = SC["rows"].get(n, SC["rows"].get(str(n), {}))
            c = SC.get("capacity", {}).get(n, SC.get("capacity", {}).get(str(n), {}))
            if c.get("per_s"):
                cap_txt = (f"{c['per_s']}/s, {c['lat_ms']:.1f} ms: N take >= "
                           f"{fmt_ms(n / c['per_s'] * 1000)}")
            else:
                cap_txt = c.get("error", "-")
            nb, nb_med, nb_spread = cell(rows.get("netbond", []))
            tf, _, _ = cell(rows.get("netbond tmpfs", [])) if rows.get("netbond tmpfs") else ("-", None, None)
            if rows.get("dhclient"):
                dh, dh_med, _ = cell(rows["dhclient"])
            else:
                dh, dh_med = (f"not run (N > {SC.get('dhclient_max')})" if n > 1 else "-"), None
            ratio = f"{nb_med / dh_med:.2f}" if nb_med and dh_med else "-"
            per_n[n] = (nb_med, dh_med, nb_spread)
            P(f"| {n} | {cap_txt} | {nb} | {tf} | {dh} | {ratio} |")
        loop_saves = [r["stats"].get("saves_on_loop") for rows in SC["rows"].values()
                      for c, runs in rows.items() if c.startswith("netbond")
                      for r in runs if isinstance(r.get("stats"), dict)]
        if loop_saves:
            P(f"\nnetbond's `stats.saves_on_loop` (durable writes on the event-loop thread) over "
              f"all {len(loop_saves)} netbond runs: max {max(x or 0 for x in loop_saves)}.")
        P("\n| N | client | processes | total RSS | RSS per interface | per extra interface |")
        P("|---|---|---|---|---|---|")
        rss1 = {}
        best = {}
        for n in SC["sizes"]:
            for c, runs in SC["rows"].get(n, SC["rows"].get(str(n), {})).items():
                ok = [r for r in runs if r.get("bound")]
                if not ok or c == "netbond tmpfs":
                    continue
                rs = statistics.median(r["rss_kb"] for r in ok)
                procs = statistics.median(r.get("nprocs") or 0 for r in ok)
                if n == 1:
                    rss1[c] = rs
                extra = "-"
                if n > 1 and c in rss1:
                    extra = f"{(rs - rss1[c]) / (n - 1):.0f} KB"
                    if c == "netbond":
                        best = {"n": n, "extra_kb": (rs - rss1[c]) / (n - 1)}
                P(f"| {n} | {c} | {procs:.0f} | {rs / 1024:.1f} MB | {rs / n:.0f} KB | {extra} |")
        P("")
        for n in (16, 64, 256):
            if n not in per_n:
                continue
            nb_med, dh_med, spread = per_n[n]
            got = (f"{fmt_ms(nb_med)} vs {fmt_ms(dh_med)}" if nb_med and dh_med else "no sample")
            ok = bool(nb_med and dh_med and nb_med <= 0.5 * dh_med)
            targets.append((f"6 N={n}", "netbond median <= 0.5x N dhclient (same run)", "<= 0.5x",
                            got + (f" = {nb_med / dh_med:.2f}x" if nb_med and dh_med else ""),
                            verdict(ok) if nb_med and dh_med else "-"))
            if spread:
                targets.append((f"6 N={n}", "netbond max/min over the runs", "<= 1.5x",
                                f"{spread:.2f}x", verdict(spread <= 1.5) if SC["runs"] > 1 else "-"))
        if 256 in per_n and per_n[256][0]:
            targets.append(("6 N=256", "netbond, all leased (median)", "<= 0.5 s",
                            fmt_ms(per_n[256][0]), verdict(per_n[256][0] <= 500)))
        if best:
            targets.append(("6", "memory per extra interface", "<= 32 KB",
                            f"{best['extra_kb']:.0f} KB (N = {best['n']})",
                            verdict(best["extra_kb"] <= 32)))

    B = R.get("size")
    if B:
        P("## 7. Binary size (on disk)\n")
        P("| binary | size | linking |")
        P("|---|---|---|")
        for name, size, how in B["rows"]:
            P(f"| {name} | {('%.2f MB' % (size / 1e6)) if size else '-'} ({size or '-'} bytes) | {how} |")
        P("\nMB = 10^6 bytes (the reference figures: busybox 1.98 MB, dhclient 2.76 MB).\n")
        # Both built with the stable toolchain alone (packaging/build-static.sh).
        for num, key, what, limit in (("7", "musl", "full features", 2e6),
                                      ("7b", "musl_min", "minimal features", 1.5e6)):
            ms_ = B.get(key)
            targets.append((num, f"static (musl) binary, {what}", f"<= {limit / 1e6:g} MB",
                            f"{ms_ / 1e6:.2f} MB" if ms_ else B.get("musl_note", "not built"),
                            verdict(ms_ <= limit) if ms_ else "-"))

    if R.get("failover"):
        import failover
        lines, row = failover.render(R["failover"], args.smoke)
        L.extend(lines)
        targets.append(row)

    P("## Targets\n")
    P("| # | metric | target | measured (netbond) | |")
    P("|---|---|---|---|---|")
    for t in targets:
        P("| " + " | ".join(t) + " |")
    P("")
    if R.get("failures"):
        P("## Harness failures\n")
        for f in R["failures"]:
            P("```\n" + f + "\n```")
    return "\n".join(L) + "\n"


def binary_sizes(args):
    rows = []

    def dyn(p):
        out = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout \
            if shutil.which("file") else ""
        if "statically linked" in out or "static-pie" in out:
            return "static"
        libs = subprocess.run(["ldd", p], capture_output=True, text=True).stdout
        if "not a dynamic executable" in libs or "statically linked" in libs:
            return "static"
        n = sum(1 for ln in libs.splitlines() if "=>" in ln)
        return f"dynamic ({n} shared libraries)"
    rows.append(("netbond (release, stripped, glibc)", os.path.getsize(args.bin), dyn(args.bin)))
    res = {"rows": rows}
    if args.musl_bin and os.path.exists(args.musl_bin):
        sz = os.path.getsize(args.musl_bin)
        rows.append(("netbond static, full (musl, stable; packaging/build-static.sh)",
                     sz, dyn(args.musl_bin)))
        res["musl"] = sz
        if args.musl_min_bin and os.path.exists(args.musl_min_bin):
            sz = os.path.getsize(args.musl_min_bin)
            rows.append(("netbond static, minimal (musl, stable; build-static.sh --minimal)",
                         sz, dyn(args.musl_min_bin)))
            res["musl_min"] = sz
    else:
        res["musl_note"] = args.musl_note or "not built"
        rows.append((f"netbond (musl): {res['musl_note']}", 0, "-"))
    for name in ("busybox", "dhclient", "dhcpcd", "dhcp6c", "dnsmasq"):
        p = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if p:
            p = os.path.realpath(p)
            rows.append((f"{name} ({p})", os.path.getsize(p), dyn(p)))
    return res


def main_orchestrator():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--musl-bin")
    ap.add_argument("--musl-min-bin")
    ap.add_argument("--musl-note")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--scale-max", type=int)
    ap.add_argument("--scale-runs", type=int, default=5)
    ap.add_argument("--scale-server", default=None,
                    help="kea (default when installed), dnsmasq-mem (no lease file) or dnsmasq")
    ap.add_argument("--scale-dhclient-max", type=int, default=256,
                    help="largest N with N dhclient processes (1024 of them need ~4.5 GB)")
    ap.add_argument("--only", default="cold4,cold6,mac,rss,idle,scale,size,failover")
    ap.add_argument("--prefix", default=f"nbb{os.getpid()}")
    ap.add_argument("--out", default=None,
                    help="default: results.md, or results-smoke.md with --smoke")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--cmdline", default="integration/bench/run.sh")
    ap.add_argument("--git", default="?")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    if args.scale_max is None:
        args.scale_max = 16 if args.smoke else 1024
    if args.scale_server is None:
        args.scale_server = ("kea" if shutil.which("kea-dhcp4", path="/usr/sbin:/usr/bin")
                             else "dnsmasq-mem")
    only = set(args.only.split(","))
    if args.out is None:
        # --only failover / scale alone: its own file (results.md keeps the rest)
        base = ("results-failover" if only == {"failover"} else
                "results-scale" if only == {"scale"} else "results")
        args.out = os.path.join(HERE, base + ("-smoke.md" if args.smoke else ".md"))
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = loadavg()
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="netbond-bench-")
    h = Harness(args.prefix, work)

    def on_signal(sig, _frm):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    R = {}
    b = Bench(args, h)
    err = None
    try:
        if only & {"cold4", "cold6", "mac", "rss"}:
            lab = Lab(h, "main", links=1, ra=True, base=0)
            if "cold4" in only:
                R["cold4"] = b.cold(lab, 4)
            if "cold6" in only:
                R["cold6"] = b.cold(lab, 6)
            if "mac" in only:
                R["mac"] = b.macchange(lab)
            if "rss" in only:
                R["rss"] = b.rss(lab)
        if "idle" in only:
            off = Lab(h, "idleoff", links=5, ra=False, lease="1h", base=10)
            on = Lab(h, "idleon", links=5, ra=True, lease="1h", base=20)
            R["idle"] = b.idle([(off, "RA off"), (on, "RA on")])
        if "scale" in only:
            def lab_for(n):
                h.cleanup()
                return Lab(h, f"sc{n}", links=n, bridge=True, ra=False,
                           server=args.scale_server)
            R["scale"] = b.scale(lab_for)
        if "size" in only:
            R["size"] = binary_sizes(args)
        if "failover" in only:
            import failover
            R["failover"] = failover.run(args.bin, args.smoke, args.runs, b.tmpdir("failover"), log)
            b.failures.extend(R["failover"]["failures"])
    except BaseException as e:  # report what we have, then fail
        import traceback
        err = "".join(traceback.format_exception(e))
        b.failures.append("harness error:\n" + err)
    finally:
        h.cleanup()
    R["failures"] = b.failures
    text = report(args, R, started, load0, loadavg(), time.monotonic() - t_start)
    with open(args.out, "w") as f:
        f.write(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(R, f, indent=1, default=str)
    print(text)
    if not args.keep and not b.failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"work dir kept: {work}")
    if b.failures:
        log(f"{len(b.failures)} failure(s): see the report")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "agent":
        run_agent(sys.argv[2])
    else:
        sys.exit(main_orchestrator())
