// The change feed: committed change-log rows, kept in memory for the recent past, and
// the waiters that block in event.next / event.from until something they care about
// is committed. A commit is read back once and shared by every waiter. Snapshots are
// the object store's shared records (its cache keeps them), not kept here.
import type { ObjectStore, ApiRecord } from '../db/store.js';

export interface Change {
  id: number;
  ts: number;
  cls: string;
  /** Lower-case class name, as events carry it. */
  lower: string;
  op: 'add' | 'mod' | 'del';
  ref: string;
  /** The record before deletion, for `del`. */
  snapshot?: ApiRecord;
}

export interface FeedOptions {
  /** Changes kept in memory for waiters. */
  memory: number;
  /** Changes kept in the database's log. */
  retain: number;
}

/** Why a wait ended: a change it wants was committed, its time ran out, cancel(), or
 * the daemon is stopping (stop()). */
export type WakeReason = 'change' | 'timeout' | 'cancelled' | 'stopping';

interface Waiter {
  /** Whether a change concerns this waiter. */
  wants(c: Change): boolean;
  wake(why: WakeReason): void;
  /** Date.now() past which it is woken anyway. */
  deadline: number;
  /** What cancel() matches it by (the service passes the session). */
  owner: unknown;
}

interface Row { id: number; ts: number; cls: string; op: 'add' | 'mod' | 'del'; ref: string; snapshot: string | null }

export class ChangeFeed {
  private readonly recent: Change[] = [];
  private lastId: number;
  private readonly waiters = new Set<Waiter>();
  private wakeScheduled = false;
  /** One timer for every waiter's deadline, set for the earliest one (Infinity: none set). */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private readonly readSince;
  private readonly oldestStmt;
  /** The oldest change id the database's log still holds. */
  private oldestKept: number;

  constructor(private readonly store: ObjectStore, private readonly opts: FeedOptions) {
    this.readSince = store.db.prepare('SELECT id, ts, cls, op, ref, snapshot FROM "_changes" WHERE id > ? ORDER BY id LIMIT ?');
    this.oldestStmt = store.db.prepare('SELECT COALESCE(MIN(id), 0) FROM "_changes"').pluck();
    this.lastId = store.lastChangeId();
    this.oldestKept = (this.oldestStmt.get() as number) || this.lastId + 1;
    store.onCommit(() => this.pull());
  }

  private static toChange(r: Row): Change {
    return {
      id: r.id, ts: r.ts, cls: r.cls, lower: r.cls.toLowerCase(), op: r.op, ref: r.ref,
      snapshot: r.snapshot ? (JSON.parse(r.snapshot) as ApiRecord) : undefined,
    };
  }

  /** Reads what the last commit logged and wakes the waiters it concerns: once for the
   * commits made in one go, and before any other I/O is handled, so that a wake-up is
   * not queued behind other requests. */
  private pull(): void {
    const rows = this.readSince.all(this.lastId, 1_000_000) as Row[];
    if (rows.length === 0) return;
    for (const r of rows) {
      const c = ChangeFeed.toChange(r);
      this.recent.push(c);
      this.unannounced.push(c);
    }
    this.lastId = rows.at(-1)!.id;
    const excess = this.recent.length - this.opts.memory;
    if (excess > 0) this.recent.splice(0, excess);
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      queueMicrotask(() => this.wakeAll());
    }
  }

  /** Changes read since the waiters were last woken. */
  private unannounced: Change[] = [];

  /** Wakes, in one pass, every waiter that wants one of the fresh changes. */
  private wakeAll(): void {
    this.wakeScheduled = false;
    const fresh = this.unannounced;
    this.unannounced = [];
    for (const w of this.waiters) {
      if (fresh.some(w.wants)) {
        this.waiters.delete(w);
        w.wake('change');
      }
    }
    this.clearTimerIfIdle();
  }

  /** The newest change id. */
  current(): number {
    return this.lastId;
  }

  /** Whether the changes after `cursor` are all still known (none pruned away). */
  covers(cursor: number): boolean {
    return cursor + 1 >= this.oldestKept || cursor >= this.lastId;
  }

  /** Changes with id > after, oldest first; from memory when it reaches that far back. */
  since(after: number, limit = Infinity): Change[] {
    if (after >= this.lastId) return [];
    const first = this.recent[0];
    if (first && first.id <= after + 1) {
      let lo = 0, hi = this.recent.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.recent[mid]!.id <= after) lo = mid + 1;
        else hi = mid;
      }
      const out = this.recent.slice(lo);
      return limit < out.length ? out.slice(0, limit) : out;
    }
    const cap = Number.isFinite(limit) ? limit : 10_000_000;
    return (this.readSince.all(after, cap) as Row[]).map(ChangeFeed.toChange);
  }

  /** Resolves when a change that `wants` accepts is committed, after timeoutMs, or when
   * cancel(owner) is called, whichever comes first. */
  wait(wants: (c: Change) => boolean, timeoutMs: number, owner?: unknown): Promise<WakeReason> {
    if (this.stopped) return Promise.resolve('stopping');
    return new Promise((resolve) => {
      const w: Waiter = { wants, wake: resolve, deadline: Date.now() + Math.max(0, timeoutMs), owner };
      this.waiters.add(w);
      if (w.deadline < this.timerAt) this.setTimer(w.deadline);
    });
  }

  private stopped = false;

  /** Ends every wait now, and any wait begun later at once: blocked event calls must not
   * hold up the daemon's stop for as long as their timeouts. */
  stop(): void {
    this.stopped = true;
    for (const w of this.waiters) w.wake('stopping');
    this.waiters.clear();
    this.clearTimerIfIdle();
  }

  /** Ends the waits of `owner` now. */
  cancel(owner: unknown): void {
    for (const w of this.waiters) {
      if (w.owner === owner) {
        this.waiters.delete(w);
        w.wake('cancelled');
      }
    }
    this.clearTimerIfIdle();
  }

  private setTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
  }

  /** With nobody waiting, no timer is left set to keep the process up. */
  private clearTimerIfIdle(): void {
    if (this.waiters.size > 0 || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** Wakes the waiters whose time is up and sets the timer for the next deadline. A timer
   * per wait would be set and cleared again for nearly every call, since most waits end
   * with a change; this one is rarely moved: later waits mostly end later. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const w of this.waiters) {
      if (w.deadline <= now) {
        this.waiters.delete(w);
        w.wake('timeout');
      } else if (w.deadline < next) {
        next = w.deadline;
      }
    }
    if (next < Infinity) this.setTimer(next);
  }

  /** Keeps the database's log to its retention size. */
  prune(): void {
    const upto = this.lastId - this.opts.retain;
    if (upto < this.oldestKept) return;
    this.store.db.prepare('DELETE FROM "_changes" WHERE id <= ?').run(upto);
    this.oldestKept = upto + 1;
  }

  waiterCount(): number {
    return this.waiters.size;
  }
}
