// The simulator: a hypervisor inside the daemon's process. Domains have domids, states
// and memory, take realistic time to build, boot, stop and save (scaled by
// delayScale; 0 removes every delay), and run a simulated guest: a kernel that answers
// xenstore control/shutdown requests and sysrq keys, and a guest agent that writes its
// OS, PV driver and network facts into xenstore data/ and attr/ once booted.
//
// The domain table survives the daemon (a hypervisor outlives its toolstack): it is
// kept in `stateFile` and read back at open. Fault injection for tests comes in
// DomainConfig.sim (see drivers/README.md).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import {
  DriverError, type ConsoleStream, type DiskSpec, type DomainConfig, type DomainEvent, type DomainInfo,
  type Driver, type HostFacts, type NicSpec, type ShutdownReason, type SimulatorHints,
} from '../driver.js';
import { DomainFeed } from '../feed.js';
import { SimXenstore } from './xenstore.js';

export interface SimulatorOptions {
  /** Where the domain table is kept between daemon runs; none: in memory only. */
  stateFile?: string;
  /** Multiplies every simulated delay: 1 is realistic, 0 removes them all. */
  delayScale: number;
  totalMemoryBytes?: number;
  dom0MemoryBytes?: number;
  cpus?: number;
  /** Told of trouble the simulator can carry on after (its state file not written). */
  onError?: (msg: string) => void;
}

/** Realistic durations in milliseconds (before scaling). */
export const SIM_TIMINGS = {
  build: 300,
  bootloader: 250,
  /** From unpause to the guest agent's first report. */
  boot: 2000,
  destroy: 80,
  pause: 10,
  shutdownAck: 50,
  shutdownRun: 700,
  savePer64MiB: 20,
  save: 400,
  restore: 400,
  hotplug: 60,
  control: 10,
  dumpCore: 200,
};

const MiB = 1024 * 1024;
const IMAGE_MAGIC = 'xapid-simulator-suspend-image-v1';

interface SimDomain {
  domid: number;
  uuid: string;
  name: string;
  hvm: boolean;
  state: DomainInfo['state'];
  reason?: ShutdownReason;
  memoryBytes: number;
  maxMemoryBytes: number;
  vcpus: number;
  maxVcpus: number;
  cpuTimeSec: number;
  /** When it last started running (ms since epoch), while running. */
  runningSince?: number;
  /** Milliseconds of running time the guest still needs to finish booting (agent up at 0). */
  bootLeftMs: number;
  agentUp: boolean;
  disks: DiskSpec[];
  nics: NicSpec[];
  hints: SimulatorHints;
  console: string[];
}

function machineMemory(): number {
  try {
    const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return os.totalmem();
}

/** The guest's IPv4 address: 10.x.y.z from the last three bytes of its MAC. */
export function simulatedIp(mac: string): string {
  const b = mac.split(':').slice(-3).map((h) => Number.parseInt(h, 16) || 0);
  return `10.${b[0]}.${b[1]}.${Math.max(1, Math.min(254, b[2] ?? 1))}`;
}

export class SimulatorDriver implements Driver {
  readonly name = 'sim' as const;
  private readonly domains = new Map<number, SimDomain>();
  private readonly xs = new SimXenstore();
  private readonly feed = new DomainFeed();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly agentTimers = new Map<number, NodeJS.Timeout>();
  private nextDomid = 1;
  private persistQueued = false;
  private writing?: Promise<void>;
  private closed = false;
  readonly totalMemoryBytes: number;
  readonly dom0MemoryBytes: number;
  readonly cpus: number;

  constructor(private readonly opts: SimulatorOptions) {
    this.totalMemoryBytes = opts.totalMemoryBytes ?? machineMemory();
    this.dom0MemoryBytes = opts.dom0MemoryBytes ?? Math.min(2048 * MiB, Math.floor(this.totalMemoryBytes / 8));
    this.cpus = opts.cpus ?? Math.max(1, os.cpus().length);
  }

  // ---- lifecycle -------------------------------------------------------------

  async open(): Promise<void> {
    const f = this.opts.stateFile;
    if (f && existsSync(f)) {
      const saved = JSON.parse(readFileSync(f, 'utf8')) as { nextDomid: number; domains: SimDomain[]; xenstore: Array<[string, string]> };
      this.nextDomid = saved.nextDomid;
      this.xs.load(saved.xenstore);
      for (const d of saved.domains) {
        d.console ??= [];
        // Running time does not accrue while no simulator runs; resume counting now.
        if (d.state === 'running') d.runningSince = Date.now();
        this.domains.set(d.domid, d);
        if (d.state === 'running' && !d.agentUp) this.scheduleAgent(d);
      }
    }
    this.xs.write('/local/domain/0/name', 'Domain-0');
    this.xs.write('/local/domain/0/domid', '0');
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
    for (const t of this.timers) clearTimeout(t);
    for (const t of this.agentTimers.values()) clearTimeout(t);
    this.timers.clear();
    this.agentTimers.clear();
    this.persistNow();
  }

  /** Writes the table off the event loop, one write at a time, again if it changed meanwhile. */
  private persist(): void {
    if (!this.opts.stateFile || this.closed) return;
    if (this.writing) {
      this.persistQueued = true;
      return;
    }
    this.writing = (async () => {
      do {
        this.persistQueued = false;
        try {
          const f = this.opts.stateFile!;
          await writeFile(`${f}.tmp`, this.snapshot());
          await rename(`${f}.tmp`, f);
        } catch (e) {
          // The table is written again at the next change and at close.
          this.opts.onError?.(`the simulator could not save its domain table: ${(e as Error).message}`);
        }
      } while (this.persistQueued && !this.closed);
      this.writing = undefined;
    })();
  }

  private snapshot(): string {
    const domains = [...this.domains.values()].map((d) => ({ ...d, cpuTimeSec: this.cpuTime(d), runningSince: undefined }));
    return JSON.stringify({ nextDomid: this.nextDomid, domains, xenstore: this.xs.entries() });
  }

  private persistNow(): void {
    const f = this.opts.stateFile;
    if (!f) return;
    writeFileSync(`${f}.tmp`, this.snapshot());
    renameSync(`${f}.tmp`, f);
  }

  // ---- time ------------------------------------------------------------------

  private ms(base: number): number {
    return Math.max(0, base * this.opts.delayScale);
  }

  /** Waits a scaled delay; with no delay it only yields to other work. */
  private wait(base: number): Promise<void> {
    return this.waitExactly(this.ms(base));
  }

  private waitExactly(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private later(base: number, fn: () => void): void {
    const ms = this.ms(base);
    if (ms <= 0) {
      queueMicrotask(() => !this.closed && fn());
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- the change feed ---------------------------------------------------------

  subscribe(listener: (e: DomainEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  private changed(d: SimDomain): void {
    this.persist();
    if (this.domains.get(d.domid) === d) this.feed.emit({ kind: 'changed', info: this.infoOf(d) });
  }

  // ---- reads -------------------------------------------------------------------

  private cpuTime(d: SimDomain): number {
    const extra = d.state === 'running' && d.runningSince ? ((Date.now() - d.runningSince) / 1000) * Math.min(d.vcpus, 1) * 0.02 : 0;
    return d.cpuTimeSec + extra;
  }

  private infoOf(d: SimDomain): DomainInfo {
    const vcpuCpu: Record<number, number> = {};
    for (let i = 0; i < d.vcpus; i++) vcpuCpu[i] = (d.domid + i) % this.cpus;
    return {
      domid: d.domid, uuid: d.uuid, name: d.name, state: d.state, shutdownReason: d.reason,
      memoryBytes: d.memoryBytes, maxMemoryBytes: d.maxMemoryBytes, vcpus: d.vcpus, maxVcpus: d.maxVcpus,
      vcpuCpu, cpuTimeSec: Math.round(this.cpuTime(d) * 1000) / 1000, hvm: d.hvm,
    };
  }

  private used(): number {
    let n = this.dom0MemoryBytes;
    for (const d of this.domains.values()) n += d.memoryBytes;
    return n;
  }

  async host(): Promise<HostFacts> {
    return { totalMemoryBytes: this.totalMemoryBytes, freeMemoryBytes: Math.max(0, this.totalMemoryBytes - this.used()), cpus: this.cpus, xenVersion: '' };
  }

  async list(): Promise<DomainInfo[]> {
    return [...this.domains.values()].map((d) => this.infoOf(d));
  }

  async info(domid: number): Promise<DomainInfo | undefined> {
    const d = this.domains.get(domid);
    return d ? this.infoOf(d) : undefined;
  }

  private get(domid: number, command: string): SimDomain {
    const d = this.domains.get(domid);
    if (!d) throw new DriverError('no-such-domain', `domain ${domid} does not exist`, { command });
    return d;
  }

  // ---- building and destroying -------------------------------------------------------

  private checkConfig(cfg: DomainConfig, command: string): void {
    if (cfg.sim?.refuseStart) throw new DriverError('build', cfg.sim.refuseStart, { command });
    for (const d of this.domains.values()) {
      if (d.uuid === cfg.uuid) throw new DriverError('exists', `a domain for ${cfg.uuid} already exists (domid ${d.domid})`, { command, domid: d.domid });
      if (d.name === cfg.name) throw new DriverError('exists', `domain name ${cfg.name} is in use (domid ${d.domid})`, { command, domid: d.domid });
    }
    if (cfg.vcpus.atStartup < 1 || cfg.vcpus.atStartup > cfg.vcpus.max) throw new DriverError('invalid', `bad VCPU count ${cfg.vcpus.atStartup}/${cfg.vcpus.max}`, { command });
    const needed = cfg.memory.targetBytes + cfg.memory.shadowMiB * MiB;
    const available = Math.max(0, this.totalMemoryBytes - this.used());
    if (needed > available) throw new DriverError('no-memory', `not enough free memory: ${needed} bytes needed, ${available} available`, { command, needed, available });
  }

  private newDomain(cfg: DomainConfig): SimDomain {
    const d: SimDomain = {
      domid: this.nextDomid++, uuid: cfg.uuid, name: cfg.name, hvm: cfg.hvm, state: 'paused',
      memoryBytes: cfg.memory.targetBytes + cfg.memory.shadowMiB * MiB, maxMemoryBytes: cfg.memory.maxBytes,
      vcpus: cfg.vcpus.atStartup, maxVcpus: cfg.vcpus.max, cpuTimeSec: 0, bootLeftMs: SIM_TIMINGS.boot, agentUp: false,
      disks: cfg.disks.map((x) => ({ ...x })), nics: cfg.nics.map((x) => ({ ...x })), hints: { ...cfg.sim }, console: [],
    };
    this.domains.set(d.domid, d);
    const base = `/local/domain/${d.domid}`;
    this.xs.write(`${base}/name`, d.name);
    this.xs.write(`${base}/domid`, String(d.domid));
    this.xs.write(`${base}/vm`, `/vm/${d.uuid}`);
    this.xs.write(`${base}/memory/static-max`, String(Math.floor(d.maxMemoryBytes / 1024)));
    this.xs.write(`${base}/memory/target`, String(Math.floor(cfg.memory.targetBytes / 1024)));
    for (let i = 0; i < d.maxVcpus; i++) this.xs.write(`${base}/cpu/${i}/availability`, i < d.vcpus ? 'online' : 'offline');
    this.xs.write(`${base}/control/shutdown`, '');
    for (const disk of d.disks) this.writeDisk(d, disk);
    for (const nic of d.nics) this.writeNic(d, nic);
    this.xs.write(`/vm/${d.uuid}/name`, d.name);
    this.xs.write(`/vm/${d.uuid}/uuid`, d.uuid);
    this.watchControl(d);
    return d;
  }

  private writeDisk(d: SimDomain, disk: DiskSpec): void {
    const p = `/local/domain/${d.domid}/device/vbd/${disk.vdev}`;
    this.xs.write(`${p}/state`, '4');
    this.xs.write(`${p}/params`, disk.path);
    this.xs.write(`${p}/mode`, disk.readonly ? 'r' : 'w');
    this.xs.write(`${p}/device-type`, disk.cdrom ? 'cdrom' : 'disk');
  }

  private writeNic(d: SimDomain, nic: NicSpec): void {
    const p = `/local/domain/${d.domid}/device/vif/${nic.devid}`;
    this.xs.write(`${p}/state`, '4');
    this.xs.write(`${p}/mac`, nic.mac);
    this.xs.write(`${p}/bridge`, nic.bridge);
  }

  /** The guest kernel's side of control/shutdown. */
  private watchControl(d: SimDomain): void {
    const key = `/local/domain/${d.domid}/control/shutdown`;
    const stop = this.xs.watch(key, () => {
      if (this.domains.get(d.domid) !== d) {
        stop();
        return;
      }
      const v = this.xs.read(key);
      if (!v || d.state !== 'running') return;
      if (d.hvm && (d.hints.noAgent ?? false)) return; // no PV drivers: nobody reads the key
      if (d.hints.shutdown === 'ignore') return;
      this.later(SIM_TIMINGS.shutdownAck, () => {
        if (this.domains.get(d.domid) !== d || this.xs.read(key) !== v) return;
        this.xs.write(key, '');
        this.log(d, `Received ${v} request from the toolstack`);
        if (d.hints.shutdown === 'hang') return;
        if (v === 'suspend') return; // save() drives a suspend itself
        const reason: ShutdownReason = v === 'reboot' ? 'reboot' : 'poweroff';
        this.later(SIM_TIMINGS.shutdownRun, () => this.stopDomain(d, reason));
      });
    });
  }

  private stopDomain(d: SimDomain, reason: ShutdownReason): void {
    if (this.domains.get(d.domid) !== d || (d.state !== 'running' && d.state !== 'paused')) return;
    d.cpuTimeSec = this.cpuTime(d);
    d.runningSince = undefined;
    d.state = reason === 'crash' ? 'crashed' : 'shutdown';
    d.reason = reason;
    this.cancelAgent(d);
    this.log(d, reason === 'crash' ? 'Kernel panic - not syncing: sysrq triggered crash' : reason === 'reboot' ? 'reboot: Restarting system' : 'reboot: Power down');
    this.changed(d);
  }

  private run(d: SimDomain): void {
    d.state = 'running';
    d.runningSince = Date.now();
    if (!d.agentUp) this.scheduleAgent(d);
  }

  private scheduleAgent(d: SimDomain): void {
    this.cancelAgent(d);
    if (d.hints.noAgent) return;
    const ms = this.ms(d.bootLeftMs);
    const started = Date.now();
    const fire = () => {
      this.agentTimers.delete(d.domid);
      if (this.domains.get(d.domid) !== d || d.state !== 'running' || this.closed) return;
      d.bootLeftMs = 0;
      this.agentReport(d);
    };
    if (ms <= 0) {
      queueMicrotask(fire);
      return;
    }
    const t = setTimeout(() => fire(), ms);
    this.agentTimers.set(d.domid, t);
    (t as NodeJS.Timeout & { started?: number }).started = started;
  }

  /** Pausing stops the boot clock: remember how much boot time is left. */
  private cancelAgent(d: SimDomain): void {
    const t = this.agentTimers.get(d.domid) as (NodeJS.Timeout & { started?: number }) | undefined;
    if (!t) return;
    clearTimeout(t);
    this.agentTimers.delete(d.domid);
    if (t.started !== undefined && this.opts.delayScale > 0) {
      d.bootLeftMs = Math.max(0, d.bootLeftMs - (Date.now() - t.started) / this.opts.delayScale);
    }
  }

  /** The guest agent writes what xapid reads into VM_guest_metrics. */
  private agentReport(d: SimDomain): void {
    const base = `/local/domain/${d.domid}`;
    d.agentUp = true;
    this.log(d, 'xapid-sim login:');
    const w = (k: string, v: string) => this.xs.write(`${base}/${k}`, v);
    if (d.hvm) {
      w('data/os_name', 'Simulated HVM guest');
      w('data/os_uname', '10.0-sim');
      w('data/os_distro', 'windows');
      w('data/os_majorver', '10');
      w('data/os_minorver', '0');
    } else {
      w('data/os_name', 'Debian GNU/Linux 12 (bookworm)');
      w('data/os_uname', '6.1.0-sim-amd64');
      w('data/os_distro', 'debian');
      w('data/os_majorver', '12');
      w('data/os_minorver', '0');
    }
    w('attr/PVAddons/MajorVersion', '7');
    w('attr/PVAddons/MinorVersion', '0');
    w('attr/PVAddons/MicroVersion', '0');
    w('attr/PVAddons/BuildVersion', '1');
    for (const nic of d.nics) w(`attr/eth${nic.devid}/ip`, simulatedIp(nic.mac));
    w('data/meminfo_total', String(Math.floor(d.memoryBytes / 1024)));
    w('data/meminfo_free', String(Math.floor((d.memoryBytes * 0.6) / 1024)));
    w('data/updated', '1');
    this.persist();
    this.feed.emit({ kind: 'guest', domid: d.domid, uuid: d.uuid });
  }

  private log(d: SimDomain, line: string): void {
    d.console.push(line);
    if (d.console.length > 200) d.console.splice(0, d.console.length - 200);
    for (const l of this.consoleListeners.get(d.domid) ?? []) l(`${line}\r\n`);
  }

  async create(cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const command = `create ${cfg.name}`;
    this.checkConfig(cfg, command);
    if (cfg.pv?.bootloader === 'pygrub' && !cfg.disks.some((x) => x.bootable && !x.cdrom && x.format !== 'empty')) {
      await this.wait(SIM_TIMINGS.bootloader);
      throw new DriverError('bootloader', 'pygrub: no bootable disk was given to the bootloader', { command });
    }
    const d = this.newDomain(cfg);
    this.changed(d);
    // A test's build time (sim_build_ms) is taken as it is, not scaled.
    if (cfg.sim?.buildMs !== undefined) await this.waitExactly(cfg.sim.buildMs);
    else await this.wait(SIM_TIMINGS.build + (cfg.pv?.bootloader ? SIM_TIMINGS.bootloader : 0));
    if (this.domains.get(d.domid) !== d) throw new DriverError('failed', `domain ${d.domid} was destroyed while it was being built`, { command });
    this.log(d, `Xen ${cfg.hvm ? 'HVM' : 'PV'} domain ${d.domid} built: ${Math.round(d.memoryBytes / MiB)} MiB, ${d.vcpus} VCPU(s)`);
    if (!opts.paused) this.run(d);
    this.changed(d);
    return this.infoOf(d);
  }

  async destroy(domid: number): Promise<void> {
    const d = this.get(domid, 'destroy');
    d.state = 'dying';
    this.cancelAgent(d);
    await this.wait(SIM_TIMINGS.destroy);
    this.remove(d);
  }

  private remove(d: SimDomain): void {
    if (this.domains.get(d.domid) !== d) return;
    this.cancelAgent(d);
    this.domains.delete(d.domid);
    this.xs.remove(`/local/domain/${d.domid}`);
    this.xs.remove(`/vm/${d.uuid}`);
    this.consoleListeners.delete(d.domid);
    this.persist();
    this.feed.emit({ kind: 'gone', domid: d.domid, uuid: d.uuid });
  }

  async requestShutdown(domid: number, reason: 'poweroff' | 'reboot', ackTimeoutMs: number): Promise<void> {
    const command = `shutdown ${domid} ${reason}`;
    const d = this.get(domid, command);
    if (d.hvm && d.hints.noAgent) throw new DriverError('no-pv-drivers', 'PV control interface not available', { command });
    if (d.state !== 'running' && d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    await this.sendControl(d, reason, ackTimeoutMs, command);
  }

  private sendControl(d: SimDomain, value: string, ackTimeoutMs: number, command: string): Promise<void> {
    const key = `/local/domain/${d.domid}/control/shutdown`;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        stop();
        clearTimeout(timer);
        this.timers.delete(timer);
        if (err) reject(err);
        else resolve();
      };
      const stop = this.xs.watch(key, () => {
        if (this.domains.get(d.domid) !== d) finish(new DriverError('no-such-domain', `domain ${d.domid} disappeared`, { command }));
        else if (this.xs.read(key) === '') finish();
      });
      const timer = setTimeout(() => {
        this.xs.write(key, '');
        finish(new DriverError('ack-timeout', `the guest did not acknowledge the ${value} request within ${ackTimeoutMs / 1000}s`, { command, timeoutSec: ackTimeoutMs / 1000 }));
      }, ackTimeoutMs);
      this.timers.add(timer);
      this.xs.write(key, value);
    });
  }

  async pause(domid: number): Promise<void> {
    const d = this.get(domid, 'pause');
    await this.wait(SIM_TIMINGS.pause);
    if (d.state !== 'running') throw new DriverError('invalid', `domain ${domid} is ${d.state}, not running`, { command: `pause ${domid}` });
    d.cpuTimeSec = this.cpuTime(d);
    d.runningSince = undefined;
    d.state = 'paused';
    this.cancelAgent(d);
    this.changed(d);
  }

  async unpause(domid: number): Promise<void> {
    const d = this.get(domid, 'unpause');
    await this.wait(SIM_TIMINGS.pause);
    if (d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}, not paused`, { command: `unpause ${domid}` });
    this.run(d);
    this.changed(d);
  }

  async save(domid: number, path: string, timeoutMs: number): Promise<void> {
    const command = `save ${domid} ${path}`;
    const d = this.get(domid, command);
    if (d.state !== 'running' && d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    // A PV guest suspends itself when asked; an HVM guest is suspended by its device model.
    if (!d.hvm && d.state === 'running') await this.sendControl(d, 'suspend', Math.min(timeoutMs, 60_000), command);
    await this.wait(SIM_TIMINGS.save + (d.memoryBytes / (64 * MiB)) * SIM_TIMINGS.savePer64MiB);
    if (this.domains.get(d.domid) !== d) throw new DriverError('no-such-domain', `domain ${domid} disappeared during save`, { command });
    const guest = this.xs.list(`/local/domain/${d.domid}`);
    const kept = Object.fromEntries(Object.entries(guest).filter(([k]) => k.startsWith('data/') || k.startsWith('attr/')));
    const image = {
      magic: IMAGE_MAGIC, uuid: d.uuid, hvm: d.hvm, memoryBytes: d.memoryBytes, maxMemoryBytes: d.maxMemoryBytes,
      vcpus: d.vcpus, maxVcpus: d.maxVcpus, cpuTimeSec: this.cpuTime(d), bootLeftMs: d.bootLeftMs, agentUp: d.agentUp,
      console: d.console.slice(-50), guest: kept, savedAt: new Date().toISOString(),
    };
    writeFileSync(path, `${JSON.stringify(image)}\n`);
    d.state = 'shutdown';
    d.reason = 'suspend';
    this.changed(d);
    this.remove(d);
  }

  async restore(path: string, cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const command = `restore ${path}`;
    let image: Record<string, any>;
    try {
      image = JSON.parse(readFileSync(path, 'utf8').split(/[\n\0]/)[0]!);
    } catch (e) {
      throw new DriverError('failed', `cannot read the suspend image: ${(e as Error).message}`, { command });
    }
    if (image.magic !== IMAGE_MAGIC) throw new DriverError('failed', 'not a suspend image of this simulator', { command });
    if (image.uuid !== cfg.uuid) throw new DriverError('invalid', `the image belongs to ${image.uuid}, not ${cfg.uuid}`, { command });
    this.checkConfig({ ...cfg, memory: { ...cfg.memory, targetBytes: image.memoryBytes, shadowMiB: 0 } }, command);
    const d = this.newDomain(cfg);
    Object.assign(d, {
      memoryBytes: image.memoryBytes, maxMemoryBytes: image.maxMemoryBytes, vcpus: image.vcpus, maxVcpus: image.maxVcpus,
      cpuTimeSec: image.cpuTimeSec, bootLeftMs: image.bootLeftMs, agentUp: image.agentUp, console: image.console ?? [],
    });
    for (const [k, v] of Object.entries(image.guest as Record<string, string>)) this.xs.write(`/local/domain/${d.domid}/${k}`, v);
    this.changed(d);
    await this.wait(SIM_TIMINGS.restore + (d.memoryBytes / (64 * MiB)) * SIM_TIMINGS.savePer64MiB);
    if (this.domains.get(d.domid) !== d) throw new DriverError('failed', `domain ${d.domid} was destroyed while it was being restored`, { command });
    this.log(d, 'Resumed from a suspend image');
    if (!opts.paused) this.run(d);
    this.changed(d);
    if (d.agentUp) this.feed.emit({ kind: 'guest', domid: d.domid, uuid: d.uuid });
    return this.infoOf(d);
  }

  async dumpCore(domid: number, path: string): Promise<void> {
    const d = this.get(domid, `dump-core ${domid}`);
    await this.wait(SIM_TIMINGS.dumpCore);
    writeFileSync(path, `simulated core of domain ${d.domid} (${d.uuid})\nstate: ${d.state}\nmemory: ${d.memoryBytes}\nconsole:\n${d.console.join('\n')}\n`);
  }

  // ---- live changes --------------------------------------------------------------

  async setVcpus(domid: number, n: number): Promise<void> {
    const d = this.get(domid, `vcpu-set ${domid} ${n}`);
    if (n < 1 || n > d.maxVcpus) throw new DriverError('invalid', `cannot set ${n} VCPUs: the domain has at most ${d.maxVcpus}`, { command: `vcpu-set ${domid} ${n}` });
    await this.wait(SIM_TIMINGS.control);
    d.vcpus = n;
    for (let i = 0; i < d.maxVcpus; i++) this.xs.write(`/local/domain/${domid}/cpu/${i}/availability`, i < n ? 'online' : 'offline');
    this.changed(d);
  }

  async setMemoryTarget(domid: number, bytes: number): Promise<void> {
    const command = `mem-set ${domid} ${bytes}`;
    const d = this.get(domid, command);
    if (bytes > d.maxMemoryBytes) throw new DriverError('invalid', `target ${bytes} is above the domain's maximum ${d.maxMemoryBytes}`, { command });
    const grow = bytes - d.memoryBytes;
    const free = this.totalMemoryBytes - this.used();
    if (grow > free) throw new DriverError('no-memory', `not enough free memory to grow by ${grow} bytes`, { command, needed: grow, available: free });
    await this.wait(SIM_TIMINGS.control);
    this.xs.write(`/local/domain/${domid}/memory/target`, String(Math.floor(bytes / 1024)));
    d.memoryBytes = bytes;
    this.changed(d);
  }

  async setShadowMemory(domid: number, mib: number): Promise<void> {
    const d = this.get(domid, `shadow ${domid}`);
    if (!d.hvm) throw new DriverError('unsupported', 'shadow memory applies to HVM domains only', { command: `shadow ${domid}` });
    await this.wait(SIM_TIMINGS.control);
    this.xs.write(`/local/domain/${domid}/memory/shadow`, String(mib));
  }

  async setVcpuParams(domid: number, p: { weight?: number; cap?: number; mask?: string }): Promise<void> {
    const d = this.get(domid, `sched ${domid}`);
    await this.wait(SIM_TIMINGS.control);
    if (p.weight !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/weight`, String(p.weight));
    if (p.cap !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/cap`, String(p.cap));
    if (p.mask !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/cpus`, p.mask);
  }

  async sysrq(domid: number, key: string): Promise<void> {
    const command = `sysrq ${domid} ${key}`;
    const d = this.get(domid, command);
    if (!/^[0-9a-z]$/i.test(key)) throw new DriverError('invalid', `"${key}" is not a sysrq key`, { command });
    if (d.state !== 'running') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    await this.wait(SIM_TIMINGS.control);
    this.log(d, `sysrq: ${key}`);
    if (key === 'c') this.stopDomain(d, 'crash');
    else if (key === 'o') this.later(SIM_TIMINGS.shutdownRun, () => this.stopDomain(d, 'poweroff'));
    else if (key === 'b') this.stopDomain(d, 'reboot');
  }

  async trigger(domid: number, trigger: string, _vcpu?: number): Promise<void> {
    const command = `trigger ${domid} ${trigger}`;
    const d = this.get(domid, command);
    if (!['nmi', 'reset', 'init', 'power', 'sleep', 's3resume'].includes(trigger)) throw new DriverError('invalid', `unknown trigger "${trigger}"`, { command });
    if (!d.hvm && trigger !== 'nmi') throw new DriverError('unsupported', `trigger ${trigger} applies to HVM domains only`, { command });
    await this.wait(SIM_TIMINGS.control);
    this.log(d, `trigger: ${trigger}`);
    if (trigger === 'reset') this.stopDomain(d, 'reboot');
    else if (trigger === 'power') this.later(SIM_TIMINGS.shutdownRun, () => this.stopDomain(d, 'poweroff'));
  }

  // ---- devices -------------------------------------------------------------------

  async attachDisk(domid: number, disk: DiskSpec): Promise<void> {
    const command = `block-attach ${domid} ${disk.vdev}`;
    const d = this.get(domid, command);
    if (d.disks.some((x) => x.vdev === disk.vdev)) throw new DriverError('device', `device ${disk.vdev} already exists in domain ${domid}`, { command });
    await this.wait(SIM_TIMINGS.hotplug);
    d.disks.push({ ...disk });
    this.writeDisk(d, disk);
    this.changed(d);
  }

  async detachDisk(domid: number, vdev: string, _force: boolean): Promise<void> {
    const command = `block-detach ${domid} ${vdev}`;
    const d = this.get(domid, command);
    const i = d.disks.findIndex((x) => x.vdev === vdev);
    if (i < 0) throw new DriverError('device', `device ${vdev} is not attached to domain ${domid}`, { command });
    await this.wait(SIM_TIMINGS.hotplug);
    d.disks.splice(i, 1);
    this.xs.remove(`/local/domain/${domid}/device/vbd/${vdev}`);
    this.changed(d);
  }

  async attachNic(domid: number, nic: NicSpec): Promise<void> {
    const command = `network-attach ${domid} ${nic.devid}`;
    const d = this.get(domid, command);
    if (d.nics.some((x) => x.devid === nic.devid)) throw new DriverError('device', `network device ${nic.devid} already exists in domain ${domid}`, { command });
    await this.wait(SIM_TIMINGS.hotplug);
    d.nics.push({ ...nic });
    this.writeNic(d, nic);
    if (d.agentUp) this.xs.write(`/local/domain/${domid}/attr/eth${nic.devid}/ip`, simulatedIp(nic.mac));
    this.changed(d);
    if (d.agentUp) this.feed.emit({ kind: 'guest', domid, uuid: d.uuid });
  }

  async detachNic(domid: number, devid: number, _force: boolean): Promise<void> {
    const command = `network-detach ${domid} ${devid}`;
    const d = this.get(domid, command);
    const i = d.nics.findIndex((x) => x.devid === devid);
    if (i < 0) throw new DriverError('device', `network device ${devid} is not attached to domain ${domid}`, { command });
    await this.wait(SIM_TIMINGS.hotplug);
    d.nics.splice(i, 1);
    this.xs.remove(`/local/domain/${domid}/device/vif/${devid}`);
    this.xs.remove(`/local/domain/${domid}/attr/eth${devid}`);
    this.changed(d);
    if (d.agentUp) this.feed.emit({ kind: 'guest', domid, uuid: d.uuid });
  }

  async changeCd(domid: number, vdev: string, disk: DiskSpec | undefined): Promise<void> {
    const command = `cd-${disk ? 'insert' : 'eject'} ${domid} ${vdev}`;
    const d = this.get(domid, command);
    const cur = d.disks.find((x) => x.vdev === vdev);
    if (!cur || !cur.cdrom) throw new DriverError('device', `${vdev} is not a CD drive of domain ${domid}`, { command });
    await this.wait(SIM_TIMINGS.hotplug);
    Object.assign(cur, disk ? { path: disk.path, format: disk.format } : { path: '', format: 'empty' });
    this.writeDisk(d, cur);
    this.changed(d);
  }

  // ---- xenstore ------------------------------------------------------------------

  async xenstoreRead(path: string): Promise<string | undefined> {
    return this.xs.read(path);
  }

  async xenstoreWrite(path: string, value: string): Promise<void> {
    this.xs.write(path, value);
    this.persist();
  }

  async xenstoreList(path: string): Promise<Record<string, string>> {
    return this.xs.list(path);
  }

  async xenstoreRemove(path: string): Promise<void> {
    this.xs.remove(path);
    this.persist();
  }

  xenstoreWatch(path: string, listener: (path: string) => void): () => void {
    return this.xs.watch(path, listener);
  }

  // ---- console -------------------------------------------------------------------

  private readonly consoleListeners = new Map<number, Set<(text: string) => void>>();

  async console(domid: number): Promise<ConsoleStream> {
    const d = this.get(domid, `console ${domid}`);
    const mine = new Set<(text: string) => void>();
    let set = this.consoleListeners.get(domid);
    if (!set) {
      set = new Set();
      this.consoleListeners.set(domid, set);
    }
    const all = set;
    const relay = (text: string) => {
      for (const l of mine) l(text);
    };
    all.add(relay);
    return {
      onData: (l) => {
        mine.add(l);
        if (d.console.length) l(`${d.console.join('\r\n')}\r\n`);
      },
      write: (text) => {
        // The simulated guest's terminal echoes what it is sent.
        if (this.domains.get(domid) === d && d.state === 'running') relay(text);
      },
      close: () => {
        all.delete(relay);
        mine.clear();
      },
    };
  }
}
