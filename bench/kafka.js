#!/usr/bin/env node
// The Kafka connectors against kafkajs itself, in one run on one broker:
//   mirror (Kafka -> WAL, durable, exactly once)  vs  a raw kafkajs consumer that only counts
//   replay (WAL -> Kafka, acks -1, cursor commits) vs  a raw kafkajs idempotent producer (acks -1)
// The raw clients run in a process of their own (lib/kafka-raw.js): kafkajs alone, unpatched.
// Replay's records are encoded by the connectors' record encoder (same bytes, less CPU than
// kafkajs's), which is why replay can beat kafkajs alone; --kafkajs-encoder shows it without.
// Usage: USAGE below (--help).
//
// Uses KAFKA_BROKERS if set, else starts the test broker (test/kafka/broker.js). The WAL lives under
// bench/tmp (a real disk: fdatasync matters). Ratios are connector / raw throughput (1.0 = as fast
// as kafkajs alone), medians over runs. --save writes bench/results/kafka-latest.json.
import fs from 'node:fs'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { startBroker } from '../test/kafka/broker.js'
import { mirror, replay, kafkajsPort } from '../dist/connectors/kafka/index.js'
import { BATCH, consumerOpts, message as messageOf, steady } from './lib/kafka-shared.js'
import { benchArgs } from './lib/args.js'
import { median } from './lib/common.js'

const { Kafka, logLevel } = kafkajs
const HERE = path.dirname(fileURLToPath(import.meta.url))
const USAGE = `usage: npm run bench -- kafka [options]      (or: node bench/kafka.js [options])

options:
  --quick               fewer records, one run
  --records=N           records per run (default 300000; 50000 with --quick)
  --runs=N              runs (default 3; 1 with --quick)
  --partitions=N        topic partitions (default 4)
  --value=BYTES         value size (default 100)
  --save                write bench/results/kafka-latest.json
  --no-provenance       replay without its provenance header, to see what the header costs
  --kafkajs-encoder     replay with kafkajs's own record encoder rather than the connectors'
                        (connectors/kafka/kafkajs-encoder.ts), to see what that saves
  -h, --help            this text

KAFKA_BROKERS=host:port uses that broker; otherwise the test broker is started.`
const { values: flags } = benchArgs(USAGE, {
  quick: { type: 'boolean' },
  records: { type: 'string' },
  runs: { type: 'string' },
  partitions: { type: 'string' },
  value: { type: 'string' },
  save: { type: 'boolean' },
  'no-provenance': { type: 'boolean' },
  'kafkajs-encoder': { type: 'boolean' }
}, { numbers: ['records', 'runs', 'partitions', 'value'] })
const QUICK = flags.quick === true
const RECORDS = Number(flags.records ?? (QUICK ? 50_000 : 300_000))
const RUNS = Number(flags.runs ?? (QUICK ? 1 : 3))
const PARTITIONS = Number(flags.partitions ?? 4)
const VALUE = Number(flags.value ?? 100)
// What the provenance header costs: replay without it (and so without sole-writer deduplication).
const NO_PROVENANCE = flags['no-provenance'] === true
// Read when the first port is made (kafkajsPort below), which is when the patch would be applied.
if (flags['kafkajs-encoder'] === true) process.env.WRITEAHEAD_KAFKAJS_ENCODER = 'kafkajs'

const fmt = (n) => Math.round(n).toLocaleString('en-US')

let broker = null
let brokers = process.env.KAFKA_BROKERS
if (!brokers) {
  process.stderr.write('starting a Kafka broker...\n')
  broker = await startBroker()
  brokers = broker.brokers
}
const kafka = new Kafka({ clientId: 'writeahead-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
const admin = kafka.admin()
await admin.connect()
// Creates topics and waits for their leaders (see kafkajs-port.ts: kafkajs's own wait gives up too early).
const port = kafkajsPort(kafka)
const tmpRoot = path.join(HERE, 'tmp', `kafka-${process.pid}`)
fs.mkdirSync(tmpRoot, { recursive: true })

const message = (i) => messageOf(i, PARTITIONS, VALUE)

async function newTopic (prefix) {
  const topic = `${prefix}-${randomUUID().slice(0, 8)}`
  await port.createTopic(topic, { partitions: PARTITIONS, replicationFactor: 1 })
  return topic
}

/** kafkajs alone, in its own process (see lib/kafka-raw.js): `mode` is produce or consume. */
async function raw (mode, topic) {
  const args = [path.join(HERE, 'lib', 'kafka-raw.js'), mode, brokers, topic, String(RECORDS), String(PARTITIONS), String(VALUE)]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d) => { out += d })
  const [code, signal] = await once(child, 'close')
  if (code !== 0) throw new Error(`raw kafkajs ${mode} exited with ${code ?? signal}`)
  return JSON.parse(out.trim().split('\n').pop())
}

async function runMirror (topic, dir) {
  const t0 = performance.now()
  const st = steady()
  const m = await mirror({ kafka, topic, wal: dir, stopAtEnd: true, groupId: `bench-${randomUUID()}`, consumer: consumerOpts })
  m.on('batch', (e) => st.batch(e.records))
  const s = await m.done
  if (s.records !== RECORDS) throw new Error(`mirror moved ${s.records} records, expected ${RECORDS}`)
  return { ms: performance.now() - t0, steady: st.rate() }
}

async function runReplay (dir) {
  const topic = await newTopic('bench-replay')
  const t0 = performance.now()
  const st = steady()
  const r = await replay({ kafka, wal: dir, topic, group: 'bench', maxBatchRecords: BATCH, ...(NO_PROVENANCE ? { provenance: false, soleWriter: false } : {}) })
  r.on('batch', (e) => st.batch(e.records))
  const s = await r.done
  if (s.records !== RECORDS) throw new Error(`replay moved ${s.records} records, expected ${RECORDS}`)
  return { ms: performance.now() - t0, steady: st.rate() }
}

/** Mean payload bytes of a record as produced (key + value + header keys and values), for MB/s. */
function meanBytes () {
  let total = 0
  for (let i = 0; i < RECORDS; i++) {
    const m = message(i)
    total += m.key.length + m.value.length
    for (const [k, v] of Object.entries(m.headers)) for (const x of [v].flat()) total += Buffer.byteLength(k) + Buffer.byteLength(x)
  }
  return total / RECORDS
}
const BYTES = meanBytes()
const mbs = (rate) => (rate * BYTES / 1e6).toFixed(1)

const KINDS = ['produce', 'consume', 'mirror', 'replay']
const rows = { endToEnd: Object.fromEntries(KINDS.map((k) => [k, []])), steady: Object.fromEntries(KINDS.map((k) => [k, []])) }
const record = (kind, r) => { rows.endToEnd[kind].push(RECORDS / r.ms * 1000); rows.steady[kind].push(r.steady) }
try {
  for (let run = 0; run < RUNS; run++) {
    const topic = await newTopic('bench-src')
    record('produce', await raw('produce', topic))
    record('consume', await raw('consume', topic))
    const dir = path.join(tmpRoot, `wal-${run}`)
    record('mirror', await runMirror(topic, dir))
    record('replay', await runReplay(dir))
    fs.rmSync(dir, { recursive: true, force: true })
    process.stderr.write(`run ${run + 1}/${RUNS} done\n`)
  }
  const medians = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, median(v)]))
  const med = medians(rows.steady)
  const e2e = medians(rows.endToEnd)
  // Ratios are medians of per-run ratios: each connector run against the raw run right before it.
  const ratio = (a, b) => median(rows.steady[a].map((x, i) => x / rows.steady[b][i]))
  const result = {
    date: new Date().toISOString(),
    records: RECORDS,
    partitions: PARTITIONS,
    valueBytes: VALUE,
    runs: RUNS,
    recordsPerSecond: med,
    endToEndRecordsPerSecond: e2e,
    perRun: rows,
    meanRecordBytes: BYTES,
    megabytesPerSecond: Object.fromEntries(Object.entries(med).map(([k, v]) => [k, v * BYTES / 1e6])),
    ratios: { mirrorVsRawConsume: ratio('mirror', 'consume'), replayVsRawProduce: ratio('replay', 'produce') },
    endToEndRatios: { mirrorVsRawConsume: e2e.mirror / e2e.consume, replayVsRawProduce: e2e.replay / e2e.produce }
  }
  console.log(`\nKafka connectors: ${fmt(RECORDS)} records x ${VALUE} B, ${PARTITIONS} partitions, median of ${RUNS} run(s)`)
  console.log('steady state: from the first batch to the last; end to end: from the call to the last record, startup included\n')
  console.log(`| path | records/s | MB/s (${BYTES.toFixed(0)} B of key, value and headers a record) | vs kafkajs alone | end to end records/s | end to end vs kafkajs |`)
  console.log('|---|---:|---:|---:|---:|---:|')
  console.log(`| kafkajs consume (count only) | ${fmt(med.consume)} | ${mbs(med.consume)} | 1.00 | ${fmt(e2e.consume)} | 1.00 |`)
  console.log(`| mirror: Kafka -> WAL (fdatasync, checkpoint) | ${fmt(med.mirror)} | ${mbs(med.mirror)} | ${result.ratios.mirrorVsRawConsume.toFixed(2)} | ${fmt(e2e.mirror)} | ${result.endToEndRatios.mirrorVsRawConsume.toFixed(2)} |`)
  console.log(`| kafkajs produce (idempotent, acks -1) | ${fmt(med.produce)} | ${mbs(med.produce)} | 1.00 | ${fmt(e2e.produce)} | 1.00 |`)
  console.log(`| replay: WAL -> Kafka (acks -1, cursor commit) | ${fmt(med.replay)} | ${mbs(med.replay)} | ${result.ratios.replayVsRawProduce.toFixed(2)} | ${fmt(e2e.replay)} | ${result.endToEndRatios.replayVsRawProduce.toFixed(2)} |`)
  if (flags.save === true) {
    const out = path.join(HERE, 'results', 'kafka-latest.json')
    fs.mkdirSync(path.dirname(out), { recursive: true })
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n')
    console.log(`\nsaved ${path.relative(process.cwd(), out)}`)
  }
} finally {
  fs.rmSync(tmpRoot, { recursive: true, force: true })
  await port.close()
  await admin.disconnect()
  if (broker) await broker.stop()
}
