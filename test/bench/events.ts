// Event delivery figures for `npm run bench`: the time from the call that commits a change
// to a waiting event.from client holding the answer (p50, p99) with 1 and with 200
// waiters, and events delivered per second. The baseline, measured in the same run with
// the same waiting clients, alternating with xapid: the bare server holds the same
// requests and answers them all at once with a copy of a real answer when told to.
//
// The waiters run in worker threads (waiters.ts), apart from the thread that makes the
// changes; each stamps an answer when its last byte is read. The stamp of a change is
// taken just before the call that makes it is sent, and travels in the VM's name label.
// A change is made once every waiter has its next call out and a pause has passed for
// the server to take those calls in: the figure is the delivery to waiting clients, not
// how long a server busy with the previous round's calls takes to get to the change.
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { login, startDaemon } from '../helpers/daemon.js';
import { vmRecord } from '../helpers/api.js';
import { cpuMs } from './proc.js';
import { clock, type FromWorker, type ToWorker, type WaitResult, type WaitSpec } from './waiters.js';

/** Worker threads the waiters are spread over (one leaves the daemon a core of its own). */
const THREADS = Number(process.env.BENCH_EVENT_THREADS ?? 1);
/** Each latency figure is taken in this many slices, alternating xapid and bare. */
const SLICES = 4;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The waiting clients: `waiters` event.from loops spread over the worker threads. */
class Waiters {
  private readonly workers = Array.from({ length: THREADS }, () => {
    // Threads made from here on start with a young generation that takes a few rounds of
    // answers: growing it as they come stalls the waiters for up to 20 ms at a time here,
    // which the figures would then count as xapid's (or bare's) delivery time.
    v8.setFlagsFromString('--min-semi-space-size=16');
    return new Worker(new URL('./waiters.js', import.meta.url));
  });
  private readonly counters = new Int32Array(new SharedArrayBuffer(8));

  private ask(w: Worker, m: ToWorker): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.postMessage(m);
    }).finally(() => w.removeAllListeners('error')) as Promise<FromWorker>;
  }

  private busy: Worker[] = [];

  private count = 0;

  async start(spec: Omit<WaitSpec, 'waiters' | 'counters'>, waiters: number): Promise<void> {
    const n = Math.min(waiters, this.workers.length);
    this.busy = this.workers.slice(0, n);
    this.count = waiters;
    this.counters.fill(0);
    await Promise.all(this.busy.map((w, i) => this.ask(w, { start: { ...spec, counters: this.counters.buffer as SharedArrayBuffer, waiters: Math.floor(waiters / n) + (i < waiters % n ? 1 : 0) } })));
  }

  /** Resolves once every waiter has had the answer to each of the first `changes` stamped
   * changes and has its next call out (or after 5 s, should a waiter have failed). */
  async allWaiting(changes: number): Promise<void> {
    const ready = () => Atomics.load(this.counters, 0) >= this.count && Atomics.load(this.counters, 1) >= changes * this.count;
    for (let i = 0; i < 5000 && !ready(); i++) await sleep(1);
  }

  async stop(): Promise<WaitResult> {
    const out = await Promise.all(this.busy.map((w) => this.ask(w, { stop: true })));
    const rs = out.map((m) => ('result' in m ? m.result : { latencies: [], events: 0, errors: ['no result'] }));
    return { latencies: rs.flatMap((r) => r.latencies), events: rs.reduce((a, r) => a + r.events, 0), errors: rs.flatMap((r) => r.errors) };
  }

  close(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A server to deliver to: how the waiters reach it and how a stamped change is made. */
interface Target {
  spec: Omit<WaitSpec, 'token' | 'waiters' | 'counters'>;
  pid: number;
  token(): Promise<string>;
  /** Makes the change (or, for bare, releases the held answers) carrying this name label. */
  change(label: string): Promise<void>;
}

interface Slice { latencies: number[]; cpuMs: number; errors: string[] }

async function slice(waiters: Waiters, target: Target, count: number, changes: number, gapMs: number): Promise<Slice> {
  await waiters.start({ ...target.spec, token: await target.token() }, count);
  await sleep(500); // connections made and every first request parked
  const c0 = cpuMs(target.pid);
  for (let i = 0; i < changes; i++) {
    await waiters.allWaiting(i);
    await sleep(gapMs);
    await target.change(`t${clock()}`);
  }
  await waiters.allWaiting(changes);
  const cpu = cpuMs(target.pid) - c0;
  // Unstamped changes end the parked calls, until every loop has seen that it must stop.
  let stopped = false;
  const result = waiters.stop().finally(() => {
    stopped = true;
  });
  while (!stopped) {
    await target.change('x-stop');
    await sleep(20);
  }
  const r = await result;
  return { latencies: r.latencies, cpuMs: cpu, errors: r.errors };
}

function jsonClient(pool: Pool, session: string) {
  let id = 0;
  return async (method: string, ...args: unknown[]): Promise<any> => {
    const res = await pool.request({
      path: '/jsonrpc', method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method, params: [session, ...args], id: ++id }),
    });
    const r = (await res.body.json()) as any;
    if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  };
}

const MARK = 'xapid-bench-mark';

/** xapid, and the bare server loaded with a copy of xapid's answer to a waiting event.from. */
async function targets(url: string, session: string, pid: number, bare: { url: string; pid: number }): Promise<{ xapid: Target; bare: Target; close(): Promise<void> }> {
  const pool = new Pool(url, { connections: 2, keepAliveTimeout: 60_000 });
  const call = jsonClient(pool, session);
  const vm = await call('VM.create', vmRecord('bench')) as string;
  const token = async () => (await call('event.from', ['vm'], '', 0)).token as string;
  const spec = { session, ref: vm, timeoutSec: 2 };
  const xapid: Target = { spec: { ...spec, url, path: '/jsonrpc' }, pid, token, change: (label) => call('VM.set_name_label', vm, label) };

  // The answer a waiter gets for one rename, as xapid sent it.
  const before = await token();
  await call('VM.set_name_label', vm, MARK);
  const res = await pool.request({
    path: '/jsonrpc', method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'event.from', params: [session, ['vm'], before, 2], id: 1 }),
  });
  const answer = await res.body.text();
  if (!answer.includes(`"name_label":"${MARK}"`)) throw new Error(`unexpected event.from answer: ${answer.slice(0, 300)}`);
  const barePool = new Pool(bare.url, { connections: 2, keepAliveTimeout: 60_000 });
  const bareTarget: Target = {
    spec: { ...spec, url: bare.url, path: '/hold/events' }, pid: bare.pid, token,
    async change(label) {
      const r = await barePool.request({ path: '/release/events', method: 'POST', body: answer.replace(`"name_label":"${MARK}"`, `"name_label":"${label}"`) });
      await r.body.text();
    },
  };
  return {
    xapid, bare: bareTarget,
    async close() {
      await call('VM.destroy', vm);
      await Promise.all([pool.close(), barePool.close()]);
    },
  };
}

/** Events delivered per second to `count` waiters while 20 writers rename flat out for `seconds`. */
async function throughput(waiters: Waiters, url: string, session: string, count: number, seconds: number): Promise<{ made: number; delivered: number }> {
  const pool = new Pool(url, { connections: 24, keepAliveTimeout: 60_000 });
  const call = jsonClient(pool, session);
  const vms: string[] = [];
  for (let i = 0; i < 20; i++) vms.push(await call('VM.create', vmRecord('bench')));
  const token = (await call('event.from', ['vm'], '', 0)).token as string;
  await waiters.start({ url, path: '/jsonrpc', session, token, ref: '', timeoutSec: 1 }, count);
  await sleep(500);
  let made = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(vms.map(async (vm) => {
    for (let n = 0; Date.now() < end; n++) {
      await call('VM.set_name_label', vm, `n${n}`);
      made++;
    }
  }));
  const r = await waiters.stop();
  if (r.errors.length) throw new Error(`event.from failed: ${r.errors[0]}`);
  for (const vm of vms) await call('VM.destroy', vm);
  await pool.close();
  // The waiters' last calls end up to their timeout after the writers stop, with nothing new.
  return { made: made / seconds, delivered: r.events / seconds };
}

export async function benchEvents(log: (s: string) => void, bare: { url: string; pid: number }): Promise<void> {
  const d = await startDaemon();
  const waiters = new Waiters();
  try {
    const session = await login(d.url);
    const t = await targets(d.url, session, d.proc.pid!, bare);
    log('');
    log('Events: the call that commits a change → the answer read by a waiting event.from (JSON-RPC, one');
    log(`keep-alive connection per waiter, waiters in ${THREADS} worker thread(s); bare: its held route answers the`);
    log(`same requests all at once with a copy of xapid's answer; ${SLICES} slices alternating xapid and bare, after one`);
    log('uncounted slice of each)');
    for (const count of [1, 200]) {
      const changes = count === 1 ? 200 : 100;
      const gapMs = count === 1 ? 10 : 50;
      const got = { xapid: [] as Slice[], bare: [] as Slice[] };
      // A first, uncounted slice of each: connections, compiled code and heaps settle.
      for (const side of ['xapid', 'bare'] as const) await slice(waiters, t[side], count, 10, gapMs);
      for (let s = 0; s < SLICES; s++) {
        for (const side of ['xapid', 'bare'] as const) got[side].push(await slice(waiters, t[side], count, changes / SLICES, gapMs));
      }
      const sum = (ss: Slice[]) => {
        const latencies = ss.flatMap((x) => x.latencies);
        const errors = ss.flatMap((x) => x.errors);
        if (errors.length) throw new Error(`event.from failed: ${errors[0]}`);
        const cpuUs = (1000 * ss.reduce((a, x) => a + x.cpuMs, 0)) / latencies.length;
        return { latencies, p50: pct(latencies, 50), p99: pct(latencies, 99), cpuUs };
      };
      const x = sum(got.xapid);
      const b = sum(got.bare);
      log(`  ${String(count).padStart(3)} waiter(s): p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms over ${x.latencies.length} of ${changes * count} deliveries` +
        ` | bare held route: p50 ${b.p50.toFixed(2)} ms, p99 ${b.p99.toFixed(2)} ms` +
        ` | server CPU per delivery, the change calls included: ${x.cpuUs.toFixed(0)} µs (bare ${b.cpuUs.toFixed(0)} µs)` +
        (count === 200 ? ` | target p99 < 20 ms: ${x.p99 < 20 ? 'PASS' : 'MISS'}` : ''));
    }
    await t.close();
    for (const count of [1, 200]) {
      const r = await throughput(waiters, d.url, session, count, 5);
      log(`  ${String(count).padStart(3)} waiter(s): ${Math.round(r.made)} changes/s made, ${Math.round(r.delivered)} events/s delivered (coalesced per object)`);
    }
  } finally {
    await waiters.close();
    await d.cleanup();
  }
}
