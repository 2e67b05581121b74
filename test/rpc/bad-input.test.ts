// Hostile and broken input: malformed and truncated bodies, oversize bodies, deep
// nesting, invalid UTF-8, JSON that is not a call, session limits and expiry, a wrong
// type in every parameter of every message, unknown and async-less methods, and a
// thousand clients at once. After each case the daemon must still answer normally.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_PASSWORD, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { classes, enums, NULL_REF, type MessageModel } from '../../src/datamodel/model.js';
import type { ApiType } from '../../src/datamodel/types.js';
import { isKnownCode } from '../../src/core/errors.js';
import { assertServing, call, controlDomain, jsonAnswer, loginAt, pool, request, value, xmlAnswer, xmlBody, type Answer, type Protocol } from './wire.js';

const BAD_REF = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';

/** A XenAPI failure as a client can use it: a known code (never INTERNAL_ERROR) and string params. */
function assertProperError(a: Answer, what: string): asserts a is { ok: false; error: string[] } {
  assert.equal(a.ok, false, `${what} succeeded: ${JSON.stringify(a)}`);
  if (a.ok) return;
  assert.ok(Array.isArray(a.error) && a.error.length > 0, `${what}: ${JSON.stringify(a.error)}`);
  const [code, ...params] = a.error;
  assert.notEqual(code, 'INTERNAL_ERROR', `${what}: ${JSON.stringify(a.error)}`);
  assert.ok(code === 'Fault' || isKnownCode(code!), `${what}: unknown code ${code}`);
  for (const p of params) assert.equal(typeof p, 'string', `${what}: non-string param in ${JSON.stringify(a.error)}`);
}

/** The HTML page xapi sends for a body it cannot decode. */
function assertUndecodable(r: { status: number; headers: http.IncomingHttpHeaders; text: string }, tag: string, what: string): void {
  assert.equal(r.status, 500, `${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  assert.equal(r.headers['content-type'], 'text/html', what);
  assert.equal(r.headers.connection, 'close', what);
  assert.match(r.text, new RegExp(tag.replace('.', '\\.')), what);
}

describe('bad input on a default daemon', () => {
  let d: TestDaemon;
  let s: string;
  let poolRef: string;
  let vm: string;
  before(async () => {
    d = await startDaemon();
    s = await loginAt(d.url);
    poolRef = (await value(d.url, 'json', 'pool.get_all', [s]))[0];
    vm = await controlDomain(d.url, s);
  });
  after(() => d?.cleanup());

  test('malformed XML-RPC gets HTTP 500 with Xmlrpc.Parse_error', async () => {
    const valid = xmlBody('pool.get_all', [s]);
    const cases: Record<string, string> = {
      empty: '',
      garbage: 'this is not xml at all',
      'json on the XML door': JSON.stringify({ method: 'pool.get_all', params: [s], id: 1 }),
      'methodCall only': '<methodCall>',
      'no params element': '<?xml version="1.0"?><methodCall><methodName>pool.get_all</methodName></methodCall>',
      'no methodName': `<?xml version="1.0"?><methodCall><params><param><value>${s}</value></param></params></methodCall>`,
      'a methodResponse': '<?xml version="1.0"?><methodResponse><params><param><value>x</value></param></params></methodResponse>',
      'other root': '<html><body>hello</body></html>',
      'unknown value tag': `<methodCall><methodName>pool.get_all</methodName><params><param><value><foo>1</foo></value></param></params></methodCall>`,
      'bad int': `<methodCall><methodName>VM.set_user_version</methodName><params><param><value>${s}</value></param><param><value>${vm}</value></param><param><value><int>twelve</int></value></param></params></methodCall>`,
      'bad boolean': `<methodCall><methodName>pool.get_all</methodName><params><param><value><boolean>yes</boolean></value></param></params></methodCall>`,
      'bad double': `<methodCall><methodName>pool.get_all</methodName><params><param><value><double>NaN</double></value></param></params></methodCall>`,
      'bad dateTime': `<methodCall><methodName>pool.get_all</methodName><params><param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param></params></methodCall>`,
      'bad i8': `<methodCall><methodName>pool.get_all</methodName><params><param><value><i8>1.5</i8></value></param></params></methodCall>`,
    };
    // and the valid request cut short at many points
    for (const cut of [1, 5, 21, 40, 60, 80, valid.length - 30, valid.length - 12, valid.length - 1]) {
      cases[`truncated at ${cut}`] = valid.slice(0, cut);
    }
    for (const [what, body] of Object.entries(cases)) {
      assertUndecodable(await request(d.url, '/', body, { headers: { 'content-type': 'text/xml' } }), 'Xmlrpc.Parse_error', what);
    }
    await assertServing(d.url);
  });

  test('malformed JSON-RPC, a non-object body, and a call without id get HTTP 500', async () => {
    const call1 = JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: 1 });
    const cases: Record<string, string> = {
      empty: '',
      garbage: 'not json',
      'xml on the JSON door': xmlBody('pool.get_all', [s]),
      array: JSON.stringify([{ method: 'pool.get_all', params: [s], id: 1 }]),
      string: '"pool.get_all"',
      number: '42',
      null: 'null',
      true: 'true',
      'no id': JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [s] }),
      'null id': JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: null }),
      'no method': JSON.stringify({ jsonrpc: '2.0', params: [s], id: 1 }),
      'numeric method': JSON.stringify({ jsonrpc: '2.0', method: 42, params: [s], id: 1 }),
      'params an object': JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: { session: s }, id: 1 }),
      'params a string': JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: s, id: 1 }),
      'trailing garbage': `${call1} x`,
    };
    for (const cut of [1, 10, 30, call1.length - 10, call1.length - 1]) cases[`truncated at ${cut}`] = call1.slice(0, cut);
    for (const [what, body] of Object.entries(cases)) {
      assertUndecodable(await request(d.url, '/jsonrpc', body, { headers: { 'content-type': 'application/json' } }), 'Jsonrpc.Malformed_method_request', what);
    }
    await assertServing(d.url);
  });

  test('invalid UTF-8 is refused on both doors', async () => {
    const bad = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3, 0x28]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82])];
    for (const seq of bad) {
      const xml = Buffer.concat([Buffer.from(`<?xml version="1.0"?><methodCall><methodName>pool.get_all</methodName><params><param><value>`), seq, Buffer.from('</value></param></params></methodCall>')]);
      assertUndecodable(await request(d.url, '/', xml), 'Xmlrpc.Parse_error', `xml ${seq.toString('hex')}`);
      const json = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"pool.get_all","params":["'), seq, Buffer.from('"],"id":1}')]);
      assertUndecodable(await request(d.url, '/jsonrpc', json), 'Jsonrpc.Malformed_method_request', `json ${seq.toString('hex')}`);
    }
    await assertServing(d.url);
  });

  test('100k-deep nesting in XML and JSON gets a XenAPI error, not a crash', async () => {
    const n = 100_000;
    const xmlArrays = '<value><array><data>'.repeat(n) + '</data></array></value>'.repeat(n);
    const xmlStructs = '<value><struct><member><name>a</name>'.repeat(n) + '<value>x</value>' + '</member></struct></value>'.repeat(n);
    const xmlParams = (vs: string[]) => vs.map((v) => `<param><value>${v}</value></param>`).join('');
    const xmlCall = (method: string, before: string[], deep: string, afterDeep: string[] = []) =>
      `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${xmlParams(before)}<param>${deep}</param>${xmlParams(afterDeep)}</params></methodCall>`;
    const jsonArrays = '['.repeat(n) + ']'.repeat(n);
    const jsonObjects = '{"a":'.repeat(n) + '"x"' + '}'.repeat(n);
    const jsonCall = (method: string, before: string[], deep: string, afterDeep: string[] = []) =>
      `{"jsonrpc":"2.0","method":"${method}","params":[${[...before.map((v) => JSON.stringify(v)), deep, ...afterDeep.map((v) => JSON.stringify(v))].join(',')}],"id":1}`;
    const targets: Array<[string, string[], string[], string[]]> = [
      // method, params before the deep one, params after it, the error code expected
      ['VM.get_all', [s], [], ['MESSAGE_PARAMETER_COUNT_MISMATCH']],
      ['VM.get_record', [s], [], ['FIELD_TYPE_ERROR']],
      ['pool.set_other_config', [s, poolRef], [], ['FIELD_TYPE_ERROR']],
      ['VM.get_by_name_label', [s], [], ['FIELD_TYPE_ERROR']],
      ['session.login_with_password', [], ['x'], ['FIELD_TYPE_ERROR']],
      ['pool.get_all', [], [], ['SESSION_INVALID']],
    ];
    // Decoding 100k levels of XML takes about a second, so XML gets three of them.
    const xmlDeep: Record<string, Array<'arrays' | 'structs'>> = { 'VM.get_record': ['arrays'], 'pool.get_all': ['arrays'], 'pool.set_other_config': ['structs'] };
    for (const [method, before, afterDeep, codes] of targets) {
      for (const kind of xmlDeep[method] ?? []) {
        const deep = kind === 'arrays' ? xmlArrays : xmlStructs;
        const r = await request(d.url, '/', xmlCall(method, before, deep, afterDeep));
        assert.equal(r.status, 200, `xml ${kind} ${method}: HTTP ${r.status}`);
        const a = await xmlAnswer(r.text);
        assertProperError(a, `xml ${kind} ${method}`);
        assert.ok(codes.includes(a.error[0]!), `xml ${kind} ${method}: ${JSON.stringify(a.error)}`);
      }
      for (const [kind, deep] of [['arrays', jsonArrays], ['objects', jsonObjects]] as const) {
        const r = await request(d.url, '/jsonrpc', jsonCall(method, before, deep, afterDeep));
        assert.equal(r.status, 200, `json ${kind} ${method}: HTTP ${r.status}`);
        const a = jsonAnswer(r.text);
        assertProperError(a, `json ${kind} ${method}`);
        assert.ok(codes.includes(a.error[0]!), `json ${kind} ${method}: ${JSON.stringify(a.error)}`);
      }
    }
    // a million levels of JSON (2 MB) as well
    const m = 1_000_000;
    const r = await request(d.url, '/jsonrpc', jsonCall('VM.get_record', [s], '['.repeat(m) + ']'.repeat(m)));
    assert.equal(r.status, 200);
    assertProperError(jsonAnswer(r.text), 'json 1M arrays');
    await assertServing(d.url);
  });

  test('very wide input: 100k parameters, a 100k-member struct, a 1 MB string (XML: 20k)', async () => {
    // XML bodies are written by hand here: building 100k values with xmlbuilder takes seconds.
    const xmlCall = (method: string, params: string[]) =>
      `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param>${p}</param>`).join('')}</params></methodCall>`;
    const sent = (proto: Protocol, method: string, params: string[], json: unknown[]) => proto === 'xml'
      ? request(d.url, '/', xmlCall(method, params)).then((r) => xmlAnswer(r.text))
      : call(d.url, 'json', method, json);
    for (const proto of ['xml', 'json'] as const) {
      const n = proto === 'xml' ? 20_000 : 100_000;
      const many = Array.from({ length: n }, (_, i) => String(i));
      const a = await sent(proto, 'pool.get_all', [`<value>${s}</value>`, ...many.map((k) => `<value>${k}</value>`)], [s, ...many]);
      assert.deepEqual(a, { ok: false, error: ['MESSAGE_PARAMETER_COUNT_MISMATCH', 'pool.get_all', '0', String(n)] }, proto);
      const wideXml = `<value><struct>${many.map((k) => `<member><name>${k}</name><value>${k}</value></member>`).join('')}</struct></value>`;
      const b = await sent(proto, 'VM.get_record', [`<value>${s}</value>`, wideXml], [s, Object.fromEntries(many.map((k) => [k, k]))]);
      assert.deepEqual(b, { ok: false, error: ['FIELD_TYPE_ERROR', 'self'] }, proto);
      const big = 'x'.repeat(1 << 20);
      assert.deepEqual(await sent(proto, 'VM.get_by_name_label', [`<value>${s}</value>`, `<value>${big}</value>`], [s, big]), { ok: true, value: [] }, proto);
    }
    await assertServing(d.url);
  });

  test('XML entities: no external entity is read and no entity expansion blows up', async () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><methodCall><methodName>VM.get_by_name_label</methodName><params><param><value>${s}</value></param><param><value>&x;</value></param></params></methodCall>`;
    const lol = `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]><methodCall><methodName>VM.get_by_name_label</methodName><params><param><value>${s}</value></param><param><value>&h;</value></param></params></methodCall>`;
    for (const [what, body] of [['xxe', xxe], ['billion laughs', lol]] as const) {
      const r = await request(d.url, '/', body);
      assert.doesNotMatch(r.text, /root:.*:0:0:/, what);
      assert.ok(r.text.length < 10_000, `${what}: ${r.text.length} bytes of answer`);
      if (r.status !== 200) {
        assertUndecodable(r, 'Xmlrpc.Parse_error', what);
        continue;
      }
      // the entity is left unexpanded: a lookup of its literal name finds nothing
      const a = await xmlAnswer(r.text);
      if (a.ok) assert.deepEqual(a.value, [], what);
      else assertProperError(a, what);
    }
    await assertServing(d.url);
  });

  test('map keys such as __proto__ are kept as plain keys', async () => {
    const tricky = JSON.parse('{"__proto__":"p","constructor":"c","toString":"t","a":"b"}') as Record<string, string>;
    const expected = [['__proto__', 'p'], ['a', 'b'], ['constructor', 'c'], ['toString', 't']];
    for (const proto of ['json', 'xml'] as const) {
      await value(d.url, 'json', 'pool.set_other_config', [s, poolRef, {}]);
      await value(d.url, proto, 'pool.set_other_config', [s, poolRef, tricky]);
      // read back over JSON (JSON.parse keeps "__proto__" as an own key) and as raw XML
      const oc = await value(d.url, 'json', 'pool.get_other_config', [s, poolRef]);
      assert.deepEqual(Object.entries(oc).sort(), expected, `set over ${proto}`);
      const raw = await request(d.url, '/', xmlBody('pool.get_other_config', [s, poolRef]));
      assert.match(raw.text, /<member><name>__proto__<\/name><value>p<\/value><\/member>/);
      await value(d.url, proto, 'pool.remove_from_other_config', [s, poolRef, '__proto__']);
      await value(d.url, proto, 'pool.add_to_other_config', [s, poolRef, '__proto__', 'q']);
      const again = await value(d.url, 'json', 'pool.get_other_config', [s, poolRef]);
      assert.equal(Object.getOwnPropertyDescriptor(again, '__proto__')?.value, 'q', `add_to over ${proto}`);
    }
    await value(d.url, 'json', 'pool.set_other_config', [s, poolRef, {}]);
    await assertServing(d.url);
  });

  test('strings are cut before the first character XML cannot carry, as xapi stores them', async () => {
    // JSON can carry U+0001, U+FFFE or a lone surrogate; XML 1.0 cannot. xapi's database
    // keeps the longest valid prefix (ensure_utf8_xml) of strings, set elements, map keys
    // and values, so that every later XML-RPC answer stays well-formed.
    const label = await value(d.url, 'json', 'VM.get_name_label', [s, vm]);
    await value(d.url, 'json', 'VM.set_name_label', [s, vm, 'bad\u0001name\uFFFE\u0000end']);
    await value(d.url, 'json', 'pool.set_other_config', [s, poolRef, { 'key\u0002tail': 'val\uD800ue', plain: 'ok\u001F', 'tab\tnl\n': 'fine' }]);
    for (const [m, ref] of [['VM.get_record', vm], ['pool.get_record', poolRef], ['VM.get_all_records', undefined]] as const) {
      const r = await request(d.url, '/', xmlBody(m, ref ? [s, ref] : [s]));
      assert.equal(r.status, 200);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(r.text, /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF\uD800-\uDFFF]/, `${m}: the XML answer holds characters XML 1.0 forbids`);
      assert.ok((await xmlAnswer(r.text)).ok, m);
    }
    for (const proto of ['json', 'xml'] as const) {
      assert.equal(await value(d.url, proto, 'VM.get_name_label', [s, vm]), 'bad', proto);
      assert.deepEqual(await value(d.url, proto, 'pool.get_other_config', [s, poolRef]), { key: 'val', plain: 'ok', 'tab\tnl\n': 'fine' }, proto);
    }
    await value(d.url, 'json', 'VM.set_name_label', [s, vm, label]);
    await value(d.url, 'json', 'pool.set_other_config', [s, poolRef, {}]);
    await assertServing(d.url);
  });

  test('a truncated HTTP body, a broken request line and a dropped connection do not hurt', async () => {
    const raw = (data: string) => new Promise<string>((resolve, reject) => {
      const u = new URL(d.url);
      const sock = net.connect(Number(u.port), u.hostname, () => sock.end(data));
      let got = '';
      sock.on('data', (c) => (got += c.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    await raw('POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":"2.0","method":');
    await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n<methodCall><methodName>pool.get_all</me');
    await raw('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<methodCall><met');
    const bad = await raw('HELLO WORLD\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400/);
    await raw('');
    await assertServing(d.url);
  });

  test('unknown methods answer MESSAGE_METHOD_UNKNOWN with the name as sent', async () => {
    const names = ['VM.no_such_message', 'NoSuchClass.get_all', 'system.nothing', 'Async.VM.nope', 'VM.', '.get_all', 'VM..get_all',
      'vm.get_all', 'VM.GET_ALL', '__proto__.get_all', 'VM.__proto__', 'constructor', 'toString', 'VM.constructor', 'hasOwnProperty',
      'VM.get_all ', ' VM.get_all', 'VM.get_all\n', 'VM/get_all', 'VM.<b>&amp;', 'x'.repeat(10_000), 'Async.', 'Async.Async.VM.start'];
    for (const proto of ['xml', 'json'] as const) {
      for (const name of names) {
        const a = await call(d.url, proto, name, [s]);
        assertProperError(a, `${proto} ${name.slice(0, 40)}`);
        assert.equal(a.error[0], 'MESSAGE_METHOD_UNKNOWN', `${proto} ${name.slice(0, 40)}: ${JSON.stringify(a.error).slice(0, 200)}`);
        assert.equal(a.error[1], name);
      }
    }
    // an empty method name: unparseable for XML-RPC (no methodName), unknown for JSON-RPC
    assertUndecodable(await request(d.url, '/', xmlBody('', [s])), 'Xmlrpc.Parse_error', 'xml empty name');
    assert.deepEqual(await call(d.url, 'json', '', [s]), { ok: false, error: ['MESSAGE_METHOD_UNKNOWN', ''] });
    {
    }
    await assertServing(d.url);
  });

  test('Async.* of messages without an async form answers Fault', async () => {
    const cases: Array<[string, unknown[]]> = [
      ['VM.get_name_label', [s, vm]], ['VM.get_record', [s, vm]], ['VM.get_all', [s]], ['pool.get_all_records', [s]],
      ['VM.set_name_label', [s, vm, 'x']], ['VM.get_by_uuid', [s, 'x']], ['pool.add_to_other_config', [s, poolRef, 'k', 'v']],
      ['session.login_with_password', ['root', ROOT_PASSWORD]], ['session.logout', [s]], ['event.register', [s, ['*']]], ['task.get_all', [s]],
    ];
    for (const proto of ['xml', 'json'] as const) {
      for (const [m, params] of cases) {
        const a = await call(d.url, proto, `Async.${m}`, params);
        assert.deepEqual(a, { ok: false, error: ['Fault', `No async mode for this operation (rpc: ${m})`] }, `${proto} Async.${m}`);
      }
    }
    assert.equal(await value(d.url, 'json', 'VM.get_name_label', [s, vm]), await value(d.url, 'xml', 'VM.get_name_label', [s, vm]));
    await assertServing(d.url);
  });

  test('a wrong type in every parameter of every message: a XenAPI error, never INTERNAL_ERROR, never success', async (t) => {
    // Real refs where a class has objects, so that the parameters before the wrong one pass.
    const refs = new Map<string, string>();
    for (const c of classes.values()) {
      if (!c.messages.has('get_all') || c.messages.get('get_all')!.removed) continue;
      const all = await call(d.url, 'json', `${c.name}.get_all`, [s]);
      if (all.ok && all.value.length > 0) refs.set(c.name, all.value[0]);
    }
    refs.set('session', s);

    /** A value of the right type (a real ref where the class has an object). */
    const right = (ty: ApiType): unknown => {
      switch (ty.kind) {
        case 'string': return 'x';
        case 'int': return 1;
        case 'float': return 1.5;
        case 'bool': return true;
        case 'datetime': return '20250101T00:00:00Z';
        case 'enum': return enums[ty.name]![0];
        case 'set': return [];
        case 'map': return {};
        case 'record': return {};
        case 'ref': return refs.get(ty.cls) ?? NULL_REF;
        default: return 'x';
      }
    };
    const wrong = (ty: ApiType): unknown[] => {
      switch (ty.kind) {
        case 'string': case 'ref': case 'enum': return [{ x: 'y' }, 5, true, ['a']];
        case 'int': return ['twelve', true, { x: 'y' }, 1.5, ['1']];
        case 'float': return ['abc', true, { x: 'y' }, ['1']];
        case 'bool': return ['true', 1, { x: 'y' }, ['1']];
        case 'datetime': return ['not a date', true, { x: 'y' }, ['1']];
        case 'set': return ['x', 5, { x: 'y' }];
        case 'map': return ['x', 5, ['x']];
        case 'record': return ['x', 5, ['x']];
        default: return [];
      }
    };

    interface Case { m: MessageModel; params: unknown[]; what: string; expect?: string[]; first: boolean }
    // xapi unmarshals every argument before it looks at any object, so the wrong one is
    // reported as FIELD_TYPE_ERROR [its name] whatever the refs around it are.
    const cases: Case[] = [];
    for (const c of classes.values()) {
      for (const m of c.messages.values()) {
        const prefix = m.takesSession ? [s] : [];
        const good = m.args.map((q) => right(q.type));
        m.args.forEach((p, i) => {
          wrong(p.type).forEach((bad, n) => {
            cases.push({
              m, params: [...prefix, ...good.slice(0, i), bad, ...good.slice(i + 1)],
              what: `${m.wireName}(${p.name}: ${p.typeText} = ${JSON.stringify(bad)})`,
              expect: m.removed ? ['MESSAGE_REMOVED'] : ['FIELD_TYPE_ERROR', p.name], first: n === 0,
            });
          });
        });
        // the session itself of the wrong type
        if (m.takesSession && !m.removed) {
          cases.push({ m, params: [5, ...good], what: `${m.wireName}(session_id = 5)`, expect: ['SESSION_INVALID', '5'], first: true });
        }
      }
    }
    assert.ok(cases.length > 1000, `only ${cases.length} cases`);
    const problems: string[] = [];
    let strict = 0;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    t.after(() => agent.destroy());
    // every wrong value over JSON-RPC; the first wrong value of each parameter over XML-RPC
    const run = async (proto: Protocol) => {
      await pool(proto === 'json' ? cases : cases.filter((k) => k.first), 16, async (k) => {
        let a: Answer;
        try {
          a = await call(d.url, proto, k.m.wireName, k.params, agent);
        } catch (e) {
          problems.push(`${proto} ${k.what}: ${(e as Error).message.slice(0, 200)}`);
          return;
        }
        try {
          assertProperError(a, `${proto} ${k.what}`);
          if (k.expect) {
            strict++;
            assert.deepEqual(a.error, k.expect, `${proto} ${k.what}`);
          }
        } catch (e) {
          problems.push((e as Error).message.split('\n')[0]!.slice(0, 300));
        }
      });
    };
    await run('json');
    await run('xml');
    t.diagnostic(`${cases.length} JSON-RPC and ${cases.filter((k) => k.first).length} XML-RPC calls, ${strict} with the exact error expected`);
    assert.deepEqual(problems.slice(0, 40), [], `${problems.length} problems`);
    // nothing was changed by all that: dom0 is still there and running
    assert.equal(await value(d.url, 'json', 'VM.get_power_state', [s, vm]), 'Running');
    await assertServing(d.url);
  });
});

describe('body limit (--body-limit 1024)', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--body-limit', '1024'] });
  });
  after(() => d?.cleanup());

  const padTo = (json: string, size: number) => json.slice(0, -1) + ' '.repeat(size - Buffer.byteLength(json)) + '}';

  test('a body over the limit gets 413 with a clear message; one exactly at the limit is served', async () => {
    const s = await loginAt(d.url);
    const call1 = JSON.stringify({ jsonrpc: '2.0', method: 'pool.get_all', params: [s], id: 1 });
    const atLimit = await request(d.url, '/jsonrpc', padTo(call1, 1024));
    assert.equal(atLimit.status, 200);
    assert.equal(jsonAnswer(atLimit.text).ok, true);

    const over = await request(d.url, '/jsonrpc', padTo(call1, 1025));
    assert.equal(over.status, 413);
    assert.match(over.text, /too large/i);
    assert.match(over.text, /1024/);

    const xml = xmlBody('VM.get_by_name_label', [s, 'x'.repeat(3000)]);
    for (const path of ['/', '/RPC2', '/jsonrpc']) {
      const r = await request(d.url, path, xml, { headers: { 'content-type': 'text/xml' } });
      assert.equal(r.status, 413, path);
      assert.match(r.text, /too large.*1024 bytes/i, path);
    }
    await assertServing(d.url);
  });

  test('a chunked body (no Content-Length) over the limit gets 413 too', async () => {
    const u = new URL(d.url);
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/', agent: false, headers: { 'content-type': 'text/xml' } }, (r) => {
        let text = '';
        r.on('data', (c) => (text += c));
        r.on('end', () => resolve({ status: r.statusCode!, text }));
      });
      req.on('error', reject);
      const chunk = `<value>${'y'.repeat(993)}</value>`;
      req.write('<?xml version="1.0"?><methodCall><methodName>x</methodName><params><param>');
      for (let i = 0; i < 3; i++) req.write(chunk);
      req.end('</param></params></methodCall>');
    });
    assert.equal(res.status, 413);
    assert.match(res.text, /too large/i);
    await assertServing(d.url);
  });
});

describe('sessions: --max-sessions-per-user 3', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--max-sessions-per-user', '3'] });
  });
  after(() => d?.cleanup());

  // Sessions are ordered by the daemon's clock: leave a little time between steps so
  // that "older" is unambiguous.
  const step = () => sleep(15);
  const valid = async (ref: string) => (await call(d.url, 'json', 'pool.get_all', [ref])).ok;

  test('the oldest idle sessions expire and answer SESSION_INVALID', async () => {
    const s1 = await loginAt(d.url); await step();
    const s2 = await loginAt(d.url); await step();
    const s3 = await loginAt(d.url); await step();
    assert.ok(await valid(s1)); // s1 is now the most recently used
    await step();
    const s4 = await loginAt(d.url); await step();
    // s2 was the least recently active
    assert.deepEqual(await call(d.url, 'json', 'pool.get_all', [s2]), { ok: false, error: ['SESSION_INVALID', s2] });
    assert.deepEqual(await call(d.url, 'xml', 'pool.get_all', [s2]), { ok: false, error: ['SESSION_INVALID', s2] });
    for (const r of [s1, s3, s4]) assert.ok(await valid(r), r);
    await step();
    const s5 = await loginAt(d.url);
    // s1, s3 and s4 were all just used in that order: s1 goes
    assert.deepEqual(await call(d.url, 'json', 'VM.get_all', [s1]), { ok: false, error: ['SESSION_INVALID', s1] });
    for (const r of [s3, s4, s5]) assert.ok(await valid(r), r);
    // a failed login opens nothing and closes nothing
    assertProperError(await call(d.url, 'json', 'session.login_with_password', ['root', 'wrong']), 'bad login');
    for (const r of [s3, s4, s5]) assert.ok(await valid(r), r);
    await assertServing(d.url);
  });
});

describe('sessions: --session-timeout 1', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--session-timeout', '1'] });
  });
  after(() => d?.cleanup());

  test('an idle session expires; one in use does not; a new login works', async () => {
    const idle = await loginAt(d.url);
    const busy = await loginAt(d.url);
    assert.equal((await value(d.url, 'json', 'pool.get_all', [idle])).length, 1);
    // keep `busy` active well inside the timeout while `idle` waits past it
    for (let i = 0; i < 8; i++) {
      await sleep(200);
      assert.equal((await value(d.url, 'json', 'pool.get_all', [busy])).length, 1, `busy session lost after ${i} steps`);
    }
    assert.deepEqual(await call(d.url, 'json', 'pool.get_all', [idle]), { ok: false, error: ['SESSION_INVALID', idle] });
    assert.deepEqual(await call(d.url, 'xml', 'pool.get_all', [idle]), { ok: false, error: ['SESSION_INVALID', idle] });
    await assertServing(d.url);
  });
});

describe('1,000 concurrent clients', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--max-sessions-per-user', '5000'] });
  });
  after(() => d?.cleanup());

  test('each on its own connection logs in and reads a record; every answer is right', async () => {
    const s = await loginAt(d.url);
    const vm = await controlDomain(d.url, s);
    const expected = await value(d.url, 'json', 'VM.get_record', [s, vm]);
    const u = new URL(d.url);
    const N = 1000;
    const sessions = new Set<string>();
    const sockets = new Set<net.Socket>();
    const failures: string[] = [];

    const client = async (i: number) => {
      // one keep-alive connection per client, used for both calls
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const proto: Protocol = i % 2 ? 'xml' : 'json';
      const post = (body: string) => new Promise<string>((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: proto === 'xml' ? '/' : '/jsonrpc', agent }, (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (c) => (text += c));
          r.on('end', () => (r.statusCode === 200 ? resolve(text) : reject(new Error(`HTTP ${r.statusCode}`))));
        });
        req.on('socket', (sock) => sockets.add(sock));
        req.on('error', reject);
        req.end(body);
      });
      const rpc = async (method: string, params: unknown[]) => {
        const text = await post(proto === 'xml' ? xmlBody(method, params) : JSON.stringify({ jsonrpc: '2.0', method, params, id: i }));
        const a = proto === 'xml' ? await xmlAnswer(text) : jsonAnswer(text);
        if (!a.ok) throw new Error(`${method}: ${JSON.stringify(a.error)}`);
        return a.value;
      };
      try {
        const mine = await rpc('session.login_with_password', ['root', ROOT_PASSWORD, '1.1', `client-${i}`]);
        sessions.add(mine);
        const rec = await rpc('VM.get_record', [mine, vm]);
        assert.equal(rec.uuid, expected.uuid);
        assert.equal(rec.power_state, 'Running');
        assert.equal(rec.is_control_domain, true);
        assert.equal(String(rec.memory_static_max), String(expected.memory_static_max));
        assert.equal(await rpc('session.logout', [mine]), '');
      } catch (e) {
        failures.push(`client ${i} (${proto}): ${(e as Error).message}`);
      } finally {
        agent.destroy();
      }
    };
    await Promise.all(Array.from({ length: N }, (_, i) => client(i)));
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} clients failed`);
    assert.equal(sessions.size, N, 'every client got its own session');
    assert.ok(sockets.size >= N, `only ${sockets.size} connections were used`);
    await assertServing(d.url);
  });
});
