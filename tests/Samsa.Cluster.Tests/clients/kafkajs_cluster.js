'use strict';
// kafkajs 2.2.4 (npm, compat/kafkajs) through a ZooKeeper-mode cluster, bootstrapped at one broker:
// produce COUNT keyed records spread over every partition of TOPIC (acks=all), then read them all
// back through a fresh consumer group (kafkajs has no manual assignment). Prints
// "produced P OFFSET" and "consumed P KEY VALUE" lines; exits 1 on any client error.
// Usage: NODE_PATH=compat/kafkajs/node_modules node kafkajs_cluster.js BOOTSTRAP TOPIC PARTITIONS COUNT
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, partitionsArg, countArg] = process.argv.slice(2);
const partitions = Number(partitionsArg), count = Number(countArg);
const kafka = new Kafka({
  clientId: 'samsa-cluster-test', brokers: [bootstrap], logLevel: logLevel.NOTHING,
  connectionTimeout: 5000, requestTimeout: 15000, retry: { retries: 5, initialRetryTime: 200 },
});

async function main() {
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ key: `k${i}`, value: `v${i}`, partition: i % partitions });
  const results = await producer.send({ topic, acks: -1, messages });
  for (const r of results) {
    // One entry per partition: the base offset of its batch.
    console.log(`produced-batch ${r.partition} ${r.baseOffset}`);
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `cluster-test-${Date.now()}`, sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      console.log(`consumed ${partition} ${message.key.toString()} ${message.value.toString()}`);
      if (++seen >= count) done();
    },
  });
  const timer = setTimeout(done, 30000);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
}

main().then(() => process.exit(0), (e) => { console.error(e && e.stack || String(e)); process.exit(1); });
