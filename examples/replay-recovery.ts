/**
 * Rebuild a Kafka topic from the WAL, from an offset or a point in time, with a progress bar and a
 * final summary (records, bytes, duration, offsets skipped as gaps).
 *
 *   node dist/examples/replay-recovery.js ./data events-restored --brokers 127.0.0.1:9092 \
 *     --from 2024-05-01T12:00:00Z --create
 *
 * --from takes an offset (every partition), an ISO date or @<milliseconds> (the first record at or
 * after that time), 'earliest' (default) or 'latest'. Replay is the only writer of the restored
 * topic here, so running the command again after an interruption sends nothing twice: each record
 * carries its WAL partition and offset as headers, and replay reads the topic's tail on start.
 */
import { Command } from 'commander'
import cliProgress from 'cli-progress'
import { WriteAhead } from 'writeahead'
import { createKafka, optionsFromEnv, parseFrom, replay, type ReplayFrom } from 'writeahead/kafka'

function fromOption (v: string): ReplayFrom {
  const from = parseFrom(v)
  if (from === null) throw new Error(`--from: expected an offset, an ISO date, @<ms>, earliest or latest; got ${v}`)
  return from
}

function human (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let n = bytes
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

async function main (): Promise<void> {
  const program = new Command()
    .name('replay-recovery')
    .argument('<dir>', 'the WAL directory')
    .argument('<topic>', 'the topic to rebuild')
    .option('--brokers <list>', 'host:port,... (default: $KAFKA_BROKERS)')
    .option('--from <position>', 'offset, ISO date, @<ms>, earliest or latest', 'earliest')
    .option('--partitioner <same|murmur2>', 'target partition: same number, or by key hash', 'same')
    .option('--create', 'create the topic if it is missing (as many partitions as the WAL)')
    .parse()
  const [dir, topic] = program.args as [string, string]
  const opts = program.opts<{ brokers?: string, from: string, partitioner: 'same' | 'murmur2', create?: boolean }>()
  const env = optionsFromEnv(process.env)
  const kafkaOptions = { ...env.kafka, brokers: opts.brokers ?? env.kafka?.brokers ?? '' }
  const silent = (): void => {}
  const kafka = createKafka(kafkaOptions, silent)

  const wal = await WriteAhead.open(dir, { readOnly: true })
  const started = Date.now()
  const bar = new cliProgress.SingleBar({
    format: 'replay {bar} {percentage}% | {value}/{total} offsets | {records} records | {eta_formatted}',
    hideCursor: true
  }, cliProgress.Presets.shades_classic)
  // Ctrl-C or SIGTERM: stop after the round in flight, print what was sent, and leave the terminal
  // as it was (the bar hides the cursor until it is stopped). Run the command again to continue.
  let running: Awaited<ReturnType<typeof replay>> | undefined
  let interrupted = false
  const interrupt = (): void => { interrupted = true; void running?.stop() }
  process.once('SIGINT', interrupt)
  process.once('SIGTERM', interrupt)
  try {
    const r = await replay({ kafka, wal, topic, from: fromOption(opts.from), partitioner: opts.partitioner, createTopic: opts.create === true })
    running = r
    if (interrupted) void r.stop() // during the connection
    // Progress in offsets (gaps included), from where each partition started to where it stops.
    const first = r.status().partitions
    const startAt = new Map(first.map((p) => [p.partition, p.next]))
    const total = first.reduce((n, p) => n + Math.max(0, p.end - p.next), 0)
    bar.start(total, 0, { records: 0 })
    r.on('batch', () => {
      const s = r.status()
      const done = s.partitions.reduce((n, p) => n + Math.max(0, p.next - (startAt.get(p.partition) ?? p.next)), 0)
      bar.update(done, { records: s.records })
    })
    const summary = await r.done
    if (!interrupted) bar.update(total, { records: summary.records })
    bar.stop()
    const seconds = (Date.now() - started) / 1000
    process.stdout.write([
      `topic      ${topic}`,
      `records    ${summary.records}`,
      `bytes      ${human(summary.bytes)} (${summary.bytes})`,
      `duration   ${seconds.toFixed(1)} s (${Math.round(summary.records / Math.max(seconds, 0.001))} records/s)`,
      `gaps       ${summary.gaps} offsets skipped (compaction, transaction markers)`,
      `already    ${summary.skipped} records were in the topic already`,
      ...(interrupted ? ['stopped    interrupted: run the same command again to send the rest'] : []),
      ''
    ].join('\n'))
  } finally {
    process.off('SIGINT', interrupt)
    process.off('SIGTERM', interrupt)
    bar.stop()
    await wal.close()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`replay-recovery: ${(err as Error).message}\n`)
  process.exitCode = 1
})
