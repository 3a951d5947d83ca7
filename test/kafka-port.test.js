// The Kafka connectors' pieces that need no broker: header fidelity through kafkajs's own record
// encoder and decoder (the adapter relies on kafkajs internals: this pins them), murmur2 against
// kafkajs's partitioner, provenance headers, error mapping and optionsFromEnv.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import {
  kafkajsHeaders, orderedHeadersOf, patchKafkajsDecoders, patchKafkajsEncoders, murmur2, murmur2Partition, provenanceHeader, provenanceOf, POSITION_HEADER,
  stripProvenance, optionsFromEnv, KafkaPortError, mirror, replay, runMirror, runReplay,
} from '../dist/connectors/kafka/index.js';
import { toWalError } from '../dist/connectors/kafka/common.js';
import { toPortError } from '../dist/connectors/kafka/kafkajs-port.js';
import { encodeRecord } from '../dist/connectors/kafka/kafkajs-encoder.js';
import { WriteAhead } from '../dist/src/index.js';

const require = createRequire(import.meta.url);
const execFileP = promisify(execFile);
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const RecordDecoder = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
const Decoder = require('kafkajs/src/protocol/decoder.js');
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js');

patchKafkajsDecoders();

function roundTrip(headers, provenance) {
  const enc = Record({ key: Buffer.from('k'), value: Buffer.from('v'), headers: kafkajsHeaders(headers, provenance) });
  const d = new Decoder(enc.buffer);
  d.readVarInt(); // record length
  return RecordDecoder(d, { firstOffset: '0', firstTimestamp: '0' });
}

const norm = (hs) => hs.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value).toString('hex') }));

test('headers keep order, interleaved duplicates, integer-like keys and null values through kafkajs', (t) => {
  const headers = [
    { key: 'a', value: Buffer.from('1') },
    { key: 'b', value: null },
    { key: 'a', value: Buffer.from('3') },
    { key: '10', value: Buffer.alloc(0) },
    { key: '2', value: Buffer.from([0, 255]) },
    { key: '__proto__', value: Buffer.from('p') },
    { key: 'a', value: null },
  ];
  const rec = roundTrip(headers);
  const got = orderedHeadersOf(rec.headers);
  t.true(got.exact);
  t.deepEqual(norm(got.headers), norm(headers));
  // kafkajs users in the same process still see kafkajs's usual object form.
  t.deepEqual(Object.keys(rec.headers).sort(), ['10', '2', '__proto__', 'a', 'b'].sort());
  t.deepEqual(norm(orderedHeadersOf(roundTrip([]).headers).headers), []);
  // The list handed out is an ordinary array to its users, reduce included.
  t.is(got.headers.reduce((n, h) => n + (h.key === 'a' ? 1 : 0), 0), 3);
  t.is(got.headers.reduce((a, h) => (a.key === 'a' ? a : h)).key, 'a');
  t.deepEqual(got.headers.map((h) => h.key), headers.map((h) => h.key));
  t.true(Array.isArray(got.headers));
});

test('header round trip: random header lists', (t) => {
  const header = fc.record({
    key: fc.constantFrom('a', 'b', 'x-trace', '1', '07', ''),
    value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
  });
  fc.assert(
    fc.property(fc.array(header, { maxLength: 12 }), (hs) => {
      const headers = hs.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) }));
      const got = orderedHeadersOf(roundTrip(headers).headers);
      t.deepEqual(norm(got.headers), norm(headers));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the patched decoder builds the very header object kafkajs\'s own fold builds', (t) => {
  // kafkajs's own result: its record decoder folding a plain array (the unpatched path).
  const unpatched = (buffer) => {
    const d = new Decoder(buffer);
    d.readVarIntArray = function (reader) {
      const out = [];
      for (let n = this.readVarInt(), i = 0; i < n; i++) out.push(reader(this));
      return out;
    };
    d.readVarInt();
    return RecordDecoder(d, { firstOffset: '0', firstTimestamp: '0' }).headers;
  };
  const header = fc.record({
    key: fc.constantFrom('a', 'b', '1', '07', '', '__proto__', 'toString', 'constructor', 'hasOwnProperty', 'é'),
    value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
  });
  const own = (o) => Reflect.ownKeys(o).filter((k) => typeof k === 'string').map((k) => [k, Object.getOwnPropertyDescriptor(o, k)]);
  fc.assert(
    fc.property(fc.array(header, { maxLength: 10 }), (hs) => {
      const headers = hs.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) }));
      const enc = Record({ key: Buffer.from('k'), value: Buffer.from('v'), headers: kafkajsHeaders(headers) });
      const want = unpatched(enc.buffer);
      const d = new Decoder(enc.buffer);
      d.readVarInt();
      const got = RecordDecoder(d, { firstOffset: '0', firstTimestamp: '0' }).headers;
      t.is(Object.getPrototypeOf(got), Object.getPrototypeOf(want));
      t.deepEqual(own(got), own(want));
      t.deepEqual(norm(orderedHeadersOf(got).headers), norm(headers));
    }),
    { numRuns: 300 },
  );
});

test('the provenance header is added while kafkajs encodes, after the record\'s own headers', (t) => {
  const header = fc.record({
    key: fc.constantFrom('a', 'x-trace', POSITION_HEADER),
    value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
  });
  const source = fc.option(fc.constantFrom('dc-1', 'a:b'), { nil: null });
  fc.assert(
    fc.property(fc.array(header, { maxLength: 6 }), fc.nat(1000), fc.maxSafeNat(), source, (hs, partition, offset, src) => {
      const headers = hs.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) }));
      const before = norm(headers);
      const got = orderedHeadersOf(roundTrip(headers, { partition, offset, source: src }).headers).headers;
      t.deepEqual(norm(got), [...before, norm([provenanceHeader(partition, offset, src)])[0]]);
      t.deepEqual(provenanceOf(got), { partition, offset, source: src });
      t.deepEqual(norm(stripProvenance(got)), before);
      t.deepEqual(norm(headers), before, 'the record\'s own header list is left as it was');
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the record encoder patch writes the very bytes kafkajs\'s own record encoder writes', (t) => {
  const buffer = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
  const bytes = fc.oneof(fc.constant(null), fc.constant(undefined), fc.string({ unit: 'binary', maxLength: 12 }), buffer);
  const value = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)));
  const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('__proto__', '1', '07', 'toString'));
  const plain = fc.dictionary(key, fc.oneof(value, fc.array(value, { maxLength: 3 })), { maxKeys: 5 });
  const walHeader = fc.record({ key: fc.string({ unit: 'binary', maxLength: 6 }), value: fc.option(fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)), { nil: null }) });
  const provenance = fc.option(fc.record({ partition: fc.nat(100), offset: fc.maxSafeNat(), source: fc.option(fc.string({ maxLength: 5 }), { nil: null }) }), { nil: undefined });
  const ordered = fc.tuple(fc.array(walHeader, { maxLength: 5 }), provenance).map(([hs, p]) => kafkajsHeaders(hs, p));
  const delta = fc.oneof(fc.integer({ min: -300, max: 300 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.double({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1, noNaN: true }).map(Math.trunc));
  const input = fc.record({
    key: bytes, value: bytes, headers: fc.oneof(plain, ordered), offsetDelta: fc.nat(2 ** 27), timestampDelta: delta,
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(input, (m) => {
      const fast = encodeRecord(m);
      t.true(Buffer.isBuffer(fast), 'these shapes are all encoded by the patch');
      t.deepEqual(fast, Record(m).buffer);
    }),
    { numRuns: 1000 },
  );
});

test('the record encoder patch leaves kafkajs\'s encoder, and its errors, to shapes it does not handle', (t) => {
  patchKafkajsEncoders();
  const patched = require('kafkajs/src/protocol/recordBatch/record/v0/index.js');
  t.not(patched, Record, 'kafkajs\'s module now exports the patched encoder');
  const attempt = (f) => { try { return { bytes: f().buffer.toString('hex') }; } catch (err) { return { error: `${err.constructor.name}: ${err.message}` }; } };
  const shapes = [
    { key: 5 }, { value: {} }, { key: new Uint8Array([1, 2]) }, { headers: null }, { headers: { a: null } },
    // eslint-disable-next-line no-sparse-arrays
    { headers: { a: [Buffer.from('x'), , 'y'] } }, { headers: { a: [undefined] } }, { headers: { a: 7 } },
    { timestampDelta: null }, { timestampDelta: 1.5 }, { timestampDelta: 2 ** 52 }, { timestampDelta: -(2 ** 53) + 1 }, { timestampDelta: Number.NaN }, { offsetDelta: -1 }, { offsetDelta: 2 ** 31 },
    { headers: { a: Object.assign(['p', 'q'], { map: () => [{ key: 'z', value: 'w' }] }) } },
  ];
  for (const m of shapes) {
    t.is(encodeRecord(m), undefined, `${JSON.stringify(m)} is left to kafkajs`);
    t.deepEqual(attempt(() => patched(m)), attempt(() => Record(m)), JSON.stringify(m));
  }
  t.true(shapes.some((m) => attempt(() => Record(m)).error !== undefined), 'some of them make kafkajs throw');
  // A header whose value shrinks between reads: never a record with pool memory left in it.
  let reads = 0;
  const shrinking = { key: 'a', get value() { return Buffer.from(reads++ === 0 ? 'zz' : 'z'); } };
  t.is(encodeRecord({ key: 'k', headers: kafkajsHeaders([shrinking]) }), undefined);
});

test('the record encoder patch leaves kafkajs copies other than 2.2 alone', async (t) => {
  // kafkajs 1.x, for one, encodes header arrays differently: a copy that says it is 1.16 stays as it is.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'writeahead-kafkajs-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const copy = path.join(root, 'node_modules', 'kafkajs');
  fs.cpSync(path.dirname(path.dirname(require.resolve('kafkajs/src/protocol/encoder.js'))), path.join(copy, 'src'), { recursive: true });
  fs.writeFileSync(path.join(copy, 'package.json'), JSON.stringify({ name: 'kafkajs', version: '1.16.0' }));
  const other = path.join(copy, 'src', 'protocol', 'recordBatch', 'record', 'v0', 'index.js');
  const script = `
    import { createRequire } from 'node:module'
    const require = createRequire(${JSON.stringify(import.meta.url)})
    const before = require(${JSON.stringify(other)})
    require(${JSON.stringify(path.join(copy, 'src', 'protocol', 'encoder.js'))})
    const ours = require('kafkajs/src/protocol/recordBatch/record/v0/index.js')
    const { patchKafkajsEncoders } = await import(${JSON.stringify(new URL('../dist/connectors/kafka/index.js', import.meta.url).href)})
    const patched = patchKafkajsEncoders()
    console.log(JSON.stringify({ patched, otherKept: require(${JSON.stringify(other)}) === before, oursPatched: require('kafkajs/src/protocol/recordBatch/record/v0/index.js') !== ours }))`;
  const got = JSON.parse((await execFileP(process.execPath, ['--input-type=module', '-e', script])).stdout);
  t.deepEqual(got, { patched: 1, otherKept: true, oursPatched: true });
});

test('produce requests go through the patched record encoder, even when kafkajs loaded them before the patch', async (t) => {
  // Counted by kafkajs's zero-filled 512-byte encoder buffers: two per record (the record and its
  // header) without the patch, a handful per request with it. In a child: the patch is process-wide.
  const script = `
    import { createRequire } from 'node:module'
    const require = createRequire(${JSON.stringify(import.meta.url)})
    const produce = require('kafkajs/src/protocol/requests/produce/index.js')
    require('kafkajs/src/protocol/requests/produce/v7/request.js')
    const { patchKafkajsEncoders } = await import(${JSON.stringify(new URL('../dist/connectors/kafka/index.js', import.meta.url).href)})
    const messages = Array.from({ length: 100 }, (_, i) => ({ key: 'k' + i, value: Buffer.alloc(50, i), headers: { h: String(i) }, timestamp: String(1700000000000 + i) }))
    async function encode () {
      let zeroed = 0
      const alloc = Buffer.alloc
      Buffer.alloc = (size, ...rest) => { if (size === 512) zeroed++; return alloc.call(Buffer, size, ...rest) }
      try {
        const { request } = produce.protocol({ version: 7 })({ acks: -1, timeout: 1000, compression: 0, producerId: 5, producerEpoch: 0,
          topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }] })
        const bytes = (await request.encode()).buffer.toString('hex')
        return { zeroed, bytes }
      } finally { Buffer.alloc = alloc }
    }
    const before = await encode()
    const patched = patchKafkajsEncoders()
    const after = await encode()
    console.log(JSON.stringify({ patched, before: before.zeroed, after: after.zeroed, same: before.bytes === after.bytes }))`;
  const run = async (env) => JSON.parse((await execFileP(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env } })).stdout);
  const got = await run({});
  t.is(got.patched, 1);
  t.true(got.before >= 200, `kafkajs's own encoder: ${got.before} zero-filled buffers`);
  t.true(got.after < 20, `patched: ${got.after} zero-filled buffers`);
  t.true(got.same, 'the same request bytes');
  const kept = await run({ WRITEAHEAD_KAFKAJS_ENCODER: 'kafkajs' });
  t.is(kept.patched, 0, 'WRITEAHEAD_KAFKAJS_ENCODER=kafkajs keeps kafkajs\'s encoder');
  t.true(kept.after >= 200);
});

test('murmur2 matches kafkajs and Kafka reference values', (t) => {
  // Reference values from Kafka's UtilsTest (murmur2 of "21", "foobar", ... as signed ints).
  const ref = {
    21: -973932308,
    foobar: -790332482,
    'a-little-bit-long-string': -985981536,
    'a-little-bit-longer-string': -1486304829,
    'lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8': -58897971,
    abc: 479470107,
  };
  for (const [k, v] of Object.entries(ref)) t.is(murmur2(Buffer.from(k)), v, k);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 100 }), (bytes, n) => {
      const key = Buffer.from(bytes);
      return murmur2(key) === kafkajsMurmur2(key) && murmur2Partition(key, n) === (kafkajsMurmur2(key) & 0x7fffffff) % n;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('the provenance header is appended, parsed and stripped', (t) => {
  const own = [{ key: 'a', value: Buffer.from('1') }, { key: 'a', value: null }];
  const withProv = [...own, provenanceHeader(3, 12345)];
  t.deepEqual(withProv[2], { key: POSITION_HEADER, value: Buffer.from('3:12345') });
  t.deepEqual(provenanceOf(withProv), { partition: 3, offset: 12345, source: null });
  t.deepEqual(stripProvenance(withProv), own);
  // A source may itself hold colons: everything after the second one is the source.
  const withSource = [...own, provenanceHeader(0, 0, 'wal:a')];
  t.deepEqual(provenanceOf(withSource), { partition: 0, offset: 0, source: 'wal:a' });
  t.deepEqual(stripProvenance(withSource), own);
  t.is(provenanceOf(own), null);
  t.is(provenanceOf([]), null);
  // Only the last header counts, and only a well-formed one: nothing else is stripped.
  t.is(provenanceOf([provenanceHeader(1, 2), ...own]), null);
  for (const bad of ['x:1', '1:x', '1', ':1', '1:', '01:2', '1:-2', '1:99999999999999999', '']) {
    const hs = [...own, { key: POSITION_HEADER, value: Buffer.from(bad) }];
    t.is(provenanceOf(hs), null, bad);
    t.deepEqual(stripProvenance(hs), hs, bad);
  }
  t.is(provenanceOf([...own, { key: POSITION_HEADER, value: null }]), null);
});

test('kafkajs errors map to reasons and WalError codes', (t) => {
  const sasl = Object.assign(new Error('SASL PLAIN authentication failed'), { name: 'KafkaJSSASLAuthenticationError' });
  t.is(toPortError(sasl, 'x').reason, 'auth');
  t.is(toWalError(sasl, 'mirror').code, 'INVALID_OPTION');
  const conn = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'), { name: 'KafkaJSConnectionError', retriable: true });
  const retries = Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: conn });
  t.is(toPortError(retries, 'x').reason, 'connection');
  t.true(toPortError(retries, 'x').retriable);
  t.is(toWalError(retries, 'mirror').code, 'IO_ERROR');
  t.is(toWalError(new KafkaPortError('unknown-topic', 'topic t does not exist'), 'mirror').code, 'INVALID_ARGUMENT');
  t.is(toWalError(new KafkaPortError('unknown-topic', 'topic t does not exist'), 'mirror').details.kafka, 'unknown-topic');
  // A record the broker refuses is refused again if resent.
  const invalid = Object.assign(new Error('This record has failed the validation on broker and hence be rejected'), { name: 'KafkaJSProtocolError', type: 'INVALID_RECORD', retriable: false });
  t.like(toPortError(invalid, 'x'), { reason: 'config', retriable: false });
});

test('optionsFromEnv reads plain options and rejects bad values', (t) => {
  const o = optionsFromEnv({
    KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093',
    KAFKA_SASL_MECHANISM: 'scram-sha-256',
    KAFKA_SASL_USERNAME: 'u',
    KAFKA_SASL_PASSWORD: 'p',
    KAFKA_SSL: 'true',
    WRITEAHEAD_DIR: '/data/wal',
    WRITEAHEAD_TOPIC: 'events',
    WRITEAHEAD_GROUP: 'replayer',
    WRITEAHEAD_FROM: '2024-01-02T00:00:00Z',
    WRITEAHEAD_PARTITIONER: 'murmur2',
    WRITEAHEAD_HTTP_PORT: '9464',
    WRITEAHEAD_LAG_INTERVAL_MS: '5000',
  });
  t.deepEqual(o, {
    kafka: { brokers: ['127.0.0.1:9092', '127.0.0.1:9093'], sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' }, ssl: true },
    dir: '/data/wal',
    topic: 'events',
    group: 'replayer',
    from: { timestamp: Date.parse('2024-01-02T00:00:00Z') },
    partitioner: 'murmur2',
    httpPort: 9464,
    lagIntervalMs: 5000,
  });
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '42' }), { from: 42 });
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '@1700000000000' }), { from: { timestamp: 1700000000000 } });
  t.deepEqual(optionsFromEnv({}), {});
  for (const env of [
    { WRITEAHEAD_HTTP_PORT: 'x' },
    { WRITEAHEAD_OFFSETS: 'sparse' },
    { KAFKA_SASL_MECHANISM: 'plain' },
    { KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' },
    { WRITEAHEAD_FROM: 'yesterday' },
    // Date.parse reads these as times; a start position must be an offset or a real ISO-8601 time.
    { WRITEAHEAD_FROM: '-1' },
    { WRITEAHEAD_FROM: '1.5' },
    { WRITEAHEAD_FROM: '2026-02-30' },
  ]) {
    const err = t.throws(() => optionsFromEnv(env));
    t.is(err.code, 'INVALID_OPTION');
    t.regex(err.message, new RegExp(Object.keys(env)[0]));
  }
});

test('connector options are validated before anything is touched', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-kafka-opts-'));
  const wal = path.join(dir, 'wal');
  const fakeKafka = { consumer() {}, producer() {}, admin() {} };
  await t.throwsAsync(mirror({ kafka: fakeKafka, topic: 'bad topic', wal }), { code: 'INVALID_OPTION' });
  await t.throwsAsync(mirror({ kafka: fakeKafka, topic: 't', wal, offsets: 'sparse' }), { code: 'INVALID_OPTION' });
  // Removed, and refused rather than ignored: tombstones are stored as they are now.
  const removed = await t.throwsAsync(mirror({ kafka: fakeKafka, topic: 't', wal, nullValues: 'skip' }), { code: 'INVALID_OPTION' });
  t.regex(removed.message, /nullValues: removed; tombstones/);
  await t.throwsAsync(runMirror({ kafka: fakeKafka, topic: 't', dir: wal, nullValues: 'empty', log: () => {} }), { code: 'INVALID_OPTION' });
  // A misspelt option is refused, naming it, as WriteAhead.open refuses one.
  const typo = await t.throwsAsync(mirror({ kafka: fakeKafka, topic: 't', wal, stopAtend: true }), { code: 'INVALID_OPTION' });
  t.is(typo.message, 'option stopAtend: unknown option of mirror()');
  t.is(typo.details.option, 'stopAtend');
  await t.throwsAsync(replay({ kafka: fakeKafka, topic: 't', wal, grup: 'g' }), { code: 'INVALID_OPTION', message: 'option grup: unknown option of replay()' });
  // The bridges too; each takes the other's options (one environment serves both) and ignores them.
  const logged = [];
  await t.throwsAsync(runMirror({ kafka: fakeKafka, topic: 't', dir: wal, stopAtend: true, log: (e) => logged.push(e) }), { code: 'INVALID_OPTION', message: 'option stopAtend: unknown option of runMirror()' });
  t.like(logged.at(-1), { level: 'fatal', msg: 'failed', code: 'INVALID_OPTION' });
  await t.throwsAsync(runReplay({ kafka: fakeKafka, topic: 't', dir: wal, grup: 'g', log: () => {} }), { code: 'INVALID_OPTION', message: 'option grup: unknown option of runReplay()' });
  const other = await t.throwsAsync(runMirror({ kafka: fakeKafka, topic: 'bad topic', dir: wal, group: 'g', partitioner: 'same', log: () => {}, handleSignals: false }), { code: 'INVALID_OPTION' });
  t.regex(other.message, /topic/, 'past the option check: replay options given to runMirror are ignored');
  await t.throwsAsync(mirror({ kafka: {}, topic: 't', wal }), { code: 'INVALID_OPTION' });
  await t.throwsAsync(replay({ kafka: fakeKafka, topic: 't', wal, partitioner: 'random' }), { code: 'INVALID_OPTION' });
  // Replay reads a log: a directory holding none is refused before anything connects, not created.
  await t.throwsAsync(replay({ kafka: fakeKafka, topic: 't', wal }), { code: 'NOT_A_WAL', message: `${wal} does not exist` });
  fs.mkdirSync(wal);
  await t.throwsAsync(replay({ kafka: fakeKafka, topic: 't', wal }), { code: 'NOT_A_WAL', message: `${wal} holds no write-ahead log` });
  t.deepEqual(fs.readdirSync(wal), []);
  fs.rmdirSync(wal);
  t.false(fs.existsSync(wal));
  const w = await WriteAhead.open(wal, { partitions: 1 });
  await t.throwsAsync(replay({ kafka: fakeKafka, topic: 't', wal: w, maxBatchRecords: 0 }), { code: 'INVALID_OPTION' });
  await w.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an unreachable broker (closed loopback port) is IO_ERROR within startTimeoutMs; the WAL is untouched', async (t) => {
  t.timeout(60_000);
  const net = await import('node:net');
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const { runMirror, runReplay } = await import('../dist/connectors/kafka/index.js');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-kafka-unreachable-'));
  const fresh = path.join(root, 'fresh');
  const existing = path.join(root, 'existing');
  const w = await WriteAhead.open(existing, { partitions: 2 });
  await w.appendBatch(0, ['a', 'b']);
  await w.close();
  const snapshot = () => fs.readdirSync(existing, { recursive: true }).filter((f) => !f.endsWith('LOCK')).sort()
    .map((f) => [f, fs.statSync(path.join(existing, f)).isFile() ? fs.readFileSync(path.join(existing, f)).toString('base64') : 'dir']);
  const before = snapshot();
  const kafka = { brokers: [`127.0.0.1:${port}`], connectionTimeoutMs: 500, retries: 2 };
  const logs = [];
  const cases = [
    () => runMirror({ kafka, dir: fresh, topic: 't', startTimeoutMs: 3000, log: (e) => logs.push(e), handleSignals: false }),
    () => runReplay({ kafka, dir: existing, topic: 't', group: 'g', startTimeoutMs: 3000, log: (e) => logs.push(e), handleSignals: false }),
  ];
  for (const run of cases) {
    const t0 = Date.now();
    const err = await t.throwsAsync(run(), { code: 'IO_ERROR' });
    const took = Date.now() - t0;
    t.true(took >= 2500 && took < 8000, `took ${took} ms`);
    t.is(err.details.kafka, 'connection');
    t.regex(err.message, /could not start within 3000 ms/);
    t.regex(err.message, /ECONNREFUSED|Connection|connect/i);
    t.notRegex(err.message, /(mirror of t|replay to t):.*\1:/, 'the connector and topic are named once');
  }
  t.true(logs.some((e) => e.level === 'fatal' && e.code === 'IO_ERROR'));
  // kafkajs still retrying when the start deadline passes: the deadline's own error says what was waited for.
  const patient = { ...kafka, retries: 50 };
  for (const run of [
    () => runMirror({ kafka: patient, dir: fresh, topic: 't', startTimeoutMs: 1500, log: () => {}, handleSignals: false }),
    () => runReplay({ kafka: patient, dir: existing, topic: 't', group: 'g', startTimeoutMs: 1500, log: () => {}, handleSignals: false }),
  ]) {
    const err = await t.throwsAsync(run(), { code: 'IO_ERROR' });
    t.regex(err.message, /^(mirror of|replay to) t: could not start within 1500 ms: reaching Kafka: no answer within/);
  }
  t.false(fs.existsSync(fresh));
  t.deepEqual(snapshot(), before);
  fs.rmSync(root, { recursive: true, force: true });
});
