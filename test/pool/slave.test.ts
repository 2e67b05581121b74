// What a slave and a broken host answer, over XML-RPC, JSON-RPC, the Unix socket and
// Debian's Python XenAPI module. The role (and the secret) are written by the test
// before the daemon starts, as pool.join will write them later.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROLE_FILE, SECRET_FILE } from '../../src/pool/role.js';
import { ROOT_PASSWORD, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { runPython } from '../helpers/python.js';
import { BAD_SESSION, MASTER, MASTER_HOST, Recorder, preparedStateDir } from './helpers.js';

// The scripts stay in the source tree; tsc does not copy them into dist/.
const SLAVE_PY = fileURLToPath(new URL('../../../test/pool/py/slave.py', import.meta.url));
const PROTOS = ['xml', 'json'] as const;

describe('a slave', () => {
  const secret = randomBytes(24).toString('hex');
  const rec = new Recorder();
  let dir: string;
  let d: TestDaemon;
  let socket: { socket: string };
  let pythonOut: unknown;

  before(async () => {
    dir = preparedStateDir(`slave:${MASTER}\n`, secret);
    d = await startDaemon({ stateDir: dir, socket: true });
    socket = { socket: d.socket! };
  });
  after(async () => {
    await d?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('says in the log whose slave it is', () => {
    assert.ok(d.logs.some((l) => l.includes(`"msg":"pool role: slave of ${MASTER}"`)), d.logs.join('\n'));
  });

  test('login_with_password answers HOST_IS_SLAVE with the address part of the role, whatever the password', async () => {
    for (const proto of PROTOS) {
      for (const pw of [ROOT_PASSWORD, 'wrong']) {
        assert.deepEqual(await rec.call(d.url, proto, 'session.login_with_password', ['root', pw, '1.1', 'pool-test']), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] }, `${proto} ${pw}`);
      }
    }
  });

  test('any call with a session that is not local answers HOST_IS_SLAVE, Async ones at once', async () => {
    for (const proto of PROTOS) {
      for (const [method, args] of [['pool.get_all', []], ['VM.get_all_records', []], ['event.next', []], ['Async.VM.start', [BAD_SESSION, false, false]]] as const) {
        assert.deepEqual(await rec.call(d.url, proto, method, [BAD_SESSION, ...args]), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] }, `${proto} ${method}`);
      }
    }
  });

  test('slave_local_login_with_password works, its session is good for calls, and local_logout ends it', async () => {
    for (const proto of PROTOS) {
      assert.deepEqual(await rec.call(d.url, proto, 'session.slave_local_login_with_password', ['root', 'wrong']), { ok: false, error: ['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure'] });
      const s = await rec.value(d.url, proto, 'session.slave_local_login_with_password', ['root', ROOT_PASSWORD]);
      assert.equal((await rec.value(d.url, proto, 'pool.get_all', [s])).length, 1);
      const vms = await rec.value(d.url, proto, 'VM.get_all_records', [s]);
      assert.ok(Object.values(vms).some((v: any) => v.is_control_domain === true));
      const task = await rec.value(d.url, proto, 'task.create', [s, 'pool-test', '']);
      assert.equal(await rec.value(d.url, proto, 'task.get_status', [s, task]), 'pending');
      await rec.value(d.url, proto, 'task.destroy', [s, task]);
      await rec.value(d.url, proto, 'session.local_logout', [s]);
      assert.deepEqual(await rec.call(d.url, proto, 'pool.get_all', [s]), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] });
    }
  });

  test('the Unix socket still logs in without a password, into a local-only session (the interim behaviour)', async () => {
    const s = await rec.value(socket, 'json', 'session.login_with_password', ['root', '', '1.1', 'pool-test']);
    assert.equal((await rec.value(socket, 'xml', 'pool.get_all', [s])).length, 1);
    // A local session belongs to this host, not to the door it came in by.
    assert.equal((await rec.value(d.url, 'json', 'host.get_all', [s])).length, 1);
    await rec.value(socket, 'json', 'session.local_logout', [s]);
    assert.deepEqual(await rec.call(socket, 'json', 'pool.get_all', [s]), { ok: false, error: ['HOST_IS_SLAVE', MASTER_HOST] });
  });

  test("Python's XenAPI module raises Failure(['HOST_IS_SLAVE', address]) and can log in locally", async () => {
    const out = await runPython(SLAVE_PY, [d.url, ROOT_PASSWORD]);
    pythonOut = out;
    assert.deepEqual(out.login, ['HOST_IS_SLAVE', MASTER_HOST]);
    assert.match(out.login_str, /HOST_IS_SLAVE/);
    assert.match(out.local_handle, /^OpaqueRef:/);
    assert.equal(out.api_version, '1.1');
    assert.equal(out.hosts, 1);
    assert.equal(out.handle_after_logout, null);
  });

  test('the role and secret files are as written, and the secret is in no log line and no answer', () => {
    assert.equal(readFileSync(path.join(dir, ROLE_FILE), 'utf8'), `slave:${MASTER}\n`);
    assert.equal(readFileSync(path.join(dir, SECRET_FILE), 'utf8'), `${secret}\n`);
    assert.ok(rec.texts.length > 30);
    for (const text of [...rec.texts, ...d.logs, JSON.stringify(pythonOut)]) assert.ok(!text.includes(secret), text);
  });
});

describe('a broken host (garbage in its role file)', () => {
  const garbage = Buffer.from('slave:\u0000\u00ff not an address\n', 'latin1');
  const rec = new Recorder();
  let dir: string;
  let d: TestDaemon;

  before(async () => {
    dir = preparedStateDir(garbage);
    d = await startDaemon({ stateDir: dir, socket: true });
  });
  after(async () => {
    await d?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts, and says why in one error line', () => {
    const lines = d.logs.filter((l) => l.includes('"level":50'));
    assert.equal(lines.length, 1, d.logs.join('\n'));
    assert.match(lines[0]!, /pool role file is not valid.*broken host/);
  });

  test('answers HOST_BROKEN to logins, over TCP and the Unix socket', async () => {
    for (const proto of PROTOS) {
      assert.deepEqual(await rec.call(d.url, proto, 'session.login_with_password', ['root', ROOT_PASSWORD, '1.1', '']), { ok: false, error: ['HOST_BROKEN'] });
      assert.deepEqual(await rec.call({ socket: d.socket! }, proto, 'session.login_with_password', ['root', '', '1.1', '']), { ok: false, error: ['HOST_BROKEN'] });
    }
  });

  test('as xapi, only the emergency calls pass: a local login works, other calls with it do not', async () => {
    const s = await rec.value(d.url, 'json', 'session.slave_local_login_with_password', ['root', ROOT_PASSWORD]);
    for (const proto of PROTOS) {
      assert.deepEqual(await rec.call(d.url, proto, 'pool.get_all', [s]), { ok: false, error: ['HOST_BROKEN'] });
      assert.deepEqual(await rec.call(d.url, proto, 'pool.get_all', [BAD_SESSION]), { ok: false, error: ['HOST_BROKEN'] });
    }
    // Past the role's gate (not made yet, so the dispatcher's own answer).
    assert.deepEqual(await rec.call(d.url, 'json', 'pool.emergency_transition_to_master', [s]), { ok: false, error: ['NOT_IMPLEMENTED', 'pool.emergency_transition_to_master'] });
    await rec.value(d.url, 'xml', 'session.local_logout', [s]);
    assert.deepEqual(await rec.call(d.url, 'json', 'session.local_logout', [s]), { ok: false, error: ['SESSION_INVALID', s] });
  });

  test('leaves the role file as it found it', () => {
    assert.deepEqual(readFileSync(path.join(dir, ROLE_FILE)), garbage);
  });
});
