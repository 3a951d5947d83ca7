// replay() options checked when it is called, before any broker is reached (none is needed here).
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kafkaClient } from './fixtures/kafka-records.js';
import { replay } from '../dist/connectors/kafka/index.js';
import { WriteAhead } from '../dist/src/index.js';

test('createTopic: partitions and replicationFactor of Infinity are INVALID_OPTION when replay() is called', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-replay-opts-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await (await WriteAhead.open(dir)).close();
  const nowhere = kafkaClient('127.0.0.1:1', 'replay-opts');
  for (const [createTopic, option] of [[{ partitions: Infinity }, 'createTopic.partitions'], [{ replicationFactor: Infinity }, 'createTopic.replicationFactor']]) {
    const err = await t.throwsAsync(replay({ kafka: nowhere, topic: 't', wal: dir, createTopic, startTimeoutMs: 1000 }), { code: 'INVALID_OPTION' }, JSON.stringify(createTopic));
    t.is(err?.details.option, option);
  }
});
