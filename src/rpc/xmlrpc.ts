// XML-RPC: requests are decoded with the `xmlrpc` package's streaming deserializer;
// responses are written directly as strings, typed by the datamodel, in xapi's form
// (bare strings, ints as strings, dateTime.iso8601), which the benchmark shows is
// several times faster than building them through a generic serializer.
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { classes } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';

const require = createRequire(import.meta.url);
type DeserializerCtor = new () => {
  deserializeMethodCall(stream: Readable, cb: (err: Error | null | undefined, method?: string, params?: unknown[]) => void): void;
};
const Deserializer: DeserializerCtor = require('xmlrpc/lib/deserializer');

export class MalformedRequest extends Error {}

export function parseMethodCall(body: string): Promise<{ method: string; params: unknown[] }> {
  return new Promise((resolve, reject) => {
    new Deserializer().deserializeMethodCall(Readable.from([body]), (err, method, params) => {
      if (err || typeof method !== 'string' || !Array.isArray(params)) {
        reject(new MalformedRequest(err?.message ?? 'not an XML-RPC methodCall'));
      } else {
        resolve({ method, params });
      }
    });
  });
}

const ESC = /[&<>]/;
export function escapeXml(s: string): string {
  if (!ESC.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** xapi prints doubles like OCaml's %.16g: `1`, `0.5`, `1e+20`. */
export function formatDouble(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  const g = Number(n.toPrecision(16));
  return String(g);
}

/** The `<value>` of v under type t. */
export function encodeTyped(t: ApiType, v: unknown): string {
  switch (t.kind) {
    case 'string': case 'ref': case 'enum':
      return `<value>${escapeXml(String(v ?? ''))}</value>`;
    case 'int':
      return `<value>${typeof v === 'number' ? Math.trunc(v) : String(v ?? 0)}</value>`;
    case 'float':
      return `<value><double>${formatDouble(Number(v ?? 0))}</double></value>`;
    case 'bool':
      return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
    case 'datetime':
      return `<value><dateTime.iso8601>${escapeXml(String(v))}</dateTime.iso8601></value>`;
    case 'void':
      return '<value></value>';
    case 'set': {
      let s = '<value><array><data>';
      for (const x of (v as unknown[]) ?? []) s += encodeTyped(t.of, x);
      return s + '</data></array></value>';
    }
    case 'map': {
      let s = '<value><struct>';
      for (const k in v as Record<string, unknown>) {
        s += `<member><name>${escapeXml(k)}</name>${encodeTyped(t.value, (v as Record<string, unknown>)[k])}</member>`;
      }
      return s + '</struct></value>';
    }
    case 'record':
      return encodeRecord(t.cls, v as Record<string, unknown>);
  }
}

function encodeRecord(cls: string, rec: Record<string, unknown>): string {
  const c = classes.get(cls);
  if (!c) return encodeUntyped(rec);
  let s = '<value><struct>';
  for (const f of c.recordFields) {
    if (!(f.name in rec)) continue;
    s += `<member><name>${f.name}</name>${encodeTyped(f.type, rec[f.name])}</member>`;
  }
  return s + '</struct></value>';
}

/** For values without a declared type (errors, listMethods, event records). */
export function encodeUntyped(v: unknown): string {
  if (v === null || v === undefined) return '<value></value>';
  if (typeof v === 'string') return `<value>${escapeXml(v)}</value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') return Number.isInteger(v) ? `<value>${v}</value>` : `<value><double>${formatDouble(v)}</double></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeUntyped).join('')}</data></array></value>`;
  let s = '<value><struct>';
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) s += `<member><name>${escapeXml(k)}</name>${encodeUntyped(x)}</member>`;
  return s + '</struct></value>';
}

const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = '</param></params></methodResponse>';

export function successResponse(valueXml: string): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${valueXml}</member></struct></value>${TAIL}`;
}

export function failureResponse(description: string[]): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name>${encodeUntyped(description)}</member></struct></value>${TAIL}`;
}

/** A bare result, not wrapped in a Status struct (system.listMethods does this). */
export function rawResponse(valueXml: string): string {
  return `${HEAD}${valueXml}${TAIL}`;
}
