// A role change through PoolRole.setRole and Running.restart, in this process (the same
// calls the pool's join will make): the daemon comes back on the same addresses as a
// slave answering HOST_IS_SLAVE, then as a master again with its database intact, and
// each restart leaves nothing of the run before behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { startDaemon, type Config } from '../../src/daemon.js';
import { SECRET_FILE } from '../../src/pool/role.js';
import { RESTART_ERROR } from '../../src/tasks/manager.js';
import { ROOT_PASSWORD, tempDir } from '../helpers/daemon.js';
import { MASTER, MASTER_HOST, Recorder } from './helpers.js';

const LOGIN = ['root', ROOT_PASSWORD, '1.1', 'pool-restart-test'];

/** What this process holds that a run of the daemon makes: listeners, timers, child
 * processes, exit hooks. Equal before and after a restart when nothing is left behind. */
function footprint(): string {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  const children = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[1]) === process.pid && fields[0] !== 'Z';
    } catch {
      return false;
    }
  }).length;
  return JSON.stringify({ ...counts, children, exitHooks: process.listenerCount('exit') });
}

/** Polls until the footprint is `want` (some handles close a moment after a stop). */
async function settlesTo(want: string): Promise<void> {
  let now = footprint();
  for (let i = 0; i < 100 && now !== want; i++) {
    await sleep(50);
    now = footprint();
  }
  assert.equal(now, want, 'what the process holds after the restart');
}

test('setRole + restart: master → slave (HOST_IS_SLAVE) → master, same addresses, database intact, nothing left behind', async (t) => {
  const dir = tempDir('xapid-restart-');
  const pwFile = path.join(dir, 'root-password');
  writeFileSync(pwFile, `${ROOT_PASSWORD}\n`);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const cfg: Config = {
    stateDir: path.join(dir, 'state'), listen: '127.0.0.1:0', unixSockets: [path.join(dir, 'xapi.sock')], rootPasswordFile: pwFile,
    logLevel: 'info', sessionTimeoutSec: 86400, maxSessionsPerUser: 200, authFailureDelayMs: 10, bodyLimit: 1 << 24,
    taskTtlSec: 3600, gcIntervalSec: 30, driver: 'sim', simDelayScale: 0,
  };
  const running = await startDaemon(cfg, log);
  t.after(async () => {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const rec = new Recorder();
  const url = running.urls.find((u) => u.startsWith('http:'))!;
  const urls = [...running.urls];
  const secret = readFileSync(path.join(cfg.stateDir, SECRET_FILE), 'utf8').trim();

  // A master's run: a session, a change to the database, a task left pending.
  const s0 = await rec.value(url, 'json', 'session.login_with_password', LOGIN);
  const pool = (await rec.value(url, 'json', 'pool.get_all', [s0]))[0];
  await rec.value(url, 'xml', 'pool.set_name_label', [s0, pool, 'kept across restarts']);
  const task = await rec.value(url, 'json', 'task.create', [s0, 'left pending', '']);
  await sleep(200);
  const before = footprint();

  // A restart without a role change is a restart: the master's sessions survive it.
  await running.restart();
  assert.deepEqual(running.urls, urls);
  assert.equal((await rec.value(url, 'json', 'pool.get_all', [s0])).length, 1);
  assert.deepEqual(await rec.value(url, 'json', 'task.get_error_info', [s0, task]), RESTART_ERROR);
  await settlesTo(before);

  // Master → slave.
  running.daemon.role.setRole({ kind: 'slave', master: MASTER });
  assert.equal(running.daemon.role.role.kind, 'master', 'the running role changes only with the restart');
  await running.restart();
  assert.deepEqual(running.daemon.role.role, { kind: 'slave', master: MASTER });
  assert.deepEqual(running.urls, urls);
  for (const proto of ['xml', 'json'] as const) {
    assert.deepEqual(await rec.call(url, proto, 'session.login_with_password', LOGIN), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] });
    assert.deepEqual(await rec.call(url, proto, 'pool.get_all', [s0]), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] });
  }
  // The master's sessions ended with its role; a local one works.
  assert.deepEqual(running.daemon.store.all('session'), []);
  const local = await rec.value(url, 'json', 'session.slave_local_login_with_password', ['root', ROOT_PASSWORD]);
  assert.equal(await rec.value(url, 'json', 'pool.get_name_label', [local, pool]), 'kept across restarts');
  await settlesTo(before);

  // Slave → master.
  running.daemon.role.setRole({ kind: 'master' });
  await running.restart();
  assert.deepEqual(running.daemon.role.role, { kind: 'master' });
  assert.deepEqual(running.urls, urls);
  const s1 = await rec.value(url, 'xml', 'session.login_with_password', LOGIN);
  assert.equal(await rec.value(url, 'json', 'pool.get_name_label', [s1, pool]), 'kept across restarts');
  for (const old of [s0, local]) assert.deepEqual(await rec.call(url, 'json', 'pool.get_all', [old]), { ok: false, error: ['SESSION_INVALID', old] });
  assert.equal(await rec.value(url, 'json', 'task.get_status', [s1, task]), 'failure');
  // The Unix socket came back too, with its password-less login.
  const viaSocket = await rec.value({ socket: cfg.unixSockets[0]! }, 'json', 'session.login_with_password', ['root', '', '1.1', '']);
  assert.equal((await rec.value(url, 'json', 'pool.get_all', [viaSocket])).length, 1);
  await settlesTo(before);

  assert.equal(readFileSync(path.join(cfg.stateDir, SECRET_FILE), 'utf8').trim(), secret, 'the secret outlives the role changes');
  assert.equal(lines.filter((l) => l.includes('"msg":"xapid restarted"')).length, 3);
  for (const text of [...rec.texts, ...lines]) assert.ok(!text.includes(secret), text);
});

test('stop during a restart waits for it; a stopped daemon does not restart', async (t) => {
  const dir = tempDir('xapid-restart-');
  const pwFile = path.join(dir, 'root-password');
  writeFileSync(pwFile, `${ROOT_PASSWORD}\n`);
  const cfg: Config = {
    stateDir: path.join(dir, 'state'), listen: '127.0.0.1:0', unixSockets: [], rootPasswordFile: pwFile, logLevel: 'info',
    sessionTimeoutSec: 86400, maxSessionsPerUser: 200, authFailureDelayMs: 10, bodyLimit: 1 << 24, taskTtlSec: 3600, gcIntervalSec: 30,
    driver: 'sim', simDelayScale: 0, networkMode: 'none',
  };
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const running = await startDaemon(cfg, pino({ level: 'silent' }));
  const restarting = running.restart();
  await running.stop();
  await restarting;
  await assert.rejects(running.restart(), /stopped/);
  await running.stop();
});
