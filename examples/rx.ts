// The RxJS view of a partition: `node dist/examples/rx.js`.
//
// toPartition appends every value and emits its offset once durable (values arriving while an
// append is in flight share the next commit); fromPartition is a cold Observable of records (live if asked), and
// unsubscribing releases the reader.
import { firstValueFrom, from, lastValueFrom, interval } from 'rxjs'
import { bufferCount, concatMap, count, filter, map, reduce, take, toArray } from 'rxjs/operators'
import { WriteAhead, type WalRecord } from 'writeahead'
import { fromPartition, toPartition } from 'writeahead/rx'

const DIR = process.env.WRITEAHEAD_DIR ?? './data-rx'
const wal = await WriteAhead.open(DIR, { partitions: 2 })

// 1. Orders into partition 0: offsets come back in order, once durable.
const start = wal.offsets(0).end
const orders = Array.from({ length: 500 }, (_, i) => ({ id: start + i, amount: (i * 37) % 200, currency: i % 3 === 0 ? 'EUR' : 'USD' }))
const offsets = await lastValueFrom(from(orders).pipe(
  map((o) => ({ key: `order-${o.id}`, value: JSON.stringify(o) })),
  toPartition(wal, 0),
  toArray()
))
console.log(`toPartition: ${offsets.length} orders durable at offsets ${offsets[0]}..${offsets[offsets.length - 1]}`)

// 2. Query them back: a cold, finite Observable (no live), so the pipeline completes.
const eur = await lastValueFrom(fromPartition(wal, 0, { from: start }).pipe(
  map((rec) => JSON.parse(String(rec.value)) as { amount: number, currency: string }),
  filter((o) => o.currency === 'EUR'),
  reduce((acc, o) => ({ n: acc.n + 1, total: acc.total + o.amount }), { n: 0, total: 0 })
))
console.log(`fromPartition: ${eur.n} EUR orders, total ${eur.total}`)

// 3. A live consumer group on partition 1 while a timer produces into it; take(30) unsubscribes,
//    which releases the reader. The group commits each batch once it has been processed:
//    fromPartition takes no autoCommit, as RxJS has no backpressure (records wait in concatMap's
//    queue, and autoCommit would count them as processed). bufferCount(10) waits for ten records;
//    for a live source that trickles, bufferTime(ms, null, n) hands on what came every ms.
const group = wal.group('rx-demo')
const liveFrom = wal.offsets(1).end
const live = fromPartition(wal, 1, { group: 'rx-demo', from: liveFrom, live: true })
const handle = async (recs: WalRecord[]): Promise<number[]> => recs.map((r) => r.offset) // the real work goes here
const seen = lastValueFrom(live.pipe(
  take(30),
  bufferCount(10),
  concatMap(async (recs) => {
    const done = await handle(recs)
    await group.commit(1, recs[recs.length - 1].offset + 1) // only what was processed
    return done
  }),
  toArray()
))
const produced = await lastValueFrom(interval(1).pipe(take(30), map((i) => `tick ${i}`), toPartition(wal, 1), count()))
const batches = await seen
console.log(`live: produced ${produced} ticks; the subscriber saw them in order as ${batches.map((b) => `[${b[0]}..${b[b.length - 1]}]`).join(' ')}`)
console.log(`group rx-demo committed ${group.committed(1)} on partition 1, lag ${group.lag(1)}`)

// 4. firstValueFrom on a live Observable: the next record to arrive, then unsubscribe.
const next = firstValueFrom(fromPartition(wal, 1, { from: 'latest', live: true }))
await wal.append(1, 'hello from rx')
console.log(`firstValueFrom(live): ${String((await next).value)}`)
await wal.close()
