'use strict';
// Kafka scenarios through @platformatic/kafka 1.35.0 (pure JavaScript, npm, pinned in
// package-lock.json). It speaks only recent API versions (Produce v7+, Fetch v12+, Metadata
// v9+, all flexible encodings with tagged fields), so it exercises the KIP-482 wire paths the
// older clients never reach. Its packages declare Node >= 22.19 for two helpers (npm warns on
// Node 20); the suite runs it on Node 20, which its main package accepts (>= 20.19.4).
// Usage: node scenarios.js --list | node scenarios.js NAME...

const {
  Admin, Producer, Consumer, Connection, stringSerializers, stringDeserializers,
  CompressionAlgorithms, ConfigResourceTypes, MessagesStreamModes, describeTopicPartitionsV0,
} = require('@platformatic/kafka');

const ADDR = process.env.COMPAT_ADDR || '127.0.0.1:9092';
const PREFIX = process.env.COMPAT_PREFIX || 'compat-platformatic';
// The cluster target (compat/lib/cluster.py): topics and new partitions get an explicit
// assignment whose bootstrap broker is the last replica, so it leads none of them.
const CLUSTER = process.env.COMPAT_TARGET === 'cluster';
const BOOTSTRAP_ID = Number(process.env.COMPAT_BOOTSTRAP_ID || -1);
const LEADERS = (process.env.COMPAT_LEADERS || '').split(',').filter((x) => x).map(Number);
const BROKERS = CLUSTER ? LEADERS.length + 1 : 1;
const replicasOf = (p) => { const k = p % LEADERS.length; return [...LEADERS.slice(k), ...LEADERS.slice(0, k), BOOTSTRAP_ID]; };

const scenarios = new Map();
const scenario = (name, fn) => scenarios.set(name, fn);
class Fail extends Error {}
class Skip extends Error {}
const check = (cond, msg) => { if (!cond) throw new Fail(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const topicName = (n) => `${PREFIX}-${n}`.slice(0, 240);
const rand = () => Math.random().toString(16).slice(2, 8);
const base = { bootstrapBrokers: [ADDR], connectTimeout: 5000, timeout: 15000, retries: 3, retryDelay: 250 };

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

async function withAdmin(fn) {
  const admin = new Admin({ ...base, clientId: 'samsa-compat-admin' });
  try { return await fn(admin); } finally { await admin.close(); }
}

async function createTopic(name, partitions = 3, configs = []) {
  await withAdmin(async (admin) => {
    const spec = CLUSTER
      ? { topics: [name], partitions: -1, replicas: -1, assignments: Array.from({ length: partitions }, (_, p) => ({ partition: p, brokers: replicasOf(p) })), configs }
      : { topics: [name], partitions, replicas: 1, configs };
    const created = await admin.createTopics(spec);
    check(created.length === 1 && created[0].name === name && created[0].partitions === partitions, `createTopics answered ${JSON.stringify(created)}`);
    // Leaders known before producing.
    await eventually(async () => {
      const md = await admin.metadata({ topics: [name], forceUpdate: true });
      const t = md.topics.get(name);
      return t && t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0);
    }, `${name} has no leaders`);
  });
  return name;
}

async function produce(messages, opts = {}) {
  const producer = new Producer({ ...base, clientId: 'samsa-compat-producer', serializers: stringSerializers, ...opts });
  try { return await producer.send({ messages, acks: -1 }); } finally { await producer.close(); }
}

// Reads `n` records from the start of `topic` through a fresh group.
async function readAll(topic, n, timeoutMs = 20000, groupId = `${PREFIX}-read-${rand()}`) {
  const consumer = new Consumer({ ...base, clientId: 'samsa-compat-consumer', groupId, deserializers: stringDeserializers, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTime: 200 });
  const got = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
    stream.on('data', (m) => got.push(m));
    const end = Date.now() + timeoutMs;
    while (got.length < n && Date.now() < end) await sleep(100);
    await stream.close();
    return got;
  } finally { await consumer.close(true); }
}

function produceConsume(codec) {
  return async () => {
    // The client compresses zstd with node:zlib, which has it from Node 22.15 only.
    if (codec === CompressionAlgorithms.ZSTD && typeof require('zlib').zstdCompressSync !== 'function') throw new Skip(`zstd needs Node >= 22.15 in this client (running ${process.version})`);
    const t = await createTopic(topicName(`codec-${codec}-${rand()}`), 1);
    const values = Array.from({ length: 50 }, (_, i) => (i === 25 ? `${codec}-${i}-` + 'x'.repeat(20000) : `${codec}-${i}-${rand()}` + 'abc'.repeat(i % 7)));
    const res = await produce(values.map((v, i) => ({ topic: t, key: `k${i}`, value: v, partition: 0 })), { compression: codec });
    check(res && res.offsets && res.offsets.length === 1 && String(res.offsets[0].offset) === '0', `produce answered ${JSON.stringify(res, (_, x) => (typeof x === 'bigint' ? String(x) : x))}`);
    const got = await readAll(t, 50);
    check(got.length === 50, `consumed ${got.length} of 50`);
    check(got.every((m, i) => m.value === values[i] && m.key === `k${i}` && m.offset === BigInt(i)), 'values, keys or offsets differ');
  };
}
scenario('produce-consume-none', produceConsume(CompressionAlgorithms.NONE));
scenario('produce-consume-gzip', produceConsume(CompressionAlgorithms.GZIP));
scenario('produce-consume-snappy', produceConsume(CompressionAlgorithms.SNAPPY));
scenario('produce-consume-lz4', produceConsume(CompressionAlgorithms.LZ4));
scenario('produce-consume-zstd', produceConsume(CompressionAlgorithms.ZSTD));

scenario('keyed-partitioning', async () => {
  const t = await createTopic(topicName(`keyed-${rand()}`), 3);
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  const messages = [];
  for (let j = 0; j < 5; j++) for (const k of keys) messages.push({ topic: t, key: k, value: `v${j}` });
  await produce(messages);   // the default partitioner is Java's murmur2 one
  const got = await readAll(t, messages.length);
  check(got.length === messages.length, `consumed ${got.length} of ${messages.length}`);
  const where = new Map();
  for (const m of got) {
    if (!where.has(m.key)) where.set(m.key, new Set());
    where.get(m.key).add(m.partition);
  }
  check([...where.values()].every((s) => s.size === 1), 'a key landed in more than one partition');
  check(new Set([...where.values()].map((s) => [...s][0])).size > 1, '12 keys all in one partition');
  for (const k of keys) {
    const vals = got.filter((m) => m.key === k).map((m) => m.value);
    check(JSON.stringify(vals) === JSON.stringify(['v0', 'v1', 'v2', 'v3', 'v4']), `order of ${k}: ${vals}`);
  }
});

scenario('partition-ordering', async () => {
  const t = await createTopic(topicName(`ordering-${rand()}`), 2);
  const producer = new Producer({ ...base, clientId: 'samsa-compat-ordering', serializers: stringSerializers });
  const values = Array.from({ length: 300 }, (_, i) => String(i).padStart(5, '0'));
  try {
    for (let i = 0; i < 300; i += 30) await producer.send({ messages: values.slice(i, i + 30).map((v) => ({ topic: t, value: v, partition: 1 })) });
  } finally { await producer.close(); }
  const got = await readAll(t, 300);
  check(got.length === 300, `consumed ${got.length} of 300`);
  check(got.map((m) => m.value).join() === values.join(), 'records of one partition out of order');
  check(got.every((m, i) => m.offset === BigInt(i)), 'offsets are not 0..299');
});

scenario('record-headers', async () => {
  const t = await createTopic(topicName(`headers-${rand()}`), 1);
  await produce([
    { topic: t, key: 'k', value: 'v', partition: 0, headers: new Map([['a', '1'], ['b', '']]) },
    { topic: t, key: 'k2', value: 'v2', partition: 0 },
  ]);
  const got = await readAll(t, 2);
  check(got.length === 2, `consumed ${got.length}`);
  const h = got[0].headers;
  check(h.get('a') === '1' && h.get('b') === '', `headers ${JSON.stringify([...h])}`);
  check(got[1].headers.size === 0, 'record without headers has some');
});

scenario('timestamps', async () => {
  const t = await createTopic(topicName(`timestamps-${rand()}`), 1);
  const start = BigInt(Date.now() - 3600000);
  await produce([0, 1, 2, 3, 4].map((i) => ({ topic: t, value: `t${i}`, partition: 0, timestamp: start + BigInt(i * 1000) })));
  const got = await readAll(t, 5);
  check(got.length === 5, `consumed ${got.length} of 5`);
  check(got.map((m) => String(m.timestamp)).join() === [0, 1, 2, 3, 4].map((i) => String(start + BigInt(i * 1000))).join(), `timestamps ${got.map((m) => m.timestamp)}`);
});

scenario('offset-lookup', async () => {
  const t = await createTopic(topicName(`offset-lookup-${rand()}`), 1);
  const start = BigInt(Date.now() - 3600000);
  await produce(Array.from({ length: 10 }, (_, i) => ({ topic: t, value: `o${i}`, partition: 0, timestamp: start + BigInt(i * 1000) })));
  const consumer = new Consumer({ ...base, clientId: 'samsa-compat-offsets', groupId: `${PREFIX}-offsets-${rand()}` });
  try {
    const latest = await consumer.listOffsets({ topics: [t] });
    check(String(latest.get(t)[0]) === '10', `latest offset ${latest.get(t)}`);
    const earliest = await consumer.listOffsets({ topics: [t], timestamp: -2n });
    check(String(earliest.get(t)[0]) === '0', `earliest offset ${earliest.get(t)}`);
    const byTime = await consumer.listOffsets({ topics: [t], timestamp: start + 4500n });
    check(String(byTime.get(t)[0]) === '5', `offset for time ${byTime.get(t)}`);
  } finally { await consumer.close(true); }
});

scenario('consumer-group', async () => {
  const t = await createTopic(topicName(`group-${rand()}`), 3);
  await produce(Array.from({ length: 30 }, (_, i) => ({ topic: t, key: `k${i}`, value: `v${i}`, partition: i % 3 })));
  const groupId = topicName(`group-g-${rand()}`);
  const got = await readAll(t, 30, 20000, groupId);
  check(got.length === 30, `group member consumed ${got.length} of 30`);
  check(new Set(got.map((m) => m.partition)).size === 3, 'the member did not read all three partitions');
  // A member that stays: the group is listed and described as Stable with it.
  const consumer = new Consumer({ ...base, clientId: 'samsa-compat-member', groupId, deserializers: stringDeserializers, sessionTimeout: 10000, heartbeatInterval: 500 });
  try {
    const stream = await consumer.consume({ topics: [t], mode: MessagesStreamModes.EARLIEST, autocommit: false });
    stream.on('data', () => {});
    await withAdmin(async (admin) => {
      await eventually(async () => (await admin.listGroups()).has(groupId), 'group not listed');
      const d = await eventually(async () => {
        const g = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
        return g && g.state === 'STABLE' && g.members.size === 1 ? g : null;
      }, 'group not Stable with one member');
      check(d.protocolType === 'consumer', `protocol type ${d.protocolType}`);
    });
    await stream.close();
  } finally { await consumer.close(true); }
});

scenario('offset-commit-fetch', async () => {
  const t = await createTopic(topicName(`commit-${rand()}`), 2);
  const groupId = topicName(`commit-g-${rand()}`);
  await withAdmin(async (admin) => {
    await admin.alterConsumerGroupOffsets({ groupId, topics: [{ name: t, partitionOffsets: [{ partition: 0, offset: 7n }, { partition: 1, offset: 3n }] }] });
    const [res] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
    const topic = res && res.topics.find((x) => x.name === t);
    const got = topic ? topic.partitions.sort((x, y) => x.partitionIndex - y.partitionIndex).map((p) => String(p.committedOffset)) : [];
    check(JSON.stringify(got) === '["7","3"]', `committed ${JSON.stringify(res, (_, x) => (typeof x === 'bigint' ? String(x) : x))}`);
  });
});

scenario('admin-create-topic', async () => {
  const t = await createTopic(topicName(`create-${rand()}`), 5, [{ name: 'retention.ms', value: '3600000' }]);
  await withAdmin(async (admin) => {
    const md = await admin.metadata({ topics: [t], forceUpdate: true });
    check(md.topics.get(t).partitions.length === 5, `${md.topics.get(t).partitions.length} partitions`);
    let err = null;
    try { await admin.createTopics({ topics: [t], partitions: 1, replicas: 1 }); } catch (e) { err = e; }
    check(err && /TOPIC_ALREADY_EXISTS|already exists/i.test(describeError(err)), `creating an existing topic: ${err ? describeError(err) : 'succeeded'}`);
    err = null;
    try { await admin.createTopics({ topics: [topicName(`bad-rf-${rand()}`)], partitions: 1, replicas: BROKERS + 1 }); } catch (e) { err = e; }
    check(err && /INVALID_REPLICATION_FACTOR|replication factor/i.test(describeError(err)), `replication factor ${BROKERS + 1} on ${BROKERS} broker(s): ${err ? describeError(err) : 'succeeded'}`);
  });
});

scenario('admin-delete-topic', async () => {
  const t = await createTopic(topicName(`delete-${rand()}`), 1);
  await withAdmin(async (admin) => {
    await admin.deleteTopics({ topics: [t] });
    await eventually(async () => !(await admin.listTopics()).includes(t), 'deleted topic still listed');
    let err = null;
    try { await admin.deleteTopics({ topics: [topicName(`never-existed-${rand()}`)] }); } catch (e) { err = e; }
    check(err && /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic/i.test(describeError(err)), `deleting a missing topic: ${err ? describeError(err) : 'succeeded'}`);
  });
});

scenario('admin-describe-cluster', async () => {
  const t = await createTopic(topicName(`describe-cluster-${rand()}`), 2);
  await withAdmin(async (admin) => {
    const md = await admin.metadata({ topics: [t], forceUpdate: true });
    check(md.id && md.brokers.size === BROKERS, `cluster ${md.id} with ${md.brokers.size} brokers (want ${BROKERS})`);
    check(md.brokers.has(md.controllerId), `controller ${md.controllerId} is not a listed broker`);
    const topic = md.topics.get(t);
    check(topic && topic.id && topic.id !== '00000000-0000-0000-0000-000000000000' && topic.partitionsCount === 2, `topic ${JSON.stringify(topic)}`);
    check(topic.partitions.every((p) => md.brokers.has(p.leader) && p.isr.includes(p.leader)), 'a leader is not a live in-sync broker');
    if (CLUSTER) check(topic.partitions.every((p) => p.leader !== BOOTSTRAP_ID), 'the bootstrap broker leads a partition');
  });
});

scenario('admin-describe-configs', async () => {
  const t = await createTopic(topicName(`describe-configs-${rand()}`), 1, [{ name: 'cleanup.policy', value: 'compact' }]);
  await withAdmin(async (admin) => {
    const [r] = await admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: t }], includeSynonyms: false });
    const get = (n) => r.configs.find((e) => e.name === n);
    check(get('cleanup.policy') && get('cleanup.policy').value === 'compact', 'cleanup.policy is not compact');
    check(get('retention.ms') && get('retention.ms').value === '604800000', `retention.ms ${JSON.stringify(get('retention.ms'))}`);
  });
});

scenario('admin-alter-configs', async () => {
  const t = await createTopic(topicName(`alter-configs-${rand()}`), 1);
  await withAdmin(async (admin) => {
    await admin.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: t, configs: [{ name: 'retention.ms', value: '123456', configOperation: 0 }] }] });
    const [r] = await admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: t, configurationKeys: ['retention.ms'] }] });
    const e = r.configs.find((x) => x.name === 'retention.ms');
    check(e && e.value === '123456', `retention.ms ${JSON.stringify(e)}`);
  });
});

scenario('admin-create-partitions', async () => {
  const t = await createTopic(topicName(`add-partitions-${rand()}`), 2);
  await withAdmin(async (admin) => {
    const grow = CLUSTER ? { name: t, count: 5, assignments: [2, 3, 4].map((p) => ({ brokerIds: replicasOf(p) })) } : { name: t, count: 5 };
    await admin.createPartitions({ topics: [grow] });
    await eventually(async () => (await admin.metadata({ topics: [t], forceUpdate: true })).topics.get(t).partitions.length === 5, 'topic did not grow to 5 partitions');
    let err = null;
    try { await admin.createPartitions({ topics: [{ name: t, count: 3 }] }); } catch (e) { err = e; }
    check(err, 'shrinking the partition count succeeded');
  });
});

scenario('idempotence', async () => {
  const t = await createTopic(topicName(`idempotent-${rand()}`), 1);
  const producer = new Producer({ ...base, clientId: 'samsa-compat-idempotent', serializers: stringSerializers, idempotent: true });
  const values = Array.from({ length: 200 }, (_, i) => `i${String(i).padStart(4, '0')}`);
  try {
    for (let i = 0; i < 200; i += 20) await producer.send({ messages: values.slice(i, i + 20).map((v) => ({ topic: t, value: v, partition: 0 })) });
    check(producer.producerId !== undefined && producer.producerId >= 0n, `producer id ${producer.producerId}`);
  } finally { await producer.close(); }
  const got = await readAll(t, 200);
  check(got.length === 200 && got.every((m, i) => m.value === values[i]), `read ${got.length} of 200 in order`);
});

// KIP-966, which only recent clients carry: pages of at most 2 partitions across two topics,
// following the cursor, at the bootstrap broker.
scenario('describe-topic-partitions', async () => {
  const stem = topicName(`dtp-${rand()}`);
  const a = await createTopic(`${stem}-a`, 3);
  const b = await createTopic(`${stem}-b`, 2);
  const [host, port] = ADDR.split(':');
  const connection = new Connection('samsa-compat-dtp');
  await connection.connect(host, Number(port));
  try {
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const r = await describeTopicPartitionsV0.api.async(connection, [{ name: b }, { name: a }], 2, cursor);
      pages++;
      for (const topic of r.topics) {
        check(topic.errorCode === 0, `${topic.name}: error ${topic.errorCode}`);
        for (const p of topic.partitions) {
          check(p.errorCode === 0 && p.leaderId >= 0 && p.isrNodes.includes(p.leaderId), `${topic.name}-${p.partitionIndex}: ${JSON.stringify(p)}`);
          seen.push(`${topic.name}-${p.partitionIndex}`);
        }
      }
      cursor = r.nextCursor ? { topicName: r.nextCursor.topicName, partitionIndex: r.nextCursor.partitionIndex } : undefined;
    } while (cursor && pages < 10);
    check(pages === 3, `${pages} pages for 5 partitions at 2 per page`);
    check(seen.join() === [`${a}-0`, `${a}-1`, `${a}-2`, `${b}-0`, `${b}-1`].join(), `partitions ${seen}`);
  } finally { await connection.close(); }
});

function describeError(e) {
  const parts = [e.message || String(e)];
  if (e.errors) for (const x of [].concat(e.errors)) parts.push(describeError(x));
  if (e.response && e.response.errors) parts.push(JSON.stringify(e.response.errors));
  if (e.apiId) parts.push(e.apiId);
  return parts.join(' | ');
}

async function main() {
  const args = process.argv.slice(2);
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
      console.log(`FAIL ${name}: ${describeError(e).replace(/\n/g, ' ').slice(0, 300)}`);
    }
  }
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
