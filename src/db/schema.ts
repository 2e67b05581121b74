// The SQLite schema as the datamodel implies it: one table per class, one column per
// stored field (sets and maps as JSON text), plus the daemon's own tables. The
// migration files are generated from this and tested against it.
import { classes, type ClassModel, type FieldModel } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';

export const q = (name: string) => `"${name}"`;

export function sqlType(t: ApiType): string {
  switch (t.kind) {
    case 'int': case 'bool': return 'INTEGER';
    case 'float': return 'REAL';
    default: return 'TEXT';
  }
}

/** A value as SQLite stores it. */
export function toDb(t: ApiType, v: unknown): unknown {
  switch (t.kind) {
    case 'bool': return v ? 1 : 0;
    case 'string': return typeof v === 'string' ? xmlPrefix(v) : v;
    case 'set': case 'map': return JSON.stringify(xmlSafe(t, v));
    default: return v;
  }
}

// Anything outside XML 1.0's Char production: most C0 controls, lone surrogates, U+FFFE/U+FFFF.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** The longest prefix of s that XML can carry. As xapi's database does (ensure_utf8_xml),
 * stored strings are cut there: otherwise one JSON-RPC client could store a value that
 * makes every later XML-RPC answer holding it unreadable. */
export function xmlPrefix(s: string): string {
  const m = NOT_XML_CHAR.exec(s);
  return m ? s.slice(0, m.index) : s;
}

/** xmlPrefix applied to every string in a set or map (elements, keys and values). */
function xmlSafe(t: ApiType, v: unknown): unknown {
  switch (t.kind) {
    case 'string': return typeof v === 'string' ? xmlPrefix(v) : v;
    case 'set': return Array.isArray(v) ? v.map((x) => xmlSafe(t.of, x)) : v;
    case 'map': {
      if (typeof v !== 'object' || v === null) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        Object.defineProperty(out, String(xmlSafe(t.key, k)), { value: xmlSafe(t.value, x), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default: return v;
  }
}

export function sqlLiteral(t: ApiType, v: unknown): string {
  const d = toDb(t, v);
  return typeof d === 'number' ? String(d) : `'${String(d).replace(/'/g, "''")}'`;
}

export function columnSql(f: FieldModel): string {
  return `${q(f.name)} ${sqlType(f.type)} NOT NULL DEFAULT ${sqlLiteral(f.type, f.initial)}`;
}

export function classTableSql(c: ClassModel): string[] {
  const cols = ['"ref" TEXT PRIMARY KEY', ...c.storedFields.map(columnSql)];
  const out = [`CREATE TABLE ${q(c.name)} (\n  ${cols.join(',\n  ')}\n);`];
  if (c.fields.has('uuid')) out.push(`CREATE UNIQUE INDEX ${q(`${c.name}_uuid`)} ON ${q(c.name)} ("uuid");`);
  if (c.hasNameLabel) out.push(`CREATE INDEX ${q(`${c.name}_name_label`)} ON ${q(c.name)} ("name_label");`);
  for (const f of c.storedFields) {
    if (f.bound) out.push(`CREATE INDEX ${q(`${c.name}_${f.name}`)} ON ${q(c.name)} (${q(f.name)});`);
  }
  return out;
}

/** The daemon's own tables: change log (the event feed's source) and credentials. */
export const internalTablesSql = [
  `CREATE TABLE "_changes" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "ts" REAL NOT NULL,
  "cls" TEXT NOT NULL,
  "op" TEXT NOT NULL CHECK ("op" IN ('add', 'mod', 'del')),
  "ref" TEXT NOT NULL,
  "uuid" TEXT NOT NULL,
  "snapshot" TEXT
);`,
  `CREATE TABLE "_passwords" (
  "uname" TEXT PRIMARY KEY,
  "hash" TEXT NOT NULL
);`,
  `CREATE TABLE "_session_auth" (
  "ref" TEXT PRIMARY KEY,
  "uname" TEXT NOT NULL,
  "originator" TEXT NOT NULL
);`,
];

/** The whole schema, as the first migration creates it. */
export function fullSchemaSql(): string {
  const parts = [...internalTablesSql];
  for (const c of classes.values()) if (c.stored) parts.push(...classTableSql(c));
  return parts.join('\n\n') + '\n';
}
