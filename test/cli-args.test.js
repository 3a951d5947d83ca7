// The CLI refuses what it cannot mean: loose times, ports out of range, a replay of a log that is
// not there, a reset of a group that does not exist, flags the chosen action would ignore.
import test from 'ava'
import fs from 'node:fs'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseIsoTime } from '../dist/src/cli/common.js'
import { tmpDir } from './helpers/tmp.js'
import { run } from './fixtures/cli-run.js'

const T0 = Date.UTC(2023, 10, 14, 22, 13, 20) // 2023-11-14T22:13:20Z
const T1 = T0 + 100_000 // 2023-11-14T22:15:00Z

async function twoRecords (t) {
  const dir = tmpDir(t)
  const a = await run(['append', dir, '--json'], { input: `{"value":"a","timestamp":${T0}}\n{"value":"b","timestamp":${T1}}\n` })
  t.is(a.stdout, '0\n1\n', a.stderr)
  return dir
}

/** Neither an offset nor an ISO-8601 time; Date.parse reads most of them as a time all the same. */
const LOOSE = ['-1', '1.5', '+3', '1e3', ' 7', 'Dec 25', 'Thu, 01 Jan 1970 00:00:00 GMT', '2026-11', '2026-1-5', '2026-11-25 10:00', '2026-11-25T10',
  '2026-02-30', '2023-02-29', '2026-13-01', '2026-11-25T24:00', '2026-11-25T10:60', '2026-11-25T10:00:60', '2026-11-25T10:00:00+24:00', '2026-11-25T10:00:00.Z', '2026-11-25Z']

test('parseIsoTime reads ISO-8601 dates and times (fraction, Z or offset) and nothing else', (t) => {
  t.is(parseIsoTime('2023-11-14'), Date.UTC(2023, 10, 14))
  t.is(parseIsoTime('2024-02-29'), Date.UTC(2024, 1, 29))
  t.is(parseIsoTime('2000-02-29'), Date.UTC(2000, 1, 29))
  t.is(parseIsoTime('2023-11-14T22:13:20Z'), T0)
  t.is(parseIsoTime('2023-11-14t22:13:20z'), T0)
  t.is(parseIsoTime('2023-11-14T22:13Z'), T0 - 20_000)
  t.is(parseIsoTime('2023-11-14T22:13:20.5Z'), T0 + 500)
  t.is(parseIsoTime('2023-11-14T22:13:20,25Z'), T0 + 250)
  t.is(parseIsoTime('2023-11-14T22:13:20.123000Z'), T0 + 123)
  t.is(parseIsoTime('2023-11-14T22:13:20.0001Z'), T0 + 1, 'a fraction finer than a millisecond rounds up')
  t.is(parseIsoTime('2023-11-14T23:43:20+01:30'), T0)
  t.is(parseIsoTime('2023-11-14T23:43:20+0130'), T0)
  t.is(parseIsoTime('2023-11-14T21:13:20-01'), T0)
  t.is(parseIsoTime('2023-11-14T22:13:20'), new Date(2023, 10, 14, 22, 13, 20).getTime(), 'no offset: local time')
  for (const s of [...LOOSE, '', 'earliest', '2026', '1700000000000']) t.is(parseIsoTime(s), null, s)
})

test('tail --from takes an offset or an ISO-8601 time; -1, 1.5 and other Date.parse leftovers are usage errors', async (t) => {
  const dir = await twoRecords(t)
  const from = async (f, env) => {
    const r = await run(['tail', dir, '--from', f], { env })
    t.is(r.code, 0, `${f}: ${r.stderr}`)
    return r.stdout
  }
  t.is(await from('0'), 'a\nb\n')
  t.is(await from('1'), 'b\n')
  t.is(await from('2023-11-14'), 'a\nb\n')
  t.is(await from('2023-11-15'), '')
  t.is(await from('2023-11-14T22:13:20Z'), 'a\nb\n')
  t.is(await from('2023-11-14T22:13:20.001Z'), 'b\n')
  t.is(await from('2023-11-14T22:13:20.0001Z'), 'b\n')
  t.is(await from('2023-11-14T22:15Z'), 'b\n')
  t.is(await from('2023-11-14T23:13:20+01:00'), 'a\nb\n')
  t.is(await from('2023-11-14T23:13:20.001+01:00'), 'b\n')
  // Without Z or an offset the time is local: 22:13:20Z is 03:43:20 the next day in India (+05:30).
  t.is(await from('2023-11-15T03:43:20', { TZ: 'Asia/Kolkata' }), 'a\nb\n')
  t.is(await from('2023-11-15T03:43:20.001', { TZ: 'Asia/Kolkata' }), 'b\n')

  for (const f of LOOSE) {
    const r = await run(['tail', dir, '--from', f])
    t.is(r.code, 2, f)
    t.is(r.stdout, '', f)
    t.is(r.stderr, `error: --from must be earliest, latest, committed, an offset or an ISO time, got '${f}' (INVALID_ARGUMENT)\n`, f)
  }
  const help = (await run(['tail', '--help'])).stdout.replace(/\s+/g, ' ')
  t.true(help.includes('an offset (a non-negative integer), or an ISO-8601 time'))
  t.true(help.includes('--from takes a time as ISO-8601, YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]'))
})

test('replay --from takes earliest, latest, an offset, @<ms> or an ISO-8601 time, checked before anything connects', async (t) => {
  const dir = tmpDir(t, 'absent')
  const replay = (from) => run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--from', from, '--start-timeout', '1000'])
  for (const f of [...LOOSE, '@-1', '@1.5', '@', 'committed']) {
    const r = await replay(f)
    t.is(r.code, 2, f)
    t.is(r.stdout, '', f)
    t.is(r.stderr, `error: --from must be earliest, latest, an offset, @<ms> or an ISO time, got '${f}' (INVALID_ARGUMENT)\n`, f)
  }
  // Accepted: the next check (the log) is the one that fails.
  for (const f of ['earliest', 'latest', '0', '42', '@1700000000000', '2026-11-24', '2026-11-24T10:00:00Z', '2026-11-24T10:00:00.5+01:00']) {
    const r = await replay(f)
    t.is(r.stderr, `error: ${dir} does not exist (NOT_A_WAL)\n`, f)
  }
  t.false(fs.existsSync(dir))
})

test('replay of a directory that holds no log fails with NOT_A_WAL before connecting, and creates nothing', async (t) => {
  const absent = tmpDir(t, 'absent')
  const args = (dir) => ['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--stop-at-end', '--start-timeout', '1000']
  const r = await run(args(absent))
  t.is(r.code, 2)
  t.is(r.stdout, '', 'no "starting" line: nothing was started')
  t.is(r.stderr, `error: ${absent} does not exist (NOT_A_WAL)\n`)
  t.false(fs.existsSync(absent))

  const empty = tmpDir(t, 'empty')
  fs.mkdirSync(empty)
  const e = await run(args(empty))
  t.is(e.code, 2)
  t.is(e.stdout, '')
  t.is(e.stderr, `error: ${empty} holds no write-ahead log (NOT_A_WAL)\n`)
  t.deepEqual(fs.readdirSync(empty), [])

  // The directory from the environment is checked the same way.
  const env = await run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--stop-at-end'], { env: { WRITEAHEAD_DIR: absent } })
  t.is(env.stderr, `error: ${absent} does not exist (NOT_A_WAL)\n`)
  t.false(fs.existsSync(absent))
})

test('mirror into a file or a directory holding something else fails with NOT_A_WAL before connecting', async (t) => {
  const args = (dir) => ['mirror', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--stop-at-end', '--start-timeout', '1000']
  const file = tmpDir(t, 'file')
  fs.writeFileSync(file, 'mine')
  const f = await run(args(file))
  t.is(f.code, 2)
  t.is(f.stdout, '', 'no "starting" line: nothing was started')
  t.is(f.stderr, `error: ${file} is not a directory (NOT_A_WAL)\n`)
  const other = tmpDir(t, 'other')
  fs.mkdirSync(other)
  fs.writeFileSync(`${other}/notes.txt`, 'mine')
  const o = await run(args(other))
  t.is(o.code, 2)
  t.is(o.stdout, '')
  t.is(o.stderr, `error: ${other} is not empty and holds no write-ahead log (NOT_A_WAL)\n`)
  t.deepEqual(fs.readdirSync(other), ['notes.txt'])
})

test('replay --partitions names only partitions the log has, checked before connecting', async (t) => {
  const dir = tmpDir(t)
  t.is((await run(['append', dir, '--partitions', '2'], { input: 'a\n' })).code, 0)
  const r = await run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--partitions', '0,2', '--start-timeout', '1000'])
  t.is(r.code, 2)
  t.is(r.stdout, '', 'no "starting" line: nothing was started')
  t.is(r.stderr, 'error: --partitions: the log has no partition 2 (partitions are 0..1) (UNKNOWN_PARTITION)\n')
})

test('--http-port of mirror and replay must be a port, 0 to 65535: a usage error at parse time', async (t) => {
  const dir = tmpDir(t, 'absent')
  for (const cmd of ['mirror', 'replay']) {
    for (const port of ['99999', '65536', '-1', '1.5', '80x', '']) {
      const r = await run([cmd, '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--http-port', port, '--start-timeout', '1000'])
      t.is(r.code, 2, `${cmd} ${port}`)
      t.is(r.stdout, '', `${cmd} ${port}`)
      t.is(r.stderr, `error: option '--http-port <port>' argument '${port}' is invalid. must be a port number from 0 to 65535. (INVALID_ARGUMENT)\n`, `${cmd} ${port}`)
    }
  }
  // In range: parsing goes on to the next check.
  for (const port of ['0', '65535']) {
    const r = await run(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--http-port', port])
    t.is(r.stderr, `error: ${dir} does not exist (NOT_A_WAL)\n`, port)
  }
  t.false(fs.existsSync(dir))
})

test('groups reset refuses a group that does not exist unless --create; list refuses reset flags', async (t) => {
  const dir = tmpDir(t)
  await run(['append', dir, '--partitions', '2', '-p', '0'], { input: 'a\nb\nc\n' })
  const groups = async () => JSON.parse((await run(['groups', dir, '--json'])).stdout)

  const none = await run(['groups', dir, 'reset', 'billing', '--to', 'latest'])
  t.is(none.code, 2)
  t.is(none.stdout, '')
  t.is(none.stderr, "error: no consumer group 'billing' (the log has none); pass --create to create it (INVALID_ARGUMENT)\n")
  t.deepEqual(await groups(), [])

  const created = await run(['groups', dir, 'reset', 'billing', '-p', '0', '--to', '2', '--create'])
  t.is(created.code, 0, created.stderr)
  t.regex(created.stdout, /^billing +0 +- +2$/m)
  t.deepEqual(await groups(), [{ name: 'billing', partitions: [{ partition: 0, committed: 2, end: 3, lag: 1 }, { partition: 1, committed: null, end: 0, lag: 0 }], lag: 1 }])

  const typo = await run(['groups', dir, 'reset', 'biling', '--to', 'earliest'])
  t.is(typo.code, 2)
  t.is(typo.stderr, "error: no consumer group 'biling' (groups: billing); pass --create to create it (INVALID_ARGUMENT)\n")
  t.is((await groups()).length, 1)

  // An existing group needs no --create, and --create on one changes nothing else.
  t.is((await run(['groups', dir, 'reset', 'billing', '--to', 'earliest'])).code, 0)
  t.is((await run(['groups', dir, 'reset', 'billing', '-p', '0', '--to', '1', '--create'])).code, 0)
  t.is((await groups())[0].partitions[0].committed, 1)

  for (const [flags, message] of [
    [['--to', '0'], "--to is only for 'groups <dir> reset <group>'"],
    [['-p', '0'], "-p/--partition is only for 'groups <dir> reset <group>'"],
    [['--create'], "--create is only for 'groups <dir> reset <group>'"],
    [['list', '--to', 'latest'], "--to is only for 'groups <dir> reset <group>'"],
    [['reset', 'billing', '--to', 'latest', '--json'], '--json is only for listing groups']
  ]) {
    const r = await run(['groups', dir, ...flags])
    t.is(r.code, 2, flags.join(' '))
    t.is(r.stdout, '', flags.join(' '))
    t.is(r.stderr, `error: ${message} (INVALID_ARGUMENT)\n`, flags.join(' '))
  }
  t.is((await groups())[0].partitions[0].committed, 1, 'nothing was moved')
  t.regex((await run(['groups', '--help'])).stdout, /--create +reset: create the group if it does not exist/)
})

test('a fatal error of mirror, replay and examples/bridge.js is a JSON "fatal" line on stderr, never on stdout', async (t) => {
  const dir = tmpDir(t)
  await run(['append', dir], { input: 'a\n' })
  for (const cmd of ['mirror', 'replay']) {
    // Port 1 on loopback: refused at once, so --start-timeout alone bounds the wait.
    const r = await run([cmd, '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--start-timeout', '1000'])
    t.is(r.code, 2, cmd)
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    t.deepEqual(out.map((o) => o.level), ['info'], `${cmd}: only the "starting" line on stdout`)
    const err = r.stderr.trim().split('\n')
    t.regex(err.at(-1), /^error: .* \(IO_ERROR\)$/, cmd)
    const fatal = err.slice(0, -1).map((l) => JSON.parse(l)).filter((o) => o.level === 'fatal')
    t.is(fatal.length, 1, cmd)
    t.like(fatal[0], { msg: 'failed', bridge: cmd, code: 'IO_ERROR' }, cmd)
  }

  // The example: an error before the bridge runs (a missing setting) is logged the same way.
  const example = fileURLToPath(new URL('../dist/examples/bridge.js', import.meta.url))
  const env = { ...process.env, KAFKA_BROKERS: '', WRITEAHEAD_DIR: '', WRITEAHEAD_TOPIC: '' }
  const r = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [example, 'replay'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
  t.is(r.code, 1)
  t.is(r.stdout, '')
  t.like(JSON.parse(r.stderr), { level: 'fatal', msg: 'failed', code: 'INVALID_OPTION', error: 'KAFKA_BROKERS, WRITEAHEAD_DIR and WRITEAHEAD_TOPIC are required' })
})
