import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError } from 'commander'
import type { WalRecord } from '../index.js'
import { usageError } from './errors.js'

/** commander argument parser: a non-negative safe integer. */
export function parseNonNegative (value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a non-negative integer.')
  return Number(value)
}

export function parsePositive (value: string): number {
  const n = parseNonNegative(value)
  if (n === 0) throw new InvalidArgumentError('must be a positive integer.')
  return n
}

/** commander argument parser: a TCP port, 0 (any free port) to 65535. */
export function parsePort (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535.')
  return Number(value)
}

/** The ISO-8601 times --from accepts, as help text. */
export const ISO_TIME_HELP = 'YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]'

// YYYY-MM-DD, optionally THH:MM, :SS, a fraction (. or ,) and Z or an offset (±HH, ±HHMM, ±HH:MM).
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/

function daysIn (year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/**
 * An ISO-8601 date or date-time as milliseconds since the epoch, or null if `s` is not one (Date.parse
 * alone accepts nearly anything: '-1', '1.5', 'Dec 25', '2026-02-30'). As in JavaScript, a date alone
 * is midnight UTC and a date-time without Z or an offset is local time.
 */
export function parseIsoTime (s: string): number | null {
  const m = ISO_TIME.exec(s)
  if (m === null) return null
  const [, y, mo, d, h, mi, sec, frac, tz] = m as unknown as [string, string, string, string, string?, string?, string?, string?, string?]
  const year = Number(y)
  const month = Number(mo)
  if (month < 1 || month > 12 || Number(d) < 1 || Number(d) > daysIn(year, month)) return null
  let text = `${y}-${mo}-${d}`
  // Timestamps are whole milliseconds: a record is at or after 10:00:00.0005 if it is at or after
  // 10:00:00.001, so a finer fraction rounds up.
  const finer = frac !== undefined && /[1-9]/.test(frac.slice(3)) ? 1 : 0
  if (h !== undefined && mi !== undefined) {
    if (Number(h) > 23 || Number(mi) > 59 || (sec !== undefined && Number(sec) > 59)) return null
    text += `T${h}:${mi}:${sec ?? '00'}.${(frac ?? '').padEnd(3, '0').slice(0, 3)}`
    if (tz !== undefined) {
      if (tz === 'Z' || tz === 'z') {
        text += 'Z'
      } else {
        const oh = tz.slice(1, 3)
        const om = tz.length > 3 ? tz.slice(-2) : '00'
        if (Number(oh) > 23 || Number(om) > 59) return null
        text += `${tz[0]}${oh}:${om}`
      }
    }
  }
  const ms = Date.parse(text)
  return Number.isNaN(ms) ? null : ms + finer
}

export type Encoding = 'utf8' | 'base64' | 'hex'

export function parseEncoding (value: string): Encoding {
  if (value !== 'utf8' && value !== 'base64' && value !== 'hex') throw new InvalidArgumentError("must be 'utf8', 'base64' or 'hex'.")
  return value
}

/** The package root (where package.json names "writeahead"), found from this file upwards. */
export function packageRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }
      if (pkg.name === 'writeahead') return dir
    } catch {}
    const up = path.dirname(dir)
    if (up === dir) throw usageError('cannot find the writeahead package root')
    dir = up
  }
}

export function packageVersion (): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

/** A record's value as one line; a tombstone's is empty, as only --json can tell it from an empty value. */
export function valueText (rec: WalRecord, encoding: Encoding): string {
  return rec.value === null ? '' : rec.value.toString(encoding)
}

/** A record as one JSON line: key, value and header values as strings in `encoding`. */
export function recordJSON (rec: WalRecord, encoding: Encoding): string {
  return JSON.stringify({
    partition: rec.partition,
    offset: rec.offset,
    timestamp: rec.timestamp,
    key: rec.key === null ? null : rec.key.toString(encoding),
    value: rec.value === null ? null : rec.value.toString(encoding),
    headers: rec.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString(encoding) }))
  })
}

/** Writes to stdout, waiting for 'drain' when its buffer is full. */
export async function out (text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve))
}
