// Running one plugin command: a process per call, the request as JSON on stdin, the
// answer as JSON on stdout, a deadline on every call. A plugin that crashes, hangs or
// prints something unreadable becomes SR_BACKEND_FAILURE [reason, stdout, stderr]; an
// error it reports becomes the XenAPI error xapi gives for that code.
import type { ChildProcess } from 'node:child_process';
import { XenApiError } from '../core/errors.js';
import { ChildRegistry } from './children.js';
import { SM_API_VERSION, type Manifest } from './manifest.js';

export interface SrInfo { uuid: string; device_config: Record<string, string>; sm_config: Record<string, string> }
export interface VdiInfo { uuid: string; location: string; sm_config: Record<string, string> }

export interface PluginRequest {
  command: string;
  sr?: SrInfo;
  vdi?: VdiInfo;
  args?: Record<string, unknown>;
}

/** An error the plugin answered with (as opposed to a crash). */
export class PluginFailure extends Error {
  constructor(readonly code: number, message: string, readonly params: string[], readonly stderr: string) {
    super(message);
  }
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** A plugin process, started and listened to, that has not been given its request yet. */
interface Started {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  spawnError?: Error;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(m: Manifest, children: ChildRegistry): Started {
  const child = children.spawn(m.exec, [], {
    cwd: m.dir,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, XAPID_NODE: process.execPath },
  });
  const s: Started = {
    child, stdout: '', stderr: '',
    closed: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => {
    if (s.stdout.length < MAX_OUTPUT) s.stdout += d.toString('utf8');
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (s.stderr.length < MAX_OUTPUT) s.stderr += d.toString('utf8');
  });
  child.stdin!.on('error', () => {
    /* the plugin exited without reading its request: judged by its answer */
  });
  child.once('error', (e) => {
    s.spawnError = e;
  });
  return s;
}

/**
 * Still one process per operation, but started ahead of need: for each plugin type in
 * use one spare process is kept waiting for its request on stdin, so a call does not
 * wait for an interpreter to start. A spare idle for a while is stopped; one that gets
 * no request (the daemon went away) reads end-of-file and exits by itself.
 */
export class PluginPool {
  private readonly spares = new Map<string, Array<{ s: Started; timer: NodeJS.Timeout }>>();
  private stopped = false;
  /** Bulk copies running; while there are any, spares are owed rather than started. */
  private holds = 0;
  private readonly owed = new Map<string, Manifest>();

  private readonly onExit = () => this.stop();

  /** `perType` spares per plugin type in use (operations often make two or three calls at once). */
  constructor(private readonly children: ChildRegistry, private readonly perType = 2, private readonly idleMs = 5 * 60_000) {
    process.once('exit', this.onExit);
  }

  /** A process for one call of the plugin: a live spare if there is one, else a new one. */
  take(m: Manifest): Started {
    const list = this.spares.get(m.type) ?? [];
    this.spares.set(m.type, list);
    let got: Started | undefined;
    while (!got && list.length > 0) {
      const spare = list.shift()!;
      clearTimeout(spare.timer);
      if (!spare.s.spawnError && spare.s.child.exitCode === null && spare.s.child.signalCode === null) got = spare.s;
      else ChildRegistry.killGroup(spare.s.child);
    }
    if (this.holds > 0) this.owed.set(m.type, m);
    else this.refill(m);
    return got ?? start(m, this.children);
  }

  /**
   * Runs fn (a copy moving gigabytes) with no spare started meanwhile: each start forks
   * the daemon and then costs a good part of a CPU second, which the copy would lose.
   * Calls made meanwhile start their own process, as without the pool; the spares owed
   * are started once fn is over, after the caller has had its answer.
   */
  async quietDuring<T>(fn: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      return await fn();
    } finally {
      if (--this.holds === 0 && this.owed.size > 0) {
        const owed = [...this.owed.values()];
        this.owed.clear();
        setImmediate(() => {
          if (this.holds === 0) for (const m of owed) this.refill(m);
          else for (const m of owed) this.owed.set(m.type, m);
        });
      }
    }
  }

  private refill(m: Manifest): void {
    const list = this.spares.get(m.type)!;
    while (!this.stopped && list.length < this.perType) {
      const s = start(m, this.children);
      const entry = {
        s,
        timer: setTimeout(() => {
          const i = list.indexOf(entry);
          if (i >= 0) list.splice(i, 1);
          ChildRegistry.killGroup(s.child);
        }, this.idleMs),
      };
      entry.timer.unref();
      list.push(entry);
      void s.closed.then(() => {
        const i = list.indexOf(entry);
        if (i >= 0) {
          clearTimeout(entry.timer);
          list.splice(i, 1);
        }
      });
    }
  }

  stop(): void {
    // A daemon restarted in place makes a new pool: this one's hook must not pile up.
    process.off('exit', this.onExit);
    this.stopped = true;
    this.owed.clear();
    for (const list of this.spares.values()) {
      for (const { s, timer } of list) {
        clearTimeout(timer);
        ChildRegistry.killGroup(s.child);
      }
    }
    this.spares.clear();
  }
}

export interface RunOptions {
  hostUuid: string;
  children: ChildRegistry;
  /** Where to get the process from; without one, each call starts its own. */
  pool?: PluginPool;
  signal?: AbortSignal;
}

export async function runPlugin(m: Manifest, req: PluginRequest, opts: RunOptions): Promise<Record<string, unknown>> {
  const body = JSON.stringify({ api_version: SM_API_VERSION, command: req.command, host_uuid: opts.hostUuid, sr: req.sr, vdi: req.vdi, args: req.args ?? {} });
  const p = opts.pool ? opts.pool.take(m) : start(m, opts.children);
  const { child } = p;
  let why: string | undefined;
  const stop = (reason: string) => {
    why ??= reason;
    ChildRegistry.killGroup(child);
  };
  const timer = setTimeout(() => stop(`the ${m.type} plugin did not answer ${req.command} within ${m.timeoutMs / 1000} s and was stopped`), m.timeoutMs);
  const onAbort = () => stop(`${req.command} was cancelled`);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  child.stdin!.end(body);
  const { code, signal } = await p.closed;
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  const { stdout, stderr } = p;
  const crash = (reason: string) => new XenApiError('SR_BACKEND_FAILURE', [reason, stdout, stderr]);
  if (p.spawnError) why ??= `the ${m.type} plugin could not be started: ${p.spawnError.message}`;
  if (why) throw crash(why);
  let answer: { status?: unknown; result?: unknown; code?: unknown; message?: unknown; params?: unknown };
  try {
    answer = JSON.parse(stdout) as typeof answer;
    if (typeof answer !== 'object' || answer === null) throw new Error('not an object');
  } catch {
    throw crash(signal ? `the ${m.type} plugin was killed by ${signal} during ${req.command}` :
      code !== 0 ? `the ${m.type} plugin failed during ${req.command} (exit status ${code})` :
      `the ${m.type} plugin gave an answer to ${req.command} that is not a JSON object (${stdout ? `${stdout.length} bytes` : 'no output'})`);
  }
  if (answer.status === 'error' && Number.isInteger(answer.code)) {
    const params = Array.isArray(answer.params) ? answer.params.map(String) : [];
    throw new PluginFailure(answer.code as number, String(answer.message ?? ''), params, stderr);
  }
  if (answer.status === 'ok' && code === 0) {
    const r = answer.result ?? {};
    if (typeof r !== 'object' || Array.isArray(r) || r === null) throw crash(`the ${m.type} plugin's result for ${req.command} is not an object`);
    return r as Record<string, unknown>;
  }
  throw crash(code !== 0 ? `the ${m.type} plugin failed during ${req.command} (exit status ${code})` : `the ${m.type} plugin gave no valid answer to ${req.command}`);
}

export interface FailureContext { sr: string; vdi?: string; op: string }

/** xapi's mapping of plugin error codes (sm_exec): a few have their own XenAPI error. */
export function mapPluginFailure(f: PluginFailure, ctx: FailureContext): XenApiError {
  switch (f.code) {
    case 38: return new XenApiError('SR_OPERATION_NOT_SUPPORTED', [ctx.sr]);
    case 39: return new XenApiError('SR_NOT_EMPTY', []);
    case 24: return new XenApiError('VDI_IN_USE', [ctx.vdi ?? '', ctx.op]);
    case 16: return new XenApiError('SR_DEVICE_IN_USE', []);
    case 144: return new XenApiError('VDI_MISSING', [ctx.sr, ctx.vdi ?? '']);
    case 44:
      if (f.params.length >= 2) return new XenApiError('SR_FULL', [f.params[0], f.params[1]]);
      break;
  }
  return new XenApiError(`SR_BACKEND_FAILURE_${f.code}`, ['', f.message, f.stderr]);
}
