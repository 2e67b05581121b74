// The toolstack's own cost of VM power operations: VM.start + VM.hard_shutdown on the
// simulator with every simulated delay at zero, so what is measured is xapid (RPC,
// checks, locking, database, events) and not a hypervisor. Also 100 VMs started at once.
// Starts its own daemon (stopped by PID) in a temp dir. Run alone with
//   npm run build && node dist/test/bench/vm.js
import http from 'node:http';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startDaemon, login, tempDir } from '../helpers/daemon.js';

const MiB = 1024 * 1024;
const TARGET_MS = 5;

export interface VmBenchResult {
  /** start + hard_shutdown pairs per second, one client, one call at a time. */
  pairsPerSec: number;
  startP50: number;
  startP99: number;
  shutdownP50: number;
  shutdownP99: number;
  /** A trivial call (VM.get_power_state) on the same connection: the RPC's own cost. */
  trivialP50: number;
  /** start's median minus the trivial call's median. */
  startOverheadMs: number;
  concurrent: { vms: number; wallMs: number; perStartMs: number; p99: number };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (n: number, d = 2) => n.toFixed(d);

export async function benchVm(log: (s: string) => void = (s) => process.stdout.write(`${s}\n`), opts: { pairs?: number; concurrent?: number } = {}): Promise<VmBenchResult> {
  const pairs = opts.pairs ?? Number(process.env.BENCH_VM_PAIRS ?? 1000);
  const concurrent = opts.concurrent ?? 100;
  const stateDir = tempDir('xapid-bench-vm-');
  const d = await startDaemon({ stateDir, args: ['--driver', 'sim', '--sim-delay-scale', '0', '--network-mode', 'none'] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrent });
  const u = new URL(d.url);
  let id = 0;
  const rpc = (method: string, params: unknown[]): Promise<{ ms: number; result: any }> => new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: '2.0', method, params, id: ++id });
    const t0 = performance.now();
    const req = http.request({ host: u.hostname, port: u.port, path: '/jsonrpc', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const j = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (j.error) reject(new Error(`${method}: ${JSON.stringify(j.error)}`));
        else resolve({ ms, result: j.result });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
  try {
    const s = await login(d.url);
    const record = (name: string) => ({
      name_label: name, name_description: '', user_version: 1, is_a_template: false, affinity: 'OpaqueRef:NULL',
      memory_static_max: 64 * MiB, memory_dynamic_max: 64 * MiB, memory_dynamic_min: 64 * MiB, memory_static_min: 64 * MiB,
      VCPUs_params: {}, VCPUs_max: 1, VCPUs_at_startup: 1, actions_after_shutdown: 'destroy', actions_after_reboot: 'restart',
      actions_after_crash: 'destroy', PV_bootloader: '', PV_kernel: '/boot/vmlinuz-bench', PV_ramdisk: '', PV_args: '',
      PV_bootloader_args: '', PV_legacy_args: '', HVM_boot_policy: '', HVM_boot_params: {}, platform: {}, PCI_bus: '', other_config: {}, recommendations: '',
    });
    const vm = (await rpc('VM.create', [s, record('bench')])).result as string;
    // warm-up
    for (let i = 0; i < 50; i++) {
      await rpc('VM.start', [s, vm, false, false]);
      await rpc('VM.hard_shutdown', [s, vm]);
      await rpc('VM.get_power_state', [s, vm]);
    }
    const trivial: number[] = [];
    for (let i = 0; i < 300; i++) trivial.push((await rpc('VM.get_power_state', [s, vm])).ms);
    const starts: number[] = [];
    const stops: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < pairs; i++) {
      starts.push((await rpc('VM.start', [s, vm, false, false])).ms);
      stops.push((await rpc('VM.hard_shutdown', [s, vm])).ms);
    }
    const elapsed = performance.now() - t0;
    const r: VmBenchResult = {
      pairsPerSec: (pairs * 1000) / elapsed,
      startP50: pct(starts, 50), startP99: pct(starts, 99), shutdownP50: pct(stops, 50), shutdownP99: pct(stops, 99),
      trivialP50: pct(trivial, 50), startOverheadMs: pct(starts, 50) - pct(trivial, 50),
      concurrent: { vms: concurrent, wallMs: 0, perStartMs: 0, p99: 0 },
    };

    const many: string[] = [];
    for (let i = 0; i < concurrent; i++) many.push((await rpc('VM.create', [s, record(`bench-${i}`)])).result);
    const c0 = performance.now();
    const lat = (await Promise.all(many.map((v) => rpc('VM.start', [s, v, false, false])))).map((x) => x.ms);
    const wall = performance.now() - c0;
    const running = await Promise.all(many.map((v) => rpc('VM.get_power_state', [s, v])));
    if (running.some((x) => x.result !== 'Running')) throw new Error('not every VM started');
    r.concurrent = { vms: concurrent, wallMs: wall, perStartMs: wall / concurrent, p99: pct(lat, 99) };
    await Promise.all(many.map((v) => rpc('VM.hard_shutdown', [s, v])));

    log(`VM power operations, simulator with zero delay (${pairs} start + hard_shutdown pairs, one client, keep-alive JSON-RPC):`);
    log(`  start + hard_shutdown: ${f(r.pairsPerSec, 0)} pairs/s (${f(r.pairsPerSec * 2, 0)} calls/s)`);
    log(`  VM.start          p50 ${f(r.startP50)} ms   p99 ${f(r.startP99)} ms`);
    log(`  VM.hard_shutdown  p50 ${f(r.shutdownP50)} ms   p99 ${f(r.shutdownP99)} ms`);
    log(`  VM.get_power_state (the RPC alone) p50 ${f(r.trivialP50)} ms`);
    log(`  toolstack overhead of a start (p50 start − p50 trivial call): ${f(r.startOverheadMs)} ms — target < ${TARGET_MS} ms: ${r.startOverheadMs < TARGET_MS ? 'met' : 'NOT met'}`);
    log(`  ${concurrent} VMs started concurrently: ${f(r.concurrent.wallMs, 0)} ms in all, ${f(r.concurrent.perStartMs)} ms per start, p99 latency ${f(r.concurrent.p99)} ms`);
    return r;
  } finally {
    agent.destroy();
    await d.stop();
    rmSync(stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  benchVm().catch((e: unknown) => {
    process.stderr.write(`VM bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
