#!/usr/bin/env node
// Start/stop a background single-node Kafka broker for local development.
//
//   node test/kafka/cli.js up       start (or reuse) a broker; prints host:port as the last line
//   node test/kafka/cli.js down     stop it and delete its data
//   node test/kafka/cli.js status   print host:port if running (exit 1 if not)
//   node test/kafka/cli.js restart  stop and start the same broker (same port, same data)
//
// e.g.  export KAFKA_BROKERS=$(node test/kafka/cli.js up 2>/dev/null | tail -n1)
//
// State lives in $WRITEAHEAD_KAFKA_STATE or <tmpdir>/writeahead-kafka-cli-<hash of project path>/.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KAFKA_VERSION, PROJECT_ROOT, isAlive, probe, startBroker, stopPid } from './broker.js';

const stateDir =
  process.env.WRITEAHEAD_KAFKA_STATE ||
  path.join(os.tmpdir(), `writeahead-kafka-cli-${createHash('sha256').update(PROJECT_ROOT).digest('hex').slice(0, 8)}`);
const stateFile = path.join(stateDir, 'state.json');
const brokerDir = path.join(stateDir, 'broker');

const info = (msg) => process.stderr.write(`${msg}\n`);

async function readState() {
  try {
    return JSON.parse(await fsp.readFile(stateFile, 'utf8'));
  } catch {
    return null;
  }
}

/** True if pid is alive and is the java process that runs our broker directory. */
function ownsPid(state) {
  if (!state?.pid || !isAlive(state.pid)) return false;
  try {
    return fs.readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').includes(`-Dwriteahead.kafka.dir=${state.dir}`);
  } catch {
    return true; // no /proc: trust the pid
  }
}

async function stopRunning(state) {
  if (ownsPid(state)) await stopPid(state.pid);
}

async function start({ fresh }) {
  if (fresh) await fsp.rm(brokerDir, { recursive: true, force: true });
  await fsp.mkdir(stateDir, { recursive: true });
  const t0 = Date.now();
  const broker = await startBroker({ logDir: brokerDir, watchParent: false });
  const state = {
    pid: broker.pid,
    brokers: broker.brokers,
    version: KAFKA_VERSION,
    dir: broker.dir,
    logFile: broker.logFile,
    startedAt: new Date().toISOString(),
  };
  await fsp.writeFile(stateFile, JSON.stringify(state, null, 2));
  info(`Kafka ${KAFKA_VERSION} broker running (pid ${state.pid}, started in ${Date.now() - t0} ms)`);
  info(`log: ${state.logFile}`);
  info(`stop with: node test/kafka/cli.js down`);
  process.stdout.write(`${state.brokers}\n`);
}

async function main(cmd) {
  const state = await readState();
  switch (cmd) {
    case 'up': {
      if (ownsPid(state) && (await probe(Number(state.brokers.split(':').pop())))) {
        info(`Kafka broker already running (pid ${state.pid}), log: ${state.logFile}`);
        process.stdout.write(`${state.brokers}\n`);
        return 0;
      }
      await stopRunning(state); // alive but not answering
      await start({ fresh: true });
      return 0;
    }
    case 'restart': {
      await stopRunning(state);
      await start({ fresh: !fs.existsSync(path.join(brokerDir, 'broker.json')) });
      return 0;
    }
    case 'down': {
      if (!state) {
        info('No Kafka broker is running.');
        return 0;
      }
      await stopRunning(state);
      await fsp.rm(stateDir, { recursive: true, force: true });
      info(`Kafka broker ${state.brokers} stopped.`);
      return 0;
    }
    case 'status': {
      if (ownsPid(state) && (await probe(Number(state.brokers.split(':').pop())))) {
        info(`Kafka broker running (pid ${state.pid}), log: ${state.logFile}`);
        process.stdout.write(`${state.brokers}\n`);
        return 0;
      }
      info('No Kafka broker is running.');
      return 1;
    }
    default:
      info('usage: node test/kafka/cli.js up|down|status|restart');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err) => {
    info(err?.stack || String(err));
    process.exit(1);
  },
);
