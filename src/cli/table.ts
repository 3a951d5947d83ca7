/** A tiny aligned-table formatter: text columns left-aligned, numeric columns right-aligned. */
export type Cell = string | number | null | undefined

export function table (headers: string[], rows: Cell[][], indent = ''): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i])))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => r[i] === null || r[i] === undefined || typeof r[i] === 'number'))
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)))
  const line = (cells: string[]): string => indent + cells.map((c, i) => {
    if (i === cells.length - 1 && !numeric[i]) return c
    return numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])
  }).join('  ').trimEnd()
  return [line(headers), ...text.map(line)].join('\n') + '\n'
}

function cellText (c: Cell): string {
  if (c === null || c === undefined) return '-'
  return typeof c === 'string' ? printable(c) : String(c)
}

/**
 * Characters that move the cursor, start a terminal escape sequence or reorder text on screen:
 * C0 and C1 controls, DEL, Unicode's line and paragraph separators and its bidirectional controls.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g')

/**
 * A string from the log (a group name) as it may be printed: as it is, unless it holds a character
 * of UNSAFE (a newline would break a table, an escape code could rewrite the screen), or starts
 * with a double quote; then quoted and escaped as a JSON string, so no two names print alike.
 */
export function printable (s: string): string {
  if (!UNSAFE.test(s) && !s.startsWith('"')) return s
  return JSON.stringify(s).replace(UNSAFE_ALL, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes (n: number | null | undefined): string {
  if (n === null || n === undefined) return '-'
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`
}

export function formatTime (ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-'
  const d = new Date(ms)
  if (Number.isNaN(d.getTime())) return String(ms)
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
