// Starting and stopping the daemon: state directory, database, bootstrap records,
// credentials, and one listener per configured door. The one place where services are
// made and wired: each gets what it needs in its constructor, is started in order, and
// stopped in the reverse order. A restart (after a pool role change) does both in the
// same process: every service is made anew, as a new process would make it.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { generate } from 'selfsigned';
import pino, { type Logger } from 'pino';
import { ObjectStore } from './db/store.js';
import { SessionManager } from './auth/sessions.js';
import { bootstrap } from './host/bootstrap.js';
import { buildApp, closeApps } from './rpc/http.js';
import { TaskManager } from './tasks/manager.js';
import { ChangeFeed } from './events/feed.js';
import { EventService } from './events/service.js';
import type { Daemon } from './api/context.js';
import type { Transport } from './core/context.js';
import { NetworkService } from './network/service.js';
import { defaultNetworkMode, type NetworkMode } from './network/namespace.js';
import { StorageService } from './storage/service.js';
import { startStorage } from './storage/startup.js';
import { selectDriver, type DriverChoice } from '../drivers/select.js';
import { HostAdmin } from './host/admin.js';
import { VmHotplug } from './vm/hotplug.js';
import { VmService } from './vm/service.js';
import { xmlRecordCodec } from './rpc/record-codec.js';
import { PoolRole } from './pool/role.js';

export interface Config {
  stateDir: string;
  listen?: string;
  httpsListen?: string;
  unixSockets: string[];
  tlsCert?: string;
  tlsKey?: string;
  rootPasswordFile?: string;
  logLevel: string;
  sessionTimeoutSec: number;
  maxSessionsPerUser: number;
  authFailureDelayMs: number;
  bodyLimit: number;
  taskTtlSec: number;
  /** Seconds between housekeeping passes (session expiry, task sweep, log pruning). */
  gcIntervalSec: number;
  /** host, namespace (the default without the xl driver) or none; see src/network/namespace.ts. */
  networkMode?: NetworkMode;
  /** Work in this existing network namespace instead of one of xapid's own. */
  netns?: string;
  /** Stand-in NICs made on a first start in namespace (or none) mode (default 2). */
  simNics?: number;
  /** Hypervisor driver: xl, sim, or auto (xl where Xen is found, else the simulator). */
  driver?: DriverChoice;
  /** The simulator's delays: 1 is realistic, 0 removes them (default 1). */
  simDelayScale?: number;
  /** Seconds a clean shutdown, reboot or suspend may take (default 1200). */
  shutdownTimeoutSec?: number;
  /** A guest crashing this soon after start is not restarted (default 120 s). */
  crashGuardSec?: number;
  /** A guest restarting this soon after start is restarted after a growing delay (default 60 s). */
  rebootGuardSec?: number;
}

export interface Running {
  /** The services of the current run: a restart makes new ones. */
  readonly daemon: Daemon;
  readonly urls: string[];
  stop(): Promise<void>;
  /** Stops the listeners and services (in reverse order) and starts them again from the
   * same configuration and state directory, reading the pool role afresh: how a role
   * change takes effect. The listeners come back on the same addresses. Sessions of the
   * old run that the new role does not keep end, tasks left pending fail, and the driver
   * reloads its state, as after a restart of the process. */
  restart(): Promise<void>;
}

/** One run of the daemon, from its start to its stop. */
interface Run {
  daemon: Daemon;
  urls: string[];
  stop(): Promise<void>;
}

type HostPort = { host: string; port: number };

/** Where the listeners go: what the configuration says, then (after the first start) the
 * ports actually bound, so that a restart does not move a listener asked for on port 0. */
interface Doors {
  http?: HostPort;
  https?: HostPort;
  unix: string[];
}

function splitHostPort(s: string): HostPort {
  const i = s.lastIndexOf(':');
  if (i < 0) return { host: '127.0.0.1', port: Number(s) };
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

async function tlsMaterial(cfg: Config, log: Logger): Promise<{ key: string; cert: string }> {
  if (cfg.tlsCert && cfg.tlsKey) return { cert: readFileSync(cfg.tlsCert, 'utf8'), key: readFileSync(cfg.tlsKey, 'utf8') };
  const certFile = path.join(cfg.stateDir, 'xapi-ssl.crt');
  const keyFile = path.join(cfg.stateDir, 'xapi-ssl.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    log.info('generating a self-signed TLS certificate');
    const pems = await generate([{ name: 'commonName', value: 'xapid' }], { keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 10 * 365 * 86400_000) });
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    writeFileSync(certFile, pems.cert);
  }
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** First start: root's password from the environment, a file, or freshly generated. */
async function ensureRootPassword(cfg: Config, sessions: SessionManager, log: Logger): Promise<void> {
  if (sessions.hasPassword('root')) return;
  let pw = process.env.XAPID_ROOT_PASSWORD;
  if (!pw && cfg.rootPasswordFile) pw = readFileSync(cfg.rootPasswordFile, 'utf8').replace(/\r?\n$/, '');
  if (pw) {
    await sessions.setPassword('root', pw);
    log.info('root password set from %s', process.env.XAPID_ROOT_PASSWORD ? 'XAPID_ROOT_PASSWORD' : cfg.rootPasswordFile);
    return;
  }
  const file = path.join(cfg.stateDir, 'initial-root-password');
  pw = randomBytes(12).toString('base64url');
  writeFileSync(file, `${pw}\n`, { mode: 0o600 });
  await sessions.setPassword('root', pw);
  log.warn({ file }, `no root password was given (XAPID_ROOT_PASSWORD or --root-password-file): generated one, readable only by its owner in ${file}; change it with session.change_password`);
}

export async function startDaemon(cfg: Config, log: Logger = pino({ level: cfg.logLevel })): Promise<Running> {
  const doors: Doors = {
    http: cfg.listen ? splitHostPort(cfg.listen) : undefined,
    https: cfg.httpsListen ? splitHostPort(cfg.httpsListen) : undefined,
    unix: cfg.unixSockets,
  };
  let run = await startRun(cfg, log, doors);
  let stopped = false;
  // One stop or restart at a time: a stop asked for during a restart waits for it.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (fn: () => Promise<void>): Promise<void> => {
    const next = queue.then(fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    get daemon() { return run.daemon; },
    get urls() { return run.urls; },
    stop: () => serial(async () => {
      if (stopped) return;
      stopped = true;
      await run.stop();
    }),
    restart: () => serial(async () => {
      if (stopped) throw new Error('the daemon is stopped');
      log.info('restarting the daemon in place');
      await run.stop();
      try {
        run = await startRun(cfg, log, doors);
      } catch (e) {
        // Everything of the old run is stopped already; nothing of the new one is left.
        stopped = true;
        throw e;
      }
      log.info({ urls: run.urls, role: run.daemon.role.role.kind }, 'xapid restarted');
    }),
  };
}

async function startRun(cfg: Config, log: Logger, doors: Doors): Promise<Run> {
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
  const role = PoolRole.load(cfg.stateDir, log);
  const store = new ObjectStore(path.join(cfg.stateDir, 'xapid.db'));
  try {
    return await runOn(cfg, log, doors, role, store);
  } catch (e) {
    // A start that fails at any step leaves no database handle behind (closing twice is harmless).
    store.close();
    throw e;
  }
}

async function runOn(cfg: Config, log: Logger, doors: Doors, role: PoolRole, store: ObjectStore): Promise<Run> {
  const identity = bootstrap(store);
  const sessions = new SessionManager(store, {
    idleTimeoutMs: cfg.sessionTimeoutSec * 1000,
    maxPerUser: cfg.maxSessionsPerUser,
    authFailureDelayMs: cfg.authFailureDelayMs,
  }, () => identity.hostRef, role);
  await ensureRootPassword(cfg, sessions, log);
  const tasks = new TaskManager(store, identity.hostRef, log, { ttlMs: cfg.taskTtlSec * 1000, maxFinished: 1000 }, (s) => sessions.lastActive(s));
  const interrupted = tasks.recoverAfterRestart();
  if (interrupted > 0) log.warn({ tasks: interrupted }, 'tasks left pending by the previous run were marked failed');
  const feed = new ChangeFeed(store, { memory: 100_000, retain: 1_000_000 });
  const events = new EventService(store, feed, { nextBoundMs: 60_000, maxQueue: 100_000 });
  sessions.onEnd((ref) => {
    tasks.sessionEnded(ref);
    events.sessionEnded(ref);
  });
  const { hostRef, poolRef } = identity;
  const { driver, why } = selectDriver({ choice: cfg.driver ?? 'auto', stateDir: cfg.stateDir, simDelayScale: cfg.simDelayScale ?? 1, log: (msg, detail) => log.warn(detail ?? {}, msg) });
  log.info({ driver: driver.name }, why);
  // Hot-plug needs only the database and the driver; storage and networking use it, the
  // VM service uses those.
  const hotplug = new VmHotplug(store, driver);
  const storage = new StorageService({ store, log, hostRef, stateDir: cfg.stateDir, devices: hotplug });
  const network = new NetworkService({
    store, log, hostRef, stateDir: cfg.stateDir, hotplug: hotplug.vifs,
    mode: cfg.networkMode ?? defaultNetworkMode(driver.name), netns: cfg.netns, simNics: cfg.simNics,
  });
  // Made before anything starts: the VM service reads the operations a previous run left
  // behind before the storage layer's start clears them.
  const vms = new VmService({
    store, log, hostRef, poolRef, driver, storage, network, records: xmlRecordCodec, stateDir: cfg.stateDir,
    shutdownTimeoutMs: (cfg.shutdownTimeoutSec ?? 1200) * 1000,
    crashGuardMs: (cfg.crashGuardSec ?? 120) * 1000, rebootGuardMs: (cfg.rebootGuardSec ?? 60) * 1000, metricsIntervalMs: 5000,
  });
  const host = new HostAdmin({ store, hostRef, stateDir: cfg.stateDir });
  let vmsOpened = false;
  const stopServices = async () => {
    if (vmsOpened) await vms.close();
    storage.stop();
    await network.stop();
    store.close();
  };
  try {
    host.start();
    await network.start();
    await startStorage(storage);
    vmsOpened = true;
    await vms.open();
  } catch (e) {
    await stopServices().catch(() => undefined);
    throw e;
  }
  const daemon: Daemon = { store, sessions, tasks, events, network, storage, vms, host, role, log, hostRef, poolRef };

  const apps: FastifyInstance[] = [];
  const urls: string[] = [];
  const open = async (transport: Transport, where: HostPort | { path: string }, https?: { key: string; cert: string }) => {
    const app = buildApp(daemon, transport, { bodyLimit: cfg.bodyLimit, https });
    apps.push(app);
    if ('path' in where) {
      mkdirSync(path.dirname(where.path), { recursive: true });
      rmSync(where.path, { force: true });
      await app.listen({ path: where.path });
      chmodSync(where.path, 0o600);
      urls.push(`unix:${where.path}`);
    } else {
      const addr = await app.listen({ host: where.host, port: where.port });
      // A restart binds the port this start was given.
      where.port = (app.server.address() as AddressInfo).port;
      urls.push(addr);
    }
    log.info({ url: urls.at(-1), transport }, 'listening');
  };

  try {
    if (doors.http) await open('http', doors.http);
    if (doors.https) await open('https', doors.https, await tlsMaterial(cfg, log));
    for (const p of doors.unix) await open('unix', { path: p });
  } catch (e) {
    await closeApps(apps);
    await stopServices();
    throw e;
  }

  const sweeper = setInterval(() => {
    try {
      sessions.sweep();
      tasks.sweep();
      feed.prune();
    } catch (err) {
      log.error({ err }, 'housekeeping failed');
    }
  }, cfg.gcIntervalSec * 1000);
  sweeper.unref();

  let stopped = false;
  return {
    daemon,
    urls,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(sweeper);
      feed.stop();
      await closeApps(apps);
      sessions.sweep();
      await stopServices();
    },
  };
}
