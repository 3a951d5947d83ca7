import test from 'ava'
import fs from 'node:fs'
import net from 'node:net'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'
import { spawn } from 'node:child_process'
import { CLI, run, start } from './fixtures/cli-run.js'

const COMMANDS = ['append', 'tail', 'inspect', 'verify', 'repair', 'groups', 'bench', 'mirror', 'replay']

test('--help of the program and of every command shows usage, an example and the exit codes', async (t) => {
  const root = await run(['--help'])
  t.is(root.code, 0)
  for (const c of COMMANDS) t.regex(root.stdout, new RegExp(`^  ${c} `, 'm'))
  t.regex(root.stdout, /Exit codes:/)
  await Promise.all(COMMANDS.map(async (c) => {
    const r = await run([c, '--help'])
    t.is(r.code, 0, c)
    t.is(r.stderr, '', c)
    t.regex(r.stdout, new RegExp(`^Usage: writeahead ${c} `, 'm'), c)
    t.regex(r.stdout, /Examples?:\n {2}\$ /, c)
    t.regex(r.stdout, /Exit codes:\n {2}0 {2}success/, c)
  }))
  const mirror = await run(['mirror', '--help'])
  for (const flag of ['--brokers', '--topic', '--dir', '--group-id', '--from', '--offsets', '--stop-at-end', '--on-offset-reset', '--http-port', '--lag-interval', '--sasl-mechanism', '--tls']) t.true(mirror.stdout.includes(flag), flag)
  const replay = await run(['replay', '--help'])
  for (const flag of ['--brokers', '--topic', '--dir', '--group', '--from', '--partitioner', '--partitions', '--shared-topic', '--stop-at-end', '--create-topic', '--http-port', '--sasl-username', '--tls-ca']) t.true(replay.stdout.includes(flag), flag)
})

test('append prints one offset per line; tail prints the lines back', async (t) => {
  const dir = tmpDir(t)
  const a = await run(['append', dir, '-p', '0'], { input: 'alpha\nbeta\n\ngamma' })
  t.is(a.stderr, '')
  t.is(a.code, 0)
  t.is(a.stdout, '0\n1\n2\n3\n')
  const b = await run(['append', dir], { input: 'delta\r\nepsilon\n' })
  t.is(b.stdout, '4\n5\n')
  const tl = await run(['tail', dir, '-p', '0'])
  t.is(tl.code, 0)
  t.is(tl.stdout, 'alpha\nbeta\n\ngamma\ndelta\nepsilon\n')
  t.is((await run(['tail', dir, '--from', '4'])).stdout, 'delta\nepsilon\n')
  t.is((await run(['tail', dir, '--from', 'latest'])).stdout, '')
  t.is((await run(['tail', dir, '--from', '1', '--limit', '2'])).stdout, 'beta\n\n')
  t.is((await run(['tail', dir, '--from', new Date(Date.now() + 3_600_000).toISOString()])).stdout, '')
  t.is((await run(['tail', dir, '--from', '2000-01-01T00:00:00Z', '-n', '1'])).stdout, 'alpha\n')
})

test('append groups a large input into few commits and still prints every offset in order', async (t) => {
  const dir = tmpDir(t)
  const n = 30_000
  const input = Array.from({ length: n }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`).join('\n') + '\n'
  const a = await run(['append', dir, '--partitions', '3', '-p', '2'], { input })
  t.is(a.code, 0, a.stderr)
  t.deepEqual(a.stdout.trimEnd().split('\n').map(Number), Array.from({ length: n }, (_, i) => i))
  const wal = await WriteAhead.open(dir, { readOnly: true })
  t.is(wal.partitions, 3)
  t.deepEqual(wal.offsets(2), { start: 0, end: n, pending: n })
  t.is((await wal.read(2, 12345)).value.toString(), `line 12345 ${'x'.repeat(12345 % 50)}`)
  await wal.close()
})

test('append --json and tail --json round-trip key, value, headers (order, duplicates, null) and timestamp', async (t) => {
  const dir = tmpDir(t)
  const records = [
    { key: 'user-1', value: 'signed up', headers: [{ key: 'source', value: 'web' }, { key: 'trace', value: 'a' }, { key: 'trace', value: null }], timestamp: 1_700_000_000_123 },
    { value: 'no key, no headers' },
    { key: 'k', value: 'kafkajs headers', headers: { h: ['1', '2'], z: 'x' } },
    { key: 'n', value: { nested: true } }
  ]
  const a = await run(['append', dir, '--json'], { input: records.map((r) => JSON.stringify(r)).join('\n') + '\n' })
  t.is(a.code, 0, a.stderr)
  t.is(a.stdout, '0\n1\n2\n3\n')
  const tl = await run(['tail', dir, '--json'])
  t.is(tl.code, 0)
  const got = tl.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))
  t.is(got.length, 4)
  t.like(got[0], { partition: 0, offset: 0, key: 'user-1', value: 'signed up', timestamp: 1_700_000_000_123 })
  t.deepEqual(got[0].headers, records[0].headers)
  t.like(got[1], { offset: 1, key: null, value: 'no key, no headers', headers: [] })
  t.true(Math.abs(got[1].timestamp - Date.now()) < 600_000)
  t.deepEqual(got[2].headers, [{ key: 'h', value: '1' }, { key: 'h', value: '2' }, { key: 'z', value: 'x' }])
  t.is(got[3].value, '{"nested":true}')

  // tail --json output is valid append --json input: copy the log, byte for byte, in base64.
  const b64 = await run(['tail', dir, '--json', '--encoding', 'base64'])
  const copy = tmpDir(t, 'copy')
  t.is((await run(['append', copy, '--json', '--encoding', 'base64'], { input: b64.stdout })).code, 0)
  t.is((await run(['tail', copy, '--json'])).stdout, tl.stdout)
})

test('append --json stops at the first bad line: earlier lines are appended and printed', async (t) => {
  const dir = tmpDir(t)
  const r = await run(['append', dir, '--json'], { input: '{"value":"a"}\n{"value":"b"}\n{"value":\n{"value":"d"}\n' })
  t.is(r.code, 2)
  t.is(r.stdout, '0\n1\n')
  // Named as every other append error: the line, the reason, and how many lines before it are in.
  t.regex(r.stderr, /^error: line 3: invalid JSON: .* \(2 earlier lines appended\) \(INVALID_RECORD\)\n$/)
  const missing = await run(['append', dir, '--json'], { input: '{"key":"k"}\n' })
  t.regex(missing.stderr, /^error: line 1: "value" is missing \(null for a tombstone\) \(0 earlier lines appended\) \(INVALID_RECORD\)\n$/)
  const second = await run(['append', dir, '--json'], { input: '{"value":"c"}\n[1]\n' })
  t.is(second.stdout, '2\n')
  t.is(second.stderr, 'error: line 2: expected a JSON object with a "value" (1 earlier line appended) (INVALID_RECORD)\n')
  t.is((await run(['tail', dir])).stdout, 'a\nb\nc\n')
})

test('append names the input line of a record the log refuses, not its index in the batch', async (t) => {
  const dir = tmpDir(t)
  const r = await run(['append', dir, '--json'], { input: '{"value":"a"}\n{"value":"b"}\n{"value":"c","timestamp":"soon"}\n{"value":"d"}\n' })
  t.is(r.code, 2)
  t.is(r.stdout, '') // one chunk, one atomic batch: none of it is appended
  t.regex(r.stderr, /^error: line 3: invalid record: timestamp must be milliseconds .*, got "soon" \(0 earlier lines appended\) \(INVALID_RECORD\)\n$/)
  const one = await run(['append', dir, '--json'], { input: '{"value":"a","headers":"h"}\n' })
  t.regex(one.stderr, /^error: line 1: invalid record: headers must be an array or an object, got string \(0 earlier lines appended\) \(INVALID_RECORD\)\n$/)
  t.is((await run(['tail', dir])).stdout, '')
})

test('append --encoding hex|base64 refuses text that is not in that encoding instead of storing what Buffer.from kept of it', async (t) => {
  const dir = tmpDir(t)
  const ok = await run(['append', dir, '--encoding', 'hex'], { input: '6869\n\n' })
  t.is(ok.stdout, '0\n1\n')
  const b64 = await run(['append', dir, '--encoding', 'base64'], { input: 'aGk=\naGk\n-_8\n' })
  t.is(b64.stdout, '2\n3\n4\n')
  for (const [enc, input, what] of [['hex', 'abc\n', 'the line'], ['hex', 'zz\n', 'the line'], ['base64', '!!!\n', 'the line'], ['base64', 'aGk=x\n', 'the line']]) {
    const r = await run(['append', dir, '--encoding', enc], { input })
    t.is(r.code, 2, `${enc} ${input}`)
    t.is(r.stdout, '')
    t.is(r.stderr, `error: line 1: ${what} is not valid ${enc} (0 earlier lines appended) (INVALID_RECORD)\n`)
  }
  const json = await run(['append', dir, '--json', '--encoding', 'hex'], { input: '{"value":"zz"}\n' })
  t.is(json.stderr, 'error: line 1: value is not valid hex (0 earlier lines appended) (INVALID_RECORD)\n')
  const key = await run(['append', dir, '--json', '--encoding', 'base64'], { input: '{"key":"%%","value":"aGk="}\n' })
  t.is(key.stderr, 'error: line 1: key is not valid base64 (0 earlier lines appended) (INVALID_RECORD)\n')
  const tl = await run(['tail', dir, '--encoding', 'hex'])
  t.is(tl.stdout, '6869\n\n6869\n6869\nfbff\n')
})

test('tail --follow (read-only) prints records another process appends, and stops cleanly on SIGINT', async (t) => {
  const dir = tmpDir(t)
  await run(['append', dir, '--partitions', '2', '-p', '1'], { input: 'one\ntwo\n' })
  const tail = start(['tail', dir, '-p', '1', '--follow'])
  t.deepEqual(await tail.lines(2), ['one', 'two'])
  // tail holds no lock: a writer can run meanwhile.
  const a = await run(['append', dir, '-p', '1'], { input: 'three\nfour\n' })
  t.is(a.stdout, '2\n3\n')
  t.deepEqual(await tail.lines(2), ['three', 'four'])
  tail.child.kill('SIGINT')
  const { code, signal, stderr } = await tail.exited
  t.is(signal, null)
  t.is(code, 0)
  t.is(stderr, '')
})

test('tail --follow --group commits what it printed on SIGTERM; the next run resumes after it', async (t) => {
  const dir = tmpDir(t)
  await run(['append', dir], { input: 'a\nb\nc\n' })
  const tail = start(['tail', dir, '--follow', '--group', 'audit'])
  t.deepEqual(await tail.lines(3), ['a', 'b', 'c'])
  tail.child.kill('SIGTERM')
  t.like(await tail.exited, { code: 0, signal: null, stderr: '' })
  const g = JSON.parse((await run(['groups', dir, '--json'])).stdout)
  t.deepEqual(g, [{ name: 'audit', partitions: [{ partition: 0, committed: 3, end: 3, lag: 0 }], lag: 0 }])
  await run(['append', dir], { input: 'd\ne\n' })
  // Without --follow: prints what the group has not seen, commits, ends.
  t.is((await run(['tail', dir, '--group', 'audit'])).stdout, 'd\ne\n')
  t.is((await run(['tail', dir, '--group', 'audit'])).stdout, '')
  t.is((await run(['tail', dir, '--group', 'audit', '--from', 'earliest', '-n', '1'])).stdout, 'a\n')
  t.is((await run(['tail', dir, '--group', 'audit', '--from', 'committed'])).stdout, 'b\nc\nd\ne\n')
})

for (const follow of [[], ['--follow']]) {
  test(`tail --group ${follow.join(' ')} whose reader closes the pipe early (| head) exits 0 and commits nothing; the next run prints those records again`, async (t) => {
    const dir = tmpDir(t)
    // Far more than a pipe and the streams' buffers hold: tail cannot reach the end unless it is read.
    const n = 5000
    await run(['append', dir], { input: Array.from({ length: n }, (_, i) => `${i} ${'x'.repeat(1000)}`).join('\n') + '\n' })
    t.is((await run(['tail', dir, '--group', 'audit', '-n', '1'])).code, 0)
    const committed = async () => JSON.parse((await run(['groups', dir, '--json'])).stdout)[0].partitions[0].committed
    t.is(await committed(), 1)

    const child = spawn(process.execPath, [CLI, 'tail', dir, '--group', 'audit', ...follow], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
    // The first chunk, then the reader goes away, as head does.
    const first = await new Promise((resolve) => child.stdout.once('data', (d) => { child.stdout.pause(); resolve(String(d)) }))
    t.true(first.startsWith(`1 ${'x'.repeat(10)}`), first.slice(0, 20))
    child.stdout.destroy()
    t.deepEqual(await exited, { code: 0, signal: null })
    t.is(stderr, '')
    t.false(fs.existsSync(`${dir}/LOCK`), 'the log was closed before the exit: no lock file left behind')
    t.is(await committed(), 1, 'nothing committed: records in the pipe were not necessarily read')
    t.is((await run(['tail', dir, '--group', 'audit', '-n', '1'])).stdout.slice(0, 2), '1 ', 'the next run prints them again')

  })
}

test('append whose reader closes the pipe early exits 0 and closes its log first, leaving no lock file behind', async (t) => {
  const dir = tmpDir(t)
  const child = spawn(process.execPath, [CLI, 'append', dir], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  // Gone before append prints its first offsets, as a reader that stops at once.
  child.stdout.destroy()
  child.stdin.on('error', () => {}) // append may exit before it has read all of its input
  child.stdin.end(Array.from({ length: 5000 }, (_, i) => `${i}`).join('\n') + '\n')
  t.deepEqual(await exited, { code: 0, signal: null })
  t.is(stderr, '')
  t.false(fs.existsSync(`${dir}/LOCK`), 'the log was closed before the exit')
})

test('groups lists groups with lag; groups reset moves a group', async (t) => {
  const dir = tmpDir(t)
  await run(['append', dir, '--partitions', '2', '-p', '0'], { input: 'a\nb\nc\nd\n' })
  await run(['append', dir, '-p', '1'], { input: 'x\ny\n' })
  t.is((await run(['groups', dir])).stdout, 'no consumer groups\n')
  await run(['tail', dir, '-p', '0', '--group', 'billing', '-n', '1'])
  const list = await run(['groups', dir])
  t.is(list.code, 0)
  t.is(list.stdout,
    'GROUP    PARTITION  COMMITTED  END  LAG\n' +
    'billing          0          1    4    3\n' +
    'billing          1          -    2    2\n' +
    '\n' +
    'GROUP    TOTAL LAG\n' +
    'billing          5\n')
  const r = await run(['groups', dir, 'reset', 'billing', '-p', '0', '--to', '3'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^billing +0 +1 +3$/m)
  t.is((await run(['tail', dir, '-p', '0', '--group', 'billing'])).stdout, 'd\n')
  const all = await run(['groups', dir, 'reset', 'billing', '--to', 'earliest'])
  t.regex(all.stdout, /^billing +0 +4 +0$/m)
  t.regex(all.stdout, /^billing +1 +- +0$/m)
  t.is(JSON.parse((await run(['groups', dir, '--json'])).stdout)[0].lag, 6)
  const latest = await run(['groups', dir, 'reset', 'billing', '--to', 'latest'])
  t.is(latest.code, 0)
  t.is(JSON.parse((await run(['groups', dir, '--json'])).stdout)[0].lag, 0)

  const past = await run(['groups', dir, 'reset', 'billing', '-p', '1', '--to', '99'])
  t.is(past.code, 2)
  t.is(past.stderr, 'error: offset 99 of partition 1 is past its end 2 (OFFSET_OUT_OF_RANGE)\n')
  const noP = await run(['groups', dir, 'reset', 'billing', '--to', '1'])
  t.is(noP.stderr, 'error: --to <offset> needs -p <partition> (INVALID_ARGUMENT)\n')
  const noTo = await run(['groups', dir, 'reset', 'billing'])
  t.is(noTo.stderr, 'error: groups reset needs --to <offset|earliest|latest> (INVALID_ARGUMENT)\n')
  const bad = await run(['groups', dir, 'frobnicate'])
  t.regex(bad.stderr, /^error: unknown groups action 'frobnicate'.*\(INVALID_ARGUMENT\)\n$/)
})

test('groups, inspect and groups reset print a group name with a newline or escape codes quoted and escaped, not raw', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  await wal.appendBatch(0, ['a', 'b'])
  // A name that would forge a table row, one that would colour the screen, one that looks quoted.
  const forged = 'evil\nbilling          0          2    2    0'
  await wal.group(forged).commit(0, 1)
  await wal.group('\x1b[31mred\x1b[0m').commit(0, 2)
  await wal.group('"quoted"').commit(0, 2)
  await wal.group('plain \\ name').commit(0, 2)
  await wal.close()
  const shown = ['"evil\\nbilling          0          2    2    0"', '"\\u001b[31mred\\u001b[0m"', '"\\"quoted\\""', 'plain \\ name']
  // What is printed parses back (as JSON where quoted) to the group's name.
  t.deepEqual(shown.map((s) => s.startsWith('"') ? JSON.parse(s) : s), [forged, '\x1b[31mred\x1b[0m', '"quoted"', 'plain \\ name'])
  const safe = (out) => !/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(out)

  const list = await run(['groups', dir])
  t.is(list.code, 0, list.stderr)
  t.true(safe(list.stdout), JSON.stringify(list.stdout))
  const rows = list.stdout.split('\n\n')[0].split('\n').slice(1)
  t.is(rows.length, 4, list.stdout)
  for (const name of shown) t.true(rows.some((r) => r.startsWith(name + ' ')), name)
  t.deepEqual(JSON.parse((await run(['groups', dir, '--json'])).stdout).map((g) => g.name).sort(), [forged, '\x1b[31mred\x1b[0m', '"quoted"', 'plain \\ name'].sort())

  const inspect = await run(['inspect', dir])
  t.true(safe(inspect.stdout), JSON.stringify(inspect.stdout))
  const groupRows = inspect.stdout.split('Groups\n')[1].trimEnd().split('\n').slice(1)
  t.is(groupRows.length, 4, inspect.stdout)
  for (const name of shown) t.true(groupRows.some((r) => r.startsWith('  ' + name + ' ')), name)

  const reset = await run(['groups', dir, 'reset', 'nobody', '--to', 'earliest'])
  t.is(reset.code, 2)
  t.true(safe(reset.stderr), JSON.stringify(reset.stderr))
  for (const name of shown) t.true(reset.stderr.includes(name), name)
})

test('errors are one line "error: <message> (<CODE>)" with exit 2 and no stack; --debug adds the stack', async (t) => {
  const dir = tmpDir(t)
  const missing = await run(['tail', dir])
  t.is(missing.code, 2)
  t.is(missing.stdout, '')
  t.is(missing.stderr, `error: ${dir} does not exist (NOT_A_WAL)\n`)

  // A partition a new log would not have: refused before anything is created.
  const fresh = await run(['append', dir, '-p', '3'], { input: 'a\n' })
  t.is(fresh.code, 2)
  t.is(fresh.stderr, 'error: partition 3 of a new log: it is created with --partitions 1; pass --partitions 4 or more (UNKNOWN_PARTITION)\n')
  t.false(fs.existsSync(dir), 'no log was created')
  // A directory that holds something else is NOT_A_WAL whatever the partition: not a hint to pass --partitions.
  const notLog = tmpDir(t, 'not-a-log')
  fs.mkdirSync(notLog, { recursive: true })
  fs.writeFileSync(`${notLog}/notes.txt`, 'x')
  const foreign = await run(['append', notLog, '-p', '1'], { input: 'a\n' })
  t.is(foreign.code, 2)
  t.is(foreign.stderr, `error: ${notLog} is not empty and holds no write-ahead log (NOT_A_WAL)\n`)

  await run(['append', dir], { input: 'a\n' })
  const unknown = await run(['tail', dir, '-p', '7'])
  t.is(unknown.code, 2)
  t.is(unknown.stderr, 'error: unknown partition 7: partitions are 0..0 (UNKNOWN_PARTITION)\n')
  t.false(unknown.stderr.includes('    at '))

  const debug = await run(['tail', dir, '-p', '7', '--debug'])
  t.is(debug.code, 2)
  t.regex(debug.stderr, /^WalError: unknown partition 7/)
  t.regex(debug.stderr, /\n {4}at .*write-ahead\.js/)
  t.true(debug.stderr.endsWith('error: unknown partition 7: partitions are 0..0 (UNKNOWN_PARTITION)\n'))

  const usage = await run(['tail', dir, '--frobnicate'])
  t.is(usage.code, 2)
  t.is(usage.stderr, "error: unknown option '--frobnicate' (INVALID_ARGUMENT)\n")
  const badP = await run(['append', dir, '-p', 'x'])
  t.regex(badP.stderr, /^error: option '-p, --partition <n>' argument 'x' is invalid\. must be a non-negative integer\. \(INVALID_ARGUMENT\)\n$/)
  const badFrom = await run(['tail', dir, '--from', 'yesterday-ish'])
  t.is(badFrom.stderr, "error: --from must be earliest, latest, committed, an offset or an ISO time, got 'yesterday-ish' (INVALID_ARGUMENT)\n")
  const noCmd = await run([])
  t.is(noCmd.code, 2)
  t.regex(noCmd.stderr, /^Usage: writeahead/)

  // A non-empty directory that is not a log is left alone.
  const other = tmpDir(t, 'other')
  fs.mkdirSync(other)
  fs.writeFileSync(`${other}/notes.txt`, 'mine')
  const notWal = await run(['append', other], { input: 'x\n' })
  t.is(notWal.stderr, `error: ${other} is not empty and holds no write-ahead log (NOT_A_WAL)\n`)
  t.deepEqual(fs.readdirSync(other), ['notes.txt'])
})

test('mirror and replay check their flags, and an unreachable broker is a one-line IO_ERROR that leaves the log untouched', async (t) => {
  const dir = tmpDir(t, 'kafka')
  const missing = await run(['mirror', '--brokers', '127.0.0.1:1', '--dir', dir], { env: { WRITEAHEAD_TOPIC: '' } })
  t.is(missing.code, 2)
  t.regex(missing.stderr, /^error: --topic \(or WRITEAHEAD_TOPIC\) is required \(INVALID_ARGUMENT\)\n$/)
  const badFrom = await run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--from', 'yesterday'])
  t.is(badFrom.code, 2)
  t.regex(badFrom.stderr, /--from must be earliest, latest, an offset/)
  const badChoice = await run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--partitioner', 'random'])
  t.is(badChoice.code, 2)
  t.regex(badChoice.stderr, /partitioner/)

  // A loopback port nobody listens on: refused at once, so only startTimeout bounds the wait.
  const port = await new Promise((resolve) => { const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)) }) })
  // Mirror creates its log, but not before Kafka answers; replay reads an existing one.
  const log = tmpDir(t, 'log')
  await run(['append', log], { input: 'a\n' })
  for (const [cmd, d] of [['mirror', dir], ['replay', log]]) {
    const r = await run([cmd, '--brokers', `127.0.0.1:${port}`, '--topic', 't', '--dir', d, '--start-timeout', '1500'])
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr.trim().split('\n').at(-1), /^error: .*\(IO_ERROR\)$/)
  }
  t.false(fs.existsSync(dir), 'nothing was created')
  t.is((await run(['tail', log])).stdout, 'a\n')
})

test('append refuses input that is not UTF-8 instead of storing U+FFFD for it, naming the line', async (t) => {
  const dir = tmpDir(t)
  const r = await run(['append', dir], { input: Buffer.from('ok\r\n\xff\xfebin\nlater\n', 'latin1') })
  t.is(r.code, 2)
  t.is(r.stdout, '0\n')
  t.is(r.stderr, 'error: line 2: not valid UTF-8 (for binary data, write it as --encoding base64 or hex) (1 earlier line appended) (INVALID_RECORD)\n')
  const json = await run(['append', dir, '--json'], { input: Buffer.from('{"value":"\xe9"}\n', 'latin1') })
  t.is(json.stderr, 'error: line 1: not valid UTF-8 (for binary data, write it as --encoding base64 or hex) (0 earlier lines appended) (INVALID_RECORD)\n')
  // Valid UTF-8, a byte order mark and a last line without a newline are kept as they are.
  t.is((await run(['append', dir], { input: Buffer.from('café\n\ufeffbom\nlast', 'utf8') })).stdout, '1\n2\n3\n')
  t.is((await run(['tail', dir, '--encoding', 'hex'])).stdout, '6f6b\n636166c3a9\nefbbbf626f6d\n6c617374\n')
})
