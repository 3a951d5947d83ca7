import test from 'ava'
import fc from 'fast-check'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'

const P = 2
// Small segments, so that a run of a few dozen commands rotates several times.
const opts = { partitions: P, segmentBytes: 4096, maxBatchBytes: 2048, indexIntervalBytes: 512, preallocate: false }

class Real { constructor (dir) { this.dir = dir; this.wal = null; this.tails = {} } }

const small = fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a))
// Values are small or a few hundred bytes, so that segments fill and rotate within a run; a batch
// of 8 of the largest records still fits maxBatchBytes.
const bytes = fc.oneof({ arbitrary: small, weight: 1 }, { arbitrary: fc.uint8Array({ minLength: 100, maxLength: 160 }).map((a) => Buffer.from(a)), weight: 3 })
// Plain buffers take the encoder's fast path; objects with keys and headers the general one, where
// a value may be null (a tombstone).
const value = fc.oneof(bytes, fc.record({ key: fc.option(small, { nil: null }), value: fc.option(bytes, { nil: null, freq: 4 }), headers: fc.array(fc.tuple(fc.string({ maxLength: 5 }), fc.option(small, { nil: null })), { maxLength: 3 }) }))
const valueOf = (v) => Buffer.isBuffer(v) ? v : v.value
/** A read value equals the appended one, tombstones included. */
const same = (got, v) => got === null ? valueOf(v) === null : valueOf(v) !== null && got.equals(valueOf(v))

class Append {
  constructor (p, v) { this.p = p; this.v = v }
  check () { return true }
  async run (m, r) {
    const off = await r.wal.append(this.p, this.v)
    if (off !== m.end[this.p]) throw new Error(`append returned ${off}, model says ${m.end[this.p]}`)
    m.values[this.p].set(off, this.v)
    m.end[this.p]++
  }
  toString () { return `append(${this.p}, ${valueOf(this.v)?.length ?? 'null '}B)` }
}

class AppendBatch {
  constructor (p, vs) { this.p = p; this.vs = vs }
  check () { return true }
  async run (m, r) {
    const first = await r.wal.appendBatch(this.p, this.vs)
    if (first !== m.end[this.p]) throw new Error(`appendBatch returned ${first}, model says ${m.end[this.p]}`)
    this.vs.forEach((v, i) => m.values[this.p].set(first + i, v))
    m.end[this.p] += this.vs.length
  }
  toString () { return `appendBatch(${this.p}, ${this.vs.length})` }
}

class Concurrent {
  constructor (p, vs) { this.p = p; this.vs = vs }
  check () { return true }
  async run (m, r) {
    const offs = await Promise.all(this.vs.map((v) => r.wal.append(this.p, v)))
    offs.forEach((o, i) => {
      if (o !== m.end[this.p] + i) throw new Error('concurrent appends out of order')
      m.values[this.p].set(o, this.vs[i])
    })
    m.end[this.p] += this.vs.length
  }
  toString () { return `concurrent(${this.p}, ${this.vs.length})` }
}

class Read {
  constructor (p, pick) { this.p = p; this.pick = pick }
  check (m) { return m.end[this.p] > m.start[this.p] }
  async run (m, r) {
    const off = m.start[this.p] + Math.floor(this.pick * (m.end[this.p] - m.start[this.p]))
    const rec = await r.wal.read(this.p, off)
    if (!same(rec.value, m.values[this.p].get(off))) throw new Error(`read(${this.p}, ${off}) differs`)
  }
  toString () { return `read(${this.p}, ${this.pick.toFixed(2)})` }
}

class Iterate {
  constructor (p, a, b) { this.p = p; this.a = Math.min(a, b); this.b = Math.max(a, b) }
  check () { return true }
  async run (m, r) {
    const len = m.end[this.p] - m.start[this.p]
    const from = m.start[this.p] + Math.floor(this.a * len)
    const to = m.start[this.p] + Math.ceil(this.b * len)
    const recs = await collect(r.wal.iterate(this.p, { from, to }))
    if (recs.length !== to - from) throw new Error(`iterate [${from}, ${to}) gave ${recs.length}`)
    recs.forEach((rec, i) => { if (rec.offset !== from + i || !same(rec.value, m.values[this.p].get(from + i))) throw new Error('iterate differs') })
    const { start, end } = r.wal.offsets(this.p)
    if (start !== m.start[this.p] || end !== m.end[this.p]) throw new Error(`offsets ${start}..${end} != model ${m.start[this.p]}..${m.end[this.p]}`)
  }
  toString () { return `iterate(${this.p}, ${this.a.toFixed(2)}, ${this.b.toFixed(2)})` }
}

// Readers kept open across every other command must go on from where they stopped, skipping only
// what was trimmed: a reader once kept its segment by index, and a trim made it skip a whole one.
// A live readable reads ahead; iterate() decodes on demand, so it can be parked at a segment's end.
class Tail {
  constructor (p, kind, k) { this.p = p; this.kind = kind; this.k = k }
  check () { return true }
  open (m, r, from) {
    return this.kind === 'readable'
      ? r.wal.readable(this.p, { from, live: true, onTrimmed: 'earliest', highWaterMark: 1 })[Symbol.asyncIterator]()
      : r.wal.iterate(this.p, { from })
  }

  async run (m, r) {
    const p = this.p
    const key = this.kind + p
    // k = 0: stop at the end of the segment holding the next record.
    const seg = r.wal.segments(p).find((s) => s.end > Math.max(m.tailNext[key], m.start[p]))
    const stop = this.k > 0 ? m.tailNext[key] + this.k : seg?.end ?? m.end[p]
    while (Math.max(m.tailNext[key], m.start[p]) < Math.min(stop, m.end[p])) {
      const want = m.tailNext[key]
      r.tails[key] ??= this.open(m, r, Math.max(want, m.start[p]))
      let rec
      try {
        rec = (await r.tails[key].next()).value
      } catch (err) {
        // iterate() has no onTrimmed: a trim below it ends it, and it is opened again at the start.
        if (err.code !== 'OFFSET_TRIMMED' || this.kind !== 'iterate' || want >= m.start[p]) throw err
        r.tails[key] = null
        continue
      }
      // Records read ahead before a trim may still come; beyond that only trimmed offsets are skipped.
      if (rec.offset !== want && !(rec.offset > want && rec.offset <= m.start[p])) throw new Error(`${key} gave ${rec.offset}, expected ${want} (start ${m.start[p]})`)
      if (!same(rec.value, m.values[p].get(rec.offset))) throw new Error(`${key} record ${rec.offset} differs`)
      m.tailNext[key] = rec.offset + 1
    }
  }

  toString () { return `tail(${this.p}, ${this.kind}, ${this.k === 0 ? 'to segment end' : this.k})` }
}

async function closeTails (r) {
  for (const key of Object.keys(r.tails)) { await r.tails[key]?.return(); r.tails[key] = null }
}

class Trim {
  constructor (p, pick) { this.p = p; this.pick = pick }
  check () { return true }
  run (m, r) {
    return this.apply(m, r, m.start[this.p] + Math.floor(this.pick * (m.end[this.p] - m.start[this.p] + 1)))
  }

  async apply (m, r, off) {
    const start = await r.wal.trimBefore(this.p, off)
    if (start < m.start[this.p] || start > Math.max(off, m.start[this.p])) throw new Error(`trimBefore(${off}) moved start to ${start}`)
    m.start[this.p] = start
  }
  toString () { return `trimBefore(${this.p}, ${this.pick.toFixed(2)})` }
}

// Deletes exactly the first n segments, as retention does: the case where a reader's place moved.
class TrimSegments {
  constructor (p, n) { this.p = p; this.n = n }
  check () { return true }
  async run (m, r) {
    const seg = r.wal.segments(this.p)[this.n]
    if (seg === undefined) return
    await new Trim(this.p, 0).apply(m, r, seg.base)
  }

  toString () { return `trimSegments(${this.p}, ${this.n})` }
}

class Reopen {
  check () { return true }
  async run (m, r) {
    await closeTails(r)
    await r.wal.close()
    r.wal = await WriteAhead.open(r.dir, opts)
    for (let p = 0; p < P; p++) {
      const { start, end } = r.wal.offsets(p)
      if (start !== m.start[p] || end !== m.end[p]) throw new Error(`after reopen ${start}..${end} != ${m.start[p]}..${m.end[p]}`)
    }
  }
  toString () { return 'reopen' }
}

const part = fc.integer({ min: 0, max: P - 1 })
// Uniform in [0, max]: fc.double leans so far towards 0 that nearly every pick named the first record.
const fraction = (max) => fc.integer({ min: 0, max: 1000 }).map((x) => x * max / 1000)
const commands = [
  fc.tuple(part, value).map(([p, v]) => new Append(p, v)),
  // Appends are listed twice: they are what makes segments rotate for the other commands to meet.
  fc.tuple(part, fc.array(value, { minLength: 1, maxLength: 8 })).map(([p, vs]) => new AppendBatch(p, vs)),
  fc.tuple(part, fc.array(value, { minLength: 1, maxLength: 8 })).map(([p, vs]) => new AppendBatch(p, vs)),
  fc.tuple(part, fc.array(value, { minLength: 2, maxLength: 30 })).map(([p, vs]) => new Concurrent(p, vs)),
  fc.tuple(part, fc.array(value, { minLength: 2, maxLength: 30 })).map(([p, vs]) => new Concurrent(p, vs)),
  fc.tuple(part, fraction(0.999)).map(([p, x]) => new Read(p, x)),
  fc.tuple(part, fraction(1), fraction(1)).map(([p, a, b]) => new Iterate(p, a, b)),
  fc.tuple(part, fraction(0.999)).map(([p, x]) => new Trim(p, x)),
  fc.tuple(part, fc.integer({ min: 1, max: 2 })).map(([p, n]) => new TrimSegments(p, n)),
  // Tails are listed twice too, so that a held reader often meets a trim or a rotation between steps.
  fc.tuple(part, fc.constantFrom('readable', 'iterate'), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 80 }))).map(([p, kind, k]) => new Tail(p, kind, k)),
  fc.tuple(part, fc.constantFrom('readable', 'iterate'), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 80 }))).map(([p, kind, k]) => new Tail(p, kind, k)),
  fc.constant(new Reopen())
]

test('random operation sequences match an in-memory model', async (t) => {
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: 'max' }), async (cmds) => {
      const real = new Real(tmpDir(t, `run${run++}`))
      real.wal = await WriteAhead.open(real.dir, opts)
      const model = { start: Array(P).fill(0), end: Array(P).fill(0), tailNext: new Proxy({}, { get: (o, k) => o[k] ?? 0 }), values: Array.from({ length: P }, () => new Map()) }
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds)
      } finally {
        await closeTails(real)
        await real.wal.close()
      }
    }),
    { numRuns: Number(process.env.MODEL_RUNS ?? 60), seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED) }
  )
  t.pass()
})
