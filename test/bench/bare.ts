// The baseline for the benchmark: a bare fastify server, in its own process like the
// daemon, set up the way the daemon's front end is (bodies taken as bytes, keep-alive,
// the same response headers), whose routes return a prebuilt body and do nothing else.
// The bench loads each body (a copy of the daemon's real answer) with PUT /_load/:id and
// then measures POST /r/:id. For event delivery, POST /hold/:id is held open until
// POST /release/:id, whose body is then the answer to every request held. Not part of
// `npm test`.
import Fastify, { type FastifyReply } from 'fastify';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type, x-requested-with',
};

const bodies = new Map<string, { headers: Record<string, string>; body: Buffer }>();

const app = Fastify({ logger: false, bodyLimit: 1 << 30, keepAliveTimeout: 75_000, requestTimeout: 0 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

app.put<{ Params: { id: string }; Querystring: { type?: string } }>('/_load/:id', async (req, reply) => {
  const body = req.body as Buffer;
  bodies.set(req.params.id, { headers: { 'content-type': req.query.type ?? 'text/xml', ...CORS }, body });
  return reply.send(`${body.length}\n`);
});

app.post<{ Params: { id: string } }>('/r/:id', async (req, reply) => {
  const b = bodies.get(req.params.id);
  if (!b) return reply.code(404).send('no such body\n');
  return reply.headers(b.headers).send(b.body);
});

const held = new Map<string, FastifyReply[]>();

app.post<{ Params: { id: string } }>('/hold/:id', (req, reply) => {
  let list = held.get(req.params.id);
  if (!list) held.set(req.params.id, (list = []));
  list.push(reply);
  return reply;
});

const releaseAll = (id: string, body: Buffer) => {
  const list = held.get(id) ?? [];
  held.delete(id);
  for (const r of list) r.headers({ 'content-type': 'application/json', ...CORS }).send(body);
  return list.length;
};

app.post<{ Params: { id: string } }>('/release/:id', async (req, reply) => reply.send(`${releaseAll(req.params.id, req.body as Buffer)}\n`));

const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ msg: 'bare ready', url })}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
