// The object store: every XenAPI object in SQLite. Each write runs in one
// transaction together with its change-log entries, so the event feed sees a change
// if and only if it was committed. The `many` side of a bound pair is computed on
// read from the `one` side, so the two can never disagree. Decoded records are kept
// in memory (cache.ts); every write goes through create, update, destroy or touch
// here, which mark what they change, so SQLite stays the only truth.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { classes, NULL_REF, type FieldModel } from '../datamodel/model.js';
import type { ClassName, Records } from '../datamodel/records.js';
import { fail } from '../core/errors.js';
import { migrate } from './migrate.js';
import { RecordCache, copyValue, freezeValue, share, type ChangeOp, type ClassRecords, type SharedRecord } from './cache.js';
import { q, toDb } from './schema.js';
import { decodeRow, prepareClass, type ClassStatements } from './rows.js';

export type ApiRecord = Record<string, unknown>;
export type { SharedRecord };
export type { ChangeOp };

/** Classes whose changes produce no events (as in xapi). */
const UNLOGGED = new Set(['session', 'user']);

export function newRef(): string {
  return `OpaqueRef:${randomUUID()}`;
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
  private readonly runTx: <T>(fn: () => T) => T;
  private readonly cache = new RecordCache();
  private readonly dataVersion: Database.Statement;
  /** PRAGMA data_version when the cache last matched the file. */
  private seenVersion = -1;
  /** True inside a transaction once it has looked for other connections' commits. */
  private synced = false;

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
    for (const c of classes.values()) if (c.stored) this.stmts.set(c.name, prepareClass(this.db, c));
    this.logStmt = this.db.prepare('INSERT INTO "_changes" (ts, cls, op, ref, uuid, snapshot) VALUES (?, ?, ?, ?, ?, ?)');
    this.runTx = this.db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
    this.dataVersion = this.db.prepare('PRAGMA data_version').pluck();
  }

  close(): void {
    this.cache.drop();
    if (this.db.open) this.db.close();
  }

  private s(cls: string): ClassStatements {
    const s = this.stmts.get(cls);
    if (!s) throw new Error(`no such class: ${cls}`);
    return s;
  }

  /** Runs fn in one transaction (or the one already open): its reads see one state of the
   * database and take the lock once, where each statement alone would take it again. */
  read<T>(fn: () => T): T {
    return this.tx(fn);
  }

  // ---- the record cache ------------------------------------------------------

  /** Forgets every record if another connection has committed since the last look: the
   * file is shared with tools (and tests) that write to it directly. One PRAGMA per
   * transaction; inside one, the answer holds for its whole snapshot. */
  private sync(): void {
    if (this.synced) return;
    const v = this.dataVersion.get() as number;
    if (v !== this.seenVersion) {
      this.seenVersion = v;
      this.cache.drop();
    }
  }

  private freeze(s: ClassStatements, rec: ApiRecord): SharedRecord {
    for (const f of s.layout) freezeValue(f.type, rec[f.name]);
    return share(Object.freeze(rec));
  }

  /** A caller's own copy of a shared record: the spread keeps the key order and is
   * much faster than setting field by field; then the containers are copied too. */
  private copy(s: ClassStatements, rec: SharedRecord): ApiRecord {
    const out: ApiRecord = { ...rec };
    for (const f of s.containers) out[f.name] = copyValue(f.type, rec[f.name]);
    return out;
  }

  /** Every record of the class, each current; read whole from SQLite when it is not yet in
   * memory or most of it is stale. Inside a transaction. */
  private complete(cls: string): ClassRecords {
    const s = this.s(cls);
    let c = this.cache.of(cls);
    if (c.complete) {
      let stale = 0;
      for (const rec of c.recs.values()) if (rec === null) stale++;
      if (stale === 0) return c;
      if (stale <= c.recs.size / 4) {
        for (const [ref, rec] of c.recs) if (rec === null) this.shared(cls, ref);
        return c;
      }
      this.cache.drop(cls);
      c = this.cache.of(cls);
    }
    const recs = new Map<string, ApiRecord>();
    for (const row of s.all.all() as unknown[][]) recs.set(row[0] as string, decodeRow(s, row));
    for (const [name, stmt] of s.computedAll) {
      for (const [target, ref] of stmt.all() as Array<[string, string]>) {
        (recs.get(target)?.[name] as string[] | undefined)?.push(ref);
      }
    }
    c.recs.clear();
    for (const [ref, rec] of recs) c.recs.set(ref, this.freeze(s, rec));
    c.complete = true;
    return c;
  }

  /** The current record of cls/ref, shared; read from SQLite if memory has none. Inside a transaction. */
  private shared(cls: string, ref: string): SharedRecord | undefined {
    const s = this.s(cls);
    const c = this.cache.of(cls);
    const have = c.recs.get(ref);
    if (have) return have;
    if (have === undefined && c.complete) return undefined;
    const row = s.one.get(ref) as unknown[] | undefined;
    if (!row) {
      c.recs.delete(ref);
      return undefined;
    }
    const rec = decodeRow(s, row);
    for (const [name, stmt] of s.computedOne) rec[name] = stmt.all(ref);
    const frozen = this.freeze(s, rec);
    c.recs.set(ref, frozen);
    return frozen;
  }

  /** Does cls/ref exist? Inside a transaction; never loads a whole class. */
  private has(cls: string, ref: string): boolean {
    const s = this.s(cls);
    const c = this.cache.of(cls);
    if (c.recs.has(ref)) return true;
    return !c.complete && s.exists.get(ref) !== undefined;
  }

  // ---- reads ---------------------------------------------------------------

  exists(cls: string, ref: string): boolean {
    return this.read(() => this.has(cls, ref));
  }

  /** The record (the caller's own copy), or undefined if there is no such object. */
  get<C extends ClassName>(cls: C, ref: string): Records[C] | undefined;
  get(cls: string, ref: string): ApiRecord | undefined {
    return this.read(() => {
      const rec = this.shared(cls, ref);
      return rec && this.copy(this.s(cls), rec);
    });
  }

  /** The record as every reader shares it: frozen, not copied. For code that only reads it
   * (the generic get_record, the encoders), which then costs no copy. */
  view(cls: string, ref: string): SharedRecord | undefined {
    return this.read(() => this.shared(cls, ref));
  }

  field<C extends ClassName, F extends keyof Records[C]>(cls: C, ref: string, field: F): Records[C][F] | undefined;
  field(cls: string, ref: string, field: string): unknown {
    return this.read(() => {
      const rec = this.shared(cls, ref);
      const t = this.s(cls).types.get(field);
      return rec && t ? copyValue(t, rec[field]) : undefined;
    });
  }

  all(cls: string): string[] {
    return this.read(() => [...this.complete(cls).recs.keys()]);
  }

  /** Every record of the class (the caller's own copies), in creation order. */
  allRecords(cls: string): Map<string, ApiRecord> {
    return this.read(() => {
      const s = this.s(cls);
      const out = new Map<string, ApiRecord>();
      for (const [ref, rec] of this.complete(cls).recs) out.set(ref, this.copy(s, rec!));
      return out;
    });
  }

  /** allRecords, shared and frozen as view's. */
  viewAll(cls: string): Map<string, SharedRecord> {
    return this.read(() => new Map(this.complete(cls).recs as Map<string, SharedRecord>));
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
    if (this.db.inTransaction) {
      this.sync();
      return fn();
    }
    let result: T;
    try {
      result = this.runTx(() => {
        this.sync();
        this.synced = true;
        try {
          return fn();
        } finally {
          this.synced = false;
        }
      });
    } catch (e) {
      this.cache.rolledBack();
      this.dirty = false;
      throw e;
    }
    this.cache.committed();
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
    if (typeof ref !== 'string' || ref === NULL_REF) return;
    this.tx(() => {
      this.cache.wrote(cls, ref, 'mod');
      if (this.has(cls, ref)) this.log(cls, 'mod', ref, this.uuidOf(cls, ref));
    });
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
      this.cache.wrote(cls, ref, 'add');
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
      this.cache.wrote(cls, ref, 'mod');
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
      this.cache.wrote(cls, ref, 'del');
      this.log(cls, 'del', ref, (before.uuid as string) ?? '', before);
      for (const f of c.storedFields) if (f.bound) this.touch(f.bound.many.cls, before[f.name]);
    });
  }

  /** The newest change-log id (0 when empty). */
  lastChangeId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) FROM "_changes"').pluck().get() as number) ?? 0;
  }
}
