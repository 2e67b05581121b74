// One call, whatever the transport: find the message in the datamodel, check the
// argument count, the session, each argument's type and every ref, then run the
// custom handler or the generic implementation.
import { classes, listMethods, NULL_REF, type MessageKind, type MessageModel } from '../datamodel/model.js';
import type { ApiType } from '../datamodel/types.js';
import type { ApiContext, Handler } from '../api/context.js';
import { XenApiError, fail, toXenApiError } from '../core/errors.js';
import { runGeneric } from '../api/generic.js';
import { handlers } from '../api/handlers.js';
import { fromWire } from './convert.js';
import { encodeTyped } from './xmlrpc.js';

export type Outcome =
  | { ok: true; value: unknown; type: ApiType }
  | { ok: false; error: XenApiError }
  | { ok: true; raw: unknown };

const VOID: ApiType = { kind: 'void' };
const TASK_REF: ApiType = { kind: 'ref', cls: 'task' };

/** `Class.msg` or `Class_msg`; class names themselves may hold underscores. */
export function findMessage(name: string): MessageModel | undefined {
  const dot = name.indexOf('.');
  if (dot > 0) return classes.get(name.slice(0, dot))?.messages.get(name.slice(dot + 1));
  for (let i = name.indexOf('_'); i > 0; i = name.indexOf('_', i + 1)) {
    const m = classes.get(name.slice(0, i))?.messages.get(name.slice(i + 1));
    if (m) return m;
  }
  return undefined;
}

function checkRef(ctx: ApiContext, t: ApiType, v: string, mayBeNull: boolean): void {
  if (t.kind !== 'ref') return;
  if (v === NULL_REF && mayBeNull) return;
  const target = classes.get(t.cls);
  if (!target?.stored) return;
  if (t.cls === 'session' ? !ctx.daemon.sessions.isLocalOnly(v) && !ctx.daemon.store.exists('session', v) : !ctx.daemon.store.exists(t.cls, v)) {
    fail('HANDLE_INVALID', t.cls, v);
  }
}

/** Count, session and types: what fails at once, even for an Async call. */
function prepareArgs(ctx: ApiContext, m: MessageModel, wire: unknown[]): unknown[] {
  const given = m.takesSession ? wire.slice(1) : wire;
  const required = m.requiredArgs;
  if (given.length < required || given.length > m.args.length) {
    fail('MESSAGE_PARAMETER_COUNT_MISMATCH', m.wireName, required, given.length);
  }
  if (m.takesSession) ctx.session = ctx.daemon.sessions.check(wire[0], m.wireName).ref;
  return m.args.map((p, i) => (i >= given.length ? structuredClone(p.default) : fromWire(p.type, given[i], p.name)));
}

/** Every ref argument names an object of its class; for an Async call this fails in the task. */
function checkArgRefs(ctx: ApiContext, m: MessageModel, args: unknown[]): void {
  // The object a message acts on (its first ref) must exist; later refs may be NULL
  // where the message allows it (a setter's value, VM.copy's SR), which handlers check.
  const subject = m.args.findIndex((p) => p.type.kind === 'ref');
  m.args.forEach((p, i) => {
    checkRef(ctx, p.type, args[i] as string, i !== subject);
    if (p.type.kind === 'set' && p.type.of.kind === 'ref') for (const r of args[i] as string[]) checkRef(ctx, p.type.of, r, false);
  });
}

/** Generic messages that only read. */
const READS: ReadonlySet<MessageKind> = new Set<MessageKind>(['get', 'get_record', 'get_all', 'get_all_records', 'get_by_uuid', 'get_by_name_label']);

/** Runs the message's implementation: a registered handler, or the generic one. */
async function execute(ctx: ApiContext, m: MessageModel, args: unknown[]): Promise<unknown> {
  const handler: Handler | undefined = handlers.get(m.wireName);
  if (!handler && READS.has(m.kind)) {
    // The ref checks and the read in one read transaction: one view of the database, one lock.
    return ctx.daemon.store.read(() => {
      checkArgRefs(ctx, m, args);
      return runGeneric(ctx, m, args);
    });
  }
  checkArgRefs(ctx, m, args);
  if (handler) return handler(ctx, ...args);
  if (m.kind !== 'custom') return runGeneric(ctx, m, args);
  fail('NOT_IMPLEMENTED', m.wireName);
}

export async function dispatch(ctx: ApiContext, name: string, wire: unknown[]): Promise<Outcome> {
  try {
    if (name === 'system.listMethods') return { ok: true, raw: listMethods() };
    const isAsync = name.startsWith('Async.');
    const m = findMessage(isAsync ? name.slice(6) : name);
    if (!m) fail('MESSAGE_METHOD_UNKNOWN', name);
    if (m.removed) fail('MESSAGE_REMOVED');
    if (isAsync && !m.hasAsync) {
      throw new XenApiError('Fault' as never, [`No async mode for this operation (rpc: ${m.wireName})`]);
    }
    const args = prepareArgs(ctx, m, wire);
    const tasks = ctx.daemon.tasks;
    if (isAsync) {
      // The task ref comes back at once; the outcome, failures included, lands in the task.
      const ref = tasks.startAsync(name, ctx.session, async (task) => {
        const value = await execute({ ...ctx, task }, m, args);
        return encodeTyped(m.result, m.result.kind === 'void' ? '' : value);
      });
      return { ok: true, value: ref, type: TASK_REF };
    }
    const value = m.hasAsync
      ? await tasks.runSync(m.wireName, ctx.session, (task) => execute({ ...ctx, task }, m, args))
      : await execute(ctx, m, args);
    return { ok: true, value: m.result.kind === 'void' ? '' : value, type: m.result.kind === 'void' ? VOID : m.result };
  } catch (e) {
    const err = toXenApiError(e);
    if (err.code === 'INTERNAL_ERROR') ctx.daemon.log.error({ err: e, method: name }, 'internal error');
    return { ok: false, error: err };
  }
}
