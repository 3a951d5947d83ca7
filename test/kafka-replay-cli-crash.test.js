// `writeahead replay` as a user runs it, SIGKILLed mid-way and started again, without a WAL group
// (the target's tail alone tells where to continue, 'same' partitioner), into a topic with more
// partitions than the log: every record reaches the topic once, in order, and the rerun reports
// what it found there. Progress comes from the process's own lag lines.
import test from 'ava';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, makeRecord, canon, consumeAll, topicOffsets } from './fixtures/kafka-records.js';
import { start, run } from './fixtures/cli-run.js';
import { provenanceOf, stripProvenance } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';

const kb = useBroker(test);
const tmp = tempDirs(test);
const P = 3;
const N = 30_000;

test('replay SIGKILLed mid-way and run again without a group: each record once, in order; the rerun counts what was there', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'cli-crash');
  const dir = tmp('cli-crash');
  const wal = await WriteAhead.open(dir, { partitions: P });
  for (let start = 0; start < N; start += 3000) {
    const per = Array.from({ length: P }, () => []);
    for (let i = start; i < start + 3000; i++) per[i % P].push(makeRecord(i));
    await Promise.all(per.map((recs, p) => wal.appendBatch(p, recs)));
  }
  await wal.close();
  const topic = uniqueTopic('cli-crash');
  await createTopic(kafka, topic, P + 2); // partitions 3 and 4 stay empty
  const args = ['replay', '--brokers', kb.brokers, '--topic', topic, '--dir', dir, '--stop-at-end', '--max-batch-records', '200', '--lag-interval', '20'];

  const first = start(args);
  let sent = 0;
  for (;;) {
    const line = await first.line();
    if (line === null) break;
    const o = JSON.parse(line);
    if (o.msg === 'lag') sent = o.partitions.reduce((n, p) => n + p.next, 0);
    if (sent >= N * 0.3) { first.child.kill('SIGKILL'); break; }
  }
  const killed = await first.exited;
  t.is(killed.signal, 'SIGKILL', killed.stderr);
  t.true(sent >= N * 0.3 && sent < N, `killed mid-way (after ${sent} of ${N})`);

  const second = await run(args);
  t.is(second.code, 0, second.stderr);
  const stopped = second.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((o) => o.msg === 'stopped');
  const landed = (await topicOffsets(kafka, topic)).reduce((n, o) => n + o.high - o.low, 0);
  t.is(landed, N, 'no duplicates: the topic holds exactly the log');
  t.true(stopped.records <= N - sent, `the rerun sent ${stopped.records}`);
  t.is(stopped.records + stopped.skipped, N, 'what the rerun did not send it found in the topic');
  t.is(stopped.gaps, 0);

  const got = await consumeAll(kafka, topic, N, { timeoutMs: 90_000 });
  let bad = null;
  for (const [q, list] of got) {
    let prev = -1;
    for (const m of list) {
      const prov = provenanceOf(m.headers);
      if (prov.partition !== q || prov.offset !== prev + 1) bad ??= `partition ${q}: ${prov.partition}/${prov.offset} after ${prev}`;
      prev = prov.offset;
      if (JSON.stringify(canon({ ...m, headers: stripProvenance(m.headers) })) !== JSON.stringify(canon(makeRecord(q + prov.offset * P)))) bad ??= `bytes of ${q}/${prov.offset}`;
    }
    if (list.length !== N / P) bad ??= `partition ${q} holds ${list.length}`;
  }
  t.is(bad, null);
  t.deepEqual([...got.keys()].sort(), [0, 1, 2]);

  // A third run finds everything there: nothing sent, all of it counted as already in the topic.
  const third = await run(args);
  t.is(third.code, 0, third.stderr);
  t.like(third.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((o) => o.msg === 'stopped'), { records: 0, skipped: N });
  t.is((await topicOffsets(kafka, topic)).reduce((n, o) => n + o.high - o.low, 0), N);
});
