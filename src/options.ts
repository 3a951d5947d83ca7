import { invalidOption } from './errors.js'
import { nodeFileIO, type FileIO } from './io/file-io.js'
import type { RetentionOptions, SyncMode } from './types.js'

export interface WriteAheadOptions {
  /** Number of partitions; reopening with more adds them, with fewer is PARTITIONS_REDUCED. Default 1. */
  partitions?: number
  /** Size of a segment file. Default 64 MiB. */
  segmentBytes?: number
  /** Largest record (key + value + headers). Default 1 MiB. */
  maxRecordBytes?: number
  /** Largest batch, and so the largest appendBatch. Default 16 MiB (at most a quarter of a segment). */
  maxBatchBytes?: number
  /** When an append is acknowledged. Default 'always'. See the README's durability table. */
  sync?: SyncMode
  /** With sync: 'interval', how often written data is fdatasynced. Default 100 ms. */
  syncIntervalMs?: number
  /** Per partition; applied at open, whenever a segment is sealed, and on a timer. */
  retention?: RetentionOptions
  /** Open a directory another process writes to; see records up to its latest durable commit. */
  readOnly?: boolean
  /** Zero-fill the next segment ahead of time (faster syncs). Default true. */
  preallocate?: boolean
  /** Bytes of log between sparse index entries. Default 4096. */
  indexIntervalBytes?: number
  /** Most segment files kept open for reading at once. Default 128. */
  maxOpenFiles?: number
  /** Size of a meta log segment: the meta log is compacted each time one fills. Default 4 MiB. */
  metaSegmentBytes?: number
  /** Bytes of recently read, verified batches kept for point reads. Default 32 MiB. */
  readCacheBytes?: number
  /** The I/O layer; tests put a faulty disk here. Default: node:fs. */
  io?: FileIO
}

export interface ResolvedOptions {
  partitions: number | undefined
  segmentBytes: number
  maxRecordBytes: number
  maxBatchBytes: number
  sync: SyncMode
  syncIntervalMs: number
  retention: RetentionOptions
  readOnly: boolean
  preallocate: boolean
  indexIntervalBytes: number
  maxOpenFiles: number
  readCacheBytes: number
  metaSegmentBytes: number
  io: FileIO
}

const MiB = 1024 * 1024
const knownRetention = new Set(['maxBytes', 'maxAgeMs', 'keepUnconsumed'])

function int (name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalidOption(name, `must be an integer from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}

/** A boolean option must be a boolean: `readOnly: 'yes'` would otherwise open for writing. */
export function bool (name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback
  if (typeof v !== 'boolean') throw invalidOption(name, `must be true or false, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
  return v
}

/**
 * Options are read by key: a Date, a Map or an array has no keys of its own, so it would pass every
 * check and silently mean "all defaults" (for retention: none at all).
 */
export function plainObject (v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** What a value that should have been an options object is, for the message. */
export function kindOf (v: unknown): string {
  if (v === null) return 'null'
  if (typeof v !== 'object') return typeof v === 'string' ? JSON.stringify(v) : String(v)
  return Array.isArray(v) ? 'an array' : `a ${(v as object).constructor?.name ?? 'non-plain object'}`
}

export function resolveOptions (o: WriteAheadOptions = {}): ResolvedOptions {
  if (!plainObject(o)) throw invalidOption('options', `must be a plain object, got ${kindOf(o)}`)
  const known = new Set(['partitions', 'segmentBytes', 'maxRecordBytes', 'maxBatchBytes', 'sync', 'syncIntervalMs', 'retention', 'readOnly', 'preallocate', 'indexIntervalBytes', 'maxOpenFiles', 'readCacheBytes', 'metaSegmentBytes', 'io'])
  for (const k of Object.keys(o)) if (!known.has(k)) throw invalidOption(k, 'unknown option')
  const partitions = o.partitions === undefined ? undefined : int('partitions', o.partitions, 1, 100_000)
  const segmentBytes = o.segmentBytes === undefined ? 64 * MiB : int('segmentBytes', o.segmentBytes, 4096, 2 ** 31 - 1)
  const maxBatchBytes = o.maxBatchBytes === undefined ? Math.min(16 * MiB, Math.floor(segmentBytes / 4)) : int('maxBatchBytes', o.maxBatchBytes, 128, Math.floor(segmentBytes / 2))
  const maxRecordBytes = o.maxRecordBytes === undefined ? Math.min(MiB, maxBatchBytes - 128) : int('maxRecordBytes', o.maxRecordBytes, 1, maxBatchBytes - 64)
  const sync = o.sync ?? 'always'
  if (sync !== 'always' && sync !== 'interval' && sync !== 'never') throw invalidOption('sync', `must be 'always', 'interval' or 'never', got ${String(sync)}`)
  const syncIntervalMs = o.syncIntervalMs === undefined ? 100 : int('syncIntervalMs', o.syncIntervalMs, 1, 3_600_000)
  // Only undefined means none: `retention: null` (or a Date) is a mistake, not a way to say "off".
  const retention: RetentionOptions = o.retention === undefined ? {} : o.retention
  if (!plainObject(retention)) throw invalidOption('retention', `must be an object { maxBytes?, maxAgeMs?, keepUnconsumed? } (leave it out for none), got ${kindOf(retention)}`)
  // A misspelt limit would leave retention silently off.
  for (const k of Object.keys(retention)) if (!knownRetention.has(k)) throw invalidOption(`retention.${k}`, 'unknown option; retention takes { maxBytes?, maxAgeMs?, keepUnconsumed? }')
  if (retention.maxBytes !== undefined) int('retention.maxBytes', retention.maxBytes, 0, Number.MAX_SAFE_INTEGER)
  if (retention.maxAgeMs !== undefined) int('retention.maxAgeMs', retention.maxAgeMs, 0, Number.MAX_SAFE_INTEGER)
  // keepUnconsumed only holds back what a limit would delete: alone it would silently do nothing.
  if (bool('retention.keepUnconsumed', retention.keepUnconsumed, false) && retention.maxBytes === undefined && retention.maxAgeMs === undefined) {
    throw invalidOption('retention.keepUnconsumed', 'needs retention.maxBytes or retention.maxAgeMs: it only keeps what they would delete, and without one nothing is deleted')
  }
  const indexIntervalBytes = o.indexIntervalBytes === undefined ? 4096 : int('indexIntervalBytes', o.indexIntervalBytes, 1, segmentBytes)
  const maxOpenFiles = o.maxOpenFiles === undefined ? 128 : int('maxOpenFiles', o.maxOpenFiles, 1, 100_000)
  if (o.io !== undefined && (typeof o.io !== 'object' || o.io === null)) throw invalidOption('io', 'must implement FileIO')
  return {
    partitions,
    segmentBytes,
    maxRecordBytes,
    maxBatchBytes,
    sync,
    syncIntervalMs,
    retention: { ...retention },
    readOnly: bool('readOnly', o.readOnly, false),
    preallocate: bool('preallocate', o.preallocate, true),
    indexIntervalBytes,
    maxOpenFiles,
    metaSegmentBytes: o.metaSegmentBytes === undefined ? 4 * MiB : int('metaSegmentBytes', o.metaSegmentBytes, 4096, 2 ** 31 - 1),
    readCacheBytes: o.readCacheBytes === undefined ? 32 * MiB : int('readCacheBytes', o.readCacheBytes, 0, Number.MAX_SAFE_INTEGER),
    io: o.io ?? nodeFileIO
  }
}
