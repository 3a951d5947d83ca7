// mirror(): what reaches the WAL when Kafka's offsets are not simple, against a real broker.
// Aborted transactions of overlapping producers (read_committed), a checkpoint whose offset Kafka no
// longer has (records deleted before they were mirrored, a topic re-created, also while the mirror
// runs), rebalances, and 'dense' mode in a log other writers append to (concurrently, and between
// mirror runs).
import test from 'ava';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, fastConsumer, topicOffsets, signal, gatedWal, produceRecords, makeRecord, canon } from './fixtures/kafka-records.js';
import { mirror, runMirror, optionsFromEnv, mirrorCheckpoint, sourceOffset, checkpointName, kafkajsPort, committedRecords } from '../dist/connectors/kafka/index.js';
import { WriteAhead, WalError } from '../dist/src/index.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const kb = useBroker(test);
const tmp = tempDirs(test);

/** A new single-partition topic and a client. */
async function newTopic(id) {
  const kafka = kafkaClient(kb.brokers, id);
  const topic = uniqueTopic(id);
  await createTopic(kafka, topic, 1);
  return { kafka, topic };
}

/** One produce request (so one record batch) per value, to partition 0. */
async function produceEach(kafka, topic, values) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (const v of values) await producer.send({ topic, acks: -1, messages: [{ partition: 0, value: Buffer.from(v) }] });
  } finally {
    await producer.disconnect();
  }
}

/** One produce request (so one record batch) holding all of `values`, to partition 0. */
async function produceBatch(kafka, topic, values) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((v) => ({ partition: 0, value: Buffer.from(v) })) });
  } finally {
    await producer.disconnect();
  }
}

/** [offset, value] of every record of a WAL partition. */
/** Wakes `changed` on each batch and offsetReset of mirror `m` and when it ends; keeps its events and outcome. */
function watch(m) {
  const w = { changed: signal(), events: [], failed: null, settled: false };
  m.on('batch', () => w.changed.notify());
  m.on('offsetReset', (e) => { w.events.push(e); w.changed.notify(); });
  m.done.then(() => { w.settled = true; w.changed.notify(); }, (err) => { w.failed = err; w.settled = true; w.changed.notify(); });
  return w;
}

async function walRecords(wal, p = 0) {
  const out = [];
  for await (const r of wal.iterate(p)) out.push([r.offset, r.value === null ? null : r.value.toString()]);
  return out;
}

async function deleteRecordsBefore(kafka, topic, offset) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(offset) }] });
  } finally {
    await admin.disconnect();
  }
  const [{ low }] = await topicOffsets(kafka, topic);
  if (low !== offset) throw new Error(`deleteRecords: the partition starts at ${low}, not ${offset}`);
}

/** Two transactional producers (and a plain one) on partition 0 of `topic`. */
async function transactionalProducers(kafka, topic) {
  const mk = async (id) => {
    const p = kafka.producer({ transactionalId: `${topic}-${id}`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await p.connect();
    return p;
  };
  const p1 = await mk('p1');
  const p2 = await mk('p2');
  const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await plain.connect();
  const send = (to, v) => to.send({ topic, acks: -1, messages: [{ partition: 0, value: Buffer.from(v) }] });
  return { p1, p2, plain, send, close: () => Promise.all([p1.disconnect(), p2.disconnect(), plain.disconnect()]) };
}

/**
 * Every record of partition 0 as the broker stores it, control records included, read with
 * read_uncommitted (so no aborted-transaction filter is involved): { offset, value, control, pid }.
 */
async function rawLog(kafka, topic) {
  const [{ high }] = await topicOffsets(kafka, topic);
  const consumer = kafka.consumer({ groupId: `raw-${topic}`, readUncommitted: true, ...fastConsumer });
  const out = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${topic}: read ${out.length} records of ${high}`)), 30_000);
      consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messagesWithinOffset) {
            out.push({ offset: Number(m.offset), value: m.isControlRecord ? null : m.value.toString(), control: m.isControlRecord, pid: m.batchContext.producerId });
          }
          if (Number(batch.lastOffset()) + 1 >= high) { clearTimeout(timer); resolve(); }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/**
 * Mirrors `topic` to its end in both offset modes; checks that exactly the records whose value
 * starts with 'committed' reached each WAL. Returns the raw log.
 */
async function checkOnlyCommitted(t, kafka, topic, consumer) {
  const [{ high }] = await topicOffsets(kafka, topic);
  const raw = await rawLog(kafka, topic);
  t.is(raw.length, high, 'the raw log, markers included');
  // A transaction's abort() returns before its marker is written: read where they landed.
  const committed = raw.filter((r) => r.value?.startsWith('committed')).map((r) => [r.offset, r.value]);
  for (const offsets of ['preserve', 'dense']) {
    const dir = tmp(`abort-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dir, offsets, stopAtEnd: true, consumer, groupId: `g-${offsets}-${topic}` });
    t.is((await m.done).records, committed.length, offsets);
    const wal = await WriteAhead.open(dir, { readOnly: true });
    try {
      const got = await walRecords(wal);
      t.deepEqual(got.map(([, v]) => v), committed.map(([, v]) => v), offsets);
      if (offsets === 'preserve') t.deepEqual(got.map(([o]) => o), committed.map(([o]) => o));
      t.is(mirrorCheckpoint(wal, topic, 0).next, high, `${offsets}: past the last marker`);
    } finally {
      await wal.close();
    }
  }
  // replay reads target tails through the same kafkajs batches: they must not show aborted records either.
  const port = kafkajsPort(kafka);
  try {
    t.deepEqual((await port.tail(topic, 0, 100)).map((m) => [m.offset, m.value.toString()]), committed);
  } finally {
    await port.close();
  }
  return raw;
}

test('two producers\' transactions aborted in another order than they began never reach the WAL', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('abort-order');
  const { p1, p2, plain, send, close } = await transactionalProducers(kafka, topic);
  await send(plain, 'committed-0');
  const t2 = await p2.transaction();
  await send(t2, 'ABORTED-p2-a'); // P2 begins first
  const t1 = await p1.transaction();
  await send(t1, 'ABORTED-p1-a'); // then P1
  await send(t2, 'ABORTED-p2-b');
  await t1.abort(); // P1 is aborted first: the broker lists P1's transaction before P2's
  await t2.abort();
  await send(plain, 'committed-1');
  const t3 = await p1.transaction();
  await send(t3, 'committed-p1'); // a later transaction of P1, committed
  await t3.commit();
  await close();
  const raw = await checkOnlyCommitted(t, kafka, topic, fastConsumer);
  const pid = (v) => raw.find((r) => r.value === v).pid;
  t.deepEqual(raw.filter((r) => r.control).slice(0, 2).map((r) => r.pid), [pid('ABORTED-p1-a'), pid('ABORTED-p2-a')], 'the later transaction was aborted first');
  t.true(raw.find((r) => r.value === 'ABORTED-p2-a').offset < raw.find((r) => r.value === 'ABORTED-p1-a').offset, 'and began last');
});

test('a fetch that starts inside two overlapping aborted transactions passes none of their records', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('abort-boundary');
  const { p1, p2, plain, send, close } = await transactionalProducers(kafka, topic);
  await send(plain, 'committed-0');
  const t1 = await p1.transaction();
  await send(t1, 'ABORTED-p1-a');
  const t2 = await p2.transaction();
  await send(t2, 'ABORTED-p2-a');
  await send(t2, 'ABORTED-p2-b');
  await send(t1, 'ABORTED-p1-b');
  // Aborted in the order they began (the broker's list is sorted), yet a fetch from
  // ABORTED-p2-a on starts with both already begun.
  await t1.abort();
  await t2.abort();
  await send(plain, 'committed-1');
  await close();
  // One record batch per fetch (each send above is one): fetches start at every offset.
  await checkOnlyCommitted(t, kafka, topic, { ...fastConsumer, maxBytesPerPartition: 1 });
});

test('committedRecords: only an abort marker (a control record) ends a producer\'s aborted range', (t) => {
  const rec = (offset, value, { pid = '7', tx = true, control = false, key = null } = {}) =>
    ({ offset: String(offset), key, value, isControlRecord: control, batchContext: { producerId: pid, inTransaction: tx } });
  const zeros = Buffer.alloc(4);
  const records = [
    rec(10, 'aborted', { key: zeros }), // a data record whose key happens to look like an abort marker's
    rec(11, 'aborted too'),
    rec(12, null, { control: true, key: Buffer.from([0, 0, 0, 1]) }), // a COMMIT marker of the same producer ends nothing
    rec(13, 'still aborted'),
    rec(14, null, { control: true, key: zeros }), // its ABORT marker
    rec(15, 'later, committed'),
    rec(16, 'not transactional', { tx: false, pid: '-1' }),
  ];
  t.deepEqual(committedRecords(records, [{ producerId: '7', firstOffset: '10' }]).map((m) => m.value), ['later, committed', 'not transactional']);
  t.deepEqual(committedRecords(records, []).map((m) => m.offset), ['10', '11', '13', '15', '16'], 'no aborted transaction: only control records go');
});

test('records deleted from Kafka before they were mirrored: the mirror refuses to start, or with onOffsetReset: \'earliest\' says what it skipped', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('reset-deleted');
  await produceEach(kafka, topic, ['a0', 'a1', 'a2', 'a3', 'a4']);
  const dir = tmp('reset-deleted');
  const groupId = `g-${topic}`;
  const first = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId });
  t.is((await first.done).records, 5);
  await produceEach(kafka, topic, ['b5', 'b6', 'b7', 'b8', 'b9']);
  await deleteRecordsBefore(kafka, topic, 8); // 5, 6 and 7 are gone before the mirror saw them

  const err = await t.throwsAsync(mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId }), { code: 'OFFSET_TRIMMED', instanceOf: WalError });
  t.like(err.details, { partition: 0, offset: 5, start: 8, topic });
  t.regex(err.message, /offsets 5 to 7 were deleted/);
  t.regex(err.message, /onOffsetReset: 'earliest'/);
  let wal = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual((await walRecords(wal)).map(([o]) => o), [0, 1, 2, 3, 4], 'nothing written');
  t.is(mirrorCheckpoint(wal, topic, 0).next, 5);
  await wal.close();

  const m = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId, onOffsetReset: 'earliest' });
  const events = [];
  m.on('offsetReset', (e) => events.push(e));
  const done = await m.done;
  t.deepEqual(events, [{ partition: 0, reason: 'deleted', expected: 5, resumedAt: 8, skipped: 3 }]);
  t.like(done, { records: 2, offsetResets: 1, skippedOffsets: 3 });
  t.like(done.partitions[0], { next: 10, offsetResets: 1, skippedOffsets: 3 });
  wal = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual(await walRecords(wal), [[0, 'a0'], [1, 'a1'], [2, 'a2'], [3, 'a3'], [4, 'a4'], [8, 'b8'], [9, 'b9']]);
  await wal.close();
});

test('onOffsetReset is checked like any option, read from WRITEAHEAD_ON_OFFSET_RESET, and runMirror logs each reset', async (t) => {
  t.timeout(120_000);
  const bad = await t.throwsAsync(mirror({ kafka: { consumer() {}, producer() {}, admin() {} }, topic: 't', wal: tmp('reset-opt'), onOffsetReset: 'latest' }), { code: 'INVALID_OPTION' });
  t.is(bad.details.option, 'onOffsetReset');
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_ON_OFFSET_RESET: 'earliest' }), { onOffsetReset: 'earliest' });
  t.throws(() => optionsFromEnv({ WRITEAHEAD_ON_OFFSET_RESET: 'skip' }), { code: 'INVALID_OPTION', message: /WRITEAHEAD_ON_OFFSET_RESET/ });

  const { kafka, topic } = await newTopic('reset-bridge');
  await produceEach(kafka, topic, ['a0', 'a1', 'a2']);
  const dir = tmp('reset-bridge');
  const options = { kafka: { brokers: kb.brokers }, dir, topic, stopAtEnd: true, consumer: fastConsumer, lagIntervalMs: 0, handleSignals: false };
  t.is((await runMirror({ ...options, log: () => {} })).records, 3);
  await produceEach(kafka, topic, ['b3', 'b4', 'b5']);
  await deleteRecordsBefore(kafka, topic, 4);
  const failed = [];
  await t.throwsAsync(runMirror({ ...options, log: (e) => failed.push(e) }), { code: 'OFFSET_TRIMMED' });
  t.like(failed.at(-1), { level: 'fatal', msg: 'failed', code: 'OFFSET_TRIMMED' });
  const logged = [];
  const done = await runMirror({ ...options, onOffsetReset: 'earliest', log: (e) => logged.push(e) });
  t.like(done, { records: 2, offsetResets: 1, skippedOffsets: 1 });
  t.deepEqual(logged.filter((e) => e.msg === 'offset reset'), [{ level: 'warn', msg: 'offset reset', bridge: 'mirror', topic, partition: 0, reason: 'deleted', expected: 3, resumedAt: 4, skipped: 1 }]);
});


for (const onOffsetReset of ['error', 'earliest']) {
  test(`records deleted while the mirror is behind are never skipped silently (onOffsetReset: '${onOffsetReset}')`, async (t) => {
    t.timeout(120_000);
    const { kafka, topic } = await newTopic(`reset-live-${onOffsetReset}`);
    const values = Array.from({ length: 10 }, (_, i) => `r${i}`);
    await produceEach(kafka, topic, values);
    const real = await WriteAhead.open(tmp('reset-live'), { partitions: 1 });
    const gate = gatedWal(real);
    // One record batch per fetch; the consumer holds at most one batch beside the one being
    // appended, so while record 0 waits at the gate it has fetched no further than offset 1.
    const m = await mirror({ kafka, topic, wal: gate.wal, stopAtEnd: true, consumer: { ...fastConsumer, maxBytesPerPartition: 1 }, onOffsetReset });
    const events = [];
    m.on('offsetReset', (e) => events.push(e));
    await gate.held();
    await deleteRecordsBefore(kafka, topic, 5);
    gate.open();
    try {
      let expected;
      if (onOffsetReset === 'error') {
        const err = await t.throwsAsync(m.done, { code: 'OFFSET_TRIMMED' });
        expected = err.details.offset;
        t.like(err.details, { partition: 0, start: 5 });
        t.deepEqual(events, []);
        t.is(mirrorCheckpoint(real, topic, 0).next, expected);
      } else {
        const done = await m.done;
        t.is(events.length, 1);
        expected = events[0].expected;
        t.deepEqual(events, [{ partition: 0, reason: 'deleted', expected, resumedAt: 5, skipped: 5 - expected }]);
        t.like(done, { offsetResets: 1, skippedOffsets: 5 - expected });
      }
      t.true(expected === 1 || expected === 2, `the consumer was at ${expected}`);
      const kept = values.map((v, i) => [i, v]).filter(([i]) => i < expected || (onOffsetReset === 'earliest' && i >= 5));
      t.deepEqual(await walRecords(real), kept);
    } finally {
      await real.close();
    }
  });
}

test('records deleted while the mirror runs, up to an aborted transaction: the reset resumes where Kafka now starts, and skips only the deleted offsets', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('reset-live-aborted');
  await produceEach(kafka, topic, ['r0', 'r1', 'r2', 'r3', 'r4']);
  const { p1, plain, send, close } = await transactionalProducers(kafka, topic);
  const tx = await p1.transaction();
  await send(tx, 'ABORTED-5');
  await send(tx, 'ABORTED-6');
  await tx.abort();
  await send(plain, 'r8');
  await close();
  // (abort() returns before its marker is written: the marker is offset 7 or 8.)
  t.deepEqual((await rawLog(kafka, topic)).slice(0, 7).map((r) => r.value), ['r0', 'r1', 'r2', 'r3', 'r4', 'ABORTED-5', 'ABORTED-6']);
  const real = await WriteAhead.open(tmp('reset-live-aborted'), { partitions: 1 });
  const gate = gatedWal(real);
  // As above: while record 0 waits at the gate, the consumer has fetched no further than offset 1.
  const m = await mirror({ kafka, topic, wal: gate.wal, offsets: 'dense', stopAtEnd: true, consumer: { ...fastConsumer, maxBytesPerPartition: 1 }, onOffsetReset: 'earliest' });
  const events = [];
  m.on('offsetReset', (e) => events.push(e));
  await gate.held();
  await deleteRecordsBefore(kafka, topic, 5); // Kafka now starts with the aborted transaction
  gate.open();
  try {
    const done = await m.done;
    t.is(events.length, 1);
    const { expected } = events[0];
    t.true(expected === 1 || expected === 2, `the consumer was at ${expected}`);
    // Offsets 5 and 6 (and the marker) were not deleted: aborted records, which no mirror writes.
    t.deepEqual(events, [{ partition: 0, reason: 'deleted', expected, resumedAt: 5, skipped: 5 - expected }]);
    t.like(done, { offsetResets: 1, skippedOffsets: 5 - expected });
    t.deepEqual((await walRecords(real)).map(([, v]) => v), [...['r0', 'r1', 'r2', 'r3', 'r4'].slice(0, expected), 'r8']);
  } finally {
    await real.close();
  }
});

/** Deletes `topic` and creates it again, empty. */
async function recreateTopic(kafka, topic) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
    // Deletion finishes in the background: the name is free once creating it succeeds.
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        if (await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] }], waitForLeaders: false })) break;
      } catch (err) {
        if (err.type !== 'TOPIC_ALREADY_EXISTS' && !err.errors?.some?.((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw err;
      }
      if (Date.now() > deadline) throw new Error(`${topic} could not be created again`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)));
    }
  } finally {
    await admin.disconnect();
  }
  await createTopic(kafka, topic, 1); // waits for its leader
  const [{ low, high }] = await topicOffsets(kafka, topic);
  if (low !== 0 || high !== 0) throw new Error(`${topic} was not created anew (offsets ${low}..${high})`);
}

test('a topic deleted and re-created behind a mirrored WAL: the mirror refuses to start, or (dense, onOffsetReset: \'earliest\') mirrors the new records after the old', async (t) => {
  t.timeout(180_000);
  const { kafka, topic } = await newTopic('reset-recreated');
  await produceEach(kafka, topic, Array.from({ length: 10 }, (_, i) => `old${i}`));
  const dirs = {};
  for (const offsets of ['preserve', 'dense']) {
    dirs[offsets] = tmp(`reset-recreated-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dirs[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${offsets}-${topic}` });
    t.is((await m.done).records, 10);
  }
  await recreateTopic(kafka, topic);
  await produceEach(kafka, topic, ['new0', 'new1', 'new2', 'new3']);

  const start = (offsets, more = {}) => mirror({ kafka, topic, wal: dirs[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g2-${offsets}-${topic}`, ...more });
  for (const offsets of ['preserve', 'dense']) {
    const err = await t.throwsAsync(start(offsets), { code: 'OFFSET_OUT_OF_RANGE' });
    t.like(err.details, { partition: 0, offset: 10, start: 0, end: 4, topic });
    t.regex(err.message, /deleted and re-created, or truncated/);
  }
  // 'preserve' keeps Kafka's offsets, and the new ones are below what the WAL holds.
  const refused = await t.throwsAsync(start('preserve', { onOffsetReset: 'earliest' }), { code: 'OFFSET_OUT_OF_RANGE' });
  t.regex(refused.message, /new WAL/);

  const m = await start('dense', { onOffsetReset: 'earliest' });
  const events = [];
  m.on('offsetReset', (e) => events.push(e));
  const done = await m.done;
  t.deepEqual(events, [{ partition: 0, reason: 'restarted', expected: 10, resumedAt: 0, skipped: 0 }]);
  t.like(done, { records: 4, offsetResets: 1, skippedOffsets: 0 });
  for (const offsets of ['preserve', 'dense']) {
    const wal = await WriteAhead.open(dirs[offsets], { readOnly: true });
    try {
      const values = (await walRecords(wal)).map(([, v]) => v);
      const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
      if (offsets === 'preserve') {
        t.deepEqual(values, old, 'nothing written');
        t.is(mirrorCheckpoint(wal, topic, 0).next, 10);
      } else {
        t.deepEqual(values, [...old, 'new0', 'new1', 'new2', 'new3']);
        t.is(mirrorCheckpoint(wal, topic, 0).next, 4);
        t.deepEqual(Array.from({ length: 14 }, (_, w) => sourceOffset(wal, topic, 0, w)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3]);
      }
    } finally {
      await wal.close();
    }
  }
});

/**
 * The kafkajs port, recording what readAt (the check of the last mirrored record) was asked and
 * found: { partition, offset, found }, found as canon() of the record, 'not-data' or null.
 * `readAt: false`: a port without the capability.
 */
function recordingPort(kafka, { readAt = true } = {}) {
  const port = kafkajsPort(kafka, { consumer: fastConsumer });
  const reads = [];
  const wrapped = {
    describe: (topic) => port.describe(topic),
    consume: (o) => port.consume(o),
    producer: () => port.producer(),
    tail: (...a) => port.tail(...a),
    close: () => port.close(),
  };
  if (readAt) {
    wrapped.readAt = async (topic, at) => {
      const found = await port.readAt(topic, at);
      at.forEach((a, i) => reads.push({ ...a, found: found[i] === null || found[i] === 'not-data' ? found[i] : canon(found[i]) }));
      return found;
    };
  }
  return { port: wrapped, reads };
}

test('port readAt: the committed data record at an offset; \'not-data\' for a transaction marker or an aborted record; null outside the partition\'s offsets', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('read-at');
  const { p1, plain, send, close } = await transactionalProducers(kafka, topic);
  await send(plain, 'c0');
  const aborted = await p1.transaction();
  await send(aborted, 'ABORTED-a');
  await send(aborted, 'ABORTED-b');
  await aborted.abort();
  const committed = await p1.transaction();
  await send(committed, 'tx-c'); // begins once the abort marker is written
  await committed.commit();
  await close();
  await untilOffsets(kafka, topic, 6);
  const raw = await rawLog(kafka, topic);
  t.deepEqual(raw.map((r) => r.control ? 'marker' : r.value), ['c0', 'ABORTED-a', 'ABORTED-b', 'marker', 'tx-c', 'marker']);
  await deleteRecordsBefore(kafka, topic, 1);
  const port = kafkajsPort(kafka);
  try {
    const at = [0, 1, 2, 3, 4, 5, 6, 7].map((offset) => ({ partition: 0, offset }));
    const found = await port.readAt(topic, at);
    t.deepEqual(found.map((f) => f === null || f === 'not-data' ? f : f.value.toString()), [null, 'not-data', 'not-data', 'not-data', 'tx-c', 'not-data', null, null]);
    t.like(found[4], { offset: 4, key: null, headers: [] });
    t.deepEqual(await port.readAt(topic, []), []);
  } finally {
    await port.close();
  }
});

test.serial('port readAt over many partitions: every answer right, with at most 8 fetches in flight (a broker answers one request per connection at a time, and kafkajs times each from when it was sent)', async (t) => {
  t.timeout(120_000);
  const PARTITIONS = 50;
  const kafka = kafkaClient(kb.brokers, 'read-at-many');
  const topic = uniqueTopic('read-at-many');
  await createTopic(kafka, topic, PARTITIONS);
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, value: Buffer.from(`v${p}`) })) });
  } finally {
    await producer.disconnect();
  }
  // Counts the fetches of this topic in flight (every kafkajs fetch goes through Broker.prototype.fetch).
  const Broker = require('kafkajs/src/broker/index.js');
  const fetch = Broker.prototype.fetch;
  let inFlight = 0;
  let most = 0;
  let fetches = 0;
  Broker.prototype.fetch = async function (...args) {
    if (!args[0]?.topics?.some((x) => x.topic === topic)) return fetch.apply(this, args);
    fetches++;
    most = Math.max(most, ++inFlight);
    try {
      return await fetch.apply(this, args);
    } finally {
      inFlight--;
    }
  };
  const port = kafkajsPort(kafka);
  try {
    // Each partition at offset 0 (its record) and at 1 (past its end), in an order mixing them.
    const at = Array.from({ length: PARTITIONS }, (_, p) => [{ partition: p, offset: 0 }, { partition: (p * 7) % PARTITIONS, offset: 1 }]).flat();
    const found = await port.readAt(topic, at);
    t.deepEqual(found.map((f) => f === null || f === 'not-data' ? f : f.value.toString()), at.map(({ partition, offset }) => offset === 0 ? `v${partition}` : null));
    t.is(fetches, at.length, 'one fetch per request');
    t.true(most <= 8, `${most} fetches in flight at once`);
  } finally {
    Broker.prototype.fetch = fetch;
    await port.close();
  }
});

test('a topic deleted and re-created, and grown past the checkpoint while the mirror was stopped: the last mirrored record no longer matches (preserve: OFFSET_OUT_OF_RANGE, WAL untouched; dense with \'earliest\': every new record after the old)', async (t) => {
  t.timeout(180_000);
  const { kafka, topic } = await newTopic('recreated-grown');
  const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
  await produceEach(kafka, topic, old);
  const dirs = {};
  for (const offsets of ['preserve', 'dense']) {
    dirs[offsets] = tmp(`recreated-grown-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dirs[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${offsets}-${topic}` });
    t.is((await m.done).records, 10);
  }
  await recreateTopic(kafka, topic);
  const fresh = Array.from({ length: 15 }, (_, i) => `new${i}`);
  await produceEach(kafka, topic, fresh);
  t.deepEqual(await topicOffsets(kafka, topic), [{ partition: 0, low: 0, high: 15 }], 'past the checkpoint (10): its offset alone looks fine');

  const start = (offsets, more = {}) => mirror({ kafka, topic, wal: dirs[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g2-${offsets}-${topic}`, ...more });
  for (const [offsets, more] of [['preserve', {}], ['preserve', { onOffsetReset: 'earliest' }], ['dense', {}]]) {
    const err = await t.throwsAsync(start(offsets, more), { code: 'OFFSET_OUT_OF_RANGE', instanceOf: WalError }, `${offsets} ${JSON.stringify(more)}`);
    t.like(err.details, { partition: 0, offset: 10, start: 0, end: 15, topic, lastMirrored: 9 });
    t.regex(err.message, /Kafka offset 9, the last it mirrored, now holds another record \(its timestamp, value differ; the partition has offsets 0 to 14\): the topic was deleted and re-created/);
    t.regex(err.message, offsets === 'preserve' ? /into a new WAL/ : /onOffsetReset: 'earliest'/);
  }

  const m = await start('dense', { onOffsetReset: 'earliest' });
  const events = [];
  m.on('offsetReset', (e) => events.push(e));
  const done = await m.done;
  t.deepEqual(events, [{ partition: 0, reason: 'restarted', expected: 10, resumedAt: 0, skipped: 0 }]);
  t.like(done, { records: 15, offsetResets: 1, skippedOffsets: 0 });
  for (const offsets of ['preserve', 'dense']) {
    const wal = await WriteAhead.open(dirs[offsets], { readOnly: true });
    try {
      const values = (await walRecords(wal)).map(([, v]) => v);
      if (offsets === 'preserve') {
        t.deepEqual(values, old, 'nothing of the new topic under the old offsets');
        t.is(mirrorCheckpoint(wal, topic, 0).next, 10);
      } else {
        t.deepEqual(values, [...old, ...fresh], 'every new record, after the old');
        t.is(mirrorCheckpoint(wal, topic, 0).next, 15);
        t.deepEqual(Array.from({ length: 25 }, (_, w) => sourceOffset(wal, topic, 0, w)), [...old.keys(), ...fresh.keys()]);
      }
    } finally {
      await wal.close();
    }
  }

  // A port without readAt cannot be checked: the mirror continues at its checkpoint (documented).
  const { port } = recordingPort(kafka, { readAt: false });
  try {
    const unchecked = await mirror({ kafka: port, topic, wal: dirs.preserve, stopAtEnd: true, groupId: `g3-${topic}` });
    t.is((await unchecked.done).records, 5);
  } finally {
    await port.close();
  }
});

test('a restart from the same topic passes the check: the last mirrored record (a tombstone; headers with duplicates and null values) is read back as the WAL holds it, in both modes, also behind another writer\'s record', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'recheck-same');
  const topic = uniqueTopic('recheck-same');
  await createTopic(kafka, topic, 2);
  // Record i goes to partition i % 2: the last of partition 0 is record 10, of partition 1 record 11 (a tombstone).
  await produceRecords(kafka, topic, { to: 12, partitions: 2 });
  t.is(makeRecord(11).value, null);
  const wals = {};
  for (const offsets of ['preserve', 'dense']) {
    wals[offsets] = await WriteAhead.open(tmp(`recheck-same-${offsets}`), { partitions: 2 });
    const first = await mirror({ kafka, topic, wal: wals[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${offsets}-${topic}` });
    t.is((await first.done).records, 12);
  }
  await wals.dense.append(0, { value: Buffer.from('app') }); // the last record of WAL partition 0 is not the mirror's
  await produceRecords(kafka, topic, { from: 12, to: 20, partitions: 2 });
  try {
    for (const offsets of ['preserve', 'dense']) {
      const { port, reads } = recordingPort(kafka);
      try {
        const again = await mirror({ kafka: port, topic, wal: wals[offsets], offsets, stopAtEnd: true, groupId: `g-${offsets}-${topic}` });
        t.like(await again.done, { records: 8, offsetResets: 0 }, offsets);
        t.deepEqual(reads, [{ partition: 0, offset: 5, found: canon(makeRecord(10)) }, { partition: 1, offset: 5, found: canon(makeRecord(11)) }], offsets);
      } finally {
        await port.close();
      }
      for (const p of [0, 1]) {
        const got = [];
        for await (const r of wals[offsets].iterate(p)) if (r.value?.toString() !== 'app') got.push(canon(r));
        t.deepEqual(got, Array.from({ length: 10 }, (_, j) => canon(makeRecord(2 * j + p))), `${offsets}, partition ${p}`);
      }
    }
  } finally {
    await Promise.all(Object.values(wals).map((w) => w.close()));
  }
});

test('a WAL an earlier build mirrored with nullValues: \'empty\' (a tombstone stored as an empty value) passes the check: its last record, a tombstone in Kafka, is not taken for another topic\'s', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'recheck-empty-tombstone');
  const topic = uniqueTopic('recheck-empty-tombstone');
  await createTopic(kafka, topic, 1);
  await produceRecords(kafka, topic, { to: 12, partitions: 1 });
  t.is(makeRecord(11).value, null, 'the last record is a tombstone');
  // What the build before tombstones wrote with nullValues: 'empty': each record at its Kafka
  // offset, a null value as an empty one, and a v1 checkpoint in the same batch.
  const port = kafkajsPort(kafka);
  const dir = tmp('recheck-empty-tombstone');
  try {
    const records = await port.tail(topic, 0, 12);
    t.is(records.length, 12);
    const wal = await WriteAhead.open(dir, { partitions: 1 });
    await wal.appendBatch(0, records.map((m) => ({ key: m.key, value: m.value ?? Buffer.alloc(0), headers: m.headers, timestamp: m.timestamp })), {
      offsets: records.map((m) => m.offset),
      checkpoint: { name: checkpointName(topic), value: JSON.stringify({ v: 1, topic, partition: 0, mode: 'preserve', next: 12 }) },
    });
    await wal.close();
  } finally {
    await port.close();
  }
  await produceRecords(kafka, topic, { from: 12, to: 20, partitions: 1 });
  const m = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.like(await m.done, { records: 8, offsetResets: 0 });
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    const got = [];
    for await (const r of wal.iterate(0)) got.push(r.offset);
    t.deepEqual(got, Array.from({ length: 20 }, (_, i) => i));
  } finally {
    await wal.close();
  }
});

test('stopped while the last mirrored record is read back: the mirror stops without joining its consumer group', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('recheck-stop');
  await produceEach(kafka, topic, ['a', 'b', 'c']);
  const dir = tmp('recheck-stop');
  const first = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.is((await first.done).records, 3);
  await produceEach(kafka, topic, ['d']);
  const { port } = recordingPort(kafka);
  const readAt = port.readAt;
  const changed = signal();
  let asked = false;
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  port.readAt = async (...a) => { asked = true; changed.notify(); await released; return readAt(...a); };
  let consumed = 0;
  const consume = port.consume;
  port.consume = (o) => { consumed++; return consume(o); };
  const stop = new AbortController();
  try {
    const starting = mirror({ kafka: port, topic, wal: dir, groupId: `g-${topic}`, signal: stop.signal });
    await changed.until(() => asked, { what: 'readAt' });
    stop.abort();
    release();
    const m = await starting;
    t.like(await m.done, { records: 0 });
    t.is(consumed, 0, 'no consumer joined the group');
  } finally {
    release();
    await port.close();
  }
});

test('a kafkajs instance that does not expose its cluster (another kafkajs version, or a wrapper): the check cannot read back, and a restart continues as before the check', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('recheck-no-cluster');
  await produceEach(kafka, topic, ['a', 'b', 'c']);
  // kafkajs's Kafka without its private symbols, as a kafkajs whose internals differ from 2.2's.
  const bare = { consumer: (o) => kafka.consumer(o), producer: (o) => kafka.producer(o), admin: (o) => kafka.admin(o), logger: () => kafka.logger() };
  const dir = tmp('recheck-no-cluster');
  const first = await mirror({ kafka: bare, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.is((await first.done).records, 3);
  await produceEach(kafka, topic, ['d']);
  const again = await mirror({ kafka: bare, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.like(await again.done, { records: 1, offsetResets: 0 });
});

test('a compacted topic whose last mirrored record the cleaner removed: the check cannot tell, and the restart continues from the checkpoint', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'recheck-compacted');
  const topic = uniqueTopic('recheck-compacted');
  // Segments of 1 MiB (the least Kafka allows): only a rolled segment is cleaned.
  await createTopic(kafka, topic, 1, { 'cleanup.policy': 'compact', 'segment.bytes': String(1 << 20), 'min.cleanable.dirty.ratio': '0.01', 'min.compaction.lag.ms': '0' });
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const round = (r) => Array.from({ length: 10 }, (_, k) => ({ key: `k${k}`, value: Buffer.alloc(20_000, 10 * r + k) }));
  const dirs = { preserve: tmp('recheck-compacted-preserve'), dense: tmp('recheck-compacted-dense') };
  try {
    await producer.send({ topic, acks: -1, messages: round(0) }); // offsets 0-9: the mirror's last record is k9 at 9
    for (const offsets of ['preserve', 'dense']) {
      const m = await mirror({ kafka, topic, wal: dirs[offsets], offsets, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${offsets}-${topic}` });
      t.is((await m.done).records, 10);
    }
    // Every key written again (10-39), tombstones for k0-k2 (40-42): ~800 kB, all in the first
    // segment. A last record that does not fit beside them rolls it (43).
    await producer.send({ topic, acks: -1, messages: [...round(1), ...round(2), ...round(3), ...[0, 1, 2].map((k) => ({ key: `k${k}`, value: null }))] });
    await producer.send({ topic, acks: -1, messages: [{ key: 'last', value: Buffer.alloc(300_000, 7) }] });
  } finally {
    await producer.disconnect();
  }
  // The cleaner runs on its own schedule and tells no client: look until offset 9 is gone.
  const port = kafkajsPort(kafka);
  let cleaned;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      cleaned = await port.tail(topic, 0, 100);
      if (!cleaned.some((m) => m.offset === 9) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await port.close();
  }
  t.deepEqual(cleaned.map((m) => m.offset), [33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43], 'the broker compacted the first segment');
  for (const offsets of ['preserve', 'dense']) {
    const { port: recording, reads } = recordingPort(kafka);
    try {
      const m = await mirror({ kafka: recording, topic, wal: dirs[offsets], offsets, stopAtEnd: true, groupId: `g-${offsets}-${topic}` });
      t.like(await m.done, { records: 11, offsetResets: 0 }, offsets);
      t.deepEqual(reads, [{ partition: 0, offset: 9, found: null }], `${offsets}: Kafka holds nothing at offset 9 any more`);
    } finally {
      await recording.close();
    }
    const wal = await WriteAhead.open(dirs[offsets], { readOnly: true });
    try {
      const got = [];
      for await (const r of wal.iterate(0)) got.push([offsets === 'preserve' ? r.offset : sourceOffset(wal, topic, 0, r.offset), r.key.toString()]);
      t.deepEqual(got, [...Array.from({ length: 10 }, (_, k) => [k, `k${k}`]), ...cleaned.map((m) => [m.offset, m.key.toString()])], offsets);
    } finally {
      await wal.close();
    }
  }
});

test('a transactional topic: the check reads the last data record, not the marker before the checkpoint; re-created with a marker at that offset, it is refused', async (t) => {
  t.timeout(180_000);
  const { kafka, topic } = await newTopic('recheck-tx');
  /** One committed transaction per list of values, each on a new transactional producer; the records of the whole log: [offset, value | 'marker']. */
  const transactions = async (lists) => {
    const producer = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    try {
      // A transaction begins only once the previous one's markers are written: each list follows the last marker.
      for (const values of lists) {
        const tx = await producer.transaction();
        await tx.send({ topic, acks: -1, messages: values.map((v) => ({ partition: 0, value: Buffer.from(v) })) });
        await tx.commit();
      }
    } finally {
      await producer.disconnect();
    }
  };
  const layout = async () => (await rawLog(kafka, topic)).map((r) => [r.offset, r.control ? 'marker' : r.value]);
  await transactions([['t0', 't1', 't2']]);
  // (commit() returns before its marker is written: wait until the marker is there.)
  await untilOffsets(kafka, topic, 4);
  t.deepEqual(await layout(), [[0, 't0'], [1, 't1'], [2, 't2'], [3, 'marker']]);
  const dir = tmp('recheck-tx');
  const first = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.is((await first.done).records, 3);
  await transactions([['t4', 't5']]);
  await untilOffsets(kafka, topic, 7);
  const { port, reads } = recordingPort(kafka);
  try {
    const again = await mirror({ kafka: port, topic, wal: dir, stopAtEnd: true, groupId: `g-${topic}` });
    t.like(await again.done, { records: 2, offsetResets: 0 });
    t.deepEqual(reads.map(({ offset, found }) => [offset, found && found.value]), [[2, Buffer.from('t2').toString('hex')]], 'offset 2, the last data record; 3 (before the checkpoint, 4) is the marker');

    // Re-created: offset 5 (the last mirrored record now) is a marker, and the topic has grown past 7.
    await recreateTopic(kafka, topic);
    await transactions([['n0', 'n1', 'n2', 'n3', 'n4'], ['n6', 'n7']]);
    await untilOffsets(kafka, topic, 9);
    t.deepEqual((await layout()).slice(5, 6), [[5, 'marker']]);
    reads.length = 0;
    const err = await t.throwsAsync(mirror({ kafka: port, topic, wal: dir, stopAtEnd: true, groupId: `g-${topic}` }), { code: 'OFFSET_OUT_OF_RANGE' });
    t.deepEqual(reads, [{ partition: 0, offset: 5, found: 'not-data' }]);
    t.like(err.details, { partition: 0, offset: 7, start: 0, end: 9, lastMirrored: 5 });
    t.regex(err.message, /Kafka offset 5, the last it mirrored, now holds a transaction marker or a record of an aborted transaction/);
  } finally {
    await port.close();
  }
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    t.deepEqual(await walRecords(wal), [[0, 't0'], [1, 't1'], [2, 't2'], [4, 't4'], [5, 't5']]);
    t.is(mirrorCheckpoint(wal, topic, 0).next, 7);
  } finally {
    await wal.close();
  }
});

/** Waits until partition 0 of `topic` has `high` offsets (a transaction's marker lands after commit() returns, and tells no client). */
async function untilOffsets(kafka, topic, high) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [{ high: now }] = await topicOffsets(kafka, topic);
    if (now >= high) return;
    if (Date.now() > deadline) throw new Error(`${topic}: ${now} offsets, not ${high}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('dense mode while the application appends to the same partition: every record mirrored once, and sourceOffset tells them apart', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('dense-concurrent');
  const wal = await WriteAhead.open(tmp('dense-concurrent'), { partitions: 1 });
  const m = await mirror({ kafka, topic, wal, offsets: 'dense', consumer: fastConsumer, groupId: `g-${topic}` });
  const changed = signal();
  m.on('batch', () => changed.notify());
  let failed = null;
  m.done.catch((err) => { failed = err; changed.notify(); });
  let stop = false;
  const appOffsets = new Set();
  const app = (async () => {
    for (let n = 0; !stop; n += 20) {
      const offsets = await Promise.all(Array.from({ length: 20 }, (_, i) => wal.append(0, { value: Buffer.from(`app-${n + i}`) })));
      for (const o of offsets) appOffsets.add(o);
    }
  })();
  const N = 2000;
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let s = 0; s < N; s += 100) await producer.send({ topic, acks: -1, messages: Array.from({ length: 100 }, (_, j) => ({ partition: 0, value: Buffer.from(`kafka-${s + j}`) })) });
  await producer.disconnect();
  try {
    await changed.until(() => failed !== null || m.status().partitions[0]?.next === N, { what: 'every record mirrored', timeoutMs: 60_000 });
  } finally {
    stop = true;
    await app;
  }
  t.is(failed, null, String(failed?.message));
  await m.stop();
  try {
    const records = await walRecords(wal);
    const mirrored = records.filter(([, v]) => v.startsWith('kafka-'));
    t.deepEqual(mirrored.map(([, v]) => v), Array.from({ length: N }, (_, i) => `kafka-${i}`), 'each Kafka record once, in order');
    const between = records.filter(([o, v]) => v.startsWith('app-') && o > mirrored[0][0] && o < mirrored.at(-1)[0]);
    t.true(between.length > 0, 'the application\'s records are interleaved with the mirrored ones');
    t.deepEqual(mirrored.map(([o]) => sourceOffset(wal, topic, 0, o)), Array.from({ length: N }, (_, i) => i));
    const apps = records.filter(([, v]) => v.startsWith('app-'));
    t.is(apps.length, appOffsets.size);
    t.deepEqual(apps.filter(([o]) => sourceOffset(wal, topic, 0, o) !== null), [], 'no application record has a Kafka offset');
  } finally {
    await wal.close();
  }
});

/**
 * A WAL where another writer appends a record whenever the mirror asks for the partition's offsets,
 * that is just before each of its batches: that record is still being committed when the batch is
 * appended, so the batch lands after it, past the log's published end. The record is identical to
 * the mirrored ones (same value, no key, no headers): only its position tells it apart.
 * `dieAt`: the mirror's n-th batch (1-based) is not committed (the process died).
 */
function crowdedWal(real, value, { dieAt = 0 } = {}) {
  const foreign = [];
  const ahead = [];
  let batches = 0;
  const wal = new Proxy(real, {
    get(target, prop) {
      if (prop === 'offsets') {
        return (p) => {
          foreign.push(target.append(p, { value: Buffer.from(value) }));
          const o = target.offsets(p);
          ahead.push(o.pending > o.end);
          return o;
        };
      }
      if (prop === 'appendBatch') {
        return (p, records, options) => {
          if (records.length > 0 && ++batches === dieAt) return Promise.reject(new WalError('IO_ERROR', 'injected: the process died before the batch was committed'));
          return target.appendBatch(p, records, options);
        };
      }
      return Reflect.get(target, prop, target);
    },
  });
  return { wal, foreign, ahead };
}

test('dense mode: a batch appended while another writer\'s identical record is being committed is placed exactly, also across a crash', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('dense-crowded');
  await produceBatch(kafka, topic, ['same', 'same', 'same']);
  await produceBatch(kafka, topic, ['same', 'same']);
  const consumer = { ...fastConsumer, maxBytesPerPartition: 1 }; // two batches: Kafka 0-2, then 3-4
  /** sourceOffset of every WAL record, checked against which records the other writer appended. */
  const check = async (wal, foreignOffsets, mirrored) => {
    const records = await walRecords(wal);
    t.true(records.every(([, v]) => v === 'same'));
    const got = records.map(([o]) => sourceOffset(wal, topic, 0, o));
    const want = [];
    let k = 0;
    for (const [o] of records) want.push(foreignOffsets.has(o) ? null : k++);
    t.is(k, mirrored, 'the records the other writer did not append are the mirrored ones');
    t.deepEqual(got, want);
  };

  // One run: every batch lands after a foreign record still being committed.
  const real = await WriteAhead.open(tmp('dense-crowded'), { partitions: 1 });
  try {
    const crowded = crowdedWal(real, 'same');
    const m = await mirror({ kafka, topic, wal: crowded.wal, offsets: 'dense', stopAtEnd: true, consumer });
    t.is((await m.done).records, 5);
    t.true(crowded.ahead.length >= 2 && crowded.ahead.every(Boolean), 'each batch was appended while a foreign record was pending');
    await check(real, new Set(await Promise.all(crowded.foreign)), 5);
  } finally {
    await real.close();
  }

  // The process dies before the second batch is committed: the first batch's checkpoint, reopened
  // from disk, places it exactly, and the next start continues from it.
  const dir = tmp('dense-crowded-died');
  let wal = await WriteAhead.open(dir, { partitions: 1 });
  const dying = crowdedWal(wal, 'same', { dieAt: 2 });
  const m1 = await mirror({ kafka, topic, wal: dying.wal, offsets: 'dense', stopAtEnd: true, consumer });
  await t.throwsAsync(m1.done, { code: 'IO_ERROR', message: /injected/ });
  const foreign = new Set(await Promise.all(dying.foreign));
  await wal.close();
  wal = await WriteAhead.open(dir, { partitions: 1 });
  try {
    t.like(mirrorCheckpoint(wal, topic, 0), { v: 2, next: 3 });
    await check(wal, foreign, 3);
    const again = crowdedWal(wal, 'same');
    const m2 = await mirror({ kafka, topic, wal: again.wal, offsets: 'dense', stopAtEnd: true, consumer });
    t.is((await m2.done).records, 2);
    for (const o of await Promise.all(again.foreign)) foreign.add(o);
    await check(wal, foreign, 5);
  } finally {
    await wal.close();
  }
});

test('dense mode: a record the application appended between two mirror runs has no source offset', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('dense-foreign');
  const wal = await WriteAhead.open(tmp('dense-foreign'), { partitions: 1 });
  const run = async () => (await (await mirror({ kafka, topic, wal, offsets: 'dense', stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` })).done).records;
  try {
    await produceEach(kafka, topic, ['kafka-0', 'kafka-1', 'kafka-2']);
    t.is(await run(), 3);
    t.is(await wal.append(0, { value: Buffer.from('app') }), 3);
    await produceEach(kafka, topic, ['kafka-3', 'kafka-4']);
    t.is(await run(), 2);
    t.deepEqual((await walRecords(wal)).map(([, v]) => v), ['kafka-0', 'kafka-1', 'kafka-2', 'app', 'kafka-3', 'kafka-4']);
    t.deepEqual(Array.from({ length: 6 }, (_, w) => sourceOffset(wal, topic, 0, w)), [0, 1, 2, null, 3, 4]);
    t.is(sourceOffset(wal, topic, 0, 6), null, 'past the end');
  } finally {
    await wal.close();
  }
});

test('dense mode: a checkpoint written before runs had lengths still loads, answers, and is continued', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await newTopic('dense-legacy');
  await produceEach(kafka, topic, ['kafka-0', 'kafka-1', 'kafka-2', 'kafka-3', 'kafka-4']);
  // What the earlier code left: Kafka 0-2 at WAL 0-2, an application record at 3, Kafka 3-4 at 4-5,
  // and runs as [walOffset, kafkaOffset] pairs.
  const wal = await WriteAhead.open(tmp('dense-legacy'), { partitions: 1 });
  try {
    const legacy = (next, runs) => ({ name: checkpointName(topic), value: JSON.stringify({ v: 1, topic, partition: 0, mode: 'dense', next, runs }) });
    await wal.appendBatch(0, ['kafka-0', 'kafka-1', 'kafka-2'].map((v) => ({ value: Buffer.from(v) })), { checkpoint: legacy(3, [[0, 0]]) });
    await wal.append(0, { value: Buffer.from('app') });
    await wal.appendBatch(0, ['kafka-3', 'kafka-4'].map((v) => ({ value: Buffer.from(v) })), { checkpoint: legacy(5, [[0, 0], [4, 3]]) });
    t.deepEqual(Array.from({ length: 6 }, (_, w) => sourceOffset(wal, topic, 0, w)), [0, 1, 2, null, 3, 4]);
    await produceEach(kafka, topic, ['kafka-5', 'kafka-6']);
    const m = await mirror({ kafka, topic, wal, offsets: 'dense', stopAtEnd: true, consumer: fastConsumer });
    t.is((await m.done).records, 2);
    t.deepEqual((await walRecords(wal)).map(([, v]) => v), ['kafka-0', 'kafka-1', 'kafka-2', 'app', 'kafka-3', 'kafka-4', 'kafka-5', 'kafka-6']);
    t.deepEqual(Array.from({ length: 8 }, (_, w) => sourceOffset(wal, topic, 0, w)), [0, 1, 2, null, 3, 4, 5, 6]);
    const cp = mirrorCheckpoint(wal, topic, 0);
    t.is(cp.next, 7);
    t.deepEqual(cp.runs, [[0, 0, 3], [4, 3, 4]], 'the old runs, with their lengths, the new records continuing the last');
    t.is(cp.v, 2, 'runs with lengths: a build that reads only pairs refuses it');
  } finally {
    await wal.close();
  }
});

test('dense mode: checkpoints of v: 1 with runs with lengths and a last batch (an interim build) and of v: 2 load; an unknown version is refused', async (t) => {
  const wal = await WriteAhead.open(tmp('dense-versions'), { partitions: 1 });
  try {
    const put = (cp) => wal.appendBatch(0, [], { checkpoint: { name: checkpointName('t'), value: JSON.stringify({ topic: 't', partition: 0, mode: 'dense', ...cp }) } });
    await wal.appendBatch(0, ['a', 'b', 'c', 'd'].map((v) => ({ value: Buffer.from(v) })));
    await put({ v: 1, next: 12, runs: [[0, 5, 1], [2, 10, 2]], last: [2, '0123456789ab'] });
    t.deepEqual([0, 1, 2, 3].map((w) => sourceOffset(wal, 't', 0, w)), [5, null, 10, 11], 'the runs as stored; last is ignored');
    await put({ v: 2, next: 12, runs: [[0, 5, 1], [2, 10, 2]] });
    t.deepEqual([0, 1, 2, 3].map((w) => sourceOffset(wal, 't', 0, w)), [5, null, 10, 11]);
    await put({ v: 3, next: 12, runs: [[0, 5, 1]] });
    t.throws(() => mirrorCheckpoint(wal, 't', 0), { code: 'CORRUPTED', message: /unknown format/ });
  } finally {
    await wal.close();
  }
});

test('dense mode on a gap-heavy topic: each checkpoint is what JSON.stringify writes, as runs are added, pruned by retention and reloaded after a failed batch', async (t) => {
  t.timeout(180_000);
  const { kafka, topic } = await newTopic('dense-gappy');
  // One committed transaction per record: a marker follows each, so every record is a run of its own.
  const producer = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const N = 40;
  for (let i = 0; i < N; i++) {
    const tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: [{ partition: 0, value: Buffer.from(`kafka-${i}`) }] });
    await tx.commit();
  }
  await producer.disconnect();
  const kafkaOffset = new Map((await rawLog(kafka, topic)).filter((r) => !r.control).map((r) => [r.value, r.offset]));
  // Small segments and a byte limit: retention drops old segments while the mirror runs, so runs are pruned.
  const dir = tmp('dense-gappy');
  const walOptions = { partitions: 1, segmentBytes: 4096, retention: { maxBytes: 6000 } };
  const consumer = { ...fastConsumer, maxBytesPerPartition: 1 }; // one record batch per fetch
  const written = [];
  /** Records every checkpoint the mirror writes; the `dieAt`-th batch with records fails. */
  const watched = (real, dieAt) => {
    const crowded = crowdedWal(real, 'app', { dieAt });
    return new Proxy(crowded.wal, {
      get(target, prop) {
        if (prop !== 'appendBatch') return Reflect.get(target, prop);
        return (p, records, options) => {
          written.push(String(options.checkpoint.value));
          return target.appendBatch(p, records, options);
        };
      },
    });
  };
  let wal = await WriteAhead.open(dir, walOptions);
  const m1 = await mirror({ kafka, topic, wal: watched(wal, 15), offsets: 'dense', stopAtEnd: true, consumer });
  await t.throwsAsync(m1.done, { code: 'IO_ERROR', message: /injected/ });
  await wal.close();
  wal = await WriteAhead.open(dir, walOptions);
  try {
    t.true(mirrorCheckpoint(wal, topic, 0).next < kafkaOffset.get(`kafka-${N - 1}`), 'the failed batch stopped the first run early');
    const m2 = await mirror({ kafka, topic, wal: watched(wal, 0), offsets: 'dense', stopAtEnd: true, consumer });
    await m2.done;
    for (const json of written) t.is(JSON.stringify(JSON.parse(json)), json);
    const cp = mirrorCheckpoint(wal, topic, 0);
    const { start } = wal.offsets(0);
    t.true(start > 0, 'retention dropped segments');
    // (Pruned at each batch against the start then: retention after the last batch can leave runs below it.)
    t.true(cp.runs[0][0] > 1, 'the first runs (WAL offsets 1, 3, ...) were pruned');
    t.true(cp.runs.length > 1 && cp.runs.every((r) => r[2] === 1), 'a run per record');
    const records = await walRecords(wal);
    t.is(records[0][0], start);
    t.deepEqual(records.map(([o, v]) => sourceOffset(wal, topic, 0, o)), records.map(([, v]) => v === 'app' ? null : kafkaOffset.get(v)));
    t.deepEqual(records.filter(([, v]) => v !== 'app').map(([, v]) => v).at(-1), `kafka-${N - 1}`, 'mirrored to the end');
  } finally {
    await wal.close();
  }
});

/**
 * Holds the fetches of partition 0 of `topic` that kafkajs's consumers send (every one in this
 * process goes through Broker.prototype.fetch), so a test can act between two of them. `hold`
 * says, by the offset a fetch starts at, which to hold; `held(pred)` waits for one held at an
 * offset `pred` accepts, `release()` sends every held fetch on (`fail(err)` fails them).
 */
function fetchGate(topic) {
  const Broker = require('kafkajs/src/broker/index.js');
  const fetch = Broker.prototype.fetch;
  const changed = signal();
  const held = [];
  let hold = () => false;
  Broker.prototype.fetch = async function (...args) {
    const part = args[0]?.topics?.find((x) => x.topic === topic)?.partitions.find((x) => x.partition === 0);
    if (part !== undefined && hold(Number(part.fetchOffset))) {
      await new Promise((resolve, reject) => { held.push({ offset: Number(part.fetchOffset), resolve, reject }); changed.notify(); });
    }
    return fetch.apply(this, args);
  };
  return {
    hold(pred) { hold = pred; },
    held: (pred, what) => changed.until(() => held.some((h) => pred(h.offset)), { what, timeoutMs: 60_000 }),
    release() { for (const h of held.splice(0)) h.resolve(); },
    /** Every held fetch fails with `err`, as if the broker had answered so. */
    fail(err) { for (const h of held.splice(0)) h.reject(err); },
    restore() { hold = () => false; for (const h of held.splice(0)) h.resolve(); Broker.prototype.fetch = fetch; },
  };
}

test.serial('a topic deleted and re-created while the mirror runs, and grown past its position before kafkajs fetches again: the reset is noticed (preserve: OFFSET_OUT_OF_RANGE; dense with \'earliest\': every new record after the old)', async (t) => {
  t.timeout(240_000);
  for (const [offsets, more] of [['preserve', {}], ['dense', { onOffsetReset: 'earliest' }]]) {
    const { kafka, topic } = await newTopic(`recreated-live-${offsets}`);
    await produceBatch(kafka, topic, Array.from({ length: 10 }, (_, i) => `old${i}`));
    const gate = fetchGate(topic);
    const dir = tmp(`recreated-live-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dir, offsets, consumer: fastConsumer, groupId: `g-${topic}`, ...more });
    const w = watch(m);
    try {
      await w.changed.until(() => w.settled || m.status().partitions[0]?.next === 10, { what: 'the old records mirrored' });
      t.is(w.failed, null, String(w.failed?.message));
      // The consumer waits at offset 10 while the topic is deleted and created again, empty.
      gate.hold(() => true);
      await gate.held((o) => o === 10, 'a fetch at offset 10');
      await recreateTopic(kafka, topic);
      // Kafka answers OFFSET_OUT_OF_RANGE at 10, and kafkajs moves the consumer to offset 0 by
      // itself. Before it fetches there, the new topic grows past 10.
      gate.hold((o) => o < 10);
      gate.release();
      await gate.held((o) => o === 0, 'kafkajs fetching from offset 0 (its reset)');
      await produceBatch(kafka, topic, Array.from({ length: 15 }, (_, i) => `new${i}`));
      gate.hold(() => false);
      gate.release();
      const WAL_END = offsets === 'preserve' ? 10 : 25;
      await w.changed.until(() => w.settled || w.events.length > 0 && m.wal?.offsets(0).end === WAL_END || m.status().partitions[0]?.next === 15 && w.events.length === 0,
        { what: 'the mirror to fail, or to mirror the new records', timeoutMs: 60_000 });
      await m.stop();
      const wal = await WriteAhead.open(dir, { readOnly: true });
      const values = (await walRecords(wal)).map(([, v]) => v);
      await wal.close();
      const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
      const fresh = Array.from({ length: 15 }, (_, i) => `new${i}`);
      if (offsets === 'preserve') {
        t.is(w.failed?.code, 'OFFSET_OUT_OF_RANGE', `${offsets}: ${w.failed?.message ?? `no error; WAL ${values.join(' ')}`}`);
        t.like(w.failed?.details, { partition: 0, offset: 10, start: 0, end: 15, topic });
        t.regex(w.failed?.message ?? '', /moved the consumer back to offset 0 \(the partition ended below 10, and has grown to 15 since\)/);
        t.deepEqual(values, old, `${offsets}: nothing of the new topic under the old offsets`);
      } else {
        t.is(w.failed, null, String(w.failed?.message));
        t.deepEqual(w.events, [{ partition: 0, reason: 'restarted', expected: 10, resumedAt: 0, skipped: 0 }]);
        t.deepEqual(values, [...old, ...fresh], `${offsets}: every new record, after the old`);
      }
    } finally {
      gate.restore();
      await m.stop();
    }
  }
});

test.serial('a topic deleted, re-created and grown past the mirror\'s position while its fetch was away: the rejoin\'s seek back to the position is checked (preserve: OFFSET_OUT_OF_RANGE; dense with \'earliest\': every new record after the old)', async (t) => {
  t.timeout(240_000);
  // What kafkajs's fetch meets while the topic is gone: it refreshes its metadata and rejoins the
  // group, and the port seeks back to the mirror's position, where the new topic has records.
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js');
  for (const [offsets, more] of [['preserve', {}], ['dense', { onOffsetReset: 'earliest' }]]) {
    const { kafka, topic } = await newTopic(`recreated-rejoin-${offsets}`);
    const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
    await produceBatch(kafka, topic, old);
    const gate = fetchGate(topic);
    const dir = tmp(`recreated-rejoin-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dir, offsets, consumer: fastConsumer, groupId: `g-${topic}`, reconnect: { initialMs: 10 }, ...more });
    const w = watch(m);
    try {
      await w.changed.until(() => w.settled || m.status().partitions[0]?.next === 10, { what: 'the old records mirrored' });
      t.is(w.failed, null, String(w.failed?.message));
      gate.hold(() => true);
      await gate.held((o) => o === 10, 'a fetch at offset 10');
      await recreateTopic(kafka, topic);
      const fresh = Array.from({ length: 15 }, (_, i) => `new${i}`);
      await produceBatch(kafka, topic, fresh);
      gate.hold(() => false);
      gate.fail(createErrorFromCode(3)); // UNKNOWN_TOPIC_OR_PARTITION
      const WAL_END = offsets === 'preserve' ? 10 : 25;
      await w.changed.until(() => w.settled || w.events.length > 0 && m.wal?.offsets(0).end === WAL_END || m.status().partitions[0]?.next === 15 && w.events.length === 0,
        { what: 'the mirror to fail, or to mirror the new records', timeoutMs: 60_000 });
      await m.stop();
      const wal = await WriteAhead.open(dir, { readOnly: true });
      const values = (await walRecords(wal)).map(([, v]) => v);
      await wal.close();
      if (offsets === 'preserve') {
        t.is(w.failed?.code, 'OFFSET_OUT_OF_RANGE', `${offsets}: ${w.failed?.message ?? `no error; WAL ${values.join(' ')}`}`);
        t.like(w.failed?.details, { partition: 0, offset: 10, start: 0, end: 15, topic, lastMirrored: 9 });
        t.deepEqual(values, old, `${offsets}: nothing of the new topic under the old offsets`);
      } else {
        t.is(w.failed, null, String(w.failed?.message));
        t.deepEqual(w.events, [{ partition: 0, reason: 'restarted', expected: 10, resumedAt: 0, skipped: 0 }]);
        t.deepEqual(values, [...old, ...fresh], `${offsets}: every new record, after the old`);
      }
    } finally {
      gate.restore();
      await m.stop();
    }
  }
});

test.serial('dense with onOffsetReset: \'earliest\': a rejoin after a \'restarted\' reset, before a record of the new topic is mirrored, does not check the old topic\'s last record against the new topic again (one reset, no reconnect)', async (t) => {
  t.timeout(240_000);
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js');
  const { kafka, topic } = await newTopic('reset-then-rejoin');
  const old = Array.from({ length: 10 }, (_, i) => `old${i}`);
  await produceBatch(kafka, topic, old);
  const dir = tmp('reset-then-rejoin');
  const first = await mirror({ kafka, topic, wal: dir, offsets: 'dense', stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.is((await first.done).records, 10);
  await recreateTopic(kafka, topic);
  const fresh = Array.from({ length: 15 }, (_, i) => `new${i}`);
  await produceBatch(kafka, topic, fresh); // so offset 9, the last mirrored, holds another record
  // The consumer's first fetch of the new topic (at 0, where the reset at start moved it) is held,
  // then fails as when the topic is missing: kafkajs rejoins its group, and the partition is
  // assigned again (a recheck) before anything of the new topic was mirrored.
  const gate = fetchGate(topic);
  gate.hold((o) => o === 0);
  const m = await mirror({ kafka, topic, wal: dir, offsets: 'dense', onOffsetReset: 'earliest', consumer: fastConsumer, groupId: `g2-${topic}`, reconnect: { initialMs: 10 } });
  const w = watch(m);
  let reconnects = 0;
  m.on('reconnect', () => { reconnects++; });
  try {
    await gate.held((o) => o === 0, 'the first fetch of the new topic');
    gate.hold(() => false);
    gate.fail(createErrorFromCode(3)); // UNKNOWN_TOPIC_OR_PARTITION
    await w.changed.until(() => w.settled || m.wal?.offsets(0).end === 25, { what: 'the new records mirrored', timeoutMs: 60_000 });
    t.is(w.failed, null, String(w.failed?.message));
    t.deepEqual(w.events, [{ partition: 0, reason: 'restarted', expected: 10, resumedAt: 0, skipped: 0 }]);
    t.is(reconnects, 0);
    await m.stop();
    const wal = await WriteAhead.open(dir, { readOnly: true });
    try {
      t.deepEqual((await walRecords(wal)).map(([, v]) => v), [...old, ...fresh]);
    } finally {
      await wal.close();
    }
  } finally {
    gate.restore();
    await m.stop();
  }
});

test.serial('the last mirrored record read back from a broker answering UNKNOWN_TOPIC_OR_PARTITION (a KRaft broker whose metadata lags a re-creation): the mirror reconnects and checks again, as after a connection error', async (t) => {
  t.timeout(120_000);
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js');
  const { kafka, topic } = await newTopic('read-at-unknown');
  await produceBatch(kafka, topic, Array.from({ length: 10 }, (_, i) => `v${i}`));
  const dir = tmp('read-at-unknown');
  const first = await mirror({ kafka, topic, wal: dir, offsets: 'preserve', stopAtEnd: true, consumer: fastConsumer, groupId: `g-${topic}` });
  t.is((await first.done).records, 10);
  await produceBatch(kafka, topic, ['v10', 'v11', 'v12']);
  // The check's fetch at offset 9 (the last mirrored) is held, then answered UNKNOWN_TOPIC_OR_PARTITION.
  const gate = fetchGate(topic);
  gate.hold((o) => o === 9);
  const events = [];
  // (mirror() resolves once the first session has started: after the check.)
  const starting = mirror({ kafka, topic, wal: dir, offsets: 'preserve', stopAtEnd: true, consumer: fastConsumer, groupId: `g2-${topic}`, reconnect: { initialMs: 10 } });
  let m = null;
  try {
    await gate.held((o) => o === 9, 'the check reading offset 9');
    gate.hold(() => false);
    gate.fail(createErrorFromCode(3));
    m = await starting;
    m.on('offsetReset', (e) => events.push(e));
    const done = await m.done;
    // (The reconnect came before mirror() resolved.)
    t.like(done, { records: 3, offsetResets: 0, reconnects: 1 });
    t.deepEqual(events, []);
  } finally {
    gate.restore();
    await m?.stop();
  }
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    t.deepEqual((await walRecords(wal)).map(([o, v]) => `${o}:${v}`), Array.from({ length: 13 }, (_, i) => `${i}:v${i}`));
  } finally {
    await wal.close();
  }
});

test('rebalances while the mirror runs (another member joins its group and leaves, twice) move no partition: no offset reset, every record once at its offset', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'rebalance');
  const topic = uniqueTopic('rebalance');
  await createTopic(kafka, topic, 2);
  const groupId = `g-${topic}`;
  // Small fetches: batches are still queued in the port, or being handled, when the port seeks
  // back to the mirror's durable positions after each rebalance.
  const dir = tmp('rebalance');
  const m = await mirror({ kafka, topic, wal: dir, consumer: { ...fastConsumer, maxBytesPerPartition: 512 }, groupId });
  const changed = signal();
  const resets = [];
  let failed = null;
  m.on('batch', () => changed.notify());
  m.on('offsetReset', (e) => resets.push(e));
  m.done.catch((err) => { failed = err; changed.notify(); });
  const sent = [0, 0];
  let producing = true;
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const production = (async () => {
    while (producing) {
      const messages = [];
      for (const p of [0, 1]) for (let i = 0; i < 50; i++) messages.push({ partition: p, value: Buffer.from(`p${p}-${sent[p]++}`) });
      await producer.send({ topic, acks: -1, messages });
    }
  })();
  try {
    for (let round = 0; round < 2; round++) {
      const before = m.status().records;
      const other = kafka.consumer({ groupId, ...fastConsumer });
      const joined = new Promise((resolve) => other.on(other.events.GROUP_JOIN, resolve));
      await other.connect();
      await other.subscribe({ topics: [topic] });
      await other.run({ autoCommit: false, eachBatch: async () => {} });
      await joined;
      await other.disconnect();
      // The mirror consumes again after the member left.
      await changed.until(() => failed !== null || m.status().records > before + 200, { what: `mirroring after rebalance ${round + 1}`, timeoutMs: 60_000 });
    }
  } finally {
    producing = false;
    await production;
    await producer.disconnect();
  }
  await changed.until(() => failed !== null || [0, 1].every((p) => m.status().partitions[p]?.next === sent[p]), { what: 'every record mirrored', timeoutMs: 60_000 });
  const done = await m.stop();
  t.is(failed, null, String(failed?.message));
  t.deepEqual(resets, []);
  t.like(done, { offsetResets: 0, skippedOffsets: 0 });
  t.log(`${sent[0] + sent[1]} records, ${done.reconnects} reconnects`);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    for (const p of [0, 1]) {
      const got = await walRecords(wal, p);
      t.deepEqual(got, Array.from({ length: sent[p] }, (_, i) => [i, `p${p}-${i}`]), `partition ${p}`);
    }
  } finally {
    await wal.close();
  }
});
