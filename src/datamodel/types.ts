// Parsed XenAPI types. Everything that checks, converts, stores or encodes a value
// works from these, never from the type strings directly.

export type ApiType =
  | { kind: 'string' | 'int' | 'float' | 'bool' | 'datetime' | 'void' }
  | { kind: 'ref'; cls: string }
  | { kind: 'enum'; name: string }
  | { kind: 'set'; of: ApiType }
  | { kind: 'map'; key: ApiType; value: ApiType }
  | { kind: 'record'; cls: string }
  /** event.from's answer: {events, valid_ref_counts, token}. */
  | { kind: 'event_batch' };

const cache = new Map<string, ApiType>();
const PRIMITIVES = new Set(['string', 'int', 'float', 'bool', 'datetime', 'void']);

/** Parses xapi's type spelling: `int`, `VM ref`, `enum x`, `T set`, `(K -> V) map`, `VM record`. */
export function parseType(text: string): ApiType {
  const hit = cache.get(text);
  if (hit) return hit;
  const t = parse(text.trim());
  cache.set(text, t);
  return t;
}

function parse(s: string): ApiType {
  if (s === 'an event batch') return { kind: 'event_batch' };
  if (s.endsWith(' set')) return { kind: 'set', of: parse(s.slice(0, -4)) };
  if (s.endsWith(' map')) {
    const inner = s.slice(0, -4).trim();
    if (!inner.startsWith('(') || !inner.endsWith(')')) throw new Error(`bad map type: ${s}`);
    const body = inner.slice(1, -1);
    const arrow = body.indexOf(' -> ');
    return { kind: 'map', key: parse(body.slice(0, arrow)), value: parse(body.slice(arrow + 4)) };
  }
  if (s.startsWith('enum ')) return { kind: 'enum', name: s.slice(5) };
  if (s.endsWith(' ref')) return { kind: 'ref', cls: s.slice(0, -4) };
  if (s.endsWith(' record')) return { kind: 'record', cls: s.slice(0, -7) };
  if (PRIMITIVES.has(s)) return { kind: s as 'string' };
  throw new Error(`unknown type: ${s}`);
}

export function typeToString(t: ApiType): string {
  switch (t.kind) {
    case 'ref': return `${t.cls} ref`;
    case 'record': return `${t.cls} record`;
    case 'enum': return `enum ${t.name}`;
    case 'set': return `${typeToString(t.of)} set`;
    case 'map': return `(${typeToString(t.key)} -> ${typeToString(t.value)}) map`;
    case 'event_batch': return 'an event batch';
    default: return t.kind;
  }
}
