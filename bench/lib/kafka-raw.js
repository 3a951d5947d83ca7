#!/usr/bin/env node
// kafkajs alone, in a process of its own: the baselines of bench/kafka.js. The connectors patch
// kafkajs's record decoder and encoder process-wide (connectors/kafka/kafkajs-port.ts: ordered
// headers, and a header fold cheaper than kafkajs's own; kafkajs-encoder.ts: the same bytes for less
// CPU), so a raw client in the bench's process would measure kafkajs plus those patches, not kafkajs.
//
//   node bench/lib/kafka-raw.js produce|consume <brokers> <topic> <records> <partitions> <valueBytes>
// Prints one JSON line: { ms, steady } (see steady() in bench/kafka.js).
import { randomUUID } from 'node:crypto'
import kafkajs from 'kafkajs'
import { message, steady, consumerOpts, BATCH } from './kafka-shared.js'

const { Kafka, logLevel } = kafkajs
const [mode, brokers, topic, records, partitions, valueBytes] = process.argv.slice(2)
const RECORDS = Number(records)
const kafka = new Kafka({ clientId: 'writeahead-bench-raw', brokers: brokers.split(','), logLevel: logLevel.NOTHING })

/** Idempotent producer, acks -1, BATCH messages per send, one send at a time. */
async function rawProduce () {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  const st = steady()
  const t0 = performance.now()
  for (let s = 0; s < RECORDS; s += BATCH) {
    const messages = []
    for (let i = s; i < Math.min(RECORDS, s + BATCH); i++) messages.push(message(i, Number(partitions), Number(valueBytes)))
    await producer.send({ topic, acks: -1, messages })
    st.batch(messages.length)
  }
  const ms = performance.now() - t0
  await producer.disconnect()
  return { ms, steady: st.rate() }
}

/** A consumer group that counts messages until all arrived (join included). */
async function rawConsume () {
  const consumer = kafka.consumer({ groupId: `raw-${randomUUID()}`, ...consumerOpts })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const st = steady()
  const t0 = performance.now()
  let n = 0
  await new Promise((resolve, reject) => {
    consumer.run({
      eachBatch: async ({ batch }) => {
        n += batch.messages.length
        st.batch(batch.messages.length)
        if (n >= RECORDS) resolve()
      }
    }).catch(reject)
  })
  const ms = performance.now() - t0
  await consumer.disconnect()
  return { ms, steady: st.rate() }
}

const result = mode === 'produce' ? await rawProduce() : mode === 'consume' ? await rawConsume() : null
if (result === null) throw new Error(`unknown mode ${mode}: produce or consume`)
process.stdout.write(JSON.stringify(result) + '\n')
