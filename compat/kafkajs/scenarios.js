'use strict';
// Kafka scenarios through kafkajs 2.2.4 (pure JavaScript, npm, pinned in package-lock.json).
// kafkajs never uses the flexible encodings. Its core has only the gzip codec (snappy,
// lz4 and zstd need separate codec packages), and no manual partition assignment, so
// reading a partition goes through a throw-away consumer group: every kafkajs scenario
// that consumes needs the broker's group coordinator.
// Usage: node scenarios.js --list | node scenarios.js NAME...

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes, AssignerProtocol } = require('kafkajs');

const ADDR = process.env.COMPAT_ADDR || '127.0.0.1:9092';
const PREFIX = process.env.COMPAT_PREFIX || 'compat-kafkajs';
const DEV_MOCK = !!process.env.COMPAT_DEV_MOCK;
// The cluster target (compat/lib/cluster.py): topics and new partitions get an explicit
// assignment whose bootstrap broker is the last replica, so it leads none of them.
const CLUSTER = process.env.COMPAT_TARGET === 'cluster';
const BOOTSTRAP_ID = Number(process.env.COMPAT_BOOTSTRAP_ID || -1);
const LEADERS = (process.env.COMPAT_LEADERS || '').split(',').filter((x) => x).map(Number);
const BROKERS = CLUSTER ? LEADERS.length + 1 : 1;
const replicasOf = (p) => { const k = p % LEADERS.length; return [...LEADERS.slice(k), ...LEADERS.slice(0, k), BOOTSTRAP_ID]; };
class Skip extends Error {}

function clusterCtl(...args) {
  const { execFileSync } = require('child_process');
  const path = require('path');
  try {
    const out = execFileSync('/usr/bin/python3', [path.join(__dirname, '..', 'lib', 'cluster.py'), ...args], { encoding: 'utf8', timeout: 90000 });
    console.log(`  cluster ${args.join(' ')}: ${out.trim()}`);
    return out.trim();
  } catch (e) {
    throw new Fail(`cluster.py ${args.join(' ')} failed: ${String(e.stderr || e.message).trim().slice(-300)}`);
  }
}
const coordinatorOf = (group) => Number(clusterCtl('coordinator', group).split('\n').pop());

const kafka = new Kafka({
  clientId: 'samsa-compat',
  brokers: [ADDR],
  logLevel: process.env.COMPAT_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 2, initialRetryTime: 200 },
});

const scenarios = new Map();
const scenario = (name, fn) => scenarios.set(name, fn);
class Fail extends Error {}
const check = (cond, msg) => { if (!cond) throw new Fail(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const topicName = (n) => `${PREFIX}-${n}`.slice(0, 240);
const rand = () => Math.random().toString(16).slice(2, 8);

async function eventually(fn, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  // `what` may be a function, read when the wait gives up (counts that changed while waiting)
  throw new Fail(`${typeof what === 'function' ? what() : what} (waited ${timeoutMs / 1000}s)`);
}

async function withAdmin(fn) {
  const admin = kafka.admin();
  await admin.connect();
  try { return await fn(admin); } finally { await admin.disconnect(); }
}

async function createTopic(name, numPartitions = 3, configEntries = []) {
  if (DEV_MOCK) {
    // Developing against librdkafka's mock cluster: no CreateTopics there, but metadata
    // requests auto-create 4-partition topics.
    await withAdmin((a) => a.fetchTopicMetadata({ topics: [name] }).catch(() => null));
    return name;
  }
  await withAdmin(async (admin) => {
    const spec = CLUSTER
      ? { topic: name, replicaAssignment: Array.from({ length: numPartitions }, (_, p) => ({ partition: p, replicas: replicasOf(p) })), configEntries }
      : { topic: name, numPartitions, replicationFactor: 1, configEntries };
    const created = await admin.createTopics({ topics: [spec], waitForLeaders: true, timeout: 10000 });
    check(created, `createTopics said ${name} was not created`);
  });
  return name;
}

async function produce(topic, messages, opts = {}) {
  const producer = kafka.producer(opts.producer || {});
  await producer.connect();
  try {
    return await producer.send({ topic, messages, compression: opts.compression, acks: -1 });
  } finally { await producer.disconnect(); }
}

// Reads `n` records from the start of `topic` through a fresh group; returns them with their partitions.
async function readAll(topic, n, consumerOpts = {}, timeoutMs = 15000) {
  const consumer = kafka.consumer({ groupId: `${PREFIX}-read-${rand()}`, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200, ...consumerOpts });
  const got = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { got.push({ partition, ...message }); } });
    const end = Date.now() + timeoutMs;
    while (got.length < n && Date.now() < end) await sleep(100);
    return got;
  } finally { await consumer.disconnect(); }
}

function produceConsume(codec) {
  return async () => {
    const t = await createTopic(topicName(`codec-${codec}`), 1);
    const values = Array.from({ length: 50 }, (_, i) => (i === 25 ? `${codec}-${i}-` + 'x'.repeat(20000) : `${codec}-${i}-${rand()}` + 'abc'.repeat(i % 7)));
    const res = await produce(t, values.map((v, i) => ({ key: `k${i}`, value: v, partition: 0 })),
      { compression: codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None });
    check(res.length === 1 && res[0].errorCode === 0 && res[0].baseOffset === '0', `produce response ${JSON.stringify(res)}`);
    const got = await readAll(t, 50);
    check(got.length === 50, `consumed ${got.length} of 50`);
    check(got.every((m, i) => m.value.toString() === values[i] && m.key.toString() === `k${i}` && m.offset === String(i)), 'values, keys or offsets differ');
  };
}
scenario('produce-consume-none', produceConsume('none'));
scenario('produce-consume-gzip', produceConsume('gzip'));

scenario('keyed-partitioning', async () => {
  const t = await createTopic(topicName('keyed'), 3);
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  const messages = [];
  for (let j = 0; j < 5; j++) for (const k of keys) messages.push({ key: k, value: `v${j}` });
  await produce(t, messages); // kafkajs's default partitioner is Java's murmur2 one
  const got = await readAll(t, messages.length);
  check(got.length === messages.length, `consumed ${got.length} of ${messages.length}`);
  const where = new Map();
  for (const m of got) {
    const k = m.key.toString();
    if (!where.has(k)) where.set(k, new Set());
    where.get(k).add(m.partition);
  }
  check([...where.values()].every((s) => s.size === 1), 'a key landed in more than one partition');
  check(new Set([...where.values()].map((s) => [...s][0])).size > 1, '12 keys all in one partition');
  for (const k of keys) {
    const vals = got.filter((m) => m.key.toString() === k).map((m) => m.value.toString());
    check(JSON.stringify(vals) === JSON.stringify(['v0', 'v1', 'v2', 'v3', 'v4']), `order of ${k}: ${vals}`);
  }
});

scenario('partition-ordering', async () => {
  const t = await createTopic(topicName('ordering'), 2);
  const producer = kafka.producer();
  await producer.connect();
  const values = Array.from({ length: 300 }, (_, i) => String(i).padStart(5, '0'));
  for (let i = 0; i < 300; i += 30) {
    await producer.send({ topic: t, messages: values.slice(i, i + 30).map((v) => ({ value: v, partition: 1 })) });
  }
  await producer.disconnect();
  const got = await readAll(t, 300);
  check(got.length === 300, `consumed ${got.length} of 300`);
  check(got.map((m) => m.value.toString()).join() === values.join(), 'records of one partition out of order');
  check(got.every((m, i) => m.offset === String(i)), 'offsets are not 0..299');
});

scenario('record-headers', async () => {
  const t = await createTopic(topicName('headers'), 1);
  await produce(t, [{ key: 'k', value: 'v', partition: 0, headers: { a: '1', b: '', c: Buffer.from([0, 255]) } }, { key: 'k2', value: 'v2', partition: 0 }]);
  const got = await readAll(t, 2);
  check(got.length === 2, `consumed ${got.length}`);
  const h = got[0].headers;
  check(h.a.toString() === '1' && h.b.toString() === '' && Buffer.compare(h.c, Buffer.from([0, 255])) === 0, `headers ${JSON.stringify(h)}`);
  check(Object.keys(got[1].headers).length === 0, 'record without headers has some');
});

scenario('timestamps', async () => {
  const t = await createTopic(topicName('timestamps'), 1);
  const base = Date.now() - 3600000;
  await produce(t, [0, 1, 2, 3, 4].map((i) => ({ value: `t${i}`, partition: 0, timestamp: String(base + i * 1000) })));
  const got = await readAll(t, 5);
  check(got.length === 5, `consumed ${got.length} of 5`);
  check(got.map((m) => m.timestamp).join() === [0, 1, 2, 3, 4].map((i) => String(base + i * 1000)).join(), `timestamps ${got.map((m) => m.timestamp)}`);
});

scenario('offset-lookup', async () => {
  const t = await createTopic(topicName('offset-lookup'), 1);
  const base = Date.now() - 3600000;
  await produce(t, Array.from({ length: 10 }, (_, i) => ({ value: `o${i}`, partition: 0, timestamp: String(base + i * 1000) })));
  await withAdmin(async (admin) => {
    const offs = await admin.fetchTopicOffsets(t);
    check(offs.length === 1 && offs[0].low === '0' && offs[0].high === '10', `offsets ${JSON.stringify(offs)}`);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(t, base + 4500);
    check(byTime[0].offset === '5', `offset for time ${JSON.stringify(byTime)}`);
  });
});

scenario('consumer-group', async () => {
  const t = await createTopic(topicName('group'), 3);
  await produce(t, Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 })));
  const groupId = topicName(`group-g-${rand()}`);
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
  const got = [];
  let assignment = null;
  consumer.on(consumer.events.GROUP_JOIN, (e) => { assignment = e.payload.memberAssignment; });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [t], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message); } });
    await eventually(() => got.length >= 30, `group member consumed ${got.length} of 30`, 15000);
    check(JSON.stringify((assignment[t] || []).slice().sort()) === '[0,1,2]', `assignment ${JSON.stringify(assignment)}`);
    await withAdmin(async (admin) => {
      const { groups } = await admin.listGroups();
      check(groups.some((g) => g.groupId === groupId), 'group not listed');
      const { groups: [d] } = await admin.describeGroups([groupId]);
      check(d.state === 'Stable' && d.members.length === 1 && d.protocolType === 'consumer', `describe: ${d.state} ${d.members.length}`);
      const member = AssignerProtocol.MemberAssignment.decode(d.members[0].memberAssignment);
      check(JSON.stringify(member.assignment[t].slice().sort()) === '[0,1,2]', `member assignment ${JSON.stringify(member)}`);
    });
  } finally { await consumer.disconnect(); }
});

scenario('group-rebalance', async () => {
  const t = await createTopic(topicName('rebalance'), 4);
  const groupId = topicName(`rebalance-g-${rand()}`);
  const make = () => {
    const c = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 200 });
    c.assigned = [];
    c.on(c.events.GROUP_JOIN, (e) => { c.assigned = (e.payload.memberAssignment[t] || []).slice().sort(); });
    return c;
  };
  const a = make();
  const b = make();
  await a.connect();
  try {
    await a.subscribe({ topics: [t] });
    await a.run({ eachMessage: async () => {} });
    await eventually(() => a.assigned.length === 4, 'first member did not get 4 partitions', 8000);
    await b.connect();
    await b.subscribe({ topics: [t] });
    await b.run({ eachMessage: async () => {} });
    await eventually(() => a.assigned.length && b.assigned.length && new Set([...a.assigned, ...b.assigned]).size === 4 &&
      a.assigned.length + b.assigned.length === 4, 'partitions were not split between two members', 12000);
    await b.disconnect();
    await eventually(() => a.assigned.length === 4, 'remaining member did not get all partitions back', 8000);
  } finally { await a.disconnect(); }
});

scenario('offset-commit-fetch', async () => {
  const t = await createTopic(topicName('commit'), 2);
  const groupId = topicName(`commit-g-${rand()}`);
  await withAdmin(async (admin) => {
    await admin.setOffsets({ groupId, topic: t, partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '3' }] });
    const [res] = await admin.fetchOffsets({ groupId, topics: [t] });
    const got = res.partitions.sort((x, y) => x.partition - y.partition).map((p) => p.offset);
    check(JSON.stringify(got) === '["7","3"]', `committed ${JSON.stringify(res)}`);
  });
});

scenario('admin-create-topic', async () => {
  const t = await createTopic(topicName('create'), 5, [{ name: 'retention.ms', value: '3600000' }]);
  await withAdmin(async (admin) => {
    const md = await admin.fetchTopicMetadata({ topics: [t] });
    check(md.topics[0].partitions.length === 5, `${md.topics[0].partitions.length} partitions`);
    // kafkajs turns TOPIC_ALREADY_EXISTS into a false return value.
    const again = await admin.createTopics({ topics: [{ topic: t, numPartitions: 1 }], timeout: 10000 });
    check(again === false, 'creating an existing topic reported success');
    let err = null;
    try {
      await admin.createTopics({ topics: [{ topic: topicName('bad-rf'), numPartitions: 1, replicationFactor: BROKERS + 1 }], timeout: 10000 });
    } catch (e) { err = e; }
    const types = err && err.errors ? err.errors.map((e) => e.type) : [err && err.type];
    check(err && types.includes('INVALID_REPLICATION_FACTOR'), `replication factor ${BROKERS + 1} on ${BROKERS} broker(s): ${err ? types : 'succeeded'}`);
  });
});

scenario('admin-delete-topic', async () => {
  const t = await createTopic(topicName('delete'), 1);
  await withAdmin(async (admin) => {
    await admin.deleteTopics({ topics: [t], timeout: 10000 });
    await eventually(async () => !(await admin.listTopics()).includes(t), 'deleted topic still listed');
    let err = null;
    try { await admin.deleteTopics({ topics: [topicName('never-existed')], timeout: 5000 }); } catch (e) { err = e; }
    check(err && /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic/i.test(String(err.type || err.message)), `deleting a missing topic: ${err ? err.type || err.message : 'succeeded'}`);
  });
});

scenario('admin-describe-cluster', async () => {
  await withAdmin(async (admin) => {
    const c = await admin.describeCluster();
    check(c.brokers.length === BROKERS && c.clusterId, `cluster ${JSON.stringify(c)} (want ${BROKERS} brokers)`);
    check(c.brokers.some((b) => b.nodeId === c.controller), `controller ${c.controller} not a broker`);
  });
});

scenario('admin-describe-configs', async () => {
  const t = await createTopic(topicName('describe-configs'), 1, [{ name: 'cleanup.policy', value: 'compact' }]);
  await withAdmin(async (admin) => {
    const r = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t }], includeSynonyms: false });
    const entries = r.resources[0].configEntries;
    const get = (n) => entries.find((e) => e.configName === n);
    check(r.resources[0].errorCode === 0, `error ${r.resources[0].errorCode}`);
    check(get('cleanup.policy') && get('cleanup.policy').configValue === 'compact', 'cleanup.policy is not compact');
    check(get('retention.ms') && get('retention.ms').isDefault, 'retention.ms missing or not default');
  });
});

scenario('admin-alter-configs', async () => {
  const t = await createTopic(topicName('alter-configs'), 1);
  await withAdmin(async (admin) => {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: 'retention.ms', value: '123456' }] }] });
    const r = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ['retention.ms'] }], includeSynonyms: false });
    const e = r.resources[0].configEntries.find((x) => x.configName === 'retention.ms');
    check(e && e.configValue === '123456' && !e.isDefault, `retention.ms ${JSON.stringify(e)}`);
  });
});

scenario('admin-create-partitions', async () => {
  const t = await createTopic(topicName('add-partitions'), 2);
  await withAdmin(async (admin) => {
    const grow = CLUSTER ? { topic: t, count: 5, assignments: [2, 3, 4].map(replicasOf) } : { topic: t, count: 5 };
    await admin.createPartitions({ topicPartitions: [grow], timeout: 10000 });
    await eventually(async () => (await admin.fetchTopicMetadata({ topics: [t] })).topics[0].partitions.length === 5, 'topic did not grow to 5 partitions');
    let err = null;
    try { await admin.createPartitions({ topicPartitions: [{ topic: t, count: 3 }] }); } catch (e) { err = e; }
    check(err, 'shrinking the partition count succeeded');
  });
});

scenario('idempotence', async () => {
  const t = await createTopic(topicName('idempotent'), 1);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const values = Array.from({ length: 200 }, (_, i) => `i${String(i).padStart(4, '0')}`);
  for (let i = 0; i < 200; i += 20) await producer.send({ topic: t, acks: -1, messages: values.slice(i, i + 20).map((v) => ({ value: v, partition: 0 })) });
  await producer.disconnect();
  const got = await readAll(t, 200);
  check(got.map((m) => m.value.toString()).join() === values.join(), 'idempotent records duplicated, lost or reordered');
});

function txn(commit) {
  return async () => {
    const t = await createTopic(topicName(`txn-${commit ? 'commit' : 'abort'}`), 1);
    const producer = kafka.producer({ transactionalId: topicName(`txid-${commit}-${rand()}`), idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000 });
    await producer.connect();
    try {
      let tx = await producer.transaction();
      await tx.send({ topic: t, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `in-txn-${i}`, partition: 0 })) });
      if (commit) await tx.commit(); else await tx.abort();
      tx = await producer.transaction();
      await tx.send({ topic: t, messages: [{ value: 'after', partition: 0 }] });
      await tx.commit();
    } finally { await producer.disconnect(); }
    const want = commit ? ['in-txn-0', 'in-txn-1', 'in-txn-2', 'in-txn-3', 'in-txn-4', 'after'] : ['after'];
    const got = await readAll(t, want.length, { readUncommitted: false });
    await sleep(500);
    check(got.map((m) => m.value.toString()).join() === want.join(), `read_committed saw ${got.map((m) => m.value.toString())}`);
    const raw = await readAll(t, 6, { readUncommitted: true });
    check(raw.length === 6, `read_uncommitted saw ${raw.length} records, want 6`);
  };
}
scenario('transactions-commit', txn(true));
scenario('transactions-abort', txn(false));

scenario('compaction', async () => {
  const t = await createTopic(topicName('compacted'), 1, [{ name: 'cleanup.policy', value: 'compact' }]);
  await produce(t, [{ key: 'a', value: '1', partition: 0 }, { key: 'a', value: '2', partition: 0 }, { key: 'b', value: null, partition: 0 }]);
  let err = null;
  try {
    await produce(t, [{ value: 'no key', partition: 0 }], { producer: { retry: { retries: 0 } } });
  } catch (e) { err = e; }
  check(err, 'a record without a key was accepted by a compacted topic');
  const got = await readAll(t, 3);
  check(got.map((m) => [String(m.key), m.value === null ? null : String(m.value)]).slice(0, 3).join('|') === 'a,1|a,2|b,', `records ${got.map((m) => [String(m.key), String(m.value)])}`);
});

const fetchOffsets = async (admin, groupId, t) => {
  const [res] = await admin.fetchOffsets({ groupId, topics: [t] });
  return Object.fromEntries(res.partitions.map((p) => [p.partition, Number(p.offset)]));
};

scenario('group-via-non-coordinator', async () => {
  // On the cluster target the bootstrap broker is not the group's coordinator (the harness
  // checks it), so join, commit, describe and offset fetch all go through FindCoordinator.
  const t = await createTopic(topicName('via-noncoord'), 2);
  await produce(t, Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })));
  const groupId = topicName('via-noncoord-g');
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
  let got = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [t], fromBeginning: true });
    await consumer.run({ autoCommitInterval: 200, eachMessage: async () => { got++; } });
    await eventually(() => got >= 20, `group member consumed ${got} of 20`, 15000);
    await withAdmin(async (admin) => {
      const { groups: [d] } = await admin.describeGroups([groupId]);
      check(d.state === 'Stable' && d.members.length === 1, `describe: ${d.state} ${d.members.length}`);
      await eventually(async () => JSON.stringify(await fetchOffsets(admin, groupId, t)) === '{"0":10,"1":10}', 'committed offsets are not 10 and 10', 8000);
    });
  } finally { await consumer.disconnect(); }
  if (CLUSTER) check(coordinatorOf(groupId) !== BOOTSTRAP_ID, `the bootstrap broker ${BOOTSTRAP_ID} coordinates the group`);
});

scenario('admin-describe-groups', async () => {
  const t = await createTopic(topicName('describe-groups'), 2);
  const groupId = topicName('describe-groups-g');
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
  let assigned = null;
  consumer.on(consumer.events.GROUP_JOIN, (e) => { assigned = e.payload.memberAssignment; });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [t] });
    await consumer.run({ eachMessage: async () => {} });
    await eventually(() => assigned && (assigned[t] || []).length === 2, 'the member did not get both partitions', 10000);
    await withAdmin(async (admin) => {
      const { groups } = await admin.describeGroups([groupId, topicName('no-such-group')]);
      const d = groups.find((x) => x.groupId === groupId);
      check(d && d.errorCode === 0 && d.state === 'Stable' && d.protocolType === 'consumer' && d.members.length === 1,
        `describe: ${d && JSON.stringify({ state: d.state, protocolType: d.protocolType, members: d.members.length })}`);
      check(d.members[0].clientId === 'samsa-compat', `member client id ${d.members[0].clientId}`);
      const member = AssignerProtocol.MemberAssignment.decode(d.members[0].memberAssignment);
      check(JSON.stringify(member.assignment[t].slice().sort()) === '[0,1]', `member assignment ${JSON.stringify(member)}`);
      const missing = groups.find((x) => x.groupId === topicName('no-such-group'));
      check(missing && missing.state === 'Dead' && missing.members.length === 0, `an unknown group: ${JSON.stringify(missing)}`);
    });
  } finally { await consumer.disconnect(); }
});

scenario('admin-list-group-offsets', async () => {
  const t = await createTopic(topicName('list-offsets'), 3);
  const groupId = topicName('list-offsets-g');
  await withAdmin(async (admin) => {
    await admin.setOffsets({ groupId, topic: t, partitions: [{ partition: 0, offset: '5' }, { partition: 2, offset: '9' }] });
    const all = await fetchOffsets(admin, groupId, t);
    check(JSON.stringify(all) === '{"0":5,"1":-1,"2":9}', `offsets ${JSON.stringify(all)} (partition 1 has none: -1)`);
    const unknown = await fetchOffsets(admin, topicName('no-such-group'), t);
    check(Object.values(unknown).every((o) => o === -1), `an unknown group has offsets ${JSON.stringify(unknown)}`);
  });
});

scenario('consume-transform-produce', async () => {
  const inT = await createTopic(topicName('ctp-in'), 2);
  const outT = await createTopic(topicName('ctp-out'), 2);
  const values = Array.from({ length: 20 }, (_, i) => `rec-${String(i).padStart(2, '0')}`);
  await produce(inT, values.map((v, i) => ({ value: v, partition: i % 2 })));
  const groupId = topicName('ctp-g');
  const producer = kafka.producer({ transactionalId: topicName('ctp-txid'), idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000 });
  const consumer = kafka.consumer({ groupId, readUncommitted: false, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
  let done = 0;
  await producer.connect();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [inT], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        const tx = await producer.transaction();
        try {
          await tx.send({ topic: outT, messages: batch.messages.map((m) => ({ value: m.value.toString().toUpperCase(), partition: batch.partition })) });
          const next = String(Number(batch.lastOffset()) + 1);
          await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: inT, partitions: [{ partition: batch.partition, offset: next }] }] });
          await tx.commit();
        } catch (e) { await tx.abort(); throw e; }
        for (const m of batch.messages) resolveOffset(m.offset);
        done += batch.messages.length;
      },
    });
    await eventually(() => done >= 20, `transformed ${done} of 20 records`, 15000);
  } finally { await consumer.disconnect(); await producer.disconnect(); }
  const out = await readAll(outT, 20, { readUncommitted: false });
  const got = out.map((m) => m.value.toString()).sort();
  check(JSON.stringify(got) === JSON.stringify(values.map((v) => v.toUpperCase()).sort()), `read_committed output: ${got.length} records ${got.slice(0, 3)}`);
  await withAdmin(async (admin) => {
    const offs = await fetchOffsets(admin, groupId, inT);
    check(JSON.stringify(offs) === '{"0":10,"1":10}', `the group's committed input offsets ${JSON.stringify(offs)}`);
  });
});

scenario('coordinator-failover', async () => {
  if (!CLUSTER) throw new Skip('needs the cluster target (a coordinator to kill)');
  const t = await createTopic(topicName('failover'), 4);
  const groupId = topicName('failover-g');
  const first = Array.from({ length: 40 }, (_, i) => `a${i}`);
  const second = Array.from({ length: 40 }, (_, i) => `b${i}`);
  await produce(t, first.map((v, i) => ({ value: v, partition: i % 4 })));
  const seen = new Set();
  const errors = [];
  const members = [0, 1].map(() => kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200, retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 1000 } }));
  let killed = null;
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const c of members) {
      c.on(c.events.CRASH, (e) => errors.push(String(e.payload.error && e.payload.error.message)));
      await c.connect();
      await c.subscribe({ topics: [t], fromBeginning: true });
      await c.run({ autoCommitInterval: 200, eachMessage: async ({ message }) => { seen.add(message.value.toString()); } });
    }
    const offsets = async () => { try { return await fetchOffsets(admin, groupId, t); } catch (e) { errors.push(e.message); return {}; } };
    await eventually(async () => first.every((v) => seen.has(v)) && JSON.stringify(await offsets()) === '{"0":10,"1":10,"2":10,"3":10}',
      'two members did not consume and commit the first 40 records', 15000);
    const before = await offsets();
    killed = coordinatorOf(groupId);
    check(killed !== BOOTSTRAP_ID, `the bootstrap broker ${BOOTSTRAP_ID} coordinates the group`);
    clusterCtl('kill', String(killed));
    const producer = kafka.producer({ retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 1000 } });
    await producer.connect();
    const sent = await producer.send({ topic: t, acks: -1, messages: second.map((v, i) => ({ value: v, partition: i % 4 })) });
    await producer.disconnect();
    // kafkajs 2.2.4 can resolve send() without sending the records of partitions whose leader
    // reset the request and moved to a broker that had already answered it (compat/FINDINGS.md,
    // Samsa cluster): say so rather than wait for records that were never written.
    const acked = [...new Set(sent.map((r) => r.partition))].sort();
    check(acked.length === 4, `producer.send() resolved with results for partitions ${acked} only: kafkajs never sent the others`);
    const lowest = { ...before };
    let lastOffsets = null;
    await eventually(async () => {
      const offs = lastOffsets = await offsets();
      for (const [p, o] of Object.entries(offs)) if (o >= 0) lowest[p] = Math.min(lowest[p], o);
      return second.every((v) => seen.has(v)) && JSON.stringify(offs) === '{"0":20,"1":20,"2":20,"3":20}';
    }, () => `after killing coordinator ${killed}, the group did not consume and commit the next 40 (consumed ${seen.size} of 80, ` +
      `committed ${JSON.stringify(lastOffsets)}; errors ${errors.slice(-2)})`, 35000);
    check(Object.keys(before).every((p) => lowest[p] >= before[p]), `a committed offset went back: before ${JSON.stringify(before)}, lowest ${JSON.stringify(lowest)}`);
  } finally {
    for (const c of members) await c.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    if (killed !== null) clusterCtl('start', String(killed));
  }
});

// ---------------------------------------------------------------- security (see compat/lib/security.py)
// The secured listeners of the target: run-compat.sh passes them when the target runs with
// security on; otherwise every sec-* scenario is skipped.
const SEC = {
  ssl: process.env.COMPAT_SSL_ADDR || '',
  saslSsl: process.env.COMPAT_SASL_SSL_ADDR || '',
  ca: process.env.COMPAT_CA_FILE || '',
  admin: [process.env.COMPAT_ADMIN_USER || '', process.env.COMPAT_ADMIN_PASSWORD || ''],
  user: [process.env.COMPAT_USER || '', process.env.COMPAT_PASSWORD || ''],
};
function requireSec({ tls = false, sasl = false }) {
  if (tls && !(SEC.ssl && SEC.ca)) throw new Skip('this target has no SSL listener (COMPAT_SSL_ADDR unset)');
  if (sasl && !(SEC.saslSsl && SEC.ca && SEC.admin[0] && SEC.user[0])) throw new Skip('this target has no SASL_SSL listener with users (COMPAT_SASL_SSL_ADDR unset)');
}
function unsecuredJwt(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + 3600 })}.`;
}
function securedKafka({ addr, ca, mechanism, user, password }) {
  const fs = require('fs');
  const sasl = !mechanism ? undefined
    : mechanism === 'oauthbearer' ? { mechanism, oauthBearerProvider: async () => ({ value: unsecuredJwt(user) }) }
    : { mechanism, username: user, password };
  return new Kafka({
    clientId: 'samsa-compat-sec', brokers: [addr], logLevel: logLevel.NOTHING, connectionTimeout: 5000,
    requestTimeout: 15000, retry: { retries: 1, initialRetryTime: 200 },
    ssl: { ca: [fs.readFileSync(ca || SEC.ca)] }, sasl,
  });
}
async function securedRoundTrip(k, name, n = 20) {
  const t = await createTopic(topicName(`${name}-${rand()}`), 1);
  const values = Array.from({ length: n }, (_, i) => `${name}-${i}`);
  const producer = k.producer();
  await producer.connect();
  try { await producer.send({ topic: t, acks: -1, messages: values.map((v) => ({ value: v, partition: 0 })) }); } finally { await producer.disconnect(); }
  const consumer = k.consumer({ groupId: `${t}-g` });
  const got = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: t, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()); } });
    await eventually(() => got.length >= n, `read back ${got.length} of ${n} records`, 20000);
  } finally { await consumer.disconnect(); }
  check(JSON.stringify(got) === JSON.stringify(values), 'records read back differ or are out of order');
}
async function expectRejected(fn, test, what) {
  try { await fn(); } catch (e) {
    if (test(e)) return e;
    throw new Fail(`${what}: unexpected error ${e && e.name}: ${e && e.message}`);
  }
  throw new Fail(`${what}: succeeded`);
}
const isAuthz = (type) => (e) => (e && (e.type === type || (e.originalError && e.originalError.type === type)
  || String(e.message).includes(type.toLowerCase().replace(/_/g, ' ')) || String(e.message).includes('authoriz')));

scenario('sec-tls-produce-consume', async () => {
  requireSec({ tls: true });
  await securedRoundTrip(securedKafka({ addr: SEC.ssl }), 'sec-tls');
});

scenario('sec-tls-untrusted-ca', async () => {
  requireSec({ tls: true });
  const k = securedKafka({ addr: SEC.ssl, ca: '/etc/ssl/certs/ca-certificates.crt' });
  const admin = k.admin();
  await expectRejected(() => admin.connect(), (e) => /certificate|self.signed|SSL|verify/i.test(`${e.message} ${e.originalError && e.originalError.message}`), 'connecting with a CA that did not sign the broker certificate');
  await admin.disconnect().catch(() => {});
});

for (const mech of ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer']) {
  scenario(`sec-sasl-${mech}`, async () => {
    requireSec({ sasl: true });
    await securedRoundTrip(securedKafka({ addr: SEC.saslSsl, mechanism: mech, user: SEC.admin[0], password: SEC.admin[1] }), `sec-${mech}`);
  });
}

scenario('sec-sasl-wrong-password', async () => {
  requireSec({ sasl: true });
  for (const mech of ['plain', 'scram-sha-256']) {
    const admin = securedKafka({ addr: SEC.saslSsl, mechanism: mech, user: SEC.user[0], password: `not-${SEC.user[1]}` }).admin();
    await expectRejected(() => admin.connect(), (e) => e.name === 'KafkaJSSASLAuthenticationError' || /SASL|authentication/i.test(e.message), `${mech} with a wrong password`);
    await admin.disconnect().catch(() => {});
  }
});

scenario('sec-acl-topic', async () => {
  requireSec({ sasl: true });
  const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs');
  const t = await createTopic(topicName(`sec-acl-${rand()}`), 1);
  const group = `${t}-g`;
  const principal = `User:${SEC.user[0]}`;
  const superAdmin = securedKafka({ addr: SEC.saslSsl, mechanism: 'scram-sha-512', user: SEC.admin[0], password: SEC.admin[1] }).admin();
  await superAdmin.connect();
  const acl = (resourceType, resourceName, operation) => ({ resourceType, resourceName, resourcePatternType: ResourcePatternTypes.LITERAL, principal, host: '*', operation, permissionType: AclPermissionTypes.ALLOW });
  const user = securedKafka({ addr: SEC.saslSsl, mechanism: 'scram-sha-256', user: SEC.user[0], password: SEC.user[1] });
  try {
    let producer = user.producer({ retry: { retries: 0 } });
    await producer.connect();
    await expectRejected(() => producer.send({ topic: t, messages: [{ value: 'denied' }] }), isAuthz('TOPIC_AUTHORIZATION_FAILED'), 'write without an ACL');
    await producer.disconnect();
    await superAdmin.createAcls({ acl: [acl(AclResourceTypes.TOPIC, t, AclOperationTypes.WRITE)] });
    const described = await superAdmin.describeAcls({ resourceType: AclResourceTypes.TOPIC, resourceName: t, resourcePatternType: ResourcePatternTypes.LITERAL, principal, host: '*', operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY });
    check(described.resources.length === 1 && described.resources[0].acls.some((a) => a.operation === AclOperationTypes.WRITE), `DescribeAcls does not show the new ACL: ${JSON.stringify(described.resources)}`);
    await eventually(async () => {
      producer = user.producer({ retry: { retries: 0 } });
      await producer.connect();
      try { await producer.send({ topic: t, messages: [{ value: 'allowed', partition: 0 }] }); return true; } catch (e) { return false; } finally { await producer.disconnect(); }
    }, 'after granting WRITE the write is still refused', 20000);
    await superAdmin.createAcls({ acl: [acl(AclResourceTypes.TOPIC, t, AclOperationTypes.READ), acl(AclResourceTypes.GROUP, group, AclOperationTypes.READ)] });
    const got = [];
    await eventually(async () => {
      const consumer = user.consumer({ groupId: group, retry: { retries: 0 } });
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: t, fromBeginning: true });
        await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()); } });
        const end = Date.now() + 5000;
        while (!got.length && Date.now() < end) await sleep(100);
        return got.includes('allowed');
      } catch (e) { return false; } finally { await consumer.disconnect().catch(() => {}); }
    }, 'after granting READ the record was not consumed', 25000);
  } finally {
    await superAdmin.deleteAcls({ filters: [{ resourceType: AclResourceTypes.ANY, resourceName: t, resourcePatternType: ResourcePatternTypes.ANY, principal, host: '*', operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY },
      { resourceType: AclResourceTypes.GROUP, resourceName: group, resourcePatternType: ResourcePatternTypes.ANY, principal, host: '*', operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY }] }).catch(() => {});
    await superAdmin.disconnect();
  }
});

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
      console.log(`FAIL ${name}: ${String((e && (e.message || e.type)) || e).replace(/\n/g, ' ').slice(0, 300)}`);
    }
  }
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
