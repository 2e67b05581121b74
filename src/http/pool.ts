// The endpoints hosts of a pool call on each other, under /pool/ on every listener. They
// are not XenAPI messages. Every request must carry proof of the pool secret
// (src/pool/auth.ts); anything else is refused with 403, logged without the secret, and
// changes nothing. Answers are signed back so the caller knows whom it reached.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../api/context.js';
import { AUTH_HEADER, signAnswer } from '../pool/auth.js';

type PoolHandler = (req: FastifyRequest) => unknown;

export function registerPoolRoutes(app: FastifyInstance, daemon: Daemon): void {
  const role = daemon.role;
  const guarded = (handler: PoolHandler) => async (req: FastifyRequest, reply: FastifyReply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const secret = role.secret();
    const verdict = role.requests.verify(secret, req.method, req.url, body, req.headers[AUTH_HEADER]);
    if (!verdict.ok) {
      daemon.log.warn({ url: req.url, from: req.ip, why: verdict.why }, 'pool request refused');
      return reply.code(403).header('content-type', 'text/plain').send(`${verdict.why}\n`);
    }
    const answer = Buffer.from(JSON.stringify(await handler(req)));
    return reply.code(200).headers({ 'content-type': 'application/json', [AUTH_HEADER]: signAnswer(secret!, verdict.nonce, answer) }).send(answer);
  };

  // Who answers here: the first thing a host asks another (a joiner of its master, a
  // master of a slave that says hello).
  app.get('/pool/hello', guarded(() => {
    const host = daemon.store.get('host', daemon.hostRef);
    return { host: host?.uuid, address: host?.address, role: role.role.kind, api: [host?.API_version_major, host?.API_version_minor] };
  }));
}
