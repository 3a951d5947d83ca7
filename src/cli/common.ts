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

export { ISO_TIME_HELP, parseIsoTime } from '../iso-time.js'

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

const closers = new Set<() => Promise<void>>()
let readerGone = false

/**
 * Registers what closes a command's log when stdout's reader goes away (EPIPE, `| head`): the
 * process then exits 0 at once, and a log left open would leave its LOCK file behind. Kept until
 * the exit: an EPIPE while the command closes the log itself waits for that close (it is idempotent).
 */
export function closeOnEpipe (close: () => Promise<void>): void {
  closers.add(close)
}

/** stdout's reader went away: a command stops quietly, and what follows from its log closing under it is no error. */
export function stdoutGone (): boolean {
  return readerGone
}

/** On EPIPE: closes every registered log (best effort), before the process exits. */
export async function stdoutClosed (): Promise<void> {
  readerGone = true
  await Promise.allSettled([...closers].map((close) => close()))
}

/** Writes to stdout, waiting for 'drain' when its buffer is full. */
export async function out (text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve))
}
