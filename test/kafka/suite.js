// Shared setup for the Kafka test files: one broker per file (KAFKA_BROKERS if set), never skipped:
// a broker that cannot start fails the file's tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import kafkajs from 'kafkajs';
import { startBroker } from './broker.js';

/**
 * A fresh broker creates __consumer_offsets on the first group request, and answers
 * COORDINATOR_NOT_AVAILABLE meanwhile: wait for a group coordinator before the tests start, so the
 * first consumer of a test does not spend its retries on it. kafkajs retries that answer itself
 * (with backoff up to about a minute), so one request is enough.
 */
async function warmUp(brokers) {
  const kafka = new kafkajs.Kafka({
    clientId: 'writeahead-warmup',
    brokers: brokers.split(','),
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 40 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.describeGroups(['writeahead-warmup']);
  } catch (err) {
    throw new Error(`Kafka at ${brokers} has no group coordinator: ${err.message}`);
  } finally {
    await admin.disconnect();
  }
}

/** own: always start a broker, even with KAFKA_BROKERS (for tests that stop and start it). */
export function useBroker(test, { own = false } = {}) {
  const state = { broker: null, brokers: own ? null : process.env.KAFKA_BROKERS || null };
  // Serial: a file's own before hooks (declared after this) run once the broker is up.
  test.serial.before(async () => {
    if (!state.brokers) {
      state.broker = await startBroker(); // throws with the tail of broker.log on failure
      state.brokers = state.broker.brokers;
    }
    await warmUp(state.brokers);
  });
  test.after.always(async () => {
    if (state.broker) await state.broker.stop();
  });
  return state;
}

/**
 * Runs a child fixture (node script + JSON argument). `onLine(obj, child)` sees each JSON line it
 * prints. Resolves with { code, signal, lines } when it exits.
 */
export function runChild(script, arg, { onLine, timeoutMs = 120_000 } = {}) {
  const child = spawn(process.execPath, [script, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      return;
    }
    lines.push(obj);
    onLine?.(obj, child);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not exit within ${timeoutMs} ms\n${stderr.slice(-4000)}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines, stderr });
    });
  });
}

/** `tmp(name)` makes a fresh directory under the OS temp dir; all are removed after the file's tests. */
export function tempDirs(test) {
  const dirs = [];
  test.after.always(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return (name) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `wal-${name}-`));
    dirs.push(d);
    return d;
  };
}
