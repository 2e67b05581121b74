// How records sit in SQLite: the statements prepared for each class (one table per
// class, one column per stored field) and the decoding of a row into a record.
import type Database from 'better-sqlite3';
import { NULL_REF, type ClassModel } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';
import { q } from './schema.js';

type ApiRecord = Record<string, unknown>;

function fromDb(t: ApiType, v: unknown): unknown {
  switch (t.kind) {
    case 'bool': return v === 1;
    case 'set': case 'map': return JSON.parse(v as string);
    default: return v;
  }
}

export interface ClassStatements {
  one: Database.Statement;
  all: Database.Statement;
  exists: Database.Statement;
  uuid: Database.Statement;
  byUuid: Database.Statement;
  byNameLabel?: Database.Statement;
  insert: Database.Statement;
  del: Database.Statement;
  /** For each computed field: the refs pointing at one object / every (target, ref) pair. */
  computedOne: Map<string, Database.Statement>;
  computedAll: Map<string, Database.Statement>;
  /** The record's fields in declaration order, with their column in a row (-1: computed). */
  layout: Array<{ name: string; type: ApiType; col: number }>;
  types: Map<string, ApiType>;
  /** The record's sets and maps, which a copy of a shared record must not share. */
  containers: Array<{ name: string; type: ApiType }>;
  /** Every field, in order: a record starts as a copy of this. */
  template: ApiRecord;
}

export function prepareClass(db: Database.Database, c: ClassModel): ClassStatements {
  const t = q(c.name);
  const cols = c.storedFields.map((f) => q(f.name));
  const select = `SELECT "ref", ${cols.join(', ')} FROM ${t}`;
  const computedOne = new Map<string, Database.Statement>();
  const computedAll = new Map<string, Database.Statement>();
  for (const f of c.recordFields) {
    const r = f.computedFrom;
    if (!r) continue;
    computedOne.set(f.name, db.prepare(`SELECT "ref" FROM ${q(r.one.cls)} WHERE ${q(r.one.field)} = ?`).pluck());
    computedAll.set(f.name, db.prepare(`SELECT ${q(r.one.field)}, "ref" FROM ${q(r.one.cls)} WHERE ${q(r.one.field)} != '${NULL_REF}'`).raw());
  }
  return {
    one: db.prepare(`${select} WHERE "ref" = ?`).raw(),
    all: db.prepare(`${select} ORDER BY rowid`).raw(),
    exists: db.prepare(`SELECT 1 FROM ${t} WHERE "ref" = ?`).pluck(),
    uuid: db.prepare(`SELECT "uuid" FROM ${t} WHERE "ref" = ?`).pluck(),
    byUuid: db.prepare(`SELECT "ref" FROM ${t} WHERE "uuid" = ?`).pluck(),
    byNameLabel: c.hasNameLabel ? db.prepare(`SELECT "ref" FROM ${t} WHERE "name_label" = ? ORDER BY rowid`).pluck() : undefined,
    insert: db.prepare(`INSERT INTO ${t} ("ref", ${cols.join(', ')}) VALUES (?${', ?'.repeat(cols.length)})`),
    del: db.prepare(`DELETE FROM ${t} WHERE "ref" = ?`),
    computedOne, computedAll,
    layout: c.recordFields.map((f) => ({ name: f.name, type: f.type, col: f.computedFrom ? -1 : c.storedFields.indexOf(f) + 1 })),
    types: new Map(c.recordFields.map((f) => [f.name, f.type])),
    containers: c.recordFields.filter((f) => f.type.kind === 'set' || f.type.kind === 'map').map((f) => ({ name: f.name, type: f.type })),
    // Made in one go, so that V8 gives it (and every copy) fast properties: an object
    // given fifty keys one by one is kept as a hash table, slow to read, encode and copy.
    template: Object.fromEntries(c.recordFields.map((f) => [f.name, null])),
  };
}

/** A record with its keys in declaration order; computed fields start as [] for the caller to fill. */
export function decodeRow(s: ClassStatements, row: unknown[]): ApiRecord {
  const rec: ApiRecord = { ...s.template };
  for (const f of s.layout) rec[f.name] = f.col < 0 ? [] : fromDb(f.type, row[f.col]);
  return rec;
}
