// The channel between the hosts of a pool: /pool/ requests signed with the pool secret
// (src/pool/auth.ts), answered and signed back (src/http/pool.ts), called with
// src/pool/client.ts. A missing, forged, stale or replayed request is refused with 403,
// logged without the secret, and changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AUTH_HEADER, RequestVerifier, answerIsGenuine, signAnswer, signRequest } from '../../src/pool/auth.js';
import { PoolCallError, poolCall } from '../../src/pool/client.js';
import { jsonCall, login, startDaemon, type TestDaemon } from '../helpers/daemon.js';

let d: TestDaemon;
let secret: string;
before(async () => {
  d = await startDaemon();
  secret = readFileSync(path.join(d.stateDir, 'pool-secret'), 'utf8').trim();
});
after(async () => d?.cleanup());

const raw = (p: string, header?: string) => fetch(`${d.url}${p}`, { headers: header ? { [AUTH_HEADER]: header } : {} });
const refusedLines = () => d.logs.join('\n').split('\n').filter((l) => l.includes('pool request refused'));

test('a host holding the pool secret is answered, and the answer proves the other holds it too', async () => {
  const session = await login(d.url);
  const [host] = (await jsonCall(d.url, 'host.get_all', [session])).result as string[];
  const uuid = (await jsonCall(d.url, 'host.get_uuid', [session, host])).result;
  const hello = await poolCall(d.url, secret, 'GET', '/pool/hello') as { host: string; role: string };
  assert.equal(hello.host, uuid);
  assert.equal(hello.role, 'master');
});

test('missing, forged, stale, tampered and replayed requests are refused with 403 and logged without the secret', async () => {
  const before = refusedLines().length;
  assert.equal((await raw('/pool/hello')).status, 403, 'no proof');
  assert.equal((await raw('/pool/hello', 'v1 garbage')).status, 403, 'malformed');
  await assert.rejects(poolCall(d.url, `${secret}x`, 'GET', '/pool/hello'), (e: unknown) => e instanceof PoolCallError && e.status === 403, 'another secret');
  assert.equal((await raw('/pool/hello', signRequest(secret, 'GET', '/pool/hello', '', Date.now() - 120_000).header)).status, 403, 'stale');
  assert.equal((await raw('/pool/hello', signRequest(secret, 'GET', '/pool/hello?other=1').header)).status, 403, 'signed for another path');
  const once = signRequest(secret, 'GET', '/pool/hello').header;
  assert.equal((await raw('/pool/hello', once)).status, 200);
  assert.equal((await raw('/pool/hello', once)).status, 403, 'replayed');
  // Log lines reach the test through the daemon's stdout, a little after the answers.
  for (let i = 0; i < 100 && refusedLines().length < before + 6; i++) await new Promise((r) => setTimeout(r, 20));
  const lines = refusedLines().slice(before);
  assert.equal(lines.length, 6, lines.join('\n'));
  for (const why of ['no pool authentication', 'malformed', 'does not match', 'time window', 'replayed']) assert.ok(lines.some((l) => l.includes(why)), why);
  assert.ok(!d.logs.join('\n').includes(secret), 'the secret is in no log line');
});

test('an answer not signed with the pool secret is not taken', () => {
  const { nonce } = signRequest(secret, 'GET', '/pool/hello');
  const body = '{"host":"x"}';
  assert.ok(answerIsGenuine(secret, nonce, body, signAnswer(secret, nonce, body)));
  assert.ok(!answerIsGenuine(secret, nonce, body, signAnswer(`${secret}x`, nonce, body)), 'another secret');
  assert.ok(!answerIsGenuine(secret, nonce, `${body} `, signAnswer(secret, nonce, body)), 'another body');
  assert.ok(!answerIsGenuine(secret, nonce, body, undefined), 'no signature');
});

test('the verifier forgets nonces only after the time window', () => {
  const v = new RequestVerifier();
  const t0 = 1_000_000_000;
  const s = signRequest('k', 'GET', '/p', '', t0);
  assert.equal(v.verify('k', 'GET', '/p', '', s.header, t0).ok, true);
  assert.equal(v.verify('k', 'GET', '/p', '', s.header, t0 + 30_000).ok, false, 'replay within the window');
  assert.equal(v.verify('k', 'GET', '/p', '', s.header, t0 + 300_000).ok, false, 'and stale after it');
  assert.equal(v.verify(undefined, 'GET', '/p', '', s.header, t0).ok, false, 'a host without a secret takes nothing');
});
