// XML-RPC: requests are decoded with the `xmlrpc` package's streaming deserializer;
// responses are written directly as strings, typed by the datamodel, in xapi's form
// (bare strings, ints as strings, dateTime.iso8601), which the benchmark shows is
// several times faster than building them through a generic serializer.
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { classByAnyCase, classes } from '../datamodel/model.js';
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
      return t.cls === 'event' ? encodeEvent(v as Record<string, unknown>) : encodeRecord(t.cls, v as Record<string, unknown>);
    case 'event_batch': {
      const b = v as { events: Array<Record<string, unknown>>; valid_ref_counts: Record<string, number>; token: string };
      let s = '<value><struct><member><name>events</name><value><array><data>';
      for (const e of b.events) s += encodeEvent(e);
      s += '</data></array></value></member><member><name>valid_ref_counts</name><value><struct>';
      for (const k in b.valid_ref_counts) s += `<member><name>${escapeXml(k)}</name><value><i4>${b.valid_ref_counts[k]}</i4></value></member>`;
      return `${s}</struct></value></member><member><name>token</name><value>${escapeXml(b.token)}</value></member></struct></value>`;
    }
  }
}

/** An event: every member a string, except the snapshot, typed by the object's class. */
function encodeEvent(e: Record<string, unknown>): string {
  let s = '<value><struct>';
  for (const k of ['id', 'timestamp', 'class', 'operation', 'ref']) {
    s += `<member><name>${k}</name><value>${escapeXml(String(e[k] ?? ''))}</value></member>`;
  }
  if (e.snapshot) {
    const cls = classByAnyCase(String(e.class));
    const snap = e.snapshot as Record<string, unknown>;
    s += `<member><name>snapshot</name>${cls ? encodeRecord(cls.name, snap) : encodeUntyped(snap)}</member>`;
  }
  return s + '</struct></value>';
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
