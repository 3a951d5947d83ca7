// The bridges' boundary without a broker: options from the environment, and failures before
// anything connects (a fatal JSON line, then the error), as `writeahead mirror|replay` report them.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mirror, optionsFromEnv, parseFrom, replay, runMirror, runReplay } from '../dist/connectors/kafka/index.js';
import { WalError, WriteAhead } from '../dist/src/index.js';
import { run as runCli } from './fixtures/cli-run.js';

test('boolean options of replay and mirror must be booleans, and soleWriter: true needs provenance', async (t) => {
  const { Kafka } = await import('kafkajs');
  const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'writeahead-bool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // 'false' is truthy: a replay asked not to be live would have tailed for ever.
  for (const [option, extra] of [['live', { live: 'false' }], ['soleWriter', { soleWriter: 0 }], ['provenance', { provenance: 'no' }], ['createTopic', { createTopic: 'yes' }],
    ['soleWriter', { soleWriter: true, provenance: false }]]) {
    const err = await t.throwsAsync(replay({ kafka, topic: 't', wal: dir, ...extra }), { code: 'INVALID_OPTION' }, JSON.stringify(extra));
    t.is(err.details.option, option);
  }
  const m = await t.throwsAsync(mirror({ kafka, topic: 't', wal: dir, stopAtEnd: 'true' }), { code: 'INVALID_OPTION' });
  t.is(m.details.option, 'stopAtEnd');
  t.deepEqual(fs.readdirSync(dir), [], 'nothing was created');
});

test('WRITEAHEAD_FROM: an offset or @<ms> that is not an exact integer is INVALID_OPTION naming the variable', (t) => {
  for (const v of ['99999999999999999999', '9007199254740993', '@99999999999999999999']) {
    const err = t.throws(() => optionsFromEnv({ WRITEAHEAD_FROM: v }), { code: 'INVALID_OPTION' }, v);
    t.is(err.details.option, 'WRITEAHEAD_FROM');
    t.is(parseFrom(v), null);
  }
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '9007199254740991' }), { from: 9007199254740991 });
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '@0' }), { from: { timestamp: 0 } });
});

test('an HTTP port in use or out of range fails the bridge like any fatal error: a WalError, a fatal line, exit 2 from the CLI', async (t) => {
  const busy = net.createServer();
  await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = busy.address().port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-bridge-http-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await (await WriteAhead.open(dir)).close();
  for (const [httpPort, code] of [[port, 'IO_ERROR'], [70000, 'INVALID_OPTION']]) {
    for (const run of [runReplay, runMirror]) {
      const logs = [];
      const err = await t.throwsAsync(run({ kafka: { brokers: '127.0.0.1:1' }, dir, topic: 't', httpPort, log: (e) => logs.push(e), handleSignals: false }), { instanceOf: WalError, code });
      t.regex(err.message, new RegExp(`HTTP server on 127\\.0\\.0\\.1:${httpPort}`));
      t.like(logs.at(-1), { level: 'fatal', msg: 'failed', code });
    }
  }
  const cli = await runCli(['replay', '--brokers', '127.0.0.1:1', '--topic', 't', '--dir', dir, '--http-port', String(port)]);
  t.is(cli.code, 2);
  const lines = cli.stderr.trim().split('\n');
  t.like(JSON.parse(lines.at(-2)), { level: 'fatal', msg: 'failed', code: 'IO_ERROR' });
  t.regex(lines.at(-1), /^error: HTTP server on 127\.0\.0\.1:\d+: .*EADDRINUSE.* \(IO_ERROR\)$/);
});
