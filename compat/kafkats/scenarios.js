'use strict';
// Share-group (KIP-932, "queues for Kafka") scenarios through @kafkats/client 0.12.0 (npm, pinned in
// package-lock.json). Its ShareConsumer speaks ShareGroupHeartbeat v1, ShareFetch v2 and
// ShareAcknowledge v2, i.e. needs Kafka 4.2's share-group APIs.
// Usage: node scenarios.js --list | node scenarios.js NAME...
// Environment (compat/README.md): COMPAT_ADDR, COMPAT_PREFIX, COMPAT_TARGET (samsa | cluster |
// upstream), COMPAT_CLUSTER_DIR (cluster: topics are created by compat/lib/cluster.py create-topic,
// so the bootstrap broker leads none of them).

const path = require('path');
const { execFileSync, spawn } = require('child_process');
const { KafkaClient } = require('@kafkats/client');

const ADDR = process.env.COMPAT_ADDR || '127.0.0.1:9092';
const PREFIX = process.env.COMPAT_PREFIX || 'compat-kafkats';
const CLUSTER = process.env.COMPAT_TARGET === 'cluster';

const scenarios = new Map();
const scenario = (name, fn) => scenarios.set(name, fn);
class Fail extends Error {}
class Skip extends Error {}
const check = (cond, msg) => { if (!cond) throw new Fail(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = () => Math.random().toString(16).slice(2, 8);
const topicName = (n) => `${PREFIX}-${n}-${rand()}`.slice(0, 240);

function newClient(addr = ADDR) {
  return new KafkaClient({ brokers: [addr], clientId: 'samsa-compat-kafkats', requestTimeoutMs: 15000 });
}

async function eventually(fn, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Fail(`${what} (waited ${timeoutMs / 1000}s)`);
}

async function createTopic(client, name, partitions = 1) {
  if (CLUSTER) {
    execFileSync('/usr/bin/python3', [path.join(__dirname, '..', 'lib', 'cluster.py'), 'create-topic', name, String(partitions)],
      { encoding: 'utf8', timeout: 60000 });
  } else {
    const [r] = await client.admin().createTopics([{ name, numPartitions: partitions, replicationFactor: 1 }]);
    check(r && r.errorCode === 0, `createTopics ${name}: ${JSON.stringify(r)}`);
  }
  // Wait until the topic has a leader in the client's metadata.
  await eventually(async () => {
    const md = await client.admin().describeTopics([name]).catch(() => null);
    return md && md[0] && md[0].partitions && md[0].partitions.length === partitions && md[0].partitions.every((p) => p.leaderId >= 0);
  }, `topic ${name} has no leader`);
  return name;
}

async function produce(client, topic, values) {
  const producer = client.producer();
  try {
    for (let i = 0; i < values.length; i += 10) {
      await producer.send(topic, values.slice(i, i + 10).map((v) => ({ value: Buffer.from(v), partition: 0 })));
    }
  } finally { await producer.disconnect(); }
}

// A share consumer that records every delivery (offset, value, delivery count); `onMessage` decides
// the acknowledgement (return 'accept' | 'release' | 'reject'; default accept).
function startConsumer(client, topic, group, onMessage = () => 'accept', config = {}) {
  const consumer = client.shareConsumer({ groupId: group, maxWaitMs: 300, ...config });
  const deliveries = [];
  let assigned = false;
  consumer.on('partitionsAssigned', () => { assigned = true; });
  const done = consumer.runEach(topic, async (m) => {
    const d = { offset: Number(m.offset), value: m.value ? m.value.toString() : null, deliveryCount: m.deliveryCount };
    deliveries.push(d);
    const what = onMessage(d);
    if (what === 'release') await m.release();
    else if (what === 'reject') await m.reject();
    else await m.ack();
  }).catch((e) => { deliveries.error = e; });
  return { consumer, deliveries, done, isAssigned: () => assigned };
}

async function stopAll(...cs) {
  await Promise.all(cs.map((c) => c.consumer.stop().catch(() => {})));
}

// ---------------------------------------------------------------- scenarios

scenario('share-split', async () => {
  // Three members of one share group on a one-partition topic: each record reaches exactly one
  // of them, none is lost, and more than one member gets records.
  const client = newClient();
  await client.connect();
  const t = await createTopic(client, topicName('split'));
  const group = `${PREFIX}-share-${rand()}`;
  const cs = [0, 1, 2].map(() => startConsumer(client, t, group, () => 'accept', { maxRecords: 5 }));
  try {
    await eventually(() => cs.every((c) => c.isAssigned()), 'members were not all assigned the partition', 15000);
    const values = Array.from({ length: 200 }, (_, i) => `v${i}`);
    await produce(client, t, values);
    const total = () => cs.reduce((n, c) => n + c.deliveries.length, 0);
    await eventually(() => total() >= 200, `only ${total()} of 200 records delivered`, 15000);
    await sleep(500);
    const all = cs.flatMap((c) => c.deliveries);
    const offsets = new Set(all.map((d) => d.offset));
    check(all.length === 200, `${all.length} deliveries for 200 records (duplicates)`);
    check(offsets.size === 200 && [...offsets].every((o) => o >= 0 && o < 200), 'offsets are not exactly 0..199');
    check(all.every((d) => d.value === `v${d.offset}` && d.deliveryCount === 1), 'a value or delivery count differs');
    const busy = cs.filter((c) => c.deliveries.length > 0).length;
    check(busy >= 2, `only ${busy} member(s) received records: ${cs.map((c) => c.deliveries.length).join('/')}`);
    console.log(`  split ${cs.map((c) => c.deliveries.length).join('/')}`);
    check(cs.every((c) => !c.deliveries.error), `consumer error: ${cs.map((c) => c.deliveries.error).filter(Boolean)[0]}`);
  } finally {
    await stopAll(...cs);
    await client.disconnect();
  }
});

scenario('share-ack-types', async () => {
  // ACCEPT settles a record, RELEASE hands it out again with delivery count 2, REJECT never again.
  const client = newClient();
  await client.connect();
  const t = await createTopic(client, topicName('acks'));
  const group = `${PREFIX}-share-${rand()}`;
  const c = startConsumer(client, t, group, (d) => (d.offset === 0 && d.deliveryCount === 1 ? 'release' : d.offset === 1 ? 'reject' : 'accept'));
  try {
    await eventually(() => c.isAssigned(), 'member was not assigned the partition', 15000);
    await produce(client, t, ['r0', 'r1', 'r2']);
    await eventually(() => c.deliveries.length >= 4, `${c.deliveries.length} deliveries, expected 4`, 15000);
    await sleep(1500);   // nothing else may come
    const seen = c.deliveries.map((d) => `${d.offset}:${d.deliveryCount}`).sort();
    check(JSON.stringify(seen) === JSON.stringify(['0:1', '0:2', '1:1', '2:1']), `deliveries ${JSON.stringify(seen)}`);
  } finally {
    await stopAll(c);
    await client.disconnect();
  }
});

scenario('share-delivery-limit', async () => {
  // A record released on every delivery comes back with delivery counts 1..5 and then is archived
  // (group.share.delivery.count.limit, default 5); the record after it is still delivered.
  const client = newClient();
  await client.connect();
  const t = await createTopic(client, topicName('limit'));
  const group = `${PREFIX}-share-${rand()}`;
  const c = startConsumer(client, t, group, (d) => (d.offset === 0 ? 'release' : 'accept'));
  try {
    await eventually(() => c.isAssigned(), 'member was not assigned the partition', 15000);
    await produce(client, t, ['poison', 'fine']);
    await eventually(() => c.deliveries.filter((d) => d.offset === 0).length >= 5 && c.deliveries.some((d) => d.offset === 1),
      `deliveries ${JSON.stringify(c.deliveries.map((d) => `${d.offset}:${d.deliveryCount}`))}`, 15000);
    await sleep(1500);
    const counts = c.deliveries.filter((d) => d.offset === 0).map((d) => d.deliveryCount);
    check(JSON.stringify(counts) === '[1,2,3,4,5]', `offset 0 delivery counts ${JSON.stringify(counts)}`);
    check(c.deliveries.filter((d) => d.offset === 1).length === 1, 'offset 1 delivered more than once');
  } finally {
    await stopAll(c);
    await client.disconnect();
  }
});

scenario('share-redeliver-after-crash', async () => {
  // A member that dies holding acquired records (process killed, no acknowledgement, no leave):
  // another member gets those records with delivery count 2. Samsa releases them when the dead
  // member's connection closes; upstream at the latest after the 30 s lock (the wait allows 20 s).
  const client = newClient();
  await client.connect();
  const t = await createTopic(client, topicName('crash'));
  const group = `${PREFIX}-share-${rand()}`;
  const child = spawn(process.execPath, [__filename, '--crash-member', t, group], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
  let childOut = '';
  child.stdout.on('data', (b) => { childOut += b.toString(); });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  let c;
  try {
    await eventually(() => childOut.includes('ready'), `crash member did not join (${childOut.trim()})`, 15000);
    await produce(client, t, Array.from({ length: 10 }, (_, i) => `c${i}`));
    const code = await Promise.race([exited, sleep(15000).then(() => 'timeout')]);
    check(code === 7, `crash member exit ${code} (${childOut.trim()})`);
    c = startConsumer(client, t, group);
    await eventually(() => c.deliveries.length >= 10, `${c.deliveries.length} of 10 records redelivered`, 20000);
    const offsets = c.deliveries.map((d) => d.offset).sort((a, b) => a - b);
    check(JSON.stringify(offsets) === JSON.stringify([...Array(10).keys()]), `offsets ${JSON.stringify(offsets)}`);
    check(c.deliveries.every((d) => d.deliveryCount === 2), `delivery counts ${JSON.stringify(c.deliveries.map((d) => d.deliveryCount))}`);
  } finally {
    child.kill('SIGKILL');
    if (c) await stopAll(c);
    await client.disconnect();
  }
});

scenario('share-state-restart', async () => {
  // Share-partition state outlives the broker that keeps it (KIP-932's share coordinator and
  // __share_group_state): a member accepts records 0-5 of ten and dies holding 6-9; the broker
  // that keeps the group's share state is then restarted (cluster: the share coordinator's broker
  // is killed with SIGKILL and started again; one broker: the scenario's own `samsa dev`, stopped
  // and started again on the same data directory). A new member gets exactly records 6-9.
  let own = null;
  let addr = ADDR;
  if (!CLUSTER) {
    if (!process.env.COMPAT_SAMSA_BIN || process.env.COMPAT_TARGET === 'upstream') {
      throw new Skip('needs the cluster target or COMPAT_SAMSA_BIN (a broker this scenario may restart)');
    }
    own = await OwnBroker.start(process.env.COMPAT_SAMSA_BIN);
    addr = own.addr;
  }
  const client = newClient(addr);
  let killed = null;
  let c;
  try {
    await client.connect();
    const t = await createTopic(client, topicName('state'));
    const group = `${PREFIX}-share-${rand()}`;
    const child = spawn(process.execPath, [__filename, '--partial-member', t, group, addr], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let childOut = '';
    child.stdout.on('data', (b) => { childOut += b.toString(); });
    const exited = new Promise((r) => child.on('exit', (code) => r(code)));
    try {
      await eventually(() => childOut.includes('ready'), `first member did not join (${childOut.trim()})`, 30000);
      // One batch of ten, so the member's first fetch (record limit 6) takes exactly 0-5.
      const producer = client.producer();
      try { await producer.send(t, Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`s${i}`), partition: 0 }))); }
      finally { await producer.disconnect(); }
      const code = await Promise.race([exited, sleep(20000).then(() => 'timeout')]);
      check(code === 7, `first member exit ${code} (${childOut.trim()})`);
    } finally { child.kill('SIGKILL'); }
    check(/accepted 0,1,2,3,4,5\b/.test(childOut), `first member: ${childOut.trim()}`);
    await client.disconnect();

    if (CLUSTER) {
      const md = await (async () => { const k = newClient(addr); await k.connect(); try { return await k.admin().describeTopics([t]); } finally { await k.disconnect(); } })();
      const key = `${group}:${kafkaUuidText(md[0].topicId)}:0`;
      killed = Number(clusterCtl('coordinator', '--share', key).split('\n').pop());
      check(String(killed) !== process.env.COMPAT_BOOTSTRAP_ID, `the bootstrap broker coordinates the share state ${key}`);
      console.log(`  share coordinator of ${key}: broker ${killed}; killed and started again`);
      clusterCtl('kill', String(killed));
      await sleep(1000);
      clusterCtl('start', String(killed));
      killed = null;
    } else {
      await own.restart();
    }

    const again = newClient(addr);
    await again.connect();
    try {
      c = startConsumer(again, t, group);
      await eventually(() => c.deliveries.length >= 4, `${c.deliveries.length} of 4 records after the restart`, 30000);
      await sleep(1500);   // nothing else may come
      const offsets = c.deliveries.map((d) => d.offset).sort((a, b) => a - b);
      check(JSON.stringify(offsets) === '[6,7,8,9]', `after the restart: offsets ${JSON.stringify(offsets)} (expected 6-9 only)`);
      check(c.deliveries.every((d) => d.value === `s${d.offset}` && d.deliveryCount >= 1 && d.deliveryCount <= 2),
        `values / delivery counts ${JSON.stringify(c.deliveries.map((d) => `${d.offset}:${d.deliveryCount}`))}`);
      console.log(`  after the restart: ${c.deliveries.map((d) => `${d.offset}:${d.deliveryCount}`).join(' ')}`);
    } finally {
      if (c) await stopAll(c);
      await again.disconnect();
    }
  } finally {
    if (killed !== null) { try { clusterCtl('start', String(killed)); } catch (e) { /* ensure-up after the scenario */ } }
    if (own) await own.stop();
  }
});

scenario('share-members-restart', async () => {
  // Share-group membership outlives the group coordinator (KIP-932 share group records in
  // __consumer_offsets): a member consumes, the group coordinator's broker (found with
  // FindCoordinator) is killed with SIGKILL and started again, and the member goes on with its
  // epoch and assignment — never fenced (UNKNOWN_MEMBER_ID would make the client revoke and rejoin)
  // — and gets the records produced afterwards. Cluster target only: with one broker, @kafkats/client
  // 0.12's share consumer gives up ("No brokers available") while its only broker restarts (tried
  // with a `samsa dev` of the scenario's own), so the one-broker restart is covered by
  // ShareMembershipPersistenceTests instead.
  if (!CLUSTER) throw new Skip('cluster target only (@kafkats/client gives up while its only broker restarts)');
  const addr = ADDR;
  const client = newClient(addr);
  let killed = null;
  let c;
  try {
    await client.connect();
    const t = await createTopic(client, topicName('members'));
    const group = `${PREFIX}-share-${rand()}`;
    c = startConsumer(client, t, group);
    let assigned = 0;
    let revoked = 0;
    c.consumer.on('partitionsAssigned', () => { assigned++; });
    c.consumer.on('partitionsRevoked', () => { revoked++; });
    await eventually(() => c.isAssigned(), 'the member was not assigned the partition', 15000);
    await produce(client, t, ['a0', 'a1', 'a2']);
    await eventually(() => c.deliveries.length >= 3, `${c.deliveries.length} of 3 records before the restart`, 15000);

    killed = Number(clusterCtl('coordinator', group).split('\n').pop());
    check(String(killed) !== process.env.COMPAT_BOOTSTRAP_ID, `the bootstrap broker coordinates ${group}`);
    console.log(`  group coordinator of ${group}: broker ${killed}; killed and started again`);
    clusterCtl('kill', String(killed));
    await sleep(1000);
    clusterCtl('start', String(killed));
    killed = null;

    const after = newClient(addr);
    await after.connect();
    try { await produce(after, t, ['b0', 'b1', 'b2']); } finally { await after.disconnect(); }
    const late = () => c.deliveries.filter((d) => d.value && d.value.startsWith('b'));
    await eventually(() => late().length >= 3, `${late().length} of 3 records after the restart (${c.deliveries.error || 'no error'})`, 45000);
    check(assigned === 1 && revoked === 0, `the member was fenced and rejoined: assigned ${assigned} times, revoked ${revoked} times`);
    check(JSON.stringify(late().map((d) => d.value).sort()) === '["b0","b1","b2"]', `after the restart: ${JSON.stringify(late())}`);
    console.log(`  ${c.deliveries.length} deliveries, assigned once, never revoked`);
  } finally {
    if (c) await stopAll(c);
    await client.disconnect().catch(() => {});
    if (killed !== null) { try { clusterCtl('start', String(killed)); } catch (e) { /* ensure-up after the scenario */ } }
  }
});

// compat/lib/cluster.py with the cluster target's directory.
function clusterCtl(...args) {
  return execFileSync('/usr/bin/python3', [path.join(__dirname, '..', 'lib', 'cluster.py'), ...args],
    { encoding: 'utf8', timeout: 120000 }).trim();
}

// Kafka's text form of a topic id (URL-safe base64 of its 16 bytes, no padding), as in the share
// coordinator key "group:topicId:partition"; the client reports ids as dashed hex.
function kafkaUuidText(id) {
  return Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// A `samsa dev` of this scenario's own (one broker target), so it can be killed and started
// again on the same data directory without disturbing the harness's broker.
class OwnBroker {
  static async start(bin) {
    const os = require('os');
    const fs = require('fs');
    const b = new OwnBroker();
    b.bin = bin;
    b.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compat-kafkats-state-'));
    b.port = await freePort();
    b.zkPort = await freePort();
    await b.launch();
    return b;
  }

  async launch() {
    this.out = '';
    this.proc = spawn(this.bin, ['dev', '--host', '127.0.0.1', '--kafka-port', String(this.port), '--zk-port', String(this.zkPort), '--data', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.out += d.toString(); this.all = (this.all || '') + d.toString(); });
    this.proc.stderr.on('data', (d) => { this.out += d.toString(); this.all = (this.all || '') + d.toString(); });
    await eventually(() => /kafka listening on/.test(this.out), `own samsa dev did not start: ${this.out.slice(-300)}`, 60000);
    this.addr = `127.0.0.1:${this.port}`;
  }

  // A clean stop (SIGTERM) and a start on the same data directory: a `samsa dev` killed with
  // SIGKILL does not start again until its Keeper session expires (see FINDINGS).
  async restart() {
    const gone = new Promise((r) => this.proc.on('exit', r));
    this.proc.kill('SIGTERM');
    await Promise.race([gone, sleep(30000)]);
    if (this.proc.exitCode === null) { this.proc.kill('SIGKILL'); await gone; }
    await this.launch();
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const gone = new Promise((r) => this.proc.on('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([gone, sleep(10000)]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    // COMPAT_OWN_BROKER_LOG: keep both runs' broker output (investigating a failure).
    if (process.env.COMPAT_OWN_BROKER_LOG) require('fs').writeFileSync(process.env.COMPAT_OWN_BROKER_LOG, this.all || '');
    require('fs').rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = require('net').createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

// The first member of share-state-restart: joins, says "ready", accepts what its first fetch
// (record limit 6) acquired, and on the next record exits abruptly (exit code 7), holding the rest.
async function partialMember(topic, group, addr) {
  const client = newClient(addr);
  await client.connect();
  const consumer = client.shareConsumer({ groupId: group, maxWaitMs: 300, maxRecords: 6, acquireMode: 'record_limit' });
  consumer.on('partitionsAssigned', () => process.stdout.write('ready\n'));
  const accepted = [];
  await consumer.runEach(topic, async (m) => {
    const offset = Number(m.offset);
    if (offset < 6) { await m.ack(); accepted.push(offset); return; }
    process.stdout.write(`accepted ${accepted.sort((a, b) => a - b).join(',')}\n`);
    process.exit(7);
  });
}

// The member of share-redeliver-after-crash: joins, says "ready", and exits abruptly (exit code 7)
// on its first record, holding every record it acquired.
async function crashMember(topic, group) {
  const client = newClient();
  await client.connect();
  const consumer = client.shareConsumer({ groupId: group, maxWaitMs: 300 });
  consumer.on('partitionsAssigned', () => process.stdout.write('ready\n'));
  await consumer.runEach(topic, async () => { process.exit(7); });
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--crash-member') { await crashMember(args[1], args[2]); return 1; }
  if (args[0] === '--partial-member') { await partialMember(args[1], args[2], args[3]); return 1; }
  if (args[0] === '--list') { for (const n of scenarios.keys()) console.log(n); return 0; }
  let failed = 0;
  for (const name of args.length ? args : [...scenarios.keys()]) {
    const fn = scenarios.get(name);
    if (!fn) { console.log(`FAIL ${name}: unknown scenario for this client`); failed++; continue; }
    try {
      await fn();
      console.log(`PASS ${name}`);
    } catch (e) {
      if (e instanceof Skip) { console.log(`SKIP ${name}: ${e.message}`); continue; }
      failed++;
      if (!(e instanceof Fail)) console.error(e && e.stack);
      console.log(`FAIL ${name}: ${String((e && e.message) || e).replace(/\n/g, ' ').slice(0, 300)}`);
    }
  }
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
