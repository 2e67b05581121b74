// Tasks: the record behind every call of a message that has an Async form. Async
// calls get their task ref at once and the work runs on; sync calls get a short-lived
// task, as in xapi, so that handlers report progress and honour cancellation the
// same way in both. Finished tasks are swept after a while.
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { TaskHandle } from '../core/context.js';
import { XenApiError, fail, toXenApiError } from '../core/errors.js';
import { NEVER } from '../datamodel/model.js';
import { now, toMillis } from '../core/datetime.js';

export interface TaskOptions {
  /** How long a finished task is kept after the last sign of interest (ms). */
  ttlMs: number;
  /** Most finished tasks kept; the oldest go first beyond it. */
  maxFinished: number;
}

interface Running {
  abort: AbortController;
  cancellable: boolean;
  session?: string;
  /** Set by task.destroy on a running task: delete it once it ends. */
  destroyWhenDone: boolean;
  /** Made by task.create: no worker stands behind it. */
  clientMade: boolean;
}

/** Restart marker in error_info, so a client can tell why its task failed. */
export const RESTART_ERROR = ['INTERNAL_ERROR', 'xapid restarted while this task was pending; its outcome is unknown'];

export class TaskManager {
  private readonly running = new Map<string, Running>();
  /** Session of each finished task still in the database, for the sweep. */
  private readonly owner = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly hostRef: string,
    private readonly log: Logger,
    private readonly opts: TaskOptions,
    private readonly sessionLastActive: (ref: string) => number | undefined,
  ) {}

  /** Tasks left pending by a daemon that stopped are failed: nothing will finish them now. */
  recoverAfterRestart(): number {
    let n = 0;
    this.store.tx(() => {
      for (const [ref, t] of this.store.allRecords('task')) {
        if (t.status !== 'pending' && t.status !== 'cancelling') continue;
        this.store.update('task', ref, { status: 'failure', finished: now(), progress: 1, error_info: RESTART_ERROR, allowed_operations: [], current_operations: {} });
        n++;
      }
    });
    return n;
  }

  create(label: string, description: string, session: string | undefined, clientMade = false): string {
    const ref = this.store.create('task', {
      name_label: label, name_description: description, status: 'pending', progress: 0,
      created: now(), finished: NEVER, resident_on: this.hostRef, type: '<none/>', result: '', error_info: [],
    });
    this.running.set(ref, { abort: new AbortController(), cancellable: clientMade, session, destroyWhenDone: false, clientMade });
    if (session) this.owner.set(ref, session);
    if (clientMade) this.store.update('task', ref, { allowed_operations: ['cancel'] });
    return ref;
  }

  handle(ref: string): TaskHandle {
    const r = this.running.get(ref);
    const signal = r?.abort.signal ?? AbortSignal.abort();
    return {
      ref,
      signal,
      setCancellable: (on) => {
        const cur = this.running.get(ref);
        if (!cur || cur.cancellable === on) return;
        cur.cancellable = on;
        if (this.store.exists('task', ref)) this.store.update('task', ref, { allowed_operations: on ? ['cancel'] : [] });
      },
      setProgress: (p) => {
        if (this.running.has(ref) && this.store.exists('task', ref)) this.store.update('task', ref, { progress: Math.max(0, Math.min(1, p)) });
      },
      checkCancelled: () => {
        if (signal.aborted) throw new XenApiError('TASK_CANCELLED', [ref]);
      },
    };
  }

  /** Records the outcome; `resultXml` is the XML-RPC <value> of the return value. */
  finish(ref: string, outcome: { resultXml: string } | { error: XenApiError }): void {
    const r = this.running.get(ref);
    this.running.delete(ref);
    if (!this.store.exists('task', ref)) return;
    if (r?.destroyWhenDone) {
      this.store.destroy('task', ref);
      this.owner.delete(ref);
      return;
    }
    const base = { finished: now(), progress: 1, allowed_operations: [] as [], current_operations: {} };
    if ('resultXml' in outcome) {
      this.store.update('task', ref, { ...base, status: 'success', result: outcome.resultXml });
    } else if (outcome.error.code === 'TASK_CANCELLED') {
      this.store.update('task', ref, { ...base, status: 'cancelled', error_info: outcome.error.description });
    } else {
      this.store.update('task', ref, { ...base, status: 'failure', error_info: outcome.error.description });
    }
  }

  /** Starts `work` under a new task and returns the task's ref without waiting. */
  startAsync(label: string, session: string | undefined, work: (task: TaskHandle) => Promise<string>): string {
    const ref = this.create(label, '', session);
    const task = this.handle(ref);
    setImmediate(() => {
      work(task).then(
        (resultXml) => this.finish(ref, { resultXml }),
        (e) => this.finish(ref, { error: toXenApiError(e) }),
      ).catch((err) => this.log.error({ err, task: ref }, 'could not record a task outcome'));
    });
    return ref;
  }

  /** Runs `work` under a task that exists only for the duration of the call. */
  async runSync<T>(label: string, session: string | undefined, work: (task: TaskHandle) => Promise<T>): Promise<T> {
    const ref = this.create(label, '', session);
    try {
      return await work(this.handle(ref));
    } finally {
      this.running.delete(ref);
      this.owner.delete(ref);
      if (this.store.exists('task', ref)) this.store.destroy('task', ref);
    }
  }

  cancel(ref: string, by: string | undefined): void {
    const r = this.running.get(ref);
    if (!r) fail('OPERATION_NOT_ALLOWED', 'the task is not running');
    if (!r.cancellable) fail('OPERATION_NOT_ALLOWED', 'this operation cannot be cancelled at this point');
    if (r.clientMade) {
      this.finish(ref, { error: new XenApiError('TASK_CANCELLED', [ref]) });
      return;
    }
    this.store.update('task', ref, { current_operations: { [by ?? ref]: 'cancel' }, status: 'cancelling' });
    r.abort.abort();
  }

  destroy(ref: string): void {
    const r = this.running.get(ref);
    if (r && !r.clientMade) {
      r.destroyWhenDone = true;
      return;
    }
    this.running.delete(ref);
    this.owner.delete(ref);
    this.store.destroy('task', ref);
  }

  /** A session ended: its finished tasks go now, its running ones when they end. */
  sessionEnded(session: string): void {
    this.store.tx(() => {
      for (const [ref, s] of this.owner) {
        if (s !== session) continue;
        const r = this.running.get(ref);
        if (r && !r.clientMade) r.destroyWhenDone = true;
        else this.destroy(ref);
      }
    });
  }

  /** Removes finished tasks nobody has shown interest in for ttlMs, and the excess beyond maxFinished. */
  sweep(): void {
    const t = Date.now();
    const finished: Array<[string, number]> = [];
    for (const [ref, rec] of this.store.allRecords('task')) {
      if (rec.status === 'pending' || rec.status === 'cancelling' || this.running.has(ref)) continue;
      const done = toMillis(rec.finished as string) ?? 0;
      const session = this.owner.get(ref);
      const interest = Math.max(done, (session && this.sessionLastActive(session)) || 0);
      finished.push([ref, done]);
      if (t - interest > this.opts.ttlMs) this.destroy(ref);
    }
    const left = finished.filter(([ref]) => this.store.exists('task', ref)).sort((a, b) => a[1] - b[1]);
    for (const [ref] of left.slice(0, Math.max(0, left.length - this.opts.maxFinished))) this.destroy(ref);
  }
}
