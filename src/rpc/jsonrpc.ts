// JSON-RPC 1.0 and 2.0 as xapi speaks them: the result is the bare value; a failure
// is the ErrorDescription array (1.0) or {code, message: CODE, data: params} (2.0).
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

export function encodeJson(call: JsonCall, o: Outcome): string {
  const id = JSON.stringify(call.id);
  if (!o.ok) {
    const [code, ...data] = o.error.description;
    return call.v2
      ? `{"jsonrpc":"2.0","error":${JSON.stringify({ code: 1, message: code, data })},"id":${id}}`
      : `{"result":null,"error":${JSON.stringify(o.error.description)},"id":${id}}`;
  }
  const result = 'raw' in o ? o.raw : o.value ?? '';
  const shared = typeof result === 'object' && result !== null ? sharedJson.get(result) : undefined;
  if (shared !== undefined) {
    return call.v2 ? `{"jsonrpc":"2.0","result":${shared},"id":${id}}` : `{"result":${shared},"error":null,"id":${id}}`;
  }
  // One stringify of the whole answer: a big result is written once, not copied again to wrap it.
  return JSON.stringify(call.v2 ? { jsonrpc: '2.0', result, id: call.id } : { result, error: null, id: call.id });
}

/** Results handed to many callers at once (an event batch that wakes every watcher)
 * are serialised once; see markShared. */
const sharedJson = new WeakMap<object, string>();

export function markShared(result: object): void {
  if (!sharedJson.has(result)) sharedJson.set(result, JSON.stringify(result));
}
