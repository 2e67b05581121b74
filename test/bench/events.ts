// Event delivery figures for `npm run bench`: the time from a change being made to a
// waiting event.from client holding it (p50, p99) with 1 and with 200 waiters, and
// events delivered per second, each beside a bare fastify route's round trip measured
// in the same run with the same client and keep-alive.
import { Pool } from 'undici';
import { performance } from 'node:perf_hooks';
import { login, startDaemon } from '../helpers/daemon.js';
import { vmRecord } from '../helpers/api.js';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

interface Client { call(method: string, ...args: unknown[]): Promise<any> }

function client(pool: Pool, session: string): Client {
  let id = 0;
  return {
    async call(method, ...args) {
      const res = await pool.request({
        path: '/jsonrpc', method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method, params: [session, ...args], id: ++id }),
      });
      const r = (await res.body.json()) as any;
      if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
      return r.result;
    },
  };
}

/** Latency of `waiters` event.from loops seeing a rename made every `gapMs`. */
async function latency(url: string, session: string, waiters: number, changes: number, gapMs: number): Promise<number[]> {
  const pool = new Pool(url, { connections: waiters + 4, keepAliveTimeout: 60_000 });
  const api = client(pool, session);
  const vm = await api.call('VM.create', vmRecord('bench'));
  const { token } = await api.call('event.from', ['vm'], '', 0);
  const samples: number[] = [];
  let stop = false;
  const loops = Array.from({ length: waiters }, async () => {
    let t = token;
    while (!stop) {
      const b = await api.call('event.from', ['vm'], t, 2);
      const now = performance.timeOrigin + performance.now();
      t = b.token;
      for (const e of b.events) {
        const sent = Number(String(e.snapshot?.name_label ?? '').slice(1));
        if (e.ref === vm && sent > 0) samples.push(now - sent);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < changes; i++) {
    await api.call('VM.set_name_label', vm, `t${performance.timeOrigin + performance.now()}`);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  await new Promise((r) => setTimeout(r, 500));
  stop = true;
  await Promise.all(loops);
  await api.call('VM.destroy', vm);
  await pool.close();
  return samples;
}

/** Events delivered per second to `waiters` loops while 20 writers rename flat out for `seconds`. */
async function throughput(url: string, session: string, waiters: number, seconds: number): Promise<{ made: number; delivered: number }> {
  const pool = new Pool(url, { connections: waiters + 24, keepAliveTimeout: 60_000 });
  const api = client(pool, session);
  const vms: string[] = [];
  for (let i = 0; i < 20; i++) vms.push(await api.call('VM.create', vmRecord('bench')));
  const { token } = await api.call('event.from', ['vm'], '', 0);
  let delivered = 0;
  let made = 0;
  let stop = false;
  const loops = Array.from({ length: waiters }, async () => {
    let t = token;
    while (!stop) {
      const b = await api.call('event.from', ['vm'], t, 1);
      t = b.token;
      delivered += b.events.length;
    }
  });
  const end = Date.now() + seconds * 1000;
  await Promise.all(vms.map(async (vm) => {
    for (let n = 0; Date.now() < end; n++) {
      await api.call('VM.set_name_label', vm, `n${n}`);
      made++;
    }
  }));
  stop = true;
  await Promise.all(loops);
  for (const vm of vms) await api.call('VM.destroy', vm);
  await pool.close();
  return { made: made / seconds, delivered: delivered / seconds };
}

/** The same client's round trip to a bare route, with `conns` requests in flight. */
async function bareRoundTrip(bareUrl: string, conns: number, n: number): Promise<number[]> {
  const pool = new Pool(bareUrl, { connections: conns, keepAliveTimeout: 60_000 });
  // A prebuilt answer about the size of one event batch holding one VM.
  const body = JSON.stringify({ jsonrpc: '2.0', result: { events: [{ snapshot: 'x'.repeat(3000) }], token: '0' }, id: 1 });
  await (await pool.request({ path: '/_load/events?type=application%2Fjson', method: 'PUT', body })).body.text();
  const out: number[] = [];
  await Promise.all(Array.from({ length: conns }, async () => {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await pool.request({ path: '/r/events', method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      await res.body.text();
      out.push(performance.now() - t0);
    }
  }));
  await pool.close();
  return out;
}

export async function benchEvents(log: (s: string) => void, bareUrl: string): Promise<void> {
  const d = await startDaemon();
  try {
    const session = await login(d.url);
    log('');
    log('Events: change made → delivered to a waiting event.from (JSON-RPC, one keep-alive connection per waiter)');
    for (const waiters of [1, 200]) {
      const ms = await latency(d.url, session, waiters, waiters === 1 ? 200 : 100, waiters === 1 ? 10 : 50);
      const bare = await bareRoundTrip(bareUrl, waiters, waiters === 1 ? 200 : 10);
      const p99 = pct(ms, 99);
      log(`  ${String(waiters).padStart(3)} waiter(s): p50 ${pct(ms, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over ${ms.length} deliveries` +
        ` | bare route round trip with ${waiters} in flight: p50 ${pct(bare, 50).toFixed(2)} ms, p99 ${pct(bare, 99).toFixed(2)} ms` +
        (waiters === 200 ? ` | target p99 < 20 ms: ${p99 < 20 ? 'PASS' : 'MISS'}` : ''));
    }
    for (const waiters of [1, 200]) {
      const t = await throughput(d.url, session, waiters, 5);
      log(`  ${String(waiters).padStart(3)} waiter(s): ${Math.round(t.made)} changes/s made, ${Math.round(t.delivered)} events/s delivered (coalesced per object)`);
    }
  } finally {
    await d.cleanup();
  }
}
