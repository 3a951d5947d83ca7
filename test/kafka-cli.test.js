// The bridge as people run it: `writeahead mirror` and `writeahead replay` against the real broker,
// with flags, the HTTP endpoints, SIGTERM, and the records compared at the far end.
import test from 'ava';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, produceRecords, canon, consumeAll } from './fixtures/kafka-records.js';
import { start, run } from './fixtures/cli-run.js';
import { stripProvenance } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';

const kb = useBroker(test);
const tmp = tempDirs(test);

/** Next JSON log line of a started CLI that satisfies `match` (null if the process ended first). */
async function lineWhere(proc, match) {
  for (;;) {
    const line = await proc.line();
    if (line === null) return null;
    const o = JSON.parse(line);
    if (match(o)) return o;
  }
}

test('writeahead mirror, then writeahead replay: the second topic holds the original records; /healthz and /metrics answer', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'cli-loop');
  const source = uniqueTopic('cli-src');
  const target = uniqueTopic('cli-dst');
  const P = 2;
  const count = 3000;
  await createTopic(kafka, source, P);
  await produceRecords(kafka, source, { to: count, partitions: P });
  const dir = tmp('cli');

  // Mirror until the lag line says every partition is caught up, then SIGTERM: a graceful stop.
  const mirror = start(['mirror', '--brokers', kb.brokers, '--topic', source, '--dir', dir, '--http-port', '0', '--lag-interval', '100']);
  const listening = await lineWhere(mirror, (o) => o.msg === 'listening');
  t.truthy(listening, 'the HTTP server announced its port');
  const caughtUp = await lineWhere(mirror, (o) => o.msg === 'lag' && o.lag === 0 && o.partitions.length === P && o.partitions.every((p) => p.next === count / P));
  t.truthy(caughtUp, 'a lag line showed the mirror caught up');
  const health = await fetch(`http://127.0.0.1:${listening.port}/healthz`);
  t.is(health.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${listening.port}/metrics`)).text();
  const perPartition = [...metrics.matchAll(/^writeahead_kafka_records_total\{partition="(\d+)"[^}]*\} (\d+)$/gm)].map((m) => Number(m[2]));
  t.deepEqual(perPartition, [count / P, count / P]);
  t.regex(metrics, /^writeahead_kafka_lag\{[^}]*partition="1"[^}]*\} 0$/m);
  mirror.child.kill('SIGTERM');
  const stopped = await lineWhere(mirror, (o) => o.msg === 'stopped');
  t.is(stopped?.records, count);
  const mirrorExit = await mirror.exited;
  t.is(mirrorExit.code, 0, mirrorExit.stderr);

  // Replay with --stop-at-end stops by itself at the end of the log; a second run sends nothing.
  const replayArgs = ['replay', '--brokers', kb.brokers, '--topic', target, '--dir', dir, '--group', 'cli', '--create-topic', '--stop-at-end', '--lag-interval', '0'];
  const first = await run(replayArgs);
  t.is(first.code, 0, first.stderr);
  const summary = first.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((o) => o.msg === 'stopped');
  t.is(summary.records, count);
  const again = await run(replayArgs);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((o) => o.msg === 'stopped').records, 0);

  const [original, copied] = await Promise.all([consumeAll(kafka, source, count), consumeAll(kafka, target, count)]);
  for (let p = 0; p < P; p++) {
    t.is(copied.get(p).length, original.get(p).length);
    const differs = copied.get(p).findIndex((r, j) => JSON.stringify(canon({ ...r, headers: stripProvenance(r.headers) })) !== JSON.stringify(canon(original.get(p)[j])));
    t.is(differs, -1, `partition ${p}`);
  }
  const wal = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual([0, 1].map((p) => wal.offsets(p).end), [count / P, count / P]);
  await wal.close();
});
