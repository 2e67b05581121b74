// The RPC front end: XML-RPC at / (and /RPC2, /xmlrpc), JSON-RPC at /jsonrpc, on
// one fastify app per listener (HTTP, HTTPS, Unix socket) so each call knows its door.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Daemon } from '../api/context.js';
import type { Transport } from '../core/context.js';
import { dispatch, type Outcome } from './dispatch.js';
import * as xml from './xmlrpc.js';
import { encodeJson, parseJsonCall, type JsonCall } from './jsonrpc.js';
import { Chunks } from './chunks.js';
import { registerPoolRoutes } from '../http/pool.js';

export interface HttpOptions {
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
  https?: { key: string; cert: string };
}

const XML_PATHS = ['/', '/RPC2', '/xmlrpc'];
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type, x-requested-with',
};
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What xapi answers to a body that is not an RPC call at all: HTTP 500 and an HTML page. */
function parseFailure(reply: FastifyReply, what: string, detail: string): FastifyReply {
  const safe = xml.escapeXml(detail);
  return reply
    .code(500)
    .headers({ 'content-type': 'text/html', connection: 'close', 'cache-control': 'no-cache, no-store' })
    .send(`<html><body><h1>HTTP 500 internal server error</h1>The request could not be decoded.<h1>Additional information</h1>${what}(${JSON.stringify(safe)})</body></html>`);
}

function xmlBody(o: Outcome): Chunks {
  if (o.ok && !('raw' in o)) return xml.typedSuccessBody(o.type, o.value);
  const out = new Chunks();
  out.push(o.ok ? xml.rawResponse(xml.encodeUntyped(o.raw)) : xml.failureResponse(o.error.description));
  return out;
}

/** Answers above this size are written part by part rather than copied into one Buffer. */
const BIG = 1 << 20;

/** Sends an answer as bytes: Node would prepend the headers to a string body (one more copy
 * of a big answer), and fastify would append "; charset=utf-8" to a JSON content type,
 * which clients such as xen-api compare to exactly "application/json". A big answer goes
 * out in its parts with its size given up front, each part handed to the socket as it is. */
function send(reply: FastifyReply, type: string, body: Chunks): FastifyReply {
  const size = body.size();
  if (size < BIG) return reply.headers({ 'content-type': type, ...CORS }).send(body.toBuffer());
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': type, 'content-length': size, ...CORS });
  res.cork();
  for (const p of body.parts()) res.write(p);
  res.uncork();
  res.end();
  return reply;
}

export function buildApp(daemon: Daemon, transport: Transport, opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit,
    https: opts.https ?? null,
    keepAliveTimeout: 75_000,
    requestTimeout: 0,
    return503OnClosing: true,
  } as never) as unknown as FastifyInstance;

  // Take every body as bytes: clients send XML-RPC and JSON-RPC with all sorts of content types.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).headers({ 'content-type': 'text/plain', connection: 'close' })
        .send(`Request body too large: the limit is ${opts.bodyLimit} bytes\n`);
    }
    daemon.log.error({ err }, 'HTTP error');
    return reply.code(err.statusCode ?? 500).header('content-type', 'text/plain').send(`${err.message}\n`);
  });

  const decode = (body: unknown): string | undefined => {
    if (!Buffer.isBuffer(body)) return '';
    try {
      return utf8.decode(body);
    } catch {
      return undefined;
    }
  };

  for (const url of XML_PATHS) {
    app.post(url, async (req, reply) => {
      const text = decode(req.body);
      if (text === undefined) return parseFailure(reply, 'Xmlrpc.Parse_error', 'the body is not valid UTF-8');
      let call: { method: string; params: unknown[] };
      try {
        call = await xml.parseMethodCall(text);
      } catch (e) {
        return parseFailure(reply, 'Xmlrpc.Parse_error', (e as Error).message);
      }
      const outcome = await dispatch({ daemon, transport }, call.method, call.params);
      return send(reply, 'text/xml', xmlBody(outcome));
    });
  }

  app.post('/jsonrpc', async (req, reply) => {
    const text = decode(req.body);
    if (text === undefined) return parseFailure(reply, 'Jsonrpc.Malformed_method_request', 'the body is not valid UTF-8');
    let call: JsonCall;
    try {
      call = parseJsonCall(text);
    } catch (e) {
      return parseFailure(reply, 'Jsonrpc.Malformed_method_request', (e as Error).message);
    }
    const outcome = await dispatch({ daemon, transport }, call.method, call.params);
    return send(reply, 'application/json', encodeJson(call, outcome));
  });

  registerPoolRoutes(app, daemon);

  for (const url of [...XML_PATHS, '/jsonrpc']) {
    app.options(url, async (_req, reply) => reply.code(200).headers({ ...CORS, 'access-control-max-age': '86400' }).send(''));
  }
  return app;
}

/**
 * Stops the servers taking requests and waits for those running, for a bounded time.
 * Node closes only the keep-alive connections idle when closing begins, so one whose
 * call ends later would be held open for the whole keep-alive timeout: idle ones are
 * closed as they fall idle, and after graceMs whatever is still open is cut.
 */
export async function closeApps(apps: FastifyInstance[], graceMs = 10_000): Promise<void> {
  const sweep = setInterval(() => { for (const a of apps) a.server.closeIdleConnections(); }, 100);
  const cut = setTimeout(() => { for (const a of apps) a.server.closeAllConnections(); }, graceMs);
  try {
    await Promise.allSettled(apps.map((a) => a.close()));
  } finally {
    clearInterval(sweep);
    clearTimeout(cut);
  }
}
