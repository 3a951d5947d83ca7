import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir, segmentFiles, partitionPath, small } from './helpers/tmp.js'
import { CLI, run } from './fixtures/cli-run.js'
import { crc32c } from '../dist/src/format/crc.js'

/** A log with several sealed segments in partition 0 and a group that has read everything. */
async function fill (dir) {
  const wal = await WriteAhead.open(dir, { ...small, partitions: 2 })
  for (let i = 0; i < 60; i++) await wal.appendBatch(0, Array.from({ length: 10 }, (_, j) => `record ${i * 10 + j} ${'v'.repeat(80)}`))
  await wal.appendBatch(1, ['other'])
  await wal.group('reader').commit(0, wal.offsets(0).end)
  await wal.close()
  const segs = segmentFiles(dir)
  if (segs.length < 3) throw new Error('expected at least 3 segments')
  return segs
}

function flip (file, at) {
  const buf = fs.readFileSync(file)
  buf[at] ^= 0x04
  fs.writeFileSync(file, buf)
}

test('verify: exit 0 on a clean log', async (t) => {
  const dir = tmpDir(t)
  const segs = await fill(dir)
  const r = await run(['verify', dir])
  t.is(r.code, 0, r.stderr)
  t.is(r.stderr, '') // no progress bar without a terminal
  const json = JSON.parse((await run(['verify', dir, '--json'])).stdout)
  t.like(json, { ok: true, partitions: 2, problems: [] })
  // The partitions' 601 records, and apart from them the meta log's (options, the group's commit).
  t.is(json.partitionRecords, 601)
  t.true(json.metaRecords >= 2, String(json.metaRecords))
  t.is(json.records, json.partitionRecords + json.metaRecords)
  t.regex(r.stdout, new RegExp(`^ok: 2 partitions, ${segs.length + 2} segments \\(meta log included\\), [\\d.]+ KiB of data, 601 records and ${json.metaRecords} meta log records checked\\n$`))
  // The data, not the files: inspect's count of the partitions' data plus the meta log's.
  const inspected = JSON.parse((await run(['inspect', dir, '--json'])).stdout)
  const partitionData = inspected.partitions.reduce((n, p) => n + p.bytes, 0)
  t.true(json.dataBytes >= partitionData && json.dataBytes < partitionData + 64 * 1024, `${json.dataBytes} against ${partitionData}`)
  // Preallocated segments (the default) are mostly zeros: counted in bytes, not in dataBytes.
  const pre = tmpDir(t)
  const wal = await WriteAhead.open(pre, { segmentBytes: 1024 * 1024 })
  // Into a second segment, which the writer zero-filled ahead to its full size.
  while (wal.segments(0).length < 2) await wal.appendBatch(0, Array.from({ length: 100 }, () => 'x'.repeat(1000)))
  const data = wal.segments(0).reduce((n, s) => n + s.bytes, 0)
  await wal.close()
  const pj = JSON.parse((await run(['verify', pre, '--json'])).stdout)
  t.true(pj.bytes >= 1024 * 1024 && pj.dataBytes >= data && pj.dataBytes < data + 4096, `${pj.dataBytes} of ${pj.bytes}, ${data} in the partition`)
  t.regex((await run(['verify', pre])).stdout, new RegExp(` ${Math.round(pj.dataBytes / 1024)} KiB of data, ${pj.partitionRecords} records and \\d+ meta log records? checked\\n$`))
})

/** The last setting of each terminal mode a progress bar may change, from the bytes it wrote. */
function modesLeft (out) {
  const modes = { cursor: 'shown', wrap: 'on' }
  for (const m of out.matchAll(/\x1b\[\?(25|7)([hl])/g)) {
    if (m[1] === '25') modes.cursor = m[2] === 'h' ? 'shown' : 'hidden'
    else modes.wrap = m[2] === 'h' ? 'on' : 'off'
  }
  return modes
}

test('Ctrl-C while verify draws its progress bar leaves the terminal as it was: cursor shown, lines wrapped', async (t) => {
  const dir = tmpDir(t)
  await fill(dir)
  // stderr is made a terminal for the bar, and the process interrupts itself the moment the bar
  // is first drawn, as a user's Ctrl-C in the middle of a long scan (stderr, a pipe, is written
  // synchronously, so everything drawn before the signal reaches the test).
  const preload = path.join(path.dirname(dir), 'tty.mjs')
  fs.writeFileSync(preload, [
    'process.stderr.isTTY = true',
    'process.stderr.columns = 80',
    'const write = process.stderr.write.bind(process.stderr)',
    "process.stderr.write = (chunk, ...rest) => { const r = write(chunk, ...rest); if (String(chunk).includes('verifying [')) process.kill(process.pid, 'SIGINT'); return r }"
  ].join('\n'))
  const child = spawn(process.execPath, ['--import', pathToFileURL(preload).href, CLI, 'verify', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
  const { signal } = await new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  t.is(signal, 'SIGINT')
  t.true(stderr.includes('verifying ['), stderr)
  t.deepEqual(modesLeft(stderr), { cursor: 'shown', wrap: 'on' }, JSON.stringify(stderr))
})

test('verify counts in the singular where there is one: 1 partition, 1 segment, 1 record', async (t) => {
  const dir = tmpDir(t)
  t.is((await run(['append', dir], { input: '' })).code, 0) // a new log: its meta log holds one record
  t.regex((await run(['verify', dir])).stdout, /^ok: 1 partition, 1 segment \(meta log included\), \d+ B of data, 0 records and 1 meta log record checked\n$/)
})

test('verify counts the records of the partitions apart from the meta log\'s: a log of 4 records reports 4', async (t) => {
  const dir = tmpDir(t)
  t.is((await run(['append', dir], { input: 'a\nb\nc\nd\n' })).code, 0)
  t.regex((await run(['verify', dir])).stdout, /, 4 records and 1 meta log record checked\n$/)
  t.like(JSON.parse((await run(['verify', dir, '--json'])).stdout), { ok: true, records: 5, partitionRecords: 4, metaRecords: 1 })
  t.is((await run(['tail', dir, '--group', 'g', '-n', '1'])).code, 0) // a group commit: one more meta record
  t.regex((await run(['verify', dir])).stdout, /, 4 records and 2 meta log records checked\n$/)
  t.like(await WriteAhead.verify(dir), { ok: true, records: 6, partitionRecords: 4, metaRecords: 2 })
})

test('verify: exit 1 on a flipped byte in a sealed segment, naming partition, segment, position and offsets', async (t) => {
  const dir = tmpDir(t)
  const segs = await fill(dir)
  const base = Number(segs[1].slice(0, 20))
  const nextBase = Number(segs[2].slice(0, 20))
  flip(partitionPath(dir, 0, segs[1]), 600)

  const r = await run(['verify', dir])
  t.is(r.code, 1)
  t.is(r.stderr, 'error: verify found corruption (CORRUPTED)\n')
  const m = new RegExp(`^ {2}partition 0, segment ${segs[1]}, byte (\\d+): checksum mismatch; offsets (\\d+)\\.\\.(\\d+) affected \\(and ${segs.length - 2} later segments?\\)`, 'm').exec(r.stdout)
  t.truthy(m, r.stdout)
  const [position, first, last] = m.slice(1).map(Number)
  t.true(position >= 64 && position <= 600, `byte ${position}`)
  t.true(first >= base && first < nextBase, `first ${first}`)
  t.is(last, nextBase - 1)
  t.regex(r.stdout, /run `writeahead repair .*` to keep the valid prefix/)

  const json = await run(['verify', dir, '--json'])
  t.is(json.code, 1)
  const report = JSON.parse(json.stdout)
  t.false(report.ok)
  t.deepEqual(report.problems, [{ partition: 0, segment: segs[1], position, offset: first, endOffset: nextBase, laterSegments: segs.length - 2, reason: 'checksum mismatch' }])
})

test('verify decodes every field: a value length no read accepts is found, though the checksum holds', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  await wal.append(0, 'before')
  await wal.append(0, { key: 'k', value: 'MARKER-VALUE' })
  await wal.close()
  const file = partitionPath(dir, 0, segmentFiles(dir)[0])
  const buf = fs.readFileSync(file)
  const at = buf.indexOf('MARKER-VALUE')
  // The batch holding it: the one whose checksum holds around it.
  let batch = at
  while (!(buf[batch + 8] === 0x57 && batch + buf.readUInt32BE(batch) > at && buf.readUInt32BE(batch + 4) === crc32c(buf, batch + 8, batch + buf.readUInt32BE(batch)))) batch--
  t.is(buf[at - 1], 24) // zigzag(12), the value's length
  buf[at - 1] = 3 // zigzag(-2): no length at all (-1 is a tombstone)
  buf.writeUInt32BE(crc32c(buf, batch + 8, batch + buf.readUInt32BE(batch)), batch + 4)
  fs.writeFileSync(file, buf)

  const ro = await WriteAhead.open(dir, { readOnly: true })
  await t.throwsAsync(ro.read(0, 1), { code: 'CORRUPTED' })
  await ro.close()
  const r = await run(['verify', dir, '--json'])
  t.is(r.code, 1)
  t.like(JSON.parse(r.stdout).problems[0], { partition: 0, position: batch, offset: 1, reason: 'malformed batch: field runs past the batch' })
})

test('repair refuses without --yes when stdin is not a terminal, and changes nothing', async (t) => {
  const dir = tmpDir(t)
  const segs = await fill(dir)
  flip(partitionPath(dir, 0, segs[1]), 600)
  const before = segs.map((s) => fs.readFileSync(partitionPath(dir, 0, s)))
  const r = await run(['repair', dir])
  t.is(r.code, 2)
  t.regex(r.stdout, /^found 1 problem:\n {2}partition 0, segment /)
  t.is(r.stderr, 'error: repair cuts data from the log: pass --yes to confirm (stdin is not a terminal to ask on); nothing was changed (INVALID_ARGUMENT)\n')
  t.false(fs.existsSync(path.join(dir, 'quarantine')))
  t.deepEqual(segmentFiles(dir), segs)
  segs.forEach((s, i) => t.true(fs.readFileSync(partitionPath(dir, 0, s)).equals(before[i])))
  t.is((await run(['verify', dir])).code, 1)
})

test('repair --yes keeps the valid prefix, quarantines the rest, and the log verifies clean', async (t) => {
  const dir = tmpDir(t)
  const segs = await fill(dir)
  // A group whose name holds escape codes (clear the screen) is named escaped, not raw.
  const wal = await WriteAhead.open(dir, { ...small, partitions: 2 })
  await wal.group('\x1b[2Jwiped').commit(0, wal.offsets(0).end)
  await wal.close()
  flip(partitionPath(dir, 0, segs[1]), 600)
  const problem = JSON.parse((await run(['verify', dir, '--json'])).stdout).problems[0]

  const r = await run(['repair', dir, '--yes'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stderr, '')
  t.regex(r.stdout, new RegExp(`^partition 0: cut segment ${segs[1]} at byte ${problem.position} \\(checksum mismatch\\); offsets from ${problem.offset} on are gone from the log; [\\d.]+ KiB moved to quarantine:$`, 'm'))
  t.regex(r.stdout, /^repaired: the log verifies clean/m)
  t.regex(r.stdout, /^group reader was past the cut: moved back to offset 150$/m)
  t.regex(r.stdout, /^group "\\u001b\[2Jwiped" was past the cut: moved back to offset 150$/m)
  t.false(r.stdout.includes('\x1b'))
  const quarantined = [...r.stdout.matchAll(/^ {2}(\S+)$/gm)].map((x) => x[1])
  t.true(quarantined.length >= segs.length - 1, r.stdout)
  for (const q of quarantined) {
    t.true(fs.existsSync(q), q)
    t.true(q.startsWith(path.join(dir, 'quarantine') + path.sep))
  }
  t.deepEqual(segmentFiles(dir), segs.slice(0, 2))

  const v = await run(['verify', dir])
  t.is(v.code, 0, v.stdout)
  const tail = await run(['tail', dir, '-p', '0'])
  const lines = tail.stdout.trimEnd().split('\n')
  t.is(lines.length, problem.offset)
  t.is(lines.at(-1), `record ${problem.offset - 1} ${'v'.repeat(80)}`)
  t.is((await run(['append', dir, '-p', '0'], { input: 'after repair\n' })).stdout, `${problem.offset}\n`)

  const again = await run(['repair', dir])
  t.is(again.code, 0)
  t.is(again.stdout, 'nothing to repair: the log verifies clean\n')
})
