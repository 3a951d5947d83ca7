import type { Command } from 'commander'
import { CliError, EXIT_CODES_HELP, usageError } from '../errors.js'
import { parseNonNegative, parsePositive } from '../common.js'

/** What connectors/kafka/bridge.ts exports (being written); only the shape the CLI relies on. */
interface Bridge {
  runMirror (opts: Record<string, unknown>): Promise<unknown>
  runReplay (opts: Record<string, unknown>): Promise<unknown>
  optionsFromEnv (env: NodeJS.ProcessEnv): Record<string, unknown>
}

interface KafkaOptions {
  brokers?: string
  topic?: string
  dir?: string
  group?: string
  from?: string
  offsetPreserving?: boolean
  partitioner?: string
  partitions?: number
  metricsPort?: number
  clientId?: string
  saslMechanism?: string
  saslUsername?: string
  saslPassword?: string
  tls?: boolean
  tlsCa?: string
  tlsCert?: string
  tlsKey?: string
  tlsInsecure?: boolean
}

async function loadBridge (): Promise<Bridge> {
  // dist/src/cli/commands/kafka.js -> dist/connectors/kafka/bridge.js; a variable specifier, so the
  // CLI builds whether or not the connector exists yet.
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

function addCommon (cmd: Command): Command {
  return cmd
    .option('--brokers <list>', 'comma-separated Kafka brokers, host:port (env KAFKA_BROKERS)')
    .option('--topic <name>', 'Kafka topic')
    .option('--dir <dir>', 'log directory')
    .option('--client-id <id>', 'Kafka client id')
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port (/metrics)', parseNonNegative)
    .option('--sasl-mechanism <mechanism>', 'plain, scram-sha-256 or scram-sha-512')
    .option('--sasl-username <user>', 'SASL user name')
    .option('--sasl-password <password>', 'SASL password (prefer the environment, see the connector docs)')
    .option('--tls', 'connect with TLS')
    .option('--tls-ca <file>', 'CA certificate(s), PEM')
    .option('--tls-cert <file>', 'client certificate, PEM')
    .option('--tls-key <file>', 'client key, PEM')
    .option('--tls-insecure', 'do not verify the broker certificate (testing only)')
}

/** CLI flags as bridge options; flags win over the environment (optionsFromEnv), defaults are the bridge's. */
function bridgeOptions (o: KafkaOptions): Record<string, unknown> {
  const opts: Record<string, unknown> = {}
  if (o.brokers !== undefined) opts.brokers = o.brokers.split(',').map((b) => b.trim()).filter(Boolean)
  for (const k of ['topic', 'dir', 'group', 'from', 'partitioner', 'partitions', 'metricsPort', 'clientId'] as const) {
    if (o[k] !== undefined) opts[k] = o[k]
  }
  if (o.offsetPreserving === true) opts.offsetPreserving = true
  if (o.saslMechanism !== undefined || o.saslUsername !== undefined || o.saslPassword !== undefined) {
    opts.sasl = { mechanism: o.saslMechanism, username: o.saslUsername, password: o.saslPassword }
  }
  if (o.tls === true || o.tlsCa !== undefined || o.tlsCert !== undefined || o.tlsKey !== undefined || o.tlsInsecure === true) {
    opts.ssl = { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey, rejectUnauthorized: o.tlsInsecure !== true }
  }
  return opts
}

async function run (kind: 'mirror' | 'replay', o: KafkaOptions): Promise<void> {
  if (o.partitioner !== undefined && o.partitioner !== 'same' && o.partitioner !== 'murmur2') throw usageError(`--partitioner must be same or murmur2, got '${o.partitioner}'`)
  const bridge = await loadBridge()
  // SIGINT/SIGTERM abort `signal`; a bridge that returns a handle instead gets close() or stop().
  const abort = new AbortController()
  const opts = { ...bridge.optionsFromEnv(process.env), ...bridgeOptions(o), signal: abort.signal }
  const stopped = new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }))
  const onSignal = (): void => abort.abort()
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const result = await (kind === 'mirror' ? bridge.runMirror(opts) : bridge.runReplay(opts)) as { close?: () => unknown, stop?: () => unknown } | undefined
    const stop = result?.close ?? result?.stop
    if (typeof stop === 'function') {
      await stopped
      await stop.call(result)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

export function register (program: Command): void {
  addCommon(program.command('mirror')
    .description('mirror a Kafka topic into the log (one WAL partition per Kafka partition)'))
    .option('--group <id>', 'Kafka consumer group id of the mirror')
    .option('--from <position>', 'where to start when the log has no checkpoint: earliest (default) or latest')
    .option('--offset-preserving', 'store each record at its Kafka offset (explicit offsets; gaps allowed)')
    .option('--partitioner <name>', 'same (default): Kafka partition n goes to WAL partition n; murmur2: by key, as the Java client')
    .option('--partitions <n>', 'number of WAL partitions (murmur2)', parsePositive)
    .addHelpText('after', `
The source position is stored as a checkpoint in the same commit as the records, so a restart
resumes exactly after the last durable record. Stops cleanly on SIGINT/SIGTERM. Options may also
come from the environment (KAFKA_BROKERS, ...); flags win.

Examples:
  $ writeahead mirror --brokers localhost:9092 --topic orders --dir ./data --offset-preserving
  $ writeahead mirror --brokers b1:9093,b2:9093 --topic orders --dir ./data --tls --sasl-mechanism scram-sha-512 --sasl-username app
${EXIT_CODES_HELP}`)
    .action(async (o: KafkaOptions) => { await run('mirror', o) })

  addCommon(program.command('replay')
    .description('replay the log into a Kafka topic'))
    .option('--group <name>', 'WAL consumer group that records replay progress')
    .option('--from <position>', "earliest, latest, committed (default: the group's committed offset) or an offset")
    .option('--partitioner <name>', 'same (default): WAL partition n goes to Kafka partition n; murmur2: by key, as the Java client')
    .option('--partitions <n>', 'number of Kafka partitions (murmur2)', parsePositive)
    .addHelpText('after', `
Examples:
  $ writeahead replay --dir ./data --brokers localhost:9092 --topic orders-copy --group replay
  $ writeahead replay --dir ./data --brokers localhost:9092 --topic orders-copy --partitioner murmur2
${EXIT_CODES_HELP}`)
    .action(async (o: KafkaOptions) => { await run('replay', o) })
}
