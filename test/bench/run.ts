// `npm run bench`: end-to-end figures for xapid against a bare fastify route, measured
// in the same run with the same HTTP client and keep-alive. Starts its own daemon and
// its own bare server (each a child process on a free loopback port), stops both by
// PID, and removes its state directory. Not part of `npm test`.
//
//   BENCH_DURATION=5 BENCH_CONNECTIONS=10 BENCH_REPS=7 npm run bench
//
// BENCH_ONLY picks parts while you iterate (comma-separated; default: all of them):
//   get_record  VM.get_record throughput, XML-RPC and JSON-RPC
//   login       session.login_with_password throughput
//   all1k       VM.get_all_records with 1,000 VMs
//   all10k      VM.get_all_records with 10,000 VMs (and the daemon's start-up time with them)
//   events      event delivery (events.ts)
//   encoder     the XML-RPC encoder alone on 10,000 VMs
//   storage     storage operations (storage.ts)
//   vm          VM operations (vm.ts)
// e.g. `BENCH_ONLY=get_record,all10k npm run bench`, or after a build
// `BENCH_ONLY=… node dist/test/bench/run.js`.
// The XML-RPC request decoder alone (old against new): `node dist/test/bench/decode.js`.
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { jsonCall, login, MAIN, ROOT_PASSWORD, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { ObjectStore } from '../../src/db/store.js';
import { classes } from '../../src/datamodel/model.js';
import * as xml from '../../src/rpc/xmlrpc.js';
import { runStorageBench } from './storage.js';
import { benchVm } from './vm.js';
import { benchEvents } from './events.js';
import { cpuMs } from './proc.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const WARMUP = 1;
/** Each throughput figure is taken in this many alternating slices of xapid and bare. */
const ROUNDS = 4;
const REPS = Number(process.env.BENCH_REPS ?? 7);
const SMALL = 1_000;
const LARGE = 10_000;
const TARGET_RATIO = 0.5;
const TARGET_MS = 1000;
const PARTS = ['get_record', 'login', 'all1k', 'all10k', 'events', 'encoder', 'storage', 'vm'] as const;
const ONLY = new Set((process.env.BENCH_ONLY ?? PARTS.join(',')).split(',').map((p) => p.trim()).filter(Boolean));
for (const p of ONLY) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_ONLY: no part named ${p} (parts: ${PARTS.join(', ')})`);
const want = (p: typeof PARTS[number]) => ONLY.has(p);

const BARE = fileURLToPath(new URL('./bare.js', import.meta.url));
const require = createRequire(import.meta.url);
const Serializer = require('xmlrpc/lib/serializer') as { serializeMethodResponse(v: unknown): string };

// ---- helpers ---------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const fmtBytes = (n: number) => (n >= 1 << 20 ? `${fmt(n / (1 << 20), 1)} MiB` : n >= 1024 ? `${fmt(n / 1024, 1)} KiB` : `${n} B`);
const log = (s: string) => process.stdout.write(`${s}\n`);

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const xmlBody = (method: string, params: string[]) =>
  `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${
    params.map((p) => `<param><value><string>${escapeXml(p)}</string></value></param>`).join('')
  }</params></methodCall>`;
const jsonBody = (method: string, params: string[]) => JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 });

interface Req { url: string; body: string; type: string }
const xmlReq = (base: string, method: string, params: string[]): Req => ({ url: `${base}/`, body: xmlBody(method, params), type: 'text/xml' });
const jsonReq = (base: string, method: string, params: string[]): Req => ({ url: `${base}/jsonrpc`, body: jsonBody(method, params), type: 'application/json' });

/** One keep-alive connection, one request at a time: the client for single calls and timings. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function send(url: string, body: string | Buffer, type: string, method = 'POST'): Promise<{ status: number; body: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method, agent, headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function call(r: Req): Promise<Buffer> {
  const res = await send(r.url, r.body, r.type);
  const text = res.body.toString('utf8');
  const ok = r.type === 'text/xml' ? text.includes('<name>Status</name><value>Success</value>') : text.includes('"result":') && !text.includes('"error":{');
  if (res.status !== 200 || !ok) throw new Error(`${r.body.slice(0, 200)} failed: HTTP ${res.status} ${text.slice(0, 500)}`);
  return res.body;
}

// ---- child processes -------------------------------------------------------

const children = new Set<ChildProcess>();

/** The bare route for `id` answers `answer`; it is sent the same request body as the real call. */
interface Bare { url: string; proc: ChildProcess; load(id: string, answer: Buffer, real: Req): Promise<Req> }

async function startBare(): Promise<Bare> {
  const proc = spawn(process.execPath, [BARE], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string };
        if (j.msg === 'bare ready' && j.url) resolve(j.url);
      } catch { /* not ours */ }
    });
    proc.once('exit', (code) => reject(new Error(`the bare server exited with ${code}`)));
  });
  return {
    url, proc,
    async load(id, answer, real) {
      const r = await send(`${url}/_load/${id}?type=${encodeURIComponent(real.type)}`, answer, 'application/octet-stream', 'PUT');
      if (r.status !== 200 || Number(r.body.toString()) !== answer.length) throw new Error(`loading ${id} into the bare server failed`);
      return { url: `${url}/r/${id}`, body: real.body, type: real.type };
    },
  };
}

function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

let daemon: TestDaemon | undefined;
/** Options that keep the daemon to itself (no network namespace, no real Xen), where this build has them. */
function quietArgs(): string[] {
  const help = execFileSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
  const args: string[] = [];
  if (help.includes('--network-mode')) args.push('--network-mode', 'none');
  if (help.includes('--driver')) args.push('--driver', 'sim');
  return args;
}

async function bootDaemon(stateDir: string): Promise<TestDaemon> {
  const t0 = performance.now();
  const d = await startDaemon({ stateDir, args: quietArgs() });
  children.add(d.proc);
  d.proc.once('exit', () => children.delete(d.proc));
  log(`daemon pid ${d.proc.pid} at ${d.url}, ready in ${fmt(performance.now() - t0)} ms`);
  return d;
}

async function countVMs(url: string): Promise<number> {
  const r = await jsonCall(url, 'VM.get_all', [await login(url)]) as { result: string[] };
  return r.result.length;
}

// ---- the database ----------------------------------------------------------

/** Adds `count` VMs (each with its VM_metrics, as VM.create makes) straight into the state dir's database. */
function addVMs(stateDir: string, first: number, count: number): string[] {
  const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
  const refs: string[] = [];
  try {
    store.tx(() => {
      for (let i = first; i < first + count; i++) {
        const metrics = store.create('VM_metrics', { memory_actual: 2 << 30, VCPUs_number: 2, state: [], VCPUs_CPU: {}, VCPUs_params: {}, VCPUs_flags: {} });
        refs.push(store.create('VM', {
          name_label: `bench-vm-${String(i).padStart(5, '0')}`,
          name_description: 'A VM made by the xapid benchmark',
          power_state: 'Halted',
          user_version: 1,
          is_a_template: false,
          memory_target: 2 << 30,
          memory_static_max: 2 << 30, memory_dynamic_max: 2 << 30, memory_dynamic_min: 1 << 30, memory_static_min: 1 << 29,
          VCPUs_params: {},
          VCPUs_max: 2,
          VCPUs_at_startup: 2,
          actions_after_shutdown: 'destroy',
          actions_after_reboot: 'restart',
          actions_after_crash: 'restart',
          HVM_boot_policy: 'BIOS order',
          HVM_boot_params: { order: 'cdn' },
          platform: { acpi: '1', apic: 'true', pae: 'true', nx: 'true', viridian: 'false' },
          other_config: { 'install-methods': 'cdrom,nfs,http,ftp', base_template_name: 'Other install media', mac_seed: `6d0b1f4c-0000-4000-8000-${String(i).padStart(12, '0')}` },
          recommendations: '<restrictions><restriction field="memory-static-max" max="137438953472" /><restriction field="vcpus-max" max="32" /></restrictions>',
          metrics,
        }));
      }
    });
  } finally {
    store.close();
  }
  return refs;
}

// ---- measurements ----------------------------------------------------------

interface Side { req: Req; pid: number }
interface Measured { value: number; cpuMs: number }

/** calls/s of real and bare, alternating ROUNDS times so that a change in machine load hits both alike. */
async function rates(real: Side, bare: Side): Promise<[Measured, Measured]> {
  const opts = (r: Req) => ({ url: r.url, method: 'POST' as const, body: r.body, headers: { 'content-type': r.type }, connections: CONNECTIONS });
  for (const side of [real, bare]) await autocannon({ ...opts(side.req), duration: WARMUP });
  const acc = [real, bare].map(() => ({ n: 0, secs: 0, cpu: 0 }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, side] of [real, bare].entries()) {
      const c0 = cpuMs(side.pid);
      const res = await autocannon({ ...opts(side.req), duration: DURATION / ROUNDS });
      const c1 = cpuMs(side.pid);
      if (res.errors || res.non2xx || res.timeouts) throw new Error(`${side.req.url}: ${res.errors} errors, ${res.non2xx} non-2xx, ${res.timeouts} timeouts`);
      acc[i]!.n += res.requests.total;
      acc[i]!.secs += res.duration;
      acc[i]!.cpu += c1 - c0;
    }
  }
  const out = acc.map((a) => ({ value: a.n / a.secs, cpuMs: a.cpu / a.n }));
  return [out[0]!, out[1]!];
}

/** Median end-to-end time of one call (request written to last byte read), real and bare
 * alternating, after two warm-up calls of each; and each server's CPU time per call. */
async function times(real: Side, bare: Side, reps = REPS): Promise<[Measured, Measured]> {
  const ms: number[][] = [[], []];
  const cpu = [0, 0];
  for (let i = 0; i < reps + 2; i++) {
    for (const [k, side] of [real, bare].entries()) {
      const c0 = cpuMs(side.pid);
      const res = await send(side.req.url, side.req.body, side.req.type);
      if (res.status !== 200) throw new Error(`${side.req.url}: HTTP ${res.status}`);
      if (i < 2) continue;
      ms[k]!.push(res.ms);
      cpu[k]! += cpuMs(side.pid) - c0;
    }
  }
  return [{ value: median(ms[0]!), cpuMs: cpu[0]! / reps }, { value: median(ms[1]!), cpuMs: cpu[1]! / reps }];
}

interface Row {
  name: string; unit: 'calls/s' | 'ms'; size: number;
  xapid: Measured; bare: Measured; ratio: number; target?: string; pass?: boolean;
}
const rows: Row[] = [];

async function throughputRow(name: string, real: Req, bare: Bare, id: string, sample: Buffer, target: boolean): Promise<void> {
  const b = await bare.load(id, sample, real);
  const [x, y] = await rates({ req: real, pid: daemon!.proc.pid! }, { req: b, pid: bare.proc.pid! });
  const ratio = x.value / y.value;
  rows.push({
    name, unit: 'calls/s', size: sample.length, xapid: x, bare: y, ratio,
    target: target ? `≥ ${TARGET_RATIO} × bare` : undefined, pass: target ? ratio >= TARGET_RATIO : undefined,
  });
  log(`  ${name}: ${fmt(x.value)} calls/s (bare ${fmt(y.value)}), ratio ${ratio.toFixed(2)}; server CPU per call ${fmt(x.cpuMs * 1000)} µs (bare ${fmt(y.cpuMs * 1000)} µs)`);
}

async function timingRow(name: string, real: Req, bare: Bare, id: string, target: boolean, vms: number): Promise<void> {
  // The first call also encodes every record, which later calls find already encoded.
  const t0 = performance.now();
  const sample = await call(real);
  const first = performance.now() - t0;
  const text = sample.toString('utf8');
  const count = real.type === 'text/xml'
    ? text.split('<member><name>OpaqueRef:').length - 1
    : Object.keys((JSON.parse(text) as { result: object }).result).length;
  if (count !== vms) throw new Error(`${name}: expected ${vms} VMs in the answer, found ${count}`);
  const b = await bare.load(id, sample, real);
  const [x, y] = await times({ req: real, pid: daemon!.proc.pid! }, { req: b, pid: bare.proc.pid! });
  rows.push({
    name, unit: 'ms', size: sample.length, xapid: x, bare: y, ratio: y.value / x.value,
    target: target ? `< ${TARGET_MS} ms` : undefined, pass: target ? x.value < TARGET_MS : undefined,
  });
  log(`  ${name}: ${fmt(x.value, 1)} ms (bare ${fmt(y.value, 1)} ms), ${fmtBytes(sample.length)}; server CPU per call ${fmt(x.cpuMs)} ms (bare ${fmt(y.cpuMs)} ms); first call ${fmt(first, 1)} ms`);
}

function printTable(): void {
  const head = ['measurement', 'answer', 'xapid', 'bare fastify', 'speed vs bare', 'CPU/call xapid', 'bare', 'CPU ratio', 'target', 'result'];
  const cpu = (m: Measured, unit: Row['unit']) => (unit === 'ms' ? `${fmt(m.cpuMs)} ms` : `${fmt(m.cpuMs * 1000)} µs`);
  const body = rows.map((r) => [
    r.name,
    fmtBytes(r.size),
    r.unit === 'ms' ? `${fmt(r.xapid.value, 1)} ms` : `${fmt(r.xapid.value)} /s`,
    r.unit === 'ms' ? `${fmt(r.bare.value, 1)} ms` : `${fmt(r.bare.value)} /s`,
    r.ratio.toFixed(2),
    cpu(r.xapid, r.unit),
    cpu(r.bare, r.unit),
    (r.bare.cpuMs / r.xapid.cpuMs).toFixed(2),
    r.target ?? '—',
    r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'MISS',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  log(line(head));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) log(line(b));
  log('');
  log('speed vs bare: xapid calls/s ÷ bare calls/s for throughput rows, bare time ÷ xapid time for timed rows');
  log('(1.00 = as fast as a route that only sends the same bytes). CPU/call: time on a CPU the server');
  log("process's threads spent per call, from /proc (proc.ts); CPU ratio = bare ÷ xapid, the same comparison with the");
  log('load generator and the rest of the machine taken out. Targets are judged on the measured speed.');
}

/** The response encoder alone, in this process, on the 10,000-VM get_all_records value. */
function encoderBench(stateDir: string): void {
  const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
  try {
    const type = classes.get('VM')!.messages.get('get_all_records')!.result;
    const read: number[] = [];
    let value: Record<string, unknown> = {};
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      value = Object.fromEntries(store.allRecords('VM'));
      read.push(performance.now() - t0);
    }
    const runs = (reps: number, f: () => { length: number }, warm = true): { ms: number; size: number } => {
      const ms: number[] = [];
      let size = 0;
      if (warm) f();
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        size = f().length;
        ms.push(performance.now() - t0);
      }
      return { ms: median(ms), size };
    };
    // allRecords hands out copies, not the store's shared records: this is the encoder's
    // whole work, none of it found already done. The answer is measured, not copied.
    const ours = runs(REPS, () => ({ length: xml.typedSuccessBody(type, value).size() }));
    const theirs = runs(2, () => Serializer.serializeMethodResponse({ Status: 'Success', Value: value }), false);
    const json = runs(REPS, () => JSON.stringify({ jsonrpc: '2.0', result: value, id: 1 }));
    log(`  ${Object.keys(value).length} VMs; medians of ${REPS} runs (mean of 2 for the xmlrpc package), in this process:`);
    const line = (label: string, ms: number, size?: number) =>
      log(`  ${label.padEnd(58)}${fmt(ms, 1).padStart(9)} ms${size === undefined ? '' : `  ${fmtBytes(size)}`}`);
    line("store.allRecords('VM') (SQLite read + decode)", median(read));
    line('xapid typedSuccessBody (src/rpc/xmlrpc.ts)', ours.ms, ours.size);
    line('xmlrpc package Serializer.serializeMethodResponse', theirs.ms, theirs.size);
    line("JSON.stringify (the JSON-RPC encoder's work)", json.ms, json.size);
    log(`  => the hand-written encoder is ${(theirs.ms / ours.ms).toFixed(1)}× faster than the xmlrpc package's serializer`);
  } finally {
    store.close();
  }
}

// ---- the run ---------------------------------------------------------------

const stateDir = tempDir('xapid-bench-');

async function main(): Promise<void> {
  const started = performance.now();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  log(`xapid benchmark — node ${process.version}, ${os.cpus().length} × ${cpu}, ${os.platform()} ${os.release()}`);
  log(`autocannon: ${CONNECTIONS} connections, keep-alive, ${WARMUP} s warm-up + ${DURATION} s per figure (${ROUNDS} slices alternating with bare);`);
  log(`timings: one keep-alive connection, median of ${REPS} calls after 2 warm-up calls, alternating with bare`);
  log('daemon and bare fastify each run in their own process; the load generator runs in this one');
  log(`load average before the run: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

  let bare: Bare | undefined;
  try {
    // A first start makes the records every database has (dom0, default templates…).
    [daemon, bare] = await Promise.all([bootDaemon(stateDir), startBare()]);
    log(`bare fastify pid ${bare.proc.pid} at ${bare.url}`);
    const base = await countVMs(daemon.url);
    await stopChild(daemon.proc);
    let t0 = performance.now();
    const vmRefs = addVMs(stateDir, 1, SMALL - base);
    log(`database: ${SMALL - base} VMs written through ObjectStore in ${fmt(performance.now() - t0)} ms, beside the ${base} a first start makes`);
    daemon = await bootDaemon(stateDir);
    log('');

    let session = await login(daemon.url);
    const vm = vmRefs[0]!;
    if (want('get_record') || want('login')) log('throughput:');
    let r: Req;
    if (want('get_record')) {
      r = xmlReq(daemon.url, 'VM.get_record', [session, vm]);
      await throughputRow('VM.get_record XML-RPC', r, bare, 'rec.xml', await call(r), true);
      r = jsonReq(daemon.url, 'VM.get_record', [session, vm]);
      await throughputRow('VM.get_record JSON-RPC', r, bare, 'rec.json', await call(r), true);
    }
    if (want('login')) {
      r = xmlReq(daemon.url, 'session.login_with_password', ['root', ROOT_PASSWORD, '1.1', 'xapid-bench']);
      await throughputRow('session.login_with_password XML-RPC', r, bare, 'login.xml', await call(r), false);
    }

    // Logins above may have expired the oldest sessions (max sessions per user): take a fresh one.
    session = await login(daemon.url);
    if (want('all1k')) {
      log(`\nVM.get_all_records, ${fmt(SMALL)} VMs:`);
      await timingRow(`get_all_records ${fmt(SMALL)} VMs XML-RPC`, xmlReq(daemon.url, 'VM.get_all_records', [session]), bare, 'all1k.xml', false, SMALL);
      await timingRow(`get_all_records ${fmt(SMALL)} VMs JSON-RPC`, jsonReq(daemon.url, 'VM.get_all_records', [session]), bare, 'all1k.json', false, SMALL);
    }

    await stopChild(daemon.proc);
    if (want('all10k') || want('encoder')) {
      t0 = performance.now();
      addVMs(stateDir, SMALL, LARGE - SMALL);
      log(`\ndatabase: ${LARGE - SMALL} more VMs written in ${fmt(performance.now() - t0)} ms`);
    }
    if (want('all10k')) {
      agent.destroy();
      log('daemon restarted on them:');
      daemon = await bootDaemon(stateDir);
      session = await login(daemon.url);
      log(`VM.get_all_records, ${fmt(LARGE)} VMs:`);
      await timingRow(`get_all_records ${fmt(LARGE)} VMs XML-RPC`, xmlReq(daemon.url, 'VM.get_all_records', [session]), bare, 'all10k.xml', true, LARGE);
      await timingRow(`get_all_records ${fmt(LARGE)} VMs JSON-RPC`, jsonReq(daemon.url, 'VM.get_all_records', [session]), bare, 'all10k.json', true, LARGE);
      await stopChild(daemon.proc);
    }

    if (want('events')) await benchEvents(log, { url: bare.url, pid: bare.proc.pid! });
    await stopChild(bare.proc);
    if (want('encoder')) {
      log('\nXML-RPC response encoder, get_all_records of 10,000 VMs:');
      encoderBench(stateDir);
    }

    log(`\nresults (${fmt((performance.now() - started) / 1000, 1)} s in all; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}):\n`);
    printTable();
    if (want('storage')) await runStorageBench(log);
    log('');
    if (want('vm')) await benchVm(log);
  } finally {
    agent.destroy();
    await Promise.all([...children].map(stopChild));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGTERM');
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(130);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
