import test from 'ava'
import { SimDisk, PowerCut, mulberry32 } from './helpers/sim-disk.js'

const fill = (n, byte) => Buffer.alloc(n, byte)

function write (disk, fd, buf, pos) {
  let off = 0
  while (off < buf.length) off += disk.io.write(fd, buf, off, buf.length - off, pos + off)
}

/** A top-level directory whose name is durable (the root is synced after mkdir). */
function durableDir (disk, p) {
  disk.io.mkdir(p)
  disk.io.syncDir('/')
}

/** A file at p with durable content `base` (data and directory entry synced). */
function durableFile (disk, p, base) {
  durableDir(disk, p.slice(0, p.lastIndexOf('/')))
  const fd = disk.io.open(p, 'wx')
  write(disk, fd, base, 0)
  disk.io.datasync(fd)
  disk.io.syncDir(p.slice(0, p.lastIndexOf('/')))
  return fd
}

test('unsynced writes are dropped by a power loss, synced ones survive', (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', Buffer.from('hello'))
  write(disk, fd, Buffer.from(' world'), 5)
  t.is(disk.readFile('/d/f').toString(), 'hello world')
  disk.powerLoss({ mode: 'drop' })
  t.is(disk.readFile('/d/f').toString(), 'hello')

  const fd2 = disk.io.open('/d/f', 'rw')
  write(disk, fd2, Buffer.from(' there'), 5)
  disk.io.datasync(fd2)
  write(disk, fd2, Buffer.from('J'), 0) // overwrite, unsynced
  disk.powerLoss({ mode: 'drop' })
  t.is(disk.readFile('/d/f').toString(), 'hello there')
  t.is(disk.fileSize('/d/f'), 11)
})

test('truncate is undone by a power loss unless synced', (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', fill(1000, 7))
  disk.io.truncate(fd, 10)
  t.is(disk.io.size(fd), 10)
  disk.powerLoss()
  t.is(disk.fileSize('/d/f'), 1000)
  const fd2 = disk.io.open('/d/f', 'rw')
  disk.io.truncate(fd2, 10)
  disk.io.datasync(fd2)
  disk.io.truncate(fd2, 20) // extension reads as zeros
  t.deepEqual(disk.readFile('/d/f'), Buffer.concat([fill(10, 7), fill(10, 0)]))
  disk.powerLoss()
  t.deepEqual(disk.readFile('/d/f'), fill(10, 7))
})

test('a file whose directory entry was never synced vanishes, even if its data was', (t) => {
  const disk = new SimDisk()
  durableDir(disk, '/d')
  const fd = disk.io.open('/d/new', 'wx')
  write(disk, fd, Buffer.from('data'), 0)
  disk.io.datasync(fd)
  t.deepEqual(disk.listDir('/d'), ['new'])
  disk.powerLoss()
  t.false(disk.io.exists('/d/new'))
  t.deepEqual(disk.listDir('/d'), [])
  t.true(disk.io.exists('/d'), 'a directory whose parent was synced survives')

  const fd2 = disk.io.open('/d/new', 'wx')
  write(disk, fd2, Buffer.from('data'), 0)
  disk.io.syncDir('/d') // entry durable, data not
  disk.powerLoss()
  t.true(disk.io.exists('/d/new'))
  t.is(disk.fileSize('/d/new'), 0)
})

test('rename and unlink revert unless the directory is synced', (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/a.tmp', Buffer.from('A'))
  disk.io.close(fd)
  durableFile(disk, '/d/b', Buffer.from('B'))
  disk.io.rename('/d/a.tmp', '/d/b') // replaces b
  t.deepEqual(disk.listDir('/d'), ['b'])
  t.is(disk.readFile('/d/b').toString(), 'A')
  disk.powerLoss()
  t.deepEqual(disk.listDir('/d'), ['a.tmp', 'b'])
  t.is(disk.readFile('/d/b').toString(), 'B')
  t.is(disk.readFile('/d/a.tmp').toString(), 'A')

  disk.io.rename('/d/a.tmp', '/d/b')
  disk.io.syncDir('/d')
  disk.powerLoss()
  t.deepEqual(disk.listDir('/d'), ['b'])
  t.is(disk.readFile('/d/b').toString(), 'A')

  disk.io.unlink('/d/b')
  t.false(disk.io.exists('/d/b'))
  disk.powerLoss()
  t.is(disk.readFile('/d/b').toString(), 'A', 'an unsynced unlink comes back with its durable content')
  disk.io.unlink('/d/b')
  disk.io.syncDir('/d')
  disk.powerLoss()
  t.false(disk.io.exists('/d/b'))
})

test('a directory whose name was never synced vanishes with everything in it; syncing its parent keeps it', (t) => {
  const disk = new SimDisk()
  disk.io.mkdir('/a/b')
  const fd = disk.io.open('/a/b/f', 'wx')
  write(disk, fd, Buffer.from('data'), 0)
  disk.io.datasync(fd)
  disk.io.syncDir('/a/b')
  disk.io.syncDir('/') // /a is named, /a/b is not
  disk.powerLoss()
  t.true(disk.io.exists('/a'))
  t.false(disk.io.exists('/a/b'))
  t.false(disk.io.exists('/a/b/f'))
  t.is(t.throws(() => disk.io.readdir('/a/b')).code, 'ENOENT')

  disk.io.mkdir('/a/b')
  const fd2 = disk.io.open('/a/b/f', 'wx')
  write(disk, fd2, Buffer.from('data'), 0)
  disk.io.datasync(fd2)
  disk.io.syncDir('/a/b')
  disk.io.syncDir('/a')
  disk.powerLoss()
  t.is(disk.readFile('/a/b/f').toString(), 'data')
})

test('relative and absolute paths name the same file; readdir lists subdirectories', (t) => {
  const disk = new SimDisk()
  disk.io.mkdir('rel/sub')
  const fd = disk.io.open('rel/f', 'wx')
  disk.io.close(fd)
  t.true(disk.io.exists(`${process.cwd()}/rel/f`))
  t.deepEqual(disk.listDir(`${process.cwd()}/rel`), ['f', 'sub'])
  t.is(t.throws(() => disk.io.readdir('/nope')).code, 'ENOENT')
  t.is(t.throws(() => disk.io.open('/nope/x', 'wx')).code, 'ENOENT')
  t.is(t.throws(() => disk.io.open('rel/f', 'wx')).code, 'EEXIST')
  t.is(t.throws(() => disk.io.open('rel/g', 'r')).code, 'ENOENT')
})

function tornImage (seed, mode) {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', fill(16384, 0xaa))
  write(disk, fd, fill(16384, 0xbb), 0)
  write(disk, fd, fill(8192, 0xcc), 16384) // grows the file: size is durable or current
  disk.powerLoss({ mode, rng: mulberry32(seed) })
  return disk.readFile('/d/f')
}

for (const [mode, sector] of [['tear512', 512], ['tear4k', 4096]]) {
  test(`${mode}: torn writes keep whole sectors only, reproducibly for a seed`, (t) => {
    const seen = new Set()
    const sizes = new Set()
    for (let seed = 1; seed <= 20; seed++) {
      const img = tornImage(seed, mode)
      t.deepEqual(tornImage(seed, mode), img, 'same seed, same image')
      t.true(img.length === 16384 || img.length === 24576)
      sizes.add(img.length)
      for (let s = 0; s < img.length; s += sector) {
        const sec = img.subarray(s, s + sector)
        const expected = s < 16384 ? [0xaa, 0xbb] : [0x00, 0xcc]
        t.true(expected.includes(sec[0]) && sec.every((b) => b === sec[0]), `sector at ${s} is whole`)
        seen.add(sec[0])
      }
    }
    t.deepEqual([...seen].sort(), [0x00, 0xaa, 0xbb, 0xcc], 'some sectors kept, some lost')
    t.deepEqual([...sizes].sort(), [16384, 24576])
    t.notDeepEqual(tornImage(1, mode), tornImage(2, mode))
  })
}

test('a torn write never changes a synced sector; drop mode keeps only durable data', (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', fill(4096, 1))
  write(disk, fd, fill(1, 2), 1000) // dirties sector 1 (512) only
  disk.powerLoss({ mode: 'tear512', rng: () => 0 }) // keep everything
  const img = disk.readFile('/d/f')
  t.is(img[1000], 2)
  t.true(img.subarray(0, 512).every((b) => b === 1))
})

test('disk full: ENOSPC for growing writes, overwrites succeed, and space freed makes writes work', async (t) => {
  const disk = new SimDisk()
  durableDir(disk, '/d')
  const fd = disk.io.open('/d/f', 'wx')
  write(disk, fd, fill(100, 1), 0)
  disk.diskFull({ freeBytes: 50 })
  const err = t.throws(() => disk.io.write(fd, fill(60, 2), 0, 60, 100))
  t.like(err, { code: 'ENOSPC', errno: -28, syscall: 'write' })
  t.is(disk.fileSize('/d/f'), 100, 'a failed write writes nothing')
  t.is(disk.io.write(fd, fill(100, 3), 0, 100, 0), 100, 'overwrite within the file')
  t.is(disk.io.write(fd, fill(50, 4), 0, 50, 100), 50)
  t.is(t.throws(() => disk.io.write(fd, fill(1, 5), 0, 1, 150)).code, 'ENOSPC')
  const asyncErr = await new Promise((resolve) => disk.io.writeAsync(fd, fill(1, 5), 0, 1, 150, (e) => resolve(e)))
  t.is(asyncErr?.code, 'ENOSPC', 'writeAsync reports ENOSPC through its callback')

  disk.diskFull(null)
  t.is(disk.io.write(fd, fill(60, 2), 0, 60, 150), 60)
  t.is(disk.fileSize('/d/f'), 210)

  // Unlinking frees space once the last descriptor is closed.
  disk.diskFull({ freeBytes: 0 })
  t.is(t.throws(() => disk.io.write(fd, fill(1, 1), 0, 1, 210)).code, 'ENOSPC')
  const g = disk.io.open('/d/g', 'wx')
  disk.io.unlink('/d/f')
  t.is(t.throws(() => disk.io.write(g, fill(1, 1), 0, 1, 0)).code, 'ENOSPC', 'still held open')
  disk.io.close(fd)
  t.is(disk.io.write(g, fill(210, 1), 0, 210, 0), 210)

  // partial: true behaves like Linux: a short write, then ENOSPC.
  disk.diskFull({ freeBytes: 10, partial: true })
  t.is(disk.io.write(g, fill(30, 1), 0, 30, 210), 10)
  t.is(t.throws(() => disk.io.write(g, fill(20, 1), 0, 20, 220)).code, 'ENOSPC')
})

test('short writes write only a prefix, and at least one byte', async (t) => {
  const { writeFully } = await import('../dist/src/io/full-io.js')
  const disk = new SimDisk()
  durableDir(disk, '/d')
  const fd = disk.io.open('/d/f', 'wx')
  disk.shortWrites({ probability: 1, rng: mulberry32(3) })
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff))
  const n = disk.io.write(fd, data, 0, 1000, 0)
  t.true(n >= 1 && n < 1000)
  t.is(disk.fileSize('/d/f'), n)
  t.deepEqual(disk.readFile('/d/f'), data.subarray(0, n))
  const m = await new Promise((resolve) => disk.io.writeAsync(fd, data, n, 1000 - n, n, (e, w) => resolve(w)))
  t.true(m >= 1 && m <= 1000 - n)
  writeFully(disk.io, fd, data, 0, 1000, 0)
  t.deepEqual(disk.readFile('/d/f'), data)
  disk.shortWrites(null)
  t.is(disk.io.write(fd, data, 0, 1000, 0), 1000)
})

test('interrupted reads throw EINTR or return short, never 0 before EOF', async (t) => {
  const { readFully } = await import('../dist/src/io/full-io.js')
  const disk = new SimDisk()
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff))
  disk.writeFileDurable('/d/f', data)
  const fd = disk.io.open('/d/f', 'r')
  disk.interruptedReads({ probability: 0.5, rng: mulberry32(9) })
  let eintr = 0
  let short = 0
  for (let i = 0; i < 200; i++) {
    const buf = Buffer.alloc(5000)
    try {
      const n = disk.io.read(fd, buf, 0, 5000, 0)
      t.true(n > 0)
      if (n < 5000) short++
      t.deepEqual(buf.subarray(0, n), data.subarray(0, n))
    } catch (err) {
      t.like(err, { code: 'EINTR', errno: -4, syscall: 'read' })
      eintr++
    }
  }
  t.true(eintr > 0 && short > 0)
  t.is(disk.io.read(fd, Buffer.alloc(10), 0, 10, 5000), 0, 'EOF is 0')
  const out = Buffer.alloc(6000)
  t.is(readFully(disk.io, fd, out, 0, 6000, 0), 5000)
  t.deepEqual(out.subarray(0, 5000), data)
})

test('failNextSync: the sync fails, and its writes are lost for good', async (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', Buffer.from('aaaa'))
  write(disk, fd, Buffer.from('bb'), 4)
  disk.failNextSync()
  const err = t.throws(() => disk.io.datasync(fd))
  t.like(err, { code: 'EIO', errno: -5, syscall: 'fdatasync' })
  t.is(disk.readFile('/d/f').toString(), 'aaaabb', 'reads still see the failed writes')
  disk.io.datasync(fd) // succeeds, but the lost pages are clean: nothing to write
  write(disk, fd, Buffer.from('c'), 6)
  disk.io.datasync(fd)
  disk.powerLoss()
  t.deepEqual(disk.readFile('/d/f'), Buffer.from('aaaa\0\0c'))

  // match by substring or predicate, and the async variant reports through the callback.
  const a = durableFile(disk, '/d/a', Buffer.from('x'))
  const b = durableFile(disk, '/d/b', Buffer.from('y'))
  disk.failNextSync({ code: 'ENOSPC', match: '/d/b' })
  disk.io.datasync(a)
  let called = false
  const p = new Promise((resolve) => disk.io.datasyncAsync(b, (e) => { called = true; resolve(e) }))
  t.false(called, 'calls back asynchronously')
  t.like(await p, { code: 'ENOSPC', syscall: 'fdatasync' })
  disk.failNextSync({ match: (path) => path.endsWith('/a') })
  t.is(await new Promise((resolve) => disk.io.datasyncAsync(b, resolve)), null)
  t.is(t.throws(() => disk.io.datasync(a)).code, 'EIO')
})

test('every descriptor is EBADF after a power loss or a crash; a crash keeps the page cache', async (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', Buffer.from('x'))
  write(disk, fd, Buffer.from('y'), 1)
  t.is(disk.openFds(), 1)
  disk.crash()
  t.is(disk.openFds(), 0)
  t.is(disk.readFile('/d/f').toString(), 'xy')
  for (const call of [() => disk.io.write(fd, Buffer.from('z'), 0, 1, 0), () => disk.io.read(fd, Buffer.alloc(1), 0, 1, 0), () => disk.io.datasync(fd), () => disk.io.size(fd), () => disk.io.truncate(fd, 0), () => disk.io.close(fd)]) {
    t.is(t.throws(call).code, 'EBADF')
  }
  const fd2 = disk.io.open('/d/f', 'rw')
  disk.powerLoss()
  t.is(disk.readFile('/d/f').toString(), 'x', 'the crash did not make anything durable')
  t.is(t.throws(() => disk.io.size(fd2)).code, 'EBADF')
  t.is((await new Promise((resolve) => disk.io.datasyncAsync(fd2, resolve))).code, 'EBADF')
  t.is((await new Promise((resolve) => disk.io.writeAsync(fd2, Buffer.from('a'), 0, 1, 0, resolve))).code, 'EBADF')
  const r = disk.io.open('/d/f', 'r')
  t.is(t.throws(() => disk.io.write(r, Buffer.from('a'), 0, 1, 0)).code, 'EBADF', 'read-only descriptor')
})

test('a crash keeps the boot id, a power loss changes it', (t) => {
  const disk = new SimDisk()
  const first = disk.io.bootId()
  disk.crash()
  t.is(disk.io.bootId(), first)
  disk.powerLoss()
  const second = disk.io.bootId()
  t.not(second, first)
  disk.powerLoss({ mode: 'tear4k' })
  t.not(disk.io.bootId(), second)
})

test('onOperation sees every mutating operation; a throwing hook cancels it', (t) => {
  const disk = new SimDisk()
  const ops = []
  disk.onOperation((o) => {
    ops.push(o.op)
    if (o.op === 'rename') throw new PowerCut()
  })
  disk.io.mkdir('/d')
  const fd = disk.io.open('/d/f', 'wx')
  write(disk, fd, Buffer.from('abc'), 0)
  disk.io.datasync(fd)
  disk.io.truncate(fd, 2)
  disk.io.syncDir('/d')
  t.throws(() => disk.io.rename('/d/f', '/d/g'), { instanceOf: PowerCut })
  t.true(disk.io.exists('/d/f'))
  t.false(disk.io.exists('/d/g'))
  t.deepEqual(ops, ['mkdir', 'open', 'write', 'datasync', 'truncate', 'syncDir', 'rename'])
  t.is(disk.opCount, 7)
})

test('cutPowerAfter(n): operation n and everything after throw PowerCut until powerLoss', (t) => {
  const disk = new SimDisk()
  const fd = durableFile(disk, '/d/f', Buffer.from('a'))
  disk.cutPowerAfter(1)
  write(disk, fd, Buffer.from('b'), 1)
  t.throws(() => disk.io.datasync(fd), { instanceOf: PowerCut })
  t.true(disk.powerCut)
  t.throws(() => disk.io.read(fd, Buffer.alloc(1), 0, 1, 0), { instanceOf: PowerCut })
  disk.powerLoss()
  t.false(disk.powerCut)
  t.is(disk.readFile('/d/f').toString(), 'a')
})

test('flipBit changes one bit of what is on the medium', (t) => {
  const disk = new SimDisk()
  disk.writeFileDurable('/d/f', Buffer.from([0, 0, 0]))
  disk.flipBit('/d/f', 1, 3)
  t.deepEqual(disk.readFile('/d/f'), Buffer.from([0, 8, 0]))
  disk.powerLoss()
  t.deepEqual(disk.readFile('/d/f'), Buffer.from([0, 8, 0]))
})

test('the write-ahead log runs on the sim disk', async (t) => {
  const { WriteAhead } = await import('../dist/src/index.js')
  const disk = new SimDisk()
  const opts = { io: disk.io, segmentBytes: 64 * 1024, preallocate: false }
  const wal = await WriteAhead.open('/sim/wal', opts)
  const values = Array.from({ length: 100 }, (_, i) => `record ${i} `.repeat(50 + (i % 100)))
  for (let i = 0; i < 100; i++) t.is(await wal.append(0, values[i]), i)
  await wal.close()
  t.is(disk.openFds(), 0, 'close releases every descriptor')
  t.true(disk.listDir('/sim/wal/partition-0').filter((n) => n.endsWith('.log')).length > 1, 'rotated at least once')

  const again = await WriteAhead.open('/sim/wal', opts)
  t.deepEqual(again.offsets(0), { start: 0, end: 100, pending: 100 })
  const got = []
  for await (const r of again.iterate(0)) got.push(r.value.toString())
  t.deepEqual(got, values)
  await again.close()
})
