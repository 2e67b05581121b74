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
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops the process and removes the state directory. */
  cleanup(): Promise<void>;
}

export interface DaemonOptions {
  stateDir?: string;
  https?: boolean;
  socket?: boolean;
  args?: string[];
  env?: Record<string, string>;
}

export function tempDir(prefix = 'xapid-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const stateDir = opts.stateDir ?? tempDir();
  const socket = opts.socket ? path.join(stateDir, 'xapi.sock') : undefined;
  const args = [MAIN, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--auth-failure-delay', '10', '--log-level', 'info'];
  if (opts.https) args.push('--https-listen', '127.0.0.1:0');
  if (socket) args.push('--unix-socket', socket);
  args.push(...(opts.args ?? []));
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, XAPID_ROOT_PASSWORD: ROOT_PASSWORD, ...opts.env },
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
    void exited.then((code) => reject(new Error(`xapid exited with ${code} before it was ready:\n${logs.join('\n')}`)));
  });
  const urls = await ready;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill(signal);
    return exited;
  };
  return {
    proc, stateDir, url: urls.http!, httpsUrl: urls.https, socket, logs, stop,
    async cleanup() {
      await stop();
      if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
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
