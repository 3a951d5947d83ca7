// Measures mirror() in 'dense' mode on a gap-heavy topic, where every record is a run of its own in
// the checkpoint (a compacted topic: offsets 0, 2, 4, ...). A port that hands out such batches from
// memory stands in for Kafka, so the time is the mirror's and the WAL's, not the broker's.
//
//   npm run build && node test/kafka/bench-dense-gaps.js [records=100000] [perBatch=1000] [repeats=3]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mirror, mirrorCheckpoint, checkpointName } from '../../dist/connectors/kafka/index.js';
import { WriteAhead } from '../../dist/src/index.js';

const [records = 100_000, perBatch = 1000, repeats = 3] = process.argv.slice(2).map(Number);
const topic = 'gaps';

/** A KafkaPort whose one partition holds `n` records at even offsets, fetched `per` at a time. */
function gapPort(n, per) {
  const high = 2 * n;
  return {
    async describe() { return [{ partition: 0, low: 0, high }]; },
    async consume(o) {
      let stopped = false;
      const value = Buffer.from('v'.repeat(16));
      (async () => {
        const from = o.position(0);
        let i = typeof from === 'number' ? Math.ceil(from / 2) : 0;
        while (!stopped && i < n) {
          const messages = [];
          for (const end = Math.min(n, i + per); i < end; i++) messages.push({ offset: 2 * i, key: null, value, headers: [], timestamp: 0 });
          await o.onBatch({ partition: 0, messages, nextOffset: messages.at(-1).offset + 2, highWatermark: high });
        }
      })().catch((err) => o.onError(err));
      return { async commit() {}, async stop() { stopped = true; } };
    },
    async producer() { throw new Error('not used'); },
    async tail() { return []; },
    async close() {},
  };
}

const times = [];
for (let r = 0; r < repeats; r++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-bench-dense-gaps-'));
  try {
    const wal = await WriteAhead.open(dir, { partitions: 1 });
    const t0 = process.hrtime.bigint();
    const m = await mirror({ kafka: gapPort(records, perBatch), topic, wal, offsets: 'dense', stopAtEnd: true });
    const done = await m.done;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cp = mirrorCheckpoint(wal, topic, 0);
    if (done.records !== records || cp.runs.length !== records || cp.next !== 2 * records) throw new Error(`mirrored ${done.records} records, ${cp.runs.length} runs, next ${cp.next}`);
    const raw = wal.checkpoint(0, checkpointName(topic)).toString();
    if (JSON.stringify(JSON.parse(raw)) !== raw) throw new Error('the checkpoint is not what JSON.stringify writes');
    await wal.close();
    times.push(ms);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
times.sort((a, b) => a - b);
console.log(`${records} gap-separated records, ${perBatch} per batch: ${times.map((t) => (t / 1000).toFixed(2)).join(' s, ')} s (median ${(times[times.length >> 1] / 1000).toFixed(2)} s)`);
