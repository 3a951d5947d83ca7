/**
 * The connectors as processes people run: `runMirror()` and `runReplay()` run until SIGTERM/SIGINT
 * (or `signal`), reconnect with backoff when Kafka goes away, log structured JSON lines (one per
 * event, plus a lag line every `lagIntervalMs`), and optionally serve `/healthz` and Prometheus
 * `/metrics`. They resolve with a summary after a graceful stop and reject (a WalError) on a
 * fatal error (after a `fatal` log line), for a CLI to exit non-zero (`writeahead` exits 2).
 *
 * Every option object is plain data (JSON-friendly apart from `log`, `signal` and an optional
 * prebuilt client), so a CLI can build it from flags, and `optionsFromEnv()` from the environment.
 */
import fs from 'node:fs'
import http from 'node:http'
import type tls from 'node:tls'
import kafkajs from 'kafkajs'
import type { Kafka, KafkaConfig, LogEntry, SASLOptions } from 'kafkajs'
import client from 'prom-client'
import { WalError, type WriteAhead, type WriteAheadOptions } from '../../src/index.js'
import { parseIsoTime } from '../../src/iso-time.js'
import { refuseRemovedOptions, refuseUnknownOptions, type ReconnectEvent, type ReconnectOptions } from './common.js'
import type { KafkajsConsumerOptions, KafkajsPortOptions } from './kafkajs-port.js'
import { mirror, type Mirror, type MirrorBatchEvent, type MirrorOffsetResetEvent, type MirrorSummary, type OffsetMode } from './mirror.js'
import { isKafkaPort, type KafkaPort } from './port.js'
import { replay, type Replay, type ReplayBatchEvent, type ReplayFrom, type ReplaySummary } from './replay.js'

const { Kafka: KafkaClass, logLevel } = kafkajs

/** How to reach Kafka. Passed through to kafkajs. */
export interface BridgeKafkaOptions {
  /** `host:port` list (or one comma-separated string). */
  brokers: string[] | string
  /** Default `writeahead`. */
  clientId?: string
  /** `true` for TLS with the system CAs, or Node TLS options (`ca`, `cert`, `key`, `rejectUnauthorized`, `servername`...). */
  ssl?: boolean | tls.ConnectionOptions
  /** SASL, as kafkajs takes it: `{ mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512', username, password }` (or aws / oauthbearer). */
  sasl?: SASLOptions
  /** TCP connect timeout. Default 3000 ms. */
  connectionTimeoutMs?: number
  /** Default 30000 ms. */
  requestTimeoutMs?: number
  /** kafkajs's own retries before an operation fails (the bridge then reconnects). Default 5. */
  retries?: number
}

export interface BridgeCommonOptions {
  /** Connection options, or a prebuilt kafkajs `Kafka` / KafkaPort. */
  kafka: BridgeKafkaOptions | Kafka | KafkaPort
  /** The WAL directory (opened by the bridge, closed when it stops). */
  dir: string
  /** A WAL already open in this process, used instead of opening `dir` (not closed by the bridge). */
  wal?: WriteAhead
  /** The topic to mirror from or replay to. */
  topic: string
  /** Options for opening the WAL. */
  walOptions?: WriteAheadOptions
  /** Serve `/healthz` and `/metrics` on this port (0 = any free port; see the 'listening' log line). Default: no HTTP server. */
  httpPort?: number
  /** Default 127.0.0.1. */
  httpHost?: string
  /** Log a lag line this often. Default 10000 ms; 0 turns it off. */
  lagIntervalMs?: number
  /** Where structured log entries go. Default: one JSON line each on stdout (errors on stderr). */
  log?: (entry: Record<string, unknown>) => void
  /** Stop gracefully on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean
  /** Aborting stops gracefully. */
  signal?: AbortSignal
  /** Fail if Kafka cannot be reached at start within this time. Default 30000 ms. */
  startTimeoutMs?: number
  reconnect?: ReconnectOptions
}

export interface RunMirrorOptions extends BridgeCommonOptions {
  /** Kafka consumer group (lag display in Kafka tools). Default `writeahead-mirror.<topic>`. */
  groupId?: string
  offsets?: OffsetMode
  from?: 'earliest' | 'latest'
  /** Exit once caught up with the high watermarks seen at start. Default false. */
  stopAtEnd?: boolean
  consumer?: KafkajsConsumerOptions
  /** A checkpoint Kafka no longer has: `'error'` (default, as `onTrimmed` of wal.readable()) or `'earliest'` (see mirror()). */
  onOffsetReset?: 'error' | 'earliest'
}

export interface RunReplayOptions extends BridgeCommonOptions {
  /** WAL consumer group whose cursor replay starts from and advances. Recommended (see replay()). */
  group?: string
  from?: ReplayFrom
  partitions?: number[]
  partitioner?: 'same' | 'murmur2'
  soleWriter?: boolean
  source?: string
  /** Keep tailing the WAL. Default true for the bridge. */
  live?: boolean
  createTopic?: boolean | { partitions?: number, replicationFactor?: number, configs?: Record<string, string> }
  maxBatchRecords?: number
  maxBatchBytes?: number
  producer?: KafkajsPortOptions['producer']
}

/**
 * Every option of either bridge. Each bridge accepts the other's options and ignores them, so that
 * one set (optionsFromEnv, a config file) can serve both; a key in neither is a typo and refused.
 * `from` is both's: its value must suit the bridge it is given to (mirror takes 'earliest' or
 * 'latest' only). The compiler keeps this list equal to the two interfaces.
 */
const BRIDGE_OPTIONS = {
  kafka: true, dir: true, wal: true, topic: true, walOptions: true, httpPort: true, httpHost: true, lagIntervalMs: true,
  log: true, handleSignals: true, signal: true, startTimeoutMs: true, reconnect: true,
  groupId: true, offsets: true, from: true, stopAtEnd: true, consumer: true, onOffsetReset: true,
  group: true, partitions: true, partitioner: true, soleWriter: true, source: true, live: true, createTopic: true,
  maxBatchRecords: true, maxBatchBytes: true, producer: true
} as const satisfies Record<keyof (RunMirrorOptions & RunReplayOptions), true>

export type BridgeSummary = (MirrorSummary | ReplaySummary) & { kind: 'mirror' | 'replay' }

/** Builds a kafkajs client from plain options. kafkajs's own log lines go to `log` (warnings and errors). */
export function createKafka (o: BridgeKafkaOptions, log: (entry: Record<string, unknown>) => void = jsonLog): Kafka {
  const brokers = (Array.isArray(o.brokers) ? o.brokers : String(o.brokers ?? '').split(',')).map((b) => b.trim()).filter((b) => b !== '')
  if (brokers.length === 0) throw new WalError('INVALID_OPTION', 'option kafka.brokers: give at least one host:port', { option: 'kafka.brokers' })
  for (const b of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)) throw new WalError('INVALID_OPTION', `option kafka.brokers: ${JSON.stringify(b)} is not host:port`, { option: 'kafka.brokers' })
  }
  const config: KafkaConfig = {
    brokers,
    clientId: o.clientId ?? 'writeahead',
    ssl: o.ssl,
    sasl: o.sasl,
    connectionTimeout: o.connectionTimeoutMs ?? 3000,
    requestTimeout: o.requestTimeoutMs ?? 30_000,
    retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: o.retries ?? 5 },
    logLevel: logLevel.WARN,
    logCreator: () => (e: LogEntry) => {
      const { message, timestamp: _t, ...rest } = e.log
      log({ level: e.level <= logLevel.ERROR ? 'error' : 'warn', source: 'kafkajs', namespace: e.namespace, msg: message, ...rest })
    }
  }
  return new KafkaClass(config)
}

function jsonLog (entry: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry }, (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v) + '\n'
  if (entry.level === 'error' || entry.level === 'fatal') process.stderr.write(line)
  else process.stdout.write(line)
}

function errorFields (err: unknown): Record<string, unknown> {
  const e = err as { message?: string, code?: string, details?: unknown }
  return { error: e?.message ?? String(err), code: e?.code, details: e?.details }
}

interface Metrics {
  registry: client.Registry
  records: client.Counter
  bytes: client.Counter
  lag: client.Gauge
  reconnects: client.Counter
  up: client.Gauge
}

function createMetrics (kind: 'mirror' | 'replay', topic: string): Metrics {
  const registry = new client.Registry()
  registry.setDefaultLabels({ bridge: kind, topic })
  client.collectDefaultMetrics({ register: registry, prefix: 'writeahead_bridge_' })
  return {
    registry,
    records: new client.Counter({ name: 'writeahead_kafka_records_total', help: 'Records moved (mirror: into the WAL; replay: acknowledged by Kafka)', labelNames: ['partition'], registers: [registry] }),
    bytes: new client.Counter({ name: 'writeahead_kafka_bytes_total', help: 'Key + value + header bytes moved', labelNames: ['partition'], registers: [registry] }),
    lag: new client.Gauge({ name: 'writeahead_kafka_lag', help: 'Records (offsets) behind the source, per partition', labelNames: ['partition'], registers: [registry] }),
    reconnects: new client.Counter({ name: 'writeahead_kafka_reconnects_total', help: 'Reconnections after losing Kafka', registers: [registry] }),
    up: new client.Gauge({ name: 'writeahead_kafka_up', help: '1 while connected and running', registers: [registry] })
  }
}

async function serve (o: BridgeCommonOptions, metrics: Metrics, healthy: () => { ok: boolean, state: string }, log: (e: Record<string, unknown>) => void): Promise<http.Server | null> {
  if (o.httpPort === undefined) return null
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]
    if (url === '/healthz') {
      const h = healthy()
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: h.ok ? 'ok' : 'unavailable', state: h.state }))
    } else if (url === '/metrics') {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType })
        res.end(text)
      }, (err: unknown) => { res.writeHead(500); res.end(String(err)) })
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  const host = o.httpHost ?? '127.0.0.1'
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.httpPort, host, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    // A WalError as every fatal error of the bridge: a port in use is the environment's, a port
    // out of range a bad option.
    const bad = (err as NodeJS.ErrnoException).code === 'ERR_SOCKET_BAD_PORT'
    throw new WalError(bad ? 'INVALID_OPTION' : 'IO_ERROR', `HTTP server on ${host}:${String(o.httpPort)}: ${(err as Error).message}`, bad ? { option: 'httpPort' } : { httpPort: o.httpPort }, err)
  }
  const addr = server.address()
  log({ level: 'info', msg: 'listening', port: typeof addr === 'object' && addr !== null ? addr.port : o.httpPort })
  return server
}

interface Running {
  on (event: string, listener: (...args: any[]) => void): unknown
  done: Promise<MirrorSummary | ReplaySummary>
  stop (): Promise<unknown>
  lagLine (): Promise<Array<{ partition: number, lag: number } & Record<string, number>>>
}

async function runBridge (kind: 'mirror' | 'replay', o: BridgeCommonOptions, start: (kafka: Kafka | KafkaPort, signal: AbortSignal) => Promise<Running>): Promise<BridgeSummary> {
  if (o === null || typeof o !== 'object') throw new WalError('INVALID_ARGUMENT', `run${kind === 'mirror' ? 'Mirror' : 'Replay'}(options): options must be an object`)
  const log = o.log ?? jsonLog
  try {
    if (kind === 'mirror') refuseRemovedOptions(o)
    refuseUnknownOptions(kind === 'mirror' ? 'runMirror' : 'runReplay', o, BRIDGE_OPTIONS)
  } catch (err) {
    log({ level: 'fatal', msg: 'failed', bridge: kind, ...errorFields(err) })
    throw err
  }
  const metrics = createMetrics(kind, String(o.topic))
  let state = 'starting'
  let server: http.Server | null
  try {
    server = await serve(o, metrics, () => ({ ok: state === 'running', state }), log)
  } catch (err) {
    log({ level: 'fatal', msg: 'failed', bridge: kind, topic: o.topic, ...errorFields(err) })
    throw err
  }
  const ctl = new AbortController()
  const onSignal = (sig: string) => (): void => {
    log({ level: 'info', msg: 'signal', signal: sig })
    ctl.abort()
  }
  const handlers: Array<[NodeJS.Signals, () => void]> = o.handleSignals === false ? [] : [['SIGTERM', onSignal('SIGTERM')], ['SIGINT', onSignal('SIGINT')]]
  for (const [s, h] of handlers) process.on(s, h)
  if (o.signal !== undefined) {
    if (o.signal.aborted) ctl.abort()
    else o.signal.addEventListener('abort', () => ctl.abort(), { once: true })
  }
  let lagTimer: NodeJS.Timeout | null = null
  try {
    const kafka = isKafkaPort(o.kafka) || (typeof (o.kafka as Kafka).consumer === 'function') ? o.kafka as Kafka | KafkaPort : createKafka(o.kafka as BridgeKafkaOptions, log)
    log({ level: 'info', msg: 'starting', bridge: kind, topic: o.topic, dir: o.dir })
    const r = await start(kafka, ctl.signal)
    state = 'running'
    metrics.up.set(1)
    log({ level: 'info', msg: 'running', bridge: kind, topic: o.topic })
    r.on('reconnect', (e: ReconnectEvent) => {
      state = 'reconnecting'
      metrics.up.set(0)
      metrics.reconnects.inc()
      log({ level: 'warn', msg: 'reconnecting', attempt: e.attempt, delayMs: e.delayMs, ...errorFields(e.error) })
    })
    r.on('batch', (e: MirrorBatchEvent | ReplayBatchEvent) => {
      const parts = 'partitions' in e ? Object.entries(e.partitions) : [[String(e.partition), e] as const]
      for (const [p, x] of parts) {
        metrics.records.inc({ partition: String(p) }, x.records)
        metrics.bytes.inc({ partition: String(p) }, x.bytes)
      }
    })
    // Records of the source passed over, or a source that started again: never silent.
    r.on('offsetReset', (e: MirrorOffsetResetEvent) => {
      log({ level: 'warn', msg: 'offset reset', bridge: kind, topic: o.topic, ...e })
    })
    r.on('connected', () => {
      if (state === 'reconnecting') log({ level: 'info', msg: 'reconnected' })
      state = 'running'
      metrics.up.set(1)
    })
    const lagEvery = o.lagIntervalMs ?? 10_000
    if (lagEvery > 0) {
      lagTimer = setInterval(() => {
        if (ctl.signal.aborted) return
        r.lagLine().then((partitions) => {
          if (ctl.signal.aborted || state !== 'running') return
          for (const p of partitions) metrics.lag.set({ partition: String(p.partition) }, p.lag)
          log({ level: 'info', msg: 'lag', bridge: kind, topic: o.topic, lag: partitions.reduce((n, p) => n + p.lag, 0), partitions })
        }, (err: unknown) => {
          if (!ctl.signal.aborted && state === 'running') log({ level: 'warn', msg: 'lag unavailable', ...errorFields(err) })
        })
      }, lagEvery)
      lagTimer.unref()
    }
    const summary = await r.done
    state = 'stopped'
    metrics.up.set(0)
    // Replay's records found in the target already, and offsets without a record, beside what it sent.
    const passed = 'skipped' in summary ? { skipped: summary.skipped, gaps: summary.gaps } : {}
    log({ level: 'info', msg: 'stopped', bridge: kind, topic: o.topic, records: summary.records, bytes: summary.bytes, ...passed, reconnects: summary.reconnects, durationMs: summary.durationMs })
    return { ...summary, kind }
  } catch (err) {
    state = 'failed'
    metrics.up.set(0)
    log({ level: 'fatal', msg: 'failed', bridge: kind, topic: o.topic, ...errorFields(err) })
    throw err
  } finally {
    if (lagTimer !== null) clearInterval(lagTimer)
    for (const [s, h] of handlers) process.off(s, h)
    const srv = server
    if (srv !== null) await new Promise<void>((resolve) => { srv.close(() => resolve()); srv.closeAllConnections() })
  }
}

/**
 * Mirrors `topic` into the WAL at `dir` until stopped (SIGTERM/SIGINT/`signal`) or, with
 * `stopAtEnd`, until caught up. Resolves with a summary; rejects with a WalError on a fatal error.
 */
export async function runMirror (o: RunMirrorOptions): Promise<BridgeSummary> {
  return runBridge('mirror', o, async (kafka, signal) => {
    const metricsOf = (m: Mirror): Running => ({
      done: m.done,
      stop: () => m.stop(),
      on: m.on.bind(m),
      lagLine: async () => {
        await m.refresh()
        return m.status().partitions.map((p) => ({ partition: p.partition, lag: p.lag, next: p.next, high: p.high }))
      }
    })
    const m = await mirror({
      kafka,
      topic: o.topic,
      wal: o.wal ?? o.dir,
      walOptions: o.walOptions,
      offsets: o.offsets,
      groupId: o.groupId,
      from: o.from,
      stopAtEnd: o.stopAtEnd,
      startTimeoutMs: o.startTimeoutMs,
      reconnect: o.reconnect,
      consumer: o.consumer,
      onOffsetReset: o.onOffsetReset,
      signal
    })
    return metricsOf(m)
  })
}

/**
 * Replays the WAL at `dir` into `topic` (live by default) until stopped. Resolves with a summary;
 * rejects with a WalError on a fatal error.
 */
export async function runReplay (o: RunReplayOptions): Promise<BridgeSummary> {
  return runBridge('replay', o, async (kafka, signal) => {
    const r: Replay = await replay({
      kafka,
      topic: o.topic,
      wal: o.wal ?? o.dir,
      walOptions: o.walOptions,
      group: o.group,
      from: o.from,
      partitions: o.partitions,
      partitioner: o.partitioner,
      soleWriter: o.soleWriter,
      source: o.source,
      live: o.live ?? true,
      createTopic: o.createTopic,
      maxBatchRecords: o.maxBatchRecords,
      maxBatchBytes: o.maxBatchBytes,
      startTimeoutMs: o.startTimeoutMs,
      reconnect: o.reconnect,
      producer: o.producer,
      signal
    })
    return {
      done: r.done,
      stop: () => r.stop(),
      on: r.on.bind(r),
      lagLine: async () => r.status().partitions.map((p) => ({ partition: p.partition, lag: p.lag, next: p.next, end: p.end }))
    }
  })
}

/** What `optionsFromEnv` can fill in. */
export type EnvOptions = Partial<Omit<RunMirrorOptions & RunReplayOptions, 'kafka' | 'from' | 'offsets' | 'partitioner'>> & {
  kafka?: BridgeKafkaOptions
  from?: ReplayFrom
  offsets?: OffsetMode
  partitioner?: 'same' | 'murmur2'
}

/**
 * A start position written as text (flags, environment): 'earliest', 'latest', an offset,
 * '@<ms since the epoch>' or an ISO time. null when it is none of these.
 */
export function parseFrom (text: string): 'earliest' | 'latest' | number | { timestamp: number } | null {
  if (text === 'earliest' || text === 'latest') return text
  // An offset or a time in ms must be exact: '99999999999999999999' is no offset replay can start at.
  if (/^@?\d+$/.test(text)) {
    const n = Number(text.replace('@', ''))
    if (!Number.isSafeInteger(n)) return null
    return text.startsWith('@') ? { timestamp: n } : n
  }
  const ts = parseIsoTime(text)
  return ts === null ? null : { timestamp: ts }
}

/**
 * Options from environment variables (unset ones are left out, so they can be merged under CLI flags):
 *
 * | variable | option |
 * |---|---|
 * | `KAFKA_BROKERS` | `kafka.brokers` (comma-separated host:port) |
 * | `KAFKA_CLIENT_ID` | `kafka.clientId` |
 * | `KAFKA_SSL` | `kafka.ssl` (`true`/`1`) |
 * | `KAFKA_SSL_CA_FILE`, `KAFKA_SSL_CERT_FILE`, `KAFKA_SSL_KEY_FILE` | `kafka.ssl.ca/cert/key` (PEM files; imply `KAFKA_SSL`) |
 * | `KAFKA_SSL_REJECT_UNAUTHORIZED` | `kafka.ssl.rejectUnauthorized` (`false` to accept any certificate) |
 * | `KAFKA_SASL_MECHANISM` | `kafka.sasl.mechanism` (`plain`, `scram-sha-256`, `scram-sha-512`) |
 * | `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | `kafka.sasl.username/password` |
 * | `KAFKA_CONNECTION_TIMEOUT_MS`, `KAFKA_REQUEST_TIMEOUT_MS` | `kafka.connectionTimeoutMs/requestTimeoutMs` |
 * | `WRITEAHEAD_DIR` | `dir` |
 * | `WRITEAHEAD_TOPIC` | `topic` |
 * | `WRITEAHEAD_KAFKA_GROUP_ID` | mirror `groupId` |
 * | `WRITEAHEAD_GROUP` | replay `group` (WAL cursor) |
 * | `WRITEAHEAD_OFFSETS` | mirror `offsets` (`preserve`/`dense`) |
 * | `WRITEAHEAD_ON_OFFSET_RESET` | mirror `onOffsetReset` (`error`/`earliest`) |
 * | `WRITEAHEAD_FROM` | `from`: `earliest`, `latest`, an offset, or an ISO date / `@<ms>` for a timestamp |
 * | `WRITEAHEAD_PARTITIONER` | replay `partitioner` (`same`/`murmur2`) |
 * | `WRITEAHEAD_SOURCE` | replay `source` |
 * | `WRITEAHEAD_SOLE_WRITER` | replay `soleWriter` (`false` for at-least-once) |
 * | `WRITEAHEAD_CREATE_TOPIC` | replay `createTopic` (`true`) |
 * | `WRITEAHEAD_HTTP_PORT`, `WRITEAHEAD_HTTP_HOST` | `httpPort`, `httpHost` |
 * | `WRITEAHEAD_LAG_INTERVAL_MS` | `lagIntervalMs` |
 * | `WRITEAHEAD_START_TIMEOUT_MS` | `startTimeoutMs` |
 *
 * A malformed value is INVALID_OPTION naming the variable.
 */
export function optionsFromEnv (env: Record<string, string | undefined> = process.env): EnvOptions {
  const bad = (name: string, why: string): WalError => new WalError('INVALID_OPTION', `environment ${name}: ${why}`, { option: name })
  const get = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const int = (name: string, min = 0): number | undefined => {
    const v = get(name)
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw bad(name, `must be an integer >= ${min}, got ${JSON.stringify(v)}`)
    return Number(v)
  }
  const bool = (name: string): boolean | undefined => {
    const v = get(name)?.toLowerCase()
    if (v === undefined) return undefined
    if (['1', 'true', 'yes', 'on'].includes(v)) return true
    if (['0', 'false', 'no', 'off'].includes(v)) return false
    throw bad(name, `must be true or false, got ${JSON.stringify(v)}`)
  }
  const file = (name: string): Buffer | undefined => {
    const v = get(name)
    if (v === undefined) return undefined
    try {
      return fs.readFileSync(v)
    } catch (err) {
      throw bad(name, `cannot read ${v}: ${(err as Error).message}`)
    }
  }
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = get(name)
    if (v === undefined) return undefined
    if (!allowed.includes(v as T)) throw bad(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`)
    return v as T
  }
  const out: EnvOptions = {}
  const brokers = get('KAFKA_BROKERS')
  const kafka: Partial<BridgeKafkaOptions> = {}
  if (brokers !== undefined) kafka.brokers = brokers.split(',').map((b) => b.trim()).filter((b) => b !== '')
  const clientId = get('KAFKA_CLIENT_ID')
  if (clientId !== undefined) kafka.clientId = clientId
  const ca = file('KAFKA_SSL_CA_FILE')
  const cert = file('KAFKA_SSL_CERT_FILE')
  const key = file('KAFKA_SSL_KEY_FILE')
  const reject = bool('KAFKA_SSL_REJECT_UNAUTHORIZED')
  const ssl = bool('KAFKA_SSL')
  if (ca !== undefined || cert !== undefined || key !== undefined || reject !== undefined) {
    if (ssl === false) throw bad('KAFKA_SSL', 'is false but TLS files or settings are given')
    const t: tls.ConnectionOptions = {}
    if (ca !== undefined) t.ca = [ca]
    if (cert !== undefined) t.cert = cert
    if (key !== undefined) t.key = key
    if (reject !== undefined) t.rejectUnauthorized = reject
    kafka.ssl = t
  } else if (ssl !== undefined) kafka.ssl = ssl
  const mechanism = oneOf('KAFKA_SASL_MECHANISM', ['plain', 'scram-sha-256', 'scram-sha-512'] as const)
  const username = get('KAFKA_SASL_USERNAME')
  const password = env.KAFKA_SASL_PASSWORD
  if (mechanism !== undefined) {
    if (username === undefined || password === undefined) throw bad('KAFKA_SASL_MECHANISM', 'needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD')
    kafka.sasl = { mechanism, username, password } as SASLOptions
  } else if (username !== undefined) throw bad('KAFKA_SASL_USERNAME', 'needs KAFKA_SASL_MECHANISM')
  const ct = int('KAFKA_CONNECTION_TIMEOUT_MS', 1)
  if (ct !== undefined) kafka.connectionTimeoutMs = ct
  const rt = int('KAFKA_REQUEST_TIMEOUT_MS', 1)
  if (rt !== undefined) kafka.requestTimeoutMs = rt
  if (Object.keys(kafka).length > 0) out.kafka = kafka as BridgeKafkaOptions

  const dir = get('WRITEAHEAD_DIR')
  if (dir !== undefined) out.dir = dir
  const topic = get('WRITEAHEAD_TOPIC')
  if (topic !== undefined) out.topic = topic
  const groupId = get('WRITEAHEAD_KAFKA_GROUP_ID')
  if (groupId !== undefined) out.groupId = groupId
  const group = get('WRITEAHEAD_GROUP')
  if (group !== undefined) out.group = group
  const offsets = oneOf('WRITEAHEAD_OFFSETS', ['preserve', 'dense'] as const)
  if (offsets !== undefined) out.offsets = offsets
  const onReset = oneOf('WRITEAHEAD_ON_OFFSET_RESET', ['error', 'earliest'] as const)
  if (onReset !== undefined) out.onOffsetReset = onReset
  const from = get('WRITEAHEAD_FROM')
  if (from !== undefined) {
    const parsed = parseFrom(from)
    if (parsed === null) throw bad('WRITEAHEAD_FROM', `must be earliest, latest, an offset, @<ms> or an ISO date, got ${JSON.stringify(from)}`)
    out.from = parsed
  }
  const partitioner = oneOf('WRITEAHEAD_PARTITIONER', ['same', 'murmur2'] as const)
  if (partitioner !== undefined) out.partitioner = partitioner
  const source = get('WRITEAHEAD_SOURCE')
  if (source !== undefined) out.source = source
  const sole = bool('WRITEAHEAD_SOLE_WRITER')
  if (sole !== undefined) out.soleWriter = sole
  const create = bool('WRITEAHEAD_CREATE_TOPIC')
  if (create !== undefined) out.createTopic = create
  const port = int('WRITEAHEAD_HTTP_PORT')
  if (port !== undefined) {
    if (port > 65535) throw bad('WRITEAHEAD_HTTP_PORT', 'must be at most 65535')
    out.httpPort = port
  }
  const host = get('WRITEAHEAD_HTTP_HOST')
  if (host !== undefined) out.httpHost = host
  const lag = int('WRITEAHEAD_LAG_INTERVAL_MS')
  if (lag !== undefined) out.lagIntervalMs = lag
  const st = int('WRITEAHEAD_START_TIMEOUT_MS', 1)
  if (st !== undefined) out.startTimeoutMs = st
  return out
}
