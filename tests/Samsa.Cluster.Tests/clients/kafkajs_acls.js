'use strict';
// kafkajs 2.2.4 admin ACL calls against brokers with an AclAuthorizer, as User:ANONYMOUS over
// PLAINTEXT: a write to TOPIC is refused, createAcls grants WRITE, describeAcls shows it, the write
// then succeeds, deleteAcls removes it and the write is refused again. Prints one line per step;
// exits 1 on an unexpected client error.
// Usage: NODE_PATH=compat/kafkajs/node_modules node kafkajs_acls.js BOOTSTRAP TOPIC
const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs');

const [bootstrap, topic] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: 'samsa-acl-test', brokers: [bootstrap], logLevel: logLevel.NOTHING,
  connectionTimeout: 5000, requestTimeout: 15000, retry: { retries: 2, initialRetryTime: 100 },
});

const binding = {
  resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL,
  principal: 'User:ANONYMOUS', host: '*', operation: AclOperationTypes.WRITE, permissionType: AclPermissionTypes.ALLOW,
};
const filter = {
  resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.ANY,
  operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY,
};

function errorType(e) {
  for (let x = e; x; x = x.cause || x.originalError) if (x.type) return x.type;
  return e.name;
}

async function send(producer) {
  try {
    const r = await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v', partition: 0 }] });
    return `ok ${r[0].baseOffset}`;
  } catch (e) {
    return `error ${errorType(e)}`;
  }
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer();
  await producer.connect();
  console.log(`before ${await send(producer)}`);
  const created = await admin.createAcls({ acl: [binding] });
  console.log(`created ${created}`);
  const described = await admin.describeAcls(filter);
  for (const r of described.resources)
    for (const a of r.acls) console.log(`described ${r.resourceName} ${a.principal} ${a.operation} ${a.permissionType}`);
  let result = '';
  for (let i = 0; i < 50 && !result.startsWith('ok'); i++) {
    result = await send(producer);
    if (!result.startsWith('ok')) await new Promise(r => setTimeout(r, 200));
  }
  console.log(`granted ${result}`);
  const deleted = await admin.deleteAcls({ filters: [filter] });
  console.log(`deleted ${deleted.filterResponses[0].matchingAcls.length}`);
  result = 'ok';
  for (let i = 0; i < 50 && result.startsWith('ok'); i++) {
    result = await send(producer);
    if (result.startsWith('ok')) await new Promise(r => setTimeout(r, 200));
  }
  console.log(`revoked ${result}`);
  await producer.disconnect();
  await admin.disconnect();
}

main().catch(e => { console.error(e); process.exit(1); });
