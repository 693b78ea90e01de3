// Drives the Samsa web console in a real headless Chromium (Debian's chromium, playwright-core):
// starts `samsa dev --brokers 3`, prepares a topic, a record produced by kcat (or, without kcat,
// by the console's JSON API) and a consumer group with committed offsets, then opens every page
// and checks what a user would: no console errors or failed requests, the records in the message
// browser, the produce form's record appearing, the group's lag equal to what
// `samsa kafka-consumer-groups --describe` (OffsetFetch + ListOffsets) reports, /brokers/ids in the
// znode tree. Screenshots go to tests/.results/console/. Prints "console: N passed, M failed".
//
//   node tests/console/console-test.mjs [--samsa PATH] [--chromium PATH]
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const arg = (name, fallback) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : fallback; };
const samsa = arg("--samsa", path.join(root, "src/Samsa.Host/bin/Release/net10.0/samsa"));
const chromiumPath = arg("--chromium", ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync));
const shots = path.join(root, "tests/.results/console");
mkdirSync(shots, { recursive: true });

let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`PASS ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail ? ": " + detail : ""}`); }
}

function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: 90000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Starts `samsa dev`; resolves once it printed the console's URL. */
function startDev(data) {
  const child = spawn(samsa, ["dev", "--brokers", "3", "--data", data, "--kafka-port", "0", "--zk-port", "0", "--console-port", "0"],
    { stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  let stderr = "";
  child.stderr.on("data", d => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("samsa dev printed no console line in 60 s\n" + stderr)), 60000);
    let buffered = "";
    child.stdout.on("data", d => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl); buffered = buffered.slice(nl + 1);
        lines.push(line);
        const m = line.match(/^console on (http:\/\/\S+)/);
        if (m) { clearTimeout(timer); resolve({ child, url: m[1], lines }); }
      }
    });
    child.on("exit", code => { clearTimeout(timer); reject(new Error(`samsa dev exited ${code}\n${stderr}`)); });
  });
}

async function api(base, p, options) {
  const r = await fetch(new URL("api/" + p, base), options);
  return { status: r.status, body: await r.json() };
}

/** kafka-consumer-groups --describe as a table: [{TOPIC, PARTITION, CURRENT-OFFSET, LOG-END-OFFSET, LAG}]. */
function describeGroup(bootstrap, group) {
  const out = run(samsa, ["kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group]);
  const lines = out.split("\n").filter(l => l.trim());
  const h = lines.findIndex(l => l.startsWith("GROUP "));
  const header = lines[h].split(/\s+/);
  return lines.slice(h + 1).filter(l => !l.startsWith("Consumer group")).map(l => Object.fromEntries(header.map((k, i) => [k, l.split(/\s+/)[i]])));
}

const data = mkdtempSync(path.join(tmpdir(), "samsa-console-"));
let dev, browser;
try {
  dev = await startDev(data);
  const base = dev.url;
  const brokers = dev.lines.filter(l => l.startsWith("kafka listening on ")).map(l => l.slice("kafka listening on ".length));
  check("samsa dev prints three brokers and the console", brokers.length === 3 && base.startsWith("http://"), dev.lines.join(" | "));
  const bootstrap = brokers[1];   // not the first broker: the console and the tools find the rest themselves
  const topic = "console-test", group = "console-group";

  run(samsa, ["kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "3"]);
  // A record from outside the console: kcat when installed (as CI has), else the console's JSON API.
  let outsideValue = "from-kcat-" + Date.now();
  const kcat = spawnSync("kcat", ["-V"], { encoding: "utf8" }).status === 0;
  for (let attempt = 0; ; attempt++) {
    try {
      if (kcat) run("kcat", ["-P", "-b", bootstrap, "-t", topic, "-p", "0", "-k", "outside-key", "-H", "origin=kcat"], outsideValue + "\n");
      else {
        outsideValue = "from-api-" + Date.now();
        const r = await api(base, "produce", { method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ topic, partition: 0, key: "outside-key", value: outsideValue, headers: [{ key: "origin", value: "api" }] }) });
        if (r.status !== 200) throw new Error(JSON.stringify(r.body));
      }
      break;
    } catch (e) { if (attempt >= 20) throw e; await new Promise(r => setTimeout(r, 500)); }
  }
  for (let i = 0; i < 4; i++)
    await api(base, "produce", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic, partition: 1, value: "filler-" + i }) });
  // A group with committed offsets: 0 on partition 0, 1 on partition 1 (lag 2 and 3 once the form adds a record to partition 0).
  run(samsa, ["kafka-consumer-groups", "--bootstrap-server", bootstrap, "--group", group, "--topic", `${topic}:0`, "--reset-offsets", "--to-offset", "0", "--execute"]);
  run(samsa, ["kafka-consumer-groups", "--bootstrap-server", bootstrap, "--group", group, "--topic", `${topic}:1`, "--reset-offsets", "--to-offset", "1", "--execute"]);

  // Bad input is a 4xx JSON error, not a crash.
  const bad = await Promise.all([
    api(base, `messages?topic=${topic}&offset=999999`), api(base, "messages?topic=no-such-topic"), api(base, `messages?topic=${topic}&limit=1000000`),
    api(base, "znode?path=no-slash"), api(base, "group?id="),
  ]);
  check("bad API input answers 4xx JSON errors", bad.every(r => r.status >= 400 && r.status < 500 && typeof r.body.error === "string"),
    bad.map(r => r.status).join(","));

  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on("console", m => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", e => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", r => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", r => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });

  let n = 0;
  async function open(hash, shot) {
    problems.length = 0;
    n++;
    // A new query string reloads the document, so every page starts from a fresh load.
    await page.goto(`${base}?load=${n}${hash}`);
    await page.waitForFunction(h => document.getElementById("main").dataset.loaded === h, hash.replace(/^#\/?/, ""), { timeout: 30000 });
    await page.screenshot({ path: path.join(shots, `${shot}.png`), fullPage: true });
    const error = await page.locator("[data-testid=error]").allTextContents();
    check(`page ${hash} loads without errors`, problems.length === 0 && error.length === 0, [...problems, ...error].join("; "));
  }

  await open("#/cluster", "cluster");
  check("cluster page lists three brokers", (await page.locator("[data-testid=brokers] tbody tr").count()) === 3);
  check("cluster page shows the Keeper's mode", (await page.locator("[data-testid=keepers]").innerText()).includes("standalone"));

  await open("#/topics", "topics");
  check("topics page lists the topic", (await page.locator("[data-testid=topics]").innerText()).includes(topic));

  await open(`#/topic/${topic}`, "topic");
  check("topic page shows three partitions with three replicas in sync", await page.locator("[data-testid=partitions] tbody tr").evaluateAll(rows =>
    rows.length === 3 && rows.every(r => r.cells[3].textContent.split(",").length === 3)));

  await open(`#/messages?topic=${topic}&partition=0`, "messages-outside");
  const outsideRows = await page.locator("[data-testid=records]").innerText();
  check("the record produced outside the console is in the message browser", outsideRows.includes(outsideValue) && outsideRows.includes("outside-key")
    && outsideRows.includes(kcat ? "origin=kcat" : "origin=api"), outsideRows);

  // The produce form: a JSON value with a header; the page then shows it, pretty-printed.
  problems.length = 0;
  await page.fill("#produce input[name=key]", "form-key");
  await page.fill("#produce textarea[name=value]", '{"hello":"console","n":42}');
  await page.fill("#produce textarea[name=headers]", "source=form");
  await page.click("#produce button[type=submit]");
  await page.waitForFunction(() => /Produced to/.test(document.getElementById("produce-status")?.textContent || "")
    && document.querySelector("[data-testid=records]"), null, { timeout: 30000 })
    .catch(async e => { throw new Error(`${e.message}; produce status: ${await page.locator("#produce-status").textContent().catch(() => "?")}; problems: ${problems.join("; ")}`); });
  await page.waitForFunction(() => (document.querySelector("[data-testid=records]")?.innerText || "").includes("form-key"), null, { timeout: 30000 });
  await page.screenshot({ path: path.join(shots, "messages-produced.png"), fullPage: true });
  const produced = await page.locator("[data-testid=records]").innerText();
  check("a record from the produce form appears, its JSON value pretty-printed", produced.includes("form-key") && produced.includes('"hello": "console"')
    && produced.includes("source=form") && problems.length === 0, produced + problems.join("; "));
  const viaApi = await api(base, `messages?topic=${topic}&partition=0&offset=0`);
  check("the message API returns both records of partition 0", viaApi.body.records?.length === 2 && viaApi.body.records[1].key === "form-key", JSON.stringify(viaApi.body));

  // Seek by time: from a timestamp after everything produced, nothing; from 0, the first record.
  await open(`#/messages?topic=${topic}&partition=0&timestamp=0&limit=1`, "messages-seek");
  check("seek by timestamp 0 shows the first record", (await page.locator("[data-testid=records] tbody tr").count()) === 1
    && (await page.locator("[data-testid=records]").innerText()).includes(outsideValue));

  await open("#/groups", "groups");
  check("groups page lists the group", (await page.locator("[data-testid=groups]").innerText()).includes(group));

  await open(`#/group/${group}`, "group");
  const shown = await page.locator("[data-testid=offsets] tbody tr").evaluateAll(rows => rows.map(r => [...r.cells].map(c => c.textContent)));
  const expected = describeGroup(bootstrap, group);
  const same = expected.length > 0 && expected.every(e => shown.some(s => s[0] === e.TOPIC && s[1] === e.PARTITION
    && s[2] === e["CURRENT-OFFSET"] && s[3] === e["LOG-END-OFFSET"] && s[4] === e.LAG));
  check("group lag on the page equals kafka-consumer-groups --describe (OffsetFetch + ListOffsets)", same && shown.length === expected.length,
    `page ${JSON.stringify(shown)} tool ${JSON.stringify(expected)}`);
  check("the group's lag is what was produced past the committed offsets", shown.some(s => s[1] === "0" && s[4] === "2") && shown.some(s => s[1] === "1" && s[4] === "3"),
    JSON.stringify(shown));

  await open("#/transactions", "transactions");
  await open(`#/producers?topic=${topic}`, "producers");

  await open("#/znodes?path=%2Fbrokers%2Fids", "znodes");
  const children = await page.locator("[data-testid=children] li").allTextContents();
  check("znode tree shows /brokers/ids children 1, 2, 3", JSON.stringify(children) === JSON.stringify(["1", "2", "3"]), JSON.stringify(children));
  await page.click("#watches button");
  await page.waitForFunction(() => document.querySelectorAll("#watches .card").length > 0, null, { timeout: 30000 });
  check("watches (wchc/wchp) are listed", (await page.locator("#watches").innerText()).includes("/brokers"));
  await page.screenshot({ path: path.join(shots, "znodes-watches.png"), fullPage: true });

  await open("#/znodes?path=%2Fbrokers%2Fids%2F2", "znode-data");
  check("a broker's registration znode shows its JSON data", (await page.locator("[data-testid=data]").innerText()).includes('"endpoints"'));

  await open("#/tap", "tap");
  const tapText = await page.locator("#main").innerText();
  // samsa dev turns every broker's tap on: the partition leaders' taps hold the Produce requests
  // of kcat (or the API) and of the console's form
  check("tap page shows the three brokers' taps with Produce requests", [1, 2, 3].every(b => tapText.includes(`Broker ${b}`))
    && /\bProduce\b/.test(tapText) && !tapText.includes("tap not available"), tapText.slice(0, 2000));
} catch (e) {
  check("console test ran to the end", false, e.stack || String(e));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (dev) {
    dev.child.kill("SIGTERM");
    await new Promise(r => { const t = setTimeout(() => { dev.child.kill("SIGKILL"); r(); }, 15000); dev.child.on("exit", () => { clearTimeout(t); r(); }); });
  }
  rmSync(data, { recursive: true, force: true });
}
console.log(`console: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
