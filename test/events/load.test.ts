// Many watchers, a busy writer: 200 event.from loops while a writer makes about 1,000
// changes a second for 10 s. Every watcher must see every object's changes in order
// (coalesced to the latest value, never going back), every add and every delete, and
// the daemon's memory must stay bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { login, startDaemon } from '../helpers/daemon.js';
import { XenApiFailure, vmRecord } from '../helpers/api.js';

const WATCHERS = 200;
const SECONDS = 10;
const RATE = 1000;
const OBJECTS = 50;
const DEBOUNCE_MS = 200;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function cpuSec(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

test('200 event.from watchers keep up with 1,000 changes a second', { timeout: 120_000 }, async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  // One kept-alive connection per watcher plus the writer's: the client must not be the bottleneck.
  const pool = new Pool(d.url, { connections: WATCHERS + OBJECTS + 10, keepAliveTimeout: 60_000 });
  t.after(() => pool.close());
  const session = await login(d.url);
  let id = 0;
  const api = {
    async call(method: string, ...args: unknown[]): Promise<any> {
      const res = await pool.request({
        path: '/jsonrpc', method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method, params: [session, ...args], id: ++id }),
      });
      const r = (await res.body.json()) as any;
      if (r.error) throw new XenApiFailure([r.error.message, ...(r.error.data ?? [])]);
      return r.result;
    },
  };
  const vms: string[] = [];
  for (let i = 0; i < OBJECTS; i++) vms.push(await api.call('VM.create', vmRecord('v0')));

  interface Seen { last: Map<string, number>; added: Set<string>; deleted: Set<string>; errors: string[]; regressions: number }
  const start = await api.call('event.from', ['vm'], '', 0);
  let stop = false;
  const watchers: Array<Promise<Seen>> = [];
  for (let w = 0; w < WATCHERS; w++) {
    watchers.push((async () => {
      const seen: Seen = { last: new Map(), added: new Set(), deleted: new Set(), errors: [], regressions: 0 };
      let token = start.token;
      for (;;) {
        // Like Xen Orchestra's connector, pause briefly between two event.from calls.
        await new Promise((r) => setTimeout(r, DEBOUNCE_MS));
        let batch;
        try {
          batch = await api.call('event.from', ['vm'], token, stop ? 0.5 : 5);
        } catch (e) {
          seen.errors.push(String(e));
          return seen;
        }
        token = batch.token;
        for (const e of batch.events) {
          if (e.operation === 'add') seen.added.add(e.ref);
          if (e.operation === 'del') {
            seen.deleted.add(e.ref);
            continue;
          }
          const n = Number(String(e.snapshot.name_label).slice(1));
          const prev = seen.last.get(e.ref) ?? -1;
          if (n < prev) seen.regressions++;
          seen.last.set(e.ref, n);
        }
        if (stop && batch.events.length === 0) return seen;
      }
    })());
  }

  // The writer: one update in flight per object (enough objects that a slow answer does not
  // hold the rate down), paced to RATE changes per second in all;
  // now and then a VM is created and destroyed.
  const rssBefore = rssMiB(d.proc.pid!);
  const cpu0 = { daemon: cpuSec(d.proc.pid!), client: process.cpuUsage() };
  const written = new Map<string, number>(vms.map((v) => [v, 0]));
  const churned: string[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  let changes = 0;
  const perObjectGap = (1000 * OBJECTS) / RATE;
  const churn = (async () => {
    while (Date.now() < deadline) {
      const extra = await api.call('VM.create', vmRecord('v0'));
      await api.call('VM.destroy', extra);
      churned.push(extra);
      changes += 2;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  await Promise.all(vms.map(async (vm) => {
    let next = Date.now();
    for (let n = 1; Date.now() < deadline; n++) {
      await api.call('VM.set_name_label', vm, `v${n}`);
      written.set(vm, n);
      changes++;
      next += perObjectGap;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }));
  await churn;
  stop = true;
  const results = await Promise.all(watchers);
  const rssAfter = rssMiB(d.proc.pid!);
  const clientCpu = process.cpuUsage(cpu0.client);
  t.diagnostic(`writer made ${changes} changes in ${SECONDS} s; daemon RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB; CPU s daemon ${(cpuSec(d.proc.pid!) - cpu0.daemon).toFixed(1)}, client ${((clientCpu.user + clientCpu.system) / 1e6).toFixed(1)}`);

  for (const [w, seen] of results.entries()) {
    assert.deepEqual(seen.errors, [], `watcher ${w} had errors`);
    assert.equal(seen.regressions, 0, `watcher ${w} saw a value go back`);
    for (const vm of vms) assert.equal(seen.last.get(vm), written.get(vm), `watcher ${w} missed the last change of ${vm}`);
    for (const c of churned) {
      assert.ok(seen.added.has(c), `watcher ${w} missed the add of ${c}`);
      assert.ok(seen.deleted.has(c), `watcher ${w} missed the delete of ${c}`);
    }
  }
  assert.ok(churned.length > 0);
  assert.ok(rssAfter < 1024, `daemon memory grew to ${rssAfter} MiB`);
});
