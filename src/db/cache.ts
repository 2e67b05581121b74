// The object store's memory of decoded records, so that a read costs a map lookup
// rather than SQLite queries and JSON parsing. It holds only what SQLite holds: the
// store marks a record stale in the same call that writes its row (or a row its
// computed fields come from), re-reads stale records on use, undoes the marks of a
// rolled-back transaction, and forgets everything when another connection commits.
import type { ApiType } from '../datamodel/types.js';

/** A record shared by every reader: frozen, so that no caller can change it for the others. */
/** What a committed change did to an object (the change log's and events' op). */
export type ChangeOp = 'add' | 'mod' | 'del';

export type SharedRecord = Readonly<Record<string, unknown>>;

const sharedRecords = new WeakSet<object>();

/** Marks a deep-frozen record as the store's: what is derived from it (an encoding) holds
 * for as long as it lives, since a write makes a new record rather than changing it. */
export function share(rec: SharedRecord): SharedRecord {
  sharedRecords.add(rec);
  return rec;
}

/** Is v one of the store's shared records? Encoders keep their work on these. */
export function isShared(v: unknown): v is SharedRecord {
  return typeof v === 'object' && v !== null && sharedRecords.has(v);
}

/** The records of one class that are in memory. A complete class holds every ref the
 * table has, in rowid order, with null for a record a write made stale; a partial one
 * holds some records, all current, and forgets any record that is written. */
export interface ClassRecords {
  complete: boolean;
  recs: Map<string, SharedRecord | null>;
}

export class RecordCache {
  private readonly byClass = new Map<string, ClassRecords>();
  /** What the open transaction wrote, to undo if it rolls back. */
  private journal: Array<{ cls: string; ref: string; op: ChangeOp }> | undefined;

  /** The class's records in memory (none yet: an empty partial class). */
  of(cls: string): ClassRecords {
    let c = this.byClass.get(cls);
    if (!c) {
      c = { complete: false, recs: new Map() };
      this.byClass.set(cls, c);
    }
    return c;
  }

  /** Forgets a class, or every class. */
  drop(cls?: string): void {
    if (cls === undefined) this.byClass.clear();
    else this.byClass.delete(cls);
  }

  /** A write to cls/ref (op as the change log names it) inside the open transaction. */
  wrote(cls: string, ref: string, op: ChangeOp): void {
    (this.journal ??= []).push({ cls, ref, op });
    const c = this.byClass.get(cls);
    if (!c) return;
    if (op === 'del' || !c.complete) c.recs.delete(ref);
    else if (op === 'add' || c.recs.has(ref)) c.recs.set(ref, null);
  }

  /** The transaction committed: its marks stand. */
  committed(): void {
    this.journal = undefined;
  }

  /** The transaction rolled back: records it wrote (or read after writing) are stale
   * again and objects it made vanish; a complete class it deleted from is read afresh,
   * since a record put back would come last, out of rowid order. */
  rolledBack(): void {
    const journal = this.journal ?? [];
    this.journal = undefined;
    for (const { cls, ref, op } of journal) {
      const c = this.byClass.get(cls);
      if (!c) continue;
      if (!c.complete || op === 'add') c.recs.delete(ref);
      else if (op === 'del') this.byClass.delete(cls);
      else if (c.recs.has(ref)) c.recs.set(ref, null);
    }
  }
}

/** Freezes a decoded value of type t in place, containers included. */
export function freezeValue(t: ApiType, v: unknown): unknown {
  if (t.kind === 'set') {
    if (t.of.kind === 'set' || t.of.kind === 'map') for (const x of v as unknown[]) freezeValue(t.of, x);
    return Object.freeze(v);
  }
  if (t.kind === 'map') {
    if (t.value.kind === 'set' || t.value.kind === 'map') for (const k in v as object) freezeValue(t.value, (v as Record<string, unknown>)[k]);
    return Object.freeze(v);
  }
  return v;
}

/** A caller's own copy of a shared value of type t: containers are new, scalars shared. */
export function copyValue(t: ApiType, v: unknown): unknown {
  if (t.kind === 'set') {
    const a = v as unknown[];
    return t.of.kind === 'set' || t.of.kind === 'map' ? a.map((x) => copyValue(t.of, x)) : a.slice();
  }
  if (t.kind === 'map') {
    // A spread defines keys, so a key such as "__proto__" stays a plain key.
    if (t.value.kind !== 'set' && t.value.kind !== 'map') return { ...(v as object) };
    const out: Record<string, unknown> = {};
    for (const k in v as object) {
      Object.defineProperty(out, k, { value: copyValue(t.value, (v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}
