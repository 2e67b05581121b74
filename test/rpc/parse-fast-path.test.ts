// parseMethodCall reads the usual call (a method name and string parameters) with a
// regular expression and everything else with sax; both must give what the xmlrpc
// package's own deserializer gives, errors included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { parseMethodCall } from '../../src/rpc/xmlrpc.js';

type Deser = new () => {
  responseType: string | null;
  deserializeMethodCall(s: Readable, cb: (err: Error | null, method?: string, params?: unknown[]) => void): void;
};
const Deserializer = createRequire(import.meta.url)('xmlrpc/lib/deserializer') as Deser;

/** The package's deserializer on a stream, as the daemon used it before (no structs here). */
function reference(body: string): Promise<string> {
  return new Promise((resolve) => {
    const d = new Deserializer();
    d.deserializeMethodCall(Readable.from([body]), (err, method, params) => {
      if (err || typeof method !== 'string' || !Array.isArray(params)) resolve('error');
      else if (d.responseType !== 'params') resolve('error');
      else resolve(JSON.stringify({ method, params }));
    });
  });
}

const ours = (body: string) => parseMethodCall(body).then((r) => JSON.stringify(r), () => 'error');

const call = (params: string[], name: string, decl: string, sep: string) =>
  `${decl}${sep}<methodCall>${sep}<methodName>${name}</methodName>${sep}<params>${sep}${
    params.map((p) => `<param>${sep}${p}${sep}</param>${sep}`).join('')
  }</params>${sep}</methodCall>${sep}`;

function corpus(): string[] {
  const texts = ['OpaqueRef:7c3b', '', ' ', ' padded ', 'a>b', 'tab\tnl\n', 'ünï 日本 😀', ']]>', '?>', 'a&amp;b', 'a\r\nb', 'x'.repeat(200)];
  const out: string[] = [];
  for (const t of texts) {
    for (const sep of ['', ' ', '\n\t']) {
      for (const decl of ['', '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>\n']) {
        out.push(
          call([`<value><string>${t}</string></value>`, `<value>${t}</value>`], 'VM.get_record', decl, sep),
          call([], t || 'm', decl, sep),
        );
      }
    }
  }
  out.push(
    call(['<value><int>1</int></value>'], 'm', '', ''),
    call(['<value>\n<string>x</string>\n</value>'], 'm', '', ''),
    call(['<value><![CDATA[<x>]]></value>'], 'm', '', ''),
    '<methodCall><methodName>x</methodName></methodCall>',
    '<methodCall><methodName></methodName><params></params></methodCall>',
    '<!-- c --><methodCall><methodName>x</methodName><params></params></methodCall>',
    'junk<methodCall><methodName>x</methodName><params></params></methodCall>',
    '<METHODCALL><methodName>x</methodName><params></params></METHODCALL>',
    '',
  );
  return out;
}

test('the fast path and sax agree with the xmlrpc package on simple calls and their mutations', async () => {
  const bodies = corpus();
  let seed = 11;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['<', '>', '&', '\r', '\n', ' ', '</value>', '<string>', '</param>', '<![CDATA[', '&lt;'];
  for (let i = 0; i < 3000; i++) {
    let s = bodies[rnd(bodies.length)]!;
    const k = rnd(s.length + 1);
    s = rnd(2) ? s.slice(0, k) + pieces[rnd(pieces.length)] + s.slice(k) : s.slice(0, k) + s.slice(k + 1 + rnd(4));
    bodies.push(s);
  }
  for (const body of bodies) assert.equal(await ours(body), await reference(body), JSON.stringify(body));
});
