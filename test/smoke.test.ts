// The smallest end-to-end check: a daemon starts, a client logs in and reads the pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonCall, login, startDaemon } from './helpers/daemon.js';

test('a fresh daemon answers login and pool.get_all', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const s = await login(d.url);
  const pools = await jsonCall(d.url, 'pool.get_all', [s]);
  assert.equal(pools.result.length, 1);
  const master = await jsonCall(d.url, 'pool.get_master', [s, pools.result[0]]);
  assert.match(master.result, /^OpaqueRef:[0-9a-f-]{36}$/);
});
