// Wire-level helpers for the RPC tests: raw HTTP requests over TCP, TLS or a Unix
// socket (node:http/node:https, no client library in between), XML-RPC bodies built
// and read with the `xmlrpc` package, and one normalized view of an answer.
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { ROOT_PASSWORD } from '../helpers/daemon.js';

const require = createRequire(import.meta.url);
const serializer = require('xmlrpc/lib/serializer') as { serializeMethodCall(method: string, params: unknown[]): string };
type Deser = new () => { deserializeMethodResponse(s: Readable, cb: (err: Error | null, v?: unknown) => void): void };
const Deserializer: Deser = require('xmlrpc/lib/deserializer');

/** Where to send a request: an http(s) URL, or a Unix socket path. */
export type Target = string | { socket: string };

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One HTTP request on a fresh connection (no keep-alive); TLS certificates are not checked. */
export function request(target: Target, path: string, body: string | Buffer | undefined, opts: {
  method?: string;
  headers?: Record<string, string>;
  /** A keep-alive agent to reuse connections; by default each request has its own. */
  agent?: http.Agent;
} = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const common = { method: opts.method ?? 'POST', path, headers, agent: opts.agent ?? (false as const) };
    let req: http.ClientRequest;
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    if (typeof target === 'string') {
      const u = new URL(target);
      const o = { ...common, host: u.hostname, port: u.port };
      req = u.protocol === 'https:' ? https.request({ ...o, rejectUnauthorized: false }, onResponse) : http.request(o, onResponse);
    } else {
      req = http.request({ ...common, socketPath: target.socket }, onResponse);
    }
    req.on('error', reject);
    req.end(body);
  });
}

export function xmlBody(method: string, params: unknown[]): string {
  return serializer.serializeMethodCall(method, params);
}

export function parseXmlResponse(text: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    new Deserializer().deserializeMethodResponse(Readable.from([text]), (err, v) => (err ? reject(err) : resolve(v)));
  });
}

/** An answer, whichever protocol carried it. */
export type Answer = { ok: true; value: any } | { ok: false; error: string[] };

/** Reads an XML-RPC Status struct (or a bare value, as system.listMethods sends). */
export async function xmlAnswer(text: string): Promise<Answer> {
  const v = (await parseXmlResponse(text)) as any;
  if (v && typeof v === 'object' && !Array.isArray(v) && 'Status' in v) {
    return v.Status === 'Success' ? { ok: true, value: v.Value } : { ok: false, error: v.ErrorDescription };
  }
  return { ok: true, value: v };
}

/** Reads a JSON-RPC v1 or v2 answer. */
export function jsonAnswer(text: string): Answer {
  const j = JSON.parse(text);
  if (j.error === null || j.error === undefined) return { ok: true, value: j.result };
  if (Array.isArray(j.error)) return { ok: false, error: j.error };
  return { ok: false, error: [j.error.message, ...(j.error.data ?? [])] };
}

export type Protocol = 'xml' | 'json';

/** Calls a method over XML-RPC (POST /) or JSON-RPC 2.0 (POST /jsonrpc); the answer
 * read, and its body as it came. */
export async function rawCall(target: Target, proto: Protocol, method: string, params: unknown[], agent?: http.Agent): Promise<{ answer: Answer; text: string }> {
  const r = proto === 'xml'
    ? await request(target, '/', xmlBody(method, params), { headers: { 'content-type': 'text/xml' }, agent })
    : await request(target, '/jsonrpc', JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }), { headers: { 'content-type': 'application/json' }, agent });
  if (r.status !== 200) throw new Error(`HTTP ${r.status} for ${method}: ${r.text}`);
  return { answer: proto === 'xml' ? await xmlAnswer(r.text) : jsonAnswer(r.text), text: r.text };
}

/** Calls a method over XML-RPC (POST /) or JSON-RPC 2.0 (POST /jsonrpc). */
export async function call(target: Target, proto: Protocol, method: string, params: unknown[], agent?: http.Agent): Promise<Answer> {
  return (await rawCall(target, proto, method, params, agent)).answer;
}

/** The value of a successful call; throws with the error description otherwise. */
export async function value(target: Target, proto: Protocol, method: string, params: unknown[]): Promise<any> {
  const a = await call(target, proto, method, params);
  if (!a.ok) throw new Error(`${method} failed: ${JSON.stringify(a.error)}`);
  return a.value;
}

/** The control domain's ref (the daemon also has templates and other VMs). */
export async function controlDomain(target: Target, session: string): Promise<string> {
  const all = await value(target, 'json', 'VM.get_all_records', [session]);
  const ref = Object.keys(all).find((r) => all[r].is_control_domain === true);
  if (!ref) throw new Error('no control domain among the VMs');
  return ref;
}

export async function loginAt(target: Target, password = ROOT_PASSWORD): Promise<string> {
  return value(target, 'json', 'session.login_with_password', ['root', password, '1.1', 'xapid-tests']);
}

/** Logs in and reads the pool: the "is it still serving?" check after a hostile request. */
export async function assertServing(target: Target): Promise<void> {
  const s = await loginAt(target);
  for (const proto of ['json', 'xml'] as const) {
    const pools = await value(target, proto, 'pool.get_all', [s]);
    if (!Array.isArray(pools) || pools.length !== 1) throw new Error(`pool.get_all over ${proto} gave ${JSON.stringify(pools)}`);
  }
  await value(target, 'json', 'session.logout', [s]);
}

/** Runs tasks with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
