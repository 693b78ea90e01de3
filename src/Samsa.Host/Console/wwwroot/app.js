// Samsa console: one page, hash routes (#/topics, #/topic/NAME, #/messages?topic=..., ...), data from /api.
// Plain DOM, no dependencies; every value from the cluster is set as text, never as HTML.
"use strict";

const main = document.getElementById("main");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(headers, rows, attrs) {
  return el("table", attrs,
    el("thead", null, el("tr", null, headers.map(h => el("th", { class: h.num ? "num" : null }, h.label || h)))),
    el("tbody", null, rows.map(r => el("tr", null, r.map((c, i) => el("td", { class: headers[i] && headers[i].num ? "num" : null }, c === null || c === undefined ? "–" : c))))));
}

function kv(obj) {
  return el("table", { class: "kv" }, el("tbody", null, Object.entries(obj).map(([k, v]) => el("tr", null, el("td", null, k), el("td", null, v === null || v === undefined ? "–" : v)))));
}

async function api(path, options) {
  const response = await fetch("/api/" + path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function errorBox(e) { return el("p", { class: "error", "data-testid": "error" }, String(e.message || e)); }
function time(ms) { return ms === null || ms === undefined || ms < 0 ? "–" : new Date(ms).toISOString(); }
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
}
function link(href, text) { return el("a", { href }, text); }
function q(params) { return new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString(); }

function render(title, ...content) {
  main.replaceChildren(el("h1", null, title), ...content);
}

// ---------------------------------------------------------------- pages

const pages = {
  async cluster() {
    const c = await api("cluster");
    const parts = [
      kv({ "Cluster id": c.clusterId, "Controller": c.controller, "Bootstrap": c.bootstrap }),
      el("h2", null, "Brokers"),
      table(["Id", "Host", "Port", "Rack", "Controller"], c.brokers.map(b => [b.id, b.host, b.port, b.rack, b.controller ? "yes" : ""]), { "data-testid": "brokers" }),
    ];
    if (c.keeper) {
      parts.push(el("h2", null, "Keeper"), kv({ "Connect": c.keeper.connect }),
        table(["Server", "Mode", "Version", "Znodes", "Note"], c.keeper.servers.map(s => [s.address, s.mode, s.version, s.znodes, s.error]), { "data-testid": "keepers" }));
    }
    render("Cluster", ...parts);
  },

  async topics() {
    const t = await api("topics");
    render("Topics", table(
      ["Topic", { label: "Partitions", num: true }, { label: "Replication", num: true }, { label: "Under-replicated", num: true }, { label: "Offline", num: true }, { label: "Size", num: true }, ""],
      t.topics.map(x => [link("#/topic/" + encodeURIComponent(x.name), x.name + (x.internal ? " (internal)" : "")), x.partitions, x.replicationFactor,
        x.underReplicated, x.offline, bytes(x.size), link("#/messages?" + q({ topic: x.name }), "messages")]),
      { "data-testid": "topics" }));
  },

  async topic(name) {
    const t = await api("topic?" + q({ name }));
    render("Topic " + t.name,
      kv({ "Topic id": t.topicId, "Internal": t.internal ? "yes" : "no" }),
      el("p", null, link("#/messages?" + q({ topic: t.name }), "Browse messages"), " · ", link("#/producers?" + q({ topic: t.name }), "Producers")),
      el("h2", null, "Partitions"),
      table([{ label: "Partition", num: true }, { label: "Leader", num: true }, "Replicas", "ISR", "Offline", { label: "Earliest", num: true }, { label: "Latest", num: true }, { label: "Size", num: true }],
        t.partitions.map(p => [link("#/messages?" + q({ topic: t.name, partition: p.partition }), String(p.partition)), p.leader, p.replicas.join(", "), p.isr.join(", "),
          p.offline.join(", "), p.earliest, p.latest, bytes(p.size)]), { "data-testid": "partitions" }),
      el("h2", null, "Configs"),
      table(["Name", "Value", "Source"], t.configs.map(c => [c.name, c.sensitive ? "(sensitive)" : c.value, c.source]), { "data-testid": "configs" }));
  },

  async messages(_, params) {
    const topics = (await api("topics")).topics.map(t => t.name);
    const topic = params.get("topic") || topics.find(t => !t.startsWith("__")) || topics[0] || "";
    const field = (name, value, attrs) => el("label", null, name, el("input", Object.assign({ name, value: value === null ? "" : value }, attrs || {})));
    const browse = el("form", { id: "browse", onsubmit: e => {
      e.preventDefault();
      const f = new FormData(e.target);
      let ts = f.get("time") ? Date.parse(f.get("time")) : "";
      location.hash = "#/messages?" + q({ topic: f.get("topic"), partition: f.get("partition"), offset: f.get("offset"), timestamp: isNaN(ts) ? "" : ts, limit: f.get("limit") });
    } },
      el("label", null, "Topic", el("select", { name: "topic" }, topics.map(t => el("option", { value: t, selected: t === topic }, t)))),
      field("partition", params.get("partition") || "0", { size: 4 }),
      field("offset", params.get("offset") || "", { size: 10, placeholder: "last N" }),
      field("time", params.get("timestamp") ? new Date(Number(params.get("timestamp"))).toISOString() : "", { size: 24, placeholder: "or time (ISO 8601)" }),
      field("limit", params.get("limit") || "50", { size: 4 }),
      el("button", { type: "submit" }, "Show"));
    const status = el("p", { id: "produce-status", class: "muted" });
    const produce = el("form", { id: "produce", onsubmit: async e => {
      e.preventDefault();
      const f = new FormData(e.target);
      const headers = String(f.get("headers") || "").split("\n").map(l => l.trim()).filter(Boolean).map(l => {
        const i = l.indexOf("=");
        return i < 0 ? { key: l, value: null } : { key: l.slice(0, i), value: l.slice(i + 1) };
      });
      try {
        const r = await api("produce", { method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ topic: f.get("topic"), partition: Number(f.get("partition") || 0), key: f.get("key") || null, value: f.get("value"), headers }) });
        status.className = "ok";
        status.textContent = `Produced to ${r.topic}-${r.partition} at offset ${r.offset}`;
        location.hash = "#/messages?" + q({ topic: r.topic, partition: r.partition, offset: r.offset, limit: params.get("limit") || "50" });
      } catch (err) { status.className = "error"; status.textContent = err.message; }
    } },
      el("label", null, "Topic", el("input", { name: "topic", value: topic })),
      field("partition", params.get("partition") || "0", { size: 4 }),
      field("key", "", { size: 14 }),
      el("label", null, "value", el("textarea", { name: "value", rows: 2, cols: 40 })),
      el("label", null, "headers (k=v per line)", el("textarea", { name: "headers", rows: 2, cols: 20 })),
      el("button", { type: "submit" }, "Produce"));
    const results = el("div", { id: "records" });
    render("Messages", browse, results, el("h2", null, "Produce a test record"), produce, status);
    if (!topic) { results.append(el("p", { class: "muted" }, "No topics yet.")); return; }
    try {
      const m = await api("messages?" + q({ topic, partition: params.get("partition") || 0, offset: params.get("offset"), timestamp: params.get("timestamp"), limit: params.get("limit") || 50 }));
      results.append(el("p", { class: "muted" }, `${m.topic}-${m.partition} (leader ${m.leader}): offsets ${m.earliest}..${m.latest}, showing ${m.records.length} from ${m.start}`),
        table([{ label: "Offset", num: true }, "Timestamp", "Key", "Value", "Headers"], m.records.map(r => [r.offset, time(r.timestamp), r.key,
          el("pre", null, r.json || (r.value === null ? "null" : r.value)),
          r.headers.map(h => el("div", null, `${h.key}=${h.value === null ? "null" : h.value}`))]), { "data-testid": "records" }));
    } catch (e) { results.append(errorBox(e)); }
  },

  async groups() {
    const g = await api("groups");
    render("Consumer groups", table(["Group", "Type", "Protocol", "State", { label: "Coordinator", num: true }],
      g.groups.map(x => [link("#/group/" + encodeURIComponent(x.groupId), x.groupId), x.type, x.protocolType, x.state, x.coordinator]), { "data-testid": "groups" }));
  },

  async group(id) {
    const g = await api("group?" + q({ id }));
    const share = g.type === "share";
    render("Group " + g.groupId,
      kv({ "Type": g.type || "classic/consumer", "State": g.state, "Assignor": g.assignor, "Coordinator": g.coordinator }),
      el("h2", null, "Members"),
      table(["Member", "Instance", "Client", "Host", "Assignment"], g.members.map(m => [m.memberId, m.instanceId, m.clientId, m.host,
        m.assignment.map(a => `${a.topic}-${a.partition}`).join(", ")]), { "data-testid": "members" }),
      el("h2", null, share ? "Share-partition start offsets" : "Offsets and lag"),
      share
        ? table(["Topic", { label: "Partition", num: true }, { label: "Start offset", num: true }, { label: "Lag", num: true }], g.offsets.map(o => [o.topic, o.partition, o.startOffset, o.lag]), { "data-testid": "offsets" })
        : table(["Topic", { label: "Partition", num: true }, { label: "Committed", num: true }, { label: "Log end", num: true }, { label: "Lag", num: true }, "Member", "Client"],
          g.offsets.map(o => [o.topic, o.partition, o.committed, o.logEnd, o.lag, o.memberId, o.clientId]), { "data-testid": "offsets" }));
  },

  async transactions() {
    const t = await api("transactions");
    render("Transactions",
      table(["Transactional id", "State", { label: "Producer id", num: true }, { label: "Epoch", num: true }, { label: "Timeout ms", num: true }, "Started", "Partitions", { label: "Coordinator", num: true }],
        t.transactions.map(x => [x.transactionalId, x.error ? `${x.state} (${x.error})` : x.state, x.producerId, x.producerEpoch, x.timeoutMs, time(x.startTimeMs), x.partitions.join(", "), x.coordinator]),
        { "data-testid": "transactions" }),
      t.errors.length ? el("p", { class: "warn" }, "Not listed: " + t.errors.join("; ")) : null,
      el("p", null, "Active producers per partition: ", link("#/producers", "Producers")));
  },

  async producers(_, params) {
    const topics = (await api("topics")).topics.map(t => t.name);
    const topic = params.get("topic") || topics.find(t => !t.startsWith("__")) || "";
    const form = el("form", { onsubmit: e => { e.preventDefault(); location.hash = "#/producers?" + q({ topic: new FormData(e.target).get("topic") }); } },
      el("label", null, "Topic", el("select", { name: "topic" }, topics.map(t => el("option", { value: t, selected: t === topic }, t)))),
      el("button", { type: "submit" }, "Describe producers"));
    const out = el("div");
    render("Producers", form, out);
    if (!topic) return;
    try {
      const p = await api("producers?" + q({ topic }));
      out.append(table([{ label: "Partition", num: true }, { label: "Producer id", num: true }, { label: "Epoch", num: true }, { label: "Last sequence", num: true }, "Last timestamp", { label: "Txn start offset", num: true }, "Error"],
        p.producers.map(x => [x.partition, x.producerId, x.producerEpoch, x.lastSequence, time(x.lastTimestamp), x.currentTxnStartOffset, x.error]), { "data-testid": "producers" }));
    } catch (e) { out.append(errorBox(e)); }
  },

  async znodes(_, params) {
    const path = params.get("path") || "/";
    const z = await api("znode?" + q({ path }));
    const segments = path.split("/").filter(Boolean);
    const crumbs = el("p", { class: "crumbs" }, link("#/znodes?" + q({ path: "/" }), "/"),
      segments.map((s, i) => [link("#/znodes?" + q({ path: "/" + segments.slice(0, i + 1).join("/") }), s), i < segments.length - 1 ? "/" : ""]));
    const child = c => (path === "/" ? "/" : path + "/") + c;
    const watches = el("div", { id: "watches" }, el("button", { type: "button", onclick: async () => {
      try {
        const w = await api("watches");
        watches.replaceChildren(...w.servers.map(s => el("div", { class: "card" }, el("strong", null, s.address),
          el("h2", null, "By session (wchc)"), s.wchc !== undefined ? el("pre", null, s.wchc || "(none)") : el("p", { class: "warn" }, s.wchcError),
          el("h2", null, "By path (wchp)"), s.wchp !== undefined ? el("pre", null, s.wchp || "(none)") : el("p", { class: "warn" }, s.wchpError))));
      } catch (e) { watches.replaceChildren(errorBox(e)); }
    } }, "Show watches (wchc / wchp)"));
    render("ZNodes", crumbs,
      el("div", { class: "tree" },
        el("div", { class: "card" }, el("strong", null, `Children (${z.children.length})`),
          el("ul", { "data-testid": "children" }, z.children.map(c => el("li", null, link("#/znodes?" + q({ path: child(c) }), c))))),
        el("div", null,
          el("div", { class: "card" }, el("strong", null, "Data"), el("pre", { "data-testid": "data" }, z.json || (z.data === null ? "(null)" : z.data))),
          el("div", { class: "card" }, el("strong", null, "Stat"), kv(Object.fromEntries(Object.entries(z.stat).map(([k, v]) => [k, k.endsWith("time") ? `${v} (${time(v)})` : v])))),
          el("div", { class: "card" }, el("strong", null, "ACL"), table(["Scheme", "Id", "Perms"], z.acl.map(a => [a.scheme, a.id, a.perms]))))),
      el("h2", null, "Watches"), watches);
  },

  async tap(_, params) {
    const t = await api("tap?" + q({ limit: params.get("limit") || 50 }));
    const parts = [];
    if (t.brokers.length === 0) parts.push(el("p", { class: "muted", "data-testid": "tap-unavailable" }, "tap not available: the console knows no broker metrics endpoints"));
    for (const b of t.brokers) {
      if (b.error) { parts.push(el("p", { class: "muted", "data-testid": "tap-unavailable" }, `${b.url}: ${b.error}`)); continue; }
      const tap = b.tap || {};
      parts.push(el("h2", null, `Broker ${tap.broker ?? "?"}`));
      for (const c of tap.connections || []) {
        parts.push(el("div", { class: "card" },
          el("p", null, el("strong", null, `Connection ${c.id}`), ` ${c.clientId || ""} ${c.software || ""} from ${c.remote || "?"} ${c.principal || ""}`),
          table(["Time", "API", { label: "Version", num: true }, { label: "Correlation", num: true }, { label: "Latency ms", num: true }, "Request", "Response"],
            (c.entries || []).map(e => [time(e.ts), e.api, e.version, e.correlationId, e.latencyMs,
              // folded: a connection's 50 entries unfolded make a page tens of thousands of pixels tall
              el("details", null, el("summary", null, "request"), el("pre", null, JSON.stringify(e.request, null, 1))),
              el("details", null, el("summary", null, "response"), el("pre", null, JSON.stringify(e.response, null, 1)))]))));
      }
    }
    render("Tap: recent requests per connection", ...parts);
  },
};

async function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "cluster";
  const [pathPart, query] = hash.split("?");
  const [page, ...rest] = pathPart.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const params = new URLSearchParams(query || "");
  const navPage = { topic: "topics", group: "groups", producers: "transactions" }[page] || page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === navPage);
  const handler = pages[page];
  if (!handler) { render("Not found", el("p", null, "No page " + page)); return; }
  main.setAttribute("aria-busy", "true");
  try { await handler(arg, params); }
  catch (e) { render(page.charAt(0).toUpperCase() + page.slice(1), errorBox(e)); }
  finally { main.removeAttribute("aria-busy"); main.dataset.loaded = hash; }
}

window.addEventListener("hashchange", route);
route();
