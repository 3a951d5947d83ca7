// Smoke tests of the compiled examples: each runs as `node dist/examples/<name>.js` in a child
// process, on a temporary directory ($WRITEAHEAD_DIR), and must end by itself.
import test from 'ava'
import fs from 'node:fs'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tmpDir } from './helpers/tmp.js'
import { WriteAhead } from '../dist/src/index.js'
import { run as cli } from './fixtures/cli-run.js'

const exec = promisify(execFile)

async function example (name, dir, env = {}) {
  const file = fileURLToPath(new URL(`../dist/examples/${name}.js`, import.meta.url))
  const { stdout, stderr } = await exec(process.execPath, [file], { env: { ...process.env, WRITEAHEAD_DIR: dir, ...env }, timeout: 120_000 })
  return { stdout, stderr }
}

test('quickstart: writes through pipeline(), a group consumes live, and a second run resumes the group', async (t) => {
  const dir = tmpDir(t)
  const first = await example('quickstart', dir)
  t.is(first.stderr, '')
  t.regex(first.stdout, /^opened .*: 4 partitions$/m)
  for (let p = 0; p < 4; p++) {
    t.regex(first.stdout, new RegExp(`^partition ${p}: 0 records on disk; group quickstart is new`, 'm'))
    t.regex(first.stdout, new RegExp(`^partition ${p}: offsets 0\\.\\.4999 appended`, 'm'))
    t.regex(first.stdout, new RegExp(`^partition ${p}: committed 5000, end 5000, lag 0$`, 'm'))
  }
  t.regex(first.stdout, /^wrote 20000 records in \d+ ms: \d+ records\/s/m)
  t.regex(first.stdout, /^group quickstart consumed 20000 records \(5000 \+ 5000 \+ 5000 \+ 5000\)/m)
  t.false(first.stdout.includes('resuming'))

  const second = await example('quickstart', dir)
  for (let p = 0; p < 4; p++) {
    t.regex(second.stdout, new RegExp(`^partition ${p}: 5000 records on disk; resuming group quickstart at offset 5000 \\(lag 0\\)$`, 'm'))
    t.regex(second.stdout, new RegExp(`^partition ${p}: committed 10000, end 10000, lag 0$`, 'm'))
  }
  t.regex(second.stdout, /^group quickstart consumed 20000 records/m)

  // The CLI agrees.
  const groups = JSON.parse((await cli(['groups', dir, '--json'])).stdout)
  t.deepEqual(groups.map((g) => [g.name, g.lag]), [['quickstart', 0]])
})

test('quickstart resumes from a cursor that lags behind: it consumes what the group missed', async (t) => {
  const dir = tmpDir(t)
  await example('quickstart', dir, { QUICKSTART_RECORDS: '300' })
  t.is((await cli(['groups', dir, 'reset', 'quickstart', '-p', '2', '--to', '100'])).code, 0)
  const again = await example('quickstart', dir, { QUICKSTART_RECORDS: '300' })
  t.regex(again.stdout, /^partition 2: 300 records on disk; resuming group quickstart at offset 100 \(lag 200\)$/m)
  t.regex(again.stdout, /^group quickstart consumed 1400 records \(300 \+ 300 \+ 500 \+ 300\)/m)
})

test('quickstart with QUICKSTART_RECORDS=0 writes nothing and consumes only what the group missed; a non-number is refused', async (t) => {
  const dir = tmpDir(t)
  // A new log and nothing to write: the consumers have nothing to wait for.
  const empty = await example('quickstart', dir, { QUICKSTART_RECORDS: '0' })
  t.is(empty.stderr, '')
  t.regex(empty.stdout, /^group quickstart consumed 0 records \(0 \+ 0 \+ 0 \+ 0\)/m)
  t.regex(empty.stdout, /^partition 0: nothing appended; group lag right after writing: 0$/m)
  t.regex(empty.stdout, /^closed\./m)
  await example('quickstart', dir, { QUICKSTART_RECORDS: '300' })
  t.is((await cli(['groups', dir, 'reset', 'quickstart', '-p', '2', '--to', '100'])).code, 0)
  const caughtUp = await example('quickstart', dir, { QUICKSTART_RECORDS: '0' })
  t.regex(caughtUp.stdout, /^group quickstart consumed 200 records \(0 \+ 0 \+ 200 \+ 0\)/m)
  for (let p = 0; p < 4; p++) t.regex(caughtUp.stdout, new RegExp(`^partition ${p}: committed 300, end 300, lag 0$`, 'm'))

  for (const bad of ['abc', '-5', '1.5', '']) {
    const other = tmpDir(t, `bad-${bad}`)
    const err = await t.throwsAsync(example('quickstart', other, { QUICKSTART_RECORDS: bad }))
    t.is(err.code, 2, bad)
    t.is(err.stderr, `error: QUICKSTART_RECORDS must be a number of records per partition (0 or more), got ${JSON.stringify(bad)}\n`)
    t.false(fs.existsSync(other), 'refused before the log is opened')
  }
})

test('pipeline: a file and a generator into partitions, read back through a Transform', async (t) => {
  const dir = tmpDir(t)
  const { stdout, stderr } = await example('pipeline', dir)
  t.is(stderr, '')
  const m = /^file .*pipeline\.js: (\d+) lines appended to partition 0 at offsets 0\.\.(\d+)$/m.exec(stdout)
  t.truthy(m, stdout)
  t.is(Number(m[2]), Number(m[1]) - 1)
  t.regex(stdout, /^generator: 1000 records appended to partition 1 at offsets 0\.\.999$/m)
  t.regex(stdout, /^ {2}offset 0 line-1: \/\/ Node streams in and out of the log/m)
  t.regex(stdout, /^average per sensor: s0 [\d.]+, s1 [\d.]+, s2 [\d.]+, s3 [\d.]+$/m)
  const again = await example('pipeline', dir)
  t.regex(again.stdout, /^generator: 1000 records appended to partition 1 at offsets 1000\.\.1999$/m)
})

test('pipeline: a file that does not exist is one error line and exit 1, and the log is closed (its lock released)', async (t) => {
  const dir = tmpDir(t)
  const file = fileURLToPath(new URL('../dist/examples/pipeline.js', import.meta.url))
  const missing = `${dir}-no-such-file.txt`
  const err = await t.throwsAsync(exec(process.execPath, [file, missing], { env: { ...process.env, WRITEAHEAD_DIR: dir }, timeout: 60_000 }))
  t.is(err.code, 1)
  t.is(err.stdout, '')
  t.is(err.stderr, `error: ENOENT: no such file or directory, open '${missing}'\n`)
  t.false(fs.existsSync(`${dir}/LOCK`), 'close() ran: the lock file is gone')
  t.is(JSON.parse((await cli(['inspect', dir, '--json'])).stdout).partitions[0].end, 0)
})

test('quickstart: a log another writer holds is one error line (LOCKED) and exit 1', async (t) => {
  const dir = tmpDir(t)
  const holder = await WriteAhead.open(dir, { partitions: 4 })
  try {
    const file = fileURLToPath(new URL('../dist/examples/quickstart.js', import.meta.url))
    const err = await t.throwsAsync(exec(process.execPath, [file], { env: { ...process.env, WRITEAHEAD_DIR: dir }, timeout: 60_000 }))
    t.is(err.code, 1)
    t.regex(err.stderr, /^error: .*\(LOCKED\)\n$/)
  } finally {
    await holder.close()
  }
})

test('rx: toPartition, fromPartition, a live group subscription', async (t) => {
  const { stdout, stderr } = await example('rx', tmpDir(t))
  t.is(stderr, '')
  t.regex(stdout, /^toPartition: 500 orders durable at offsets 0\.\.499$/m)
  t.regex(stdout, /^fromPartition: 167 EUR orders, total \d+$/m)
  t.regex(stdout, /^live: produced 30 ticks; the subscriber saw them in order as \[0\.\.9\] \[10\.\.19\] \[20\.\.29\]$/m)
  t.regex(stdout, /^group rx-demo committed 30 on partition 1, lag 0$/m)
  t.regex(stdout, /^firstValueFrom\(live\): hello from rx$/m)
})

test('kv-store: rebuilds its index by replay, snapshots, trims, and rebuilds from the snapshot', async (t) => {
  const dir = tmpDir(t)
  const first = await example('kv-store', dir)
  t.is(first.stderr, '')
  t.regex(first.stdout, /^new store in /m)
  t.regex(first.stdout, /^wrote 800 puts and 8 deletes: 32 live keys, log holds offsets 0\.\.807$/m)
  t.regex(first.stdout, /get key-00 -> undefined$/m)
  const snap = /^snapshot: 32 keys at offsets 808\.\.839; trimBefore\(808\) -> log now starts at (\d+) \(older sealed segments deleted\)$/m.exec(first.stdout)
  t.truthy(snap, first.stdout)
  t.true(Number(snap[1]) > 0 && Number(snap[1]) <= 808)
  t.regex(first.stdout, /^reopened: rebuilt 32 keys by replaying 32 records from offset 808; same as before: true$/m)

  const second = await example('kv-store', dir)
  t.regex(second.stdout, /^rebuilt the index: 32 keys by replaying 32 records from offset 808$/m)
  t.regex(second.stdout, /^reopened: rebuilt 32 keys by replaying 32 records from offset 1648; same as before: true$/m)
  const { stdout } = await cli(['inspect', dir, '--json'])
  t.true(JSON.parse(stdout).partitions[0].start > 808)
})

test('bridge: mirror refuses a WRITEAHEAD_FROM it cannot start at (an offset or a time), before connecting', async (t) => {
  const dir = tmpDir(t)
  const file = fileURLToPath(new URL('../dist/examples/bridge.js', import.meta.url))
  // Nothing listens on port 1: a bridge that went on to connect would fail there instead (IO_ERROR).
  const env = { ...process.env, KAFKA_BROKERS: '127.0.0.1:1', WRITEAHEAD_DIR: dir, WRITEAHEAD_TOPIC: 'events', WRITEAHEAD_FROM: '5', WRITEAHEAD_START_TIMEOUT_MS: '1000' }
  const err = await t.throwsAsync(exec(process.execPath, [file, 'mirror'], { env, timeout: 60_000 }))
  t.is(err.code, 1)
  const fatal = JSON.parse(err.stderr.trim().split('\n').at(-1))
  t.like(fatal, { level: 'fatal', code: 'INVALID_OPTION', details: { option: 'WRITEAHEAD_FROM' } })
  t.false(fs.existsSync(dir))
})
