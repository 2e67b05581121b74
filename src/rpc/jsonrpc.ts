// JSON-RPC 1.0 and 2.0 as xapi speaks them: the result is the bare value; a failure
// is the ErrorDescription array (1.0) or {code, message: CODE, data: params} (2.0).
import type { ApiType } from '../datamodel/types.js';
import { isShared } from '../db/cache.js';
import { Chunks } from './chunks.js';
import { isSharedResult } from '../core/shared-results.js';
import type { Outcome } from './dispatch.js';

export interface JsonCall {
  method: string;
  params: unknown[];
  id: unknown;
  v2: boolean;
}

export function parseJsonCall(text: string): JsonCall {
  const v = JSON.parse(text) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the request is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.method !== 'string') throw new Error('"method" is missing or not a string');
  if (o.params !== undefined && !Array.isArray(o.params)) throw new Error('"params" is not an array');
  if (o.id === undefined || o.id === null) throw new Error('"id" is missing or null');
  return { method: o.method, params: (o.params as unknown[]) ?? [], id: o.id, v2: o.jsonrpc === '2.0' };
}

export function encodeJson(call: JsonCall, o: Outcome): Chunks {
  const id = JSON.stringify(call.id);
  const out = new Chunks();
  if (!o.ok) {
    const [code, ...data] = o.error.description;
    out.push(call.v2
      ? `{"jsonrpc":"2.0","error":${JSON.stringify({ code: 1, message: code, data })},"id":${id}}`
      : `{"result":null,"error":${JSON.stringify(o.error.description)},"id":${id}}`);
    return out;
  }
  // The answer as JSON.stringify would write it, wrapper and all, but with the store's
  // shared records as the bytes kept from their first encoding.
  out.push(call.v2 ? '{"jsonrpc":"2.0","result":' : '{"result":');
  if ('raw' in o) putJson(out, undefined, o.raw);
  else putJson(out, o.type, o.value ?? '');
  out.push(call.v2 ? `,"id":${id}}` : `,"error":null,"id":${id}}`);
  return out;
}

/** The JSON of each shared record or result, made on first use (neither ever changes;
 * see cache.ts and shared.ts). */
const sharedJson = new WeakMap<object, Buffer>();

function putJson(out: Chunks, t: ApiType | undefined, v: unknown): void {
  if (typeof v !== 'object' || v === null) {
    out.push(JSON.stringify(v));
  } else if (isShared(v) || isSharedResult(v)) {
    let b = sharedJson.get(v);
    if (!b) {
      if (isShared(v)) {
        b = Buffer.from(JSON.stringify(v));
      } else {
        const c = new Chunks();
        putComposed(c, t, v);
        b = c.toBuffer();
      }
      sharedJson.set(v, b);
    }
    out.bytes(b);
  } else {
    putComposed(out, t, v);
  }
}

/** Answers that hold records are written around the records' kept bytes: a
 * get_all_records map, and the events of event.from and event.next, whose snapshots
 * are mostly the same records answer after answer. */
function putComposed(out: Chunks, t: ApiType | undefined, v: object): void {
  if (t?.kind === 'map' && t.value.kind === 'record') {
    let sep = '{';
    for (const k of Object.keys(v)) {
      if ((v as Record<string, unknown>)[k] === undefined) continue;
      out.push(sep, JSON.stringify(k), ':');
      putJson(out, t.value, (v as Record<string, unknown>)[k]);
      sep = ',';
    }
    out.push(sep === '{' ? '{}' : '}');
  } else if (t?.kind === 'event_batch') {
    const b = v as { events: object[]; valid_ref_counts: unknown; token: unknown };
    out.push('{"events":');
    putEvents(out, b.events);
    out.push(',"valid_ref_counts":', JSON.stringify(b.valid_ref_counts), ',"token":', JSON.stringify(b.token), '}');
  } else if (t?.kind === 'set' && t.of.kind === 'record' && t.of.cls === 'event') {
    putEvents(out, v as object[]);
  } else {
    out.push(JSON.stringify(v));
  }
}

function putEvents(out: Chunks, events: object[]): void {
  let sep = '[';
  for (const e of events) {
    out.push(sep);
    sep = ',';
    const { snapshot, ...rest } = e as { snapshot?: unknown };
    const head = JSON.stringify(rest);
    if (snapshot === undefined) {
      out.push(head);
    } else {
      out.push(head.slice(0, -1), ',"snapshot":');
      putJson(out, undefined, snapshot);
      out.push('}');
    }
  }
  out.push(sep === '[' ? '[]' : ']');
}
