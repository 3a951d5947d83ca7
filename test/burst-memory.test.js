// A commit's lists and the encoder's buffer are reused from commit to commit (src/log/waiters.ts,
// commit-state.ts, format/batch.ts). After a burst, many appends in one commit, they must not
// keep the burst's size for the life of the log.
import test from 'ava'
import v8 from 'node:v8'
import vm from 'node:vm'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

function memory () {
  gc()
  gc()
  return { heap: v8.getHeapStatistics().used_heap_size, buffers: process.memoryUsage().arrayBuffers }
}

// Each burst runs in its own function: a suspended async function that the interpreter has not
// optimised keeps every register it ever used, so `acks` left in the test's own frame would hold
// 200k promises (13 MB) whatever the log does (seen under CI load, reproduced with --no-opt).
async function burst (wal, one) {
  const acks = []
  for (let i = 0; i < 200_000; i++) acks.push(wal.append(0, one))
  const offsets = await Promise.all(acks)
  return offsets[199_999] - offsets[0]
}

test('a burst of appends in one commit leaves no burst-sized lists or buffers behind', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { partitions: 1 })
  const one = Buffer.alloc(1)
  for (let i = 0; i < 1000; i++) await wal.append(0, one)
  const before = memory()
  // Two bursts: a log alternates between two commit states, and each would keep its own lists.
  for (let i = 0; i < 2; i++) {
    t.is(await burst(wal, one), 199_999)
    // Small commits again: the one after a burst is where its buffer is let go.
    for (let j = 0; j < 3; j++) await wal.append(0, one)
  }
  const after = memory()
  // Kept, the lists and the encoder held 6.8 MB of heap and 2 MB of buffers here; what may remain
  // is the index of 400k more records and V8's own (0.1-1.7 MB measured).
  t.log(((after.heap - before.heap) / 1e6).toFixed(2), ((after.buffers - before.buffers) / 1e6).toFixed(2))
  t.true(after.heap - before.heap < 3.5e6, `heap grew by ${((after.heap - before.heap) / 1e6).toFixed(1)} MB`)
  t.true(after.buffers - before.buffers < 1e6, `buffers grew by ${((after.buffers - before.buffers) / 1e6).toFixed(1)} MB`)
  t.is(wal.offsets(0).end, 1000 + 2 * 200_003)
  await wal.close()
})
