// A fresh state directory makes a master: its role file says so and the pool secret is
// made, readable by its owner only, and never seen again in a log line or an answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { classes } from '../../src/datamodel/model.js';
import { ROLE_FILE, SECRET_FILE } from '../../src/pool/role.js';
import { ROOT_PASSWORD, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { Recorder } from './helpers.js';

describe('a master', () => {
  const rec = new Recorder();
  let d: TestDaemon;
  let secret: string;

  before(async () => {
    d = await startDaemon({ socket: true });
    secret = readFileSync(path.join(d.stateDir, SECRET_FILE), 'utf8').trim();
  });
  after(() => d?.cleanup());

  test('a fresh state directory is a master, and its pool secret file is mode 0600', () => {
    assert.equal(readFileSync(path.join(d.stateDir, ROLE_FILE), 'utf8'), 'master\n');
    assert.equal(statSync(path.join(d.stateDir, SECRET_FILE)).mode & 0o777, 0o600);
    assert.match(secret, /^[0-9a-f]{64}$/);
  });

  test('the secret is in no answer and no log line, whatever is read', async () => {
    for (const proto of ['xml', 'json'] as const) {
      assert.equal((await rec.call(d.url, proto, 'session.login_with_password', ['root', 'wrong', '1.1', ''])).ok, false);
      const s = await rec.value(d.url, proto, 'session.login_with_password', ['root', ROOT_PASSWORD, '1.1', 'pool-test']);
      const local = await rec.value(d.url, proto, 'session.slave_local_login_with_password', ['root', ROOT_PASSWORD]);
      const viaSocket = await rec.value({ socket: d.socket! }, proto, 'session.login_with_password', ['root', '', '1.1', '']);
      await rec.value(d.url, proto, 'session.get_record', [s, s]);
      await rec.call(d.url, proto, 'system.listMethods', []);
      for (const c of classes.values()) {
        if (c.messages.has('get_all_records')) await rec.call(d.url, proto, `${c.name}.get_all_records`, [s]);
      }
      await rec.value(d.url, proto, 'session.local_logout', [local]);
      await rec.value(d.url, proto, 'session.logout', [viaSocket]);
      await rec.value(d.url, proto, 'session.logout', [s]);
    }
    assert.ok(rec.texts.length > 40);
    for (const text of [...rec.texts, ...d.logs]) assert.ok(!text.includes(secret), text.slice(0, 200));
  });
});
