// Every snippet in the README runs, or is checked against what it names: the API against the
// built module, CLI lines against the binary's --help, npm commands against package.json.
// (The Kafka snippet runs against the broker in kafka-examples.test.js.)
import test from 'ava'
import fs from 'node:fs'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'
import { ROOT, readmeBlock, readmeBlocks, runSnippet } from './helpers/readme.js'
import { run } from './fixtures/cli-run.js'

test('the first example runs as written', async (t) => {
  const cwd = tmpDir(t, 'first')
  fs.mkdirSync(cwd)
  const r = await runSnippet(readmeBlock("WriteAhead.open('./data', { partitions: 4 })").code, { cwd })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, '0 a\n1 b\n2 c\n')
  const wal = await WriteAhead.open(`${cwd}/data`, { readOnly: true })
  t.is(wal.partitions, 4)
  t.is((await wal.read(0, 0)).value.toString(), 'signed up')
  await wal.close()
})

test('the streams and consumer group example runs', async (t) => {
  const cwd = tmpDir(t, 'streams')
  fs.mkdirSync(cwd)
  const prelude = [
    "import { WriteAhead } from 'writeahead'",
    "const wal = await WriteAhead.open('./data')",
    'const seen = []',
    'const handle = async (rec) => { seen.push(rec.value.toString()) }',
    'const done = (rec) => rec.offset === 2'
  ].join('\n')
  const epilogue = 'console.log(JSON.stringify(seen)); await wal.close()'
  const r = await runSnippet(readmeBlock('wal.writable(0)').code, { cwd, prelude, epilogue })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, '["a","b","c"]\n')
})

test('the RxJS example runs', async (t) => {
  const cwd = tmpDir(t, 'rx')
  fs.mkdirSync(cwd)
  // Its live subscription never completes: the prelude ends the process once both printed enough.
  const prelude = [
    "import { WriteAhead } from 'writeahead'",
    "import { of } from 'rxjs'",
    "const wal = await WriteAhead.open('./data', { partitions: 2 })",
    "await wal.appendBatch(0, ['x', 'y'])",
    "const source$ = of('p', 'q')",
    'const lines = []',
    'const print = console.log',
    'console.log = (...a) => { lines.push(a.join(" ")); if (lines.length === 4) { print(JSON.stringify(lines.sort())); wal.close().then(() => process.exit(0)) } }'
  ].join('\n')
  const r = await runSnippet(readmeBlock("from 'writeahead/rx'").code, { cwd, prelude })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), ['0', '1', 'durable at 0', 'durable at 1'])
})

test('the RxJS commit-after-processing example commits what was handled', async (t) => {
  const cwd = tmpDir(t, 'rx-commit')
  fs.mkdirSync(cwd)
  // Its subscription is live: the prelude reports the commit that covers all three records, then closes the log.
  const prelude = [
    "import { WriteAhead } from 'writeahead'",
    "import { fromPartition } from 'writeahead/rx'",
    "const wal = await WriteAhead.open('./data')",
    "await wal.appendBatch(0, ['x', 'y', 'z'])",
    'const handled = []',
    'const handle = async (rec) => { handled.push(rec.value.toString()) }',
    'const group = wal.group.bind(wal)',
    'wal.group = (name) => {',
    '  const g = group(name)',
    '  const commit = g.commit.bind(g)',
    '  g.commit = async (p, next) => { await commit(p, next); if (next === 3) { console.log(JSON.stringify([handled, group(name).committed(0)])); await wal.close(); process.exit(0) } }',
    '  return g',
    '}'
  ].join('\n')
  const r = await runSnippet(readmeBlock("wal.group('billing')").code, { cwd, prelude })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [['x', 'y', 'z'], 3])
})

test('the API listing names only what exists', async (t) => {
  const code = readmeBlock('WriteAhead.open(dir, options?)').code
  const dir = tmpDir(t, 'api')
  const wal = await WriteAhead.open(dir)
  const names = [...code.matchAll(/\bwal\.(\w+)/g)].map((m) => m[1])
  const statics = [...code.matchAll(/\bWriteAhead\.(\w+)/g)].map((m) => m[1])
  t.true(names.length >= 10)
  for (const n of names) t.not(wal[n], undefined, `wal.${n}`)
  for (const n of statics) t.is(typeof WriteAhead[n], 'function', `WriteAhead.${n}`)
  await wal.close()
})

test('every npm command and every writeahead flag in the README exists', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(`${ROOT}/package.json`, 'utf8'))
  const sh = readmeBlocks().filter((b) => b.lang === 'sh')
  t.true(sh.length >= 3)
  const helps = new Map()
  const help = async (cmd) => {
    if (!helps.has(cmd)) helps.set(cmd, await run([cmd, '--help']))
    return helps.get(cmd)
  }
  let checked = 0
  for (const b of sh) {
    for (const line of b.code.split('\n')) {
      const cmdPart = line.replace(/#.*$/, '')
      for (const m of cmdPart.matchAll(/\bnpm (?:run (\S+)|(start|test))\b/g)) {
        t.truthy(pkg.scripts[m[1] ?? m[2]], `README line ${b.line}: npm script ${m[1] ?? m[2]}`)
        checked++
      }
      for (const seg of cmdPart.split(/[;|]/)) {
        const m = /npx writeahead (\w+)(.*)$/.exec(seg)
        if (m === null) continue
        const h = await help(m[1])
        t.is(h.code, 0, `writeahead ${m[1]} exists`)
        for (const flag of m[2].match(/--[a-z][a-z-]*|(?<=\s)-[a-z]\b/g) ?? []) {
          t.true(h.stdout.includes(flag) || flag === '--help', `README: writeahead ${m[1]} ${flag}`)
        }
        checked++
      }
    }
  }
  t.true(checked >= 15, `checked ${checked} commands`)
})
