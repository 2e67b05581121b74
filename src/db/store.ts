// The object store: every XenAPI object in SQLite. Each write runs in one
// transaction together with its change-log entries, so the event feed sees a change
// if and only if it was committed. The `many` side of a bound pair is computed on
// read from the `one` side, so the two can never disagree.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { classes, NULL_REF, type ClassModel, type FieldModel } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';
import type { ClassName, Records } from '../datamodel/records.js';
import { fail } from '../api/errors.js';
import { migrate } from './migrate.js';
import { q, toDb } from './schema.js';

export type ApiRecord = Record<string, unknown>;
export type ChangeOp = 'add' | 'mod' | 'del';

/** Classes whose changes produce no events (as in xapi). */
const UNLOGGED = new Set(['session', 'user']);

export function newRef(): string {
  return `OpaqueRef:${randomUUID()}`;
}

function fromDb(t: ApiType, v: unknown): unknown {
  switch (t.kind) {
    case 'bool': return v === 1;
    case 'set': case 'map': return JSON.parse(v as string);
    default: return v;
  }
}

interface ClassStatements {
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
}

/** The store seen by datamodel-driven code, which handles any class by name. */
export interface UntypedStore {
  get(cls: string, ref: string): ApiRecord | undefined;
  field(cls: string, ref: string, field: string): unknown;
  create(cls: string, values: ApiRecord, ref?: string): string;
  update(cls: string, ref: string, changes: ApiRecord): void;
}

/** Reads and writes are typed by the generated record types (records.ts); generic
 * code goes through `any`, the same methods keyed by a class name string. */
export class ObjectStore {
  get any(): UntypedStore & this {
    return this as unknown as UntypedStore & this;
  }

  readonly db: Database.Database;
  private readonly stmts = new Map<string, ClassStatements>();
  private readonly updates = new Map<string, Database.Statement>();
  private readonly logStmt: Database.Statement;
  private readonly commitListeners: Array<() => void> = [];
  private dirty = false;
  private readonly readTx: <T>(fn: () => T) => T;

  constructor(file: string, opts: { sync?: 'normal' | 'full' } = {}) {
    this.db = new Database(file);
    this.db.pragma('busy_timeout = 5000');
    // Migrate (or refuse a newer schema) before changing anything else in the file.
    try {
      migrate(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.sync === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = OFF');
    for (const c of classes.values()) if (c.stored) this.stmts.set(c.name, this.prepareClass(c));
    this.logStmt = this.db.prepare('INSERT INTO "_changes" (ts, cls, op, ref, uuid, snapshot) VALUES (?, ?, ?, ?, ?, ?)');
    this.readTx = this.db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prepareClass(c: ClassModel): ClassStatements {
    const t = q(c.name);
    const cols = c.storedFields.map((f) => q(f.name));
    const select = `SELECT "ref", ${cols.join(', ')} FROM ${t}`;
    const computedOne = new Map<string, Database.Statement>();
    const computedAll = new Map<string, Database.Statement>();
    for (const f of c.recordFields) {
      const r = f.computedFrom;
      if (!r) continue;
      computedOne.set(f.name, this.db.prepare(`SELECT "ref" FROM ${q(r.one.cls)} WHERE ${q(r.one.field)} = ?`).pluck());
      computedAll.set(f.name, this.db.prepare(`SELECT ${q(r.one.field)}, "ref" FROM ${q(r.one.cls)} WHERE ${q(r.one.field)} != '${NULL_REF}'`).raw());
    }
    return {
      one: this.db.prepare(`${select} WHERE "ref" = ?`).raw(),
      all: this.db.prepare(`${select} ORDER BY rowid`).raw(),
      exists: this.db.prepare(`SELECT 1 FROM ${t} WHERE "ref" = ?`).pluck(),
      uuid: this.db.prepare(`SELECT "uuid" FROM ${t} WHERE "ref" = ?`).pluck(),
      byUuid: this.db.prepare(`SELECT "ref" FROM ${t} WHERE "uuid" = ?`).pluck(),
      byNameLabel: c.hasNameLabel ? this.db.prepare(`SELECT "ref" FROM ${t} WHERE "name_label" = ? ORDER BY rowid`).pluck() : undefined,
      insert: this.db.prepare(`INSERT INTO ${t} ("ref", ${cols.join(', ')}) VALUES (?${', ?'.repeat(cols.length)})`),
      del: this.db.prepare(`DELETE FROM ${t} WHERE "ref" = ?`),
      computedOne, computedAll,
      layout: c.recordFields.map((f) => ({ name: f.name, type: f.type, col: f.computedFrom ? -1 : c.storedFields.indexOf(f) + 1 })),
    };
  }

  private s(cls: string): ClassStatements {
    const s = this.stmts.get(cls);
    if (!s) throw new Error(`no such class: ${cls}`);
    return s;
  }

  /** A record with its keys in declaration order; computed fields start as [] for the caller to fill. */
  private decodeRow(s: ClassStatements, row: unknown[]): ApiRecord {
    const rec: ApiRecord = {};
    for (const f of s.layout) rec[f.name] = f.col < 0 ? [] : fromDb(f.type, row[f.col]);
    return rec;
  }

  /** Runs fn in one read transaction (or the one already open): its reads see one state of
   * the database and take the lock once, where each statement alone would take it again. */
  read<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.readTx(fn);
  }

  // ---- reads ---------------------------------------------------------------

  exists(cls: string, ref: string): boolean {
    return this.s(cls).exists.get(ref) !== undefined;
  }

  get<C extends ClassName>(cls: C, ref: string): Records[C] | undefined;
  get(cls: string, ref: string): ApiRecord | undefined {
    const s = this.s(cls);
    if (s.computedOne.size === 0) {
      const row = s.one.get(ref) as unknown[] | undefined;
      return row && this.decodeRow(s, row);
    }
    return this.read(() => {
      const row = s.one.get(ref) as unknown[] | undefined;
      if (!row) return undefined;
      const rec = this.decodeRow(s, row);
      for (const [name, stmt] of s.computedOne) rec[name] = stmt.all(ref);
      return rec;
    });
  }

  field<C extends ClassName, F extends keyof Records[C]>(cls: C, ref: string, field: F): Records[C][F] | undefined;
  field(cls: string, ref: string, field: string): unknown {
    return this.any.get(cls, ref)?.[field];
  }

  all(cls: string): string[] {
    return (this.s(cls).all.all() as unknown[][]).map((r) => r[0] as string);
  }

  allRecords(cls: string): Map<string, ApiRecord> {
    const s = this.s(cls);
    return this.read(() => {
      const out = new Map<string, ApiRecord>();
      for (const row of s.all.all() as unknown[][]) out.set(row[0] as string, this.decodeRow(s, row));
      for (const [name, stmt] of s.computedAll) {
        for (const [target, ref] of stmt.all() as Array<[string, string]>) {
          (out.get(target)?.[name] as string[] | undefined)?.push(ref);
        }
      }
      return out;
    });
  }

  refByUuid(cls: string, uuid: string): string | undefined {
    return this.s(cls).byUuid.get(uuid) as string | undefined;
  }

  refsByNameLabel(cls: string, label: string): string[] {
    return (this.s(cls).byNameLabel?.all(label) ?? []) as string[];
  }

  /** Objects whose `one`-side field points at ref, per computed field of its class. */
  referrers(cls: string, ref: string): Array<{ field: FieldModel; refs: string[] }> {
    const c = classes.get(cls)!;
    const out: Array<{ field: FieldModel; refs: string[] }> = [];
    for (const [name, stmt] of this.s(cls).computedOne) {
      const refs = stmt.all(ref) as string[];
      if (refs.length) out.push({ field: c.fields.get(name)!, refs });
    }
    return out;
  }

  // ---- writes --------------------------------------------------------------

  /** Runs fn in one transaction (nested calls join the outer one); listeners hear of the commit. */
  tx<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } catch (e) {
      this.dirty = false;
      throw e;
    }
    if (this.dirty) {
      this.dirty = false;
      for (const l of this.commitListeners) l();
    }
    return result;
  }

  /** Called after every commit that wrote to the change log. */
  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  private log(cls: string, op: ChangeOp, ref: string, uuid: string, snapshot?: ApiRecord): void {
    if (UNLOGGED.has(cls)) return;
    this.logStmt.run(Date.now() / 1000, cls, op, ref, uuid, snapshot ? JSON.stringify(snapshot) : null);
    this.dirty = true;
  }

  private uuidOf(cls: string, ref: string): string {
    return (this.s(cls).uuid.get(ref) as string | undefined) ?? '';
  }

  /** Logs a `mod` for an object without changing it: the other end of a bound field
   * whose computed set changed, or event.inject. */
  touch(cls: string, ref: unknown): void {
    if (typeof ref !== 'string' || ref === NULL_REF || !this.exists(cls, ref)) return;
    this.log(cls, 'mod', ref, this.uuidOf(cls, ref));
  }

  /** Creates an object from a full or partial set of stored fields; returns its ref. */
  create<C extends ClassName>(cls: C, values: Partial<Records[C]>, ref?: string): string;
  create(cls: string, values: ApiRecord, ref = newRef()): string {
    const c = classes.get(cls)!;
    const rec: ApiRecord = {};
    for (const f of c.storedFields) rec[f.name] = f.name in values ? values[f.name] : structuredClone(f.initial);
    if (c.fields.has('uuid') && !values.uuid) rec.uuid = randomUUID();
    return this.tx(() => {
      if (c.fields.has('uuid') && this.refByUuid(cls, rec.uuid as string)) {
        fail('DB_UNIQUENESS_CONSTRAINT_VIOLATION', cls, 'uuid', rec.uuid);
      }
      this.s(cls).insert.run(ref, ...c.storedFields.map((f) => toDb(f.type, rec[f.name])));
      this.log(cls, 'add', ref, (rec.uuid as string) ?? '');
      for (const f of c.storedFields) if (f.bound) this.touch(f.bound.many.cls, rec[f.name]);
      return ref;
    });
  }

  /** Sets stored fields of one object. */
  update<C extends ClassName>(cls: C, ref: string, changes: Partial<Records[C]>): void;
  update(cls: string, ref: string, changes: ApiRecord): void {
    const c = classes.get(cls)!;
    const names = Object.keys(changes);
    if (names.length === 0) return;
    const fields = names.map((n) => {
      const f = c.fields.get(n);
      if (!f || f.computedFrom || f.removed) throw new Error(`${cls}.${n} is not a stored field`);
      return f;
    });
    const key = `${cls}\u0000${names.join('\u0000')}`;
    let stmt = this.updates.get(key);
    if (!stmt) {
      stmt = this.db.prepare(`UPDATE ${q(cls)} SET ${names.map((n) => `${q(n)} = ?`).join(', ')} WHERE "ref" = ?`);
      this.updates.set(key, stmt);
    }
    this.tx(() => {
      const bound = fields.filter((f) => f.bound);
      const before = bound.length ? this.any.get(cls, ref) : undefined;
      const info = stmt.run(...fields.map((f) => toDb(f.type, changes[f.name])), ref);
      if (info.changes === 0) fail('HANDLE_INVALID', cls, ref);
      this.log(cls, 'mod', ref, this.uuidOf(cls, ref));
      for (const f of bound) {
        if (before?.[f.name] === changes[f.name]) continue;
        this.touch(f.bound!.many.cls, before?.[f.name]);
        this.touch(f.bound!.many.cls, changes[f.name]);
      }
    });
  }

  /** Deletes one object; the change log keeps its last snapshot. */
  destroy(cls: string, ref: string): void {
    const c = classes.get(cls)!;
    this.tx(() => {
      const before = this.any.get(cls, ref);
      if (!before) fail('HANDLE_INVALID', cls, ref);
      this.s(cls).del.run(ref);
      this.log(cls, 'del', ref, (before.uuid as string) ?? '', before);
      for (const f of c.storedFields) if (f.bound) this.touch(f.bound.many.cls, before[f.name]);
    });
  }

  /** The newest change-log id (0 when empty). */
  lastChangeId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) FROM "_changes"').pluck().get() as number) ?? 0;
  }
}
