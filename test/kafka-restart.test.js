// The bridges (runMirror / runReplay) across a broker restart: the broker is stopped and started
// again (harness restart()) while records flow; the bridge reconnects by itself, nothing is lost and
// nothing is repeated. Also covers /healthz, /metrics and the structured lag lines.
import test from 'ava';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, makeRecord, canon, consumeAll, topicOffsets, fastConsumer, produceRecords, signal } from './fixtures/kafka-records.js';
import { runMirror, runReplay, provenanceOf, stripProvenance } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';

const P = 3;
const kb = useBroker(test, { own: true }); // it is restarted: never a shared KAFKA_BROKERS broker
const tmp = tempDirs(test);

async function restartBroker(t) {
  const t0 = Date.now();
  await kb.broker.restart();
  t.log(`broker restarted in ${Date.now() - t0} ms`);
  return true;
}

/** Collects the bridge's structured log; resolves the HTTP port from the 'listening' line. */
function logCollector() {
  const entries = [];
  const changed = signal();
  return {
    entries,
    log: (e) => {
      entries.push(e);
      changed.notify();
    },
    /** Resolves when pred() holds, checked at every log entry (the bridge logs a lag line every 100 ms). */
    until: (pred, o) => changed.until(pred, o),
    port: () => entries.find((e) => e.msg === 'listening')?.port,
    lastLag: () => entries.filter((e) => e.msg === 'lag').at(-1),
  };
}

async function get(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, text: await res.text() };
}

/** A client whose sends ride out a broker restart on kafkajs's own retries. */
const patientClient = (id) => kafkaClient(kb.brokers, id, { retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 60 } });

/**
 * The test's own producer across the restart: kafkajs's retries do not always cover a refused
 * connection (a send can reject with ECONNREFUSED while the broker is down), so a batch that fails
 * with a retriable error is sent again with a fresh producer. A batch sent twice is two sets of
 * records in the topic, which the mirror must copy like any others: the check is WAL == topic.
 */
async function produceAcrossRestart(t, kafka, topic, { from, to, partitions, batch }) {
  for (let start = from; start < to; start += batch) {
    const end = Math.min(to, start + batch);
    for (let attempt = 1; ; attempt++) {
      try {
        await produceRecords(kafka, topic, { from: start, to: end, partitions, batch });
        break;
      } catch (err) {
        if ((err?.retriable !== true && !/Connection|NumberOfRetriesExceeded/.test(err?.name ?? '')) || attempt >= 20) throw err;
        t.log(`records ${start}-${end}: ${err.name} (${err.message}); sending again`);
      }
    }
  }
}

test.serial('runMirror reconnects by itself across a broker restart; the WAL equals the topic', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'restart-mirror');
  const topic = uniqueTopic('restart-mirror');
  await createTopic(kafka, topic, P);
  const producing = patientClient('restart-mirror-producer');
  await produceRecords(producing, topic, { from: 0, to: 3000, partitions: P });
  const dir = tmp('restart-mirror');
  const logs = logCollector();
  const ctl = new AbortController();
  const run = runMirror({
    kafka: { brokers: kb.brokers, connectionTimeoutMs: 1000, retries: 2 },
    dir,
    topic,
    consumer: { ...fastConsumer, maxBytesPerPartition: 64 * 1024 },
    reconnect: { initialMs: 100, maxMs: 1000 },
    httpPort: 0,
    lagIntervalMs: 100,
    log: logs.log,
    handleSignals: false,
    signal: ctl.signal,
  });
  run.catch(() => {});
  t.teardown(() => ctl.abort()); // a failed assertion must not leave the bridge running
  const mirrored = () => (logs.lastLag()?.partitions ?? []).reduce((n, p) => n + Math.max(0, p.next), 0);
  await logs.until(() => mirrored() >= 3000, { what: 'mirroring to start', timeoutMs: 60_000 });
  const health = await get(logs.port(), '/healthz');
  t.is(health.status, 200);
  // Records keep coming while the broker goes down and comes back, and after it.
  const during = produceAcrossRestart(t, producing, topic, { from: 3000, to: 6000, partitions: P, batch: 200 });
  t.true(await restartBroker(t));
  await during;
  await produceAcrossRestart(t, producing, topic, { from: 6000, to: 9000, partitions: P, batch: 2000 });
  const high = await topicOffsets(kafka, topic);
  await logs.until(() => {
    const lag = logs.lastLag();
    return lag && high.every((h) => lag.partitions.find((p) => p.partition === h.partition)?.next >= h.high);
  }, { what: 'the mirror to catch up', timeoutMs: 90_000 });
  const metrics = await get(logs.port(), '/metrics');
  t.regex(metrics.text, /writeahead_kafka_reconnects_total\{[^}]*\} [1-9]/);
  t.regex(metrics.text, /writeahead_kafka_records_total\{[^}]*partition="0"[^}]*\} [1-9]/);
  t.regex(metrics.text, /writeahead_kafka_lag\{[^}]*\} 0/);
  ctl.abort();
  const summary = await run;
  t.true(summary.reconnects >= 1, 'reconnected');
  t.true(logs.entries.some((e) => e.msg === 'reconnecting'));
  t.true(logs.entries.some((e) => e.msg === 'stopped'));

  const total = high.reduce((n, h) => n + h.high - h.low, 0);
  const source = await consumeAll(kafka, topic, total);
  const wal = await WriteAhead.open(dir, { readOnly: true });
  try {
    for (let p = 0; p < P; p++) {
      const got = [];
      for await (const r of wal.iterate(p)) got.push(r);
      const want = source.get(p) ?? [];
      t.is(got.length, want.length, `partition ${p}`);
      let bad = null;
      for (let j = 0; j < want.length; j++) {
        if (got[j].offset !== want[j].offset || JSON.stringify(canon(got[j])) !== JSON.stringify(canon(want[j]))) bad ??= `partition ${p} #${j}`;
      }
      t.is(bad, null);
    }
  } finally {
    await wal.close();
  }
});

test.serial('runReplay reconnects by itself across a broker restart; every record once', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'restart-replay');
  const topic = uniqueTopic('restart-replay');
  await createTopic(kafka, topic, P);
  const dir = tmp('restart-replay');
  const wal = await WriteAhead.open(dir, { partitions: P });
  // Appended before, while the broker restarts, and after: the replay tails the WAL throughout.
  let appended = 0;
  const append = async (n) => {
    for (const end = appended + n; appended < end;) {
      const per = Array.from({ length: P }, () => []);
      for (let j = 0; j < 150; j++, appended++) per[appended % P].push(makeRecord(appended));
      await Promise.all(per.map((recs, p) => wal.appendBatch(p, recs)));
    }
  };
  await append(3000);
  const logs = logCollector();
  const ctl = new AbortController();
  const run = runReplay({
    kafka: { brokers: kb.brokers, connectionTimeoutMs: 1000, retries: 2 },
    dir,
    wal,
    topic,
    group: 'restart',
    maxBatchRecords: 300,
    reconnect: { initialMs: 100, maxMs: 1000 },
    lagIntervalMs: 100,
    log: logs.log,
    handleSignals: false,
    signal: ctl.signal,
  });
  run.catch(() => {});
  t.teardown(() => ctl.abort());
  const sent = () => (logs.lastLag()?.partitions ?? []).reduce((n, p) => n + p.next, 0);
  await logs.until(() => sent() >= 3000, { what: 'replay to start', timeoutMs: 60_000 });
  const during = append(3000);
  t.true(await restartBroker(t));
  await during;
  await append(3000);
  const ends = Array.from({ length: P }, (_, p) => wal.offsets(p).end);
  await logs.until(() => ends.every((e, p) => logs.lastLag()?.partitions.find((x) => x.partition === p)?.next === e), { what: 'the replay to catch up', timeoutMs: 90_000 });
  ctl.abort();
  const summary = await run;
  t.deepEqual(ends.map((_e, p) => wal.group('restart').committed(p)), ends, 'the cursors reached the end');
  t.true(summary.reconnects >= 1, 'reconnected');
  t.true(logs.entries.some((e) => e.msg === 'reconnecting'));

  const total = appended;
  const got = await consumeAll(kafka, topic, total, { timeoutMs: 90_000 });
  const offsets = await topicOffsets(kafka, topic);
  t.is(offsets.reduce((n, o) => n + o.high - o.low, 0), total, 'no duplicates');
  let bad = null;
  let count = 0;
  for (const [q, list] of got) {
    let prev = -1;
    for (const m of list) {
      const prov = provenanceOf(m.headers);
      if (prov.partition !== q || prov.offset !== prev + 1) bad ??= `partition ${q}: offset ${prov.offset} after ${prev}`;
      prev = prov.offset;
      const i = q + prov.offset * P;
      if (JSON.stringify(canon({ ...m, headers: stripProvenance(m.headers) })) !== JSON.stringify(canon(makeRecord(i)))) bad ??= `bytes of ${q}/${prov.offset}`;
      count++;
    }
  }
  t.is(bad, null);
  t.is(count, total);
  await wal.close();
});
