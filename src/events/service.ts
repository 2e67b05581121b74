// The event API on top of the change feed: the classic per-session subscription
// (event.register / next / unregister / get_current_id) and the token-based
// event.from and event.inject that Xen Orchestra and current tools use.
import { classByAnyCase, classes } from '../datamodel/model.js';
import type { ObjectStore } from '../db/store.js';
import type { SharedRecord } from '../db/cache.js';
import { XenApiError, fail } from '../core/errors.js';
import type { Change, ChangeFeed } from './feed.js';
import { markShared } from '../core/shared-results.js';

/** An event as it goes on the wire: strings, plus the object's record. */
export interface WireEvent {
  id: string;
  timestamp: string;
  class: string;
  operation: 'add' | 'mod' | 'del';
  ref: string;
  snapshot?: SharedRecord;
}

export interface EventBatch {
  events: WireEvent[];
  valid_ref_counts: Record<string, number>;
  token: string;
}

export interface EventOptions {
  /** Longest time event.next blocks before answering an empty list (ms). */
  nextBoundMs: number;
  /** Most events one classic subscription may fall behind before EVENTS_LOST. */
  maxQueue: number;
}

interface Subscription { classes: Set<string>; cursor: number }

/** The classes an event feed may name: every stored class except session and user. */
const EVENT_CLASSES = [...classes.values()].filter((c) => c.stored && c.name !== 'session' && c.name !== 'user');

function classFilter(names: Set<string>): (c: Change) => boolean {
  if (names.has('*')) return () => true;
  return (c) => names.has(c.lower);
}

/** xapi's token shape: two zero-padded numbers (database generation, message generation). */
export function formatToken(id: number): string {
  return `${String(id).padStart(20, '0')},${'0'.padStart(20, '0')}`;
}

export function parseToken(token: string): number | undefined {
  const m = /^\s*(\d{1,20})(?:,\d{1,20})?\s*$/.exec(token);
  return m ? Number(m[1]) : undefined;
}

export class EventService {
  private readonly subs = new Map<string, Subscription>();

  constructor(private readonly store: ObjectStore, private readonly feed: ChangeFeed, private readonly opts: EventOptions) {}

  /** Wakes the session's blocked calls, which then fail with SESSION_INVALID. */
  sessionEnded(session: string): void {
    this.subs.delete(session);
    this.feed.cancel(session);
  }

  private toWire(c: Change, snapshot: SharedRecord | undefined, timestamp: string): WireEvent {
    const e: WireEvent = { id: String(c.id), timestamp, class: c.lower, operation: c.op, ref: c.ref };
    if (snapshot) e.snapshot = snapshot;
    return e;
  }

  // ---- classic interface ------------------------------------------------------

  register(session: string, names: string[]): void {
    let s = this.subs.get(session);
    if (!s) {
      s = { classes: new Set(), cursor: this.feed.current() };
      this.subs.set(session, s);
    }
    for (const n of names) s.classes.add(n.toLowerCase());
  }

  unregister(session: string, names: string[]): void {
    const s = this.subs.get(session);
    if (!s) return;
    for (const n of names) s.classes.delete(n.toLowerCase());
  }

  getCurrentId(): number {
    return this.feed.current() + 1;
  }

  async next(session: string): Promise<WireEvent[]> {
    const deadline = Date.now() + this.opts.nextBoundMs;
    for (;;) {
      const s = this.subs.get(session);
      if (!s) fail('SESSION_NOT_REGISTERED', session);
      if (!this.feed.covers(s.cursor)) {
        s.cursor = this.feed.current();
        fail('EVENTS_LOST');
      }
      const wants = classFilter(s.classes);
      const pending = this.feed.since(s.cursor, this.opts.maxQueue + 1);
      const matching = pending.filter(wants);
      if (matching.length > this.opts.maxQueue) {
        s.cursor = this.feed.current();
        fail('EVENTS_LOST');
      }
      if (pending.length > 0) s.cursor = pending.at(-1)!.id;
      if (matching.length > 0) {
        return this.store.read(() => matching.map((c) => this.toWire(c, c.op === 'del' ? c.snapshot : this.store.view(c.cls, c.ref), (c.ts).toFixed(3))));
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      const why = await this.feed.wait(wants, left, session);
      if (why === 'cancelled') fail('SESSION_INVALID', session);
      if (why === 'stopping') return [];
    }
  }

  // ---- event.from ---------------------------------------------------------------

  private counters?: Map<string, { get(): unknown }>;

  private validRefCounts(names: Set<string>): Record<string, number> {
    const out: Record<string, number> = {};
    this.counters ??= new Map(EVENT_CLASSES.map((c) => [c.lower, this.store.db.prepare(`SELECT COUNT(*) FROM "${c.name}"`).pluck()]));
    for (const [lower, stmt] of this.counters) {
      if (names.has('*') || names.has(lower)) out[lower] = stmt.get() as number;
    }
    return out;
  }

  /** The answers made since the last commit, by token and classes: the watchers one commit
   * wakes mostly hold the same token, and then share one answer (and its encodings). */
  private batches = new Map<string, EventBatch>();
  private batchesAt = -1;

  private batchSince(from: number, classNames: Set<string>, classKey: string): EventBatch {
    const upto = this.feed.current();
    // Past a few dozen distinct answers (clients far apart), keeping them costs more memory than it saves.
    if (this.batchesAt !== upto || this.batches.size >= 64) {
      this.batches.clear();
      this.batchesAt = upto;
    }
    const key = `${from}\u0000${classKey}`;
    let batch = this.batches.get(key);
    if (!batch) {
      const wants = classFilter(classNames);
      // One read transaction for the whole answer: each snapshot alone would open its own.
      batch = this.store.read(() => ({ events: this.coalesce(this.feed.since(from).filter(wants)), valid_ref_counts: this.validRefCounts(classNames), token: formatToken(upto) }));
      markShared(batch);
      this.batches.set(key, batch);
    }
    return batch;
  }

  /** Every object of the named classes, as `add` events: where an empty token starts. */
  private everything(names: Set<string>): WireEvent[] {
    const out: WireEvent[] = [];
    for (const c of EVENT_CLASSES) {
      if (!names.has('*') && !names.has(c.lower)) continue;
      for (const [ref, rec] of this.store.viewAll(c.name)) {
        out.push({ id: '0', timestamp: '0.0', class: c.lower, operation: 'add', ref, snapshot: rec });
      }
    }
    return out;
  }

  /** One entry per object: changed → one `mod` with the latest record; created → `add`;
   * deleted → `del`. An object both created and deleted since the token still shows
   * both, so that no add or delete is ever lost. */
  private coalesce(changes: Change[]): WireEvent[] {
    const byObject = new Map<string, { first: Change; last: Change }>();
    for (const c of changes) {
      const key = `${c.lower}\u0000${c.ref}`;
      const e = byObject.get(key);
      if (e) e.last = c;
      else byObject.set(key, { first: c, last: c });
    }
    const out: WireEvent[] = [];
    for (const { first, last } of byObject.values()) {
      if (last.op === 'del') {
        if (first.op === 'add') out.push(this.toWire({ ...first, id: last.id }, last.snapshot, '0.0'));
        out.push(this.toWire(last, undefined, '0.0'));
        continue;
      }
      const snapshot = this.store.view(last.cls, last.ref);
      if (!snapshot) continue;
      out.push(this.toWire({ ...last, op: first.op === 'add' ? 'add' : 'mod' }, snapshot, '0.0'));
    }
    return out;
  }

  async from(session: string, names: string[], token: string, timeoutSec: number): Promise<EventBatch> {
    const wanted = new Set(names.map((n) => n.toLowerCase()));
    for (const n of wanted) if (n !== '*' && n.includes('/') && !classByAnyCase(n.split('/')[0]!)) fail('EVENT_SUBSCRIPTION_PARSE_FAILURE', n);
    const classNames = new Set([...wanted].map((n) => n.split('/')[0]!));
    if (token === '') {
      const at = this.feed.current();
      return { events: this.everything(classNames), valid_ref_counts: this.validRefCounts(classNames), token: formatToken(at) };
    }
    const from = parseToken(token);
    if (from === undefined) fail('EVENT_FROM_TOKEN_PARSE_FAILURE', token);
    if (!this.feed.covers(from)) throw new XenApiError('EVENTS_LOST');
    const wants = classFilter(classNames);
    const classKey = [...classNames].sort().join(',');
    const deadline = Date.now() + Math.max(0, timeoutSec) * 1000;
    for (;;) {
      const batch = this.batchSince(from, classNames, classKey);
      const left = deadline - Date.now();
      if (batch.events.length > 0 || left <= 0) return batch;
      const why = await this.feed.wait(wants, left, session);
      if (why === 'cancelled') fail('SESSION_INVALID', session);
      // The daemon is stopping: answer as if the time were up (the client will find it gone on its next call).
      if (why === 'stopping') return this.batchSince(from, classNames, classKey);
    }
  }

  /** Makes a `mod` for one object, so that its watchers see it now. */
  inject(cls: string, ref: string): string {
    const c = classByAnyCase(cls);
    if (!c || !c.stored || !this.store.exists(c.name, ref)) fail('HANDLE_INVALID', c?.name ?? cls, ref);
    this.store.tx(() => this.store.touch(c.name, ref));
    // One before the injected change, so that event.from with this token returns it.
    return formatToken(this.feed.current() - 1);
  }
}
