import fs from 'node:fs'
import { Option, type Command } from 'commander'
import { WalError, WriteAhead } from '../../index.js'
import { CliError, EXIT_CODES_HELP, usageError } from '../errors.js'
import { requireLog, requireLogOrNothing } from '../layout.js'
import { ISO_TIME_HELP, parseIsoTime, parseNonNegative, parsePort, parsePositive } from '../common.js'

/** The part of connectors/kafka/bridge.ts the CLI uses. Options are the bridge's own (RunMirrorOptions, RunReplayOptions). */
interface Bridge {
  runMirror (opts: Record<string, unknown>): Promise<unknown>
  runReplay (opts: Record<string, unknown>): Promise<unknown>
  optionsFromEnv (env: NodeJS.ProcessEnv): Record<string, unknown>
}

interface Flags {
  brokers?: string
  topic?: string
  dir?: string
  clientId?: string
  httpPort?: number
  httpHost?: string
  lagInterval?: number
  startTimeout?: number
  saslMechanism?: string
  saslUsername?: string
  saslPassword?: string
  tls?: boolean
  tlsCa?: string
  tlsCert?: string
  tlsKey?: string
  tlsInsecure?: boolean
  // mirror
  groupId?: string
  offsets?: string
  stopAtEnd?: boolean
  onOffsetReset?: string
  // replay
  group?: string
  partitioner?: string
  partitions?: number[]
  source?: string
  sharedTopic?: boolean
  createTopic?: boolean
  maxBatchRecords?: number
  maxBatchBytes?: number
  // both
  from?: string
}

async function loadBridge (): Promise<Bridge> {
  // A variable specifier: the CLI is built and installed with or without the connector.
  const url = new URL('../../../connectors/kafka/bridge.js', import.meta.url).href
  try {
    return await import(url) as Bridge
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes('bridge.js')) {
      throw new CliError('UNAVAILABLE', 'the Kafka connector is not available in this build (connectors/kafka/bridge.js is missing)')
    }
    throw err
  }
}

function pem (file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    throw usageError(`${flag}: cannot read ${file}: ${(err as Error).message}`)
  }
}

/**
 * replay --from: earliest, latest, an offset, @<ms since the epoch> or an ISO-8601 time, the
 * bridge's `from`. Not the bridge's parseFrom, which falls back to Date.parse and so takes '-1' or
 * '1.5' for a time.
 */
export function parseReplayFrom (s: string): 'earliest' | 'latest' | number | { timestamp: number } {
  if (s === 'earliest' || s === 'latest') return s
  const digits = /^@?\d+$/.test(s) ? s.replace('@', '') : null
  if (digits !== null) {
    const n = Number(digits)
    if (!Number.isSafeInteger(n)) throw usageError(`--from ${s} is too large`)
    return s.startsWith('@') ? { timestamp: n } : n
  }
  const ms = parseIsoTime(s)
  if (ms === null) throw usageError(`--from must be earliest, latest, an offset, @<ms> or an ISO time, got '${s}'`)
  return { timestamp: ms }
}

function parsePartitions (value: string): number[] {
  return value.split(',').map((s) => parseNonNegative(s.trim()))
}

/** Connection flags as the bridge's `kafka` options, on top of what the environment gave. */
function kafkaOptions (o: Flags, env: Record<string, unknown> | undefined): Record<string, unknown> {
  const k: Record<string, unknown> = { ...env }
  if (o.brokers !== undefined) k.brokers = o.brokers.split(',').map((b) => b.trim()).filter(Boolean)
  if (o.clientId !== undefined) k.clientId = o.clientId
  if (o.saslMechanism !== undefined || o.saslUsername !== undefined || o.saslPassword !== undefined) {
    const password = o.saslPassword ?? process.env.KAFKA_SASL_PASSWORD
    if (o.saslMechanism === undefined || o.saslUsername === undefined || password === undefined) {
      throw usageError('SASL needs --sasl-mechanism, --sasl-username and a password (--sasl-password or KAFKA_SASL_PASSWORD)')
    }
    k.sasl = { mechanism: o.saslMechanism, username: o.saslUsername, password }
  }
  if (o.tls === true || o.tlsCa !== undefined || o.tlsCert !== undefined || o.tlsKey !== undefined || o.tlsInsecure === true) {
    const ssl: Record<string, unknown> = typeof k.ssl === 'object' && k.ssl !== null ? { ...k.ssl } : {}
    if (o.tlsCa !== undefined) ssl.ca = [pem(o.tlsCa, '--tls-ca')]
    if (o.tlsCert !== undefined) ssl.cert = pem(o.tlsCert, '--tls-cert')
    if (o.tlsKey !== undefined) ssl.key = pem(o.tlsKey, '--tls-key')
    if (o.tlsInsecure === true) ssl.rejectUnauthorized = false
    k.ssl = Object.keys(ssl).length === 0 ? true : ssl
  }
  return k
}

/** Flags over the environment (optionsFromEnv) over the bridge's defaults. */
function bridgeOptions (kind: 'mirror' | 'replay', o: Flags, env: Record<string, unknown>): Record<string, unknown> {
  const opts: Record<string, unknown> = { ...env, kafka: kafkaOptions(o, env.kafka as Record<string, unknown> | undefined) }
  const set = (key: string, v: unknown): void => { if (v !== undefined) opts[key] = v }
  set('topic', o.topic)
  set('dir', o.dir)
  set('httpPort', o.httpPort)
  set('httpHost', o.httpHost)
  set('lagIntervalMs', o.lagInterval)
  set('startTimeoutMs', o.startTimeout)
  if (kind === 'mirror') {
    set('groupId', o.groupId)
    set('offsets', o.offsets)
    set('stopAtEnd', o.stopAtEnd)
    set('onOffsetReset', o.onOffsetReset)
    if (o.from !== undefined) {
      if (o.from !== 'earliest' && o.from !== 'latest') throw usageError(`--from must be earliest or latest for mirror, got '${o.from}'`)
      opts.from = o.from
    }
  } else {
    set('group', o.group)
    set('partitioner', o.partitioner)
    set('partitions', o.partitions)
    set('source', o.source)
    if (o.sharedTopic === true) opts.soleWriter = false
    if (o.stopAtEnd === true) opts.live = false
    set('createTopic', o.createTopic)
    set('maxBatchRecords', o.maxBatchRecords)
    set('maxBatchBytes', o.maxBatchBytes)
    if (o.from !== undefined) opts.from = parseReplayFrom(o.from)
  }
  if (opts.topic === undefined) throw usageError('--topic (or WRITEAHEAD_TOPIC) is required')
  if (opts.dir === undefined) throw usageError('--dir (or WRITEAHEAD_DIR) is required')
  if ((opts.kafka as Record<string, unknown>).brokers === undefined) throw usageError('--brokers (or KAFKA_BROKERS) is required')
  return opts
}

/** replay --partitions: each one in the log. The connector checks only once Kafka has answered. */
async function requirePartitions (dir: string, partitions: number[] | undefined): Promise<void> {
  if (partitions === undefined) return
  const wal = await WriteAhead.open(dir, { readOnly: true })
  const n = wal.partitions
  await wal.close()
  const p = partitions.find((x) => x >= n)
  if (p !== undefined) throw new WalError('UNKNOWN_PARTITION', `--partitions: the log has no partition ${p} (partitions are 0..${n - 1})`, { partition: p })
}

async function run (kind: 'mirror' | 'replay', o: Flags): Promise<void> {
  const bridge = await loadBridge()
  const opts = bridgeOptions(kind, o, bridge.optionsFromEnv(process.env))
  // Replay reads an existing log: opening a missing one would create it, empty, and replay nothing.
  // Mirror creates one, but not in a file or a directory holding something else. Checked before
  // anything connects to Kafka or touches the directory.
  if (kind === 'replay') {
    requireLog(String(opts.dir))
    await requirePartitions(String(opts.dir), opts.partitions as number[] | undefined)
  } else requireLogOrNothing(String(opts.dir))
  // The bridge stops gracefully on SIGTERM/SIGINT, logs JSON lines (info and warnings on stdout,
  // errors and the 'fatal' line on stderr) and rejects with a WalError on a fatal error, which the
  // CLI reports on one more line on stderr, with exit code 2.
  await (kind === 'mirror' ? bridge.runMirror(opts) : bridge.runReplay(opts))
}

function addCommon (cmd: Command): Command {
  return cmd
    .option('--brokers <list>', 'comma-separated Kafka brokers, host:port (env KAFKA_BROKERS)')
    .option('--topic <name>', 'Kafka topic (env WRITEAHEAD_TOPIC)')
    .option('--dir <dir>', 'log directory (env WRITEAHEAD_DIR)')
    .option('--client-id <id>', 'Kafka client id (env KAFKA_CLIENT_ID)')
    .option('--http-port <port>', 'serve /healthz and Prometheus /metrics on this port (0 to 65535), 0 for any free port (env WRITEAHEAD_HTTP_PORT)', parsePort)
    .option('--http-host <host>', 'address for --http-port (default 127.0.0.1)')
    .option('--lag-interval <ms>', 'log a lag line this often, 0 for never (default 10000)', parseNonNegative)
    .option('--start-timeout <ms>', 'fail if Kafka cannot be reached at start within this time (default 30000)', parsePositive)
    .addOption(new Option('--sasl-mechanism <mechanism>', 'SASL mechanism (env KAFKA_SASL_MECHANISM)').choices(['plain', 'scram-sha-256', 'scram-sha-512']))
    .option('--sasl-username <user>', 'SASL user name (env KAFKA_SASL_USERNAME)')
    .option('--sasl-password <password>', 'SASL password; prefer the environment, KAFKA_SASL_PASSWORD, which stays out of `ps`')
    .option('--tls', 'connect with TLS (env KAFKA_SSL)')
    .option('--tls-ca <file>', 'CA certificate(s), PEM (env KAFKA_SSL_CA_FILE)')
    .option('--tls-cert <file>', 'client certificate, PEM (env KAFKA_SSL_CERT_FILE)')
    .option('--tls-key <file>', 'client key, PEM (env KAFKA_SSL_KEY_FILE)')
    .option('--tls-insecure', 'do not verify the broker certificate (testing only)')
}

const PROCESS_HELP = `
Runs until SIGTERM or SIGINT, then finishes the work in flight, checkpoints, commits and exits 0.
Reconnects with backoff when the brokers go away. Logs one JSON line per event, and a lag line
every --lag-interval: info and warnings on stdout, errors on stderr. A fatal error (unreachable
brokers at start, unknown topic, bad credentials) exits 2 after a JSON "fatal" line and one
"error: <message> (<CODE>)" line, both on stderr. Connection settings, topic, dir, group and
position can also come from the environment (named beside each flag; the full list is in
connectors/kafka/README.md); flags win. The delivery guarantees are in the README's Kafka bridge
section.`

export function register (program: Command): void {
  addCommon(program.command('mirror')
    .description('mirror a Kafka topic into the log, exactly once (topic partition n -> WAL partition n)'))
    .option('--group-id <id>', 'Kafka consumer group, committed only so Kafka tools show lag (default writeahead-mirror.<topic>)')
    .addOption(new Option('--offsets <mode>', 'preserve: WAL offset = Kafka offset (default); dense: the WAL numbers records itself').choices(['preserve', 'dense']))
    .addOption(new Option('--from <position>', 'where to start when the log holds no checkpoint of this topic (default earliest)').choices(['earliest', 'latest']))
    .option('--stop-at-end', 'stop once every partition reached the end seen at start')
    .addOption(new Option('--on-offset-reset <what>', "a checkpoint Kafka no longer has (records deleted before they were mirrored): error (default: OFFSET_TRIMMED / OFFSET_OUT_OF_RANGE), or earliest (continue from Kafka's earliest offset, logging a warn line)").choices(['error', 'earliest']))
    .addHelpText('after', `${PROCESS_HELP}

Examples:
  $ writeahead mirror --brokers 127.0.0.1:9092 --topic orders --dir ./data
  $ KAFKA_SASL_PASSWORD=... writeahead mirror --brokers b1:9093,b2:9093 --tls --sasl-mechanism scram-sha-512 --sasl-username app --topic orders --dir ./data --http-port 9464
${EXIT_CODES_HELP}`)
    .action(async (o: Flags) => { await run('mirror', o) })

  addCommon(program.command('replay')
    .description('replay an existing log into a Kafka topic (idempotent producer, acks -1)'))
    .option('--group <name>', 'WAL consumer group: start at its cursor, advance it after each acknowledgement')
    .option('--from <position>', `without a committed cursor: earliest (default), latest, an offset (a non-negative integer), @<ms since the epoch> or an ISO-8601 time, ${ISO_TIME_HELP} (a date alone is midnight UTC, a time without Z or an offset local time)`)
    .addOption(new Option('--partitioner <name>', 'same: WAL partition n -> topic partition n (default); murmur2: by key, as Kafka does').choices(['same', 'murmur2']))
    .option('--partitions <list>', 'only these WAL partitions, comma-separated', parsePartitions)
    .option('--source <name>', 'name this log in the provenance header: writeahead.position becomes "partition:offset:<name>"')
    .option('--shared-topic', 'other producers write the topic too: at least once, no tail check (soleWriter: false)')
    .option('--stop-at-end', 'stop at the end of the log seen at start instead of tailing it')
    .option('--create-topic', 'create the topic if missing (as many partitions as the log)')
    .option('--max-batch-records <n>', 'records per round (default 1000)', parsePositive)
    .option('--max-batch-bytes <n>', 'bytes per round (default 524288)', parsePositive)
    .addHelpText('after', `${PROCESS_HELP}

Examples:
  $ writeahead replay --brokers 127.0.0.1:9092 --dir ./data --topic orders-copy --group to-kafka --create-topic
  $ writeahead replay --brokers 127.0.0.1:9092 --dir ./data --topic orders-rebuilt --from 0 --stop-at-end
  $ writeahead replay --brokers 127.0.0.1:9092 --dir ./data --topic orders --partitioner murmur2 --from 2026-11-24T10:00:00Z
${EXIT_CODES_HELP}`)
    .action(async (o: Flags) => { await run('replay', o) })
}
