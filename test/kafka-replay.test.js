// replay(): WAL -> Kafka against a real broker. SIGKILL of the replay process with both
// partitioners (no duplicates as the sole writer), start positions, at-least-once without the
// sole-writer dedup, and bad configurations of both connectors.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDirs, useBroker, runChild } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, makeRecord, canon, consumeAll, topicOffsets, BASE_TS } from './fixtures/kafka-records.js';
import { mirror, replay, provenanceOf, stripProvenance, murmur2Partition, kafkajsPort } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPLAY_CHILD = path.join(HERE, 'fixtures', 'kafka-replay-child.js');
const N = Number(process.env.KAFKA_REPLAY_RECORDS) || 100_000;
const P = 3;

const kb = useBroker(test);
const tmp = tempDirs(test);

/** A client, a WAL of `records` records and a new topic of `partitions` partitions, all named `name`. */
async function replayCase(name, records, partitions = P) {
  const kafka = kafkaClient(kb.brokers, name);
  const dir = tmp(name);
  await buildWal(dir, records);
  const topic = uniqueTopic(name);
  await createTopic(kafka, topic, partitions);
  return { kafka, dir, topic };
}

/** A WAL with records 0..n-1 (makeRecord(i) at partition i % P, offset floor(i / P)). */
async function buildWal(dir, n) {
  const wal = await WriteAhead.open(dir, { partitions: P });
  for (let start = 0; start < n; start += 3000) {
    const per = Array.from({ length: P }, () => []);
    for (let i = start; i < Math.min(n, start + 3000); i++) per[i % P].push(makeRecord(i));
    await Promise.all(per.map((recs, p) => wal.appendBatch(p, recs)));
  }
  await wal.close();
}

/** Every WAL record reached the topic exactly once, with its bytes, in order per WAL partition. */
async function checkTarget(t, kafka, topic, n, partitioner) {
  const got = await consumeAll(kafka, topic, n, { timeoutMs: 90_000 });
  const offsets = await topicOffsets(kafka, topic);
  t.is(offsets.reduce((s, o) => s + o.high - o.low, 0), n, 'no duplicates: the topic holds exactly the WAL records');
  const seen = Array.from({ length: P }, () => new Uint8Array(Math.ceil(n / P)));
  let bad = null;
  for (const [q, list] of got) {
    const last = new Map();
    for (const m of list) {
      const prov = provenanceOf(m.headers);
      if (prov === null) { bad ??= `record without provenance in ${q}`; continue; }
      const { partition: p, offset: o } = prov;
      const i = p + o * P;
      if (JSON.stringify(canon({ ...m, headers: stripProvenance(m.headers) })) !== JSON.stringify(canon(makeRecord(i)))) bad ??= `bytes differ for ${p}/${o}`;
      if ((last.get(p) ?? -1) >= o) bad ??= `partition ${q}: WAL ${p}/${o} out of order or repeated`;
      last.set(p, o);
      if (seen[p][o]++) bad ??= `duplicate ${p}/${o}`;
      const want = partitioner === 'same' ? p : m.key !== null ? murmur2Partition(m.key, offsets.length) : p % offsets.length;
      if (q !== want) bad ??= `${p}/${o} went to partition ${q}, expected ${want}`;
    }
  }
  t.is(bad, null);
  let missing = 0;
  for (let i = 0; i < n; i++) if (!seen[i % P][Math.floor(i / P)]) missing++;
  t.is(missing, 0, 'every WAL record reached the topic');
}

for (const partitioner of ['same', 'murmur2']) {
  test(`replay survives SIGKILL mid-way with no duplicates as the sole writer (partitioner: ${partitioner})`, async (t) => {
    t.timeout(180_000);
    const { kafka, dir, topic } = await replayCase(`replay-${partitioner}`, N, partitioner === 'same' ? P : 4);
    const arg = { brokers: kb.brokers, topic, dir, group: 'to-kafka', partitioner, maxBatchRecords: 500 };
    const killAt = Math.floor(N * 0.3);
    let seen = 0;
    const first = await runChild(REPLAY_CHILD, arg, {
      onLine: (o, child) => {
        if (o.total !== undefined) seen = o.total;
        if (o.total >= killAt) child.kill('SIGKILL');
      },
    });
    t.is(first.signal, 'SIGKILL', first.stderr);
    t.true(seen >= killAt && seen < N, `killed mid-way (after ${seen} of ${N})`);
    const second = await runChild(REPLAY_CHILD, arg);
    t.is(second.code, 0, second.stderr);
    const done = second.lines.at(-1);
    t.true(done.done);
    t.true(done.records <= N - seen);
    await checkTarget(t, kafka, topic, N, partitioner);
    // The cursor reached the end.
    const wal = await WriteAhead.open(dir, { readOnly: true });
    for (let p = 0; p < P; p++) t.is(wal.group('to-kafka').committed(p), wal.offsets(p).end);
    await wal.close();
  });
}

test('replay starts at an offset or a timestamp and passes over gaps', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'replay-from');
  const dir = tmp('replay-from');
  const wal = await WriteAhead.open(dir, { partitions: 2 });
  // Partition 0: offsets 0, 3, 6, ... (gaps of 2); partition 1: dense.
  const recs = Array.from({ length: 100 }, (_, i) => makeRecord(i));
  await wal.appendBatch(0, recs, { offsets: recs.map((_, j) => j * 3) });
  await wal.appendBatch(1, recs);
  const byTime = uniqueTopic('replay-ts');
  const byOffset = uniqueTopic('replay-off');
  await createTopic(kafka, byTime, 2);
  await createTopic(kafka, byOffset, 2);

  // makeRecord(i).timestamp = BASE_TS + 7 i: from record 60 on in both partitions.
  const r1 = await replay({ kafka, topic: byTime, wal, from: { timestamp: BASE_TS + 7 * 60 } });
  const s1 = await r1.done;
  t.is(s1.records, 80);
  t.is(s1.partitions[0].gaps, 39 * 2, 'gaps between records 60..99 of partition 0');
  const got1 = await consumeAll(kafka, byTime, 80);
  t.deepEqual(got1.get(0).map((m) => provenanceOf(m.headers).offset), recs.slice(60).map((_, j) => (60 + j) * 3));
  t.deepEqual(got1.get(1).map((m) => canon({ ...m, headers: stripProvenance(m.headers) })), recs.slice(60).map(canon));

  const r2 = await replay({ kafka, topic: byOffset, wal, from: { 0: 150, 1: 95 } });
  const s2 = await r2.done;
  t.is(s2.records, 50 + 5);
  const got2 = await consumeAll(kafka, byOffset, 55);
  t.is(provenanceOf(got2.get(0)[0].headers).offset, 150);
  t.is(provenanceOf(got2.get(1)[0].headers).offset, 95);
  await wal.close();
});

test('a rerun sends nothing twice as the sole writer; soleWriter: false is at least once', async (t) => {
  t.timeout(60_000);
  const { kafka, dir, topic } = await replayCase('replay-rerun', 900);
  // No group: each run starts at 'earliest'; the target's tail tells the second run where the first stopped.
  t.is((await (await replay({ kafka, topic, wal: dir })).done).records, 900);
  t.is((await (await replay({ kafka, topic, wal: dir })).done).records, 0);
  await checkTarget(t, kafka, topic, 900, 'same');
  // At least once: everything again.
  t.is((await (await replay({ kafka, topic, wal: dir, soleWriter: false })).done).records, 900);
  const offsets = await topicOffsets(kafka, topic);
  t.is(offsets.reduce((s, o) => s + o.high, 0), 1800);
});

for (const partitioner of ['same', 'murmur2']) {
  test(`a crash between acknowledgement and cursor commit repeats nothing (partitioner: ${partitioner})`, async (t) => {
    t.timeout(60_000);
    const { kafka, dir, topic } = await replayCase(`replay-lost-commit-${partitioner}`, 900, partitioner === 'same' ? P : 4);
    t.is((await (await replay({ kafka, topic, wal: dir, group: 'g', partitioner })).done).records, 900);
    // As if the last round's cursor commits never became durable.
    const wal = await WriteAhead.open(dir);
    for (let p = 0; p < P; p++) await wal.group('g').seek(p, wal.offsets(p).end - 100);
    await wal.close();
    const again = await (await replay({ kafka, topic, wal: dir, group: 'g', partitioner })).done;
    t.is(again.records, 0);
    // murmur2: the 300 records are read again and skipped by their provenance; same: the target's
    // last record moves the start past them. Either way they were in the topic already.
    t.is(again.skipped, 300);
    t.deepEqual(again.partitions.map((p) => p.skipped), [100, 100, 100]);
    t.is(again.gaps, 0);
    await checkTarget(t, kafka, topic, 900, partitioner);
    // The cursors moved past them too: once the target's records are gone (retention,
    // deleteRecords), a rerun continues from the cursor and sends nothing again.
    const after = await WriteAhead.open(dir, { readOnly: true });
    t.deepEqual(Array.from({ length: P }, (_, p) => after.group('g').committed(p)), Array.from({ length: P }, (_, p) => after.offsets(p).end));
    await after.close();
    await deleteAllRecords(kafka, topic);
    const third = await (await replay({ kafka, topic, wal: dir, group: 'g', partitioner })).done;
    t.is(third.records, 0, 'nothing sent again after the target was emptied');
    t.is((await topicOffsets(kafka, topic)).reduce((s, o) => s + o.high - o.low, 0), 0);
  });
}

/** Deletes every record of every partition of `topic` (as retention would). */
async function deleteAllRecords(kafka, topic) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.deleteTopicRecords({ topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: '-1' })) });
  } finally {
    await admin.disconnect();
  }
}

test('records the start-up tail check passes over count as skipped, offsets without a record as gaps', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'replay-pass-over');
  const dir = tmp('replay-pass-over');
  const wal = await WriteAhead.open(dir, { partitions: 1 });
  const recs = Array.from({ length: 100 }, (_, i) => makeRecord(i));
  await wal.appendBatch(0, recs, { offsets: recs.map((_, j) => j * 3) }); // offsets 0, 3, ..., 297
  await wal.close();
  const topic = uniqueTopic('replay-pass-over');
  await createTopic(kafka, topic, 1);
  const first = await (await replay({ kafka, topic, wal: dir })).done;
  t.like(first, { records: 100, gaps: 198, skipped: 0 });
  // No group: the rerun starts at 'earliest', and the target's last record moves it to the end.
  const again = await (await replay({ kafka, topic, wal: dir })).done;
  t.like(again, { records: 0, gaps: 198, skipped: 100 });
  t.like(again.partitions[0], { next: 298, end: 298, lag: 0, skipped: 100 });
});

test.serial('the start-up tail read answered UNKNOWN_TOPIC_OR_PARTITION (a KRaft broker whose metadata lags a re-creation): replay reconnects and reads it again, as after a connection error', async (t) => {
  t.timeout(120_000);
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js');
  const Broker = require('kafkajs/src/broker/index.js');
  const { kafka, dir, topic } = await replayCase('replay-tail-unknown', 600);
  t.is((await (await replay({ kafka, topic, wal: dir })).done).records, 600);
  const wal = await WriteAhead.open(dir);
  const more = Array.from({ length: P }, () => []);
  for (let i = 600; i < 900; i++) more[i % P].push(makeRecord(i));
  await Promise.all(more.map((recs, p) => wal.appendBatch(p, recs)));
  await wal.close();
  // describe() has found the topic; the first fetch of its tail is answered UNKNOWN_TOPIC_OR_PARTITION.
  const fetch = Broker.prototype.fetch;
  let failed = 0;
  Broker.prototype.fetch = async function (...args) {
    if (failed === 0 && args[0]?.topics?.some((x) => x.topic === topic)) {
      failed++;
      throw createErrorFromCode(3);
    }
    return fetch.apply(this, args);
  };
  try {
    // (No group: the run starts at 'earliest', and the target's tail moves it past the first 600.)
    const r = await replay({ kafka, topic, wal: dir, reconnect: { initialMs: 10 } });
    // (The reconnect came before replay() resolved.)
    const done = await r.done;
    t.is(failed, 1, 'the tail read was answered UNKNOWN_TOPIC_OR_PARTITION once');
    t.like(done, { records: 300, skipped: 600, reconnects: 1 });
  } finally {
    Broker.prototype.fetch = fetch;
  }
  await checkTarget(t, kafka, topic, 900, 'same');
});

test('stop() while the start-up tail check passes over a long stretch ends it there, without reading the rest', async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'replay-pass-stop');
  const dir = tmp('replay-pass-stop');
  const wal = await WriteAhead.open(dir, { partitions: 1 });
  const n = 300_000;
  for (let b = 0; b < n; b += 1000) await wal.appendBatch(0, Array.from({ length: 1000 }, (_, j) => makeRecord(b + j)));
  const topic = uniqueTopic('replay-pass-stop');
  await createTopic(kafka, topic, 1);
  t.like(await (await replay({ kafka, topic, wal })).done, { records: n, skipped: 0 });
  // The rerun (no group: from 'earliest') finds every record in the target and passes over them.
  // It is stopped, as a SIGTERM would, as soon as the pass-over has read its first chunk.
  let read = 0;
  const ctl = new AbortController();
  const real = wal.iterateBatches.bind(wal);
  wal.iterateBatches = async function * (...args) {
    for await (const batch of real(...args)) {
      if (read === 0) ctl.abort();
      read += batch.length;
      yield batch;
    }
  };
  const summary = await (await replay({ kafka, topic, wal, signal: ctl.signal })).done;
  delete wal.iterateBatches;
  t.true(read < n, `read ${read} of ${n} records after stop()`);
  t.is(summary.records, 0, 'nothing was sent');
  t.is(summary.skipped, 0, 'an unfinished pass-over counts nothing: the next run does it whole');
  const next = await (await replay({ kafka, topic, wal })).done;
  t.like(next, { records: 0, skipped: n });
  await wal.close();
});

// ---------------------------------------------------------------------------
// Rounds: the next round is read and prepared while one is sent, but sends stay one at a time and
// in order, and no cursor passes a round Kafka has not acknowledged.

/** The real kafkajs port, with each send held until the test releases it. */
function heldSends(kafka) {
  const port = kafkajsPort(kafka);
  const sends = [];
  let waiting = null;
  let active = 0;
  let overlapped = false;
  const held = {
    sends,
    close: () => port.close(),
    get overlapped() { return overlapped; },
    /** Resolves with the next send once it has been called (and is held). */
    next: () => new Promise((resolve) => {
      if (sends.length > 0 && !sends[sends.length - 1].taken) { sends[sends.length - 1].taken = true; resolve(sends[sends.length - 1]); } else waiting = resolve;
    }),
    port: {
      ...Object.fromEntries(['describe', 'createTopic', 'consume', 'tail', 'close'].map((k) => [k, (...a) => port[k](...a)])),
      async producer() {
        const producer = await port.producer();
        return {
          async send(topic, records) {
            if (active > 0) overlapped = true;
            active++;
            let release;
            const gate = new Promise((r) => { release = r; });
            const s = { records, release, taken: false };
            sends.push(s);
            if (waiting !== null) { const w = waiting; waiting = null; s.taken = true; w(s); }
            try {
              await gate;
              await producer.send(topic, records);
            } finally { active--; }
          },
          close: () => producer.close(),
        };
      },
    },
  };
  return held;
}

test('rounds are sent one at a time, in order, and cursors move only after each acknowledgement', async (t) => {
  t.timeout(60_000);
  const { kafka, dir, topic } = await replayCase('replay-rounds', 900); // 300 records a WAL partition
  const held = heldSends(kafka);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  const cursors = () => Array.from({ length: P }, (_, p) => wal.group('g').committed(p));
  const r = await replay({ kafka: held.port, topic, wal: dir, group: 'g', maxBatchRecords: 200 });
  const sent = [];
  const expected = Array.from({ length: P }, () => null);
  for (let round = 0; sent.length < 900; round++) {
    const s = await held.next();
    // Held: every earlier round is acknowledged and its cursors are durable, this one's are not.
    t.deepEqual(cursors(), expected, `round ${round}: cursors at the end of the rounds before it`);
    t.is(held.sends.length, round + 1, 'one send at a time');
    for (const m of s.records) {
      // This wrapper port does not declare addsProvenance: replay puts the header in the headers.
      t.is(m.provenance, undefined);
      const prov = provenanceOf(m.headers);
      sent.push(prov);
      expected[prov.partition] = prov.offset + 1;
    }
    s.release();
  }
  const summary = await r.done;
  await wal.close();
  t.false(held.overlapped, 'no two sends overlapped');
  t.is(summary.records, 900);
  t.is(sent.length, 900);
  // In order per WAL partition, each offset once.
  for (let p = 0; p < P; p++) t.deepEqual(sent.filter((x) => x.partition === p).map((x) => x.offset), Array.from({ length: 300 }, (_, i) => i));
  const after = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual(Array.from({ length: P }, (_, p) => after.group('g').committed(p)), [300, 300, 300]);
  await after.close();
  await held.close();
  await checkTarget(t, kafka, topic, 900, 'same');
});

test('stop() during a send finishes that round; the round prepared behind it is sent by the next run, once', async (t) => {
  t.timeout(60_000);
  const { kafka, dir, topic } = await replayCase('replay-rounds-stop', 900);
  const held = heldSends(kafka);
  const r = await replay({ kafka: held.port, topic, wal: dir, group: 'g', maxBatchRecords: 200 });
  const first = await held.next();
  const stopping = r.stop();
  first.release();
  const summary = await stopping;
  t.is(held.sends.length, 1, 'nothing sent after stop()');
  t.is(summary.records, first.records.length, 'the round in flight was finished and counted');
  await held.close();
  const rest = await (await replay({ kafka, topic, wal: dir, group: 'g' })).done;
  t.is(summary.records + rest.records, 900);
  await checkTarget(t, kafka, topic, 900, 'same');
});

// ---------------------------------------------------------------------------
// Bad configuration: a clear error within a bounded time, the WAL untouched.

async function walSnapshot(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.name !== 'LOCK') out[path.relative(dir, f)] = fs.readFileSync(f).toString('base64');
    }
  };
  walk(dir);
  return out;
}

test('a missing topic is INVALID_ARGUMENT at once; the WAL is untouched', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'bad-topic');
  const dir = tmp('bad-topic');
  await buildWal(dir, 30);
  const before = await walSnapshot(dir);
  const t0 = Date.now();
  const e1 = await t.throwsAsync(replay({ kafka, topic: 'no-such-topic', wal: dir, group: 'g' }), { code: 'INVALID_ARGUMENT' });
  t.regex(e1.message, /no-such-topic does not exist/);
  t.is(e1.details.kafka, 'unknown-topic');
  const e2 = await t.throwsAsync(mirror({ kafka, topic: 'no-such-topic', wal: dir }), { code: 'INVALID_ARGUMENT' });
  t.regex(e2.message, /no-such-topic does not exist/);
  const fresh = path.join(tmp('bad-topic-fresh'), 'wal');
  await t.throwsAsync(mirror({ kafka, topic: 'no-such-topic', wal: fresh }), { code: 'INVALID_ARGUMENT' });
  t.true(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  t.false(fs.existsSync(fresh), 'no WAL directory created');
  t.deepEqual(await walSnapshot(dir), before);
});

test('bad credentials (SASL against a plaintext listener) are INVALID_OPTION; the WAL is untouched', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'bad-sasl', { sasl: { mechanism: 'plain', username: 'nobody', password: 'wrong' } });
  const dir = tmp('bad-sasl');
  await buildWal(dir, 30);
  const before = await walSnapshot(dir);
  const fresh = path.join(tmp('bad-sasl-fresh'), 'wal');
  const t0 = Date.now();
  const e1 = await t.throwsAsync(mirror({ kafka, topic: 'anything', wal: fresh, startTimeoutMs: 10_000 }), { code: 'INVALID_OPTION' });
  t.is(e1.details.kafka, 'auth');
  t.regex(e1.message, /SASL/);
  const e2 = await t.throwsAsync(replay({ kafka, topic: 'anything', wal: dir, group: 'g', startTimeoutMs: 10_000 }), { code: 'INVALID_OPTION' });
  t.is(e2.details.kafka, 'auth');
  t.true(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  t.false(fs.existsSync(fresh));
  t.deepEqual(await walSnapshot(dir), before);
});

test('a bad `from` is INVALID_OPTION before anything connects: no topic created, the WAL untouched', async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'bad-from');
  const dir = tmp('bad-from');
  await buildWal(dir, 30);
  const before = await walSnapshot(dir);
  const topic = uniqueTopic('bad-from');
  const bad = [-1, 1.5, 2 ** 64, Number.NaN, 'first', null, [3], { timestamp: 'yesterday' }, { timestamp: new Date('nope') }, { 0: -2 }, { x: 3 }, new Date(0), new Map([[0, 5]])];
  for (const from of bad) {
    const err = await t.throwsAsync(replay({ kafka, topic, wal: dir, createTopic: true, from }), { code: 'INVALID_OPTION' }, `from: ${String(from)}`);
    t.is(err.details.option, 'from');
  }
  // Also with brokers that cannot be reached: the option is wrong, not the connection.
  const nowhere = kafkaClient('127.0.0.1:1', 'bad-from-nowhere');
  const t0 = Date.now();
  await t.throwsAsync(replay({ kafka: nowhere, topic, wal: dir, from: -1, startTimeoutMs: 20_000 }), { code: 'INVALID_OPTION' });
  t.true(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  const admin = kafka.admin();
  await admin.connect();
  t.false((await admin.listTopics()).includes(topic), 'createTopic did not run');
  await admin.disconnect();
  t.deepEqual(await walSnapshot(dir), before);
});

test("partitioner 'same' into a topic with too few partitions is INVALID_ARGUMENT", async (t) => {
  const { kafka, dir, topic } = await replayCase('bad-parts', 30, 2);
  const err = await t.throwsAsync(replay({ kafka, topic, wal: dir }), { code: 'INVALID_ARGUMENT' });
  t.regex(err.message, /needs 3/);
  t.is((await topicOffsets(kafka, topic)).reduce((s, o) => s + o.high, 0), 0);
});

test("createTopic too small for partitioner 'same' is refused before the topic is created; a malformed spec when replay() is called", async (t) => {
  t.timeout(60_000);
  const kafka = kafkaClient(kb.brokers, 'create-small');
  const dir = tmp('create-small');
  await buildWal(dir, 30);
  const topic = uniqueTopic('create-small');
  const err = await t.throwsAsync(async () => (await replay({ kafka, topic, wal: dir, createTopic: { partitions: 2 } })).done, { code: 'INVALID_OPTION' });
  t.is(err.details.option, 'createTopic.partitions');
  t.regex(err.message, /at least 3/);
  // Replaying only WAL partition 1 needs two: not refused for the partition it leaves out.
  const two = uniqueTopic('create-two');
  const r = await replay({ kafka, topic: two, wal: dir, partitions: [1], createTopic: { partitions: 2 } });
  t.is((await r.done).records, 10);
  for (const [createTopic, option] of [[{ partitions: 0 }, 'createTopic.partitions'], [{ partitions: '3' }, 'createTopic.partitions'], [{ replicationFactor: 1.5 }, 'createTopic.replicationFactor'],
    [{ configs: { 'retention.ms': -1 } }, 'createTopic.configs'], [{ configs: [] }, 'createTopic.configs'], [{ partition: 3 }, 'createTopic.partition']]) {
    const bad = await t.throwsAsync(replay({ kafka, topic, wal: dir, createTopic }), { code: 'INVALID_OPTION' }, JSON.stringify(createTopic));
    t.is(bad.details.option, option);
  }
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    t.false(topics.includes(topic), 'the topic too small was not created');
    t.true(topics.includes(two));
  } finally {
    await admin.disconnect();
  }
});

test('murmur2: records in doubt after a partial send are resolved in the first round, so a second failure repeats nothing', async (t) => {
  t.timeout(120_000);
  const { murmur2Partition } = await import('../dist/connectors/kafka/murmur2.js');
  const { provenanceHeader } = await import('../dist/connectors/kafka/provenance.js');
  const kafka = kafkaClient(kb.brokers, 'replay-doubt');
  const dir = tmp('replay-doubt');
  const W = 8; // WAL partitions
  const N = 1000; // records per WAL partition
  const wal = await WriteAhead.open(dir, { partitions: W });
  for (let p = 0; p < W; p++) await wal.appendBatch(p, Array.from({ length: N }, (_, i) => ({ key: `k${p}-${i}`, value: `v${p}-${i}` })));
  const recs0 = [];
  for await (const r of wal.iterate(0)) recs0.push(r);
  await wal.close();
  const topic = uniqueTopic('replay-doubt');
  await createTopic(kafka, topic, 2);

  // As if a round holding partition 0's first 1,000 records failed half-way: target 0 acknowledged
  // its records, target 1 did not, and no cursor moved.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const landedInQ0 = recs0.filter((r) => murmur2Partition(r.key, 2) === 0);
  await producer.send({
    topic,
    acks: -1,
    messages: landedInQ0.map((r) => ({
      partition: 0, key: r.key, value: r.value, timestamp: String(r.timestamp),
      headers: Object.fromEntries([provenanceHeader(0, r.offset)].map((h) => [h.key, h.value])),
    })),
  });
  await producer.disconnect();

  // The next session runs two rounds of all eight partitions, then stops (the second failure).
  const second = await replay({ kafka, topic, wal: dir, group: 'g', partitioner: 'murmur2', maxBatchRecords: 1000 });
  let rounds = 0;
  second.on('batch', () => { if (++rounds === 3) second.stop(); });
  await second.done;
  // The third session finishes. Every record must be in the topic exactly once.
  const third = await (await replay({ kafka, topic, wal: dir, group: 'g', partitioner: 'murmur2', maxBatchRecords: 1000 })).done;
  t.true(third.records > 0);
  const got = await consumeAll(kafka, topic, W * N, { timeoutMs: 90_000 });
  const seen = new Map();
  for (const list of got.values()) {
    for (const m of list) {
      const prov = provenanceOf(m.headers);
      const k = `${prov.partition}/${prov.offset}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
  }
  const dup = [...seen].filter(([, c]) => c > 1);
  t.deepEqual(dup.slice(0, 5), [], `${dup.length} records sent twice`);
  t.is(seen.size, W * N, 'every record once');
});
