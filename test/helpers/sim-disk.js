/**
 * An in-memory disk with a volatile page cache, behind the FileIO interface (src/io/file-io.ts).
 *
 *   const disk = new SimDisk()
 *   const wal = await WriteAhead.open('/sim/wal', { io: disk.io })
 *   ...
 *   disk.powerLoss({ mode: 'tear512', rng: mulberry32(7) })   // then reopen and check
 *
 * Model (see also the README-style notes on each method):
 *  - Paths are keys after path.resolve(); relative paths resolve against process.cwd().
 *  - Directories are a set of paths, never removed (FileIO has no rmdir). mkdir (always
 *    recursive) creates a directory whose name in its parent is durable only once the parent is
 *    synced (syncDir): a power loss removes every directory whose name was never synced, with
 *    everything under it, as a real file system may.
 *  - A file is an inode with current content (what reads see) and durable content (what survives
 *    a power loss). Every write/truncate since the last datasync is remembered as a dirty byte
 *    range; datasync copies the dirty ranges into the durable content and makes the current size
 *    durable.
 *  - Each directory has current entries (name -> inode) and durable entries, the snapshot taken
 *    by its last syncDir. Creations, renames and unlinks only change the current entries. A power
 *    loss reverts every directory to its durable entries (a file never dir-synced vanishes, an
 *    unsynced rename reverts, an unsynced unlink comes back). Content follows the inode, so a file
 *    that comes back has its inode's durable content (plus, in tear modes, torn unsynced sectors).
 *  - A failed datasync (failNextSync) follows Linux: the dirty pages are marked clean but were not
 *    written. The file's pending dirty ranges are forgotten: reads still see the new bytes, but
 *    neither a power loss (any mode) nor a LATER successful datasync will ever persist them;
 *    only rewriting those bytes makes them dirty again. The durable size is left unchanged by the
 *    failed sync (a later successful sync makes the then-current size durable; bytes of the lost
 *    ranges then read as the old durable bytes, or zeros past the old durable size).
 *  - Space: a file occupies its current size (holes included); a file is freed when it has no
 *    name and no open descriptor. truncate never fails for space (sparse), only writes do.
 *  - Descriptors are never reused, so a stale one is always EBADF.
 */
import path from 'node:path'

const ERRNO = { EPERM: -1, ENOENT: -2, EINTR: -4, EIO: -5, EBADF: -9, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, ENOSPC: -28, EROFS: -30, EDQUOT: -122 }
const DESCR = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EINTR: 'interrupted system call',
  EIO: 'i/o error',
  EBADF: 'bad file descriptor',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EDQUOT: 'disk quota exceeded'
}

/** An error shaped like the ones node:fs throws. */
export function fsError (code, syscall, p) {
  const msg = `${code}: ${DESCR[code] ?? 'error'}, ${syscall}${p === undefined ? '' : ` '${p}'`}`
  const err = Object.assign(new Error(msg), { code, errno: ERRNO[code] ?? -1, syscall })
  if (p !== undefined) err.path = p
  return err
}

/** What an onOperation hook throws to "cut the power" at a chosen operation. */
export class PowerCut extends Error {
  constructor (message = 'power cut') {
    super(message)
    this.name = 'PowerCut'
    this.code = 'EPOWERCUT'
  }
}

/** A small seeded PRNG: returns () => number in [0, 1). */
export function mulberry32 (seed) {
  let a = seed >>> 0
  return function () {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Inode {
  constructor (id, name) {
    this.id = id
    this.path = name // last known name, for failNextSync({ match }) and messages
    this.data = Buffer.alloc(0) // capacity may exceed size
    this.size = 0
    this.durable = Buffer.alloc(0) // exactly durableSize long
    this.dirty = [] // [start, end) byte ranges written or truncated since the last datasync
    this.links = 0
    this.openCount = 0
  }

  ensureCapacity (n) {
    if (n <= this.data.length) return
    const next = Buffer.alloc(Math.max(n, this.data.length * 2, 4096))
    this.data.copy(next, 0, 0, this.size)
    this.data = next
  }

  markDirty (start, end) {
    if (end <= start) return
    const last = this.dirty[this.dirty.length - 1]
    if (last !== undefined && start <= last[1] && end >= last[0]) {
      last[0] = Math.min(last[0], start)
      last[1] = Math.max(last[1], end)
    } else {
      this.dirty.push([start, end])
    }
  }

  current () { return this.data.subarray(0, this.size) }

  /** datasync: dirty ranges and the size become durable. */
  sync () {
    const next = Buffer.alloc(this.size)
    this.durable.copy(next, 0, 0, Math.min(this.durable.length, this.size))
    for (const [s, e] of this.dirty) {
      const end = Math.min(e, this.size)
      if (end > s) this.data.copy(next, s, s, end)
    }
    this.durable = next
    this.dirty = []
  }

  /** Content after a power loss. */
  afterPowerLoss (mode, rng) {
    if (mode === 'drop' || this.dirty.length === 0 && this.size === this.durable.length) return Buffer.from(this.durable)
    const sector = mode === 'tear512' ? 512 : 4096
    const size = this.size === this.durable.length ? this.size : (rng() < 0.5 ? this.durable.length : this.size)
    const out = Buffer.alloc(size)
    this.durable.copy(out, 0, 0, Math.min(size, this.durable.length))
    const sectors = new Set()
    for (const [s, e] of this.dirty) {
      for (let i = Math.floor(s / sector); i * sector < e; i++) sectors.add(i)
    }
    for (const i of [...sectors].sort((a, b) => a - b)) {
      if (rng() >= 0.5) continue // this sector never reached the platter
      const start = i * sector
      if (start >= size) continue
      const end = Math.min(start + sector, size)
      // The page cache holds the sector's latest content; past the current size it is zeros.
      out.fill(0, start, end)
      if (start < this.size) this.data.copy(out, start, start, Math.min(end, this.size))
    }
    return out
  }
}

export class SimDisk {
  constructor () {
    this.dirs = new Map() // abs path -> { entries: Map<name, Inode>, durable: Map<name, Inode>, named: bool (its name in its parent is durable) }
    this.dirs.set(path.resolve('/'), { entries: new Map(), durable: new Map(), named: true })
    this.fds = new Map() // fd -> { inode, mode, path }
    this.nextFd = 100
    this.nextInode = 1
    this.inodes = new Set()
    this.opCount = 0 // mutating operations attempted so far (hook calls)
    this._hook = null
    this._cutAfter = null
    this._cut = false
    this._syncFailures = []
    this._limit = null // total bytes allowed, or null
    this._partialFull = false
    this._short = null
    this._eintr = null
    this.boots = 0 // power losses so far: the boot id changes with each
    this.io = this._makeIO()
  }

  // ---------------------------------------------------------------- fault injection

  /** Hook called before every mutating operation with { op, path, fd, pos, len } (and `to` for rename). If it throws, the operation fails with that error and does nothing. Returns an unsubscribe function. */
  onOperation (fn) {
    this._hook = fn
    return () => { if (this._hook === fn) this._hook = null }
  }

  /** Convenience: mutating operations 0..n-1 run; from operation n on, EVERY io call (but close) throws PowerCut until powerLoss()/crash(). */
  cutPowerAfter (n) {
    this._cutAfter = this.opCount + n
  }

  /** Whether cutPowerAfter has triggered. */
  get powerCut () { return this._cut }

  /** The next datasync/datasyncAsync (of a file whose path matches, if given: substring or predicate) fails with `code`. Calls queue up. */
  failNextSync ({ code = 'EIO', match } = {}) {
    this._syncFailures.push({ code, match })
  }

  /** Limits total allocated bytes to (bytes allocated now + freeBytes); null removes the limit. With partial: true a write that partly fits writes that prefix and returns short (Linux), else the whole write fails with ENOSPC. */
  diskFull (opts) {
    if (opts === null || opts === undefined) { this._limit = null; return }
    this._limit = this.usedBytes() + opts.freeBytes
    this._partialFull = opts.partial === true
  }

  /** write()/writeAsync() sometimes write only a prefix (at least 1 byte). null turns it off. */
  shortWrites (opts) {
    this._short = opts === null || opts === undefined ? null : { probability: opts.probability ?? 0.5, rng: opts.rng ?? mulberry32(1) }
  }

  /** read() sometimes throws EINTR or returns a short read (never 0 before EOF). null turns it off. */
  interruptedReads (opts) {
    this._eintr = opts === null || opts === undefined ? null : { probability: opts.probability ?? 0.5, rng: opts.rng ?? mulberry32(2) }
  }

  // ---------------------------------------------------------------- crashes

  /**
   * Power loss and reboot. mode 'drop': only durable data survives. 'tear512' / 'tear4k': for each
   * file, the size is its durable or its current size (random), and every sector touched by an
   * unsynced write is independently kept (latest content) or not. Directory entries revert to
   * their last syncDir. All descriptors become invalid. Injected faults stay armed. The boot id (io.bootId) changes.
   */
  powerLoss ({ mode = 'drop', rng = mulberry32(1) } = {}) {
    if (mode !== 'drop' && mode !== 'tear512' && mode !== 'tear4k') throw new Error(`unknown power loss mode ${mode}`)
    this._reboot()
    this.boots++
    // Directories whose name (or an ancestor's) was never synced are gone, with their contents.
    for (const abs of [...this.dirs.keys()].sort((a, b) => a.length - b.length)) {
      const parent = path.dirname(abs)
      if (parent === abs) continue
      if (!this.dirs.get(abs).named || !this.dirs.has(parent)) this.dirs.delete(abs)
    }
    // Directory entries revert.
    const alive = new Set()
    for (const dir of this.dirs.values()) {
      dir.entries = new Map(dir.durable)
      for (const ino of dir.entries.values()) alive.add(ino)
    }
    // Contents revert, in a deterministic order so a seed reproduces the same tear.
    for (const ino of [...alive].sort((a, b) => a.id - b.id)) {
      const content = ino.afterPowerLoss(mode, rng)
      ino.data = content
      ino.size = content.length
      ino.durable = Buffer.from(content)
      ino.dirty = []
      ino.links = 0
      ino.openCount = 0
    }
    for (const dir of this.dirs.values()) for (const ino of dir.entries.values()) ino.links++
    this.inodes = alive
  }

  /** A process crash: the page cache survives (everything written stays, still unsynced), all descriptors become invalid. The boot id stays. */
  crash () {
    this._reboot()
    for (const ino of this.inodes) ino.openCount = 0
    this._gc()
  }

  _reboot () {
    this.fds.clear()
    this._cut = false
    this._cutAfter = null
  }

  // ---------------------------------------------------------------- helpers for tests

  /** Current content (what reads see). */
  readFile (p) {
    return Buffer.from(this._lookupFile(p, 'open').current())
  }

  /** Creates or replaces a file with content that is durable, as is its directory entry. */
  writeFileDurable (p, buf) {
    const abs = path.resolve(p)
    this._mkdirp(path.dirname(abs))
    for (let d = path.dirname(abs); d !== path.dirname(d); d = path.dirname(d)) this.dirs.get(d).named = true
    const dir = this._dir(path.dirname(abs), 'open', abs)
    const name = path.basename(abs)
    if (this.dirs.has(abs)) throw fsError('EISDIR', 'open', abs)
    const ino = this._newInode(abs)
    const data = Buffer.from(buf)
    ino.data = Buffer.from(data)
    ino.size = data.length
    ino.durable = Buffer.from(data)
    this._link(dir, name, ino)
    dir.durable.set(name, ino)
  }

  /** Flips one bit on the medium: in the durable content and in what reads see. */
  flipBit (p, byteIndex, bit = 0) {
    const ino = this._lookupFile(p, 'open')
    if (byteIndex >= ino.size && byteIndex >= ino.durable.length) throw new RangeError(`byte ${byteIndex} is past the end of ${p}`)
    if (byteIndex < ino.size) ino.data[byteIndex] ^= (1 << bit)
    if (byteIndex < ino.durable.length) ino.durable[byteIndex] ^= (1 << bit)
  }

  /** Sorted names (files and subdirectories) currently in a directory. */
  listDir (p) {
    return this._readdir(p).sort()
  }

  fileSize (p) {
    return this._lookupFile(p, 'stat').size
  }

  exists (p) {
    return this._exists(p)
  }

  openFds () {
    return this.fds.size
  }

  /** Bytes allocated (sum of the sizes of live files). */
  usedBytes () {
    this._gc()
    let n = 0
    for (const ino of this.inodes) n += ino.size
    return n
  }

  // ---------------------------------------------------------------- internals

  _before (op, info) {
    if (this._cut) throw new PowerCut()
    const n = this.opCount++
    if (this._cutAfter !== null && n >= this._cutAfter) {
      this._cut = true
      throw new PowerCut(`power cut at operation ${n} (${op})`)
    }
    if (this._hook !== null) this._hook({ op, ...info })
  }

  _alive () {
    if (this._cut) throw new PowerCut()
  }

  _newInode (p) {
    const ino = new Inode(this.nextInode++, p)
    this.inodes.add(ino)
    return ino
  }

  _gc () {
    for (const ino of this.inodes) if (ino.links === 0 && ino.openCount === 0) this.inodes.delete(ino)
  }

  _link (dir, name, ino) {
    const old = dir.entries.get(name)
    if (old !== undefined) old.links--
    dir.entries.set(name, ino)
    ino.links++
  }

  _dir (p, syscall, reported = p) {
    const abs = path.resolve(p)
    const d = this.dirs.get(abs)
    if (d !== undefined) return d
    const parent = this.dirs.get(path.dirname(abs))
    if (parent !== undefined && parent.entries.has(path.basename(abs))) throw fsError('ENOTDIR', syscall, reported)
    throw fsError('ENOENT', syscall, reported)
  }

  _lookupFile (p, syscall) {
    const abs = path.resolve(p)
    if (this.dirs.has(abs) && abs !== path.dirname(abs)) throw fsError('EISDIR', syscall, p)
    const ino = this._dir(path.dirname(abs), syscall, p).entries.get(path.basename(abs))
    if (ino === undefined) throw fsError('ENOENT', syscall, p)
    return ino
  }

  _exists (p) {
    const abs = path.resolve(p)
    if (this.dirs.has(abs)) return true
    const d = this.dirs.get(path.dirname(abs))
    return d !== undefined && d.entries.has(path.basename(abs))
  }

  _readdir (p) {
    const abs = path.resolve(p)
    const d = this._dir(abs, 'scandir', p)
    const names = [...d.entries.keys()]
    for (const other of this.dirs.keys()) {
      if (other !== abs && path.dirname(other) === abs) names.push(path.basename(other))
    }
    return names
  }

  _mkdirp (p) {
    const abs = path.resolve(p)
    if (this.dirs.has(abs)) return
    const parent = path.dirname(abs)
    if (parent !== abs) this._mkdirp(parent)
    const pd = this.dirs.get(parent)
    if (pd !== undefined && pd.entries.has(path.basename(abs))) throw fsError('EEXIST', 'mkdir', p)
    this.dirs.set(abs, { entries: new Map(), durable: new Map(), named: false })
  }

  _fd (fd, syscall) {
    const f = this.fds.get(fd)
    if (f === undefined) throw fsError('EBADF', syscall)
    return f
  }

  _spaceFor (ino, pos, len) {
    // How many of the len bytes at pos may be written under the space limit.
    if (this._limit === null) return len
    const grow = Math.max(0, pos + len - ino.size)
    if (grow === 0) return len
    const free = Math.max(0, this._limit - this.usedBytes())
    if (grow <= free) return len
    if (!this._partialFull) return 0
    return Math.max(0, ino.size + free - pos)
  }

  _write (syscall, fd, buf, off, len, pos) {
    const f = this._fd(fd, syscall)
    if (f.mode === 'r') throw fsError('EBADF', syscall)
    if (!Number.isInteger(off) || !Number.isInteger(len) || !Number.isInteger(pos) || off < 0 || len < 0 || pos < 0 || off + len > buf.byteLength) {
      throw fsError('EINVAL', syscall)
    }
    const ino = f.inode
    let n = len
    if (this._short !== null && n > 1 && this._short.rng() < this._short.probability) {
      n = 1 + Math.floor(this._short.rng() * (n - 1))
    }
    const fits = this._spaceFor(ino, pos, n)
    if (fits < n) {
      if (fits <= 0) throw fsError('ENOSPC', syscall)
      n = fits
    }
    if (n === 0) return 0
    ino.ensureCapacity(pos + n)
    if (pos > ino.size) ino.data.fill(0, ino.size, pos)
    Buffer.from(buf.buffer, buf.byteOffset + off, n).copy(ino.data, pos)
    if (pos + n > ino.size) ino.size = pos + n
    ino.markDirty(pos, pos + n)
    return n
  }

  _sync (syscall, fd) {
    const f = this._fd(fd, syscall)
    const ino = f.inode
    const i = this._syncFailures.findIndex(({ match }) => match === undefined || (typeof match === 'function' ? match(ino.path) : ino.path.includes(match)))
    if (i >= 0) {
      const { code } = this._syncFailures.splice(i, 1)[0]
      ino.dirty = [] // clean but lost (see the header)
      throw fsError(code, syscall)
    }
    ino.sync()
  }

  _makeIO () {
    const disk = this
    const later = (fn) => setImmediate(fn)
    return {
      bootId: () => `sim-boot-${disk.boots}`,
      open (p, mode) {
        if (mode !== 'r' && mode !== 'rw' && mode !== 'wx') throw fsError('EINVAL', 'open', p)
        const abs = path.resolve(p)
        let ino
        if (mode === 'wx') {
          disk._before('open', { path: abs, mode })
          const dir = disk._dir(path.dirname(abs), 'open', p)
          const name = path.basename(abs)
          if (dir.entries.has(name) || disk.dirs.has(abs)) throw fsError('EEXIST', 'open', p)
          ino = disk._newInode(abs)
          disk._link(dir, name, ino)
        } else {
          disk._alive()
          ino = disk._lookupFile(abs, 'open')
          if (disk.dirs.has(abs)) throw fsError('EISDIR', 'open', p)
        }
        const fd = disk.nextFd++
        ino.openCount++
        disk.fds.set(fd, { inode: ino, mode, path: abs })
        return fd
      },
      close (fd) {
        const f = disk._fd(fd, 'close')
        disk.fds.delete(fd)
        f.inode.openCount--
        disk._gc()
      },
      write (fd, buf, off, len, pos) {
        disk._before('write', { path: disk.fds.get(fd)?.inode.path, fd, pos, len })
        return disk._write('write', fd, buf, off, len, pos)
      },
      read (fd, buf, off, len, pos) {
        disk._alive()
        const f = disk._fd(fd, 'read')
        const ino = f.inode
        if (pos >= ino.size || len === 0) return 0
        let n = Math.min(len, ino.size - pos)
        const e = disk._eintr
        if (e !== null && e.rng() < e.probability) {
          if (n <= 1 || e.rng() < 0.5) throw fsError('EINTR', 'read')
          n = 1 + Math.floor(e.rng() * (n - 1))
        }
        ino.data.copy(Buffer.from(buf.buffer, buf.byteOffset + off, n), 0, pos, pos + n)
        return n
      },
      datasync (fd) {
        disk._before('datasync', { path: disk.fds.get(fd)?.inode.path, fd })
        disk._sync('fdatasync', fd)
      },
      datasyncAsync (fd, cb) {
        later(() => {
          try {
            disk._before('datasyncAsync', { path: disk.fds.get(fd)?.inode.path, fd })
            disk._sync('fdatasync', fd)
          } catch (err) {
            cb(err)
            return
          }
          cb(null)
        })
      },
      writeAsync (fd, buf, off, len, pos, cb) {
        later(() => {
          let n
          try {
            disk._before('writeAsync', { path: disk.fds.get(fd)?.inode.path, fd, pos, len })
            n = disk._write('write', fd, buf, off, len, pos)
          } catch (err) {
            cb(err, 0)
            return
          }
          cb(null, n)
        })
      },
      truncate (fd, len) {
        disk._before('truncate', { path: disk.fds.get(fd)?.inode.path, fd, len })
        const f = disk._fd(fd, 'ftruncate')
        if (f.mode === 'r') throw fsError('EINVAL', 'ftruncate')
        if (!Number.isInteger(len) || len < 0) throw fsError('EINVAL', 'ftruncate')
        const ino = f.inode
        if (len > ino.size) {
          ino.ensureCapacity(len)
          ino.data.fill(0, ino.size, len)
          ino.markDirty(ino.size, len)
        } else if (len < ino.size) {
          ino.markDirty(len, ino.size)
        }
        ino.size = len
      },
      size (fd) {
        disk._alive()
        return disk._fd(fd, 'fstat').inode.size
      },
      syncDir (p) {
        disk._before('syncDir', { path: path.resolve(p) })
        const d = disk._dir(p, 'open', p)
        d.durable = new Map(d.entries)
        const abs = path.resolve(p)
        for (const [other, sub] of disk.dirs) if (other !== abs && path.dirname(other) === abs) sub.named = true
      },
      mkdir (p) {
        disk._before('mkdir', { path: path.resolve(p) })
        disk._mkdirp(p)
      },
      readdir (p) {
        disk._alive()
        return disk._readdir(p)
      },
      unlink (p) {
        const abs = path.resolve(p)
        disk._before('unlink', { path: abs })
        if (disk.dirs.has(abs)) throw fsError('EISDIR', 'unlink', p)
        const dir = disk._dir(path.dirname(abs), 'unlink', p)
        const ino = dir.entries.get(path.basename(abs))
        if (ino === undefined) throw fsError('ENOENT', 'unlink', p)
        dir.entries.delete(path.basename(abs))
        ino.links--
        disk._gc()
      },
      rename (from, to) {
        const a = path.resolve(from)
        const b = path.resolve(to)
        disk._before('rename', { path: a, to: b })
        if (disk.dirs.has(a) || disk.dirs.has(b)) throw fsError('EISDIR', 'rename', from) // only files are renamed
        const da = disk._dir(path.dirname(a), 'rename', from)
        const ino = da.entries.get(path.basename(a))
        if (ino === undefined) throw fsError('ENOENT', 'rename', from)
        const db = disk._dir(path.dirname(b), 'rename', to)
        if (a === b) return
        da.entries.delete(path.basename(a))
        ino.links--
        disk._link(db, path.basename(b), ino)
        ino.path = b
        disk._gc()
      },
      exists (p) {
        disk._alive()
        return disk._exists(p)
      }
    }
  }
}
