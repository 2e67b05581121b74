// Calls to another host of the pool (src/http/pool.ts answers them): signed with the
// pool secret, and an answer counts only if it is signed back with the same secret. TLS
// certificates are not checked here: hosts of a pool make their own self-signed ones, and
// the signatures are what prove who answered.
import http from 'node:http';
import https from 'node:https';
import { AUTH_HEADER, answerIsGenuine, signRequest } from './auth.js';

export class PoolCallError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true, rejectUnauthorized: false }) };

/** `base` is the other host's URL (http://address:port or https://…). */
export function poolCall(base: string, secret: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<unknown> {
  const url = new URL(path, base);
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
  const signed = signRequest(secret, method, url.pathname + url.search, payload);
  const tls = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(url, {
      method, agent: tls ? agents.https : agents.http, timeout: timeoutMs,
      headers: { [AUTH_HEADER]: signed.header, 'content-type': 'application/json', 'content-length': payload.length },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks);
        if (res.statusCode !== 200) return reject(new PoolCallError(`${url.host} refused ${path}: ${res.statusCode} ${text.toString().trim()}`, res.statusCode));
        if (!answerIsGenuine(secret, signed.nonce, text, res.headers[AUTH_HEADER] as string | undefined)) {
          return reject(new PoolCallError(`${url.host} answered ${path} without proof of this pool's secret`));
        }
        try {
          resolve(JSON.parse(text.toString()));
        } catch {
          reject(new PoolCallError(`${url.host} answered ${path} with something that is not JSON`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new PoolCallError(`${url.host} did not answer ${path} within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof PoolCallError ? e : new PoolCallError(`${url.host}: ${e.message}`)));
    req.end(payload);
  });
}
