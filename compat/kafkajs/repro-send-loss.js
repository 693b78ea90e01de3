'use strict';
// Reproduces a kafkajs 2.2.4 producer fault on the compat cluster target (compat/lib/cluster.py;
// see compat/FINDINGS.md, "Samsa cluster"): producer.send() resolves although the records of
// some partitions were never sent.
//
// sendMessages keeps one response per broker across its retries. Here a 4-partition topic is led
// by brokers 2 (partitions 0, 2) and 3 (1, 3); broker 2 is stopped (SIGSTOP: its listener still
// accepts) while send() is in flight, then killed. Its request is reset; broker 3's acks=-1 request
// waits for the ISR to drop broker 2. The retry finds every partition led by broker 3, which by
// then has answered for 1 and 3, so nothing is sent again: send() resolves with results for
// partitions 1 and 3 only, and 0 and 2 never get the records. (Had broker 3 not answered yet, the
// retry would have sent 1 and 3 a second time.)
//
//   COMPAT_CLUSTER_DIR=DIR node repro-send-loss.js [BROKER]     BROKER: 2 (default) or 3
// The killed broker is started again at the end.

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Kafka, logLevel } = require('kafkajs');

const dir = process.env.COMPAT_CLUSTER_DIR;
if (!dir) throw new Error('COMPAT_CLUSTER_DIR is not set (a cluster started with compat/lib/cluster.py up)');
const victim = process.argv[2] || '2';
const info = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8'));
const ctl = (...a) => execFileSync('/usr/bin/python3', [path.join(__dirname, '..', 'lib', 'cluster.py'), '--dir', dir, ...a], { encoding: 'utf8' }).trim();
const kafka = new Kafka({ clientId: 'repro-send-loss', brokers: [`127.0.0.1:${info.brokers[String(info.bootstrap)].port}`], logLevel: logLevel.NOTHING });

(async () => {
  const topic = `repro-send-loss-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  // The cluster target's assignment: partition p led by 2 (even) or 3 (odd), bootstrap broker last.
  const replicas = (p) => (p % 2 === 0 ? [2, 3, info.bootstrap] : [3, 2, info.bootstrap]);
  await admin.createTopics({ topics: [{ topic, replicaAssignment: [0, 1, 2, 3].map((p) => ({ partition: p, replicas: replicas(p) })) }], waitForLeaders: true });
  const producer = kafka.producer({ retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 1000 } });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [0, 1, 2, 3].map((p) => ({ value: 'first', partition: p })) });
  const pid = Number(fs.readFileSync(path.join(dir, `broker-${victim}.pid`), 'utf8'));
  process.kill(pid, 'SIGSTOP');
  const started = Date.now();
  const sent = producer.send({ topic, acks: -1, messages: Array.from({ length: 40 }, (_, i) => ({ value: `v${i}`, partition: i % 4 })) });
  await new Promise((r) => setTimeout(r, 500));
  process.kill(pid, 'SIGKILL');
  const result = await sent;
  console.log(`send() resolved after ${Date.now() - started} ms with results for partitions ${result.map((r) => r.partition).sort()}`);
  const ends = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((o) => `${o.partition}:${o.high}`);
  console.log(`partition end offsets ${ends.join(' ')} (11 each if every record was written)`);
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  ctl('start', victim);
})().catch((e) => { console.error(e); process.exit(1); });
