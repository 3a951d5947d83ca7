// mirror(): Kafka -> WAL against a real broker. SIGKILL of the mirror process in both offset modes,
// transaction markers and aborted records as gaps, a compacted topic after cleaning, and the full
// loop Kafka -> WAL -> Kafka.
import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDirs, useBroker, runChild } from './kafka/suite.js';
import {
  kafkaClient, createTopic, uniqueTopic, produceRecords, makeRecord, canon, consumeAll, fastConsumer, topicOffsets, signal, gatedWal,
} from './fixtures/kafka-records.js';
import { mirror, replay, mirrorCheckpoint, sourceOffset, stripProvenance, provenanceOf, kafkajsHeaders, kafkajsPort, KafkaPortError } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIRROR_CHILD = path.join(HERE, 'fixtures', 'kafka-mirror-child.js');
const BRIDGE_CHILD = path.join(HERE, 'fixtures', 'kafka-bridge-child.js');
const N = Number(process.env.KAFKA_MIRROR_RECORDS) || 100_000;
const P = 3;

const kb = useBroker(test);
let bigTopic;

const tmp = tempDirs(test);

test.serial.before(async () => {
  const kafka = kafkaClient(kb.brokers, 'mirror-setup');
  bigTopic = uniqueTopic('mirror-big');
  await createTopic(kafka, bigTopic, P);
  await produceRecords(kafka, bigTopic, { to: N, partitions: P });
});

/** Every source record exactly once, in order, equal bytes; offsets as the mode says. */
async function checkWal(t, dir, topic, mode) {
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    t.is(wal.partitions, P);
    let total = 0;
    for (let p = 0; p < P; p++) {
      const expected = Math.floor((N - p + P - 1) / P);
      let j = 0;
      let bad = null;
      for await (const r of wal.iterate(p)) {
        const i = p + j * P;
        if (r.offset !== j) bad ??= `partition ${p}: offset ${r.offset}, expected ${j}`;
        else if (JSON.stringify(canon(r)) !== JSON.stringify(canon(makeRecord(i)))) bad ??= `partition ${p} offset ${j}: bytes differ`;
        j++;
      }
      t.is(bad, null);
      t.is(j, expected, `partition ${p} holds each record once`);
      const cp = mirrorCheckpoint(wal, topic, p);
      t.like(cp, { v: mode === 'dense' ? 2 : 1, topic, partition: p, mode, next: expected });
      if (mode === 'dense') {
        t.is(sourceOffset(wal, topic, p, 0), 0);
        t.is(sourceOffset(wal, topic, p, expected - 1), expected - 1);
      }
      total += j;
    }
    t.is(total, N);
  } finally {
    await wal.close();
  }
}

for (const mode of ['preserve', 'dense']) {
  test(`mirror survives SIGKILL mid-way and restarts exactly once (offsets: ${mode})`, async (t) => {
    t.timeout(180_000);
    const dir = tmp(`mirror-${mode}`);
    const arg = { brokers: kb.brokers, topic: bigTopic, dir, offsets: mode, groupId: `mirror-${mode}-${bigTopic}`, maxBytesPerPartition: 32 * 1024 };
    const killAt = Math.floor(N * 0.3);
    let seen = 0;
    const first = await runChild(MIRROR_CHILD, arg, {
      onLine: (o, child) => {
        if (o.total !== undefined) seen = o.total;
        if (o.total >= killAt) child.kill('SIGKILL');
      },
    });
    t.is(first.signal, 'SIGKILL', first.stderr);
    t.true(seen >= killAt && seen < N, `killed mid-way (after ${seen} of ${N})`);

    const second = await runChild(MIRROR_CHILD, arg);
    t.is(second.code, 0, second.stderr);
    const done = second.lines.at(-1);
    t.true(done.done);
    // The restart mirrored the rest only: what the killed run made durable (at least what it
    // reported) was not mirrored again.
    t.true(done.records <= N - seen, `second run mirrored ${done.records}`);
    t.true(done.records > 0);
    await checkWal(t, dir, bigTopic, mode);
  });
}

test('transaction markers and aborted records are gaps; Kafka offsets are WAL offsets', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'mirror-txn');
  const topic = uniqueTopic('mirror-txn');
  await createTopic(kafka, topic, 2);
  const producer = kafka.producer({ transactionalId: `txn-${topic}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let i = 0;
  for (let k = 0; k < 8; k++) {
    const txn = await producer.transaction();
    const messages = [];
    for (let j = 0; j < 5 + k; j++, i++) {
      const r = makeRecord(i);
      messages.push({ partition: i % 2, key: r.key, value: r.value, headers: kafkajsHeaders(r.headers), timestamp: String(r.timestamp) });
    }
    await txn.send({ topic, acks: -1, messages });
    if (k % 3 === 1) await txn.abort();
    else await txn.commit();
  }
  await producer.disconnect();
  // A tombstone outside any transaction, kept as one (makeRecord(11) in a transaction is another).
  const plain = kafka.producer({ allowAutoTopicCreation: false });
  await plain.connect();
  await plain.send({ topic, acks: -1, messages: [{ partition: 0, key: 'gone', value: null }] });
  await plain.disconnect();

  const high = await topicOffsets(kafka, topic);
  // Everything a read_committed consumer sees, per partition.
  const expected = await (async () => {
    let count = 0;
    for (let k = 0; k < 8; k++) if (k % 3 !== 1) count += 5 + k;
    return consumeAll(kafka, topic, count + 1);
  })();

  t.is([...expected.values()].flat().filter((e) => e.value === null).length, 2, 'two committed tombstones in the source');

  const runs = {};
  for (const mode of ['preserve', 'dense']) {
    const dir = tmp(`mirror-txn-${mode}`);
    const m = await mirror({ kafka, topic, wal: dir, offsets: mode, stopAtEnd: true, consumer: fastConsumer, groupId: `txn-${mode}` });
    runs[mode] = await m.done;
    const wal = await WriteAhead.open(dir);
    try {
      for (const { partition: p, high: h } of high) {
        const want = expected.get(p) ?? [];
        const got = [];
        for await (const r of wal.iterate(p)) got.push(r);
        t.is(got.length, want.length);
        for (let j = 0; j < want.length; j++) {
          t.deepEqual(canon(got[j]), canon(want[j]));
          if (mode === 'preserve') t.is(got[j].offset, want[j].offset);
          else {
            t.is(got[j].offset, j);
            t.is(sourceOffset(wal, topic, p, j), want[j].offset);
          }
        }
        // Past the last commit marker: the checkpoint reached the high watermark.
        t.is(mirrorCheckpoint(wal, topic, p).next, h);
        if (mode === 'preserve') {
          const offsets = got.map((r) => r.offset);
          t.true(offsets.at(-1) - offsets[0] + 1 > offsets.length, 'offsets have gaps');
          // A Kafka position is a WAL position: read at a Kafka offset, and a gap is out of range.
          const mid = want[Math.floor(want.length / 2)];
          t.deepEqual(canon(await wal.read(p, mid.offset)), canon(mid));
          const gap = offsets.find((o, j) => j > 0 && o !== offsets[j - 1] + 1) - 1;
          await t.throwsAsync(wal.read(p, gap), { code: 'OFFSET_OUT_OF_RANGE' });
        }
      }
    } finally {
      await wal.close();
    }
  }
  t.is(runs.preserve.records, runs.dense.records);
});

/** A client, and a new topic holding makeRecord(i) for i < records, record i in partition i % partitions. */
async function topicOf(id, partitions, records) {
  const kafka = kafkaClient(kb.brokers, id);
  const topic = uniqueTopic(id);
  await createTopic(kafka, topic, partitions);
  await produceRecords(kafka, topic, { to: records, partitions });
  return { kafka, topic };
}

/**
 * A kafkajs port whose session the test can fail (`fail()`), with `afterDescribe(n)` run when the
 * n-th describe has its answer. With `stopWaits: false` its consumer's stop does not wait for the
 * batch being appended, as a teardown that gave up waiting would not.
 */
function testPort(kafka, { afterDescribe = async () => {}, stopWaits = true } = {}) {
  const inner = kafkajsPort(kafka, { consumer: fastConsumer });
  let onError = null;
  const counts = { describe: 0, consume: 0 };
  return {
    counts,
    fail: () => onError(new KafkaPortError('connection', 'injected: the connection dropped', { retriable: true })),
    async describe(tp) {
      const info = await inner.describe(tp);
      await afterDescribe(++counts.describe);
      return info;
    },
    async consume(o) {
      counts.consume++;
      onError = o.onError;
      const c = await inner.consume(o);
      if (stopWaits) return c;
      return { commit: (p, next) => c.commit(p, next), stop: () => { c.stop().catch(() => {}); return Promise.resolve(); } };
    },
    producer: () => inner.producer(),
    tail: (...a) => inner.tail(...a),
    close: () => inner.close(),
  };
}


for (const mode of ['dense', 'preserve']) test(`an append that outlives its session's teardown lands before the next session reads its position (offsets: ${mode})`, async (t) => {
  // Read too early, the position would make 'dense' append the held records twice and 'preserve'
  // stop with INVALID_OFFSET.
  t.timeout(120_000);
  const count = 3000;
  const { kafka, topic } = await topicOf(`mirror-stalled-${mode}`, 2, count);
  const real = await WriteAhead.open(tmp(`mirror-stalled-${mode}`), { partitions: 2 });
  const gate = gatedWal(real);
  // The next session's first describe opens the gate: its appends then finish while it loads.
  const port = testPort(kafka, { stopWaits: false, afterDescribe: async (n) => { if (n === 2) gate.open(); } });
  const m = await mirror({ kafka: port, topic, wal: gate.wal, offsets: mode, stopAtEnd: true, reconnect: { initialMs: 10, maxMs: 10 } });
  await gate.held();
  port.fail();
  const done = await m.done;
  t.true(port.counts.describe >= 2, 'a second session started');
  t.is(done.reconnects, 1);
  try {
    for (let p = 0; p < 2; p++) {
      const got = [];
      for await (const r of real.iterate(p)) got.push(r);
      const want = Math.ceil((count - p) / 2);
      t.is(got.length, want, `partition ${p} holds each record once`);
      t.is(got.findIndex((r, j) => JSON.stringify(canon(r)) !== JSON.stringify(canon(makeRecord(p + 2 * j)))), -1);
      t.is(mirrorCheckpoint(real, topic, p).next, want);
    }
  } finally {
    await real.close();
  }
});

test('stop() while the next session waits for such an append ends the mirror without joining the group again', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await topicOf('mirror-stalled-stop', 1, 500);
  const real = await WriteAhead.open(tmp('mirror-stalled-stop'), { partitions: 1 });
  const gate = gatedWal(real);
  let m;
  // The next session has its describe answer and is about to wait for the held append: stop now,
  // then let the append finish.
  const port = testPort(kafka, { stopWaits: false, afterDescribe: async (n) => { if (n === 2) { m.stop(); gate.open(); } } });
  m = await mirror({ kafka: port, topic, wal: gate.wal, reconnect: { initialMs: 10, maxMs: 10 } });
  await gate.held();
  port.fail();
  const done = await m.done;
  t.is(port.counts.consume, 1, 'no second consumer joined');
  t.is(done.partitions[0].next, real.offsets(0).end, 'the held append landed and is the position');
  t.true(real.offsets(0).end > 0);
  await real.close();
});

test('from: \'latest\' is resolved once: records produced while the mirror reconnects, or into partitions added since, are mirrored', async (t) => {
  t.timeout(120_000);
  const { kafka, topic } = await topicOf('mirror-latest', 1, 10);
  // Records 10-14 go to partition 0 once the next session has asked for the topic's partitions,
  // as if they arrived while the mirror was reconnecting.
  const port = testPort(kafka, { afterDescribe: async (n) => { if (n === 2) await produceRecords(kafka, topic, { from: 10, to: 15, partitions: 1 }); } });
  const dir = tmp('mirror-latest');
  const m = await mirror({ kafka: port, topic, wal: dir, from: 'latest', reconnect: { initialMs: 10, maxMs: 10 } });
  // mirror() resolves once the first session consumes.
  const changed = signal();
  let connected = 1;
  m.on('connected', () => { connected++; changed.notify(); });
  m.on('batch', () => changed.notify());
  // The topic grows while the first session runs: partition 1 gets records 0-4.
  const admin = kafka.admin();
  await admin.connect();
  await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 1, value: `p1-${i}` })) });
  await producer.disconnect();
  port.fail();
  await changed.until(() => connected >= 2, { what: 'the second session consuming' });
  await produceRecords(kafka, topic, { from: 15, to: 20, partitions: 1 });
  await changed.until(() => m.status().partitions[0]?.next === 20 && m.status().partitions[1]?.next === 5, { what: 'every record produced since the start mirrored' });
  const done = await m.stop();
  t.is(done.records, 15);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    const got = [];
    for await (const r of wal.iterate(0)) got.push(r);
    t.deepEqual(got.map((r) => r.offset), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    t.is(got.findIndex((r) => JSON.stringify(canon(r)) !== JSON.stringify(canon(makeRecord(r.offset)))), -1);
    const added = [];
    for await (const r of wal.iterate(1)) added.push(r.value.toString());
    t.deepEqual(added, ['p1-0', 'p1-1', 'p1-2', 'p1-3', 'p1-4']);
  } finally {
    await wal.close();
  }
});

test('a compacted topic once cleaned: preserve mode keeps its offsets across the gaps and its tombstones; replay rebuilds it', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'mirror-compacted');
  const topic = uniqueTopic('mirror-compacted');
  // Segments of 1 MiB (the least Kafka allows): only a rolled segment is cleaned.
  await createTopic(kafka, topic, 1, { 'cleanup.policy': 'compact', 'segment.bytes': String(1 << 20), 'min.cleanable.dirty.ratio': '0.01', 'min.compaction.lag.ms': '0' });
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // Ten keys written four times (offsets 0-39), then tombstones for three of them (40-42): ~1 MB,
  // all in the first segment. A last record that does not fit beside them rolls it (43).
  for (const rounds of [[0, 1], [2, 3]]) {
    const messages = [];
    for (const round of rounds) for (let k = 0; k < 10; k++) messages.push({ key: `k${k}`, value: Buffer.alloc(25_000, 10 * round + k), headers: { round: String(round) } });
    if (rounds[0] === 2) for (let k = 0; k < 3; k++) messages.push({ key: `k${k}`, value: null, headers: { deleted: 'yes' } });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.send({ topic, acks: -1, messages: [{ key: 'last', value: Buffer.alloc(100_000, 7) }] });
  await producer.disconnect();

  // The cleaner runs on its own schedule and tells no client: look until the first segment is cleaned.
  const port = kafkajsPort(kafka);
  let cleaned;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      cleaned = await port.tail(topic, 0, 100);
      if (cleaned.length < 44 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await port.close();
  }
  // What compaction keeps: the last value of k3-k9 (round 3), the tombstones of k0-k2, the last record.
  t.deepEqual(cleaned.map((m) => m.offset), [33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43], 'the broker compacted the first segment');
  t.deepEqual(cleaned.slice(7, 10).map((m) => m.value), [null, null, null]);

  const dir = tmp('mirror-compacted');
  const m = await mirror({ kafka, topic, wal: dir, offsets: 'preserve', stopAtEnd: true, consumer: fastConsumer });
  t.is((await m.done).records, 11);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    const got = [];
    for await (const r of wal.iterate(0)) got.push(r);
    t.deepEqual(got.map((r) => r.offset), cleaned.map((m) => m.offset));
    t.deepEqual(got.map(canon), cleaned.map(canon));
    t.is((await wal.read(0, 40)).value, null, 'a tombstone read at its Kafka offset');
    await t.throwsAsync(wal.read(0, 32), { code: 'OFFSET_OUT_OF_RANGE' });
    t.is(mirrorCheckpoint(wal, topic, 0).next, 44);
  } finally {
    await wal.close();
  }

  const target = uniqueTopic('mirror-compacted-copy');
  const r = await replay({ kafka, topic: target, wal: dir, from: 'earliest', createTopic: { configs: { 'cleanup.policy': 'compact' } } });
  t.is((await r.done).records, 11);
  const copied = (await consumeAll(kafka, target, 11)).get(0);
  t.deepEqual(copied.map((c) => canon({ ...c, headers: stripProvenance(c.headers) })), cleaned.map(canon));

  // A record without a key is one a compacted topic refuses: replay stops and says why, rather than
  // retrying it for ever.
  const keyless = tmp('mirror-compacted-keyless');
  const w = await WriteAhead.open(keyless);
  await w.append(0, { value: null });
  await w.close();
  const refused = await replay({ kafka, topic: uniqueTopic('compacted-keyless'), wal: keyless, from: 'earliest', createTopic: { configs: { 'cleanup.policy': 'compact' } } });
  const err = await t.throwsAsync(refused.done, { code: 'INVALID_OPTION' });
  t.is(err.details.kafka, 'config');
});

test('full loop: produce -> mirror -> WAL -> replay -> topic sees exactly the original records', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'loop');
  const source = uniqueTopic('loop-src');
  const target = uniqueTopic('loop-dst');
  const count = 20_000;
  await createTopic(kafka, source, P);
  await produceRecords(kafka, source, { to: count, partitions: P });
  const dir = tmp('loop');
  const m = await mirror({ kafka, topic: source, wal: dir, stopAtEnd: true, consumer: fastConsumer });
  t.is((await m.done).records, count);
  const r = await replay({ kafka, topic: target, wal: dir, group: 'loop', createTopic: { configs: { 'retention.ms': '-1' } } });
  const summary = await r.done;
  t.is(summary.records, count);
  t.is(summary.skipped, 0);

  const [original, copied] = await Promise.all([consumeAll(kafka, source, count), consumeAll(kafka, target, count)]);
  t.deepEqual((await topicOffsets(kafka, target)).map((o) => o.high - o.low), (await topicOffsets(kafka, source)).map((o) => o.high - o.low));
  for (let p = 0; p < P; p++) {
    const a = original.get(p);
    const b = copied.get(p);
    t.is(b.length, a.length);
    let bad = null;
    for (let j = 0; j < a.length; j++) {
      const prov = provenanceOf(b[j].headers);
      const plain = { ...b[j], headers: stripProvenance(b[j].headers) };
      if (b[j].offset !== a[j].offset || JSON.stringify(canon(plain)) !== JSON.stringify(canon(a[j]))) bad ??= `partition ${p} #${j} differs`;
      if (prov?.partition !== p || prov?.offset !== a[j].offset) bad ??= `partition ${p} #${j}: provenance ${JSON.stringify(prov)}`;
    }
    t.is(bad, null);
  }
});

test('runMirror as a process: SIGTERM stops it gracefully (exit 0); a fatal error exits 1', async (t) => {
  t.timeout(120_000);
  const { topic } = await topicOf('bridge-proc', 2, 2000);
  const dir = tmp('bridge-proc');
  const options = { kafka: { brokers: kb.brokers }, dir, topic, lagIntervalMs: 100, consumer: fastConsumer };
  let termSent = false;
  const run = await runChild(BRIDGE_CHILD, { kind: 'mirror', options }, {
    onLine: (o, child) => {
      if (!termSent && o.msg === 'lag' && o.lag === 0 && o.partitions.every((p) => p.next === 1000)) {
        termSent = true;
        child.kill('SIGTERM');
      }
    },
  });
  t.true(termSent, run.stderr);
  t.is(run.code, 0, run.stderr);
  const msgs = run.lines.map((l) => l.msg);
  for (const m of ['starting', 'running', 'lag', 'signal', 'stopped']) t.true(msgs.includes(m), m);
  t.is(run.lines.at(-1).msg, 'stopped');
  t.is(run.lines.at(-1).records, 2000);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual([0, 1].map((p) => wal.offsets(p).end), [1000, 1000]);
  await wal.close();

  const bad = await runChild(BRIDGE_CHILD, { kind: 'mirror', options: { ...options, topic: 'no-such-topic', dir: path.join(dir, 'other') } });
  t.is(bad.code, 1);
  const fatal = bad.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.level === 'fatal');
  t.like(fatal, { msg: 'failed', code: 'INVALID_ARGUMENT' });
});

test('a record the WAL cannot store stops the mirror with its WalError', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'mirror-refused');
  const topic = uniqueTopic('mirror-refused');
  await createTopic(kafka, topic, 1);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ value: 'ok' }, { key: 'k', value: Buffer.alloc(100) }, { value: 'after' }] });
  await producer.disconnect();
  const dir = tmp('mirror-refused');
  const m = await mirror({ kafka, topic, wal: dir, walOptions: { maxRecordBytes: 64 }, consumer: fastConsumer });
  await t.throwsAsync(m.done, { code: 'RECORD_TOO_LARGE' });
  const wal = await WriteAhead.open(dir, { readOnly: true });
  t.is(wal.offsets(0).end, 0, 'the batch holding the record too large was not appended');
  await wal.close();
});

test('large records mirror whole: each batch leaves room for its checkpoint', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'mirror-big-records');
  const topic = uniqueTopic('mirror-big-rec');
  await createTopic(kafka, topic, 1);
  const walOptions = { segmentBytes: 64 * 1024 }; // maxBatchBytes 16 KiB, maxRecordBytes 16 KiB - 128
  // A record this size fits in a batch with the checkpoint, but not together with the next small
  // one, although their estimated sizes alone would (the checkpoint is what tips it over).
  const near = 16142;
  const values = [near, 100, near, 5000, 100, near].map((n, i) => Buffer.alloc(n, i + 1));
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: `k${i}`, value })) });
  await producer.disconnect();
  for (const offsets of ['preserve', 'dense']) {
    const dir = tmp(`mirror-big-rec-${offsets}`);
    const m = await mirror({ kafka, topic, wal: dir, walOptions, offsets, stopAtEnd: true, consumer: fastConsumer });
    t.is((await m.done).records, values.length, offsets);
    const wal = await WriteAhead.open(dir, { readOnly: true, ...walOptions });
    const got = [];
    for await (const r of wal.iterate(0)) got.push(r.value);
    t.deepEqual(got.map((v) => v.length), values.map((v) => v.length), offsets);
    t.true(got.every((v, i) => v.equals(values[i])), offsets);
    t.like(mirrorCheckpoint(wal, topic, 0), { next: values.length }, offsets);
    await wal.close();
  }
});
