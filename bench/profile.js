#!/usr/bin/env node
// Profiles one bench scenario, writeahead only (no floor, no peers), in three ways:
//   1. clinic flame   flame graph of CPU time (bench/profiles/<name>/*.clinic-flame.html)
//   2. clinic doctor  event-loop delay, CPU, memory, handles over time (*.clinic-doctor.html)
//   3. node --cpu-prof  a .cpuprofile for Chrome DevTools or speedscope, summarised here as the
//      functions with the most self time and the share of each source file
// clinic is no longer maintained and doctor misreads newer Node versions: when clinic is missing
// or fails, the --cpu-prof profile is still made. See bench/PROFILING.md for how to read them.
//
// Usage: USAGE below (--help).
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { BENCH, ROOT, SCENARIOS, checkDisk } from './lib/common.js'
import { benchArgs } from './lib/args.js'

const TOOLS = ['flame', 'doctor', 'cpu', 'all']
const USAGE = `usage: npm run profile -- <scenario> [--tool=flame|doctor|cpu|all] [--full] [--top=N]

scenarios: ${SCENARIOS.join(' ')} (as for npm run bench; prefixes work)
options:
  --tool=T      flame, doctor, cpu or all (default all)
  --full        the full-size scenario instead of --quick
  --top=N       functions listed from the --cpu-prof profile (default 25)
  -h, --help    this text
See bench/PROFILING.md for how to read the output.`
const { values: flags, positionals } = benchArgs(USAGE, {
  tool: { type: 'string' },
  full: { type: 'boolean' },
  top: { type: 'string' }
}, { positionals: true, numbers: ['top'] })
const scenario = positionals[0]
const tool = flags.tool ?? 'all'
const top = Number(flags.top ?? 25)
const usageError = (why) => { console.error(`${why}\n\n${USAGE}`); process.exit(2) }
if (positionals.length !== 1) usageError(`give one scenario, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`)
if (!SCENARIOS.some((s) => s.startsWith(scenario))) usageError(`unknown scenario "${scenario}"`)
if (!TOOLS.includes(tool)) usageError(`unknown tool "${tool}"`)
checkDisk()

const stamp = new Date().toISOString().replace(/[:.]/g, '-')
const out = path.join(BENCH, 'profiles', `${scenario}-${stamp}`)
fs.mkdirSync(out, { recursive: true })
const runArgs = [path.join(BENCH, 'run.js'), ...(flags.full === true ? [] : ['--quick']), '--no-save', '--systems=writeahead', scenario]
const clinicBin = path.join(ROOT, 'node_modules', '.bin', 'clinic')
const rel = (p) => path.relative(process.cwd(), p)
const made = []
const failed = []

function run (label, cmd, cmdArgs, env = {}) {
  const show = (a) => a === process.execPath ? 'node' : a.startsWith(ROOT) ? path.relative(ROOT, a) : a
  console.error(`\n== ${label}: ${[cmd, ...cmdArgs].map(show).join(' ')}`)
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: ROOT, env: { ...process.env, ...env } })
  return r.status === 0 && r.error === undefined
}

function clinic (kind) {
  if (!fs.existsSync(clinicBin)) { failed.push(`clinic ${kind}: clinic is not installed (npm install --save-dev clinic)`); return }
  const before = new Set(fs.readdirSync(out))
  const ok = run(`clinic ${kind}`, clinicBin, [kind, '--open=false', '--dest', out, '--', process.execPath, ...runArgs], { NO_INSIGHT: 'true' })
  const html = fs.readdirSync(out).filter((f) => !before.has(f) && f.endsWith('.html'))
  if (ok && html.length > 0) made.push(...html.map((f) => path.join(out, f)))
  else failed.push(`clinic ${kind} failed or wrote no report (the --cpu-prof profile below still works)`)
}

/** Self time per function and per file from a .cpuprofile. */
function summarise (file) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'))
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map()
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt)
  }
  let total = 0
  const fns = new Map()
  const files = new Map()
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id)
    total += us
    const where = f.url === '' ? '(native)' : path.relative(ROOT, f.url.replace(/^file:\/\//, ''))
    const name = `${f.functionName || '(anonymous)'}  ${where}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`
    fns.set(name, (fns.get(name) ?? 0) + us)
    const fileKey = f.url === '' ? `(${f.functionName || 'native'})` : where
    files.set(fileKey, (files.get(fileKey) ?? 0) + us)
  }
  const pct = (us) => `${(100 * us / total).toFixed(1).padStart(5)}%`
  const lines = [`${rel(file)}: ${(total / 1e6).toFixed(2)} s sampled`, '', 'self time by function:']
  for (const [name, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${name}`)
  lines.push('', 'self time by file (native entries by name):')
  for (const [name, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pct(us)}  ${name}`)
  return lines.join('\n')
}

if (tool === 'flame' || tool === 'all') clinic('flame')
if (tool === 'doctor' || tool === 'all') clinic('doctor')
if (tool === 'cpu' || tool === 'all' || failed.length > 0) {
  const dir = path.join(out, 'cpuprofile')
  if (run('node --cpu-prof', process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...runArgs])) {
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
      const file = path.join(dir, f)
      made.push(file)
      const text = summarise(file)
      fs.writeFileSync(file.replace(/\.cpuprofile$/, '.top.txt'), text + '\n')
      console.log(`\n${text}`)
    }
  } else failed.push('node --cpu-prof run failed')
}

console.log(`\nprofiles in ${rel(out)}:`)
for (const f of made) console.log(`  ${rel(f)}`)
for (const f of failed) console.log(`  note: ${f}`)
console.log('how to read them: bench/PROFILING.md')
process.exit(made.length > 0 ? 0 : 1)
