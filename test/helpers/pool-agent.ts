// The pool harness's hands inside a namespace (test/helpers/pool.ts starts it with
// `ip netns exec NS node pool-agent.js`): it makes the TCP connections and XenAPI calls a
// test asks for, from that namespace's own address. One JSON request per line on stdin,
// one JSON answer per line on stdout, matched by id; several may be in flight. It exits
// when its stdin closes, so it never outlives the test process that started it.
import net from 'node:net';
import { createInterface } from 'node:readline';
import { call, type Answer, type Protocol } from '../rpc/wire.js';

/** What a test asks for (the harness adds the id). */
export type AgentAsk =
  | { op: 'call'; url: string; proto: Protocol; method: string; params: unknown[]; timeoutMs: number }
  | { op: 'connect'; host: string; port: number; timeoutMs: number };

export type AgentRequest = AgentAsk & { id: number };

export type AgentReply =
  | { id: number; ok: true; answer?: Answer }
  | { id: number; ok: false; code: string; message: string };

/** Opens a TCP connection and closes it again: does anything answer at host:port? */
function connect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('timeout', () => {
      s.destroy();
      reject(Object.assign(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    s.once('error', reject);
  });
}

/** Fails with ETIMEDOUT if the work takes longer (the request itself is left to die). */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

async function handle(req: AgentRequest): Promise<AgentReply> {
  try {
    if (req.op === 'connect') {
      await connect(req.host, req.port, req.timeoutMs);
      return { id: req.id, ok: true };
    }
    const answer = await within(call(req.url, req.proto, req.method, req.params), req.timeoutMs, `${req.method} at ${req.url}`);
    return { id: req.id, ok: true, answer };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { id: req.id, ok: false, code: err.code ?? 'ERROR', message: err.message };
  }
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    void handle(JSON.parse(line) as AgentRequest).then((reply) => process.stdout.write(`${JSON.stringify(reply)}\n`));
  })
  .on('close', () => process.exit(0));
