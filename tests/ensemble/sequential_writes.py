#!/usr/bin/python3
"""One write at a time through a 3-member ensemble: Keeper (optionally two builds: before/after a
change) beside Apache ZooKeeper 3.8, all three ensembles running at once (issue #19).

Each ensemble is started as in ensemble_perf.py (tickTime 500 ms, forceSync=yes). Per round the
ensembles take turns (the order rotates, so a shared machine's noise falls on all alike) and
each gets `samsa perf keeper --sessions 1 --inflight 1` (create → wait for the answer → next
create; then setData and delete the same way), once through a follower (the write is forwarded
to the leader) and once through the leader. Prints, per ensemble and target, the median over
the rounds of ops/s and p50/p99 per phase.

    tests/ensemble/sequential_writes.py --samsa AFTER/samsa [--samsa-before BEFORE/samsa]
        [--rounds 3] [--requests 300]
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble_common import finish  # noqa: E402
from ensemble_perf import HOST, Ens, loadavg, start_and_warm, stop_all  # noqa: E402

PHASES = ("create", "setData", "delete")


def ctx_switches(pid):
    """Context switches (voluntary + involuntary) of every thread of a process so far: per write,
    about the thread hand-offs a write costs that process (each wakes a sleeping thread)."""
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    n += int(line.split()[1])
        except OSError:
            pass
    return n


def load(samsa, member, requests):
    out = subprocess.run([samsa, "perf", "keeper", "--target", f"{HOST}:{member.port}", "--sessions", "1", "--inflight", "1",
                          "--requests", str(requests), "--size", "100", "--ops", ",".join(PHASES)],
                         capture_output=True, text=True, timeout=900)
    res = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+) ops/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms\s+errors (\d+)", line)
        if m:
            res[m.group(1)] = (int(m.group(2)), float(m.group(3)), float(m.group(4)), int(m.group(5)))
    if out.returncode != 0:
        print(f"  load exited {out.returncode}: {out.stderr.strip()[:300]}", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samsa", required=True, help="the Keeper build measured (and the load generator)")
    ap.add_argument("--samsa-before", help="a second Keeper build, measured beside it")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--zk-heap-mb", type=int, default=1000)
    a = ap.parse_args()
    samsa = os.path.abspath(a.samsa)
    root = tempfile.mkdtemp(prefix="samsa-seq-writes-")
    builds = [("keeper", samsa)] + ([("keeper-before", os.path.abspath(a.samsa_before))] if a.samsa_before else [])
    ens = []
    for name, binary in builds:
        d = os.path.join(root, name)
        os.makedirs(d)
        e = Ens("keeper", d, binary, a.zk_heap_mb)
        e.name = name
        ens.append(e)
    e = Ens("apache", root, samsa, a.zk_heap_mb)
    e.name = "apache"
    ens.append(e)
    results = {(e.name, t): [] for e in ens for t in ("follower", "leader")}
    switches = {(e.name, t): [] for e in ens for t in ("follower", "leader")}
    loads = [loadavg()]
    rc = 0
    try:
        start_and_warm(ens, samsa, 1000, "create,setData,delete")
        for r in range(a.rounds):
            order = ens[r % len(ens):] + ens[:r % len(ens)]
            for target in ("follower", "leader"):
                for e in order:
                    m = e.follower() if target == "follower" else e.leader()
                    lead = e.leader()
                    c0 = ctx_switches(lead.proc.pid)
                    results[(e.name, target)].append(load(samsa, m, a.requests))
                    switches[(e.name, target)].append((ctx_switches(lead.proc.pid) - c0) / (a.requests * len(PHASES)))
                    loads.append(loadavg())
                    print(f"round {r + 1}: {e.name} through its {target} done (load {loads[-1]})", flush=True)
    except Exception as ex:
        print(f"FAIL {type(ex).__name__}: {ex}", flush=True)
        rc = 1
    finally:
        stop_all(ens)
    print()
    print(f"3-member ensembles, one session, one write at a time (create, setData, delete; {a.requests} each), "
          f"100-byte values, median of {a.rounds} rounds; {os.cpu_count()} cores shared, load average {min(loads)}–{max(loads)}")
    print()
    print("| ensemble | through | " + " | ".join(f"{p} ops/s | {p} p50 / p99 ms" for p in PHASES) + " | ×Apache (create, setData, delete) | leader's context switches per write |")
    print("|---|---|" + "---|---|" * len(PHASES) + "---|---|")
    errs = 0

    def med(rs, phase, i):
        xs = [x[phase][i] for x in rs if phase in x]
        return statistics.median(xs) if xs else 0

    for target in ("follower", "leader"):
        for e in ens:
            rs = results[(e.name, target)]
            zs = results[("apache", target)]
            errs += sum(x[p][3] for x in rs for p in x)
            cells = [f"{med(rs, p, 0):.0f} | {med(rs, p, 1):.2f} / {med(rs, p, 2):.2f}" for p in PHASES]
            ratios = ", ".join(f"{med(rs, p, 0) / med(zs, p, 0):.2f}" if med(zs, p, 0) else "-" for p in PHASES)
            sw = statistics.median(switches[(e.name, target)]) if switches[(e.name, target)] else 0
            print(f"| {e.name} | {target} | " + " | ".join(cells) + f" | {ratios} | {sw:.1f} |")
    return finish(errs, rc, root, False)


if __name__ == "__main__":
    sys.exit(main())
