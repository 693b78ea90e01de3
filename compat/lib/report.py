"""Turns compat/results/results.tsv into matrix.md, matrix.html and junit.xml, runs the
ZooKeeper differential comparison, and returns the suite's exit status.

results.tsv columns: target client kind scenario status seconds log transcript reason
target: samsa (one `samsa dev` broker), cluster (three Samsa brokers, Kafka clients only) or upstream.
status: PASS FAIL SKIP (runner said so), NOUP (no upstream server to run against) or HARNESS
(cluster target: the harness's check that the bootstrap broker led and coordinated nothing
the scenario used did not hold, so the cell proves nothing about a cluster).
"""
import argparse
import difflib
import html
import os
import re
import sys
from collections import OrderedDict
from xml.sax.saxutils import escape, quoteattr

TARGETS = ["samsa", "cluster", "upstream"]
TITLE = {"samsa": "samsa", "cluster": "samsa cluster", "upstream": "upstream"}
FAILING = ("FAIL", "DIFF", "HARNESS")

# What differs between two correct servers and so must not count as a difference:
# zxids, session ids, wall-clock times, ports, latencies.
NORMALISE = [
    (re.compile(r"\b([cmp]Zxid|[cmp]zxid|zxid|Zxid)(\s*[=:]\s*)(0x)?[0-9a-fA-F]+"), r"\1\2<zxid>"),
    (re.compile(r"\b(ephemeralOwner\s*=\s*)(0x)?[0-9a-fA-F]*[1-9a-fA-F][0-9a-fA-F]*"), r"\1<session>"),
    (re.compile(r"\b(session ?id\s*[=:]?\s*)(0x)?[0-9a-fA-F]+", re.I), r"\1<session>"),
    (re.compile(r"0x[0-9a-fA-F]{8,}"), "<hex>"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d( \w+)? \d{4}"), "<date>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost)([:/])\d{2,5}\b"), r"\1\2<port>"),
    (re.compile(r"\b([cm]time\s*[=:]\s*)\d+"), r"\1<time>"),
]
DROP = [re.compile(r"^\s*time = -?\d+ msec\s*$")]


def normalise(text):
    out = []
    for line in text.splitlines():
        if any(d.match(line) for d in DROP):
            continue
        for rx, rep in NORMALISE:
            line = rx.sub(rep, line)
        out.append(line.rstrip())
    return out


class Cell:
    def __init__(self, status, seconds="", log="", transcript="", reason=""):
        self.status = status
        self.seconds = seconds
        self.log = log
        self.transcript = transcript
        self.reason = reason
        self.diff = None  # list of unified-diff lines against upstream, if any


def load(results):
    rows = []
    with open(os.path.join(results, "results.tsv"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 9:
                parts += [""] * (9 - len(parts))
            rows.append(parts[:9])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--target", default="both")
    ap.add_argument("--elapsed", default="?")
    ap.add_argument("--samsa-kafka", default="")
    ap.add_argument("--samsa-zk", default="")
    ap.add_argument("--cluster-kafka", default="")
    ap.add_argument("--upstream-kafka", default="")
    ap.add_argument("--upstream-zk", default="")
    ap.add_argument("--clients", default="")
    a = ap.parse_args()
    R = a.results
    rows = load(R)

    clients = a.clients.split()
    kind_of = {}
    scenarios = {"kafka": OrderedDict(), "zk": OrderedDict()}
    cells = {}  # (client, scenario, target) -> Cell
    for target, client, kind, scen, status, secs, log, tr, reason in rows:
        kind_of[client] = kind
        scenarios[kind][scen] = True
        cells[(client, scen, target)] = Cell(status, secs, log, tr, reason)
    wanted = TARGETS if a.target in ("both", "all") else a.target.split(",")
    targets = [t for t in TARGETS if t in wanted and (t != "cluster" or any(k[2] == "cluster" for k in cells))]
    # Scenario order: the catalogue's (compat/scenarios.md), then anything it lacks.
    catalogue = []
    md_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios.md")
    if os.path.exists(md_path):
        with open(md_path, encoding="utf-8") as f:
            catalogue = re.findall(r"^\| `([a-z0-9-]+)` \|", f.read(), re.M)
    for kind in scenarios:
        first_seen = {n: i for i, n in enumerate(scenarios[kind])}
        names = sorted(first_seen, key=lambda n: (catalogue.index(n) if n in catalogue else len(catalogue), first_seen[n]))
        scenarios[kind] = OrderedDict((n, True) for n in names)

    # ZooKeeper differential mode: the same scenario's transcript from both targets,
    # normalised, must be identical.
    diffs = 0
    for (client, scen, target), c in list(cells.items()):
        if target != "samsa" or kind_of.get(client) != "zk":
            continue
        u = cells.get((client, scen, "upstream"))
        if not u or not u.transcript or not c.transcript or u.status != "PASS":
            continue
        with open(os.path.join(R, u.transcript), encoding="utf-8", errors="replace") as f:
            ut = normalise(f.read())
        with open(os.path.join(R, c.transcript), encoding="utf-8", errors="replace") as f:
            st = normalise(f.read())
        if ut != st:
            c.diff = [l if len(l) <= 400 else l[:400] + " …" for l in
                      difflib.unified_diff(ut, st, "upstream", "samsa", lineterm="", n=1)]
            with open(os.path.join(R, c.log.replace(".log", ".diff")), "w", encoding="utf-8") as f:
                f.write("\n".join(c.diff) + "\n")
            if c.status == "PASS":
                c.status = "DIFF"
                c.reason = "passes its checks but its normalised transcript differs from upstream's"
                diffs += 1

    # The verdict: Samsa must pass what upstream passes, and everything that has no upstream.
    regressions = []
    upstream_failures = []
    for (client, scen, target), c in cells.items():
        if target in ("samsa", "cluster") and c.status in FAILING:
            u = cells.get((client, scen, "upstream"))
            if u is None or u.status in ("PASS", "NOUP"):
                regressions.append((client, scen, c))
        if target == "upstream" and c.status == "FAIL":
            upstream_failures.append((client, scen, c))

    counts = {}
    for (client, scen, target), c in cells.items():
        counts.setdefault(target, {}).setdefault(c.status, 0)
        counts[target][c.status] += 1

    servers = {
        "samsa": {"kafka": a.samsa_kafka, "zk": a.samsa_zk},
        "cluster": {"kafka": a.cluster_kafka, "zk": ""},
        "upstream": {"kafka": a.upstream_kafka, "zk": a.upstream_zk},
    }
    write_md(R, a, clients, kind_of, scenarios, cells, targets, regressions, upstream_failures, counts, servers)
    write_html(R, a, clients, kind_of, scenarios, cells, targets, regressions, counts, servers)
    write_junit(R, clients, kind_of, scenarios, cells, targets)

    summary = ", ".join(f"{t}: " + " ".join(f"{k}={v}" for k, v in sorted(counts.get(t, {}).items())) for t in targets)
    print(f"compat: {summary}; samsa regressions: {len(regressions)}; upstream failures: {len(upstream_failures)}", file=sys.stderr)
    if targets == ["upstream"]:
        return 1 if upstream_failures else 0
    return 1 if regressions else 0


SYMBOL = {"PASS": "✅", "FAIL": "❌", "DIFF": "⚠️", "SKIP": "⏭", "NOUP": "➖", "HARNESS": "🚫"}
LABEL = {"PASS": "pass", "FAIL": "FAIL", "DIFF": "diff", "SKIP": "skip", "NOUP": "no upstream", "HARNESS": "harness"}


def client_scenarios(kind, client, scenarios, cells, targets):
    return [s for s in scenarios[kind] if any((client, s, t) in cells for t in targets)]


def write_md(R, a, clients, kind_of, scenarios, cells, targets, regressions, upstream_failures, counts, servers):
    out = ["# Samsa compatibility matrix", ""]
    out.append(f"Run took {a.elapsed} s. Targets: " + ", ".join(
        f"**{TITLE[t]}** (Kafka: {servers[t]['kafka'] or 'not needed'}; ZooKeeper: {servers[t]['zk'] or 'not needed'})" for t in targets))
    out.append("")
    for t in targets:
        out.append(f"- {TITLE[t]}: " + ", ".join(f"{LABEL.get(k, k)} {v}" for k, v in sorted(counts.get(t, {}).items())))
    out.append(f"- Samsa regressions (fails where upstream passes or there is no upstream): **{len(regressions)}**")
    out.append("")
    out.append("Legend: ✅ pass · ❌ fail · ⚠️ passes but differs from upstream (ZooKeeper differential) · "
               "🚫 harness failure (cluster: the bootstrap broker led or coordinated something the scenario used) · "
               "➖ no upstream to run against · ⏭ skipped by the client · blank: the client cannot express it")
    if "cluster" in targets:
        out += ["", "The **samsa cluster** column: a Samsa Keeper and 3 brokers (separate processes), RF=3, "
                "min.insync.replicas=2, each client bootstrapped at a broker that, as checked after every "
                "scenario, leads none of its partitions and coordinates none of its groups and transactions."]
    for kind, title in (("kafka", "Kafka"), ("zk", "ZooKeeper")):
        ks = [c for c in clients if kind_of.get(c) == kind]
        if not ks:
            continue
        out += ["", f"## {title}", ""]
        kt = [t for t in targets if kind == "kafka" or t != "cluster"]
        head = ["scenario"] + [f"{c} / {TITLE[t]}" for c in ks for t in kt]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for s in scenarios[kind]:
            row = [s]
            for c in ks:
                for t in kt:
                    cell = cells.get((c, s, t))
                    if cell is None:
                        row.append("")
                    elif cell.log:
                        row.append(f"[{SYMBOL.get(cell.status, cell.status)}]({cell.log})")
                    else:
                        row.append(SYMBOL.get(cell.status, cell.status))
            out.append("| " + " | ".join(row) + " |")
        out += ["", "Scenarios per client: " + ", ".join(
            f"{c} {len(client_scenarios(kind, c, scenarios, cells, targets))}" for c in ks)]
    failing = [(k, c) for k, c in cells.items() if c.status in FAILING]
    if failing:
        out += ["", "## Failures and differences", "", "| target | client | scenario | status | reason |", "|---|---|---|---|---|"]
        for (client, s, t), c in sorted(failing, key=lambda x: (x[0][2], x[0][0], x[0][1])):
            out.append(f"| {t} | {client} | {s} | {c.status} | {c.reason.replace('|', '/')[:200]} |")
    diffs = [(k, c) for k, c in cells.items() if c.diff]
    if diffs:
        out += ["", "## ZooKeeper differential: upstream vs Samsa (normalised)", ""]
        for (client, s, t), c in diffs:
            out += [f"### {client} / {s}", "", "```diff"] + c.diff[:80] + ["```", ""]
    with open(os.path.join(R, "matrix.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:center;vertical-align:top}
th.s,td.s{text-align:left;white-space:nowrap}
th.rot{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
td a{color:inherit;text-decoration:none;display:block}
.PASS{background:#b7e4b0}.FAIL{background:#f4a6a6}.DIFF{background:#f7d774}
.HARNESS{background:#c9a0dc}.SKIP{background:#ddd}.NOUP{background:#e8e8f4;color:#556}.NA{background:#fafafa}
details pre{text-align:left;font-size:11px;max-width:60em;overflow:auto;background:#fff;border:1px solid #ccc;padding:4px}
.legend span{padding:2px 8px;margin-right:6px;border:1px solid #ccc}
"""


def write_html(R, a, clients, kind_of, scenarios, cells, targets, regressions, counts, servers):
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>Samsa compatibility matrix</title>",
         f"<style>{CSS}</style></head><body><h1>Samsa compatibility matrix</h1>"]
    h.append(f"<p>Run took {html.escape(str(a.elapsed))} s. " + "; ".join(
        f"<b>{TITLE[t]}</b>: Kafka {html.escape(servers[t]['kafka'] or '-')}, ZooKeeper {html.escape(servers[t]['zk'] or '-')}"
        for t in targets) + "</p><ul>")
    for t in targets:
        h.append(f"<li>{TITLE[t]}: " + ", ".join(f"{LABEL.get(k, k)} {v}" for k, v in sorted(counts.get(t, {}).items())) + "</li>")
    h.append(f"<li>Samsa regressions: <b>{len(regressions)}</b></li></ul>")
    h.append("<p class='legend'><span class='PASS'>pass</span><span class='FAIL'>fail</span>"
             "<span class='DIFF'>differs from upstream</span><span class='HARNESS'>harness failure (cluster claim broken)</span>"
             "<span class='NOUP'>no upstream</span>"
             "<span class='SKIP'>skipped</span><span class='NA'>not expressible</span> — each cell links to its log.</p>")
    for kind, title in (("kafka", "Kafka"), ("zk", "ZooKeeper")):
        ks = [c for c in clients if kind_of.get(c) == kind]
        if not ks:
            continue
        kt = [t for t in targets if kind == "kafka" or t != "cluster"]
        h.append(f"<h2>{title}</h2><table><tr><th class='s' rowspan='2'>scenario</th>")
        for c in ks:
            h.append(f"<th colspan='{len(kt)}'>{html.escape(c)}</th>")
        h.append("</tr><tr>")
        for c in ks:
            for t in kt:
                h.append(f"<th>{TITLE[t]}</th>")
        h.append("</tr>")
        for s in scenarios[kind]:
            h.append(f"<tr><td class='s'>{html.escape(s)}</td>")
            for c in ks:
                for t in kt:
                    cell = cells.get((c, s, t))
                    if cell is None:
                        h.append("<td class='NA'></td>")
                        continue
                    title_ = html.escape(f"{c} / {t} / {s}: {cell.status} {cell.reason}", quote=True)
                    label = LABEL.get(cell.status, cell.status)
                    inner = f"<a href='{html.escape(cell.log)}' title='{title_}'>{label}</a>" if cell.log else \
                        f"<span title='{title_}'>{label}</span>"
                    if cell.diff:
                        inner += "<details><summary>diff</summary><pre>" + html.escape("\n".join(cell.diff[:120])) + "</pre></details>"
                    h.append(f"<td class='{cell.status}'>{inner}</td>")
            h.append("</tr>")
        h.append("</table>")
    failing = [(k, c) for k, c in cells.items() if c.status in FAILING]
    if failing:
        h.append("<h2>Failures and differences</h2><table><tr><th>target</th><th>client</th><th>scenario</th><th>status</th><th class='s'>reason</th></tr>")
        for (client, s, t), c in sorted(failing, key=lambda x: (x[0][2], x[0][0], x[0][1])):
            link = f"<a href='{html.escape(c.log)}'>{html.escape(s)}</a>" if c.log else html.escape(s)
            h.append(f"<tr><td>{t}</td><td>{html.escape(client)}</td><td class='s'>{link}</td><td class='{c.status}'>{c.status}</td>"
                     f"<td class='s'>{html.escape(c.reason[:300])}</td></tr>")
        h.append("</table>")
    h.append("</body></html>")
    with open(os.path.join(R, "matrix.html"), "w", encoding="utf-8") as f:
        f.write("\n".join(h))


def write_junit(R, clients, kind_of, scenarios, cells, targets):
    suites = []
    total = fails = skips = 0
    for c in clients:
        kind = kind_of.get(c)
        if kind is None:
            continue
        for t in targets:
            cases = []
            nf = ns = 0
            for s in scenarios[kind]:
                cell = cells.get((c, s, t))
                if cell is None:
                    continue
                body = ""
                if cell.status in FAILING:
                    nf += 1
                    detail = cell.reason + ("\n" + "\n".join(cell.diff) if cell.diff else "") + (f"\nlog: {cell.log}" if cell.log else "")
                    body = f"<failure message={quoteattr(cell.reason[:500])}>{escape(detail)}</failure>"
                elif cell.status in ("SKIP", "NOUP"):
                    ns += 1
                    body = f"<skipped message={quoteattr(cell.reason[:500] or LABEL[cell.status])}/>"
                secs = cell.seconds or "0"
                cases.append(f"    <testcase classname={quoteattr(f'compat.{kind}.{c}.{t}')} name={quoteattr(s)} time={quoteattr(secs)}>{body}</testcase>")
            if not cases:
                continue
            total += len(cases)
            fails += nf
            skips += ns
            suites.append(f"  <testsuite name={quoteattr(f'{c} vs {t}')} tests='{len(cases)}' failures='{nf}' errors='0' skipped='{ns}'>\n"
                          + "\n".join(cases) + "\n  </testsuite>")
    with open(os.path.join(R, "junit.xml"), "w", encoding="utf-8") as f:
        f.write(f"<?xml version='1.0' encoding='UTF-8'?>\n<testsuites name='samsa-compat' tests='{total}' failures='{fails}' skipped='{skips}'>\n"
                + "\n".join(suites) + "\n</testsuites>\n")


if __name__ == "__main__":
    sys.exit(main())
