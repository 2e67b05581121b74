// Starts a real xapid process for a test: a fresh state directory, a free port, and
// stopped by its own PID at the end (never by name).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
export const ROOT_PASSWORD = 'test-root-password';

export interface TestDaemon {
  proc: ChildProcess;
  stateDir: string;
  /** http://127.0.0.1:PORT */
  url: string;
  httpsUrl?: string;
  socket?: string;
  /** Every log line so far (pino JSON). */
  logs: string[];
  /** Signals the process (by its PID) and waits for it to exit; with graceMs, sends
   * SIGKILL if it has not exited by then. Resolves to the exit code (null if signalled). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** Stops the process and removes the state directory. */
  cleanup(): Promise<void>;
}

export interface DaemonOptions {
  stateDir?: string;
  /** The plain HTTP listener (default 127.0.0.1:0, a free port). */
  listen?: string;
  /** Run inside this network namespace (`ip netns exec NAME node …`; ip execs node, so
   * the PID held is the daemon's own). */
  netns?: string;
  https?: boolean;
  socket?: boolean;
  args?: string[];
  env?: Record<string, string>;
  /** Kill the process (SIGKILL, by PID) and fail if it is not ready by then. */
  readyTimeoutMs?: number;
}

export function tempDir(prefix = 'xapid-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const stateDir = opts.stateDir ?? tempDir();
  const socket = opts.socket ? path.join(stateDir, 'xapi.sock') : undefined;
  const args = [MAIN, '--state-dir', stateDir, '--listen', opts.listen ?? '127.0.0.1:0', '--auth-failure-delay', '10', '--log-level', 'info'];
  if (opts.https) args.push('--https-listen', '127.0.0.1:0');
  if (socket) args.push('--unix-socket', socket);
  args.push(...(opts.args ?? []));
  // XAPID_TEST_NODE_ARGS passes node flags to the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.XAPID_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const argv = [process.execPath, ...nodeArgs, ...args];
  if (opts.netns) argv.unshift('ip', 'netns', 'exec', opts.netns);
  const proc = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, XAPID_ROOT_PASSWORD: ROOT_PASSWORD, XAPID_EXIT_WITH_PARENT: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  const ready = new Promise<{ http?: string; https?: string }>((resolve, reject) => {
    const urls: { http?: string; https?: string } = {};
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string; transport?: string };
        if (j.msg === 'listening' && j.transport === 'http') urls.http = j.url;
        if (j.msg === 'listening' && j.transport === 'https') urls.https = j.url;
        if (j.msg?.startsWith('xapid ready')) resolve(urls);
      } catch {
        /* not JSON */
      }
    });
    void exited.then((code) => reject(new Error(late
      ? `xapid was not ready within ${opts.readyTimeoutMs} ms and was killed:\n${logs.join('\n')}`
      : `xapid exited with ${code} before it was ready:\n${logs.join('\n')}`)));
  });
  let late = false;
  const lateTimer = opts.readyTimeoutMs === undefined ? undefined : setTimeout(() => {
    late = true;
    proc.kill('SIGKILL');
  }, opts.readyTimeoutMs);
  const urls = await ready.finally(() => clearTimeout(lateTimer));
  const stop = (signal: NodeJS.Signals = 'SIGTERM', graceMs?: number) => stopProcess(proc, exited, signal, graceMs);
  return {
    proc, stateDir, url: urls.http!, httpsUrl: urls.https, socket, logs, stop,
    async cleanup() {
      await stop();
      if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Signals a child process by its PID (unless signal is undefined) and waits for it to
 * exit; with graceMs, sends SIGKILL if it has not exited by then. `exited` is a promise of
 * its exit code made before it could exit (or one is made here). Resolves to the exit
 * code, null if a signal ended it. */
export async function stopProcess(proc: ChildProcess, exited: Promise<number | null> | undefined, signal: NodeJS.Signals | undefined, graceMs?: number): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const done = exited ?? new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  if (signal) proc.kill(signal);
  if (graceMs === undefined) return done;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  const first = await Promise.race([done, late]);
  clearTimeout(timer);
  if (first !== 'late') return first;
  proc.kill('SIGKILL');
  return done;
}

/** A plain XML-RPC POST; returns status, headers and body text. */
export async function post(url: string, body: string | Buffer, contentType = 'text/xml'): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': contentType } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** A JSON-RPC 2.0 call; returns the parsed answer. */
export async function jsonCall(url: string, method: string, params: unknown[], id: unknown = 1): Promise<any> {
  const res = await fetch(`${url}/jsonrpc`, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', method, params, id }), headers: { 'content-type': 'application/json' } });
  return res.json();
}

/** Logs in as root over JSON-RPC and returns the session ref. */
export async function login(url: string): Promise<string> {
  const r = await jsonCall(url, 'session.login_with_password', ['root', ROOT_PASSWORD, '1.1', 'xapid-tests']);
  if (!r.result) throw new Error(`login failed: ${JSON.stringify(r)}`);
  return r.result as string;
}

// ---- XML-RPC calls and sample values (added for the datamodel/store tests) ----
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { enums, NULL_REF } from '../../src/datamodel/model.js';
import type { ApiType } from '../../src/datamodel/types.js';

/** Encodes a JS value as an XML-RPC `<value>` (strings typed, big ints as i8). */
export function xmlValue(v: unknown): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  if (typeof v === 'string') return `<value><string>${esc(v)}</string></value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return `<value><double>${v}</double></value>`;
    return Math.abs(v) < 2 ** 31 ? `<value><int>${v}</int></value>` : `<value><i8>${v}</i8></value>`;
  }
  if (Array.isArray(v)) return `<value><array><data>${v.map(xmlValue).join('')}</data></array></value>`;
  if (v !== null && typeof v === 'object') {
    return `<value><struct>${Object.entries(v).map(([k, x]) => `<member><name>${esc(k)}</name>${xmlValue(x)}</member>`).join('')}</struct></value>`;
  }
  throw new Error(`cannot encode ${String(v)} as XML-RPC`);
}

type XmlDeserializer = new () => {
  deserializeMethodResponse(s: NodeJS.ReadableStream, cb: (err: Error | null, v?: unknown) => void): void;
};
const XmlResponseDeserializer = createRequire(import.meta.url)('xmlrpc/lib/deserializer') as XmlDeserializer;

/** An XML-RPC call at `/`; returns the decoded response struct: {Status, Value} or
 * {Status, ErrorDescription}. Bare values decode as strings, dateTime as Date. */
export async function xmlCall(url: string, method: string, params: unknown[]): Promise<any> {
  const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param>${xmlValue(p)}</param>`).join('')}</params></methodCall>`;
  const res = await post(`${url}/`, body);
  if (res.status !== 200) throw new Error(`XML-RPC ${method}: HTTP ${res.status}: ${res.text}`);
  return new Promise((resolve, reject) => {
    new XmlResponseDeserializer().deserializeMethodResponse(Readable.from([res.text]), (err, v) => (err ? reject(err) : resolve(v)));
  });
}

/** A value of type t for tests; n picks a different value of the same type, and refFor
 * names the object a ref should point at (NULL unless given). */
export function sampleValue(t: ApiType, n: number, refFor: (cls: string) => string = () => NULL_REF): unknown {
  switch (t.kind) {
    case 'string': return `s${n} <a&b> "é"`;
    case 'int': return n % 2 ? -(2 ** 33) - n : 2 ** 40 + n;
    case 'float': return n + 0.25;
    case 'bool': return n % 2 === 0;
    case 'datetime': return `2024${String((n % 12) + 1).padStart(2, '0')}${String((n % 28) + 1).padStart(2, '0')}T03:04:05Z`;
    case 'ref': return refFor(t.cls);
    case 'enum': {
      const values = enums[t.name]!;
      return values[n % values.length];
    }
    case 'set': return [...new Set([sampleValue(t.of, n, refFor), sampleValue(t.of, n + 1, refFor)])];
    case 'map': {
      const out: Record<string, unknown> = {};
      out[String(sampleValue(t.key, n, refFor))] = sampleValue(t.value, n, refFor);
      out[String(sampleValue(t.key, n + 1, refFor))] = sampleValue(t.value, n + 1, refFor);
      return out;
    }
    default: throw new Error(`no sample value for ${t.kind}`);
  }
}
