// Smoke test against a real Kafka broker: KAFKA_BROKERS if set, otherwise a
// single-node KRaft broker started by test/kafka/broker.js. A broker that
// cannot start fails the test (in CI and locally alike); it is never skipped.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { startBroker } from './kafka/broker.js';
import { createTopic } from './fixtures/kafka-records.js';

const { Kafka, Partitioners, logLevel } = kafkajs;

let broker = null;
let brokers = process.env.KAFKA_BROKERS || null;

test.before(async () => {
  if (brokers) return;
  broker = await startBroker(); // throws with the tail of broker.log on failure
  brokers = broker.brokers;
});

test.after.always(async () => {
  if (broker) await broker.stop();
});

function client(id) {
  return new Kafka({
    clientId: `writeahead-smoke-${id}`,
    brokers: brokers.split(',').map((b) => b.trim()),
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
  });
}

test('produce and consume keys, values, duplicate headers and partitions', async (t) => {
  t.timeout(60_000);
  const kafka = client('t1');
  const topic = `smoke-${randomUUID()}`;

  await createTopic(kafka, topic, 3);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    t.is(meta.topics[0].partitions.length, 3);
  } finally {
    await admin.disconnect();
  }

  const sent = [0, 1, 2].map((i) => ({
    key: `key-${i}`,
    value: `value-${i}`,
    partition: i,
    headers: { trace: [`a-${i}`, `b-${i}`], single: `s-${i}` },
  }));

  // Idempotent: a produce retried right after the topic's creation (a leader not ready yet) must not
  // write a partition's message twice, or the count below would be wrong for the wrong reason.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const res = await producer.send({ topic, acks: -1, messages: sent });
    t.deepEqual(res.map((r) => r.partition).sort(), [0, 1, 2]);
    for (const r of res) t.is(r.errorCode, 0);
  } finally {
    await producer.disconnect();
  }

  const consumer = kafka.consumer({
    groupId: `smoke-${randomUUID()}`,
    sessionTimeout: 6000,
    rebalanceTimeout: 6000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 300,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
  });
  const received = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; received ${received.length}/3`)), 30_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            received.push({ partition, message });
            if (received.length === sent.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }

  received.sort((a, b) => a.partition - b.partition);
  t.deepEqual(
    received.map(({ partition, message }) => ({
      partition,
      offset: message.offset,
      key: message.key.toString(),
      value: message.value.toString(),
      headers: Object.fromEntries(
        Object.entries(message.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : String(v)]),
      ),
    })),
    sent.map(({ key, value, partition, headers }) => ({ partition, offset: '0', key, value, headers })),
  );
});
