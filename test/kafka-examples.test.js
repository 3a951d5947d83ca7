// examples/bridge.ts and examples/replay-recovery.ts, run as the README says, against the broker.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDirs, useBroker } from './kafka/suite.js';
import { kafkaClient, createTopic, uniqueTopic, produceRecords, canon, consumeAll, topicOffsets } from './fixtures/kafka-records.js';
import { stripProvenance } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';
import { readmeBlock, runSnippet } from './helpers/readme.js';
import { CLI } from './fixtures/cli-run.js';

const EXAMPLES = fileURLToPath(new URL('../dist/examples/', import.meta.url));
const kb = useBroker(test);
const tmp = tempDirs(test);

function example(file, args, env) {
  const child = spawn(process.execPath, [path.join(EXAMPLES, file), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const lines = readline.createInterface({ input: child.stdout });
  lines.on('line', (l) => { stdout += `${l}\n`; });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, lines, exited };
}

test('bridge.js mirrors until SIGTERM; replay-recovery.js rebuilds the topic from a time, with a summary', async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'examples');
  const source = uniqueTopic('ex-src');
  const restored = uniqueTopic('ex-restored');
  const P = 2;
  const count = 2000;
  await createTopic(kafka, source, P);
  await produceRecords(kafka, source, { to: count, partitions: P });
  const dir = tmp('examples');

  const bridge = example('bridge.js', ['mirror'], { KAFKA_BROKERS: kb.brokers, WRITEAHEAD_DIR: dir, WRITEAHEAD_TOPIC: source, WRITEAHEAD_LAG_INTERVAL_MS: '100' });
  bridge.lines.on('line', (l) => {
    const o = JSON.parse(l);
    if (o.msg === 'lag' && o.lag === 0 && o.partitions.every((p) => p.next === count / P)) bridge.child.kill('SIGTERM');
  });
  const mirrored = await bridge.exited;
  t.is(mirrored.code, 0, mirrored.stderr);
  t.is(JSON.parse(mirrored.stdout.trim().split('\n').at(-1)).msg, 'stopped');

  // From a point in time: per partition, everything from the first record at or after it.
  const wal = await WriteAhead.open(dir, { readOnly: true });
  const byPartition = [];
  for (let p = 0; p < P; p++) {
    const recs = [];
    for await (const r of wal.iterate(p)) recs.push(r);
    byPartition.push(recs);
  }
  await wal.close();
  const cut = byPartition.flat().map((r) => r.timestamp).sort((a, b) => a - b)[count / 2];
  const expectedBy = byPartition.map((recs) => { const i = recs.findIndex((r) => r.timestamp >= cut); return i < 0 ? [] : recs.slice(i); });
  const expected = expectedBy.flat();
  const rebuilt = await example('replay-recovery.js', [dir, restored, '--brokers', kb.brokers, '--from', new Date(cut).toISOString(), '--create'], {}).exited;
  t.is(rebuilt.code, 0, rebuilt.stderr);
  t.regex(rebuilt.stdout, new RegExp(`^records +${expected.length}$`, 'm'));
  t.regex(rebuilt.stdout, /^duration +[\d.]+ s/m);
  t.regex(rebuilt.stdout, /^gaps +0 /m);

  // Both sides read through the same kafkajs consumer (whose header object regroups interleaved
  // duplicates), the original selected by offset: WAL offset = Kafka offset.
  const [original, copied] = await Promise.all([consumeAll(kafka, source, count), consumeAll(kafka, restored, expected.length)]);
  const form = (r, headers) => JSON.stringify(canon({ key: r.key, value: r.value, headers, timestamp: r.timestamp }));
  for (let p = 0; p < P; p++) {
    const from = expectedBy[p][0]?.offset ?? Infinity;
    t.deepEqual(copied.get(p).map((r) => form(r, stripProvenance(r.headers))), original.get(p).filter((r) => r.offset >= from).map((r) => form(r, r.headers)), `partition ${p}`);
  }
});

test('bridge.js replays the log into a topic until SIGINT: /healthz and /metrics answer, the group cursor follows, exit 0 with a summary', async (t) => {
  t.timeout(120_000);
  const P = 2;
  const perPartition = 500;
  const dir = tmp('bridge-replay');
  const wal = await WriteAhead.open(dir, { partitions: P });
  for (let p = 0; p < P; p++) await wal.appendBatch(p, Array.from({ length: perPartition }, (_, i) => ({ key: `k${i}`, value: `p${p} record ${i}` })));
  await wal.close();
  const target = uniqueTopic('ex-replayed');

  // As the header of bridge.ts says to run it, with any free port and a lag line every 100 ms.
  const bridge = example('bridge.js', ['replay'], {
    KAFKA_BROKERS: kb.brokers, WRITEAHEAD_DIR: dir, WRITEAHEAD_TOPIC: target, WRITEAHEAD_GROUP: 'to-kafka',
    WRITEAHEAD_CREATE_TOPIC: 'true', WRITEAHEAD_HTTP_PORT: '0', WRITEAHEAD_LAG_INTERVAL_MS: '100',
  });
  t.teardown(() => bridge.child.kill('SIGKILL'));
  const logged = [];
  const waiters = [];
  bridge.lines.on('line', (l) => {
    const o = JSON.parse(l);
    logged.push(o);
    for (const w of waiters.splice(0)) (w.test(o) ? w.resolve(o) : waiters.push(w));
  });
  const early = bridge.exited.then((r) => { throw new Error(`bridge.js exited early: ${JSON.stringify(r)}`); });
  early.catch(() => {});
  const waitFor = (test) => Promise.race([logged.find(test) ?? new Promise((resolve) => waiters.push({ test, resolve })), early]);

  const { port } = await waitFor((o) => o.msg === 'listening');
  // Every record replayed: Kafka acknowledged it, and the group cursor was committed after that.
  await waitFor((o) => o.msg === 'lag' && o.lag === 0 && o.partitions.length === P && o.partitions.every((x) => x.next === perPartition && x.end === perPartition));
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { status: 'ok', state: 'running' });
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (let p = 0; p < P; p++) {
    t.regex(metrics, new RegExp(`^writeahead_kafka_records_total\\{[^}]*partition="${p}"[^}]*\\} ${perPartition}$`, 'm'));
    t.regex(metrics, new RegExp(`^writeahead_kafka_lag\\{[^}]*partition="${p}"[^}]*\\} 0$`, 'm'));
  }
  t.regex(metrics, /^writeahead_kafka_up(\{[^}]*\})? 1$/m);

  bridge.child.kill('SIGINT');
  const replayed = await bridge.exited;
  t.is(replayed.code, 0, replayed.stderr);
  t.is(replayed.signal, null);
  t.true(logged.some((o) => o.msg === 'signal' && o.signal === 'SIGINT'));
  t.like(logged.at(-1), { msg: 'stopped', bridge: 'replay', topic: target, records: P * perPartition, skipped: 0, gaps: 0 });

  // The records are in the target topic, partition for partition, in order.
  const copied = await consumeAll(kafkaClient(kb.brokers, 'bridge-replay'), target, P * perPartition);
  for (let p = 0; p < P; p++) {
    t.deepEqual(copied.get(p).map((r) => [Buffer.from(r.key).toString(), Buffer.from(r.value).toString()]), Array.from({ length: perPartition }, (_, i) => [`k${i}`, `p${p} record ${i}`]), `partition ${p}`);
  }
  const after = await WriteAhead.open(dir, { readOnly: true });
  t.deepEqual(after.groups().map((g) => [g.name, g.partitions.map((x) => x.committed)]), [['to-kafka', Array(P).fill(perPartition)]]);
  await after.close();
});

test('replay-recovery.js on Ctrl-C: stops after the round in flight, prints its summary, shows the cursor again; a rerun sends the rest', async (t) => {
  t.timeout(120_000);
  const dir = tmp('interrupted');
  const count = 20_000;
  const wal = await WriteAhead.open(dir);
  for (let i = 0; i < count; i += 1000) await wal.appendBatch(0, Array.from({ length: 1000 }, (_, j) => `record ${i + j}`));
  await wal.close();
  const topic = uniqueTopic('ex-interrupted');
  // stderr is made a terminal for the progress bar, and the process interrupts itself the moment
  // the bar is first drawn (the replay has started, nothing is acknowledged yet): a user's Ctrl-C.
  const preload = path.join(path.dirname(dir), 'tty.mjs');
  fs.writeFileSync(preload, [
    'process.stderr.isTTY = true',
    'process.stderr.columns = 120',
    'const write = process.stderr.write.bind(process.stderr)',
    "let sent = false",
    "process.stderr.write = (chunk, ...rest) => { const r = write(chunk, ...rest); if (!sent && String(chunk).includes('replay ')) { sent = true; process.kill(process.pid, 'SIGINT') } return r }"
  ].join('\n'));
  const args = [path.join(EXAMPLES, 'replay-recovery.js'), dir, topic, '--brokers', kb.brokers, '--create'];
  const first = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, ...args], { encoding: 'utf8', timeout: 60_000 });
  t.is(first.signal, null, first.stderr);
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /^stopped +interrupted/m);
  const sent = Number(/^records +(\d+)$/m.exec(first.stdout)[1]);
  t.true(sent < count, first.stdout);
  // The cursor the bar hid is shown again.
  t.true(first.stderr.includes('\x1b[?25l'));
  t.true(first.stderr.lastIndexOf('\x1b[?25h') > first.stderr.lastIndexOf('\x1b[?25l'), JSON.stringify(first.stderr.slice(-200)));

  const second = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  t.is(second.status, 0, second.stderr);
  t.regex(second.stdout, new RegExp(`^records +${count - sent}$`, 'm'));
  const offsets = await topicOffsets(kafkaClient(kb.brokers, 'interrupted'), topic);
  t.is(Number(offsets[0].high), count);
});

test("the README's Kafka snippet runs as written against the broker", async (t) => {
  t.timeout(120_000);
  const kafka = kafkaClient(kb.brokers, 'readme');
  const source = uniqueTopic('orders');
  const target = uniqueTopic('orders-copy');
  await createTopic(kafka, source, 2);
  await produceRecords(kafka, source, { to: 500, partitions: 2 });
  const cwd = tmp('readme');
  // Only the broker address and the topic names change (to this broker and this test's topics).
  const code = readmeBlock("from 'writeahead/kafka'").code
    .replace("['127.0.0.1:9092']", JSON.stringify(kb.brokers.split(',')))
    .replace("topic: 'orders-copy'", `topic: '${target}'`)
    .replace("topic: 'orders'", `topic: '${source}'`);
  const r = await runSnippet(code, { cwd, timeoutMs: 100_000 });
  t.is(r.code, 0, r.stderr);
  // kafkajs's own logger writes JSON lines to stdout too.
  t.deepEqual(r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('{"level"')), ['500 records mirrored', '500 records replayed']);
  const copied = await consumeAll(kafka, target, 500);
  t.is(copied.get(0).length + copied.get(1).length, 500);
});

test("the README's Kafka shell walk-through runs line by line", async (t) => {
  t.timeout(180_000);
  const kafka = kafkaClient(kb.brokers, 'readme-sh');
  const orders = uniqueTopic('orders');
  const copy = uniqueTopic('orders-copy');
  const cwd = tmp('readme-sh');
  const block = readmeBlock('npx writeahead mirror --brokers HOST:PORT').code.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm run kafka:'));
  t.true(block.length >= 4);
  for (const line of block) {
    // Only the broker, the topic names and the command path change (npx runs the installed bin).
    const cmd = line
      .replace(/#.*$/, '')
      .replaceAll('HOST:PORT', kb.brokers)
      .replaceAll('--topic orders-copy', `--topic ${copy}`)
      .replaceAll('--topic orders ', `--topic ${orders} `)
      .replaceAll('npx writeahead', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`)
      .replace('--http-port 9464', '--http-port 0');
    const r = spawnSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', timeout: 120_000 });
    t.is(r.status, 0, `${line}\n${r.stderr}`);
  }
  const copied = await consumeAll(kafka, copy, 1000);
  t.deepEqual(copied.get(0).map((r) => Buffer.from(r.value).toString()), Array.from({ length: 1000 }, (_, i) => String(i + 1)));
});
