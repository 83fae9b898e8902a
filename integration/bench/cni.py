#!/usr/bin/env python3
"""Containers benchmark: N container attachments added through the CNI path (Debian's
stock macvlan plugin calling an IPAM), netbond's daemon beside the stock `dhcp`
plugin's daemon, against dnsmasq. Prints a Markdown table.

    sudo integration/bench/cni.py [--n 50] [--parallel 16] [--bin target/release/netbond]

Per IPAM and mode (sequential, then --parallel at a time): time until all ADDs are
done, p50/p99 ADD latency (the main plugin's whole ADD), daemon RSS in total and per
attachment, CPU used by the daemon over 10 s with every lease held (idle), and the
share of leases still held after `kill -9` and a restart of the daemon.

Network safety: everything runs in namespaces this script creates (prefix nbcb<pid>)
and deletes on exit; the daemons and dnsmasq run inside them; processes are stopped
by PID.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CNI = "/usr/lib/cni"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The /proc readers of the main benchmark, not a second copy of them.
sys.path.insert(0, HERE)
from bench import counters, status_kb  # noqa: E402


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


class Lab:
    def __init__(self, work):
        self.p = f"nbcb{os.getpid()}"
        self.sns, self.hns = self.p + "s", self.p + "h"
        self.work = work
        self.ctrs = []
        self.procs = []
        for ns in (self.sns, self.hns):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.sns, "link", "add", "s0", "type", "veth", "peer", "name", "c0",
           "netns", self.hns)
        sh("ip", "-n", self.sns, "addr", "add", "10.99.0.1/16", "dev", "s0")
        sh("ip", "-n", self.hns, "addr", "add", "10.99.0.2/16", "dev", "c0")
        sh("ip", "-n", self.sns, "link", "set", "s0", "up")
        sh("ip", "-n", self.hns, "link", "set", "c0", "up")
        self.leasefile = os.path.join(work, "dnsmasq.leases")
        self.dnsmasq = self.spawn(self.sns, [
            "dnsmasq", "-k", "-C", "/dev/null", "--port=0", "--no-ping", "--bind-interfaces",
            "--interface=s0", "--user=root", "--dhcp-authoritative",
            "--dhcp-range=10.99.1.1,10.99.7.250,255.255.0.0,1h", "--dhcp-lease-max=5000",
            "--dhcp-option=option:dns-server,10.99.0.1",
            f"--dhcp-leasefile={self.leasefile}",
            f"--pid-file={os.path.join(work, 'dnsmasq.pid')}",
            f"--log-facility={os.path.join(work, 'dnsmasq.log')}",
        ], "dnsmasq.out")
        time.sleep(0.5)

    def spawn(self, ns, argv, log):
        f = open(os.path.join(self.work, log), "a")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                             stdout=f, stderr=f)
        self.procs.append(p)
        return p

    def ctr(self, i):
        name = f"{self.p}c{i}"
        sh("ip", "netns", "add", name)
        self.ctrs.append(name)
        return name

    def del_ctrs(self):
        for c in self.ctrs:
            sh("ip", "netns", "del", c, check=False)
        self.ctrs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.del_ctrs()
        for ns in (self.sns, self.hns):
            sh("ip", "netns", "del", ns, check=False)


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


def cpu_ticks(pid):
    return counters([pid])["ticks"]


def ctx_switches(pid):
    c = counters([pid])
    return c["vcsw"] + c["nvcsw"]


class Ipam:
    def __init__(self, name, lab, bindir, binary):
        self.name, self.lab, self.bindir = name, lab, bindir
        self.sock = os.path.join(lab.work, f"{name}.sock")
        self.state = os.path.join(lab.work, f"{name}-state")
        self.binary = binary
        self.proc = None

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        if self.name == "netbond":
            argv = [self.binary, "cni", "serve", "--socket", self.sock, "--state-dir", self.state]
        else:
            argv = [os.path.join(CNI, "dhcp"), "daemon", "-socketpath", self.sock]
        self.proc = self.lab.spawn(self.lab.hns, argv, f"{self.name}.log")
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        time.sleep(0.2)

    def pid(self):
        # `ip netns exec` execs the daemon, so the child's PID is the daemon's.
        return self.proc.pid

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def conf(self):
        ipam = {"type": "netbond" if self.name == "netbond" else "dhcp",
                "daemonSocketPath": self.sock}
        return json.dumps({"cniVersion": "1.0.0", "name": "bench", "type": "macvlan",
                           "master": "c0", "mode": "bridge", "ipam": ipam})

    def add(self, ctr):
        env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID=ctr,
                   CNI_NETNS=f"/var/run/netns/{ctr}", CNI_IFNAME="eth0", CNI_PATH=self.bindir)
        t = time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", self.lab.hns, os.path.join(CNI, "macvlan")],
                           input=self.conf(), capture_output=True, text=True, env=env)
        dt = time.monotonic() - t
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} ADD {ctr}: {r.stdout} {r.stderr}")
        return dt

    def held(self):
        """Attachments the daemon holds a lease for."""
        if self.name == "netbond":
            r = sh(self.binary, "cni", "status", "--json", "--socket", self.sock, check=False)
            if r.returncode != 0:
                return 0
            return sum(1 for a in json.loads(r.stdout) if a.get("addresses"))
        return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(ipam, lab, n, parallel):
    ipam.start()
    ctrs = [lab.ctr(i) for i in range(n)]
    rss0 = rss_kb(ipam.pid())
    t0 = time.monotonic()
    if parallel <= 1:
        lat = [ipam.add(c) for c in ctrs]
    else:
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            lat = list(ex.map(ipam.add, ctrs))
    total = time.monotonic() - t0
    time.sleep(1)
    rss = rss_kb(ipam.pid())
    c0, w0 = cpu_ticks(ipam.pid()), ctx_switches(ipam.pid())
    time.sleep(10)
    c1, w1 = cpu_ticks(ipam.pid()), ctx_switches(ipam.pid())
    row = {
        "ipam": ipam.name, "n": n, "parallel": parallel, "total_s": total,
        "p50_s": statistics.median(lat), "p99_s": pct(lat, 99), "rss_kb": rss,
        "per_att_kb": (rss - rss0) / n, "idle_cpu_ticks_10s": c1 - c0,
        "idle_ctx_switches_10s": w1 - w0,
    }
    # Restart: kill -9 and start again; what does the daemon still hold?
    ipam.kill9()
    ipam.start()
    time.sleep(3)
    held = ipam.held()
    row["kept_after_restart"] = "n/a (no lease store)" if held is None else f"{100 * held // n}%"
    ipam.kill9()
    lab.del_ctrs()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/netbond"))
    ap.add_argument("--only", default="netbond,dhcp")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("cni.py needs root (network namespaces)")
    if not os.path.exists(os.path.join(CNI, "macvlan")):
        subprocess.run(["apt-get", "install", "-y", "-qq", "containernetworking-plugins"],
                       check=True)
    work = tempfile.mkdtemp(prefix="netbond-cni-bench-")
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    os.symlink(os.path.abspath(a.bin), os.path.join(bindir, "netbond"))
    os.symlink(os.path.join(CNI, "dhcp"), os.path.join(bindir, "dhcp"))
    lab = Lab(work)
    rows = []
    try:
        for mode in (1, a.parallel):
            for name in a.only.split(","):
                rows.append(run(Ipam(name, lab, bindir, a.bin), lab, a.n, mode))
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        lab.close()
        shutil.rmtree(work, ignore_errors=True)
    print("| IPAM | N | at a time | all ADDs | p50 ADD | p99 ADD | daemon RSS | per attachment | idle CPU (10 s) | idle wakeups (10 s) | leases kept after kill -9 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['ipam']} | {r['n']} | {r['parallel']} | {r['total_s']:.2f} s | "
              f"{r['p50_s'] * 1000:.0f} ms | {r['p99_s'] * 1000:.0f} ms | {r['rss_kb']} KB | "
              f"{r['per_att_kb']:.0f} KB | {r['idle_cpu_ticks_10s']} ticks | "
              f"{r['idle_ctx_switches_10s']} | {r['kept_after_restart']} |")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
