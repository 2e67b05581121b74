// The RecordCodec (src/core/record-codec.ts) in XML-RPC, as xapi writes VM.last_booted_record.
import type { RecordCodec } from '../core/record-codec.js';
import { classes } from '../datamodel/model.js';
import { fromWire } from './convert.js';
import { encodeTyped, parseMethodCall } from './xmlrpc.js';

export const xmlRecordCodec: RecordCodec = {
  encode(cls, rec) {
    return encodeTyped({ kind: 'record', cls }, rec);
  },

  async decode(cls, text) {
    let v: unknown;
    try {
      // The value is read as a call's only parameter: the decoder reads whole calls.
      v = (await parseMethodCall(`<?xml version="1.0"?><methodCall><methodName>x</methodName><params><param>${text}</param></params></methodCall>`)).params[0];
    } catch {
      return undefined;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const wire = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of classes.get(cls)!.recordFields) {
      if (f.computedFrom || !(f.name in wire)) continue;
      try {
        out[f.name] = fromWire(f.type, wire[f.name], f.name);
      } catch {
        /* a field that no longer decodes is left out: the caller keeps its current value */
      }
    }
    return out;
  },
};
