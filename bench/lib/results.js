// Result rows, ratios and tables (console and markdown), shared by run.js and readme-table.js.
//
// A row is one scenario metric measured on several systems:
//   { id, section, title, metric, unit, better: 'higher'|'lower', target?, note?,
//     values: { [system]: { runs: number[], floorRuns?: number[] } | { na: 'why' } },
//     ref?: { label, runs, pairedWith: 'writeahead' } }
// finishRow() adds min/median/max per system and the ratios:
//   vsFloor  writeahead ÷ floor: the median of per-run ratios when each run had its own floor run
//            measured right before it (write scenarios), else the ratio of medians;
//   vsPeer   writeahead ÷ the best durable peer (best by median): the median of per-round ratios, as
//            systems run interleaved round by round (vsPeerFloorNormalised: each system first divided
//            by its own floor runs);
//   ahead    whether writeahead is better than every durable peer (higher or lower, per `better`).
import { median } from './common.js'

export const SYSTEM_ORDER = ['floor', 'writeahead', 'sqlite', 'level']

const stat = (runs) => ({ runs, min: Math.min(...runs), median: median(runs), max: Math.max(...runs) })
const measured = (v) => v !== undefined && Array.isArray(v.runs) && v.runs.length > 0

function normalised (v) {
  if (Array.isArray(v.floorRuns) && v.floorRuns.length === v.runs.length) return median(v.runs.map((x, i) => x / v.floorRuns[i]))
  return v.median
}

export function finishRow (row, systems) {
  for (const [k, v] of Object.entries(row.values)) if (measured(v)) row.values[k] = { ...v, ...stat(v.runs) }
  const w = row.values.writeahead
  const f = row.values.floor
  row.vsFloor = null
  row.vsPeer = null
  row.bestPeer = null
  row.ahead = null
  if (measured(w) && measured(f)) {
    row.vsFloor = Array.isArray(w.floorRuns) && w.floorRuns.length === w.runs.length
      ? median(w.runs.map((x, i) => x / w.floorRuns[i]))
      : w.median / f.median
  }
  if (measured(w)) {
    const hasFloors = (v) => Array.isArray(v.floorRuns) && v.floorRuns.length === v.runs.length
    const peers = Object.entries(row.values).filter(([k, v]) => k !== 'floor' && k !== 'writeahead' && measured(v) && systems[k]?.durable !== false)
    if (peers.length > 0) {
      // The best peer by median; the ratio is the median of per-round ratios (systems run
      // interleaved, round by round), else the ratio of medians. The floor-normalised ratio (each
      // system divided by its own floor runs) is kept alongside in the JSON.
      const best = peers.reduce((a, b) => (row.better === 'higher' ? b[1].median > a[1].median : b[1].median < a[1].median) ? b : a)
      const p = best[1]
      row.bestPeer = best[0]
      row.vsPeer = p.runs.length === w.runs.length ? median(w.runs.map((x, i) => x / p.runs[i])) : w.median / p.median
      row.ahead = row.better === 'higher' ? row.vsPeer > 1 : row.vsPeer < 1
      if (hasFloors(w) && hasFloors(p)) row.vsPeerFloorNormalised = normalised(w) / normalised(p)
    }
  }
  if (row.ref !== undefined && measured(w)) {
    const r = row.ref
    Object.assign(r, stat(r.runs))
    r.ratio = r.runs.length === w.runs.length ? median(w.runs.map((x, i) => x / r.runs[i])) : w.median / r.median
  }
  if (row.target !== undefined) {
    const t = row.target
    const v = t.of === 'floor' ? row.vsFloor : t.of === 'ref' ? row.ref?.ratio ?? null : measured(w) ? w.median : null
    row.status = v === null ? 'n/a' : (t.min !== undefined ? v >= t.min : v <= t.max) ? 'PASS' : 'MISS'
    const bound = t.of === 'floor' ? `${t.min ?? t.max}× floor` : t.of === 'ref' ? `${t.min ?? t.max}× ${row.ref?.label ?? 'reference'}` : `${fmt(t.min ?? t.max, row.unit)} ${row.unit}`
    row.targetText = `${t.min !== undefined ? '≥' : '≤'} ${bound}`
  }
  return row
}

export function fmt (v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—'
  if (unit === 'µs' || unit === 'ms' || unit === 'MB/s') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`
  return v.toFixed(0)
}

export const ratio = (r) => r === null || r === undefined ? '' : r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`

function cell (row, key) {
  const v = row.values[key]
  if (v === undefined) return ''
  if (v.na !== undefined) return 'n/a'
  return fmt(v.median, row.unit)
}

function peerCell (row, systems) {
  if (row.vsPeer === null) return ''
  return `${ratio(row.vsPeer)} ${systems[row.bestPeer]?.short ?? row.bestPeer} ${row.ahead ? '✓' : '✗'}`
}

function targetCell (row) {
  if (row.targetText === undefined) return ''
  const got = row.target.of === 'ref' && row.ref?.ratio !== undefined ? ` (${ratio(row.ref.ratio)})` : ''
  return `${row.targetText}${got} ${row.status === 'PASS' ? '✓' : row.status === 'MISS' ? '✗' : row.status}`
}

/** Columns shared by the console and markdown tables. */
export function tableCells (rows, systems) {
  const keys = SYSTEM_ORDER.filter((k) => rows.some((r) => r.values[k] !== undefined))
  const head = ['scenario', 'metric', ...keys.map((k) => systems[k]?.short ?? k), '× floor', '× best peer', 'target']
  const lines = rows.map((r) => [
    r.title, `${r.metric} ${r.better === 'higher' ? '↑' : '↓'}`, ...keys.map((k) => cell(r, k)),
    ratio(r.vsFloor), peerCell(r, systems), targetCell(r)
  ])
  return { head, lines, numeric: new Set(keys.map((_, i) => i + 2).concat([keys.length + 2])) }
}

export function consoleTable (rows, systems) {
  const { head, lines, numeric } = tableCells(rows, systems)
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const line = (cells) => cells.map((c, i) => numeric.has(i) ? c.padStart(w[i]) : c.padEnd(w[i])).join('  ').trimEnd()
  const out = [line(head), w.map((n) => '-'.repeat(n)).join('  ')]
  let section = null
  for (let i = 0; i < lines.length; i++) {
    if (rows[i].section !== section) { section = rows[i].section; out.push(`[${section}]`) }
    out.push(line(lines[i]))
  }
  return out.join('\n')
}

export function markdownTable (rows, systems) {
  const { head, lines, numeric } = tableCells(rows, systems)
  const esc = (s) => s.replace(/\|/g, '\\|')
  const out = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => numeric.has(i) ? '---:' : '---').join('|')}|`]
  let section = null
  for (let i = 0; i < lines.length; i++) {
    if (rows[i].section !== section) { section = rows[i].section; out.push(`| **${esc(section)}** |${' |'.repeat(head.length - 1)}`) }
    out.push(`| ${lines[i].map(esc).join(' | ')} |`)
  }
  return out.join('\n')
}

export function summary (rows) {
  const targets = rows.filter((r) => r.status === 'PASS' || r.status === 'MISS')
  const compared = rows.filter((r) => r.ahead !== null)
  return {
    targetsPassed: targets.filter((r) => r.status === 'PASS').length,
    targetsMissed: targets.filter((r) => r.status === 'MISS').map((r) => `${r.title} ${r.metric}`),
    aheadOfPeers: compared.filter((r) => r.ahead).length,
    behindPeers: compared.filter((r) => !r.ahead).map((r) => `${r.title} ${r.metric}`)
  }
}
