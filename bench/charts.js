#!/usr/bin/env node
// Charts from a results file, rendered headless with vega-lite + vega to SVG (no browser).
//
//   node bench/charts.js [bench/results/latest.json]     -> bench/results/charts/*.svg
//
// run.js calls renderCharts() after every full run.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import * as vl from 'vega-lite'
import { RESULTS } from './lib/common.js'

export const CHARTS = path.join(RESULTS, 'charts')

const ORDER = ['floor', 'writeahead', 'sqlite', 'level']
const COLORS = { floor: '#9e9e9e', writeahead: '#1f77b4', sqlite: '#d62728', level: '#2ca02c' }

function color (systems) {
  const keys = ORDER.filter((k) => systems[k] !== undefined)
  return { domain: keys.map((k) => name(systems, k)), range: keys.map((k) => COLORS[k]) }
}
const name = (systems, k) => k === 'floor' ? 'floor (write + fdatasync)' : systems[k]?.label ?? k

function subtitle (json) {
  const m = json.machine
  return `${json.date.slice(0, 10)} · ${m.cpu} ×${m.cpus} · ${m.node} · ${m.fs} · medians of ${json.config.runs} runs${json.quick ? ' · --quick' : ''}`
}

/** Median values of rows by id: [{ system, value, row }] for systems that measured it. */
function pick (json, id) {
  const r = json.rows.find((x) => x.id === id)
  if (r === undefined) return []
  return ORDER.filter((k) => r.values[k]?.median !== undefined).map((k) => ({ key: k, system: name(json.systems, k), value: r.values[k].median, min: r.values[k].min, max: r.values[k].max }))
}

const base = (json, title) => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: { text: title, subtitle: subtitle(json), anchor: 'start', subtitleColor: '#666' },
  background: 'white',
  config: { font: 'Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 }, view: { stroke: null } }
})

/** A power of ten at or below every value, for the baseline of bars on a log scale. */
const baseline = (data) => 10 ** Math.floor(Math.log10(Math.min(...data.map((d) => d.value)) * 0.9))
const short = (v) => v >= 1e6 ? `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k` : v.toFixed(0)

function latencyPercentiles (json) {
  const data = []
  for (const [id, p] of [['serial.p50', 'p50'], ['serial.p99', 'p99'], ['serial.p999', 'p99.9']]) {
    for (const d of pick(json, id)) data.push({ ...d, percentile: p, label: short(d.value) })
  }
  if (data.length === 0) return null
  const low = baseline(data)
  const enc = {
    x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99', 'p99.9'], title: null, axis: { labelAngle: 0, labelFontSize: 13 } },
    xOffset: { field: 'system', sort: data.map((d) => d.system) },
    y: { field: 'value', type: 'quantitative', scale: { type: 'log', domainMin: low }, axis: { format: '~s' }, title: 'latency (µs, log scale)' }
  }
  return {
    ...base(json, 'Acknowledgement latency, one durable record per commit (lower is better)'),
    width: 560,
    height: 300,
    data: { values: data },
    encoding: enc,
    layer: [
      { mark: { type: 'bar', tooltip: true }, encoding: { y2: { datum: low }, color: { field: 'system', type: 'nominal', scale: color(json.systems), title: 'system', legend: { orient: 'bottom', columns: 2 } } } },
      { mark: { type: 'text', dy: -6, fontSize: 10, color: '#333' }, encoding: { text: { field: 'label' } } }
    ]
  }
}

function lines (json, title, xTitle, points, yTitle = 'records/s (log scale)', extra = {}) {
  const data = []
  for (const [x, id, more] of points) for (const d of pick(json, id)) data.push({ ...d, x, ...more })
  if (data.length === 0) return null
  return {
    ...base(json, title),
    width: 560,
    height: 320,
    data: { values: data },
    mark: { type: 'line', point: { filled: true, size: 50 }, tooltip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, axis: { values: [...new Set(points.map((p) => p[0]))], format: 'd' }, title: xTitle },
      y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, axis: { format: '~s' }, title: yTitle },
      color: { field: 'system', type: 'nominal', scale: color(json.systems), title: 'system', legend: { orient: 'bottom', columns: 2 } },
      ...extra
    }
  }
}

function throughputBatch (json) {
  const pts = [[1, 'serial.rate'], ...json.config.batches.map((b) => [b, `batch.${b}.rate`])]
  return lines(json, 'Durable throughput against records per commit (higher is better)', 'records per commit (log scale)', pts)
}

function throughputConcurrency (json) {
  const pts = [[1, 'serial.rate'], ...json.config.writers.map((w) => [w, `concurrent.${w}.rate`])]
  return lines(json, 'Durable throughput against concurrent single-record writers (higher is better)', 'concurrent writers (log scale)', pts)
}

function latencyConcurrency (json) {
  const pts = [[1, 'serial.p50', { percentile: 'p50' }], [1, 'serial.p99', { percentile: 'p99' }]]
  for (const w of json.config.writers) pts.push([w, `concurrent.${w}.p50`, { percentile: 'p50' }], [w, `concurrent.${w}.p99`, { percentile: 'p99' }])
  const spec = lines(json, 'Acknowledgement latency against concurrent writers (lower is better)', 'concurrent writers (log scale)', pts, 'latency, p50 solid, p99 dashed (µs, log scale)', {
    strokeDash: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'], legend: null },
    detail: { field: 'percentile' }
  })
  if (spec !== null) spec.encoding.y.axis = { format: '~s' }
  return spec
}

function reads (json) {
  const data = []
  const scenarios = [['read.point', 'point reads (random)'], ['replay.record.rate', 'replay, record by record'], ['replay.batch.rate', 'replay, batched'], ['readable.rate', 'replay, readable()']]
  for (const [id, label] of scenarios) {
    for (const d of pick(json, id)) data.push({ ...d, scenario: label, label: short(d.value) })
  }
  if (data.length === 0) return null
  const low = baseline(data)
  return {
    ...base(json, 'Reads, records per second (higher is better)'),
    width: 520,
    height: { step: 16 },
    data: { values: data },
    encoding: {
      y: { field: 'scenario', type: 'nominal', title: null, sort: scenarios.map((x) => x[1]), axis: { labelFontSize: 12, labelPadding: 6, labelLimit: 300 } },
      yOffset: { field: 'system', sort: data.map((d) => d.system) },
      x: { field: 'value', type: 'quantitative', scale: { type: 'log', domainMin: low }, axis: { format: '~s' }, title: 'records/s (log scale)' }
    },
    layer: [
      { mark: { type: 'bar', tooltip: true }, encoding: { x2: { datum: low }, color: { field: 'system', type: 'nominal', scale: color(json.systems), title: 'system', legend: { orient: 'bottom', columns: 2 } } } },
      { mark: { type: 'text', align: 'left', dx: 3, fontSize: 10, color: '#333' }, encoding: { text: { field: 'label' } } }
    ]
  }
}

async function toSvg (spec) {
  const compiled = vl.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

/** Renders every chart the results have data for; -> the files written. */
export async function renderCharts (json, dir = CHARTS) {
  fs.mkdirSync(dir, { recursive: true })
  const out = []
  const all = {
    'latency-percentiles': latencyPercentiles,
    'throughput-batch': throughputBatch,
    'throughput-concurrency': throughputConcurrency,
    'latency-concurrency': latencyConcurrency,
    reads
  }
  for (const [file, make] of Object.entries(all)) {
    const spec = make(json)
    if (spec === null) continue
    const f = path.join(dir, `${file}.svg`)
    fs.writeFileSync(f, await toSvg(spec))
    out.push(f)
  }
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? path.join(RESULTS, 'latest.json')
  const files = await renderCharts(JSON.parse(fs.readFileSync(file, 'utf8')))
  for (const f of files) console.log(path.relative(process.cwd(), f))
}
