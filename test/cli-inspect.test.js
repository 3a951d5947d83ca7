import test from 'ava'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'
import { run } from './fixtures/cli-run.js'

const holderScript = fileURLToPath(new URL('./fixtures/holder.js', import.meta.url))
const TS = 1_700_000_000_000 // recordFor(p, offset) has timestamp TS + offset

function startHolder (dir) {
  const child = spawn(process.execPath, [holderScript, dir], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => (await lines.next()).value
  const send = async (cmd) => { child.stdin.write(cmd + '\n'); return next() }
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, next, send, exited }
}

test('inspect reads a log another process holds open for writing, and sees its latest commit', async (t) => {
  const dir = tmpDir(t)
  const setup = await WriteAhead.open(dir, { partitions: 2, segmentBytes: 128 * 1024 })
  await setup.group('billing').commit(0, 0)
  await setup.close()

  const h = startHolder(dir)
  t.teardown(() => h.child.kill('SIGKILL'))
  t.is(await h.next(), 'ready')
  for (let i = 0; i < 16; i++) t.is(await h.send('append 0 100'), `done ${(i + 1) * 100}`)
  t.is(await h.send('append 1 10'), 'done 10')

  const r = await run(['inspect', dir, '--json'])
  t.is(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout)
  t.is(report.dir, dir)
  t.is(report.partitions.length, 2)
  const [p0, p1] = report.partitions
  t.like(p0, { partition: 0, start: 0, end: 1600, minTimestamp: TS, maxTimestamp: TS + 1599 })
  t.like(p1, { partition: 1, start: 0, end: 10, minTimestamp: TS, maxTimestamp: TS + 9 })
  t.true(p0.segments.length >= 2, `${p0.segments.length} segments`)
  p0.segments.forEach((s, i) => {
    const last = i === p0.segments.length - 1
    t.is(s.file, `${String(s.base).padStart(20, '0')}.log`)
    t.is(s.sealed, !last)
    t.is(s.end, last ? 1600 : p0.segments[i + 1].base)
    t.true(s.bytes > 64 && s.bytes <= s.fileBytes)
    t.is(s.minTimestamp, TS + s.base)
    t.is(s.maxTimestamp, TS + s.end - 1)
  })
  t.is(p0.segments[0].base, 0)
  t.is(p0.bytes, p0.segments.reduce((n, s) => n + s.bytes, 0))
  t.deepEqual(report.groups, [{ name: 'billing', lag: 1610, partitions: [{ partition: 0, committed: 0, end: 1600, lag: 1600 }, { partition: 1, committed: null, end: 10, lag: 10 }] }])

  // The table: same data, aligned.
  const human = await run(['inspect', dir])
  t.is(human.code, 0)
  t.regex(human.stdout, /^PARTITION +START +END +RECORDS +SEGMENTS +SIZE +OLDEST +NEWEST$/m)
  t.regex(human.stdout, /^ +0 +0 +1600 +1600 +\d+ +[\d.]+ KiB +2023-11-14T22:13:20Z +2023-11-14T22:13:21Z$/m)
  t.regex(human.stdout, /^ +0 +00000000000000000000\.log +0\.\.\d+ .* sealed /m)
  t.regex(human.stdout, /^ +1 +00000000000000000000\.log +0\.\.9 .* open /m)
  t.regex(human.stdout, /^ +billing +0 +0 +1600 +1600$/m)
  const rows = human.stdout.split('\n').filter((l) => /^ +\d +\d{20}\.log/.test(l))
  t.is(new Set(rows.map((l) => l.indexOf('.log'))).size, 1, 'columns are aligned')

  // The writer is undisturbed, and inspect follows it.
  t.is(await h.send('append 0 10'), 'done 1610')
  t.is(JSON.parse((await run(['inspect', dir, '--json'])).stdout).partitions[0].end, 1610)
  // ... and it still holds the lock.
  const locked = await run(['append', dir], { input: 'x\n' })
  t.is(locked.code, 2)
  t.regex(locked.stderr, new RegExp(`^error: .* is locked by another writer \\(pid ${h.child.pid} on .*\\) \\(LOCKED\\)\\n$`))
  t.is(await h.send('exit'), 'closed')
  t.is(await h.exited, 0)
})

test('inspect on something that is not a log', async (t) => {
  const r = await run(['inspect', tmpDir(t)])
  t.is(r.code, 2)
  t.regex(r.stderr, /^error: .* does not exist \(NOT_A_WAL\)\n$/)
})
