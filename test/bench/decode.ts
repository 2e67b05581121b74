// The XML-RPC request decoder alone, in this process: the daemon's decoder (saxes and
// xmlrpc-decode.ts) against the one it replaced (the `xmlrpc` package's deserializer fed
// by sax's non-strict parser, rebuilt here as it was), on calls that miss the fast path,
// and on one that takes it. Not part of `npm test`.
//
//   npm run build && node dist/test/bench/decode.js      (BENCH_REPS=7 rounds by default)
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { classes } from '../../src/datamodel/model.js';
import type { ApiType } from '../../src/datamodel/types.js';
import { parseMethodCall } from '../../src/rpc/xmlrpc.js';
import { decodeMethodCallXml, parseSimpleCall, type MethodCall } from '../../src/rpc/xmlrpc-decode.js';

const require = createRequire(import.meta.url);
const REPS = Number(process.env.BENCH_REPS ?? 7);
const serializer = require('xmlrpc/lib/serializer') as { serializeMethodCall(method: string, params: unknown[]): string };

// ---- the decoder before: the package's deserializer on sax's plain parser --------------

interface SaxParser {
  onopentag(n: unknown): void; onclosetag(n: string): void; ontext(t: string): void; oncdata(t: string): void;
  onend(): void; onerror(e: Error): void; error: Error | null; write(s: string): SaxParser; close(): void;
}
const sax = require('sax') as { parser(strict: boolean): SaxParser };
const Base = require('xmlrpc/lib/deserializer') as new () => any;

class OldDeserializer extends Base {
  endStruct(): void {
    const mark = this.marks.pop() as number;
    const items = this.stack.slice(mark) as unknown[];
    const struct: Record<string, unknown> = {};
    for (let i = 0; i < items.length; i += 2) {
      Object.defineProperty(struct, String(items[i]), { value: items[i + 1], enumerable: true, writable: true, configurable: true });
    }
    this.stack.splice(mark, this.stack.length - mark, struct);
    this.value = false;
  }
}

function oldDecode(body: string): MethodCall {
  const d = Object.assign(Object.create(OldDeserializer.prototype as object), {
    type: null, responseType: null, stack: [], marks: [], data: [], methodname: null,
    encoding: 'utf8', value: false, callback: null, error: null,
  });
  let out: MethodCall | Error | undefined;
  const stream = {
    setEncoding() {}, on() {},
    pipe() {
      const p = sax.parser(false);
      p.onopentag = (n) => d.onOpentag(n);
      p.onclosetag = (n) => d.onClosetag(n);
      p.ontext = (t) => d.onText(t);
      p.oncdata = (t) => d.onCDATA(t);
      p.onend = () => d.onDone();
      p.onerror = (e) => { d.onError(e); p.error = null; };
      p.write(body).close();
    },
  };
  d.deserializeMethodCall(stream, (err: Error | undefined, method: string, params: unknown[]) => {
    out = err ?? (d.responseType === 'params' ? { method, params } : new Error('no params'));
  });
  if (!out || out instanceof Error) throw out ?? new Error('no answer');
  return out;
}

// ---- the calls ----------------------------------------------------------------------------

const SESSION = 'OpaqueRef:5b2f4a1e-9c6d-4f7e-8a3b-2d1c0e9f8a7b';
const VM = 'OpaqueRef:0e8c7d6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b';

/** A value of type t such as a client would send in a full VM record. */
function sample(t: ApiType, name: string): unknown {
  switch (t.kind) {
    case 'string': return `${name} of the bench VM`;
    case 'ref': return `OpaqueRef:${name.length.toString(16).padStart(8, '0')}-1111-2222-3333-444455556666`;
    case 'enum': return 'Halted';
    case 'int': return 4294967296;
    case 'float': return 0.5;
    case 'bool': return false;
    case 'datetime': return new Date(Date.UTC(2025, 0, 1));
    case 'set': return [sample(t.of, name), sample(t.of, name)];
    case 'map': return { [`${name}-a`]: sample(t.value, name), [`${name}-b`]: sample(t.value, name) };
    default: return '';
  }
}

const vmRecord = Object.fromEntries(classes.get('VM')!.recordFields.map((f) => [f.name, sample(f.type, f.name)]));
const calls: Array<[string, string]> = [
  ['VM.set_other_config (a 6-member struct)', serializer.serializeMethodCall('VM.set_other_config', [SESSION, VM,
    { folder: '/bench/vms', 'xo:resource_set': 'rs-42', auto_poweron: 'true', base_template_name: 'Debian Bookworm 12', install_methods: 'cdrom,nfs,http,ftp', mac_seed: '0f3a5b1c-7d2e-4a6f-9b8c-3e1d5f7a9c2b' }])],
  [`VM.create (a full record, ${Object.keys(vmRecord).length} fields)`, serializer.serializeMethodCall('VM.create', [SESSION, vmRecord])],
  ['VM.get_record (fast path, both)', `<?xml version="1.0"?><methodCall><methodName>VM.get_record</methodName><params><param><value><string>${SESSION}</string></value></param><param><value><string>${VM}</string></value></param></params></methodCall>`],
];

// ---- the run ------------------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** µs per call of f on body, over a batch sized to take about 100 ms. */
function perCall(f: (b: string) => unknown, body: string, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f(body);
  return ((performance.now() - t0) * 1000) / n;
}

/** parseMethodCall as it was: the same fast path, then the old decoder. */
const oldParse = (body: string) => Promise.resolve(parseSimpleCall(body) ?? oldDecode(body));

async function main(): Promise<void> {
  process.stdout.write(`XML-RPC request decoder, node ${process.version}; median of ${REPS} alternating rounds of about 100 ms each\n`);
  for (const [label, body] of calls) {
    const fast = label.includes('fast path');
    const oldF = fast ? oldParse : oldDecode;
    const newF = fast ? parseMethodCall : decodeMethodCallXml;
    // both must read the call alike before their speeds mean anything
    const a = JSON.stringify(await oldF(body));
    const b = JSON.stringify(await newF(body));
    if (a !== b) throw new Error(`${label}: the decoders disagree\n${a}\n${b}`);
    const warm = perCall(oldF, body, 2000) + perCall(newF, body, 2000);
    const n = Math.max(100, Math.round(100_000 / warm));
    const olds: number[] = [];
    const news: number[] = [];
    for (let r = 0; r < REPS; r++) {
      olds.push(perCall(oldF, body, n));
      news.push(perCall(newF, body, n));
    }
    const o = median(olds);
    const m = median(news);
    process.stdout.write(`  ${label} — ${body.length} bytes\n`);
    process.stdout.write(`    before (xmlrpc package + sax): ${o.toFixed(2).padStart(8)} µs/call\n`);
    process.stdout.write(`    now (saxes + xmlrpc-decode):   ${m.toFixed(2).padStart(8)} µs/call   (${(o / m).toFixed(2)}× the speed)\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`decode bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
