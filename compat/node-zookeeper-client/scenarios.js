'use strict';
// ZooKeeper scenarios through node-zookeeper-client 1.1.3 (pure JavaScript, npm).
// Its API has the four classic create modes (no container/TTL), one-shot watches,
// transactions (multi) and ACLs; it has no sync, no persistent watches, no create2.
// Usage: node scenarios.js --list | node scenarios.js NAME...

const fs = require('fs');
const { spawn } = require('child_process');
const zookeeper = require('node-zookeeper-client');
const { CreateMode, ACL, Id, Permission, Exception } = zookeeper;

const ADDR = process.env.COMPAT_ADDR || '127.0.0.1:2181';
const TRANSCRIPT = process.env.COMPAT_TRANSCRIPT;
const BASE = '/compat-node-zookeeper-client';

const scenarios = new Map();
function scenario(name, fn) { scenarios.set(name, fn); }

class Fail extends Error {}
function check(cond, msg) { if (!cond) throw new Fail(msg); }
function note(...parts) {
  const line = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  console.log('  | ' + line);
  if (TRANSCRIPT) fs.appendFileSync(TRANSCRIPT, line + '\n');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function connect(opts = {}) {
  return new Promise((resolve, reject) => {
    const client = zookeeper.createClient(ADDR, { sessionTimeout: opts.sessionTimeout || 10000, retries: 0 });
    const timer = setTimeout(() => reject(new Fail('could not connect within 10s')), 10000);
    client.once('connected', () => { clearTimeout(timer); resolve(wrap(client)); });
    client.connect();
  });
}

// Promise versions of the callback API; watchers stay callbacks.
function wrap(c) {
  const p = (fn) => (...args) => new Promise((resolve, reject) =>
    fn.call(c, ...args, (err, ...res) => (err ? reject(err) : resolve(res.length <= 1 ? res[0] : res))));
  return {
    raw: c,
    create: p(c.create),
    remove: p(c.remove),
    removeRecursive: p(c.removeRecursive),
    setData: p(c.setData),
    getData: p(c.getData),
    exists: p(c.exists),
    getChildren: p(c.getChildren),
    getACL: p(c.getACL),
    setACL: p(c.setACL),
    mkdirp: p(c.mkdirp),
    commit: (t) => new Promise((resolve) => t.commit((err, results) => resolve({ err, results }))),
    sessionId: () => c.getSessionId().toString('hex'),
    close: () => c.close(),
  };
}

async function expectCode(code, promise, what) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof Exception && e.getCode() === code) return e;
    throw new Fail(`${what}: expected ${code}, got ${e}`);
  }
  throw new Fail(`${what}: expected error ${code}, call succeeded`);
}

async function fresh(zk, name) {
  const path = `${BASE}/${name}`;
  if (await zk.exists(path)) await zk.removeRecursive(path, -1);
  await zk.mkdirp(BASE);
  await zk.create(path);
  return path;
}

function statStr(st, sid) {
  const owner = st.ephemeralOwner.toString('hex');
  const who = /^0+$/.test(owner) ? 'none' : owner === sid ? 'self' : 'other';
  return `version=${st.version} cversion=${st.cversion} aversion=${st.aversion} dataLength=${st.dataLength} numChildren=${st.numChildren} owner=${who}`;
}

function collector() {
  const events = [];
  return { events, watch: (ev) => events.push(ev) };
}
async function waitEvents(events, n, what) {
  for (let i = 0; i < 80 && events.length < n; i++) await sleep(100);
  check(events.length >= n, what);
  await sleep(300);
}
const evs = (events) => events.map((e) => [e.getName(), e.getPath()]);

async function withClient(fn) {
  const zk = await connect();
  try { await fn(zk); } finally { zk.close(); }
}

scenario('crud', () => withClient(async (zk) => {
  const p = await fresh(zk, 'crud');
  check((await zk.create(p + '/a', Buffer.from('one'))) === p + '/a', 'create returned a different path');
  let [data, st] = await zk.getData(p + '/a');
  check(data.toString() === 'one', `get returned ${data}`);
  note('get', data.toString(), statStr(st));
  st = await zk.setData(p + '/a', Buffer.from('two'), 0);
  check(st.version === 1, `version after set ${st.version}`);
  [data, st] = await zk.getData(p + '/a');
  check(data.toString() === 'two', 'data after set');
  await zk.create(p + '/b');
  const kids = (await zk.getChildren(p))[0].sort();
  check(JSON.stringify(kids) === '["a","b"]', `children ${kids}`);
  check((await zk.exists(p + '/nope')) === null, 'exists on a missing node');
  await zk.remove(p + '/a', 1);
  check((await zk.exists(p + '/a')) === null, 'node exists after remove');
  const pst = await zk.exists(p);
  note('parent', statStr(pst));
  check(pst.cversion === 3 && pst.numChildren === 1, `parent ${statStr(pst)}`);
}));

scenario('errors', () => withClient(async (zk) => {
  const p = await fresh(zk, 'errors');
  await zk.create(p + '/x', Buffer.from('v'));
  await zk.create(p + '/x/kid');
  await expectCode(Exception.NO_NODE, zk.getData(p + '/missing'), 'get missing');
  await expectCode(Exception.NODE_EXISTS, zk.create(p + '/x'), 'create existing');
  await expectCode(Exception.BAD_VERSION, zk.setData(p + '/x', Buffer.from('w'), 7), 'set with a wrong version');
  await expectCode(Exception.NOT_EMPTY, zk.remove(p + '/x', -1), 'remove a node with children');
  await expectCode(Exception.NO_NODE, zk.create(p + '/nope/kid'), 'create under a missing parent');
  await zk.create(p + '/eph', CreateMode.EPHEMERAL);
  await expectCode(Exception.NO_CHILDREN_FOR_EPHEMERALS, zk.create(p + '/eph/kid'), 'create under an ephemeral');
  note('ok');
}));

scenario('create-sequential', () => withClient(async (zk) => {
  const p = await fresh(zk, 'create-sequential');
  const names = [];
  names.push(await zk.create(p + '/n-', CreateMode.PERSISTENT_SEQUENTIAL));
  names.push(await zk.create(p + '/n-', CreateMode.PERSISTENT_SEQUENTIAL));
  await zk.create(p + '/plain');
  names.push(await zk.create(p + '/n-', CreateMode.PERSISTENT_SEQUENTIAL));
  note('names', names.map((n) => n.slice(p.length)));
  check(JSON.stringify(names) === JSON.stringify([p + '/n-0000000000', p + '/n-0000000001', p + '/n-0000000003']), `names ${names}`);
}));

scenario('create-ephemeral', () => withClient(async (zk) => {
  const p = await fresh(zk, 'create-ephemeral');
  await zk.create(p + '/e', Buffer.from('x'), CreateMode.EPHEMERAL);
  const st = await zk.exists(p + '/e');
  note('stat', statStr(st, zk.sessionId()));
  check(st.ephemeralOwner.toString('hex') === zk.sessionId(), 'ephemeralOwner is not this session');
}));

scenario('create-ephemeral-sequential', () => withClient(async (zk) => {
  const p = await fresh(zk, 'create-ephemeral-sequential');
  const a = await zk.create(p + '/l-', CreateMode.EPHEMERAL_SEQUENTIAL);
  const b = await zk.create(p + '/l-', CreateMode.EPHEMERAL_SEQUENTIAL);
  note('names', a.slice(p.length), b.slice(p.length));
  check(a === p + '/l-0000000000' && b === p + '/l-0000000001', `names ${a} ${b}`);
  check((await zk.exists(b)).ephemeralOwner.toString('hex') === zk.sessionId(), 'not owned by this session');
}));

scenario('stat-versions', () => withClient(async (zk) => {
  const p = await fresh(zk, 'stat-versions');
  const st0 = await zk.exists(p);
  for (let i = 0; i < 3; i++) await zk.create(`${p}/k${i}`);
  await zk.setData(p, Buffer.from('12345'), -1);
  await zk.remove(`${p}/k1`, -1);
  await zk.setACL(p, ACL.OPEN_ACL_UNSAFE, -1);
  const st = await zk.exists(p);
  note('stat', statStr(st));
  check(st.cversion === 4 && st.version === 1 && st.aversion === 1 && st.numChildren === 2 && st.dataLength === 5, `stat ${statStr(st)}`);
  check(st.ctime.equals(st0.ctime), 'ctime changed');
  check(Buffer.compare(st.pzxid, st0.pzxid) > 0, 'pzxid did not advance');
}));

scenario('watch-data', () => withClient(async (zk) => {
  const p = await fresh(zk, 'watch-data');
  await zk.create(p + '/w', Buffer.from('1'));
  const c = collector();
  await zk.getData(p + '/w', c.watch);
  await zk.setData(p + '/w', Buffer.from('2'), -1);
  await zk.setData(p + '/w', Buffer.from('3'), -1);
  await waitEvents(c.events, 1, 'no NODE_DATA_CHANGED event');
  note('events', evs(c.events));
  check(JSON.stringify(evs(c.events)) === JSON.stringify([['NODE_DATA_CHANGED', p + '/w']]), `events ${JSON.stringify(evs(c.events))}`);
}));

scenario('watch-exists', () => withClient(async (zk) => {
  const p = await fresh(zk, 'watch-exists');
  const c = collector();
  check((await zk.exists(p + '/later', c.watch)) === null, 'exists already');
  await zk.create(p + '/later');
  await waitEvents(c.events, 1, 'no NODE_CREATED event');
  const d = collector();
  await zk.exists(p + '/later', d.watch);
  await zk.remove(p + '/later', -1);
  await waitEvents(d.events, 1, 'no NODE_DELETED event');
  note('events', evs(c.events), evs(d.events));
  check(evs(c.events)[0][0] === 'NODE_CREATED' && c.events.length === 1, `events ${evs(c.events)}`);
  check(evs(d.events)[0][0] === 'NODE_DELETED' && d.events.length === 1, `events ${evs(d.events)}`);
}));

scenario('watch-children', () => withClient(async (zk) => {
  const p = await fresh(zk, 'watch-children');
  const c = collector();
  await zk.getChildren(p, c.watch);
  await zk.setData(p, Buffer.from('x'), -1);
  await zk.create(p + '/k1');
  await zk.create(p + '/k2');
  await waitEvents(c.events, 1, 'no NODE_CHILDREN_CHANGED event');
  note('events', evs(c.events));
  check(JSON.stringify(evs(c.events)) === JSON.stringify([['NODE_CHILDREN_CHANGED', p]]), `events ${JSON.stringify(evs(c.events))}`);
}));

scenario('watch-delete', () => withClient(async (zk) => {
  const p = await fresh(zk, 'watch-delete');
  await zk.create(p + '/d');
  const d = collector();
  const k = collector();
  await zk.getData(p + '/d', d.watch);
  await zk.getChildren(p + '/d', k.watch);
  await zk.remove(p + '/d', -1);
  await waitEvents(d.events, 1, 'no NODE_DELETED on the data watch');
  await waitEvents(k.events, 1, 'no NODE_DELETED on the child watch');
  note('events', evs(d.events), evs(k.events));
  check(d.events.length === 1 && evs(d.events)[0][0] === 'NODE_DELETED', `data ${evs(d.events)}`);
  check(k.events.length === 1 && evs(k.events)[0][0] === 'NODE_DELETED', `child ${evs(k.events)}`);
}));

scenario('ephemeral-session-close', async () => {
  const a = await connect();
  const b = await connect();
  try {
    const p = await fresh(b, 'ephemeral-session-close');
    await a.create(p + '/e', CreateMode.EPHEMERAL);
    const c = collector();
    check((await b.exists(p + '/e', c.watch)) !== null, 'ephemeral not visible to another session');
    a.close();
    await waitEvents(c.events, 1, 'no NODE_DELETED when the owner closed its session');
    check((await b.exists(p + '/e')) === null, 'ephemeral still there');
    note('events', evs(c.events));
  } finally { b.close(); }
});

scenario('session-expiry', async () => {
  const b = await connect();
  try {
    const p = await fresh(b, 'session-expiry');
    const child = spawn(process.execPath, ['-e', `
      const zk = require('node-zookeeper-client').createClient(${JSON.stringify(ADDR)}, { sessionTimeout: 4000 });
      zk.once('connected', () => zk.create(${JSON.stringify(p + '/e')}, 1, (err) => {
        console.log(err ? 'error ' + err : 'created ' + zk.getSessionTimeout()); }));
      zk.connect(); setTimeout(() => {}, 60000);`], { cwd: __dirname, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(d.toString().trim())));
    check(line.startsWith('created'), `child did not create its ephemeral: ${line}`);
    const negotiated = Number(line.split(' ')[1]);
    note('negotiated session timeout ms', negotiated);
    const c = collector();
    check((await b.exists(p + '/e', c.watch)) !== null, 'ephemeral not visible');
    child.kill('SIGKILL');
    const killed = Date.now();
    await waitEvents(c.events, 1, 'ephemeral not deleted after its session should have expired');
    const took = (Date.now() - killed) / 1000;
    console.log(`  expired after ${took}s`);
    check(took >= negotiated / 2000, `deleted after ${took}s, before the session timeout`);
    note('events', evs(c.events));
  } finally { b.close(); }
});

scenario('multi', () => withClient(async (zk) => {
  const p = await fresh(zk, 'multi');
  await zk.create(p + '/old', Buffer.from('v'));
  const t = zk.raw.transaction()
    .create(p + '/m1', Buffer.from('a'))
    .create(p + '/m2', Buffer.from('b'))
    .setData(p + '/old', Buffer.from('w'), 0)
    .check(p + '/old', 1)
    .remove(p + '/old', 1);
  const { err, results } = await zk.commit(t);
  check(!err, `multi failed: ${err}`);
  note('results', results.map((r) => [r.type, r.path || null, r.stat ? statStr(r.stat) : null]));
  check(results.length === 5 && results[0].path === p + '/m1' && results[1].path === p + '/m2', `results ${JSON.stringify(results)}`);
  const kids = (await zk.getChildren(p))[0].sort();
  check(JSON.stringify(kids) === '["m1","m2"]', `children ${kids}`);
}));

scenario('multi-abort', () => withClient(async (zk) => {
  const p = await fresh(zk, 'multi-abort');
  await zk.create(p + '/x', Buffer.from('v'));
  const t = zk.raw.transaction()
    .create(p + '/new')
    .setData(p + '/x', Buffer.from('changed'), -1)
    .check(p + '/x', 42)
    .remove(p + '/x', -1);
  const { err, results } = await zk.commit(t);
  check(err, 'a multi with a failing check succeeded');
  note('error', err.getCode(), 'results', (results || []).map((r) => r.err));
  check(err.getCode() === Exception.BAD_VERSION, `multi error ${err}`);
  check((await zk.exists(p + '/new')) === null, 'create in an aborted multi took effect');
  check((await zk.getData(p + '/x'))[0].toString() === 'v', 'set in an aborted multi took effect');
}));

scenario('acl-digest', async () => {
  const owner = await connect();
  const other = await connect();
  try {
    const p = await fresh(owner, 'acl-digest');
    owner.raw.addAuthInfo('digest', Buffer.from('alice:secret'));
    await owner.create(p + '/private', Buffer.from('s3cret'), [new ACL(Permission.ALL, new Id('auth', ''))]);
    check((await owner.getData(p + '/private'))[0].toString() === 's3cret', 'owner cannot read');
    await expectCode(Exception.NO_AUTH, other.getData(p + '/private'), 'unauthenticated read');
    other.raw.addAuthInfo('digest', Buffer.from('alice:secret'));
    await sleep(200);
    check((await other.getData(p + '/private'))[0].toString() === 's3cret', 'read after addAuthInfo');
    const [acls] = await owner.getACL(p + '/private');
    note('acl', acls.map((a) => [a.permission, a.id.scheme, a.id.id]));
    check(acls.length === 1 && acls[0].id.scheme === 'digest' && acls[0].id.id.startsWith('alice:'), `acls ${JSON.stringify(acls)}`);
  } finally { owner.close(); other.close(); }
});

scenario('acl-world-readonly', () => withClient(async (zk) => {
  const p = await fresh(zk, 'acl-world-readonly');
  await zk.create(p + '/ro', Buffer.from('r'), [new ACL(Permission.READ, new Id('world', 'anyone'))]);
  check((await zk.getData(p + '/ro'))[0].toString() === 'r', 'read');
  await expectCode(Exception.NO_AUTH, zk.setData(p + '/ro', Buffer.from('w'), -1), 'write to a read-only node');
  await expectCode(Exception.NO_AUTH, zk.create(p + '/ro/kid'), 'create under a read-only node');
  note('ok');
}));

scenario('acl-get-set', () => withClient(async (zk) => {
  const p = await fresh(zk, 'acl-get-set');
  await zk.create(p + '/n');
  let [acls, st] = await zk.getACL(p + '/n');
  note('default', acls.map((a) => [a.permission, a.id.scheme, a.id.id]), st.aversion);
  check(acls.length === 1 && acls[0].permission === 31 && acls[0].id.scheme === 'world', `default acl ${JSON.stringify(acls)}`);
  await zk.setACL(p + '/n', [new ACL(Permission.READ | Permission.WRITE | Permission.ADMIN, new Id('world', 'anyone'))], 0);
  [acls, st] = await zk.getACL(p + '/n');
  note('after', acls.map((a) => [a.permission, a.id.scheme, a.id.id]), st.aversion);
  check(st.aversion === 1 && acls[0].permission === 19, `after setACL ${JSON.stringify(acls)} aversion ${st.aversion}`);
  await expectCode(Exception.BAD_VERSION, zk.setACL(p + '/n', ACL.OPEN_ACL_UNSAFE, 0), 'setACL with a stale aversion');
}));

scenario('config-node', () => withClient(async (zk) => {
  const kids = (await zk.getChildren('/zookeeper'))[0].sort();
  note('/zookeeper children', kids);
  check(kids.includes('config') && kids.includes('quota'), `children ${kids}`);
}));

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
      failed++;
      if (!(e instanceof Fail)) console.error(e && e.stack);
      console.log(`FAIL ${name}: ${String(e && e.message || e).slice(0, 300)}`);
    }
  }
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
