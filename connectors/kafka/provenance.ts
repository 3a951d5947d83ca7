/**
 * Provenance headers: replay appends them after a record's own headers, so the record's headers
 * stay first and unchanged:
 *
 *   writeahead.source     (only when replay's `source` option is set) an id of the log
 *   writeahead.partition  the WAL partition, decimal ASCII
 *   writeahead.offset     the WAL offset, decimal ASCII
 *
 * A record replayed twice in a chain (WAL -> Kafka -> WAL -> Kafka) carries one set per hop; the
 * last set is the latest hop.
 */
import type { WalHeader } from '../../src/index.js'

export const SOURCE_HEADER = 'writeahead.source'
export const PARTITION_HEADER = 'writeahead.partition'
export const OFFSET_HEADER = 'writeahead.offset'

export interface Provenance {
  partition: number
  offset: number
  /** The `writeahead.source` value, if the record carries one. */
  source: string | null
}

/** The provenance headers to append for WAL record (partition, offset). */
export function provenanceHeaders (partition: number, offset: number, source?: string | null): WalHeader[] {
  const h: WalHeader[] = []
  if (source !== undefined && source !== null) h.push({ key: SOURCE_HEADER, value: Buffer.from(source) })
  h.push({ key: PARTITION_HEADER, value: Buffer.from(String(partition)) })
  h.push({ key: OFFSET_HEADER, value: Buffer.from(String(offset)) })
  return h
}

function decimal (v: Buffer | null): number | null {
  if (v === null || v.length === 0 || v.length > 16) return null
  const s = v.toString('latin1')
  if (!/^(0|[1-9]\d*)$/.test(s)) return null
  const n = Number(s)
  return Number.isSafeInteger(n) ? n : null
}

/** How many trailing headers are provenance (0, 2 or 3). */
function trailing (headers: WalHeader[]): { count: number, prov: Provenance | null } {
  const n = headers.length
  if (n < 2) return { count: 0, prov: null }
  const po = headers[n - 2]
  const of = headers[n - 1]
  if (po.key !== PARTITION_HEADER || of.key !== OFFSET_HEADER) return { count: 0, prov: null }
  const partition = decimal(po.value)
  const offset = decimal(of.value)
  if (partition === null || offset === null) return { count: 0, prov: null }
  const src = n >= 3 && headers[n - 3].key === SOURCE_HEADER ? headers[n - 3] : null
  return { count: src === null ? 2 : 3, prov: { partition, offset, source: src === null ? null : (src.value?.toString() ?? '') } }
}

/** The provenance of a replayed record (its trailing provenance headers), or null. */
export function provenanceOf (headers: WalHeader[]): Provenance | null {
  return trailing(headers).prov
}

/** The record's own headers: without the trailing provenance headers replay added. */
export function stripProvenance (headers: WalHeader[]): WalHeader[] {
  const { count } = trailing(headers)
  return count === 0 ? headers : headers.slice(0, headers.length - count)
}
