// The VM power-state machine: start/start_on, pause/unpause, suspend/resume(_on),
// clean and hard shutdown and reboot, power_state_reset; what happens when a domain
// changes by itself (guest halt, reboot, crash: the actions_after_* fields); the
// reconciliation of database and hypervisor at daemon start; and VM_metrics and
// VM_guest_metrics kept from what the driver reports. The only user of the driver.
//
// Every operation runs under runOperation (src/api/operations.ts), so a conflicting call
// meanwhile gets OTHER_OPERATION_IN_PROGRESS. Domain events for a VM that has an
// operation running are left to that operation; whatever it did not consume is looked
// at again when it ends.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DomainEvent, DomainInfo, Driver, HostFacts } from '../../drivers/driver.js';
import { INTERNAL, type CallContext } from '../core/context.js';
import { XenApiError, fail } from '../core/errors.js';
import { runOperation, updateAllowedOperations } from '../core/operations.js';
import type { RecordCodec } from '../core/record-codec.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VBDRecord, VIFRecord, VMRecord } from '../datamodel/records.js';
import type { ObjectStore } from '../db/store.js';
import { now, toMillis } from '../core/datetime.js';
import type { StorageService } from '../storage/service.js';
import type { NetworkService } from '../network/service.js';
import { vifBackendName } from '../network/names.js';
import {
  buildDomainConfig, isHvm, memoryOf, memoryOverhead, shadowMiB, validateForStart, vdevName, type DiskSource,
} from './config.js';
import { vmError, type VmOp } from './errors.js';
import { defineVmOperations } from './rules.js';
import { VmStorage, markVbdAttached } from './storage.js';
import { ensureDefaultTemplates } from './templates.js';

const MiB = 1024 * 1024;

export interface VmServiceDeps {
  store: ObjectStore;
  log: Logger;
  /** This host: where VMs start, and what resident_on names. */
  hostRef: string;
  /** The pool, whose settings name SRs for suspend images and crash dumps. */
  poolRef: string;
  driver: Driver;
  storage: StorageService;
  network: NetworkService;
  /** How VM.last_booted_record is written and read (the wire format's, from rpc/). */
  records: RecordCodec;
  stateDir: string;
  /** How long a clean shutdown or reboot may take, acknowledgement included. */
  shutdownTimeoutMs: number;
  /** A crash this soon after start does not restart the VM (xapi: 120 s). */
  crashGuardMs: number;
  /** A guest restarting this soon after start is delayed more each time (xapi: 60 s). */
  rebootGuardMs: number;
  /** Between VM_metrics / VM_guest_metrics refreshes. */
  metricsIntervalMs: number;
}

type Power = VMRecord['power_state'];

/** Operations interrupted by the previous daemon, per VM, read before anything clears them. */
type Interrupted = Map<string, string[]>;

const BUILDING_OPS = new Set(['start', 'start_on', 'resume', 'resume_on', 'hard_reboot', 'clean_reboot']);

export class VmService {
  readonly driver: Driver;
  readonly storage: VmStorage;
  readonly store: ObjectStore;
  private readonly log: Logger;
  private readonly hostRef: string;
  private readonly network: NetworkService;
  private readonly busy = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly waiters = new Set<(e: DomainEvent) => void>();
  private readonly interrupted: Interrupted = new Map();
  /** Memory promised to starts in progress. */
  private reserved = 0;
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(readonly opts: VmServiceDeps) {
    defineVmOperations();
    this.driver = opts.driver;
    this.store = opts.store;
    this.hostRef = opts.hostRef;
    this.network = opts.network;
    this.log = opts.log.child({ component: 'vm' });
    this.storage = new VmStorage(opts.storage, opts.stateDir);
    // Read now: other start-up steps clear current_operations before open() runs.
    for (const [ref, rec] of this.store.allRecords('VM')) {
      const ops = Object.values(rec.current_operations as Record<string, string>);
      if (ops.length) this.interrupted.set(ref, ops);
    }
  }

  // ---- start and stop --------------------------------------------------------------------

  async open(): Promise<void> {
    await this.driver.open();
    await this.refreshHostMetrics();
    const made = ensureDefaultTemplates(this.store);
    if (made) this.log.info({ templates: made }, 'default templates created');
    await this.reconcile();
    this.unsubscribe = this.driver.subscribe((e) => this.onDomainEvent(e));
    // Anything that changed between the reconciliation and the subscription.
    for (const d of await this.driver.list()) this.onDomainEvent({ kind: 'changed', info: d });
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.refreshAllMetrics().finally(() => !this.closed && tick());
      }, this.opts.metricsIntervalMs);
      this.timer.unref();
    };
    tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.unsubscribe?.();
    await Promise.allSettled([...this.chains.values()]);
    await this.driver.close();
  }

  // ---- small helpers -------------------------------------------------------------------------

  private vm(ref: string): VMRecord {
    const r = this.store.get('VM', ref);
    if (!r) fail('HANDLE_INVALID', 'VM', ref);
    return r;
  }

  private vbds(vm: VMRecord): Array<[string, VBDRecord]> {
    return vm.VBDs.map((r) => [r, this.store.get('VBD', r)!] as [string, VBDRecord]).filter(([, b]) => b);
  }

  private vifs(vm: VMRecord): Array<[string, VIFRecord]> {
    return vm.VIFs.map((r) => [r, this.store.get('VIF', r)!] as [string, VIFRecord]).filter(([, v]) => v);
  }

  /** Runs an operation on the VM with its lock; domain events meanwhile wait for it. */
  async withOp<T>(ctx: CallContext, vm: string, op: string, fn: () => Promise<T>): Promise<T> {
    return runOperation(this.store, ctx, 'VM', vm, op, async () => {
      this.busy.set(vm, (this.busy.get(vm) ?? 0) + 1);
      try {
        return await fn();
      } finally {
        const n = (this.busy.get(vm) ?? 1) - 1;
        if (n > 0) this.busy.set(vm, n);
        else {
          this.busy.delete(vm);
          if (this.pending.delete(vm)) setImmediate(() => this.resync(vm));
        }
      }
    });
  }

  isBusy(vm: string): boolean {
    return this.busy.has(vm);
  }

  /** Waits until `done` holds for the domain (undefined: it is gone), or the time is up. */
  private waitDomain(domid: number, done: (d: DomainInfo | undefined) => boolean, timeoutMs: number): Promise<DomainInfo | undefined | 'timeout'> {
    return new Promise((resolve) => {
      let finished = false;
      const finish = (v: DomainInfo | undefined | 'timeout') => {
        if (finished) return;
        finished = true;
        this.waiters.delete(listener);
        clearTimeout(timer);
        resolve(v);
      };
      const listener = (e: DomainEvent) => {
        if (e.kind === 'gone' && e.domid === domid && done(undefined)) finish(undefined);
        else if (e.kind === 'changed' && e.info.domid === domid && done(e.info)) finish(e.info);
      };
      this.waiters.add(listener);
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      void this.driver.info(domid).then((d) => {
        if (done(d)) finish(d);
      }, () => undefined);
    });
  }

  // ---- domain events ---------------------------------------------------------------------------

  private onDomainEvent(e: DomainEvent): void {
    for (const w of this.waiters) w(e);
    const uuid = e.kind === 'changed' ? e.info.uuid : e.uuid;
    const vm = this.store.refByUuid('VM', uuid);
    if (!vm || this.closed) return;
    if (e.kind === 'guest') {
      void this.refreshGuestMetrics(vm, e.domid).catch((err: Error) => this.log.warn({ vm, err: err.message }, 'guest metrics refresh failed'));
      return;
    }
    if (this.busy.has(vm)) {
      this.pending.add(vm);
      return;
    }
    const rec = this.store.get('VM', vm);
    const domid = e.kind === 'changed' ? e.info.domid : e.domid;
    const live = rec && (rec.power_state === 'Running' || rec.power_state === 'Paused');
    if (live && rec.domid !== domid) {
      // News of another domain than the one the VM runs in (an old one, reported late):
      // look at what runs for this VM now instead.
      this.resync(vm);
      return;
    }
    if (!live && e.kind === 'gone') return;
    this.serial(vm, () => this.sync(vm, e.kind === 'changed' ? e.info : undefined));
  }

  /** One sync at a time per VM, in order. */
  private serial(vm: string, fn: () => Promise<void>): void {
    const prev = this.chains.get(vm) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => this.log.error({ vm, err: err instanceof Error ? err.message : String(err) }, 'acting on a domain change failed'));
    this.chains.set(vm, next);
    void next.then(() => {
      if (this.chains.get(vm) === next) this.chains.delete(vm);
    });
  }

  /** The VM's domain: the one with the domid the record names, else its newest. */
  private async domainOf(uuid: string, domid?: number): Promise<DomainInfo | undefined> {
    const mine = (await this.driver.list()).filter((d) => d.uuid === uuid);
    return mine.find((d) => d.domid === domid) ?? mine.sort((a, b) => b.domid - a.domid)[0];
  }

  /** Looks at the VM's domain again (after an operation that may have left changes unhandled). */
  private resync(vm: string): void {
    if (this.closed || !this.store.exists('VM', vm)) return;
    this.serial(vm, async () => {
      const rec = this.store.get('VM', vm);
      if (!rec) return;
      await this.sync(vm, await this.domainOf(rec.uuid, rec.domid));
    });
  }

  /** Brings the VM record in line with its domain, carrying out actions_after_* where the
   * guest stopped by itself. */
  private async sync(vm: string, dom: DomainInfo | undefined): Promise<void> {
    const rec = this.store.get('VM', vm);
    if (!rec || rec.is_control_domain || this.closed) return;
    if (this.busy.has(vm)) {
      this.pending.add(vm);
      return;
    }
    const live = rec.power_state === 'Running' || rec.power_state === 'Paused';
    if (!dom) {
      if (live && (rec.resident_on === this.hostRef || rec.resident_on === NULL_REF)) {
        this.log.warn({ vm, domid: rec.domid }, 'the domain of a running VM vanished: the VM is halted');
        await this.halted(vm);
      }
      return;
    }
    switch (dom.state) {
      case 'running':
        if (rec.power_state === 'Paused') this.setPower(vm, 'Running', dom);
        else if (!live) this.adopt(vm, dom, 'Running');
        else if (rec.domid !== dom.domid) this.setPower(vm, rec.power_state, dom);
        break;
      case 'paused':
        if (rec.power_state === 'Running') this.setPower(vm, 'Paused', dom);
        else if (!live) this.adopt(vm, dom, 'Paused');
        break;
      case 'shutdown':
        if (!live) await this.removeLeftover(dom);
        else if (dom.shutdownReason === 'crash' || dom.shutdownReason === 'watchdog') await this.afterCrash(vm, dom);
        else await this.afterShutdown(vm, dom);
        break;
      case 'crashed':
        if (!live) await this.removeLeftover(dom);
        else if (rec.power_state === 'Paused' && rec.domid === dom.domid) return; // preserved already
        else await this.afterCrash(vm, dom);
        break;
      case 'dying':
        break;
    }
  }

  private async removeLeftover(dom: DomainInfo): Promise<void> {
    this.log.info({ domid: dom.domid, uuid: dom.uuid }, 'destroying a stopped domain the database does not count as running');
    await this.driver.destroy(dom.domid).catch(() => undefined);
  }

  /** A domain the database did not know about: the VM now runs (or is paused) here. */
  private adopt(vm: string, dom: DomainInfo, power: Power): void {
    this.log.warn({ vm, domid: dom.domid, power }, 'adopting a domain the database did not count as running');
    const rec = this.vm(vm);
    if (rec.power_state === 'Suspended' && rec.suspend_VDI !== NULL_REF) {
      const vdi = rec.suspend_VDI;
      this.store.update('VM', vm, { suspend_VDI: NULL_REF });
      void this.storage.destroyVdi(undefined, vdi).catch((err: Error) => this.log.warn({ vdi, err: err.message }, 'could not remove a suspend image'));
    }
    this.started(vm, dom, power, { fresh: false, devices: this.deviceNames(rec) });
  }

  private deviceNames(rec: VMRecord): Map<string, string> {
    const hvm = isHvm(rec);
    return new Map(this.vbds(rec).map(([r, b]) => [r, vdevName(b.userdevice, hvm)]));
  }

  private setPower(vm: string, power: Power, dom: DomainInfo): void {
    this.store.tx(() => {
      this.store.update('VM', vm, { power_state: power, domid: dom.domid });
      this.updateMetrics(vm, dom);
      updateAllowedOperations(this.store, 'VM', vm);
    });
  }

  /** A guest halted or rebooted itself: actions_after_shutdown / actions_after_reboot. */
  private async afterShutdown(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.vm(vm);
    const action = dom.shutdownReason === 'reboot' ? rec.actions_after_reboot : rec.actions_after_shutdown;
    this.log.info({ vm, domid: dom.domid, reason: dom.shutdownReason, action }, 'the guest stopped by itself');
    await this.internal(vm, action === 'restart' ? 'hard_reboot' : 'hard_shutdown', async () => {
      if (action === 'restart') await this.autoRestart(vm, dom);
      else await this.destroyAndHalt(vm, dom.domid);
    });
  }

  /** A guest crashed: actions_after_crash, downgraded to destroy shortly after a start. */
  private async afterCrash(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.vm(vm);
    let action = rec.actions_after_crash;
    const started = toMillis(this.store.field('VM_metrics', rec.metrics, 'start_time') ?? '') ?? 0;
    if (Date.now() - started < this.opts.crashGuardMs) {
      const downgraded = { restart: 'destroy', rename_restart: 'destroy', coredump_and_restart: 'coredump_and_destroy' } as const;
      const d = (downgraded as Record<string, VMRecord['actions_after_crash']>)[action];
      if (d) {
        this.log.warn({ vm, action, instead: d }, 'the guest crashed soon after it started: not restarting it');
        action = d;
      }
    }
    this.log.warn({ vm, domid: dom.domid, action }, 'the guest crashed');
    if (action === 'preserve') {
      this.store.tx(() => {
        this.store.update('VM', vm, { power_state: 'Paused', domid: dom.domid });
        this.updateMetrics(vm, dom);
        updateAllowedOperations(this.store, 'VM', vm);
      });
      return;
    }
    const restart = action === 'restart' || action === 'rename_restart' || action === 'coredump_and_restart';
    await this.internal(vm, restart ? 'hard_reboot' : 'hard_shutdown', async () => {
      if (action.startsWith('coredump')) await this.coredump(vm, dom.domid);
      if (restart) await this.autoRestart(vm, dom);
      else await this.destroyAndHalt(vm, dom.domid);
    });
  }

  /** An action the daemon starts itself, locked like a client's operation. */
  private async internal(vm: string, op: string, fn: () => Promise<void>): Promise<void> {
    try {
      await this.withOp(INTERNAL, vm, op, fn);
    } catch (e) {
      if (e instanceof XenApiError && e.code === 'OTHER_OPERATION_IN_PROGRESS') return; // that operation looks again when it ends
      this.log.error({ vm, op, err: e instanceof Error ? e.message : String(e) }, 'automatic action failed');
    }
  }

  private async coredump(vm: string, domid: number): Promise<void> {
    const sr = this.pickSr(['host.crash_dump_sr', 'pool.crash_dump_SR']);
    if (!sr) {
      this.log.warn({ vm }, 'no crash dump SR (host.crash_dump_sr or pool.crash_dump_SR): no core dump taken');
      return;
    }
    const rec = this.vm(vm);
    const vdi = await this.storage.createVdi(undefined, {
      SR: sr, virtual_size: Math.ceil((rec.memory_static_max + 16 * MiB) / MiB) * MiB, type: 'crashdump',
      name_label: 'Crash dump', name_description: `Core of ${rec.name_label}`, sm_config: { vmhint: rec.uuid },
    });
    try {
      await this.storage.withImage(vdi, true, (file) => this.driver.dumpCore(domid, file));
      this.store.create('crashdump', { VM: vm, VDI: vdi, other_config: {} });
    } catch (e) {
      await this.storage.destroyVdi(undefined, vdi).catch(() => undefined);
      this.log.error({ vm, err: (e as Error).message }, 'core dump failed');
    }
  }

  /** restart after a guest reboot or crash, with xapi's growing delay for guests that keep restarting. */
  private async autoRestart(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.vm(vm);
    const started = toMillis(this.store.field('VM_metrics', rec.metrics, 'start_time') ?? '') ?? 0;
    const other = { ...rec.other_config };
    if (Date.now() - started < this.opts.rebootGuardMs) {
      const last = Number(other.last_artificial_reboot_delay);
      const delay = Number.isFinite(last) && other.last_artificial_reboot_delay !== undefined ? Math.min(60, last === 0 ? 2 : last * 2) : 0;
      other.last_artificial_reboot_delay = String(delay);
      this.store.update('VM', vm, { other_config: other });
      if (delay > 0) {
        this.log.warn({ vm, delay }, 'the guest restarts too often: waiting before restarting it');
        await new Promise((r) => setTimeout(r, delay * 1000));
      }
    } else if (other.last_artificial_reboot_delay !== undefined) {
      delete other.last_artificial_reboot_delay;
      this.store.update('VM', vm, { other_config: other });
    }
    try {
      await this.reboot(vm, dom.domid);
    } catch (e) {
      this.log.error({ vm, err: e instanceof Error ? e.message : String(e) }, 'restart failed: the VM is halted');
      await this.halted(vm);
    }
  }

  // ---- reconciliation at start ------------------------------------------------------------------

  private async reconcile(): Promise<void> {
    const domains = await this.driver.list();
    const byUuid = new Map(domains.map((d) => [d.uuid, d]));
    for (const [vm, rec] of this.store.allRecords('VM')) {
      if (rec.is_control_domain) continue;
      const dom = byUuid.get(rec.uuid as string);
      byUuid.delete(rec.uuid as string);
      const ops = this.interrupted.get(vm) ?? [];
      if (ops.length) this.log.warn({ vm, ops }, 'operations interrupted by the previous daemon are cleared');
      let d = dom;
      if (d && d.state === 'paused' && rec.power_state !== 'Paused' && ops.some((o) => BUILDING_OPS.has(o))) {
        this.log.warn({ vm, domid: d.domid }, 'removing a domain whose build was interrupted');
        await this.driver.destroy(d.domid).catch(() => undefined);
        d = undefined;
      }
      if (ops.length) {
        this.store.update('VM', vm, { current_operations: {}, scheduled_to_be_resident_on: NULL_REF });
      }
      if (d || rec.power_state === 'Running' || rec.power_state === 'Paused') await this.sync(vm, d);
      if (!d && rec.power_state === 'Halted') this.detachLeftovers(vm);
      updateAllowedOperations(this.store, 'VM', vm);
    }
    for (const d of byUuid.values()) this.log.warn({ domid: d.domid, uuid: d.uuid, name: d.name }, 'a domain that belongs to no VM: left alone');
    this.interrupted.clear();
  }

  /** A halted VM's devices are not attached to anything. */
  private detachLeftovers(vm: string): void {
    const rec = this.vm(vm);
    this.store.tx(() => {
      for (const [ref, b] of this.vbds(rec)) if (b.currently_attached) markVbdAttached(this.store, ref, false);
      for (const [ref, v] of this.vifs(rec)) if (v.currently_attached) this.store.update('VIF', ref, { currently_attached: false });
    });
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------

  private updateMetrics(vm: string, dom: DomainInfo, fresh = false): void {
    const m = this.store.field('VM', vm, 'metrics');
    if (!m || m === NULL_REF || !this.store.exists('VM_metrics', m)) return;
    const cur = this.store.get('VM_metrics', m)!;
    const vcpuCpu = Object.fromEntries(Object.entries(dom.vcpuCpu).map(([k, v]) => [k, v]));
    const next = {
      memory_actual: dom.memoryBytes,
      VCPUs_number: dom.vcpus,
      VCPUs_CPU: vcpuCpu,
      VCPUs_params: this.store.field('VM', vm, 'VCPUs_params') ?? {},
      state: [dom.state],
    };
    const same = cur.memory_actual === next.memory_actual && cur.VCPUs_number === next.VCPUs_number
      && JSON.stringify(cur.VCPUs_CPU) === JSON.stringify(next.VCPUs_CPU) && JSON.stringify(cur.VCPUs_params) === JSON.stringify(next.VCPUs_params)
      && JSON.stringify(cur.state) === JSON.stringify(next.state);
    if (same && !fresh) return;
    this.store.update('VM_metrics', m, { ...next, ...(fresh ? { start_time: now() } : {}), last_updated: now() });
  }

  /** The record changes of a VM whose domain now runs (or is paused) here. */
  private started(vm: string, dom: DomainInfo, power: Power, o: { fresh: boolean; devices: Map<string, string> }): void {
    const store = this.store;
    const rec = this.vm(vm);
    store.tx(() => {
      store.update('VM', vm, {
        domid: dom.domid,
        domarch: dom.hvm ? 'hvm' : 'x64',
        resident_on: this.hostRef,
        scheduled_to_be_resident_on: NULL_REF,
        power_state: power,
        memory_target: memoryOf(rec).target,
        memory_overhead: memoryOverhead(rec),
      });
      this.updateMetrics(vm, dom, o.fresh);
      if (o.fresh && rec.guest_metrics !== NULL_REF) {
        if (store.exists('VM_guest_metrics', rec.guest_metrics)) store.destroy('VM_guest_metrics', rec.guest_metrics);
        store.update('VM', vm, { guest_metrics: NULL_REF });
      }
      if (rec.consoles.length === 0) {
        const address = store.field('host', this.hostRef, 'address') ?? '127.0.0.1';
        store.create('console', { protocol: 'rfb', location: `https://${address}/console?ref=${vm}`, VM: vm, other_config: {} });
      }
      for (const [ref] of this.vbds(rec)) markVbdAttached(this.store, ref, true, o.devices.get(ref));
      for (const [ref] of this.vifs(rec)) {
        if (!this.usesHostNetworking()) store.update('VIF', ref, { currently_attached: true });
      }
      updateAllowedOperations(store, 'VM', vm);
    });
    // The guest's agent may have reported before the VM record knew the domain.
    void this.refreshGuestMetrics(vm, dom.domid).catch(() => undefined);
  }

  private usesHostNetworking(): boolean {
    return this.driver.name === 'xl';
  }

  /** The record changes of a VM whose domain is gone (Halted, or Suspended with its image). */
  private stopped(vm: string, power: 'Halted' | 'Suspended', suspendVdi = NULL_REF): { vbds: string[]; vifs: Array<[string, string]> } {
    const store = this.store;
    const rec = this.vm(vm);
    const attachedVbds = this.vbds(rec).filter(([, b]) => b.currently_attached && !b.empty).map(([r]) => r);
    const attachedVifs = this.vifs(rec).filter(([, v]) => v.currently_attached).map(([r, v]) => [r, vifBackendName(rec.domid, v.device)] as [string, string]);
    store.tx(() => {
      store.update('VM', vm, {
        power_state: power, domid: -1, resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF,
        ...(power === 'Suspended' ? { suspend_VDI: suspendVdi } : {}),
      });
      for (const c of rec.consoles) if (store.exists('console', c)) store.destroy('console', c);
      for (const [ref] of this.vbds(rec)) markVbdAttached(this.store, ref, false);
      for (const [ref] of this.vifs(rec)) store.update('VIF', ref, { currently_attached: false });
      const m = rec.metrics;
      if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { state: [], VCPUs_CPU: {}, last_updated: now() });
      updateAllowedOperations(store, 'VM', vm);
    });
    return { vbds: attachedVbds, vifs: attachedVifs };
  }

  /** Lets go of the storage and network backends a stopped domain used. */
  private async release(what: { vbds: string[]; vifs: Array<[string, string]> }): Promise<void> {
    for (const vbd of what.vbds) {
      await this.storage.detachDisk(vbd).catch((err: Error) => this.log.warn({ vbd, err: err.message }, 'could not detach a disk'));
    }
    if (this.usesHostNetworking()) {
      for (const [vif, ifname] of what.vifs) {
        if (this.store.exists('VIF', vif)) await this.network.detachVif(vif, ifname).catch((err: Error) => this.log.warn({ vif, err: err.message }, 'could not release a VIF'));
      }
    }
  }

  private async halted(vm: string): Promise<void> {
    await this.release(this.stopped(vm, 'Halted'));
  }

  private async destroyAndHalt(vm: string, domid: number): Promise<void> {
    await this.driver.destroy(domid).catch((e) => {
      if (!(e instanceof Error && 'kind' in e && (e as { kind: string }).kind === 'no-such-domain')) throw vmError(e, vm, 'hard_shutdown');
    });
    await this.halted(vm);
  }

  // ---- building a domain ------------------------------------------------------------------------------

  /** Host checks before a start or resume: host, memory, CPUs, SRs. */
  async assertCanBootHere(vm: string, host: string, facts?: HostFacts): Promise<void> {
    const store = this.store;
    const h = store.get('host', host);
    if (!h) fail('HANDLE_INVALID', 'host', host);
    if (host !== this.hostRef) fail('HOST_NOT_LIVE');
    if (!h.enabled) fail('HOST_DISABLED', host);
    const rec = this.vm(vm);
    const mem = memoryOf(rec);
    const f = facts ?? (await this.driver.host());
    if (rec.VCPUs_max > f.cpus) fail('HOST_NOT_ENOUGH_PCPUS', rec.VCPUs_max, f.cpus);
    const needed = mem.target + memoryOverhead(rec);
    const available = Math.max(0, f.freeMemoryBytes - this.reserved);
    if (needed > available) fail('HOST_NOT_ENOUGH_FREE_MEMORY', needed, available);
    for (const [, b] of this.vbds(rec)) {
      if (b.empty || b.VDI === NULL_REF || !store.exists('VDI', b.VDI)) continue;
      const sr = store.field('VDI', b.VDI, 'SR')!;
      const pbd = (store.field('SR', sr, 'PBDs') ?? []).find((p) => store.field('PBD', p, 'host') === host);
      if (!pbd || !store.field('PBD', pbd, 'currently_attached')) fail('VM_REQUIRES_SR', vm, sr);
    }
  }

  /** Attaches the disks, creates (or restores) the domain paused, writes xenstore_data and
   * the network backends, then unpauses unless asked not to. Undoes everything on failure. */
  private async build(vm: string, paused: boolean, op: VmOp, restoreFrom?: string): Promise<{ dom: DomainInfo; devices: Map<string, string> }> {
    const rec = this.vm(vm);
    const attached: string[] = [];
    const disks = new Map<string, DiskSource>();
    let dom: DomainInfo | undefined;
    try {
      for (const [ref, b] of this.vbds(rec)) {
        if (b.empty || b.VDI === NULL_REF) continue;
        const src = await this.storage.attachDisk(ref);
        attached.push(ref);
        if (src) disks.set(ref, src);
      }
      const bridges = new Map<string, string>();
      for (const [, v] of this.vifs(rec)) {
        const bridge = this.store.field('network', v.network, 'bridge');
        if (bridge === undefined) fail('HANDLE_INVALID', 'network', v.network);
        if (!bridge && this.driver.name === 'xl') fail('VM_REQUIRES_NETWORK', vm, v.network);
        bridges.set(v.network, bridge);
      }
      const cfg = buildDomainConfig({ vm: rec, vbds: this.vbds(rec), vifs: this.vifs(rec), bridges, disks });
      dom = restoreFrom ? await this.driver.restore(restoreFrom, cfg, { paused: true }) : await this.driver.create(cfg, { paused: true });
      for (const [k, v] of Object.entries(rec.xenstore_data)) await this.driver.xenstoreWrite(`/local/domain/${dom.domid}/${k}`, v);
      if (this.usesHostNetworking()) {
        for (const [ref, v] of this.vifs(rec)) await this.network.attachVif(ref, vifBackendName(dom.domid, v.device));
      }
      if (!paused) {
        await this.driver.unpause(dom.domid);
        dom = { ...dom, state: 'running' };
      }
      const devices = new Map(cfg.disks.map((d) => [d.vbd, d.vdev]));
      return { dom, devices };
    } catch (e) {
      if (dom) await this.driver.destroy(dom.domid).catch(() => undefined);
      for (const ref of attached) await this.storage.detachDisk(ref).catch(() => undefined);
      throw vmError(e, vm, op);
    }
  }

  /** Destroys the current domain and builds a new one (reboot, restart). */
  private async reboot(vm: string, domid: number): Promise<void> {
    await this.driver.destroy(domid).catch((e) => {
      if (!(e instanceof Error && (e as { kind?: string }).kind === 'no-such-domain')) throw vmError(e, vm, 'hard_reboot');
    });
    const rec = this.vm(vm);
    // The disks are let go of and taken again, as a fresh boot does.
    for (const [ref, b] of this.vbds(rec)) if (b.currently_attached && !b.empty) await this.storage.detachDisk(ref).catch(() => undefined);
    this.store.update('VM', vm, { domid: -1 });
    validateForStart(vm, rec, true);
    const { dom, devices } = await this.build(vm, false, 'hard_reboot');
    this.started(vm, dom, 'Running', { fresh: true, devices });
  }

  // ---- the operations --------------------------------------------------------------------------------

  async start(ctx: CallContext, vm: string, paused: boolean, _force: boolean, op: 'start' | 'start_on' = 'start', host = this.hostRef): Promise<void> {
    await this.withOp(ctx, vm, op, async () => {
      const rec = this.vm(vm);
      validateForStart(vm, rec);
      if (host !== this.hostRef && this.store.exists('host', host)) {
        fail('OPERATION_NOT_ALLOWED', `host ${host} is not this host; VMs start only on the host they are asked on while pools are not supported`);
      }
      const facts = await this.driver.host();
      await this.assertCanBootHere(vm, host, facts);
      const needed = memoryOf(rec).target + memoryOverhead(rec);
      this.reserved += needed;
      try {
        // The record as it boots, without its own previous boot record (which would nest without end).
        this.store.update('VM', vm, { last_booted_record: this.opts.records.encode('VM', { ...rec, last_booted_record: '' }), scheduled_to_be_resident_on: host });
        const { dom, devices } = await this.build(vm, paused, 'start');
        this.started(vm, dom, paused ? 'Paused' : 'Running', { fresh: true, devices });
      } catch (e) {
        if (this.store.exists('VM', vm)) this.store.update('VM', vm, { scheduled_to_be_resident_on: NULL_REF });
        throw e;
      } finally {
        this.reserved -= needed;
      }
    });
  }

  async pause(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'pause', async () => {
      const rec = this.vm(vm);
      try {
        await this.driver.pause(rec.domid);
      } catch (e) {
        throw vmError(e, vm, 'pause');
      }
      this.store.tx(() => {
        this.store.update('VM', vm, { power_state: 'Paused' });
        const m = rec.metrics;
        if (m !== NULL_REF && this.store.exists('VM_metrics', m)) this.store.update('VM_metrics', m, { state: ['paused'], last_updated: now() });
        updateAllowedOperations(this.store, 'VM', vm);
      });
    });
  }

  async unpause(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'unpause', async () => {
      const rec = this.vm(vm);
      const dom = await this.driver.info(rec.domid);
      if (dom?.state === 'crashed' || dom?.state === 'shutdown') {
        // A preserved crashed domain cannot run again: only hard_shutdown or hard_reboot help.
        fail('VM_CRASHED', vm);
      }
      try {
        await this.driver.unpause(rec.domid);
      } catch (e) {
        throw vmError(e, vm, 'unpause');
      }
      this.store.tx(() => {
        this.store.update('VM', vm, { power_state: 'Running' });
        const m = rec.metrics;
        if (m !== NULL_REF && this.store.exists('VM_metrics', m)) this.store.update('VM_metrics', m, { state: ['running'], last_updated: now() });
        updateAllowedOperations(this.store, 'VM', vm);
      });
    });
  }

  /** Asks the guest to stop and waits for it; returns how it stopped. */
  private async cleanStop(vm: string, reason: 'poweroff' | 'reboot', op: VmOp): Promise<DomainInfo | undefined> {
    const rec = this.vm(vm);
    const t0 = Date.now();
    const total = this.opts.shutdownTimeoutMs;
    try {
      await this.driver.requestShutdown(rec.domid, reason, Math.min(total, 60_000));
    } catch (e) {
      throw vmError(e, vm, op);
    }
    const left = Math.max(1, total - (Date.now() - t0));
    const r = await this.waitDomain(rec.domid, (d) => !d || d.state === 'shutdown' || d.state === 'crashed', left);
    if (r === 'timeout') fail('VM_SHUTDOWN_TIMEOUT', vm, String(total / 1000));
    return r;
  }

  async cleanShutdown(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'clean_shutdown', async () => {
      const domid = this.vm(vm).domid;
      const d = await this.cleanStop(vm, 'poweroff', 'clean_shutdown');
      if (d?.state === 'crashed' || d?.shutdownReason === 'crash') fail('VM_CRASHED', vm);
      if (d?.shutdownReason === 'reboot') fail('VM_REBOOTED', vm);
      await this.destroyAndHalt(vm, domid);
    });
  }

  async cleanReboot(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'clean_reboot', async () => {
      const domid = this.vm(vm).domid;
      const d = await this.cleanStop(vm, 'reboot', 'clean_reboot');
      if (d?.state === 'crashed' || d?.shutdownReason === 'crash') fail('VM_CRASHED', vm);
      if (d && d.shutdownReason !== 'reboot') fail('VM_HALTED', vm);
      await this.reboot(vm, domid);
    });
  }

  async hardShutdown(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'hard_shutdown', async () => {
      const rec = this.vm(vm);
      if (rec.power_state === 'Suspended') {
        await this.dropSuspendImage(ctx, vm);
        this.store.tx(() => {
          this.store.update('VM', vm, { power_state: 'Halted' });
          updateAllowedOperations(this.store, 'VM', vm);
        });
        return;
      }
      await this.destroyAndHalt(vm, rec.domid);
    });
  }

  async hardReboot(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'hard_reboot', async () => {
      const rec = this.vm(vm);
      if (rec.power_state === 'Suspended') {
        // The 2009 xapi allows it: the suspended state is thrown away and the VM boots afresh.
        validateForStart(vm, rec);
        await this.assertCanBootHere(vm, this.hostRef);
        await this.dropSuspendImage(ctx, vm);
        this.store.update('VM', vm, { power_state: 'Halted' });
        const { dom, devices } = await this.build(vm, false, 'hard_reboot');
        this.started(vm, dom, 'Running', { fresh: true, devices });
        return;
      }
      await this.reboot(vm, rec.domid);
    });
  }

  private async dropSuspendImage(ctx: CallContext | undefined, vm: string): Promise<void> {
    const vdi = this.store.field('VM', vm, 'suspend_VDI')!;
    this.store.update('VM', vm, { suspend_VDI: NULL_REF });
    if (vdi !== NULL_REF) await this.storage.destroyVdi(ctx, vdi).catch((err: Error) => this.log.warn({ vm, vdi, err: err.message }, 'could not remove the suspend image'));
  }

  /** The SR a kind of image goes to, from host then pool settings. */
  private pickSr(where: string[]): string | undefined {
    const store = this.store;
    for (const w of where) {
      const [cls, field] = w.split('.') as ['host' | 'pool', string];
      const ref = cls === 'host' ? this.hostRef : this.opts.poolRef;
      const sr = store.any.field(cls, ref, field) as string | undefined;
      if (sr && sr !== NULL_REF && store.exists('SR', sr)) return sr;
    }
    return undefined;
  }

  async suspend(ctx: CallContext, vm: string): Promise<void> {
    await this.withOp(ctx, vm, 'suspend', async () => {
      const rec = this.vm(vm);
      const sr = this.pickSr(['host.suspend_image_sr', 'pool.suspend_image_SR', 'pool.default_SR']);
      if (!sr) fail('VM_NO_SUSPEND_SR', vm);
      const size = Math.ceil((rec.memory_static_max + 32 * MiB) / MiB) * MiB;
      const vdi = await this.storage.createVdi(ctx, {
        SR: sr, virtual_size: size, type: 'suspend', name_label: 'Suspend image',
        name_description: `Suspend image of ${rec.name_label}`, sm_config: { vmhint: rec.uuid },
      });
      ctx.task?.setProgress(0.1);
      try {
        await this.storage.withImage(vdi, true, (file) => this.driver.save(rec.domid, file, this.opts.shutdownTimeoutMs));
      } catch (e) {
        await this.storage.destroyVdi(ctx, vdi).catch(() => undefined);
        throw vmError(e, vm, 'suspend');
      }
      await this.release(this.stopped(vm, 'Suspended', vdi));
    });
  }

  async resume(ctx: CallContext, vm: string, paused: boolean, _force: boolean, op: 'resume' | 'resume_on' = 'resume', host = this.hostRef): Promise<void> {
    await this.withOp(ctx, vm, op, async () => {
      const rec = this.vm(vm);
      if (rec.suspend_VDI === NULL_REF || !this.store.exists('VDI', rec.suspend_VDI)) fail('VM_HAS_NO_SUSPEND_VDI', vm);
      if (host !== this.hostRef && this.store.exists('host', host)) {
        fail('OPERATION_NOT_ALLOWED', `host ${host} is not this host; VMs resume only on the host they are asked on while pools are not supported`);
      }
      memoryOf(rec);
      await this.assertCanBootHere(vm, host);
      const vdi = rec.suspend_VDI;
      const needed = memoryOf(rec).target + memoryOverhead(rec);
      this.reserved += needed;
      try {
        this.store.update('VM', vm, { scheduled_to_be_resident_on: host });
        const { dom, devices } = await this.storage.withImage(vdi, false, (file) => this.build(vm, paused, 'resume', file));
        this.store.update('VM', vm, { suspend_VDI: NULL_REF });
        this.started(vm, dom, paused ? 'Paused' : 'Running', { fresh: false, devices });
      } catch (e) {
        if (this.store.exists('VM', vm)) this.store.update('VM', vm, { scheduled_to_be_resident_on: NULL_REF });
        throw e;
      } finally {
        this.reserved -= needed;
      }
      await this.storage.destroyVdi(ctx, vdi).catch((err: Error) => this.log.warn({ vm, vdi, err: err.message }, 'could not remove the suspend image after resume'));
    });
  }

  /** power_state_reset: for a VM whose domain is known gone; not locked, as it must work when a lock is stuck. */
  async powerStateReset(_ctx: CallContext, vm: string): Promise<void> {
    const rec = this.vm(vm);
    if (rec.is_control_domain) fail('CANNOT_RESET_CONTROL_DOMAIN', vm);
    if (rec.power_state === 'Running' || rec.power_state === 'Paused') {
      if (rec.resident_on === this.hostRef || rec.resident_on === NULL_REF) {
        const dom = await this.domainOf(rec.uuid);
        if (dom) fail('DOMAIN_EXISTS', vm, dom.domid);
      } else if (this.store.exists('host', rec.resident_on) && rec.resident_on !== this.hostRef) {
        const hm = this.store.field('host', rec.resident_on, 'metrics');
        if (hm && hm !== NULL_REF && this.store.field('host_metrics', hm, 'live')) fail('HOST_IS_LIVE', rec.resident_on);
      }
    }
    const what = this.stopped(vm, 'Halted');
    if (rec.power_state === 'Suspended') await this.dropSuspendImage(undefined, vm);
    this.store.tx(() => {
      this.store.update('VM', vm, { current_operations: {} });
      updateAllowedOperations(this.store, 'VM', vm);
    });
    await this.release(what);
  }

  // ---- live changes ----------------------------------------------------------------------------------

  async setVcpusLive(ctx: CallContext, vm: string, n: number): Promise<void> {
    await this.withOp(ctx, vm, 'changing_VCPUs_live', async () => {
      const rec = this.vm(vm);
      if (n < 1 || n > rec.VCPUs_max) fail('INVALID_VALUE', 'nvcpu', n);
      try {
        await this.driver.setVcpus(rec.domid, n);
      } catch (e) {
        throw vmError(e, vm, 'vcpus');
      }
      this.store.update('VM', vm, { VCPUs_at_startup: n });
      const d = await this.driver.info(rec.domid);
      if (d) this.updateMetrics(vm, d);
    });
  }

  async addVcpusParamLive(ctx: CallContext, vm: string, key: string, value: string): Promise<void> {
    await this.withOp(ctx, vm, 'changing_VCPUs_live', async () => {
      const rec = this.vm(vm);
      const p: { weight?: number; cap?: number; mask?: string } = {};
      if (key === 'weight' || key === 'cap') {
        if (!/^\d+$/.test(value)) fail('INVALID_VALUE', key, value);
        p[key] = Number(value);
      } else if (key === 'mask') {
        if (!/^[\d,\s-]+$/.test(value)) fail('INVALID_VALUE', key, value);
        p.mask = value.replace(/\s+/g, '');
      }
      if (Object.keys(p).length) {
        try {
          await this.driver.setVcpuParams(rec.domid, p);
        } catch (e) {
          throw vmError(e, vm, 'vcpus');
        }
      }
      this.store.update('VM', vm, { VCPUs_params: { ...rec.VCPUs_params, [key]: value } });
    });
  }

  async setMemoryTargetLive(ctx: CallContext, vm: string, target: number): Promise<void> {
    await this.withOp(ctx, vm, 'changing_memory_live', async () => {
      const rec = this.vm(vm);
      const mem = memoryOf(rec);
      if (target < mem.dynamicMin || target > mem.dynamicMax) {
        fail('MEMORY_CONSTRAINT_VIOLATION', `memory_dynamic_min <= target <= memory_dynamic_max (${mem.dynamicMin} <= ${target} <= ${mem.dynamicMax})`);
      }
      try {
        await this.driver.setMemoryTarget(rec.domid, target);
      } catch (e) {
        throw vmError(e, vm, 'memory');
      }
      this.store.update('VM', vm, { memory_target: target });
      const d = await this.driver.info(rec.domid);
      if (d) this.updateMetrics(vm, d);
    });
  }

  async setShadowMultiplierLive(ctx: CallContext, vm: string, multiplier: number): Promise<void> {
    await this.withOp(ctx, vm, 'changing_shadow_memory_live', async () => {
      const rec = this.vm(vm);
      if (!isHvm(rec)) fail('VM_HVM_REQUIRED', vm);
      if (!(multiplier >= 1)) fail('INVALID_VALUE', 'multiplier', multiplier);
      try {
        await this.driver.setShadowMemory(rec.domid, shadowMiB({ ...rec, HVM_shadow_multiplier: multiplier }));
      } catch (e) {
        throw vmError(e, vm, 'shadow');
      }
      this.store.update('VM', vm, { HVM_shadow_multiplier: multiplier });
    });
  }

  async sysrq(ctx: CallContext, vm: string, key: string): Promise<void> {
    await this.withOp(ctx, vm, 'send_sysrq', async () => {
      if (!/^[0-9a-zA-Z]$/.test(key)) fail('INVALID_VALUE', 'key', key);
      try {
        await this.driver.sysrq(this.vm(vm).domid, key);
      } catch (e) {
        throw vmError(e, vm, 'sysrq');
      }
    });
  }

  async trigger(ctx: CallContext, vm: string, trigger: string): Promise<void> {
    await this.withOp(ctx, vm, 'send_trigger', async () => {
      if (!['nmi', 'reset', 'init', 'power', 'sleep', 's3resume'].includes(trigger)) fail('INVALID_VALUE', 'trigger', trigger);
      try {
        await this.driver.trigger(this.vm(vm).domid, trigger);
      } catch (e) {
        throw vmError(e, vm, 'trigger');
      }
    });
  }

  // ---- records ------------------------------------------------------------------------------------

  /** The record the VM last booted with (as stored at start), or the current one. */
  async bootRecord(vm: string): Promise<VMRecord> {
    const rec = this.vm(vm);
    if (!rec.last_booted_record) return rec;
    const booted = await this.opts.records.decode('VM', rec.last_booted_record);
    return booted ? ({ ...rec, ...booted } as VMRecord) : rec;
  }

  // ---- metrics -----------------------------------------------------------------------------------

  /** The host's memory as the hypervisor counts it (dom0's /proc sees only dom0's share). */
  private async refreshHostMetrics(): Promise<void> {
    let f: HostFacts;
    try {
      f = await this.driver.host();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'metrics: reading the host\'s facts failed');
      return;
    }
    const metrics = this.store.field('host', this.hostRef, 'metrics');
    if (!metrics || !this.store.exists('host_metrics', metrics)) return;
    if (this.store.field('host_metrics', metrics, 'memory_total') === f.totalMemoryBytes) return;
    this.store.update('host_metrics', metrics, { memory_total: f.totalMemoryBytes, last_updated: now() });
  }

  private async refreshAllMetrics(): Promise<void> {
    await this.refreshHostMetrics();
    let domains: DomainInfo[];
    try {
      domains = await this.driver.list();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'metrics: listing domains failed');
      return;
    }
    for (const d of domains) {
      const vm = this.store.refByUuid('VM', d.uuid);
      if (!vm || this.busy.has(vm)) continue;
      const rec = this.store.get('VM', vm);
      if (!rec || rec.domid !== d.domid) continue;
      this.updateMetrics(vm, d);
      if (this.driver.name !== 'sim') await this.refreshGuestMetrics(vm, d.domid).catch(() => undefined);
    }
  }

  /** VM_guest_metrics from what the guest's agent wrote into xenstore. */
  async refreshGuestMetrics(vm: string, domid: number): Promise<void> {
    const rec = this.store.get('VM', vm);
    if (!rec || rec.domid !== domid) return;
    const kv = await this.driver.xenstoreList(`/local/domain/${domid}`);
    const os: Record<string, string> = {};
    const pv: Record<string, string> = {};
    const networks: Record<string, string> = {};
    const other: Record<string, string> = {};
    const osKeys: Record<string, string> = { os_name: 'name', os_uname: 'uname', os_distro: 'distro', os_majorver: 'major', os_minorver: 'minor' };
    const pvKeys: Record<string, string> = { MajorVersion: 'major', MinorVersion: 'minor', MicroVersion: 'micro', BuildVersion: 'build' };
    for (const [k, v] of Object.entries(kv)) {
      let m: RegExpExecArray | null;
      if ((m = /^data\/(os_\w+)$/.exec(k)) && osKeys[m[1]!]) os[osKeys[m[1]!]!] = v;
      else if ((m = /^attr\/PVAddons\/(\w+)$/.exec(k)) && pvKeys[m[1]!]) pv[pvKeys[m[1]!]!] = v;
      else if ((m = /^attr\/eth(\d+)\/ip$/.exec(k))) networks[`${m[1]}/ip`] = v;
      else if ((m = /^attr\/eth(\d+)\/ipv6\/(\d+)\/addr$/.exec(k))) networks[`${m[1]}/ipv6/${m[2]}`] = v;
      else if ((m = /^data\/(meminfo_\w+|updated)$/.exec(k))) other[m[1]!] = v;
    }
    if (!Object.keys(os).length && !Object.keys(pv).length && !Object.keys(networks).length) return;
    const next = { os_version: os, PV_drivers_version: pv, PV_drivers_up_to_date: Number(pv.major ?? 0) >= 1, networks, other };
    const store = this.store;
    store.tx(() => {
      const cur = store.field('VM', vm, 'guest_metrics')!;
      if (cur !== NULL_REF && store.exists('VM_guest_metrics', cur)) {
        const old = store.get('VM_guest_metrics', cur)!;
        const same = JSON.stringify([old.os_version, old.PV_drivers_version, old.PV_drivers_up_to_date, old.networks, old.other])
          === JSON.stringify([next.os_version, next.PV_drivers_version, next.PV_drivers_up_to_date, next.networks, next.other]);
        if (!same) store.update('VM_guest_metrics', cur, { ...next, last_updated: now() });
      } else {
        const gm = store.create('VM_guest_metrics', { ...next, last_updated: now() });
        store.update('VM', vm, { guest_metrics: gm });
        updateAllowedOperations(store, 'VM', vm);
      }
    });
  }

  /** A fresh mac_seed for a VM's other_config. */
  newMacSeed(): string {
    return randomUUID();
  }
}
