/**
 * A Kafka bridge process: mirror a topic into a WAL, or replay a WAL into a topic, until SIGTERM.
 *
 * Mirror topic `events` (it must exist: mirror never creates its source topic) into ./data:
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 WRITEAHEAD_DIR=./data WRITEAHEAD_TOPIC=events \
 *     node dist/examples/bridge.js mirror
 *
 * Replay ./data into topic `events-copy`, created if missing (as many partitions as the log):
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 WRITEAHEAD_DIR=./data WRITEAHEAD_TOPIC=events-copy \
 *   WRITEAHEAD_GROUP=to-kafka WRITEAHEAD_CREATE_TOPIC=true WRITEAHEAD_HTTP_PORT=9464 \
 *     node dist/examples/bridge.js replay
 *
 * Every setting comes from the environment (see optionsFromEnv in writeahead/kafka: SASL, TLS,
 * start position, partitioner, HTTP port...). It logs one JSON line per event and a lag line every
 * 10 s (info and warnings on stdout, errors on stderr); with WRITEAHEAD_HTTP_PORT it serves /healthz
 * and Prometheus /metrics. SIGTERM or SIGINT stops it gracefully (exit 0); a fatal error (a missing
 * or bad setting, unreachable brokers at start, unknown topic, bad credentials) writes a JSON
 * 'fatal' line on stderr and exits 1. Lost connections later are retried with backoff.
 */
import { WalError } from 'writeahead'
import { optionsFromEnv, runMirror, runReplay, type RunMirrorOptions, type RunReplayOptions } from 'writeahead/kafka'

/** Set once runMirror / runReplay runs: from then on, they log their own 'fatal' line. */
let bridgeLogs = false

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
    // WRITEAHEAD_FROM serves replay too, which also takes an offset or a time; mirror starts only
    // at earliest or latest. Refused rather than dropped: a mirror from the earliest offset is not
    // what someone who set it asked for.
    const from = env.from
    if (from !== undefined && from !== 'earliest' && from !== 'latest') {
      throw new WalError('INVALID_OPTION', `environment WRITEAHEAD_FROM: mirror starts at earliest or latest, got ${JSON.stringify(from)}`, { option: 'WRITEAHEAD_FROM' })
    }
    const options: RunMirrorOptions = { ...common, from }
    bridgeLogs = true
    await runMirror(options)
  } else {
    const options: RunReplayOptions = { ...common, live: true }
    bridgeLogs = true
    await runReplay(options)
  }
}

main().catch((err: unknown) => {
  // runMirror / runReplay log their error as a structured 'fatal' line on stderr; an error before
  // them (a missing or bad environment variable) is logged here the same way.
  if (!bridgeLogs) {
    const e = err as { message?: string, code?: string, details?: unknown }
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'fatal', msg: 'failed', error: e?.message ?? String(err), code: e?.code, details: e?.details }) + '\n')
  }
  // Exit now: kafkajs may still be retrying a connection, which would delay the exit for seconds.
  process.exit(1)
})
