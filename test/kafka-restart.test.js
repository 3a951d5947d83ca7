// The bridges (runMirror / runReplay) across a broker restart: the broker is stopped and started
// again (harness restart()) while records flow; the bridge reconnects by itself, nothing is lost and
// nothing is repeated. Also covers /healthz, /metrics and the structured lag lines.
import test from 'ava';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, makeRecord, canon, consumeAll, topicOffsets, fastConsumer, waitFor } from './fixtures/kafka-records.js';
import { runMirror, runReplay, kafkajsHeaders, provenanceOf, stripProvenance } from '../dist/connectors/kafka/index.js';
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
  return {
    entries,
    log: (e) => entries.push(e),
    port: () => entries.find((e) => e.msg === 'listening')?.port,
    lastLag: () => entries.filter((e) => e.msg === 'lag').at(-1),
  };
}

async function get(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, text: await res.text() };
}

/** Keeps producing makeRecord(i) to partition i % P until stopped, retrying through outages. */
function backgroundProducer(kafka, topic) {
  let stop = false;
  let produced = 0;
  const done = (async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let i = 0;
    while (!stop) {
      const messages = [];
      for (let j = 0; j < 200; j++, i++) {
        const r = makeRecord(i);
        messages.push({ partition: i % P, key: r.key, value: r.value, headers: kafkajsHeaders(r.headers), timestamp: String(r.timestamp) });
      }
      try {
        await producer.send({ topic, acks: -1, messages });
        produced += messages.length;
      } catch {
        await new Promise((r) => setTimeout(r, 200)); // broker down: the same records are sent again
        i -= messages.length;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await producer.disconnect().catch(() => {});
  })();
  return {
    get produced() {
      return produced;
    },
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

test.serial('runMirror reconnects by itself across a broker restart; the WAL equals the topic', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'restart-mirror');
  const topic = uniqueTopic('restart-mirror');
  await createTopic(kafka, topic, P);
  const producer = backgroundProducer(kafka, topic);
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
  const mirrored = () => (logs.lastLag()?.partitions ?? []).reduce((n, p) => n + Math.max(0, p.next), 0);
  await waitFor(() => mirrored() >= 3000, { what: 'mirroring to start', timeoutMs: 60_000 });
  const health = await get(logs.port(), '/healthz');
  t.is(health.status, 200);
  t.true(await restartBroker(t));
  const after = producer.produced;
  await waitFor(() => producer.produced >= after + 3000, { what: 'producing after the restart', timeoutMs: 90_000 });
  await producer.stop();
  const high = await topicOffsets(kafka, topic);
  await waitFor(() => {
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
  // Keep appending while the replay runs (it tails the WAL), so the restart hits it mid-stream.
  let appended = 0;
  let appending = true;
  const appender = (async () => {
    while (appending) {
      const per = Array.from({ length: P }, () => []);
      for (let j = 0; j < 150; j++, appended++) per[appended % P].push(makeRecord(appended));
      await Promise.all(per.map((recs, p) => wal.appendBatch(p, recs)));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
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
  const sent = () => (logs.lastLag()?.partitions ?? []).reduce((n, p) => n + p.next, 0);
  await waitFor(() => sent() >= 3000, { what: 'replay to start', timeoutMs: 60_000 });
  t.true(await restartBroker(t));
  const after = appended;
  await waitFor(() => appended >= after + 3000, { what: 'appending after the restart' });
  appending = false;
  await appender;
  const ends = Array.from({ length: P }, (_, p) => wal.offsets(p).end);
  await waitFor(() => ends.every((e, p) => wal.group('restart').committed(p) === e), { what: 'the replay to catch up', timeoutMs: 90_000 });
  ctl.abort();
  const summary = await run;
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
