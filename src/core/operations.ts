// allowed_operations and current_operations, in one place for every class that has
// them. A class declares its operations and one check that says why an operation is
// not possible now (or nothing); allowed_operations is that check run over every
// operation, and runOperation locks the object while the operation runs.
import type { ObjectStore } from '../db/store.js';
import type { ErrorCode } from '../datamodel/errors.js';
import type { CallContext } from './context.js';
import { XenApiError } from './errors.js';

/** Why an operation cannot start: an error's code and parameters. A XenApiError is one;
 * a plain one costs no stack trace, which matters where allowed_operations asks about
 * every operation of every object (at start, thousands of times per class). */
export interface Refusal {
  readonly code: string;
  readonly params: ReadonlyArray<unknown>;
}

export function refusal(code: ErrorCode, ...params: unknown[]): Refusal {
  return { code, params };
}

export interface OperationRules {
  /** Every operation the class's allowed_operations may list. */
  ops: readonly string[];
  /** Why `op` cannot start on `ref` now, ignoring operations in progress; undefined if it can. */
  check(store: ObjectStore, ref: string, op: string): Refusal | undefined;
  /** Operations that may run alongside each other (e.g. clone with copy); default: none. */
  compatible?: ReadonlyArray<readonly string[]>;
}

const rules = new Map<string, OperationRules>();

export function defineOperations(cls: string, r: OperationRules): void {
  rules.set(cls, r);
}

function current(store: ObjectStore, cls: string, ref: string): Record<string, string> {
  return (store.any.field(cls, ref, 'current_operations') as Record<string, string> | undefined) ?? {};
}

function conflict(r: OperationRules, running: string[], op: string): boolean {
  if (running.length === 0) return false;
  return !(r.compatible ?? []).some((set) => set.includes(op) && running.every((o) => set.includes(o)));
}

/** Throws the precise error if `op` may not start on the object now. */
export function assertOperationValid(store: ObjectStore, cls: string, ref: string, op: string): void {
  const r = rules.get(cls);
  if (!r) return;
  const cur = current(store, cls, ref);
  const running = Object.values(cur);
  if (conflict(r, running, op)) {
    const [task, other] = Object.entries(cur)[0]!;
    throw new XenApiError('OTHER_OPERATION_IN_PROGRESS', [cls, ref, other, task]);
  }
  const err = r.check(store, ref, op);
  if (err) throw err instanceof XenApiError ? err : new XenApiError(err.code as ErrorCode, err.params);
}

/** Recomputes allowed_operations from the class's rules; writes only when it changed. One
 * transaction, in which every read of the object is of the store's shared record. */
export function updateAllowedOperations(store: ObjectStore, cls: string, ref: string): void {
  const r = rules.get(cls);
  if (!r) return;
  store.tx(() => {
    const rec = store.view(cls, ref);
    if (!rec) return;
    const running = Object.values(rec.current_operations as Record<string, string>);
    const allowed = r.ops.filter((op) => !conflict(r, running, op) && !r.check(store, ref, op));
    const before = rec.allowed_operations as readonly string[];
    if (before.length !== allowed.length || before.some((o, i) => o !== allowed[i])) {
      store.any.update(cls, ref, { allowed_operations: allowed });
    }
  });
}

/** Runs fn with `op` recorded in the object's current_operations under the call's task;
 * conflicting calls meanwhile get OTHER_OPERATION_IN_PROGRESS. */
export async function runOperation<T>(store: ObjectStore, ctx: CallContext, cls: string, ref: string, op: string, fn: () => Promise<T> | T): Promise<T> {
  const key = ctx.task?.ref ?? `op:${op}:${Date.now()}:${Math.random()}`;
  store.tx(() => {
    assertOperationValid(store, cls, ref, op);
    store.any.update(cls, ref, { current_operations: { ...current(store, cls, ref), [key]: op } });
    updateAllowedOperations(store, cls, ref);
  });
  try {
    return await fn();
  } finally {
    if (store.exists(cls, ref)) {
      store.tx(() => {
        const cur = current(store, cls, ref);
        delete cur[key];
        store.any.update(cls, ref, { current_operations: cur });
        updateAllowedOperations(store, cls, ref);
      });
    }
  }
}

/** Clears operations left behind by a daemon that died mid-operation (run at start). */
export function clearStaleOperations(store: ObjectStore): void {
  store.tx(() => {
    for (const cls of rules.keys()) {
      for (const [ref, rec] of store.viewAll(cls)) {
        if (Object.keys(rec.current_operations as object).length > 0) store.any.update(cls, ref, { current_operations: {} });
        updateAllowedOperations(store, cls, ref);
      }
    }
  });
}
