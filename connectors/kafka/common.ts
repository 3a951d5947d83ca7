import type { Kafka } from 'kafkajs'
import { WalError, WriteAhead, type WriteAheadOptions } from '../../src/index.js'
import { nodeFileIO } from '../../src/io/file-io.js'
import { requireLogDir } from '../../src/io/log-dir.js'
import { isKafkaPort, KafkaPortError, type KafkaPort } from './port.js'
import { kafkajsPort, toPortError, type KafkajsPortOptions } from './kafkajs-port.js'

/** Reconnect policy after a connection loss (also while starting, until `startTimeoutMs`). */
export interface ReconnectOptions {
  /** First delay. Default 200 ms. */
  initialMs?: number
  /** Longest delay (the delay doubles, with jitter, up to this). Default 10000 ms. */
  maxMs?: number
  /** Give up after this many consecutive failed attempts. Default: never. */
  maxAttempts?: number
}

export interface ReconnectEvent {
  attempt: number
  delayMs: number
  error: Error
}

/**
 * How a Kafka failure becomes a WalError (no Kafka-specific code exists yet; `details.kafka` says why):
 * unknown topic -> INVALID_ARGUMENT; authentication/authorization or a bad client option ->
 * INVALID_OPTION; unreachable brokers and other Kafka errors -> IO_ERROR.
 */
export function toWalError (err: unknown, what: string, details: Record<string, unknown> = {}): WalError {
  if (err instanceof WalError) return err
  const pe = err instanceof KafkaPortError ? err : toPortError(err, what)
  const code = pe.reason === 'unknown-topic' ? 'INVALID_ARGUMENT' : pe.reason === 'auth' || pe.reason === 'config' ? 'INVALID_OPTION' : 'IO_ERROR'
  // `what` and the port error often open with the same "replay to <topic>: ": said once.
  const lead = what.slice(0, what.indexOf(': ') + 2)
  const message = pe.message.startsWith(what) ? pe.message : `${what}: ${lead.length > 2 && pe.message.startsWith(lead) ? pe.message.slice(lead.length) : pe.message}`
  return new WalError(code, message, { kafka: pe.reason, ...details }, pe)
}

export function isRetriable (err: unknown): boolean {
  if (err instanceof WalError) return false
  if (err instanceof KafkaPortError) return err.retriable
  return toPortError(err, '').retriable
}

export function backoffDelay (attempt: number, o: ReconnectOptions): number {
  const initial = o.initialMs ?? 200
  const max = o.maxMs ?? 10_000
  const base = Math.min(max, initial * 2 ** Math.min(attempt - 1, 30))
  return Math.round(base / 2 + Math.random() * base / 2)
}

/** Resolves after ms, or at once when the signal fires. */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const done = (): void => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve() }
    const t = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Rejects with a KafkaPortError('connection') when `ms` passes first. */
export async function withDeadline<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms)) return p
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new KafkaPortError('connection', `${what}: no answer within ${Math.max(0, Math.round(ms))} ms`)), Math.max(0, ms))
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export function resolvePort (kafka: Kafka | KafkaPort, options: KafkajsPortOptions): { port: KafkaPort, owned: boolean } {
  if (isKafkaPort(kafka)) return { port: kafka, owned: false }
  const k = kafka as Partial<Kafka> | null
  if (k === null || typeof k !== 'object' || typeof k.consumer !== 'function' || typeof k.producer !== 'function' || typeof k.admin !== 'function') {
    throw new WalError('INVALID_OPTION', 'option kafka: must be a kafkajs Kafka instance or a KafkaPort', { option: 'kafka' })
  }
  return { port: kafkajsPort(kafka as Kafka, options), owned: true }
}

export function checkTopic (topic: unknown): string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(topic)) {
    throw new WalError('INVALID_OPTION', `option topic: must be a Kafka topic name (letters, digits, '.', '_', '-'; at most 249), got ${JSON.stringify(topic)}`, { option: 'topic' })
  }
  return topic
}

export function checkInt (name: string, v: unknown, min: number, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !(Number.isSafeInteger(v) || v === Infinity) || v < min) {
    throw new WalError('INVALID_OPTION', `option ${name}: must be an integer >= ${min}, got ${String(v)}`, { option: name })
  }
  return v
}

/** An option that no longer exists is refused, not ignored: a caller relying on it would be surprised silently. */
export function refuseRemovedOptions (o: object): void {
  if ('nullValues' in o) {
    throw new WalError('INVALID_OPTION', 'option nullValues: removed; tombstones (null values) are now mirrored as they are, as records whose value is null', { option: 'nullValues' })
  }
}

/**
 * Refuses an option the connector does not have, as WriteAhead.open does: a misspelt one
 * (`stopAtend`) would otherwise be ignored without a word.
 */
export function refuseUnknownOptions (fn: string, o: object, known: Readonly<Record<string, true>>): void {
  for (const k of Object.keys(o)) {
    if (!Object.hasOwn(known, k)) throw new WalError('INVALID_OPTION', `option ${k}: unknown option of ${fn}()`, { option: k })
  }
}

export function checkOneOf<T extends string> (name: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt
  if (!allowed.includes(v as T)) throw new WalError('INVALID_OPTION', `option ${name}: must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`, { option: name })
  return v as T
}

/**
 * A WAL given as an instance is used as is; a path is opened (with at least `partitions`
 * partitions) and closed when the connector ends.
 */
export class WalHandle {
  wal: WriteAhead | null
  readonly owned: boolean
  private readonly dir: string | null

  /** `existing`: the directory must already hold a log (replay reads one; it never creates it). */
  constructor (wal: WriteAhead | string, private readonly options: WriteAheadOptions = {}, existing = false) {
    if (typeof wal === 'string') {
      if (wal.length === 0) throw new WalError('INVALID_OPTION', 'option wal: must be a WriteAhead or a directory', { option: 'wal' })
      // Before anything connects: a mistyped path would otherwise become a new, empty log.
      if (existing) requireLogDir(options.io ?? nodeFileIO, wal)
      this.wal = null
      this.dir = wal
      this.owned = true
    } else if (wal instanceof WriteAhead) {
      this.wal = wal
      this.dir = null
      this.owned = false
    } else {
      throw new WalError('INVALID_OPTION', 'option wal: must be a WriteAhead or a directory', { option: 'wal' })
    }
  }

  /** Opens (or reopens with more partitions) an owned WAL; checks an instance's partition count. */
  async ensure (partitions: number, why: string): Promise<WriteAhead> {
    if (this.wal !== null && this.wal.partitions >= partitions) return this.wal
    if (!this.owned) {
      const have = (this.wal as WriteAhead).partitions
      throw new WalError('INVALID_ARGUMENT', `${why} needs ${partitions} WAL partitions but the log has ${have}: reopen it with { partitions: ${partitions} } (or pass its directory and let the connector open it)`, { partitions: have })
    }
    if (this.wal === null) {
      // As configured first: asking for fewer partitions than the log has would be PARTITIONS_REDUCED.
      this.wal = await WriteAhead.open(this.dir as string, this.options)
      if (this.wal.partitions >= partitions) return this.wal
    }
    await this.wal.close()
    this.wal = null
    this.wal = await WriteAhead.open(this.dir as string, { ...this.options, partitions })
    return this.wal
  }

  async close (): Promise<void> {
    if (this.owned && this.wal !== null) {
      const w = this.wal
      this.wal = null
      await w.close()
    }
  }
}

/** Waits for p, but at most ms (teardown must not hang a stopping process); never rejects. */
export async function settleWithin (p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p.catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

/** A promise with its resolvers outside (Promise.withResolvers needs Node 22). */
export function deferred<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
