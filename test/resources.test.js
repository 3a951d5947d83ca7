import test from 'ava'
import fs from 'node:fs'
import { WriteAhead } from '../dist/src/index.js'
import { SimDisk } from './helpers/sim-disk.js'
import { tmpDir } from './helpers/tmp.js'

test.serial('open descriptors stay bounded with 10,000 segments and 100 live readers', async (t) => {
  const disk = new SimDisk()
  const opts = { io: disk.io, segmentBytes: 4096, maxBatchBytes: 2048, preallocate: false, maxOpenFiles: 64 }
  let wal = await WriteAhead.open('/sim/many', opts)
  const value = Buffer.alloc(1500, 1)
  // Two records fill a segment: 20,000 appends make 10,000 segments.
  for (let i = 0; i < 20_000; i += 500) await Promise.all(Array.from({ length: 500 }, () => wal.append(0, value)))
  await wal.close()
  wal = await WriteAhead.open('/sim/many', opts)
  const segments = disk.listDir('/sim/many/partition-0').filter((f) => f.endsWith('.log')).length
  t.true(segments >= 10_000, `${segments} segments`)
  // 100 live readers spread over the whole log, each reading a stretch that crosses segments.
  const readers = Array.from({ length: 100 }, (_, i) => wal.readable(0, { from: i * 199, live: true, highWaterMark: 4096 }))
  let peak = 0
  await Promise.all(readers.map(async (rs, i) => {
    let n = 0
    for await (const rec of rs) {
      if (++n % 50 === 0) peak = Math.max(peak, disk.openFds())
      if (n === 300 || rec.offset === 19_999) break
    }
  }))
  t.log(`${segments} segments, peak ${peak} open descriptors`)
  t.true(peak <= 64 + 10, `peak ${peak} descriptors`)
  await wal.close()
  t.is(disk.openFds(), 0, 'close releases every descriptor')
})

test.serial('a closed read-only log opens no descriptor again: offsets and iterators after close', async (t) => {
  const disk = new SimDisk()
  const writer = await WriteAhead.open('/sim/ro', { io: disk.io, partitions: 2 })
  await writer.appendBatch(0, ['a', 'b'])
  await writer.close()
  const ro = await WriteAhead.open('/sim/ro', { io: disk.io, readOnly: true })
  t.deepEqual(ro.offsets(0), { start: 0, end: 2, pending: 2 })
  await ro.close()
  t.is(disk.openFds(), 0)
  t.deepEqual(ro.offsets(0), { start: 0, end: 2, pending: 2 }, 'what was last seen')
  ro.offsets(1)
  await t.throwsAsync(async () => { for await (const r of ro.iterate(0)) t.fail(String(r)) }, { code: 'CLOSED' })
  t.is(disk.openFds(), 0, 'it used to reopen the durable file of every partition asked about')
})

test.serial('heap stays bounded over 10M appends and reads', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { retention: { maxBytes: 128 * 1024 * 1024 } })
  const value = Buffer.alloc(64, 7)
  const batch = Array.from({ length: 10_000 }, () => value)
  const samples = []
  global.gc?.()
  const base = process.memoryUsage().heapUsed
  for (let i = 0; i < 1000; i++) {
    await wal.appendBatch(0, batch)
    if (i % 50 === 49) {
      // Reads interleaved: the newest records by offset, and a replay of a recent stretch.
      const { end } = wal.offsets(0)
      for (let k = 1; k <= 100; k++) await wal.read(0, end - k * 37)
      let n = 0
      for await (const chunk of wal.iterateBatches(0, { from: end - 100_000 })) n += chunk.length
      if (n !== 100_000) throw new Error(`replayed ${n}`)
      samples.push(process.memoryUsage().heapUsed - base)
    }
  }
  t.is(wal.offsets(0).end, 10_000_000)
  const late = Math.max(...samples.slice(samples.length / 2))
  const early = Math.max(...samples.slice(0, samples.length / 2))
  t.log(`heap growth: first half max ${(early / 1048576).toFixed(1)} MiB, second half max ${(late / 1048576).toFixed(1)} MiB`)
  t.true(late < 200 * 1048576, 'bounded in absolute terms')
  t.true(late < early + 64 * 1048576, 'not growing with the number of records')
  await wal.close()
})

test.serial('the meta log stays bounded after 1M group commits', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  await wal.appendBatch(0, Array.from({ length: 1000 }, () => Buffer.from('r')))
  const groups = Array.from({ length: 1000 }, (_, j) => wal.group(`consumer-${j}`))
  let peak = 0
  for (let round = 0; round < 1000; round++) {
    await Promise.all(groups.map((g, j) => g.commit(0, (round + j) % 1000)))
    if (round % 100 === 0) {
      const bytes = fs.readdirSync(`${dir}/meta`).filter((f) => f.endsWith('.log')).reduce((n, f) => n + fs.statSync(`${dir}/meta/${f}`).size, 0)
      peak = Math.max(peak, bytes)
    }
  }
  t.log(`1,000,000 group commits; meta log peak ${(peak / 1048576).toFixed(2)} MiB`)
  t.true(peak < 12 * 1048576)
  await wal.close()
  const again = await WriteAhead.open(dir)
  t.is(again.group('consumer-5').committed(0), (999 + 5) % 1000)
  t.is(again.groups().length, 1000)
  await again.close()
})
