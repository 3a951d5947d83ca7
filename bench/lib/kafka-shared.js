// What bench/kafka.js and its raw kafkajs child (kafka-raw.js) share: the records, the consumer
// settings and the steady-state clock.

export const BATCH = 1000
export const consumerOpts = { sessionTimeout: 6000, rebalanceTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 }

const values = new Map()
/** Record i of a run: a key from 10,000, a fixed value, a header and a duplicated one. */
export function message (i, partitions, valueBytes) {
  let value = values.get(valueBytes)
  if (value === undefined) values.set(valueBytes, value = Buffer.alloc(valueBytes, 7))
  return {
    partition: i % partitions,
    key: Buffer.from(`key-${i % 10_000}`),
    value,
    headers: { trace: `t${i}`, hop: ['a', 'b'] },
    timestamp: String(Date.now())
  }
}

/**
 * Steady-state rate: records after the first batch, over the time from the first batch to the
 * last. Connecting, joining the group, opening the WAL and the final commits are the same few
 * hundred milliseconds whatever the record count, and they differ between the raw client and the
 * connectors (the connectors also read checkpoints and target tails), so end-to-end times at a
 * few hundred thousand records mostly compare startup. Both are reported; the ratios use this one.
 */
export function steady () {
  let first = -1
  let last = -1
  let n = 0
  return {
    batch (records) {
      const t = performance.now()
      if (first < 0) first = t
      else n += records
      last = t
    },
    rate () { return last > first ? n / ((last - first) / 1000) : NaN }
  }
}
