// Starting and stopping the daemon: state directory, database, bootstrap records,
// credentials, and one listener per configured door.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { generate } from 'selfsigned';
import pino, { type Logger } from 'pino';
import { ObjectStore } from './db/store.js';
import { SessionManager } from './auth/sessions.js';
import { bootstrap } from './host/bootstrap.js';
import { buildApp } from './rpc/http.js';
import { TaskManager } from './tasks/manager.js';
import { ChangeFeed } from './events/feed.js';
import { EventService } from './events/service.js';
import type { Daemon, Transport } from './api/context.js';

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
}

export interface Running {
  daemon: Daemon;
  urls: string[];
  stop(): Promise<void>;
}

function splitHostPort(s: string): { host: string; port: number } {
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
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
  const store = new ObjectStore(path.join(cfg.stateDir, 'xapid.db'));
  const identity = bootstrap(store);
  const sessions = new SessionManager(store, {
    idleTimeoutMs: cfg.sessionTimeoutSec * 1000,
    maxPerUser: cfg.maxSessionsPerUser,
    authFailureDelayMs: cfg.authFailureDelayMs,
  }, () => identity.hostRef);
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
  const daemon: Daemon = { store, sessions, tasks, events, log, hostRef: identity.hostRef, poolRef: identity.poolRef };

  const apps: FastifyInstance[] = [];
  const urls: string[] = [];
  const open = async (transport: Transport, where: { host: string; port: number } | { path: string }, https?: { key: string; cert: string }) => {
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
      urls.push(addr);
    }
    log.info({ url: urls.at(-1), transport }, 'listening');
  };

  try {
    if (cfg.listen) await open('http', splitHostPort(cfg.listen));
    if (cfg.httpsListen) await open('https', splitHostPort(cfg.httpsListen), await tlsMaterial(cfg, log));
    for (const p of cfg.unixSockets) await open('unix', { path: p });
  } catch (e) {
    await Promise.allSettled(apps.map((a) => a.close()));
    store.close();
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
  }, 30_000);
  sweeper.unref();

  return {
    daemon,
    urls,
    async stop() {
      clearInterval(sweeper);
      await Promise.allSettled(apps.map((a) => a.close()));
      sessions.sweep();
      store.close();
    },
  };
}
