// Transport details a client depends on: exact content types, CORS, the JSON-RPC v1
// and v2 answer shapes, system.listMethods, `Class_msg` names, and the HTTPS and Unix
// socket listeners — all checked on raw HTTP exchanges.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import tls from 'node:tls';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { classes } from '../../src/datamodel/model.js';
import { call, controlDomain, jsonAnswer, loginAt, request, value, xmlAnswer, xmlBody, type Target } from './wire.js';

const BAD_REF = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';
const REF = /^OpaqueRef:[0-9a-f-]{36}$/;

describe('transport', () => {
  let d: TestDaemon;
  let s: string;
  let vm: string;

  before(async () => {
    d = await startDaemon({ https: true, socket: true });
    s = await loginAt(d.url);
    vm = await controlDomain(d.url, s);
  });
  after(() => d?.cleanup());

  const jsonPost = (target: Target, body: unknown) =>
    request(target, '/jsonrpc', JSON.stringify(body), { headers: { 'content-type': 'application/json' } });

  test('XML-RPC answers are exactly text/xml on /, /RPC2 and /xmlrpc, success and failure alike', async () => {
    for (const path of ['/', '/RPC2', '/xmlrpc']) {
      const ok = await request(d.url, path, xmlBody('pool.get_all', [s]), { headers: { 'content-type': 'text/xml' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['content-type'], 'text/xml', path);
      const a = await xmlAnswer(ok.text);
      assert.ok(a.ok && a.value.length === 1, path);
      const bad = await request(d.url, path, xmlBody('VM.get_record', [s, BAD_REF]), { headers: { 'content-type': 'text/xml' } });
      assert.equal(bad.status, 200);
      assert.equal(bad.headers['content-type'], 'text/xml', path);
      assert.deepEqual(await xmlAnswer(bad.text), { ok: false, error: ['HANDLE_INVALID', 'VM', BAD_REF] });
    }
  });

  test('XML-RPC is accepted whatever content type the client sends', async () => {
    for (const ct of ['text/xml', 'application/xml', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']) {
      const r = await request(d.url, '/', xmlBody('pool.get_all', [s]), { headers: { 'content-type': ct } });
      assert.equal(r.status, 200, ct);
      assert.ok((await xmlAnswer(r.text)).ok, ct);
    }
    const none = await request(d.url, '/', xmlBody('pool.get_all', [s]));
    assert.equal(none.status, 200);
    assert.ok((await xmlAnswer(none.text)).ok);
  });

  test('JSON-RPC answers are exactly application/json (no charset), success and failure alike', async () => {
    const ok = await jsonPost(d.url, { jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: 1 });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], 'application/json');
    const bad = await jsonPost(d.url, { jsonrpc: '2.0', method: 'VM.get_record', params: [s, BAD_REF], id: 1 });
    assert.equal(bad.headers['content-type'], 'application/json');
    const v1 = await jsonPost(d.url, { method: 'pool.get_all', params: [s], id: 1 });
    assert.equal(v1.headers['content-type'], 'application/json');
  });

  test('OPTIONS preflight and CORS headers on every RPC path', async () => {
    for (const path of ['/', '/RPC2', '/xmlrpc', '/jsonrpc']) {
      const r = await request(d.url, path, undefined, {
        method: 'OPTIONS',
        headers: { origin: 'http://example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.ok(r.status === 200 || r.status === 204, `${path}: ${r.status}`);
      assert.equal(r.headers['access-control-allow-origin'], '*', path);
      assert.match(String(r.headers['access-control-allow-methods']), /POST/, path);
      assert.match(String(r.headers['access-control-allow-headers']), /content-type/i, path);
    }
    const post = await jsonPost(d.url, { jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: 1 });
    assert.equal(post.headers['access-control-allow-origin'], '*');
    const xml = await request(d.url, '/', xmlBody('pool.get_all', [s]), { headers: { origin: 'http://example.org' } });
    assert.equal(xml.headers['access-control-allow-origin'], '*');
  });

  test('JSON-RPC v1: {result, error: null, id} and {result: null, error: [CODE, ...], id}', async () => {
    const ok = JSON.parse((await jsonPost(d.url, { method: 'VM.get_power_state', params: [s, vm], id: 7 })).text);
    assert.deepEqual(ok, { result: 'Running', error: null, id: 7 });
    const bad = JSON.parse((await jsonPost(d.url, { method: 'VM.get_power_state', params: [s, BAD_REF], id: 'x' })).text);
    assert.deepEqual(bad, { result: null, error: ['HANDLE_INVALID', 'VM', BAD_REF], id: 'x' });
    // v1 with an explicit version tag other than 2.0 is still v1
    const v1 = JSON.parse((await jsonPost(d.url, { jsonrpc: '1.0', method: 'pool.get_all', params: [s], id: 3 })).text);
    assert.equal(v1.error, null);
    assert.equal(v1.id, 3);
  });

  test('JSON-RPC v2: {jsonrpc, result, id} and {jsonrpc, error: {code, message: CODE, data}, id}', async () => {
    const ok = JSON.parse((await jsonPost(d.url, { jsonrpc: '2.0', method: 'VM.get_power_state', params: [s, vm], id: 'abc' })).text);
    assert.deepEqual(ok, { jsonrpc: '2.0', result: 'Running', id: 'abc' });
    const bad = JSON.parse((await jsonPost(d.url, { jsonrpc: '2.0', method: 'VM.get_power_state', params: [s, BAD_REF], id: 0 })).text);
    assert.deepEqual(bad, { jsonrpc: '2.0', error: { code: 1, message: 'HANDLE_INVALID', data: ['VM', BAD_REF] }, id: 0 });
    // a void result is "" in both versions
    const label = await value(d.url, 'json', 'VM.get_name_label', [s, vm]);
    const voidV2 = JSON.parse((await jsonPost(d.url, { jsonrpc: '2.0', method: 'VM.set_name_label', params: [s, vm, label], id: 1 })).text);
    assert.deepEqual(voidV2, { jsonrpc: '2.0', result: '', id: 1 });
    const voidV1 = JSON.parse((await jsonPost(d.url, { method: 'VM.set_name_label', params: [s, vm, label], id: 1 })).text);
    assert.deepEqual(voidV1, { result: '', error: null, id: 1 });
  });

  test('JSON-RPC ids of any JSON type come back unchanged', async () => {
    for (const id of [0, -1, 1.5, 'id', '', { a: [1] }, [1, 'b'], true]) {
      const r = JSON.parse((await jsonPost(d.url, { jsonrpc: '2.0', method: 'pool.get_all', params: [s], id })).text);
      assert.deepEqual(r.id, id);
      assert.equal(r.result.length, 1);
    }
  });

  test('system.listMethods: a raw XML-RPC array without a Status struct, every sync message, no Async names', async () => {
    const r = await request(d.url, '/', xmlBody('system.listMethods', []));
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/xml');
    assert.match(r.text, /<methodResponse><params><param><value><array><data><value>/);
    assert.doesNotMatch(r.text, /Status/);
    const a = await xmlAnswer(r.text);
    assert.ok(a.ok);
    const names = a.value as string[];
    const expected: string[] = [];
    for (const c of classes.values()) for (const m of c.messages.values()) if (!m.removed) expected.push(m.wireName);
    assert.deepEqual([...names].sort(), expected.sort());
    for (const n of ['VM.get_record', 'VM.get_all_records', 'session.login_with_password', 'pool.get_all', 'host.get_API_version_major', 'VM.start']) {
      assert.ok(names.includes(n), n);
    }
    assert.equal(names.filter((n) => n.startsWith('Async.')).length, 0);
    // no session needed, and JSON gives a normal result
    const j = jsonAnswer((await jsonPost(d.url, { jsonrpc: '2.0', method: 'system.listMethods', params: [], id: 1 })).text);
    assert.ok(j.ok);
    assert.deepEqual([...j.value].sort(), [...names].sort());
  });

  test('Class_msg names with underscores work like Class.msg, class names with underscores included', async () => {
    const direct = await value(d.url, 'xml', 'VM.get_all', [s]);
    assert.deepEqual(await value(d.url, 'xml', 'VM_get_all', [s]), direct);
    assert.deepEqual(await value(d.url, 'json', 'VM_get_all', [s]), direct);
    const metrics = await value(d.url, 'json', 'VM.get_metrics', [s, vm]);
    assert.deepEqual(await value(d.url, 'json', 'VM_get_metrics', [s, vm]), metrics);
    assert.deepEqual(await value(d.url, 'xml', 'VM_metrics_get_all', [s]), await value(d.url, 'xml', 'VM_metrics.get_all', [s]));
    const cpus = await value(d.url, 'json', 'host_cpu.get_all', [s]);
    assert.deepEqual(await value(d.url, 'json', 'host_cpu_get_all', [s]), cpus);
    const s2 = await value(d.url, 'xml', 'session_login_with_password', ['root', (await import('../helpers/daemon.js')).ROOT_PASSWORD]);
    assert.match(s2, REF);
    await value(d.url, 'json', 'session_logout', [s2]);
    const unknown = await call(d.url, 'json', 'VM_no_such_message', [s]);
    assert.deepEqual(unknown, { ok: false, error: ['MESSAGE_METHOD_UNKNOWN', 'VM_no_such_message'] });
  });

  test('values on the XML-RPC wire: bare strings and ints, <boolean>, <double>, <dateTime.iso8601>', async () => {
    const r = await request(d.url, '/', xmlBody('VM.get_record', [s, vm]));
    assert.match(r.text, /<name>name_label<\/name><value>[^<]/);
    assert.doesNotMatch(r.text, /<string>|<i4>|<int>/);
    assert.match(r.text, /<name>memory_static_max<\/name><value>\d+<\/value>/);
    assert.match(r.text, /<name>is_a_template<\/name><value><boolean>0<\/boolean><\/value>/);
    assert.match(r.text, /<name>is_control_domain<\/name><value><boolean>1<\/boolean><\/value>/);
    assert.match(r.text, /<name>HVM_shadow_multiplier<\/name><value><double>1<\/double><\/value>/);
    const sr = await request(d.url, '/', xmlBody('session.get_last_active', [s, s]));
    assert.match(sr.text, /<value><dateTime\.iso8601>\d{8}T\d{2}:\d{2}:\d{2}Z<\/dateTime\.iso8601><\/value>/);
    // both string forms are accepted on input
    const bare = `<?xml version="1.0"?><methodCall><methodName>VM.get_power_state</methodName><params><param><value>${s}</value></param><param><value>${vm}</value></param></params></methodCall>`;
    assert.deepEqual(await xmlAnswer((await request(d.url, '/', bare)).text), { ok: true, value: 'Running' });
  });

  test('a session works across XML-RPC and JSON-RPC', async () => {
    const sx = await value(d.url, 'xml', 'session.login_with_password', ['root', (await import('../helpers/daemon.js')).ROOT_PASSWORD]);
    assert.equal((await value(d.url, 'json', 'pool.get_all', [sx])).length, 1);
    await value(d.url, 'json', 'session.logout', [sx]);
    assert.deepEqual(await call(d.url, 'xml', 'pool.get_all', [sx]), { ok: false, error: ['SESSION_INVALID', sx] });
  });

  test('HTTPS listener with the self-signed certificate answers both protocols', async () => {
    assert.ok(d.httpsUrl, 'no HTTPS URL logged');
    assert.match(d.httpsUrl!, /^https:\/\//);
    const u = new URL(d.httpsUrl!);
    const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const sock = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
        const c = sock.getPeerCertificate();
        sock.end();
        resolve(c);
      });
      sock.on('error', reject);
    });
    assert.deepEqual(cert.issuer, cert.subject, 'the certificate is self-signed');
    // and a client that checks certificates refuses it, as it should
    await assert.rejects(fetch(`${d.httpsUrl}/jsonrpc`, { method: 'POST', body: '{}' }));

    const hs = await loginAt(d.httpsUrl!);
    for (const proto of ['xml', 'json'] as const) {
      assert.equal((await value(d.httpsUrl!, proto, 'pool.get_all', [hs])).length, 1);
    }
    const r = await request(d.httpsUrl!, '/jsonrpc', JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [hs], id: 1 }));
    assert.equal(r.headers['content-type'], 'application/json');
    const x = await request(d.httpsUrl!, '/', xmlBody('pool.get_all', [hs]));
    assert.equal(x.headers['content-type'], 'text/xml');
    // a session made over HTTPS is valid over plain HTTP too
    assert.equal((await value(d.url, 'json', 'pool.get_all', [hs])).length, 1);
  });

  test('Unix socket: owner-only, root logs in without a password, both protocols', async () => {
    assert.ok(d.socket);
    assert.equal(statSync(d.socket!).mode & 0o777, 0o600);
    const sock = { socket: d.socket! };
    for (const proto of ['xml', 'json'] as const) {
      for (const pw of ['', 'not-the-password']) {
        const us = await value(sock, proto, 'session.login_with_password', ['root', pw]);
        assert.match(us, REF);
        assert.equal((await value(sock, proto, 'pool.get_all', [us])).length, 1);
        const rec = await value(sock, proto, 'VM.get_record', [us, vm]);
        assert.equal(rec.power_state, 'Running');
        await value(sock, proto, 'session.logout', [us]);
      }
    }
    const r = await request(sock, '/jsonrpc', JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: 1 }));
    assert.equal(r.headers['content-type'], 'application/json');
    // the password-free door is only the socket: the same login over TCP fails
    const tcp = await call(d.url, 'json', 'session.login_with_password', ['root', '']);
    assert.deepEqual(tcp, { ok: false, error: ['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure'] });
  });
});
