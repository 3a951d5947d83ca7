import test from 'ava'
import fc from 'fast-check'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'

const P = 2
const opts = { partitions: P, segmentBytes: 8 * 1024, maxBatchBytes: 4096, preallocate: false }

class Real { constructor (dir) { this.dir = dir; this.wal = null } }

const bytes = fc.uint8Array({ minLength: 0, maxLength: 200 }).map((a) => Buffer.from(a))
// Plain buffers take the encoder's fast path; objects with keys and headers the general one.
const value = fc.oneof(bytes, fc.record({ key: fc.option(bytes, { nil: null }), value: bytes, headers: fc.array(fc.tuple(fc.string({ maxLength: 5 }), fc.option(bytes, { nil: null })), { maxLength: 3 }) }))
const valueOf = (v) => Buffer.isBuffer(v) ? v : v.value

class Append {
  constructor (p, v) { this.p = p; this.v = v }
  check () { return true }
  async run (m, r) {
    const off = await r.wal.append(this.p, this.v)
    if (off !== m.end[this.p]) throw new Error(`append returned ${off}, model says ${m.end[this.p]}`)
    m.values[this.p].set(off, this.v)
    m.end[this.p]++
  }
  toString () { return `append(${this.p}, ${valueOf(this.v).length}B)` }
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
    if (!rec.value.equals(valueOf(m.values[this.p].get(off)))) throw new Error(`read(${this.p}, ${off}) differs`)
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
    recs.forEach((rec, i) => { if (rec.offset !== from + i || !rec.value.equals(valueOf(m.values[this.p].get(from + i)))) throw new Error('iterate differs') })
    const { start, end } = r.wal.offsets(this.p)
    if (start !== m.start[this.p] || end !== m.end[this.p]) throw new Error(`offsets ${start}..${end} != model ${m.start[this.p]}..${m.end[this.p]}`)
  }
  toString () { return `iterate(${this.p}, ${this.a.toFixed(2)}, ${this.b.toFixed(2)})` }
}

class Trim {
  constructor (p, pick) { this.p = p; this.pick = pick }
  check () { return true }
  async run (m, r) {
    const off = m.start[this.p] + Math.floor(this.pick * (m.end[this.p] - m.start[this.p] + 1))
    const start = await r.wal.trimBefore(this.p, off)
    if (start < m.start[this.p] || start > Math.max(off, m.start[this.p])) throw new Error(`trimBefore(${off}) moved start to ${start}`)
    for (let o = m.start[this.p]; o < start; o++) m.values[this.p].delete(o)
    m.start[this.p] = start
  }
  toString () { return `trimBefore(${this.p}, ${this.pick.toFixed(2)})` }
}

class Reopen {
  check () { return true }
  async run (m, r) {
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
const commands = [
  fc.tuple(part, value).map(([p, v]) => new Append(p, v)),
  fc.tuple(part, fc.array(value, { minLength: 1, maxLength: 15 })).map(([p, vs]) => new AppendBatch(p, vs)),
  fc.tuple(part, fc.array(value, { minLength: 2, maxLength: 30 })).map(([p, vs]) => new Concurrent(p, vs)),
  fc.tuple(part, fc.double({ min: 0, max: 0.999, noNaN: true })).map(([p, x]) => new Read(p, x)),
  fc.tuple(part, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })).map(([p, a, b]) => new Iterate(p, a, b)),
  fc.tuple(part, fc.double({ min: 0, max: 1, noNaN: true })).map(([p, x]) => new Trim(p, x)),
  fc.constant(new Reopen())
]

test('random operation sequences match an in-memory model', async (t) => {
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 60 }), async (cmds) => {
      const real = new Real(tmpDir(t, `run${run++}`))
      real.wal = await WriteAhead.open(real.dir, opts)
      const model = { start: Array(P).fill(0), end: Array(P).fill(0), values: Array.from({ length: P }, () => new Map()) }
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds)
      } finally {
        await real.wal.close()
      }
    }),
    { numRuns: Number(process.env.MODEL_RUNS ?? 60), seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED) }
  )
  t.pass()
})
