// The directory lock held through the operating system's file lock (nodeFileIO's tryLock): what
// the kernel decides that a lock file naming a pid cannot.
import test from 'ava'
import fs from 'node:fs'
import os from 'node:os'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { WriteAhead, nodeFileIO } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

const lockJs = new URL('../dist/src/lock/index.js', import.meta.url).href
const ioJs = new URL('../dist/src/io/file-io.js', import.meta.url).href

/** A process that has exited: its pid names nobody (until reused). */
async function deadPid () {
  const dead = spawn(process.execPath, ['-e', ''])
  await new Promise((resolve) => dead.on('exit', resolve))
  return dead.pid
}

/** A process that runs until the test ends and holds no lock: a pid reused by an unrelated program. */
function unrelatedLivePid (t) {
  const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'])
  t.teardown(() => live.kill('SIGKILL'))
  return live.pid
}

const writeLock = (dir, owner) => fs.writeFileSync(`${dir}/LOCK`, JSON.stringify(owner))

test('nodeFileIO takes the kernel\'s lock here', (t) => {
  // Every other test in this file would pass through the lock file alone if the addon had not loaded.
  t.is(typeof nodeFileIO.tryLock, 'function')
  t.is(typeof nodeFileIO.sameFile, 'function')
})

test('two processes taking over one stale lock: only the one holding the kernel\'s lock gets it', async (t) => {
  // Both find LOCK naming a dead process. A takes the kernel's lock and is stopped before it has
  // written itself into the file; B, looking at that instant, still sees the dead owner. Going by
  // the file alone, B took it over too: two writers on one log.
  const dir = tmpDir(t)
  await (await WriteAhead.open(dir)).close()
  writeLock(dir, { pid: await deadPid(), host: os.hostname(), token: 'f'.repeat(16) })
  // A stops inside its first write to an open LOCK (the takeover's overwrite) until told to go on.
  const script = `const { DirLock } = await import(${JSON.stringify(lockJs)}); const { nodeFileIO } = await import(${JSON.stringify(ioJs)})
    const fs = await import('node:fs')
    const lockFds = new Set(); let stopped = false
    const io = { ...nodeFileIO,
      open (p, mode) { const fd = nodeFileIO.open(p, mode); if (p.endsWith('/LOCK') && mode === 'rw') lockFds.add(fd); return fd },
      write (fd, ...rest) {
        if (lockFds.has(fd) && !stopped) { stopped = true; process.stdout.write('stopped\\n'); fs.readSync(0, Buffer.alloc(1)) }
        return nodeFileIO.write(fd, ...rest)
      } }
    DirLock.acquire(io, ${JSON.stringify(dir)}); process.stdout.write('acquired\\n'); process.stdin.resume()`
  const a = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => a.kill('SIGKILL'))
  const lines = readline.createInterface({ input: a.stdout })[Symbol.asyncIterator]()
  t.is((await lines.next()).value, 'stopped')
  t.is(JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8')).token, 'f'.repeat(16), 'the file still names the dead owner')
  await t.throwsAsync(WriteAhead.open(dir), { code: 'LOCKED' }, 'B is kept out by the kernel')
  a.stdin.write('\n')
  t.is((await lines.next()).value, 'acquired')
  const err = await t.throwsAsync(WriteAhead.open(dir), { code: 'LOCKED' })
  t.is(err.details.pid, a.pid, 'LOCKED names A once it has written itself in')
  a.kill('SIGKILL')
  await new Promise((resolve) => a.on('exit', resolve))
  // A's file still names A, a dead process now; the kernel dropped its lock when A died.
  const wal = await WriteAhead.open(dir)
  t.is(JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8')).pid, process.pid)
  await wal.close()
})

test('a lock left by a writer that held the kernel\'s lock does not block, even if its pid now runs another program', async (t) => {
  // After a crash and a reboot, the dead writer's pid may belong to anything; the file alone would
  // then block the log until someone deleted it by hand.
  const dir = tmpDir(t)
  await (await WriteAhead.open(dir)).close()
  writeLock(dir, { pid: unrelatedLivePid(t), host: os.hostname(), token: 'e'.repeat(16), os: true })
  const wal = await WriteAhead.open(dir)
  const now = JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8'))
  t.is(now.pid, process.pid)
  t.true(now.os, 'and says it holds the kernel\'s lock too')
  await wal.close()
  t.false(fs.existsSync(`${dir}/LOCK`), 'released on close')
})

test('a lock whose owner went by the file alone, or lives on another host, is judged by the file', async (t) => {
  // An older writeahead, or a custom io without tryLock, holds no kernel lock: a live pid keeps the
  // log LOCKED. Another host's lock is never taken over: shared storage mounted without lock
  // support would grant that host's writer and this one a kernel lock each.
  const dir = tmpDir(t)
  await (await WriteAhead.open(dir)).close()
  const live = unrelatedLivePid(t)
  writeLock(dir, { pid: live, host: os.hostname(), token: 'e'.repeat(16) })
  const err = await t.throwsAsync(WriteAhead.open(dir), { code: 'LOCKED' })
  t.is(err.details.pid, live)
  writeLock(dir, { pid: live, host: `not-${os.hostname()}`, token: 'e'.repeat(16), os: true })
  await t.throwsAsync(WriteAhead.open(dir), { code: 'LOCKED' })
  writeLock(dir, { pid: await deadPid(), host: os.hostname(), token: 'e'.repeat(16) })
  await (await WriteAhead.open(dir)).close()
})

test('a writer going by the file alone is kept out by one holding the kernel\'s lock', async (t) => {
  // The owner written in the file is what such a writer (an older build, a custom io) goes by.
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  t.true(JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8')).os)
  const script = `const { DirLock } = await import(${JSON.stringify(lockJs)}); const { nodeFileIO } = await import(${JSON.stringify(ioJs)})
    try { DirLock.acquire({ ...nodeFileIO, tryLock: undefined }, ${JSON.stringify(dir)}); console.log('acquired') } catch (err) { console.log(err.code, err.details?.pid) }`
  const other = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  other.stdout.on('data', (d) => { out += d })
  // 'close', not 'exit': 'exit' may come before the child's last output has been read.
  await new Promise((resolve) => other.on('close', resolve))
  t.is(out.trim(), `LOCKED ${process.pid}`)
  await wal.close()
})

test('a lock released and created anew between opening it and locking it is looked at again', async (t) => {
  // B opens LOCK; its holder releases it (unlinks it) and C creates and locks a new one; then B
  // gets the kernel's lock on the file it opened, which no longer is LOCK. Holding that, B would
  // write beside C.
  const { DirLock } = await import(lockJs)
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  const first = DirLock.acquire(nodeFileIO, dir)
  let third = null
  const ioC = { ...nodeFileIO }
  const ioB = {
    ...nodeFileIO,
    tryLock (fd, shared) {
      if (third === null) { first.release(); third = DirLock.acquire(ioC, dir) }
      return nodeFileIO.tryLock(fd, shared)
    }
  }
  t.throws(() => DirLock.acquire(ioB, dir), { code: 'LOCKED' })
  t.not(third, null)
  third.release()
  t.false(fs.existsSync(`${dir}/LOCK`))
})

test('on a file system without locks (ENOLCK), the lock file alone decides', async (t) => {
  const io = { ...nodeFileIO, tryLock () { throw Object.assign(new Error('ENOLCK: no locks available'), { code: 'ENOLCK' }) } }
  const dir = tmpDir(t)
  await (await WriteAhead.open(dir, { io })).close()
  writeLock(dir, { pid: await deadPid(), host: os.hostname(), token: 'f'.repeat(16) })
  const wal = await WriteAhead.open(dir, { io })
  const now = JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8'))
  t.is(now.pid, process.pid)
  t.is(now.os, undefined, 'it does not claim the kernel\'s lock')
  await wal.close()
  const failing = { ...nodeFileIO, tryLock () { throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) } }
  await t.throwsAsync(WriteAhead.open(dir, { io: failing }), { code: 'IO_ERROR' }, 'any other failure is an error')
})

test('a holder releasing LOCK while another process waits to lock it: never two holders', async (t) => {
  // H unlinks LOCK before it closes the descriptor holding the kernel's lock. Closed first, a
  // process that had LOCK open could lock it while it still bore the name, and H's unlink would
  // then let a third process create and lock a new one beside it.
  const { DirLock } = await import(lockJs)
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  let h = null
  let w = null
  const ioH = {
    ...nodeFileIO,
    close (fd) {
      nodeFileIO.close(fd)
      // The descriptor holding H's kernel lock (a private field, read here only).
      if (h !== null && fd === h.fd && w === null) w = DirLock.acquire({ ...nodeFileIO }, dir)
    }
  }
  h = DirLock.acquire(ioH, dir)
  h.release()
  t.not(w, null, 'W got the lock as H let go')
  t.throws(() => DirLock.acquire({ ...nodeFileIO }, dir), { code: 'LOCKED' }, 'W holds, so a third is kept out')
  w.release()
})

test('a lock held when looked at but released before the LOCKED answer: looked at again', async (t) => {
  // A writer restarting right after its predecessor closed must not be told LOCKED by a file
  // that no longer exists.
  const { DirLock } = await import(lockJs)
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  const h = DirLock.acquire({ ...nodeFileIO }, dir)
  let refused = false
  const io = {
    ...nodeFileIO,
    tryLock (fd, shared) {
      const got = nodeFileIO.tryLock(fd, shared)
      if (!got && !refused) { refused = true; h.release() }
      return got
    }
  }
  const b = DirLock.acquire(io, dir)
  t.true(refused, 'B was refused once, while H held it')
  t.throws(() => DirLock.acquire({ ...nodeFileIO }, dir), { code: 'LOCKED' })
  b.release()
  t.false(fs.existsSync(`${dir}/LOCK`))
})

test('an empty LOCK nobody holds is taken over', async (t) => {
  // What a writer without link (or a crash) leaves between creating LOCK and writing it.
  const dir = tmpDir(t)
  await (await WriteAhead.open(dir)).close()
  fs.writeFileSync(`${dir}/LOCK`, '')
  const wal = await WriteAhead.open(dir)
  t.is(JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8')).pid, process.pid)
  await wal.close()
})

test('without link, a new LOCK is locked before it is written: the one that wrote it holds it', async (t) => {
  // A creates LOCK (empty) and is stopped before locking it; B locks the empty file and writes
  // itself in. A must then be LOCKED, and the file must name B, whose close removes it.
  const { DirLock } = await import(lockJs)
  const dir = tmpDir(t)
  fs.mkdirSync(dir)
  let b = null
  const ioA = {
    ...nodeFileIO,
    link: undefined,
    tryLock (fd, shared) {
      if (b === null) b = DirLock.acquire({ ...nodeFileIO, link: undefined }, dir)
      return nodeFileIO.tryLock(fd, shared)
    }
  }
  t.throws(() => DirLock.acquire(ioA, dir), { code: 'LOCKED' })
  t.not(b, null)
  const named = JSON.parse(fs.readFileSync(`${dir}/LOCK`, 'utf8'))
  b.release()
  t.false(fs.existsSync(`${dir}/LOCK`), `B's close removed the lock it wrote (it named token ${named.token})`)
})
