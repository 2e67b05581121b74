// Checks and converts a decoded wire value (from XML-RPC or JSON-RPC) into the
// daemon's value for an API type. Recursion follows the expected type, never the
// input, so a deeply nested argument cannot run the stack down.
import { classes, enums } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';
import { fail } from '../core/errors.js';
import { parseDateTime, formatDateTime } from '../core/datetime.js';

const INT = /^-?\d+$/;
const FLOAT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v);

/** `where` names the parameter or field for FIELD_TYPE_ERROR. */
export function fromWire(t: ApiType, v: unknown, where: string): unknown {
  switch (t.kind) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'ref':
      if (typeof v === 'string') return v;
      break;
    case 'int':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
      if (typeof v === 'string' && INT.test(v.trim()) && Number.isSafeInteger(Number(v))) return Number(v);
      break;
    case 'float':
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && FLOAT.test(v.trim())) return Number(v);
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'datetime': {
      if (v instanceof Date && !Number.isNaN(v.getTime())) return formatDateTime(v);
      const d = typeof v === 'string' ? parseDateTime(v) : undefined;
      if (d) return d;
      break;
    }
    case 'enum':
      if (typeof v === 'string') {
        if (!enums[t.name]?.includes(v)) fail('INVALID_VALUE', where, v);
        return v;
      }
      break;
    case 'set':
      if (Array.isArray(v)) {
        const out = v.map((x) => fromWire(t.of, x, where));
        return t.of.kind === 'ref' || t.of.kind === 'string' || t.of.kind === 'enum' ? [...new Set(out)] : out;
      }
      break;
    case 'map':
      if (isPlainObject(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          // defined, not assigned, so that a key such as "__proto__" stays a plain key
          Object.defineProperty(out, String(fromWire(t.key, k, where)), { value: fromWire(t.value, x, where), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      break;
    case 'record':
      if (isPlainObject(v)) return recordFromWire(t.cls, v);
      break;
    case 'void':
      return undefined;
  }
  fail('FIELD_TYPE_ERROR', where);
}

/** A constructor's record argument: only the fields a constructor may set are kept. */
export function recordFromWire(cls: string, v: Record<string, unknown>): Record<string, unknown> {
  const c = classes.get(cls)!;
  const out: Record<string, unknown> = {};
  for (const [name, x] of Object.entries(v)) {
    const f = c.fields.get(name);
    if (!f || f.removed || f.computedFrom) continue;
    out[name] = fromWire(f.type, x, name);
  }
  return out;
}
