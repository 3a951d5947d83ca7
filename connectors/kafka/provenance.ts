/**
 * The provenance header: replay appends one header after a record's own headers, so the record's
 * headers stay first and unchanged:
 *
 *   writeahead.position   "<partition>:<offset>", or "<partition>:<offset>:<source>" when replay's
 *                         `source` option is set; partition and offset are the WAL's, decimal ASCII
 *
 * One header, not one per field: kafkajs allocates and zero-fills a 512-byte encoder for every
 * header of every record it sends, and with three headers of provenance that was a fifth of
 * replay's throughput (bench/kafka.js: 0.70 of a raw producer's throughput with, 0.91 without).
 *
 * A record replayed twice in a chain (WAL -> Kafka -> WAL -> Kafka) carries one header per hop;
 * the last one is the latest hop.
 */
import type { WalHeader } from '../../src/index.js'

export const POSITION_HEADER = 'writeahead.position'

export interface Provenance {
  partition: number
  offset: number
  /** The `source` replay was given, if any. */
  source: string | null
}

/** The provenance header to append for WAL record (partition, offset). */
export function provenanceHeader (partition: number, offset: number, source?: string | null): WalHeader {
  const text = source === undefined || source === null ? `${partition}:${offset}` : `${partition}:${offset}:${source}`
  return { key: POSITION_HEADER, value: Buffer.from(text) }
}

function decimal (s: string): number | null {
  if (s.length === 0 || s.length > 16 || !/^(0|[1-9]\d*)$/.test(s)) return null
  const n = Number(s)
  return Number.isSafeInteger(n) ? n : null
}

/** The provenance of a replayed record (its trailing provenance header), or null. */
export function provenanceOf (headers: WalHeader[]): Provenance | null {
  const last = headers[headers.length - 1]
  if (last === undefined || last.key !== POSITION_HEADER || last.value === null) return null
  const text = last.value.toString()
  const a = text.indexOf(':')
  const b = a < 0 ? -1 : text.indexOf(':', a + 1)
  const partition = decimal(text.slice(0, a < 0 ? 0 : a))
  const offset = decimal(b < 0 ? text.slice(a + 1) : text.slice(a + 1, b))
  if (partition === null || offset === null) return null
  return { partition, offset, source: b < 0 ? null : text.slice(b + 1) }
}

/** The record's own headers: without the trailing provenance header replay added. */
export function stripProvenance (headers: WalHeader[]): WalHeader[] {
  return provenanceOf(headers) === null ? headers : headers.slice(0, headers.length - 1)
}
