// XML-RPC: requests are decoded by xmlrpc-decode.ts; responses are written directly as
// strings, typed by the datamodel, in xapi's form (bare strings, ints as strings,
// dateTime.iso8601), which the benchmark shows is several times faster than building them through a generic serializer. The store's
// shared records, and shared results, are encoded once each and their bytes kept (see
// typedSuccessBody).
import { classByAnyCase, classes } from '../datamodel/model.js';
import { parseType, type ApiType } from '../datamodel/types.js';
import { isShared } from '../db/cache.js';
import { Chunks } from './chunks.js';
import { isSharedResult } from '../core/shared-results.js';
import { decodeMethodCall, MalformedRequest, type MethodCall } from './xmlrpc-decode.js';

export { MalformedRequest };

/** The call in an XML-RPC request body; rejects with MalformedRequest if it is not one. */
export function parseMethodCall(body: string): Promise<MethodCall> {
  try {
    return Promise.resolve(decodeMethodCall(body));
  } catch (e) {
    return Promise.reject(e);
  }
}

// A raw CR would reach the reader as LF (XML normalises line ends): it travels as a reference.
const ESC = /[&<>\r]/;
export function escapeXml(s: string): string {
  if (!ESC.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** xapi prints doubles like OCaml's %.16g: `1`, `0.5`, `1e+20`. */
export function formatDouble(n: number): string {
  if (Number.isSafeInteger(n)) return String(n); // what the rounding below gives, sooner
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  const g = Number(n.toPrecision(16));
  return String(g);
}

type Encoder = (v: unknown) => string;

/** Each type's encoder, made once from the type (the datamodel shares one object per type). */
const encoders = new WeakMap<ApiType, Encoder>();

function encoderFor(t: ApiType): Encoder {
  let e = encoders.get(t);
  if (!e) {
    e = makeEncoder(t);
    encoders.set(t, e);
  }
  return e;
}

function makeEncoder(t: ApiType): Encoder {
  switch (t.kind) {
    case 'string': case 'ref': case 'enum':
      return (v) => `<value>${escapeXml(typeof v === 'string' ? v : String(v ?? ''))}</value>`;
    case 'int':
      return (v) => `<value>${typeof v === 'number' ? Math.trunc(v) : String(v ?? 0)}</value>`;
    case 'float':
      return (v) => `<value><double>${formatDouble(Number(v ?? 0))}</double></value>`;
    case 'bool':
      return (v) => (v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>');
    case 'datetime':
      return (v) => `<value><dateTime.iso8601>${escapeXml(String(v))}</dateTime.iso8601></value>`;
    case 'void':
      return () => '<value></value>';
    // Inside a record, a container's few items are concatenated: the record's own join
    // then copies them once, where a join here would copy them twice.
    case 'set': {
      const item = encoderFor(t.of);
      return (v) => {
        let s = '<value><array><data>';
        for (const x of (v as unknown[]) ?? []) s += item(x);
        return `${s}</data></array></value>`;
      };
    }
    case 'map': {
      const value = encoderFor(t.value);
      return (v) => {
        let s = '<value><struct>';
        for (const k in v as Record<string, unknown>) s += `<member><name>${escapeXml(k)}</name>${value((v as Record<string, unknown>)[k])}</member>`;
        return `${s}</struct></value>`;
      };
    }
    case 'record':
      return t.cls === 'event' ? (v) => encodeEvent(v as Record<string, unknown>) : recordEncoder(t.cls);
    case 'event_batch':
      return (v) => encodeBatch(v as Batch);
  }
}

/** The `<value>` of v under type t. Each record is joined on its own, and an answer's
 * outer containers are written item by item (putContainer, putTyped): a big answer is
 * then made of flat strings, not a rope of millions of pieces for the GC to trace and
 * for the socket write to flatten. */
export function encodeTyped(t: ApiType, v: unknown): string {
  return encoderFor(t)(v);
}

/** Where encoded text goes: an array to join, or an answer's Chunks. */
interface Sink { push(...s: string[]): unknown }

/** Appends a set's or a map's `<value>` to out, item by item. */
function putContainer(out: Sink, t: ApiType & { kind: 'set' | 'map' }, v: unknown): void {
  if (t.kind === 'set') {
    const item = encoderFor(t.of);
    out.push('<value><array><data>');
    for (const x of (v as unknown[]) ?? []) out.push(item(x));
    out.push('</data></array></value>');
  } else {
    const value = encoderFor(t.value);
    out.push('<value><struct>');
    for (const k in v as Record<string, unknown>) out.push('<member><name>', escapeXml(k), '</name>', value((v as Record<string, unknown>)[k]), '</member>');
    out.push('</struct></value>');
  }
}

/** A record's fields in declaration order, each with its member head and encoder. */
function recordEncoder(cls: string): Encoder {
  const c = classes.get(cls);
  if (!c) return encodeUntyped;
  const fields = c.recordFields.map((f) => ({ name: f.name, head: `<member><name>${f.name}</name>`, value: encoderFor(f.type) }));
  return (v) => {
    const rec = v as Record<string, unknown>;
    const out = ['<value><struct>'];
    for (const f of fields) if (f.name in rec) out.push(f.head, f.value(rec[f.name]), '</member>');
    out.push('</struct></value>');
    return out.join('');
  };
}

/** The whole get_record answer for each shared record, made on first use: a record does
 * not change while it lives (a write makes a new one), so its encoding stays true. Other
 * answers (get_all_records) take the record's `<value>` out of it without a copy. The
 * same holds for a shared result (shared.ts), such as one event batch sent to many. */
const recordAnswers = new WeakMap<object, Buffer>();

function recordAnswer(t: ApiType, rec: object): Buffer {
  let b = recordAnswers.get(rec);
  if (!b) {
    if (isShared(rec)) {
      b = Buffer.from(`${SUCCESS_HEAD}${encoderFor(t)(rec)}${SUCCESS_TAIL}`);
    } else {
      const c = new Chunks();
      c.push(SUCCESS_HEAD);
      putTyped(c, t, rec);
      c.push(SUCCESS_TAIL);
      b = c.toBuffer();
    }
    recordAnswers.set(rec, b);
  }
  return b;
}

/** A shared record's `<value>`, out of its kept get_record answer without a copy. */
function putSharedRecord(out: Chunks, t: ApiType, rec: object): void {
  const b = recordAnswer(t, rec);
  out.bytes(b.subarray(SUCCESS_HEAD.length, b.length - SUCCESS_TAIL.length));
}

/** Appends the `<value>` of v under type t to out; the store's shared records go in as
 * their kept bytes, and a set's or map's items one by one so that they can. */
function putTyped(out: Chunks, t: ApiType, v: unknown): void {
  if (t.kind === 'record' && isShared(v)) {
    putSharedRecord(out, t, v);
  } else if (t.kind === 'event_batch') {
    putBatch(out, v as Batch);
  } else if (t.kind === 'set' && t.of.kind === 'record' && t.of.cls === 'event') {
    putEvents(out, v as Array<Record<string, unknown>>);
  } else if (t.kind === 'set' && t.of.kind === 'record') {
    out.push('<value><array><data>');
    for (const x of (v as unknown[]) ?? []) putTyped(out, t.of, x);
    out.push('</data></array></value>');
  } else if (t.kind === 'map' && t.value.kind === 'record') {
    out.push('<value><struct>');
    for (const k in v as Record<string, unknown>) {
      out.push('<member><name>', escapeXml(k), '</name>');
      putTyped(out, t.value, (v as Record<string, unknown>)[k]);
      out.push('</member>');
    }
    out.push('</struct></value>');
  } else if (t.kind === 'set' || t.kind === 'map') {
    putContainer(out, t, v);
  } else {
    out.push(encoderFor(t)(v));
  }
}

interface Batch { events: Array<Record<string, unknown>>; valid_ref_counts: Record<string, number>; token: string }

function encodeBatch(b: Batch): string {
  const out = new Chunks();
  putBatch(out, b);
  return out.toBuffer().toString();
}

/** An event batch, its events' snapshots written as the records' kept bytes when they
 * are the store's shared records (answer after answer, most snapshots are the same). */
function putBatch(out: Chunks, b: Batch): void {
  out.push('<value><struct><member><name>events</name>');
  putEvents(out, b.events);
  let s = '</member><member><name>valid_ref_counts</name><value><struct>';
  for (const k in b.valid_ref_counts) s += `<member><name>${escapeXml(k)}</name><value><i4>${b.valid_ref_counts[k]}</i4></value></member>`;
  out.push(`${s}</struct></value></member><member><name>token</name><value>${escapeXml(b.token)}</value></member></struct></value>`);
}

function putEvents(out: Chunks, events: Array<Record<string, unknown>>): void {
  out.push('<value><array><data>');
  for (const e of events) putEvent(out, e);
  out.push('</data></array></value>');
}

/** An event: every member a string, except the snapshot, typed by the object's class. */
function putEvent(out: Chunks, e: Record<string, unknown>): void {
  let s = '<value><struct>';
  for (const k of ['id', 'timestamp', 'class', 'operation', 'ref']) {
    s += `<member><name>${k}</name><value>${escapeXml(String(e[k] ?? ''))}</value></member>`;
  }
  const snap = e.snapshot;
  if (snap) {
    out.push(s, '<member><name>snapshot</name>');
    const t = snapshotType(String(e.class));
    if (t && isShared(snap)) putSharedRecord(out, t, snap);
    else out.push(t ? encoderFor(t)(snap) : encodeUntyped(snap));
    out.push('</member></struct></value>');
  } else {
    out.push(s, '</struct></value>');
  }
}

function encodeEvent(e: Record<string, unknown>): string {
  const out = new Chunks();
  putEvent(out, e);
  return out.toBuffer().toString();
}

/** The record type of each class an event names, made once (parseType makes a new type
 * each time, and encoderFor keeps one encoder per type object). */
const snapshotTypes = new Map<string, ApiType | undefined>();

function snapshotType(eventClass: string): ApiType | undefined {
  if (!snapshotTypes.has(eventClass)) {
    const cls = classByAnyCase(eventClass);
    snapshotTypes.set(eventClass, cls ? parseType(`${cls.name} record`) : undefined);
  }
  return snapshotTypes.get(eventClass);
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

const SUCCESS_HEAD = `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>`;
const SUCCESS_TAIL = `</member></struct></value>${TAIL}`;

export function successResponse(valueXml: string): string {
  return `${SUCCESS_HEAD}${valueXml}${SUCCESS_TAIL}`;
}

/** successResponse(encodeTyped(t, v)) in parts: no copy of a big answer to wrap it, and
 * the store's shared records as the bytes kept from their first encoding. */
export function typedSuccessBody(t: ApiType, v: unknown): Chunks {
  const out = new Chunks();
  if ((t.kind === 'record' && isShared(v)) || isSharedResult(v)) {
    out.bytes(recordAnswer(t, v));
  } else {
    out.push(SUCCESS_HEAD);
    putTyped(out, t, v);
    out.push(SUCCESS_TAIL);
  }
  return out;
}

export function failureResponse(description: string[]): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name>${encodeUntyped(description)}</member></struct></value>${TAIL}`;
}

/** A bare result, not wrapped in a Status struct (system.listMethods does this). */
export function rawResponse(valueXml: string): string {
  return `${HEAD}${valueXml}${TAIL}`;
}
