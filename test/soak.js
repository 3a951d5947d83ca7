#!/usr/bin/env node
// Soak: a mixed workload in a child process (appends, batches, live group readers, group commits,
// trims), SIGKILLed at random moments and restarted, checked after every kill against what it
// reported durable. Not part of `npm test`; CI runs two minutes of it.
//
//   npm run soak -- --minutes 5
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { WriteAhead } from '../dist/src/index.js'
import { sameRecord } from './fixtures/records.js'

const args = process.argv.slice(2)
const minutes = Number(args[args.indexOf('--minutes') + 1] ?? 2)
if (args.includes('--help') || !Number.isFinite(minutes) || minutes <= 0) {
  console.log('usage: npm run soak -- --minutes N   (a mixed workload with periodic SIGKILL; prints a summary, exits 1 if anything is lost)')
  process.exit(args.includes('--help') ? 0 : 2)
}
const child = fileURLToPath(new URL('./fixtures/soak-child.js', import.meta.url))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'writeahead-soak-'))
const P = 3
const deadline = Date.now() + minutes * 60_000
const acked = Array.from({ length: P }, () => 0)
const committed = Array.from({ length: P }, () => 0)
const trimmedTo = Array.from({ length: P }, () => 0)
const stats = { records: 0, acknowledgements: 0, groupCommits: 0, trims: 0, kills: 0, recoveries: 0, checked: 0, lost: 0 }
let seed = 99

function runOnce (ms) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [child, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    c.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => c.kill('SIGKILL'), ms)
    readline.createInterface({ input: c.stdout }).on('line', (line) => {
      const [kind, p, a, b] = line.split(' ')
      if (kind === 'ack') { acked[p] = Math.max(acked[p], Number(a) + Number(b)); stats.acknowledgements++; stats.records += Number(b) }
      if (kind === 'commit') { committed[p] = Math.max(committed[p], Number(a)); stats.groupCommits++ }
      if (kind === 'trim') { trimmedTo[p] = Math.max(trimmedTo[p], Number(a)); stats.trims++ }
    })
    c.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal === 'SIGKILL') { stats.kills++; resolve() } else reject(new Error(`writer exited ${code}: ${err}`))
    })
  })
}

async function check () {
  const wal = await WriteAhead.open(dir)
  stats.recoveries++
  for (let p = 0; p < P; p++) {
    const { start, end } = wal.offsets(p)
    if (end < acked[p]) { stats.lost += acked[p] - end; console.error(`partition ${p}: end ${end} < acknowledged ${acked[p]}`) }
    if (start > Math.max(trimmedTo[p], 0) && start > 0 && p !== 0) { stats.lost += start; console.error(`partition ${p}: start ${start} but never trimmed`) }
    let expect = start
    for await (const chunk of wal.iterateBatches(p)) {
      for (const rec of chunk) {
        if (rec.offset !== expect || !sameRecord(rec, p, rec.offset)) { stats.lost++; console.error(`partition ${p}: bad record at ${rec.offset}`) }
        expect = rec.offset + 1
        stats.checked++
      }
    }
    const c = wal.group('soak').committed(p) ?? 0
    if (c < committed[p] || c > end) { stats.lost++; console.error(`partition ${p}: group at ${c}, last durable commit ${committed[p]}, end ${end}`) }
    acked[p] = end
  }
  await wal.close()
}

const started = Date.now()
while (Date.now() < deadline) {
  seed = (seed * 48271) % 2147483647
  await runOnce(300 + (seed % 2500))
  await check()
  if (stats.lost > 0) break
}
fs.rmSync(dir, { recursive: true, force: true })
const secs = ((Date.now() - started) / 1000).toFixed(0)
console.log(`soak ${secs}s: records ${stats.records}, acknowledgements ${stats.acknowledgements}, group commits ${stats.groupCommits}, trims ${stats.trims}, kills ${stats.kills}, recoveries ${stats.recoveries}, records checked ${stats.checked}, lost = ${stats.lost}`)
process.exit(stats.lost === 0 ? 0 : 1)
