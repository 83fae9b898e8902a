"""Benchmark item 8: bond failover in the VM tier (called by bench.py, `--only failover`).

One QEMU boot (integration/vm/run-vm.sh) runs integration/vm/guest/bench-failover.sh,
which times, per run, the unplug of the wired port (t0: just before the RTM_NEWLINK that
sets the port's LAN end down, sent by failover-probe.py) to the first DHCPACK to the
backup's MAC received on bond0 (kernel receive stamp), for netbond and the reference
setup (kernel bond + ISC dhclient with the reference's dhclient.conf). The guest prints
`# BENCH failover scenario=... run=... key=value ...` lines; this module parses them and
renders section 8 and the Targets row.
"""

import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN_VM = os.path.join(REPO, "integration", "vm", "run-vm.sh")
GUEST = os.path.join(REPO, "integration", "vm", "guest", "bench-failover.sh")

# (scenario, client, backup, how the client runs)
SCENARIOS = [
    ("netbond-wired", "netbond", "wired (eth1)", "`netbond run` with `[bond]` eth0 + eth1"),
    ("dhclient-wired", "dhclient", "wired (eth1)",
     "running since before the unplug (the units' `sleep 8` long past)"),
    ("dhclient-restart-wired", "dhclient, unit restarted at the unplug", "wired (eth1)",
     "`systemctl restart dhclient@bond0` emulated at t0: `dhclient -r`, `sleep 1`, `sleep 8`, "
     "`dhclient -d ... -i bond0`"),
    ("netbond-wifi", "netbond", "Wi-Fi (wlan0, hwsim)",
     "`netbond run` with eth0 + wlan0, wpa_supplicant supervised by netbond"),
    ("dhclient-wifi", "dhclient", "Wi-Fi (wlan0, hwsim)", "as dhclient-wired"),
    ("dhclient-restart-wifi", "dhclient, unit restarted at the unplug", "Wi-Fi (wlan0, hwsim)",
     "as dhclient-restart-wired"),
]


def params(smoke, runs):
    """Runs and caps: smoke = 1 run each and short caps (one boot, ~1 min under TCG)."""
    if smoke:
        return {"runs": 1, "dh_runs": 1, "nb_cap": 10, "dh_cap": 10, "late_cap": 20}
    return {"runs": runs, "dh_runs": min(runs, 5), "nb_cap": 10, "dh_cap": 20, "late_cap": 30}


def parse_kv(words):
    out = {}
    for w in words:
        k, _, v = w.partition("=")
        if v in ("", "-"):
            out[k] = None
            continue
        try:
            out[k] = float(v) if "." in v and v.replace(".", "", 1).isdigit() else int(v)
        except ValueError:
            out[k] = v
    return out


def parse(text):
    info, runs = {}, {}
    for line in text.splitlines():
        if line.startswith("# BENCH failover-info "):
            info = parse_kv(line.split()[3:])
        elif line.startswith("# BENCH failover "):
            kv = parse_kv(line.split()[3:])
            runs.setdefault(kv.pop("scenario"), []).append(kv)
    return info, runs


def run(bin_path, smoke, runs, outdir, log=None):
    """Boot the VM once, run every scenario; returns the results dict for render()."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    p = params(smoke, runs)
    env = dict(os.environ, NETBOND_BIN=bin_path, NETBOND_VM_OUT=outdir,
               NETBOND_GUEST_RUNS=str(p["runs"]), NETBOND_GUEST_DH_RUNS=str(p["dh_runs"]),
               NETBOND_GUEST_NB_CAP=str(p["nb_cap"]), NETBOND_GUEST_DH_CAP=str(p["dh_cap"]),
               NETBOND_GUEST_LATE_CAP=str(p["late_cap"]))
    log(f"failover: run-vm.sh {os.path.relpath(GUEST, REPO)} (one VM boot; results in {outdir})")
    t = time.monotonic()
    proc = subprocess.Popen(["bash", RUN_VM, GUEST], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        sys.stderr.write("  vm| " + line)
    rc = proc.wait()
    text = "\n".join(lines)
    info, res = parse(text)
    accel = next((ln.split("accel=")[1].split()[0] for ln in lines
                  if ln.startswith("[run-vm] kernel=") and "accel=" in ln), "?")
    failures = []
    if rc != 0:
        bad = [ln for ln in lines if ln.startswith(("not ok", "Bail out", "[run-vm] ERROR"))]
        failures.append(f"failover: run-vm.sh exited {rc}:\n" + "\n".join(bad[:20] or lines[-30:]))
    for s in ("netbond-wired", "netbond-wifi"):
        if not any("error" not in r for r in res.get(s, [])):
            failures.append(f"failover: no measured {s} run (see {outdir}/guest.log)")
    return {"params": p, "info": info, "runs": res, "rc": rc, "accel": accel,
            "wall_s": time.monotonic() - t, "failures": failures, "outdir": outdir}


def fmt(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms"


def mmm_s(xs):
    if not xs:
        return "-"
    return f"{fmt(min(xs))} / {fmt(statistics.median(xs))} / {fmt(max(xs))}"


def med(xs):
    return statistics.median(xs) if xs else None


def render(F, smoke):
    """-> (list of Markdown lines for section 8, Targets row tuple)."""
    p, R = F["params"], F["runs"]
    L = []
    P = L.append
    P("## 8. Bond failover: wired port unplugged -> lease confirmed over the backup (VM tier)\n")
    P(f"One QEMU VM (Debian kernel {F['info'].get('kernel', '?')}, accel={F['accel']}: "
      + ("**TCG emulation, no KVM: every time below includes the emulation's slowness**"
         if F["accel"] == "tcg" else "KVM")
      + f"; wall {F['wall_s']:.0f} s) runs `integration/vm/guest/bench-failover.sh`: "
      "netns `lan` with br0, dnsmasq (2-minute leases) and the LAN ends of the ports; "
      "bond0 in the guest's root namespace, active-backup, fail_over_mac active, miimon 100, "
      "primary eth0 (the reference's bonding options). **t0** = CLOCK_REALTIME just before "
      "the probe sends the RTM_NEWLINK that sets lan0 (the wired port's LAN end) down: the "
      "unplug. **ACK** = kernel receive stamp (SO_TIMESTAMPNS, AF_PACKET on bond0) of the first "
      "DHCPACK whose chaddr is the backup's MAC. Also: the first DISCOVER/REQUEST with the "
      "backup's MAC (AF_PACKET, outgoing), bond0's MAC switch (RTM_NEWLINK, stamped when read: an "
      "upper bound), and the address on bond0 (RTM_DELADDR until a v4 address is back). "
      "The reference: bond0 made as `master@`/`slave@` do, ISC dhclient with the reference's "
      "`/etc/dhclient.conf` verbatim (initial-interval 2, reboot 5, timeout 10, retry 20, a fixed "
      "dhcp-client-identifier) and a script that only sets the address; wpa_supplicant started "
      "as `supplicant@wlan0` does (`-Dnl80211,wext,wired`); for the wired backup the "
      "LAN drops frames with the old MAC arriving from eth1's port (an AP's behaviour towards a "
      "transmitter that is not the associated station; nftables bridge rule). "
      f"Runs: netbond {p['runs']}, dhclient {p['dh_runs']} per scenario; caps: netbond "
      f"{p['nb_cap']} s, dhclient {p['dh_cap']} s, restarted dhclient {p['late_cap']} s.\n")
    def good_runs(scen):
        return [r for r in R.get(scen, []) if r.get("error") is None]

    def all_acked_median(good):  # a median only when every run got its ACK
        acks = [r["ack_ms"] for r in good if r.get("ack_ms") is not None]
        return med(acks) if good and len(acks) == len(good) else None
    nb_med = {b.split()[0]: all_acked_median(good_runs(s))
              for s, c, b, _ in SCENARIOS if c == "netbond"}
    P("| scenario | client | backup | runs | ACK after unplug (min / median / max) | "
      "first DISCOVER/REQUEST, new MAC (median) | bond0 MAC switch read by the probe (median; upper bound: under TCG netbond runs first) | "
      "address absent (max) | same address | netbond log \"re-confirmed ... in\" (median) | "
      "netbond median / this median |")
    P("|---|---|---|---|---|---|---|---|---|---|---|")
    for scen, client, backup, _how in SCENARIOS:
        runs, good = R.get(scen), good_runs(scen)
        if runs is None:
            continue
        if not good:
            P(f"| {scen} | {client} | {backup} | 0 | not run: {runs[0].get('error')} | | | | | | |")
            continue
        acks = [r["ack_ms"] for r in good if r.get("ack_ms") is not None]
        cap = good[0].get("cap_s")
        ackcol = mmm_s(acks) if acks else f"**no ACK within {cap} s**"
        if acks and len(acks) < len(good):
            ackcol += f" ({len(good) - len(acks)} of {len(good)} runs: none within {cap} s)"
        absent = [r.get("absent_ms") or 0 for r in good]
        abscol = "0 (never removed)" if max(absent) == 0 else fmt(max(absent)) + (
            " (still absent at the cap)" if any(r.get("still_absent") for r in good) else "")
        same = f"{sum(1 for r in good if r.get('same'))}/{len(good)}" if acks else "-"
        nbl = [r["netbond_ms"] for r in good if r.get("netbond_ms") is not None]
        m, nbm = all_acked_median(good), nb_med.get(backup.split()[0])
        ratio = "-" if m is None or nbm is None else (
            "1" if client == "netbond" else f"{nbm / m:.3f} ({m / nbm:.0f}x faster)")
        P(f"| {scen} | {client} | {backup} | {len(good)} | {ackcol} | "
          f"{fmt(med([r['req_ms'] for r in good if r.get('req_ms') is not None]))} | "
          f"{fmt(med([r['mac_ms'] for r in good if r.get('mac_ms') is not None]))} | {abscol} | {same} | "
          f"{fmt(med(nbl)) if nbl else '-'} | {ratio} |")
    P("")
    dw = R.get("dhclient-wired", []) + R.get("dhclient-wifi", [])
    never = dw and all(r.get("ack_ms") is None for r in dw if r.get("error") is None)
    sent = sum((r.get("sent_old") or 0) + (r.get("sent_new") or 0) for r in dw)
    P("- **dhclient, running**: " + (
        f"no DHCPACK to the new MAC within the cap in any run; it sent {sent} DISCOVER/REQUEST "
        "in all those windows. dhclient does not watch the bond's link or MAC: its next message "
        "is the RENEW at T1 (half the lease: 60 s with these 2-minute leases, hours on a real "
        "network), and that one still carries the old MAC as chaddr (and, over its LPF socket, as "
        "the Ethernet source), which an AP drops (the wired rows' nftables rule): it never "
        "recovers (see "
        "`integration/vm/guest/dhclient-compare.sh`, 80 s watched)." if never else
        "see the table (unexpected: an ACK to the new MAC)." if dw else "not run."))
    P("- **dhclient, unit restarted at the unplug**: the reference units have **no** trigger "
      "for this (dhclient@bond0 is bound to bond0's device, which stays through a failover), so "
      "this row assumes something runs `systemctl restart dhclient@bond0` at the very instant of "
      "the unplug: the unit's ExecStop (`dhclient -r`: RELEASE, the address is removed; "
      "`sleep 1`), ExecStartPre `sleep 8` (the reference's sleep), then a fresh dhclient "
      "(DISCOVER, since the lease was released). The address is gone for about the whole "
      "9+ s (column \"absent\"); whether the same address comes back is dnsmasq's choice "
      "(column \"same\"). This is the reference's best case; its units as written give the "
      "plain \"dhclient\" rows.")
    P("- **netbond** notices the new MAC of bond0 (rtnetlink) and re-confirms the address it "
      "holds with a REQUEST from the new MAC at once; the address stays on bond0 throughout. The "
      "gap between the unplug and bond0's MAC switch is the bond's own (miimon 100 ms). "
      "netbond's log figure is its own clock, from entering its re-confirm state (the new MAC "
      "seen, the REQUEST about to go out) to handling the ACK.")
    P("- Wi-Fi: mac80211_hwsim radios with hostapd (WPA2-PSK) in netns `lan`, bridged to br0: "
      "a real (simulated) AP, so no drop rule there. Every time here is under emulation "
      "(see accel above): compare rows with each other, not with hardware."
      + (" Smoke mode: 1 run each, short caps; numbers are indicative only." if smoke else ""))
    P("")
    w, wf = nb_med.get("wired"), nb_med.get("Wi-Fi")
    row = ("8", "failover: unplug -> lease over the backup, netbond median (wired / Wi-Fi)",
           "- (none given; reference: never, or ~10 s with a restart)",
           f"{fmt(w)} / {fmt(wf)}" + (f" ({F['accel'].upper()})" if F["accel"] == "tcg" else ""),
           "-")
    return L, row
