// The XML-RPC decoder's edge cases, one by one: typed values, nesting, empty values,
// entities, CDATA, unknown elements, truncated documents, DOCTYPEs with entities, line
// ends, and dateTimes. parse-fast-path.test.ts compares it with the xmlrpc package at large.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { decodeMethodCall, decodeMethodCallXml, MalformedRequest, parseSimpleCall } from '../../src/rpc/xmlrpc-decode.js';
import { parseMethodCall } from '../../src/rpc/xmlrpc.js';

const dateFormatter = createRequire(import.meta.url)('xmlrpc/lib/date_formatter') as { decodeIso8601(s: string): Date };

const call = (...values: string[]) =>
  `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>${values.map((v) => `<param><value>${v}</value></param>`).join('')}</params></methodCall>`;
const params = (body: string) => decodeMethodCallXml(body).params;
const one = (value: string) => params(call(value))[0];

function refused(body: string, message?: RegExp): void {
  assert.throws(() => decodeMethodCall(body), (e: unknown) => {
    assert.ok(e instanceof MalformedRequest, `not a MalformedRequest: ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  }, JSON.stringify(body.slice(0, 200)));
}

describe('XML-RPC decoder', () => {
  test('scalar types', () => {
    assert.deepEqual(params(call('<int>-5</int>', '<i4>7</i4>', '<i8>-9007199254740993</i8>', '<boolean>1</boolean>', '<boolean>0</boolean>',
      '<double>-1.5e3</double>', '<string>s</string>', 'bare', '<nil/>', '<base64>aGVs\nbG8=</base64>')),
    [-5, 7, '-9007199254740993', true, false, -1500, 's', 'bare', null, Buffer.from('hello')]);
    // as the package read them: parseInt and parseFloat take a number's start
    assert.deepEqual(params(call('<int> 12 </int>', '<int>12abc</int>', '<double>2.5x</double>')), [12, 12, 2.5]);
    for (const bad of ['<int>twelve</int>', '<int></int>', '<i8>1.5</i8>', '<i8> 1</i8>', '<boolean>yes</boolean>', '<boolean> 1</boolean>', '<double>NaN</double>']) {
      refused(call(bad));
    }
  });

  test('nested arrays and structs, and a deep nesting without recursion', () => {
    const v = one('<struct><member><name>a</name><value><array><data><value><i4>1</i4></value><value><struct>' +
      '<member><name>b</name><value><array><data/></array></value></member><member><name>c</name><value><struct/></value></member>' +
      '</struct></value></data></array></value></member><member><name>d</name><value>x</value></member></struct>');
    assert.deepEqual(v, { a: [1, { b: [], c: {} }], d: 'x' });
    // a member named __proto__ is a key, not the struct's prototype
    const p = one('<struct><member><name>__proto__</name><value>p</value></member></struct>') as Record<string, unknown>;
    assert.deepEqual(Object.keys(p), ['__proto__']);
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    const n = 100_000;
    const deep = one('<array><data><value>'.repeat(n) + 'x' + '</value></data></array>'.repeat(n));
    let depth = 0;
    for (let a = deep; Array.isArray(a); a = a[0]) depth++;
    assert.equal(depth, n);
  });

  test('empty values, whitespace, comments and CDATA', () => {
    assert.deepEqual(params(call('', '<string></string>', '<string/>', ' ', '  <string> s </string>  ', '<array><data></data></array>', '<struct></struct>')),
      ['', '', '', ' ', ' s ', [], {}]);
    assert.deepEqual(decodeMethodCallXml('<methodCall><methodName>m</methodName><params/></methodCall>'), { method: 'm', params: [] });
    // text around a typed value is ignored; a bare value's text is kept as it stands
    assert.deepEqual(params(call('a<!-- c -->b<?pi x?>c', '<![CDATA[<b>&amp;]]>', 'x<![CDATA[]]>y', '<string><![CDATA[ ]]></string>')),
      ['abc', '<b>&amp;', 'xy', ' ']);
    assert.deepEqual(decodeMethodCallXml('\n<?xml version="1.0"?>\n<!-- c -->\n<methodCall>\n <methodName> m </methodName>\n <params>\n </params>\n</methodCall>\n'.trimStart()),
      { method: ' m ', params: [] });
  });

  test('entities and character references; nothing else is expanded', () => {
    assert.equal(one('&amp;&lt;&gt;&quot;&apos;&#65;&#x1F600;&#10;'), '&<>"\'A😀\n');
    for (const bad of ['&nbsp;', '&foo;', 'a &b c;', '&#0;', '&#xD800;', '&#x110000;']) refused(call(bad), /entity/i);
    // a lone & reads the rest of the body as an entity's name, which never ends
    for (const bad of ['a & b', '&amp']) refused(call(bad));
  });

  test('line ends are normalized to \\n, as XML requires (the package kept \\r)', () => {
    assert.deepEqual(params(call('a\r\nb\rc', '<string>\r\n</string>', 'a&#13;b')), ['a\nb\nc', '\n', 'a\rb']);
    assert.deepEqual(decodeMethodCall(call('x').replace(/></g, '>\r\n<')).params, ['x']);
  });

  test('element names: any case is taken as before; unknown elements are refused', () => {
    assert.deepEqual(params(call('<STRING>up</STRING>', '<Int>3</Int>', '<DATETIME.ISO8601>20250101T00:00:00Z</DATETIME.ISO8601>')),
      ['up', 3, new Date('2025-01-01T00:00:00Z')]);
    assert.deepEqual(decodeMethodCallXml('<METHODCALL><METHODNAME>m</METHODNAME><PARAMS/></METHODCALL>'), { method: 'm', params: [] });
    refused(call('<foo>1</foo>'), /unknown XML-RPC element <foo>/);
    refused(call('<string><b>x</b></string>'), /<b>/);
    refused('<methodCall><methodName>m</methodName><params/><extra/></methodCall>', /<extra>/);
    refused('<html><body>hello</body></html>', /<html>/);
  });

  test('documents that are not a method call', () => {
    refused('', /root element/);
    refused('not xml');
    refused('<methodCall><methodName>m</methodName></methodCall>', /no <params>/);
    refused('<methodCall><methodName></methodName><params/></methodCall>', /no method name/);
    refused('<methodCall><params/></methodCall>', /no method name/);
    refused('<methodResponse><params><param><value>x</value></param></params></methodResponse>', /not an XML-RPC methodCall/);
    refused('<methodCall><methodName>m</methodName><params/><fault/></methodCall>');
    refused('junk<methodCall><methodName>m</methodName><params/></methodCall>', /outside of root/);
    refused('<methodCall><methodName>m</methodName><params/></methodCall><methodCall/>');
  });

  test('a document cut anywhere is refused', () => {
    const body = call('<struct><member><name>k</name><value><array><data><value><i4>1</i4></value></data></array></value></member></struct>', '<![CDATA[x]]>', 'a&amp;b');
    assert.deepEqual(params(body), [{ k: [1] }, 'x', 'a&b']);
    for (let cut = 0; cut < body.length; cut++) refused(body.slice(0, cut));
  });

  test('a DOCTYPE is read past; its entities are never expanded, internal or external', () => {
    assert.deepEqual(decodeMethodCall('<!DOCTYPE methodCall><methodCall><methodName>m</methodName><params/></methodCall>').params, []);
    const internal = '<!DOCTYPE methodCall [<!ENTITY x "expanded">]>';
    refused(`${internal}${call('&x;').replace('<?xml version="1.0"?>', '')}`, /undefined entity/);
    // the file is not read: the reference is refused, and nothing of the file is in the message
    const external = '<!DOCTYPE methodCall [<!ENTITY x SYSTEM "file:///etc/passwd">]>';
    assert.throws(() => decodeMethodCall(`${external}<methodCall><methodName>&x;</methodName><params/></methodCall>`),
      (e: Error) => e instanceof MalformedRequest && /undefined entity/.test(e.message) && !/root:/.test(e.message));
    // a billion laughs: ten levels of ten-fold entities, never expanded, refused at once
    let dtd = '<!ENTITY l0 "ha">';
    for (let i = 1; i <= 10; i++) dtd += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
    const t0 = performance.now();
    refused(`<!DOCTYPE methodCall [${dtd}]><methodCall><methodName>&l10;</methodName><params/></methodCall>`, /undefined entity/);
    assert.ok(performance.now() - t0 < 1000);
    // a parameter entity and an external DTD are no more than text to skip
    assert.deepEqual(decodeMethodCall('<!DOCTYPE methodCall SYSTEM "http://127.0.0.1:1/x.dtd" [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><methodCall><methodName>m</methodName><params/></methodCall>').params, []);
  });

  test('dateTime.iso8601: a Date, as the xmlrpc package gave', () => {
    // the forms clients send, read as the package read them (a time without an offset is local)
    for (const s of ['20250102T03:04:05', '20250102T03:04:05Z', '2025-01-02T03:04:05Z', '20250102T030405Z', '2025-01-02T03:04:05.678Z',
      '20250102T03:04:05.5+01', '20250102', '20250102T03', ' \n20250102T03:04:05Z\n ']) {
      const d = one(`<dateTime.iso8601>${s}</dateTime.iso8601>`);
      assert.ok(d instanceof Date, s);
      assert.equal(d.getTime(), dateFormatter.decodeIso8601(s).getTime(), s);
    }
    // out-of-range fields make an invalid Date, as before: the API's type check refuses it
    for (const s of ['20251302T00:00:00Z', '20250100T00:00:00Z', '20250101T23:60:00Z']) {
      const d = one(`<dateTime.iso8601>${s}</dateTime.iso8601>`) as Date;
      assert.ok(d instanceof Date && Number.isNaN(d.getTime()), s);
    }
    // An offset is honoured. The package read a "+hh" or "-hh:mm" right after the seconds as
    // a fraction of a second (its pattern took any character for the dot).
    assert.equal((one('<dateTime.iso8601>20250102T03:04:05+02:00</dateTime.iso8601>') as Date).toISOString(), '2025-01-02T01:04:05.000Z');
    assert.equal((one('<dateTime.iso8601>20250102T03:04:05-0130</dateTime.iso8601>') as Date).toISOString(), '2025-01-02T04:34:05.000Z');
    assert.equal((one('<dateTime.iso8601>20250102T03:04:05+02</dateTime.iso8601>') as Date).toISOString(), '2025-01-02T01:04:05.000Z');
    // text beyond the pattern is refused, where the package took the first match in it
    for (const bad of ['yesterday', '', 'x20250102T03:04:05Z', '20250102T03:04:05Z junk', '20250102T03:04:5', '2025010']) {
      refused(call(`<dateTime.iso8601>${bad}</dateTime.iso8601>`), /dateTime/);
    }
  });

  test('the fast path takes only what the full decoder reads alike; parseMethodCall rejects with MalformedRequest', async () => {
    const simple = '<?xml version="1.0"?><methodCall><methodName>VM.get_record</methodName><params><param><value><string>a</string></value></param><param><value>b</value></param></params></methodCall>';
    assert.deepEqual(parseSimpleCall(simple), decodeMethodCallXml(simple));
    assert.equal(parseSimpleCall(call('<int>1</int>')), undefined);
    assert.equal(parseSimpleCall(call('a&amp;b')), undefined);
    assert.equal(parseSimpleCall(call('a\r\nb')), undefined);
    assert.deepEqual(await parseMethodCall(simple), { method: 'VM.get_record', params: ['a', 'b'] });
    await assert.rejects(parseMethodCall('<methodCall>'), MalformedRequest);
  });
});

test('a string with a carriage return survives our encoder and decoder (it travels as &#13;)', async () => {
  const { encodeTyped } = await import('../../src/rpc/xmlrpc.js');
  const text = 'line one\r\nline two\rend & <more>';
  const value = encodeTyped({ kind: 'string' }, text);
  assert.ok(!value.includes('\r'), value);
  const call = await parseMethodCall(`<?xml version="1.0"?><methodCall><methodName>x</methodName><params><param>${value}</param></params></methodCall>`);
  assert.equal(call.params[0], text);
});
