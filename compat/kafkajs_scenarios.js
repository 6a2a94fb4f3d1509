// kafkajs scenarios of Chronik's compatibility suite: node kafkajs_scenarios.js BOOTSTRAP [NAME...]
//
// Run by `python3 -m compat.clients --kafkajs` (scripts/compat.sh --kafkajs), which installs the
// pinned packages of compat/package-lock.json under target/compat/node and starts the server.
// Every scenario checks what it reads back, not only that calls succeed. Prints progress on
// stderr and, last, one JSON line on stdout: [{feature, scenario, state, detail, seconds}, ...]
// with state PASSED or FAILED (compat/clients.py turns an expected failure into XFAIL).
//
// Codecs: kafkajs has GZIP built in; Snappy, LZ4 and ZSTD are plugins (kafkajs's
// CompressionCodecs): kafkajs-snappy, and small adapters over pure-JS lz4js (LZ4 frame format, as
// Kafka uses) and zstd-codec (Emscripten build of libzstd), so nothing needs a native build.
'use strict';

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const lz4 = require('lz4js');
const { ZstdCodec } = require('zstd-codec');

const bootstrap = process.argv[2];
const only = process.argv.slice(3);
if (!bootstrap) {
  console.error('usage: node kafkajs_scenarios.js BOOTSTRAP [SCENARIO...]');
  process.exit(2);
}

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)); },
  async decompress(buffer) { return Buffer.from(lz4.decompress(buffer)); },
});
let zstdSimple = null;
const zstdReady = new Promise((resolve) => ZstdCodec.run((z) => { zstdSimple = new z.Simple(); resolve(); }));
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) { await zstdReady; return Buffer.from(zstdSimple.compress(encoder.buffer, 3)); },
  async decompress(buffer) { await zstdReady; return Buffer.from(zstdSimple.decompress(buffer)); },
});

const kafka = new Kafka({
  clientId: 'chronik-compat',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  retry: { retries: 5, initialRetryTime: 100 },
  logCreator: () => ({ namespace, level, label, log }) => {
    if (level <= logLevel.WARN) console.error(`kafkajs ${label} ${namespace}: ${log.message} ${log.error || ''}`);
  },
});

const uid = () => Math.random().toString(16).slice(2, 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assert(cond, msg) { if (!cond) throw new Error(`check failed: ${msg}`); }

async function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(t); }
}

async function createTopic(admin, topic, numPartitions) {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true });
  assert(created === true, `createTopics(${topic}) returned ${created}`);
}

// Read exactly `count` messages from `topic` with a fresh group from the beginning; returns them.
async function readAll(topic, count, timeoutMs = 30000) {
  const consumer = kafka.consumer({ groupId: `read-${uid()}`, sessionTimeout: 10000, heartbeatInterval: 1000 });
  const got = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done;
    const finished = new Promise((r) => { done = r; });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: message.offset, key: message.key && message.key.toString(),
          value: message.value && message.value.toString(), headers: message.headers });
        if (got.length >= count) done();
      },
    });
    await withTimeout(finished, timeoutMs, `reading ${count} messages from ${topic} (got ${got.length})`);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

const scenarios = [];
function scenario(feature, name, fn) { scenarios.push({ feature, name, fn }); }

scenario('admin', 'admin: create, list, describe, add partitions, describe configs, delete topics', async () => {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = `kjs-admin-${uid()}`;
    await createTopic(admin, topic, 3);
    const topics = await admin.listTopics();
    assert(topics.includes(topic), `listTopics has ${topic}`);
    let md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert(md.topics[0].partitions.length === 3, `3 partitions, got ${md.topics[0].partitions.length}`);
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] });
    md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert(md.topics[0].partitions.length === 5, `5 partitions after createPartitions, got ${md.topics[0].partitions.length}`);
    const dup = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }).catch((e) => e);
    assert(dup === false || (dup instanceof Error && /exist/i.test(String(dup.message) + String(dup.type))),
      `creating an existing topic: false or TOPIC_ALREADY_EXISTS, got ${dup}`);
    const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }] });
    const entries = Object.fromEntries(cfg.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
    assert(entries['cleanup.policy'] === 'delete', `cleanup.policy delete, got ${entries['cleanup.policy']}`);
    assert(entries['retention.ms'] === '604800000', `retention.ms default 604800000, got ${entries['retention.ms']}`);
    const cluster = await admin.describeCluster();
    assert(cluster.brokers.length >= 1 && cluster.controller !== null, `describeCluster: ${JSON.stringify(cluster)}`);
    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    const after = await admin.listTopics();
    assert(!after.includes(topic), `${topic} gone after deleteTopics`);
  } finally {
    await admin.disconnect();
  }
});

scenario('admin', 'admin: alter topic configs (AlterConfigs API)', async () => {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = `kjs-alter-${uid()}`;
    await createTopic(admin, topic, 1);
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
    const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }] });
    const value = cfg.resources[0].configEntries.find((e) => e.configName === 'retention.ms').configValue;
    assert(value === '3600000', `retention.ms 3600000 after alterConfigs, got ${value}`);
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.disconnect();
  }
});

scenario('admin', 'admin: offsets by time, delete records', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  try {
    const topic = `kjs-offsets-${uid()}`;
    await createTopic(admin, topic, 1);
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      await producer.send({ topic, acks: -1, messages: [{ value: `m${i}`, timestamp: String(t0 + i * 1000) }] });
    }
    const offs = await admin.fetchTopicOffsets(topic);
    assert(offs[0].low === '0' && offs[0].high === '10', `low 0 high 10, got ${JSON.stringify(offs)}`);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 4500);
    assert(byTime[0].offset === '5', `offset for time t0+4.5s is 5, got ${JSON.stringify(byTime)}`);
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] });
    const after = await admin.fetchTopicOffsets(topic);
    assert(after[0].low === '4', `low 4 after deleteTopicRecords, got ${JSON.stringify(after)}`);
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});

scenario('produce', 'produce acks=all, keys and headers, read back', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  try {
    const topic = `kjs-produce-${uid()}`;
    await createTopic(admin, topic, 3);
    const messages = [];
    for (let i = 0; i < 30; i++) messages.push({ key: `k${i % 5}`, value: `v${i}`, headers: { h: `x${i}` } });
    const res = await producer.send({ topic, acks: -1, messages });
    assert(res.every((r) => r.errorCode === 0), `produce error codes ${JSON.stringify(res)}`);
    const acks0 = await producer.send({ topic, acks: 1, messages: [{ key: 'k0', value: 'acks1' }] });
    assert(acks0[0].errorCode === 0, 'acks=1 produce');
    const got = await readAll(topic, 31);
    const values = new Set(got.map((m) => m.value));
    for (let i = 0; i < 30; i++) assert(values.has(`v${i}`), `read back v${i}`);
    const byKey = {};
    for (const m of got) { (byKey[m.key] = byKey[m.key] || new Set()).add(m.partition); }
    assert(Object.values(byKey).every((s) => s.size === 1), 'one partition per key');
    const v7 = got.find((m) => m.value === 'v7');
    assert(v7.headers.h.toString() === 'x7', `header of v7: ${v7.headers.h}`);
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});

scenario('fetch', 'fetch: small fetch limits, seek, read back in order', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const consumer = kafka.consumer({ groupId: `kjs-fetch-${uid()}`, maxBytesPerPartition: 2048, maxBytes: 4096 });
  try {
    const topic = `kjs-fetch-${uid()}`;
    await createTopic(admin, topic, 1);
    for (let i = 0; i < 50; i++) {
      await producer.send({ topic, acks: -1, messages: [{ value: String(i).padStart(4, '0').repeat(256) }] });
    }
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const offsets = [];
    let seeked = false;
    let done;
    const finished = new Promise((r) => { done = r; });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        offsets.push(Number(message.offset));
        if (!seeked && offsets.length === 50) { seeked = true; consumer.seek({ topic, partition: 0, offset: '25' }); }
        if (offsets.length === 75) done();
      },
    });
    await withTimeout(finished, 60000, `reading 50 + 25 records (got ${offsets.length})`);
    const want = [...Array(50).keys(), ...Array.from({ length: 25 }, (_, i) => 25 + i)];
    assert(JSON.stringify(offsets) === JSON.stringify(want), `offsets 0..49 then 25..49 after seek: ${offsets.slice(45, 55)}`);
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await consumer.disconnect();
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});

for (const [codec, type] of [['gzip', CompressionTypes.GZIP], ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4], ['zstd', CompressionTypes.ZSTD]]) {
  scenario(`compression:${codec}`, `produce ${codec}-compressed batches, read back`, async () => {
    const producer = kafka.producer();
    await producer.connect();
    try {
      const topic = `kjs-${codec}-${uid()}`;
      const messages = [];
      for (let i = 0; i < 200; i++) messages.push({ key: `k${i}`, value: `${codec}-${i}-`.repeat(20) });
      // auto-created topic (Kafka's auto.create.topics.enable, Chronik's default)
      await withTimeout((async () => {
        for (;;) {
          try { return await producer.send({ topic, acks: -1, compression: type, messages }); } catch (e) {
            if (!/leader|unknown topic|not available/i.test(String(e.message))) throw e;
            await sleep(200);
          }
        }
      })(), 20000, 'produce');
      const got = await readAll(topic, 200);
      const values = new Set(got.map((m) => m.value));
      for (let i = 0; i < 200; i++) assert(values.has(`${codec}-${i}-`.repeat(20)), `read back #${i}`);
    } finally {
      await producer.disconnect();
    }
  });
}

scenario('idempotence', 'idempotent producer: exactly once per message, in order', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([admin.connect(), producer.connect()]);
  try {
    const topic = `kjs-idem-${uid()}`;
    await createTopic(admin, topic, 1);
    for (let b = 0; b < 10; b++) {
      const messages = [];
      for (let i = 0; i < 10; i++) messages.push({ value: `${b * 10 + i}` });
      await producer.send({ topic, acks: -1, messages });
    }
    const got = await readAll(topic, 100);
    await sleep(500);
    const values = got.map((m) => Number(m.value));
    assert(values.length === 100, `100 messages, got ${values.length}`);
    values.forEach((v, i) => assert(v === i, `message ${i} is ${v}`));
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});

scenario('groups', 'consumer group: 2 members share partitions, commits, admin group calls', async () => {
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const topic = `kjs-group-${uid()}`;
  const groupId = `kjs-g-${uid()}`;
  const consumers = [];
  try {
    await createTopic(admin, topic, 4);
    const messages = [];
    for (let i = 0; i < 200; i++) messages.push({ key: `k${i}`, value: `${i}` });
    await producer.send({ topic, acks: -1, messages });
    const seen = new Map();
    const byMember = [new Set(), new Set()];
    let done;
    const finished = new Promise((r) => { done = r; });
    for (let c = 0; c < 2; c++) {
      const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommitInterval: 200,
        eachMessage: async ({ partition, message }) => {
          seen.set(message.value.toString(), (seen.get(message.value.toString()) || 0) + 1);
          byMember[c].add(partition);
          if (seen.size >= 200) done();
        },
      });
    }
    await withTimeout(finished, 60000, `group consumption (saw ${seen.size}/200)`);
    // both members are in the group
    const desc = await withTimeout((async () => {
      for (;;) {
        const d = await admin.describeGroups([groupId]);
        if (d.groups[0].state === 'Stable' && d.groups[0].members.length === 2) return d;
        await sleep(200);
      }
    })(), 30000, 'describeGroups: Stable with 2 members');
    assert(desc.groups[0].protocolType === 'consumer', `protocolType consumer: ${desc.groups[0].protocolType}`);
    // committed offsets reach the end of every partition
    await withTimeout((async () => {
      for (;;) {
        const offs = await admin.fetchOffsets({ groupId, topics: [topic] });
        const ends = await admin.fetchTopicOffsets(topic);
        const committed = Object.fromEntries(offs[0].partitions.map((p) => [p.partition, p.offset]));
        if (ends.every((e) => committed[e.partition] === e.high)) return;
        await sleep(300);
      }
    })(), 30000, 'committed offsets == high watermarks');
    const groups = await admin.listGroups();
    assert(groups.groups.some((g) => g.groupId === groupId), 'listGroups has the group');
    for (const c of consumers) await c.disconnect();
    consumers.length = 0;
    // a new member of the group starts from the committed offsets: nothing to read
    await producer.send({ topic, acks: -1, messages: [{ key: 'after', value: 'after' }] });
    const late = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
    consumers.push(late);
    await late.connect();
    await late.subscribe({ topic, fromBeginning: true });
    const lateSeen = [];
    let lateDone;
    const lateFinished = new Promise((r) => { lateDone = r; });
    await late.run({ eachMessage: async ({ message }) => { lateSeen.push(message.value.toString()); lateDone(); } });
    await withTimeout(lateFinished, 30000, 'rejoined member reads the new message');
    await sleep(500);
    assert(lateSeen.length === 1 && lateSeen[0] === 'after', `rejoined member read only "after": ${lateSeen}`);
    await late.disconnect();
    consumers.length = 0;
    // resetOffsets commits Kafka's EARLIEST sentinel (-2), which Kafka stores and returns as is
    await admin.resetOffsets({ groupId, topic, earliest: true });
    const reset = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert(reset[0].partitions.every((p) => p.offset === '-2'), `offsets reset to -2: ${JSON.stringify(reset)}`);
    await admin.setOffsets({ groupId, topic, partitions: [0, 1, 2, 3].map((p) => ({ partition: p, offset: String(p + 1) })) });
    const set = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert(set[0].partitions.every((p) => p.offset === String(p.partition + 1)), `offsets set to p+1: ${JSON.stringify(set)}`);
    await admin.deleteGroups([groupId]);
    const after = await admin.listGroups();
    assert(!after.groups.some((g) => g.groupId === groupId), 'group gone after deleteGroups');
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {});
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});

scenario('transactions', 'transactional producer: commit, abort, read_committed', async () => {
  const producer = kafka.producer({ transactionalId: `kjs-tx-${uid()}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const topic = `kjs-tx-${uid()}`;
    const inTransaction = async (value, commit) => {
      const tx = await withTimeout(producer.transaction(), 30000, 'begin transaction (InitProducerId with transactional id)');
      await tx.send({ topic, messages: [{ value, partition: 0 }] });
      await (commit ? tx.commit() : tx.abort());
    };
    await inTransaction('tx-committed', true);
    await inTransaction('tx-aborted', false);
    await inTransaction('tx-last', true);
    // kafkajs consumers read committed records only by default (readUncommitted: false).
    const got = await readAll(topic, 2);
    const values = got.map((m) => m.value);
    assert(JSON.stringify(values) === JSON.stringify(['tx-committed', 'tx-last']),
      `read_committed sees the commits only: ${JSON.stringify(values)}`);
  } finally {
    await producer.disconnect();
  }
});

async function main() {
  const results = [];
  for (const s of scenarios) {
    if (only.length && !only.some((o) => s.feature.startsWith(o) || s.name.includes(o))) continue;
    const t0 = Date.now();
    let state = 'PASSED';
    let detail = '';
    try {
      await withTimeout(s.fn(), 120000, s.name);
    } catch (e) {
      state = 'FAILED';
      detail = `${e.name || 'Error'}: ${e.message}${e.type ? ` (${e.type})` : ''}`;
    }
    const seconds = (Date.now() - t0) / 1000;
    console.error(`kafkajs ${s.feature} | ${s.name} | ${state} ${detail} (${seconds.toFixed(1)}s)`);
    results.push({ feature: s.feature, scenario: s.name, state, detail, seconds });
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
