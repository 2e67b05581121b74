// The simulator: a hypervisor inside the daemon's process. Domains have domids, states
// and memory, take realistic time to build, boot, stop and save (scaled by
// delayScale; 0 removes every delay), and run a simulated guest: a kernel that answers
// xenstore control/shutdown requests and sysrq keys, and a guest agent that writes its
// OS, PV driver and network facts into xenstore data/ and attr/ once booted.
//
// This file is the Driver; its parts: state.ts (the domain table and xenstore, kept in
// `stateFile` across daemon runs), timing.ts (the scaled delays), guest.ts (what the
// guest does by itself), console.ts, devices.ts (disk and NIC hot-plug), image.ts
// (suspend images and core dumps). Fault injection for tests comes in DomainConfig.sim
// (see drivers/README.md).
import os from 'node:os';
import {
  DriverError, type ConsoleStream, type DiskSpec, type DomainConfig, type DomainEvent, type DomainInfo,
  type Driver, type HostFacts, type NicSpec,
} from '../driver.js';
import { DomainFeed } from '../feed.js';
import { SimConsoles } from './console.js';
import { SimDevices, writeDisk, writeNic } from './devices.js';
import { SimGuest } from './guest.js';
import { readImage, writeCore, writeImage } from './image.js';
import { cpuTime, machineMemory, SimState, type DomainNotices, type SimDomain } from './state.js';
import { SIM_TIMINGS, SimClock } from './timing.js';
import type { SimXenstore } from './xenstore.js';

export { SIM_TIMINGS } from './timing.js';
export { simulatedIp } from './guest.js';

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

const MiB = 1024 * 1024;

export class SimulatorDriver implements Driver {
  readonly name = 'sim' as const;
  private readonly feed = new DomainFeed();
  private readonly state: SimState;
  private readonly xs: SimXenstore;
  private readonly clock: SimClock;
  private readonly consoles: SimConsoles;
  private readonly notices: DomainNotices;
  private readonly guest: SimGuest;
  private readonly devices: SimDevices;
  readonly totalMemoryBytes: number;
  readonly dom0MemoryBytes: number;
  readonly cpus: number;

  constructor(opts: SimulatorOptions) {
    this.totalMemoryBytes = opts.totalMemoryBytes ?? machineMemory();
    this.dom0MemoryBytes = opts.dom0MemoryBytes ?? Math.min(2048 * MiB, Math.floor(this.totalMemoryBytes / 8));
    this.cpus = opts.cpus ?? Math.max(1, os.cpus().length);
    this.state = new SimState(opts);
    this.xs = this.state.xs;
    this.clock = new SimClock(opts.delayScale);
    this.consoles = new SimConsoles(this.state);
    this.notices = {
      changed: (d) => this.changed(d),
      agentWrote: (d) => this.feed.emit({ kind: 'guest', domid: d.domid, uuid: d.uuid }),
    };
    this.guest = new SimGuest(this.state, this.clock, this.consoles, this.notices);
    this.devices = new SimDevices(this.state, this.clock, this.notices);
  }

  // ---- lifecycle -------------------------------------------------------------

  async open(): Promise<void> {
    for (const d of this.state.load()) {
      if (d.state === 'running' && !d.agentUp) this.guest.scheduleAgent(d);
    }
    this.xs.write('/local/domain/0/name', 'Domain-0');
    this.xs.write('/local/domain/0/domid', '0');
  }

  async close(): Promise<void> {
    this.clock.stopped = true;
    await this.state.stopWriting();
    this.clock.clearTimers();
    this.guest.clearTimers();
    this.state.persistNow();
  }

  // ---- the change feed ---------------------------------------------------------

  subscribe(listener: (e: DomainEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  private changed(d: SimDomain): void {
    this.state.persist();
    if (this.state.has(d)) this.feed.emit({ kind: 'changed', info: this.infoOf(d) });
  }

  // ---- reads -------------------------------------------------------------------

  private infoOf(d: SimDomain): DomainInfo {
    const vcpuCpu: Record<number, number> = {};
    for (let i = 0; i < d.vcpus; i++) vcpuCpu[i] = (d.domid + i) % this.cpus;
    return {
      domid: d.domid, uuid: d.uuid, name: d.name, state: d.state, shutdownReason: d.reason,
      memoryBytes: d.memoryBytes, maxMemoryBytes: d.maxMemoryBytes, vcpus: d.vcpus, maxVcpus: d.maxVcpus,
      vcpuCpu, cpuTimeSec: Math.round(cpuTime(d) * 1000) / 1000, hvm: d.hvm,
    };
  }

  private used(): number {
    let n = this.dom0MemoryBytes;
    for (const d of this.state.domains.values()) n += d.memoryBytes;
    return n;
  }

  async host(): Promise<HostFacts> {
    return { totalMemoryBytes: this.totalMemoryBytes, freeMemoryBytes: Math.max(0, this.totalMemoryBytes - this.used()), cpus: this.cpus, xenVersion: '' };
  }

  async list(): Promise<DomainInfo[]> {
    return [...this.state.domains.values()].map((d) => this.infoOf(d));
  }

  async info(domid: number): Promise<DomainInfo | undefined> {
    const d = this.state.domains.get(domid);
    return d ? this.infoOf(d) : undefined;
  }

  // ---- building and destroying -------------------------------------------------------

  private checkConfig(cfg: DomainConfig, command: string): void {
    if (cfg.sim?.refuseStart) throw new DriverError('build', cfg.sim.refuseStart, { command });
    for (const d of this.state.domains.values()) {
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
      domid: this.state.newDomid(), uuid: cfg.uuid, name: cfg.name, hvm: cfg.hvm, state: 'paused',
      memoryBytes: cfg.memory.targetBytes + cfg.memory.shadowMiB * MiB, maxMemoryBytes: cfg.memory.maxBytes,
      vcpus: cfg.vcpus.atStartup, maxVcpus: cfg.vcpus.max, cpuTimeSec: 0, bootLeftMs: SIM_TIMINGS.boot, agentUp: false,
      disks: cfg.disks.map((x) => ({ ...x })), nics: cfg.nics.map((x) => ({ ...x })), hints: { ...cfg.sim }, console: [],
    };
    this.state.domains.set(d.domid, d);
    const base = `/local/domain/${d.domid}`;
    this.xs.write(`${base}/name`, d.name);
    this.xs.write(`${base}/domid`, String(d.domid));
    this.xs.write(`${base}/vm`, `/vm/${d.uuid}`);
    this.xs.write(`${base}/memory/static-max`, String(Math.floor(d.maxMemoryBytes / 1024)));
    this.xs.write(`${base}/memory/target`, String(Math.floor(cfg.memory.targetBytes / 1024)));
    for (let i = 0; i < d.maxVcpus; i++) this.xs.write(`${base}/cpu/${i}/availability`, i < d.vcpus ? 'online' : 'offline');
    this.xs.write(`${base}/control/shutdown`, '');
    for (const disk of d.disks) writeDisk(this.xs, d, disk);
    for (const nic of d.nics) writeNic(this.xs, d, nic);
    this.xs.write(`/vm/${d.uuid}/name`, d.name);
    this.xs.write(`/vm/${d.uuid}/uuid`, d.uuid);
    this.guest.watchControl(d);
    return d;
  }

  async create(cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const command = `create ${cfg.name}`;
    this.checkConfig(cfg, command);
    if (cfg.pv?.bootloader === 'pygrub' && !cfg.disks.some((x) => x.bootable && !x.cdrom && x.format !== 'empty')) {
      await this.clock.wait(SIM_TIMINGS.bootloader);
      throw new DriverError('bootloader', 'pygrub: no bootable disk was given to the bootloader', { command });
    }
    const d = this.newDomain(cfg);
    this.changed(d);
    // A test's build time (sim_build_ms) is taken as it is, not scaled.
    if (cfg.sim?.buildMs !== undefined) await this.clock.waitExactly(cfg.sim.buildMs);
    else await this.clock.wait(SIM_TIMINGS.build + (cfg.pv?.bootloader ? SIM_TIMINGS.bootloader : 0));
    if (!this.state.has(d)) throw new DriverError('failed', `domain ${d.domid} was destroyed while it was being built`, { command });
    this.consoles.log(d, `Xen ${cfg.hvm ? 'HVM' : 'PV'} domain ${d.domid} built: ${Math.round(d.memoryBytes / MiB)} MiB, ${d.vcpus} VCPU(s)`);
    if (!opts.paused) this.guest.run(d);
    this.changed(d);
    return this.infoOf(d);
  }

  async destroy(domid: number): Promise<void> {
    const d = this.state.get(domid, 'destroy');
    d.state = 'dying';
    this.guest.cancelAgent(d);
    await this.clock.wait(SIM_TIMINGS.destroy);
    this.remove(d);
  }

  private remove(d: SimDomain): void {
    if (!this.state.has(d)) return;
    this.guest.cancelAgent(d);
    this.state.domains.delete(d.domid);
    this.xs.remove(`/local/domain/${d.domid}`);
    this.xs.remove(`/vm/${d.uuid}`);
    this.consoles.forget(d.domid);
    this.state.persist();
    this.feed.emit({ kind: 'gone', domid: d.domid, uuid: d.uuid });
  }

  async requestShutdown(domid: number, reason: 'poweroff' | 'reboot', ackTimeoutMs: number): Promise<void> {
    const command = `shutdown ${domid} ${reason}`;
    const d = this.state.get(domid, command);
    if (d.hvm && d.hints.noAgent) throw new DriverError('no-pv-drivers', 'PV control interface not available', { command });
    if (d.state !== 'running' && d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    await this.guest.request(d, reason, ackTimeoutMs, command);
  }

  async pause(domid: number): Promise<void> {
    const d = this.state.get(domid, 'pause');
    await this.clock.wait(SIM_TIMINGS.pause);
    if (d.state !== 'running') throw new DriverError('invalid', `domain ${domid} is ${d.state}, not running`, { command: `pause ${domid}` });
    d.cpuTimeSec = cpuTime(d);
    d.runningSince = undefined;
    d.state = 'paused';
    this.guest.cancelAgent(d);
    this.changed(d);
  }

  async unpause(domid: number): Promise<void> {
    const d = this.state.get(domid, 'unpause');
    await this.clock.wait(SIM_TIMINGS.pause);
    if (d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}, not paused`, { command: `unpause ${domid}` });
    this.guest.run(d);
    this.changed(d);
  }

  async save(domid: number, path: string, timeoutMs: number): Promise<void> {
    const command = `save ${domid} ${path}`;
    const d = this.state.get(domid, command);
    if (d.state !== 'running' && d.state !== 'paused') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    // A PV guest suspends itself when asked; an HVM guest is suspended by its device model.
    if (!d.hvm && d.state === 'running') await this.guest.request(d, 'suspend', Math.min(timeoutMs, 60_000), command);
    await this.clock.wait(SIM_TIMINGS.save + (d.memoryBytes / (64 * MiB)) * SIM_TIMINGS.savePer64MiB);
    if (!this.state.has(d)) throw new DriverError('no-such-domain', `domain ${domid} disappeared during save`, { command });
    writeImage(path, d, this.xs.list(`/local/domain/${d.domid}`));
    d.state = 'shutdown';
    d.reason = 'suspend';
    this.changed(d);
    this.remove(d);
  }

  async restore(path: string, cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const command = `restore ${path}`;
    const image = readImage(path, cfg.uuid, command);
    this.checkConfig({ ...cfg, memory: { ...cfg.memory, targetBytes: image.memoryBytes, shadowMiB: 0 } }, command);
    const d = this.newDomain(cfg);
    Object.assign(d, {
      memoryBytes: image.memoryBytes, maxMemoryBytes: image.maxMemoryBytes, vcpus: image.vcpus, maxVcpus: image.maxVcpus,
      cpuTimeSec: image.cpuTimeSec, bootLeftMs: image.bootLeftMs, agentUp: image.agentUp, console: image.console ?? [],
    });
    for (const [k, v] of Object.entries(image.guest)) this.xs.write(`/local/domain/${d.domid}/${k}`, v);
    this.changed(d);
    await this.clock.wait(SIM_TIMINGS.restore + (d.memoryBytes / (64 * MiB)) * SIM_TIMINGS.savePer64MiB);
    if (!this.state.has(d)) throw new DriverError('failed', `domain ${d.domid} was destroyed while it was being restored`, { command });
    this.consoles.log(d, 'Resumed from a suspend image');
    if (!opts.paused) this.guest.run(d);
    this.changed(d);
    if (d.agentUp) this.notices.agentWrote(d);
    return this.infoOf(d);
  }

  async dumpCore(domid: number, path: string): Promise<void> {
    const d = this.state.get(domid, `dump-core ${domid}`);
    await this.clock.wait(SIM_TIMINGS.dumpCore);
    writeCore(path, d);
  }

  // ---- live changes --------------------------------------------------------------

  async setVcpus(domid: number, n: number): Promise<void> {
    const d = this.state.get(domid, `vcpu-set ${domid} ${n}`);
    if (n < 1 || n > d.maxVcpus) throw new DriverError('invalid', `cannot set ${n} VCPUs: the domain has at most ${d.maxVcpus}`, { command: `vcpu-set ${domid} ${n}` });
    await this.clock.wait(SIM_TIMINGS.control);
    d.vcpus = n;
    for (let i = 0; i < d.maxVcpus; i++) this.xs.write(`/local/domain/${domid}/cpu/${i}/availability`, i < n ? 'online' : 'offline');
    this.changed(d);
  }

  async setMemoryTarget(domid: number, bytes: number): Promise<void> {
    const command = `mem-set ${domid} ${bytes}`;
    const d = this.state.get(domid, command);
    if (bytes > d.maxMemoryBytes) throw new DriverError('invalid', `target ${bytes} is above the domain's maximum ${d.maxMemoryBytes}`, { command });
    const grow = bytes - d.memoryBytes;
    const free = this.totalMemoryBytes - this.used();
    if (grow > free) throw new DriverError('no-memory', `not enough free memory to grow by ${grow} bytes`, { command, needed: grow, available: free });
    await this.clock.wait(SIM_TIMINGS.control);
    this.xs.write(`/local/domain/${domid}/memory/target`, String(Math.floor(bytes / 1024)));
    d.memoryBytes = bytes;
    this.changed(d);
  }

  async setShadowMemory(domid: number, mib: number): Promise<void> {
    const d = this.state.get(domid, `shadow ${domid}`);
    if (!d.hvm) throw new DriverError('unsupported', 'shadow memory applies to HVM domains only', { command: `shadow ${domid}` });
    await this.clock.wait(SIM_TIMINGS.control);
    this.xs.write(`/local/domain/${domid}/memory/shadow`, String(mib));
  }

  async setVcpuParams(domid: number, p: { weight?: number; cap?: number; mask?: string }): Promise<void> {
    const d = this.state.get(domid, `sched ${domid}`);
    await this.clock.wait(SIM_TIMINGS.control);
    if (p.weight !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/weight`, String(p.weight));
    if (p.cap !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/cap`, String(p.cap));
    if (p.mask !== undefined) this.xs.write(`/local/domain/${d.domid}/sched/cpus`, p.mask);
  }

  async sysrq(domid: number, key: string): Promise<void> {
    const command = `sysrq ${domid} ${key}`;
    const d = this.state.get(domid, command);
    if (!/^[0-9a-z]$/i.test(key)) throw new DriverError('invalid', `"${key}" is not a sysrq key`, { command });
    if (d.state !== 'running') throw new DriverError('invalid', `domain ${domid} is ${d.state}`, { command });
    await this.clock.wait(SIM_TIMINGS.control);
    this.consoles.log(d, `sysrq: ${key}`);
    if (key === 'c') this.guest.stop(d, 'crash');
    else if (key === 'o') this.clock.later(SIM_TIMINGS.shutdownRun, () => this.guest.stop(d, 'poweroff'));
    else if (key === 'b') this.guest.stop(d, 'reboot');
  }

  async trigger(domid: number, trigger: string, _vcpu?: number): Promise<void> {
    const command = `trigger ${domid} ${trigger}`;
    const d = this.state.get(domid, command);
    if (!['nmi', 'reset', 'init', 'power', 'sleep', 's3resume'].includes(trigger)) throw new DriverError('invalid', `unknown trigger "${trigger}"`, { command });
    if (!d.hvm && trigger !== 'nmi') throw new DriverError('unsupported', `trigger ${trigger} applies to HVM domains only`, { command });
    await this.clock.wait(SIM_TIMINGS.control);
    this.consoles.log(d, `trigger: ${trigger}`);
    if (trigger === 'reset') this.guest.stop(d, 'reboot');
    else if (trigger === 'power') this.clock.later(SIM_TIMINGS.shutdownRun, () => this.guest.stop(d, 'poweroff'));
  }

  // ---- devices (devices.ts) ------------------------------------------------------

  attachDisk(domid: number, disk: DiskSpec): Promise<void> {
    return this.devices.attachDisk(domid, disk);
  }

  detachDisk(domid: number, vdev: string, _force: boolean): Promise<void> {
    return this.devices.detachDisk(domid, vdev);
  }

  attachNic(domid: number, nic: NicSpec): Promise<void> {
    return this.devices.attachNic(domid, nic);
  }

  detachNic(domid: number, devid: number, _force: boolean): Promise<void> {
    return this.devices.detachNic(domid, devid);
  }

  changeCd(domid: number, vdev: string, disk: DiskSpec | undefined): Promise<void> {
    return this.devices.changeCd(domid, vdev, disk);
  }

  // ---- xenstore ------------------------------------------------------------------

  async xenstoreRead(path: string): Promise<string | undefined> {
    return this.xs.read(path);
  }

  async xenstoreWrite(path: string, value: string): Promise<void> {
    this.xs.write(path, value);
    this.state.persist();
  }

  async xenstoreList(path: string): Promise<Record<string, string>> {
    return this.xs.list(path);
  }

  async xenstoreRemove(path: string): Promise<void> {
    this.xs.remove(path);
    this.state.persist();
  }

  xenstoreWatch(path: string, listener: (path: string) => void): () => void {
    return this.xs.watch(path, listener);
  }

  // ---- console (console.ts) ------------------------------------------------------

  async console(domid: number): Promise<ConsoleStream> {
    return this.consoles.open(this.state.get(domid, `console ${domid}`));
  }
}
