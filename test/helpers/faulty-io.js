import { nodeFileIO } from '../../dist/src/index.js'

const errno = (code, syscall) => Object.assign(new Error(`${code}: injected fault, ${syscall}`), { code, syscall })

/**
 * The real file system behind the FileIO interface, with faults armed by the test:
 * `io.arm('datasync', 'EIO')` makes the next sync fail, `io.arm('write', 'ENOSPC', n)` the next n
 * writes (`'writeAsync'`: the background ones); `match` picks which, by `{ fd, len, pos }` (`io.pathOf(fd)`), or `{ path }` for `'open'` and `'unlink'`, `{ from, to }` for `'rename'`. `io.log` records operations, and `io.holdSyncs()` queues async syncs until released
 * (`io.whenHeld(n)` resolves once n are queued, `io.releaseOne()` lets the oldest through).
 */
export function faultyIO () {
  const armed = new Map()
  const held = []
  const heldWaiters = []
  let holding = false
  const io = {
    ...nodeFileIO,
    log: [],
    arm (op, code, times = 1, match = () => true) { armed.set(op, { code, times, match }) },
    disarm (op) { armed.delete(op) },
    holdSyncs () { holding = true },
    releaseSyncs () { holding = false; for (const f of held.splice(0)) f() },
    /** Lets the oldest held sync run; resolves once its callback has returned. */
    releaseOne () { const f = held.shift(); f(); return f.finished },
    /** Resolves once at least `n` async syncs are being held. */
    whenHeld (n) {
      return new Promise((resolve) => { heldWaiters.push({ n, resolve }); wake() })
    },
    get heldSyncs () { return held.length }
  }
  const wake = () => {
    for (let i = heldWaiters.length - 1; i >= 0; i--) {
      if (held.length >= heldWaiters[i].n) heldWaiters.splice(i, 1)[0].resolve()
    }
  }
  const fault = (op, detail) => {
    const a = armed.get(op)
    if (a === undefined || !a.match(detail)) return null
    if (--a.times <= 0) armed.delete(op)
    return errno(a.code, op)
  }
  io.write = (fd, buf, off, len, pos) => {
    const err = fault('write', { fd, len, pos })
    if (err) throw err
    return nodeFileIO.write(fd, buf, off, len, pos)
  }
  io.writeAsync = (fd, buf, off, len, pos, cb) => {
    const err = fault('writeAsync', { fd, len, pos })
    if (err) return setImmediate(() => cb(err, 0))
    nodeFileIO.writeAsync(fd, buf, off, len, pos, cb)
  }
  const paths = new Map()
  io.open = (path, mode) => {
    const err = fault('open', { path, mode })
    if (err) throw err
    const fd = nodeFileIO.open(path, mode)
    paths.set(fd, path)
    return fd
  }
  /** The path `fd` was opened with (a file renamed since keeps its old name here). */
  io.pathOf = (fd) => paths.get(fd)
  io.unlink = (path) => {
    const err = fault('unlink', { path })
    if (err) throw err
    nodeFileIO.unlink(path)
  }
  io.rename = (from, to) => {
    const err = fault('rename', { from, to })
    if (err) throw err
    nodeFileIO.rename(from, to)
  }
  io.datasync = (fd) => {
    io.log.push(['datasync', fd])
    const err = fault('datasync', { fd })
    if (err) throw err
    nodeFileIO.datasync(fd)
  }
  io.datasyncAsync = (fd, cb) => {
    io.log.push(['datasyncAsync', fd])
    const err = fault('datasync', { fd })
    let settle
    const finished = new Promise((resolve) => { settle = resolve })
    const done = (e) => { cb(e); settle() }
    const run = () => err ? setImmediate(() => done(err)) : nodeFileIO.datasyncAsync(fd, done)
    run.finished = finished
    if (holding) { held.push(run); wake() } else run()
  }
  return io
}

/**
 * Matches any file but the meta log's, whose background zero-fill of its next segment would
 * otherwise take a fault armed for a partition's commit.
 */
export const notMeta = (io) => ({ fd }) => !io.pathOf(fd)?.includes('/meta/')
