import test from 'ava'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'
import { sameRecord } from './fixtures/records.js'

const writer = fileURLToPath(new URL('./fixtures/crash-writer.js', import.meta.url))
const CYCLES = Number(process.env.CRASH_CYCLES ?? 20)
const PARTITIONS = 3

/** Runs the writer until it has acknowledged `acks` commits, then SIGKILLs it. */
function runAndKill (dir, seed, acks) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(seed), String(PARTITIONS)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const acked = Array.from({ length: PARTITIONS }, () => 0)
    let n = 0
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const [kind, p, first, count] = line.split(' ')
      if (kind !== 'ack') return
      acked[p] = Math.max(acked[p], Number(first) + Number(count))
      if (++n === acks) child.kill('SIGKILL')
    })
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked)
      else reject(new Error(`writer exited ${code}: ${stderr}`))
    })
  })
}

test(`kill -9 at random moments loses no acknowledged record (${CYCLES} cycles)`, async (t) => {
  const dir = tmpDir(t)
  const mustHave = Array.from({ length: PARTITIONS }, () => 0)
  let seed = 12345
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    seed = (seed * 48271) % 2147483647
    const acked = await runAndKill(dir, seed, 20 + (seed % 400))
    const wal = await WriteAhead.open(dir)
    for (let p = 0; p < PARTITIONS; p++) {
      mustHave[p] = Math.max(mustHave[p], acked[p])
      const { start, end } = wal.offsets(p)
      t.is(start, 0)
      if (end < mustHave[p]) t.fail(`cycle ${cycle} partition ${p}: end ${end} < acknowledged ${mustHave[p]}`)
      let expected = 0
      let bad = 0
      for await (const chunk of wal.iterateBatches(p)) {
        for (const rec of chunk) {
          if (rec.offset !== expected || !sameRecord(rec, p, rec.offset)) bad++
          expected = rec.offset + 1
        }
      }
      if (expected !== end || bad > 0) t.fail(`cycle ${cycle} partition ${p}: ${bad} bad records, read up to ${expected} of ${end}`)
      // Everything that survived beyond the acknowledged end is whole too (checked above);
      // it now counts as acknowledged, since this open made it visible.
      mustHave[p] = end
    }
    await wal.close()
  }
  t.true(mustHave.every((n) => n > 0))
  t.log(`records per partition after ${CYCLES} kills: ${mustHave.join(', ')}`)
})
