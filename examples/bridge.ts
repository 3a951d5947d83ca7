/**
 * A Kafka bridge process: mirror a topic into a WAL, or replay a WAL into a topic, until SIGTERM.
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 WRITEAHEAD_DIR=./data WRITEAHEAD_TOPIC=events \
 *     node dist/examples/bridge.js mirror
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 WRITEAHEAD_DIR=./data WRITEAHEAD_TOPIC=events-copy \
 *   WRITEAHEAD_GROUP=to-kafka WRITEAHEAD_HTTP_PORT=9464 node dist/examples/bridge.js replay
 *
 * Every setting comes from the environment (see optionsFromEnv in writeahead/kafka: SASL, TLS,
 * start position, partitioner, HTTP port...). It logs one JSON line per event and a lag line every
 * 10 s; with WRITEAHEAD_HTTP_PORT it serves /healthz and Prometheus /metrics. SIGTERM or SIGINT
 * stops it gracefully (exit 0); a fatal error (unreachable brokers at start, unknown topic, bad
 * credentials) exits 1. Lost connections later are retried with backoff.
 */
import { WalError } from 'writeahead'
import { optionsFromEnv, runMirror, runReplay, type RunMirrorOptions, type RunReplayOptions } from 'writeahead/kafka'

async function main (): Promise<void> {
  const kind = process.argv[2]
  if (kind !== 'mirror' && kind !== 'replay') {
    process.stderr.write('usage: bridge.js mirror|replay   (configured by KAFKA_* and WRITEAHEAD_* environment variables)\n')
    process.exitCode = 2
    return
  }
  const env = optionsFromEnv(process.env)
  if (env.kafka === undefined || env.dir === undefined || env.topic === undefined) {
    throw new WalError('INVALID_OPTION', 'KAFKA_BROKERS, WRITEAHEAD_DIR and WRITEAHEAD_TOPIC are required')
  }
  const common = { ...env, kafka: env.kafka, dir: env.dir, topic: env.topic }
  if (kind === 'mirror') {
    const from = env.from === 'earliest' || env.from === 'latest' ? env.from : undefined
    const options: RunMirrorOptions = { ...common, from }
    await runMirror(options)
  } else {
    const options: RunReplayOptions = { ...common, live: true }
    await runReplay(options)
  }
}

main().catch(() => {
  // runMirror / runReplay already logged the error as a structured 'fatal' line.
  process.exitCode = 1
})
