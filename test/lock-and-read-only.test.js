import test from 'ava'
import fs from 'node:fs'
import os from 'node:os'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { WriteAhead, WalError, nodeFileIO } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'
import { sameRecord } from './fixtures/records.js'

const holderScript = fileURLToPath(new URL('./fixtures/holder.js', import.meta.url))

function startHolder (dir) {
  const child = spawn(process.execPath, [holderScript, dir], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => (await lines.next()).value
  const send = async (cmd) => { child.stdin.write(cmd + '\n'); return next() }
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { child, next, send, exited }
}

for (const [how, io] of [['', undefined], [' (lock file alone)', { ...nodeFileIO, tryLock: undefined }]]) {
  test(`a second process gets LOCKED at once; a lock left by a killed process does not block${how}`, async (t) => {
    const dir = tmpDir(t)
    const h = startHolder(dir)
    t.is(await h.next(), 'ready')
    const err = await t.throwsAsync(WriteAhead.open(dir, { io }), { instanceOf: WalError, code: 'LOCKED' })
    t.is(err.details.pid, h.child.pid)
    t.is(await h.send('append 0 10'), 'done 10')
    h.child.kill('SIGKILL')
    await h.exited
    const wal = await WriteAhead.open(dir, { io })
    t.is(wal.offsets(0).end, 10)
    await wal.close()
  })
}

for (const [how, io] of [['', undefined], [' (lock file alone)', { ...nodeFileIO, tryLock: undefined }]]) {
  test(`a stale lock whose owner wrote more than this process does is taken over in place, still readable${how}`, async (t) => {
    // The takeover overwrites the stale lock where it lies; what the dead owner wrote beyond this
    // process's own, shorter, owner must not be left to make the lock unreadable, even past the
    // 512 bytes an owner is read from.
    const dir = tmpDir(t)
    await (await WriteAhead.open(dir, { io })).close()
    const dead = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => dead.on('exit', resolve))
    for (const extra of [200, 2000]) {
      const stale = JSON.stringify({ pid: dead.pid, host: os.hostname(), token: 'f'.repeat(16), note: 'x'.repeat(extra) })
      fs.writeFileSync(`${dir}/LOCK`, stale)
      const wal = await WriteAhead.open(dir, { io })
      const now = JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8'))
      t.is(now.pid, process.pid, 'the lock names this process')
      t.not(now.token, 'f'.repeat(16))
      t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('LOCK')), ['LOCK'], 'no temporary lock file')
      await t.throwsAsync(WriteAhead.open(dir, { io }), { code: 'LOCKED' })
      await wal.close()
      t.false(fs.existsSync(`${dir}/LOCK`), 'released on close')
    }
  })
}

for (const [how, withKernelLock] of [['', true], [' (lock file alone)', false]]) {
  test(`a lock this process may only read: a stale one is ${withKernelLock ? 'refused, to be deleted by hand' : 'replaced through a rename'}, a live one is LOCKED${how}`, async (t) => {
    // Another user's lock (0644, and this process not root): it cannot be overwritten where it lies.
    // The planted locks below stand for that user's; the one this process puts in their place is its own.
    const io = {
      ...nodeFileIO,
      ...(withKernelLock ? {} : { tryLock: undefined }),
      open (p, mode) {
        if (p.endsWith('LOCK') && mode === 'rw' && /"token":"(f+|e+)"/.test(fs.readFileSync(p, 'utf8'))) throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' })
        return nodeFileIO.open(p, mode)
      },
    }
    const dir = tmpDir(t)
    await (await WriteAhead.open(dir)).close()
    const dead = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => dead.on('exit', resolve))
    fs.writeFileSync(`${dir}/LOCK`, JSON.stringify({ pid: dead.pid, host: os.hostname(), token: 'f'.repeat(16) }))
    if (withKernelLock) {
      // Two processes could each hold a read lock on it and rename their own file over the other's.
      const err = await t.throwsAsync(WriteAhead.open(dir, { io }), { code: 'LOCKED' })
      t.regex(err.message, /may not write .*LOCK: delete it/)
      fs.unlinkSync(`${dir}/LOCK`)
    }
    const wal = await WriteAhead.open(dir, { io })
    t.is(JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8')).pid, process.pid)
    t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('LOCK')), ['LOCK'], 'no temporary lock file')
    await wal.close()
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'])
    t.teardown(() => live.kill('SIGKILL'))
    fs.writeFileSync(`${dir}/LOCK`, JSON.stringify({ pid: live.pid, host: os.hostname(), token: 'e'.repeat(16) }))
    const err = await t.throwsAsync(WriteAhead.open(dir, { io }), { code: 'LOCKED' })
    t.is(err.details.pid, live.pid)
  })
}

test('readOnly follows a live writer up to its latest durable commit', async (t) => {
  const dir = tmpDir(t)
  const h = startHolder(dir)
  t.is(await h.next(), 'ready')
  t.is(await h.send('append 0 100'), 'done 100')
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.is(ro.partitions, 2)
  t.deepEqual(ro.offsets(0), { start: 0, end: 100, pending: 100 })
  await t.throwsAsync(ro.append(0, 'x'), { code: 'READ_ONLY' })
  // Enough to rotate several 128 KiB segments while the reader stays open.
  for (let i = 0; i < 15; i++) await h.send('append 0 100')
  t.true(fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).length >= 2)
  t.deepEqual(ro.offsets(0), { start: 0, end: 1600, pending: 1600 })
  const recs = await collect(ro.iterate(0))
  t.is(recs.length, 1600)
  t.true(recs.every((r, i) => sameRecord(r, 0, i)))
  t.true(sameRecord(await ro.read(0, 1599), 0, 1599))
  t.is(await h.send('exit'), 'closed')
  await h.exited
  await ro.close()
})

test('a read-only follower finds damage in what the writer acknowledged: CORRUPTED, not a shorter log', async (t) => {
  const dir = tmpDir(t)
  const h = startHolder(dir)
  t.teardown(() => h.child.kill('SIGKILL'))
  t.is(await h.next(), 'ready')
  t.is(await h.send('append 0 100'), 'done 100')
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.teardown(() => ro.close())
  t.is(ro.offsets(0).end, 100)
  // Made while all is well, and not yet read from: it starts following the writer (its watch)
  // only once it has read everything and waits, which is after the damage below.
  const live = ro.readable(0, { from: 100, live: true })
  t.is(await h.send('append 0 100'), 'done 200')
  // The new batch's magic byte (at 8 in its header), as bit rot would change it.
  const segs = fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).sort()
  const file = `${dir}/partition-0/${segs.at(-1)}`
  const buf = fs.readFileSync(file)
  let last = -1
  for (let at = 64; at + 4 <= buf.length && buf.readUInt32BE(at) !== 0; at += buf.readUInt32BE(at)) last = at
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([buf[last + 8] ^ 0xff]), 0, 1, last + 8)
  fs.closeSync(fd)
  // The live reader finds it as it starts waiting, rather than waiting for ever.
  const failed = new Promise((resolve) => live.on('error', resolve))
  live.resume()
  t.is((await failed).code, 'CORRUPTED')
  const err = t.throws(() => ro.offsets(0), { instanceOf: WalError, code: 'CORRUPTED' })
  t.regex(err.message, /inside acknowledged data/)
  t.is(err.details.position, last)
  await t.throwsAsync(collect(ro.iterate(0)), { code: 'CORRUPTED' }, 'it stays found')
  t.is(await h.send('exit'), 'closed')
  await h.exited
})

test('a follower that meets a bad payload byte keeps serving: only reads of that batch are CORRUPTED, as from the writer', async (t) => {
  const dir = tmpDir(t)
  let w = await WriteAhead.open(dir)
  for (let i = 0; i < 100; i++) await w.append(0, `record-${i}`)
  await w.close()
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.teardown(() => ro.close())
  t.is(ro.offsets(0).end, 100)
  w = await WriteAhead.open(dir)
  for (let i = 100; i < 200; i++) await w.append(0, `record-${i}`)
  await w.close()
  const segs = fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).sort()
  const file = `${dir}/partition-0/${segs.find((f) => fs.readFileSync(`${dir}/partition-0/${f}`).includes('record-150'))}`
  const buf = fs.readFileSync(file)
  const at = buf.indexOf('record-150') + 7
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([buf[at] ^ 0x01]), 0, 1, at)
  fs.closeSync(fd)
  t.deepEqual(ro.offsets(0), { start: 0, end: 200, pending: 200 }, 'it follows the writer past the damaged payload')
  await t.throwsAsync(ro.read(0, 150), { code: 'CORRUPTED' })
  t.is((await ro.read(0, 149)).value.toString(), 'record-149', 'the batches before it are served')
  t.is((await ro.read(0, 5)).value.toString(), 'record-5')
})

test('a follower passes an older segment whose seal is still being written', async (t) => {
  // The writer seals a segment just after publishing a commit in the next one: a follower can
  // read the seal half written. A torn seal is made here by hand, where the writer left one whole.
  const dir = tmpDir(t)
  const opts = { segmentBytes: 8192, preallocate: false }
  let w = await WriteAhead.open(dir, opts)
  for (let i = 0; i < 20; i++) await w.append(0, `r-${i}`.padEnd(100, '.'))
  await w.close()
  const logs = () => fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).sort()
  t.is(logs().length, 1)
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.teardown(() => ro.close())
  t.is(ro.offsets(0).end, 20)
  w = await WriteAhead.open(dir, opts)
  let n = 20
  while (logs().length === 1) await w.append(0, `r-${n++}`.padEnd(100, '.'))
  await w.append(0, 'after')
  n++
  await w.close()
  const older = `${dir}/partition-0/${logs()[0]}`
  const whole = fs.readFileSync(older)
  const fd = fs.openSync(older, 'r+')
  fs.writeSync(fd, Buffer.alloc(20), 0, 20, whole.length - 20)
  fs.closeSync(fd)
  t.is(ro.offsets(0).end, n, 'it used to be CORRUPTED for good')
  t.is((await ro.read(0, n - 1)).value.toString(), 'after')
  t.is((await ro.read(0, 3)).value.toString(), 'r-3'.padEnd(100, '.'))
})

test('readOnly on a directory without a log is NOT_A_WAL', async (t) => {
  await t.throwsAsync(WriteAhead.open(tmpDir(t), { readOnly: true }), { code: 'NOT_A_WAL' })
})

test('a live reader in a read-only process is woken by the writer process, across rotation', async (t) => {
  const dir = tmpDir(t)
  const h = startHolder(dir)
  t.is(await h.next(), 'ready')
  t.is(await h.send('append 0 10'), 'done 10')
  const ro = await WriteAhead.open(dir, { readOnly: true })
  const rs = ro.readable(0, { live: true, from: 'latest' })
  const got = []
  const all = new Promise((resolve, reject) => {
    rs.on('data', (r) => { got.push(r); if (got.length === 1000) resolve() })
    rs.on('error', reject)
  })
  for (let i = 0; i < 10; i++) await h.send('append 0 100')
  await all
  t.deepEqual(got.map((r) => r.offset), Array.from({ length: 1000 }, (_, i) => i + 10))
  t.true(got.every((r) => sameRecord(r, 0, r.offset)))
  t.true(fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).length >= 2)
  const ended = new Promise((resolve) => rs.on('end', resolve))
  await ro.close()
  await ended
  t.is(await h.send('exit'), 'closed')
  await h.exited
})

test('readOnly follows the writer\'s checkpoints and group cursors, across meta compaction', async (t) => {
  const dir = tmpDir(t)
  const writer = await WriteAhead.open(dir, { metaSegmentBytes: 4096 })
  await writer.appendBatch(0, ['a', 'b'], { checkpoint: { name: 'src', value: '1' } })
  await writer.group('g').commit(0, 1)
  const reader = await WriteAhead.open(dir, { readOnly: true })
  t.is(reader.checkpoint(0, 'src').toString(), '1')
  t.is(reader.group('g').committed(0), 1)

  await writer.appendBatch(0, ['c'], { checkpoint: { name: 'src', value: '2' } })
  await writer.group('g').commit(0, 2)
  t.is(reader.checkpoint(0, 'src').toString(), '2', 'a later checkpoint is seen')
  t.is(reader.group('g').committed(0), 2, 'a later cursor is seen')

  // Enough commits for the writer to compact its meta log (older segments deleted) several times.
  for (let i = 0; i < 400; i++) await writer.group(`other-${i % 20}`).commit(0, i % 3)
  await writer.group('g').commit(0, 3)
  t.is(reader.group('g').committed(0), 3)
  t.is(reader.groups().length, writer.groups().length)
  await reader.close()
  await writer.close()
})

test('two processes locking a new log at the same instant: exactly one gets it', async (t) => {
  // Process A is stopped right after it started creating the lock, and process B locks the log
  // meanwhile. A lock that existed before its owner was written into it looked torn to B, which
  // took it over while A went on believing it held it too: two writers on one log.
  const { DirLock } = await import('../dist/src/lock/index.js')
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  // B renames its answer into place: the file appears with its content, never empty.
  const acquired = `${dir}.b-acquired`
  const lockJs = new URL('../dist/src/lock/index.js', import.meta.url).href
  const ioJs = new URL('../dist/src/io/file-io.js', import.meta.url).href
  const script = `const { DirLock } = await import(${JSON.stringify(lockJs)}); const { nodeFileIO } = await import(${JSON.stringify(ioJs)})
    let got = 'LOCKED'; try { DirLock.acquire(nodeFileIO, ${JSON.stringify(dir)}); got = 'acquired' } catch (err) { if (err.code !== 'LOCKED') got = String(err) }
    const fs = await import('node:fs'); fs.writeFileSync(${JSON.stringify(acquired + '.tmp')}, got); fs.renameSync(${JSON.stringify(acquired + '.tmp')}, ${JSON.stringify(acquired)}); process.stdin.resume()`
  let b = null
  const lockFds = new Set()
  const io = {
    ...nodeFileIO,
    open (p, mode) { const fd = nodeFileIO.open(p, mode); if (p.includes('LOCK') && mode === 'wx') lockFds.add(fd); return fd },
    write (fd, ...rest) {
      if (lockFds.has(fd) && b === null) {
        b = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'inherit', 'inherit'] })
        const sleeper = new Int32Array(new SharedArrayBuffer(4))
        for (let i = 0; i < 2000 && !fs.existsSync(acquired); i++) Atomics.wait(sleeper, 0, 0, 5)
      }
      return nodeFileIO.write(fd, ...rest)
    }
  }
  t.teardown(() => b?.kill('SIGKILL'))
  let aGot = 'acquired'
  try { DirLock.acquire(io, dir) } catch (err) { aGot = err.code }
  t.not(b, null)
  t.is(fs.readFileSync(acquired, 'utf8'), 'acquired', 'B, which came second into an empty directory, got the lock')
  t.is(aGot, 'LOCKED', 'A must not hold it too')
  t.deepEqual(fs.readdirSync(dir), ['LOCK'], 'no temporary lock file left behind')
})

test('temporary lock files of a process killed while locking are removed by the next writer; a live owner keeps its own', async (t) => {
  // A process SIGKILLed between writing LOCK.<token>.new and linking it into place leaves that file.
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  const lockJs = new URL('../dist/src/lock/index.js', import.meta.url).href
  const ioJs = new URL('../dist/src/io/file-io.js', import.meta.url).href
  const script = `const { DirLock } = await import(${JSON.stringify(lockJs)}); const { nodeFileIO } = await import(${JSON.stringify(ioJs)})
    DirLock.acquire({ ...nodeFileIO, link () { process.kill(process.pid, 'SIGKILL') } }, ${JSON.stringify(dir)})`
  const killed = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' })
  const [, signal] = await new Promise((resolve) => killed.on('exit', (...a) => resolve(a)))
  t.is(signal, 'SIGKILL')
  const left = fs.readdirSync(dir)
  t.is(left.length, 1)
  t.regex(left[0], /^LOCK\.[0-9a-f]{16}\.new$/)
  // A rename's temporary of a dead owner goes too. One of a live process (this one's parent stands
  // in), one of another host, and an empty one (a live process between creating and writing it)
  // must stay.
  const deadTmp = `LOCK.${'c'.repeat(16)}.tmp`
  const live = `LOCK.${'a'.repeat(16)}.new`
  const remote = `LOCK.${'b'.repeat(16)}.tmp`
  const empty = `LOCK.${'d'.repeat(16)}.new`
  fs.writeFileSync(`${dir}/${deadTmp}`, JSON.stringify({ pid: killed.pid, host: os.hostname(), token: 'c'.repeat(16) }))
  fs.writeFileSync(`${dir}/${live}`, JSON.stringify({ pid: process.ppid, host: os.hostname(), token: 'a'.repeat(16) }))
  fs.writeFileSync(`${dir}/${remote}`, JSON.stringify({ pid: killed.pid, host: `not-${os.hostname()}`, token: 'b'.repeat(16) }))
  fs.writeFileSync(`${dir}/${empty}`, '')
  const wal = await WriteAhead.open(dir)
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('LOCK')).sort(), ['LOCK', live, remote, empty].sort())
  await wal.close()
})

test('a read-only open at any point of a meta compaction finds the log', async (t) => {
  // The writer compacts its meta log each time it starts a new meta segment. Deleted before the
  // durable mark named the new segment, the old one left a read-only process opening in between
  // with no meta segment it could read: NOT_A_WAL.
  const dir = tmpDir(t)
  const opens = []
  const io = {
    ...nodeFileIO,
    unlink (p) {
      nodeFileIO.unlink(p)
      if (p.includes('/meta/') && p.endsWith('.log')) opens.push(WriteAhead.open(dir, { readOnly: true }).then(async (ro) => { const n = ro.groups().length; await ro.close(); return n }))
    }
  }
  const wal = await WriteAhead.open(dir, { io, metaSegmentBytes: 4096, preallocate: false })
  await wal.append(0, 'x')
  for (let i = 0; opens.length < 3; i++) await wal.group(`g${i % 5}`).commit(0, 1)
  await wal.close()
  const seen = await Promise.allSettled(opens)
  t.deepEqual(seen.map((r) => r.status === 'fulfilled' ? 'found' : r.reason.code), ['found', 'found', 'found'])
})

test('a read-only open whose listed segment is deleted before it is opened lists again', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 4096 })
  for (let i = 0; i < 60; i++) await wal.append(0, 'y'.repeat(200))
  await wal.close()
  // As if the writer's retention deleted it between this process's listing and its open.
  const gone = (times) => {
    let left = times
    return { ...nodeFileIO, open (p, mode) { if (p.endsWith('.log') && p.includes('/partition-0/') && left-- > 0) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' }); return nodeFileIO.open(p, mode) } }
  }
  const ro = await WriteAhead.open(dir, { readOnly: true, io: gone(2) })
  t.is(ro.offsets(0).end, 60)
  await ro.close()
  const err = await t.throwsAsync(WriteAhead.open(dir, { readOnly: true, io: gone(Infinity) }), { instanceOf: WalError, code: 'IO_ERROR' })
  t.regex(err.message, /kept disappearing/)
})

test('applyRetention on a read-only open is READ_ONLY and deletes nothing of the writer\'s', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 4096, preallocate: false })
  for (let i = 0; i < 60; i++) await wal.append(0, 'y'.repeat(200))
  const files = () => fs.readdirSync(`${dir}/partition-0`).filter((f) => f.endsWith('.log')).length
  const before = files()
  t.true(before > 2)
  const ro = await WriteAhead.open(dir, { readOnly: true, retention: { maxBytes: 0 } })
  t.throws(() => ro.applyRetention(), { instanceOf: WalError, code: 'READ_ONLY' })
  t.is(files(), before, 'the writer\'s segments are all still there')
  t.is((await wal.read(0, wal.offsets(0).start)).offset, 0)
  await ro.close()
  await wal.close()
})

test('a read-only process sees a trim the writer made without a commit since: its start, no descriptor of a deleted segment, onTrimmed: \'earliest\' skips to it', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false })
  for (let i = 0; i < 200; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'v'.repeat(60)))
  const fds = new Map()
  const io = {
    ...nodeFileIO,
    open (p, mode) { const fd = nodeFileIO.open(p, mode); fds.set(fd, p); return fd },
    close (fd) { fds.delete(fd); nodeFileIO.close(fd) }
  }
  const ro = await WriteAhead.open(dir, { readOnly: true, io })
  t.is((await ro.read(0, 0)).offset, 0, 'the first segment is open in the reader')
  const start = await wal.trimBefore(0, 1000)
  t.true(start > 0)
  // The writer has committed nothing since: its durable mark is what the reader saw last.
  t.deepEqual(ro.offsets(0), wal.offsets(0))
  t.deepEqual([...fds.values()].filter((p) => !fs.existsSync(p)), [], 'no descriptor of a deleted segment stays open')
  await t.throwsAsync(ro.read(0, 0), { code: 'OFFSET_OUT_OF_RANGE' })
  await t.throwsAsync(collect(ro.iterate(0, { from: 0 })), { code: 'OFFSET_TRIMMED' })
  // The reader used to restart at the start it still believed in, on and on: the stack overflowed.
  for await (const rec of ro.readable(0, { from: 0, onTrimmed: 'earliest' })) {
    t.is(rec.offset, start)
    break
  }
  await ro.close()
  await wal.close()
})

test('a read-only process rebuilds missing index files in memory and writes nothing into the writer\'s directory', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false })
  for (let i = 0; i < 100; i++) await wal.appendBatch(0, Array.from({ length: 10 }, (_, j) => `r${i * 10 + j}`.padEnd(60, 'x')))
  const pdir = `${dir}/partition-0`
  for (const f of fs.readdirSync(pdir)) if (/index$/.test(f)) fs.unlinkSync(`${pdir}/${f}`)
  const listing = fs.readdirSync(pdir).sort()
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.is((await ro.read(0, 10)).value.toString().slice(0, 3), 'r10')
  t.is((await collect(ro.iterate(0, { from: 500, to: 510 }))).length, 10)
  t.deepEqual(fs.readdirSync(pdir).sort(), listing, 'no file created (index files of a segment the writer may be trimming would outlive it)')
  await ro.close()
  await wal.close()
})
