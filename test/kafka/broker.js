// A real single-node Apache Kafka broker (KRaft, combined broker+controller)
// for the test suite. Node builtins only.
//
// The broker's jars come from Maven Central through test/kafka/pom.xml
// (`mvn dependency:copy-dependencies`) and are cached, so only the first run
// needs Maven to download anything. Everything listens on 127.0.0.1 only.
//
//   import { startBroker, stopBroker, restartBroker } from './kafka/broker.js'
//   const broker = await startBroker()          // { brokers: '127.0.0.1:PORT', ... }
//   await broker.restart()                      // same ports, same data
//   await broker.stop()                         // or: await stopBroker()
//
// Environment knobs (all optional):
//   WRITEAHEAD_KAFKA_CACHE     where the jars are cached
//                              (default <project>/node_modules/.cache/writeahead-kafka)
//   WRITEAHEAD_KAFKA_LIBS      use this directory of jars instead (e.g. $KAFKA_HOME/libs)
//   WRITEAHEAD_KAFKA_HEAP      max heap (default 512m)
//   WRITEAHEAD_KAFKA_START_TIMEOUT_MS  how long to wait for the broker (default 120000)
//   JAVA_HOME                  java is $JAVA_HOME/bin/java when set, else `java` on PATH

import { spawn, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROJECT_ROOT = path.resolve(HERE, '..', '..');
export const POM = path.join(HERE, 'pom.xml');
const POM_TEXT = fs.readFileSync(POM, 'utf8');
export const KAFKA_VERSION = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(POM_TEXT)[1];
export const HOST = '127.0.0.1';

const STARTED_LINE = 'Kafka Server started';
const STOP_TIMEOUT_MS = 20_000;
const DEFAULT_START_TIMEOUT_MS = 120_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function cacheRoot() {
  return process.env.WRITEAHEAD_KAFKA_CACHE || path.join(PROJECT_ROOT, 'node_modules', '.cache', 'writeahead-kafka');
}

function javaBin() {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

// ---------------------------------------------------------------------------
// Jars

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n$ ${cmd} ${args.join(' ')}\n${String(stdout).slice(-4000)}${String(stderr).slice(-4000)}`;
        reject(err);
      } else resolve({ stdout, stderr });
    });
  });
}

async function readManifest(dir) {
  try {
    const jars = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')).jars;
    for (const jar of jars) await fsp.access(path.join(dir, jar));
    return jars;
  } catch {
    return null;
  }
}

/**
 * Make sure the broker's jars are on disk; returns the directory holding them.
 * Runs Maven only when the cache is missing or incomplete.
 */
export async function ensureJars() {
  if (process.env.WRITEAHEAD_KAFKA_LIBS) return path.resolve(process.env.WRITEAHEAD_KAFKA_LIBS);
  const hash = createHash('sha256').update(POM_TEXT).digest('hex').slice(0, 10);
  const dir = path.join(cacheRoot(), `${KAFKA_VERSION}-${hash}`);
  if (await readManifest(dir)) return dir;

  // Download into a private directory, then rename it into place, so that
  // concurrent test processes never see a half-filled cache.
  await fsp.mkdir(cacheRoot(), { recursive: true });
  const tmp = await fsp.mkdtemp(path.join(cacheRoot(), `.tmp-${KAFKA_VERSION}-`));
  try {
    const libs = path.join(tmp, 'libs');
    try {
      await run('mvn', ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`], {
        cwd: HERE,
      });
    } catch (err) {
      if (err.code === 'ENOENT') err.message = `Maven (mvn) is needed to fetch Kafka ${KAFKA_VERSION}: ${err.message}`;
      else err.message = `Fetching Kafka ${KAFKA_VERSION} jars with Maven failed: ${err.message}`;
      throw err;
    }
    const jars = (await fsp.readdir(libs)).filter((f) => f.endsWith('.jar')).sort();
    if (!jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
      throw new Error(`Maven did not produce kafka_2.13-${KAFKA_VERSION}.jar in ${libs}`);
    }
    await fsp.writeFile(path.join(libs, 'manifest.json'), JSON.stringify({ version: KAFKA_VERSION, jars }, null, 2));
    try {
      await fsp.rename(libs, dir);
    } catch (err) {
      // Someone else won the race; use theirs if it is complete.
      if (!(await readManifest(dir))) throw err;
    }
    return dir;
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Helpers

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. */
function randomClusterId() {
  // As Kafka's Uuid.randomUuid(): never one starting with '-', which the CLI would take for an option.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function tail(file, bytes = 6000) {
  try {
    const fh = await fsp.open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, bytes);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '(no log)';
  }
}

/** Watches a growing file (from its current end) for a line containing `needle`. */
function logWatcher(file, needle) {
  let pos = fs.existsSync(file) ? fs.statSync(file).size : 0;
  let carry = '';
  return {
    async seen() {
      const fh = await fsp.open(file, 'r');
      try {
        const { size } = await fh.stat();
        if (size <= pos) return false;
        const buf = Buffer.alloc(size - pos);
        await fh.read(buf, 0, buf.length, pos);
        pos = size;
        const text = carry + buf.toString('utf8');
        carry = text.slice(-needle.length);
        return text.includes(needle);
      } finally {
        await fh.close();
      }
    },
  };
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A zombie still "exists" for kill(0); treat it as dead.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

/**
 * One Kafka ApiVersions (v0) round trip on the broker's port. Resolves true
 * when the broker answers with error_code 0.
 */
export function probe(port, host = HOST, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        // size, correlation_id, error_code
        done(buf.readInt32BE(4) === 0x7a11 && buf.readInt16BE(8) === 0);
      }
    });
    sock.on('connect', () => {
      const clientId = Buffer.from('probe');
      const req = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
      let o = req.writeInt32BE(req.length - 4, 0);
      o = req.writeInt16BE(18, o); // ApiVersions
      o = req.writeInt16BE(0, o); // v0
      o = req.writeInt32BE(0x7a11, o); // correlation id
      o = req.writeInt16BE(clientId.length, o);
      clientId.copy(req, o);
      sock.write(req);
    });
  });
}

// Kills the broker if the Node process that started it dies without stopping
// it (crash, SIGKILL, test timeout), so brokers never outlive the test run.
const WATCHDOG = `
const [parent, child] = process.argv.slice(1, 3).map(Number);
const dir = process.argv[3];
const finish = () => {
  if (dir) try { require('node:fs').rmSync(dir, { recursive: true, force: true }); } catch {}
  process.exit(0);
};
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const kill = (sig) => { try { process.kill(-child, sig); } catch { try { process.kill(child, sig); } catch {} } };
const watch = setInterval(() => {
  if (!alive(child)) process.exit(0); // stopped normally: its owner cleans up
  if (!alive(parent)) {
    clearInterval(watch);
    kill('SIGTERM');
    setTimeout(() => { kill('SIGKILL'); setTimeout(finish, 1000); }, 15000);
    setInterval(() => { if (!alive(child)) finish(); }, 200);
  }
}, 500);
`;

// ---------------------------------------------------------------------------
// Broker

function serverProperties({ dataDir, port, controllerPort }) {
  return `# Generated by test/kafka/broker.js
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=${HOST}:${controllerPort}
listeners=PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}
advertised.listeners=PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${dataDir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a crash (SIGKILL) the controller refuses the restarted broker's
# registration until the old session expires: keep that short.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=2000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.segment.bytes=16777216
log.retention.check.interval.ms=300000
# A compacted topic's rolled segment is cleaned within a moment, not after 15 s; the dedupe map
# of a test topic needs little memory.
log.cleaner.backoff.ms=100
log.cleaner.dedupe.buffer.size=8388608
`;
}

const LOG4J2 = `# Generated by test/kafka/broker.js: everything goes to stdout (the broker log file).
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
# Config dumps (hundreds of lines per component); unknown keys are still logged at WARN.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = WARN
`;

function jvmArgs(cfg, libs) {
  return [
    `-Xms64m`,
    `-Xmx${process.env.WRITEAHEAD_KAFKA_HEAP || '512m'}`,
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    '-Djava.net.preferIPv4Stack=true',
    `-Dlog4j2.configurationFile=${cfg.log4jFile}`,
    // Keep logging through Kafka's own shutdown (log4j's hook would stop it first).
    '-Dlog4j2.shutdownHookEnabled=false',
    `-Dkafka.logs.dir=${cfg.dir}`,
    // Marks the process so `down` can recognise it (and pgrep can find it).
    `-Dwriteahead.kafka.dir=${cfg.dir}`,
    '-cp',
    path.join(libs, '*'),
  ];
}

async function loadOrCreateConfig(dir) {
  await fsp.mkdir(dir, { recursive: true });
  const cfgFile = path.join(dir, 'broker.json');
  let cfg;
  try {
    cfg = JSON.parse(await fsp.readFile(cfgFile, 'utf8'));
  } catch {
    cfg = null;
  }
  if (!cfg) {
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    cfg = { version: KAFKA_VERSION, clusterId: randomClusterId(), port, controllerPort, formatted: false };
  }
  Object.assign(cfg, {
    dir,
    dataDir: path.join(dir, 'data'),
    propsFile: path.join(dir, 'server.properties'),
    log4jFile: path.join(dir, 'log4j2.properties'),
    logFile: path.join(dir, 'broker.log'),
    cfgFile,
  });
  await fsp.writeFile(cfg.propsFile, serverProperties(cfg));
  await fsp.writeFile(cfg.log4jFile, LOG4J2);
  return cfg;
}

async function saveConfig(cfg) {
  const { version, clusterId, port, controllerPort, formatted } = cfg;
  await fsp.writeFile(cfg.cfgFile, JSON.stringify({ version, clusterId, port, controllerPort, formatted }, null, 2));
}

async function formatStorage(cfg, libs) {
  const args = [
    ...jvmArgs(cfg, libs),
    'kafka.tools.StorageTool',
    'format',
    '--config',
    cfg.propsFile,
    '--cluster-id',
    cfg.clusterId,
    '--standalone',
    '--ignore-formatted',
  ];
  try {
    const { stdout, stderr } = await run(javaBin(), args, { cwd: cfg.dir });
    await fsp.appendFile(cfg.logFile, `--- kafka-storage format\n${stdout}${stderr}`);
  } catch (err) {
    if (err.code === 'ENOENT') err.message = `java is needed to run the Kafka broker: ${err.message}`;
    else err.message = `Formatting Kafka storage in ${cfg.dataDir} failed: ${err.message}`;
    throw err;
  }
  cfg.formatted = true;
  await saveConfig(cfg);
}

class Broker {
  constructor(cfg, libs, { watchParent, temporary }) {
    this.cfg = cfg;
    this.temporary = temporary;
    this.libs = libs;
    this.watchParent = watchParent;
    this.child = null;
    this.pid = null;
    this.dir = cfg.dir;
    this.logFile = cfg.logFile;
    this.port = cfg.port;
    this.controllerPort = cfg.controllerPort;
    this.host = HOST;
    this.brokers = `${HOST}:${cfg.port}`;
    this.clusterId = cfg.clusterId;
  }

  get running() {
    return this.pid != null && isAlive(this.pid);
  }

  async start({ timeoutMs } = {}) {
    if (this.running) return this;
    timeoutMs ??= Number(process.env.WRITEAHEAD_KAFKA_START_TIMEOUT_MS) || DEFAULT_START_TIMEOUT_MS;
    const { cfg } = this;
    for (const p of [cfg.port, cfg.controllerPort]) {
      if (!(await portIsFree(p))) throw new Error(`Cannot start Kafka: ${HOST}:${p} is already in use`);
    }
    if (!cfg.formatted) await formatStorage(cfg, this.libs);

    const log = logWatcher(cfg.logFile, STARTED_LINE);
    const fd = fs.openSync(cfg.logFile, 'a');
    let child;
    try {
      child = spawn(javaBin(), [...jvmArgs(cfg, this.libs), 'kafka.Kafka', cfg.propsFile], {
        cwd: cfg.dir,
        detached: true, // own process group: `stop` signals the whole group
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    let spawnError = null;
    child.once('error', (err) => (spawnError = err));
    child.unref();
    this.child = child;
    this.pid = child.pid;
    if (this.watchParent && child.pid) {
      const args = [String(process.pid), String(child.pid), ...(this.temporary ? [cfg.dir] : [])];
      spawn(process.execPath, ['-e', WATCHDOG, ...args], {
        detached: true,
        stdio: 'ignore',
      }).unref();
    }

    const deadline = Date.now() + timeoutMs;
    let sawStarted = false;
    for (;;) {
      if (spawnError) {
        const err = spawnError;
        if (err.code === 'ENOENT') err.message = `java is needed to run the Kafka broker: ${err.message}`;
        throw err;
      }
      if (child.exitCode != null || child.signalCode != null || (child.pid && !isAlive(child.pid))) {
        this.pid = null;
        throw await this.#failure(`Kafka broker exited during startup (code ${child.exitCode}, signal ${child.signalCode})`);
      }
      if (!sawStarted) sawStarted = await log.seen();
      if (sawStarted && (await probe(cfg.port))) return this;
      if (Date.now() > deadline) {
        await this.stop();
        throw await this.#failure(`Kafka broker did not become ready within ${timeoutMs} ms`);
      }
      await sleep(sawStarted ? 50 : 200);
    }
  }

  async #failure(message) {
    return new Error(`${message}\nport ${this.brokers}, dir ${this.dir}\n--- tail of ${this.logFile}\n${await tail(this.logFile)}`);
  }

  async stop({ timeoutMs = STOP_TIMEOUT_MS } = {}) {
    const pid = this.pid;
    if (pid == null) return;
    await stopPid(pid, { timeoutMs, child: this.child });
    this.pid = null;
    this.child = null;
  }

  /** SIGKILL the broker (a crash, not a clean shutdown). */
  async kill() {
    const pid = this.pid;
    if (pid == null) return;
    await stopPid(pid, { timeoutMs: 0, child: this.child, signal: 'SIGKILL' });
    this.pid = null;
    this.child = null;
  }

  async restart(opts) {
    await this.stop();
    return this.start(opts);
  }

  /** Stop (if running) and delete the broker's directory. */
  async destroy() {
    await this.stop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM the process group, then SIGKILL it after timeoutMs. */
export async function stopPid(pid, { timeoutMs = STOP_TIMEOUT_MS, child, signal: first = 'SIGTERM' } = {}) {
  const signal = (sig) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  const exited = () => (child ? child.exitCode != null || child.signalCode != null : !isAlive(pid));
  if (exited()) return;
  signal(first);
  const deadline = Date.now() + timeoutMs;
  while (!exited() && Date.now() < deadline) await sleep(50);
  if (!exited()) {
    signal('SIGKILL');
    const hard = Date.now() + 10_000;
    while (!exited() && Date.now() < hard) await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// Module-level API

const started = new Set();
let current = null;

function killAllSync() {
  for (const b of started) {
    if (b.pid != null && b.watchParent) {
      try {
        process.kill(-b.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
let hooksInstalled = false;
function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAllSync);
}

/**
 * Start a broker.
 * @param {object} [opts]
 * @param {string} [opts.logDir]  the broker's directory (config, data, broker.log).
 *   Reused if it already holds a broker (same ports, cluster id and data);
 *   default: a fresh directory under os.tmpdir(), deleted by stop().
 * @param {boolean} [opts.watchParent=true]  kill the broker when this process dies.
 * @param {number} [opts.timeoutMs]  startup deadline.
 * @returns {Promise<{brokers: string, host: string, port: number, dir: string, logFile: string,
 *   pid: number, running: boolean, start: Function, stop: Function, kill: Function, restart: Function}>}
 */
export async function startBroker({ logDir, watchParent = true, timeoutMs } = {}) {
  const libs = await ensureJars();
  const temporary = !logDir;
  const dir = logDir ? path.resolve(logDir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'writeahead-kafka-'));
  const cfg = await loadOrCreateConfig(dir);
  const broker = new Broker(cfg, libs, { watchParent, temporary });
  started.add(broker);
  installExitHooks();
  current = broker;
  const handle = {
    brokers: broker.brokers,
    host: broker.host,
    port: broker.port,
    controllerPort: broker.controllerPort,
    clusterId: broker.clusterId,
    dir: broker.dir,
    logFile: broker.logFile,
    get pid() {
      return broker.pid;
    },
    get running() {
      return broker.running;
    },
    /** Start again after stop({ keep: true }) or a crash; same ports and data. */
    start: async (o) => {
      await broker.start(o);
      return handle;
    },
    /** Stop the broker. A temporary directory is deleted unless keep is true. */
    stop: async ({ keep = !temporary } = {}) => {
      if (keep) await broker.stop();
      else {
        await broker.destroy();
        started.delete(broker);
        if (current === broker) current = null;
      }
    },
    /** SIGKILL the broker (simulated crash); start() brings it back with its data. */
    kill: async () => {
      await broker.kill();
    },
    /** Stop and start the same broker: same ports, cluster and data. */
    restart: async (o) => {
      await broker.restart(o);
      return handle;
    },
  };
  try {
    await broker.start({ timeoutMs });
  } catch (err) {
    started.delete(broker);
    if (current === broker) current = null;
    throw err; // the directory is kept so its broker.log can be read
  }
  return handle;
}

/** Stop the most recently started broker (deleting it if it is temporary). */
export async function stopBroker(opts) {
  const b = current;
  if (!b) return;
  current = null;
  started.delete(b);
  if (opts?.keep ?? !b.temporary) await b.stop();
  else await b.destroy();
}

/** Restart the most recently started broker on the same ports and data. */
export async function restartBroker(opts) {
  if (!current) throw new Error('restartBroker: no broker was started');
  await current.restart(opts);
  return current.brokers;
}
