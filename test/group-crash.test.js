import test from 'ava'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

const consumer = fileURLToPath(new URL('./fixtures/group-consumer.js', import.meta.url))

function run (dir, every, killAfterLines) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [consumer, dir, String(every)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = []
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line)
      if (lines.length === killAfterLines) child.kill('SIGKILL')
    })
    child.on('exit', (code, signal) => signal === 'SIGKILL' ? resolve(lines) : reject(new Error(`consumer exited ${code}`)))
  })
}

test('a group consumer killed with SIGKILL resumes exactly at its last durable commit', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  for (let i = 0; i < 5000; i += 500) await wal.appendBatch(0, Array.from({ length: 500 }, (_, j) => String(i + j)))
  await wal.close()
  let lastCommitted = 0
  let inFlight = null
  let seed = 7
  for (let cycle = 0; cycle < 8; cycle++) {
    seed = (seed * 48271) % 2147483647
    const every = 1 + (seed % 13)
    const lines = await run(dir, every, 50 + (seed % 300))
    const first = lines.find((l) => l.startsWith('got '))
    const start = Number(first.split(' ')[1])
    // Where it restarted: the last commit that was reported durable, or one in flight at the kill.
    t.true(start === lastCommitted || start === inFlight, `cycle ${cycle}: restarted at ${start}, last committed ${lastCommitted}, in flight ${inFlight}`)
    for (const l of lines) {
      const [kind, v] = l.split(' ')
      if (kind === 'committing') inFlight = Number(v)
      if (kind === 'committed') { lastCommitted = Number(v); inFlight = null }
    }
    if (inFlight === null) inFlight = -1
  }
  const check = await WriteAhead.open(dir)
  const c = check.group('g').committed(0)
  t.true(c === lastCommitted || c === inFlight)
  await check.close()
})
