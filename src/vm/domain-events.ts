// What happens when a domain changes by itself: the VM record follows the domain, and a
// guest that halted, rebooted or crashed gets its actions_after_* carried out. Domain
// events for a VM that has an operation running are left to that operation; whatever it
// did not consume is looked at again when it ends (resync).
import type { DomainEvent, DomainInfo } from '../../drivers/driver.js';
import { toMillis } from '../core/datetime.js';
import { INTERNAL } from '../core/context.js';
import { XenApiError } from '../core/errors.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import type { VmBoot } from './boot.js';
import { isHvm, vdevName } from './config.js';
import type { VmMetrics } from './metrics.js';
import type { VmRecords } from './records.js';
import { MiB, type Power, type VmState } from './state.js';

export class VmDomainEvents {
  constructor(
    private readonly s: VmState,
    private readonly records: VmRecords,
    private readonly metrics: VmMetrics,
    private readonly boot: VmBoot,
  ) {}

  onDomainEvent(e: DomainEvent): void {
    const { store, log } = this.s;
    this.s.notify(e);
    const uuid = e.kind === 'changed' ? e.info.uuid : e.uuid;
    const vm = store.refByUuid('VM', uuid);
    if (!vm || this.s.closed) return;
    if (e.kind === 'guest') {
      void this.metrics.refreshGuest(vm, e.domid).catch((err: Error) => log.warn({ vm, err: err.message }, 'guest metrics refresh failed'));
      return;
    }
    if (this.s.leaveToOperation(vm)) return;
    const rec = store.get('VM', vm);
    const domid = e.kind === 'changed' ? e.info.domid : e.domid;
    const live = rec && (rec.power_state === 'Running' || rec.power_state === 'Paused');
    if (live && rec.domid !== domid) {
      // News of another domain than the one the VM runs in (an old one, reported late):
      // look at what runs for this VM now instead.
      this.resync(vm);
      return;
    }
    if (!live && e.kind === 'gone') return;
    this.s.serial(vm, () => this.sync(vm, e.kind === 'changed' ? e.info : undefined));
  }

  /** Looks at the VM's domain again (after an operation that may have left changes unhandled). */
  resync(vm: string): void {
    if (this.s.closed || !this.s.store.exists('VM', vm)) return;
    this.s.serial(vm, async () => {
      const rec = this.s.store.get('VM', vm);
      if (!rec) return;
      await this.sync(vm, await this.s.domainOf(rec.uuid, rec.domid));
    });
  }

  /** Brings the VM record in line with its domain, carrying out actions_after_* where the
   * guest stopped by itself. */
  async sync(vm: string, dom: DomainInfo | undefined): Promise<void> {
    const rec = this.s.store.get('VM', vm);
    if (!rec || rec.is_control_domain || this.s.closed) return;
    if (this.s.leaveToOperation(vm)) return;
    const live = rec.power_state === 'Running' || rec.power_state === 'Paused';
    if (!dom) {
      if (live && (rec.resident_on === this.s.hostRef || rec.resident_on === NULL_REF)) {
        this.s.log.warn({ vm, domid: rec.domid }, 'the domain of a running VM vanished: the VM is halted');
        await this.records.halted(vm);
      }
      return;
    }
    switch (dom.state) {
      case 'running':
        if (rec.power_state === 'Paused') this.records.setPower(vm, 'Running', dom);
        else if (!live) this.adopt(vm, dom, 'Running');
        else if (rec.domid !== dom.domid) this.records.setPower(vm, rec.power_state, dom);
        break;
      case 'paused':
        if (rec.power_state === 'Running') this.records.setPower(vm, 'Paused', dom);
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
    this.s.log.info({ domid: dom.domid, uuid: dom.uuid }, 'destroying a stopped domain the database does not count as running');
    await this.s.driver.destroy(dom.domid).catch(() => undefined);
  }

  /** A domain the database did not know about: the VM now runs (or is paused) here. */
  private adopt(vm: string, dom: DomainInfo, power: Power): void {
    this.s.log.warn({ vm, domid: dom.domid, power }, 'adopting a domain the database did not count as running');
    const rec = this.s.vm(vm);
    if (rec.power_state === 'Suspended' && rec.suspend_VDI !== NULL_REF) {
      const vdi = rec.suspend_VDI;
      this.s.store.update('VM', vm, { suspend_VDI: NULL_REF });
      void this.s.storage.destroyVdi(undefined, vdi).catch((err: Error) => this.s.log.warn({ vdi, err: err.message }, 'could not remove a suspend image'));
    }
    this.records.started(vm, dom, power, { fresh: false, devices: this.deviceNames(rec) });
  }

  private deviceNames(rec: VMRecord): Map<string, string> {
    const hvm = isHvm(rec);
    return new Map(this.s.vbds(rec).map(([r, b]) => [r, vdevName(b.userdevice, hvm)]));
  }

  /** A guest halted or rebooted itself: actions_after_shutdown / actions_after_reboot. */
  private async afterShutdown(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.s.vm(vm);
    const action = dom.shutdownReason === 'reboot' ? rec.actions_after_reboot : rec.actions_after_shutdown;
    this.s.log.info({ vm, domid: dom.domid, reason: dom.shutdownReason, action }, 'the guest stopped by itself');
    await this.internal(vm, action === 'restart' ? 'hard_reboot' : 'hard_shutdown', async () => {
      if (action === 'restart') await this.autoRestart(vm, dom);
      else await this.records.destroyAndHalt(vm, dom.domid);
    });
  }

  /** A guest crashed: actions_after_crash, downgraded to destroy shortly after a start. */
  private async afterCrash(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.s.vm(vm);
    let action = rec.actions_after_crash;
    if (Date.now() - this.startTime(rec) < this.s.opts.crashGuardMs) {
      const downgraded = { restart: 'destroy', rename_restart: 'destroy', coredump_and_restart: 'coredump_and_destroy' } as const;
      const d = (downgraded as Record<string, VMRecord['actions_after_crash']>)[action];
      if (d) {
        this.s.log.warn({ vm, action, instead: d }, 'the guest crashed soon after it started: not restarting it');
        action = d;
      }
    }
    this.s.log.warn({ vm, domid: dom.domid, action }, 'the guest crashed');
    if (action === 'preserve') {
      this.records.setPower(vm, 'Paused', dom);
      return;
    }
    const restart = action === 'restart' || action === 'rename_restart' || action === 'coredump_and_restart';
    await this.internal(vm, restart ? 'hard_reboot' : 'hard_shutdown', async () => {
      if (action.startsWith('coredump')) await this.coredump(vm, dom.domid);
      if (restart) await this.autoRestart(vm, dom);
      else await this.records.destroyAndHalt(vm, dom.domid);
    });
  }

  /** When the VM's current domain started (VM_metrics.start_time), 0 if unknown. */
  private startTime(rec: VMRecord): number {
    return toMillis(this.s.store.field('VM_metrics', rec.metrics, 'start_time') ?? '') ?? 0;
  }

  /** An action the daemon starts itself, locked like a client's operation. */
  private async internal(vm: string, op: string, fn: () => Promise<void>): Promise<void> {
    try {
      await this.s.withOp(INTERNAL, vm, op, fn);
    } catch (e) {
      if (e instanceof XenApiError && e.code === 'OTHER_OPERATION_IN_PROGRESS') return; // that operation looks again when it ends
      this.s.log.error({ vm, op, err: e instanceof Error ? e.message : String(e) }, 'automatic action failed');
    }
  }

  private async coredump(vm: string, domid: number): Promise<void> {
    const { storage, log } = this.s;
    const sr = this.s.pickSr(['host.crash_dump_sr', 'pool.crash_dump_SR']);
    if (!sr) {
      log.warn({ vm }, 'no crash dump SR (host.crash_dump_sr or pool.crash_dump_SR): no core dump taken');
      return;
    }
    const rec = this.s.vm(vm);
    const vdi = await storage.createVdi(undefined, {
      SR: sr, virtual_size: Math.ceil((rec.memory_static_max + 16 * MiB) / MiB) * MiB, type: 'crashdump',
      name_label: 'Crash dump', name_description: `Core of ${rec.name_label}`, sm_config: { vmhint: rec.uuid },
    });
    try {
      await storage.withImage(vdi, true, (file) => this.s.driver.dumpCore(domid, file));
      this.s.store.create('crashdump', { VM: vm, VDI: vdi, other_config: {} });
    } catch (e) {
      await storage.destroyVdi(undefined, vdi).catch(() => undefined);
      log.error({ vm, err: (e as Error).message }, 'core dump failed');
    }
  }

  /** restart after a guest reboot or crash, with xapi's growing delay for guests that keep restarting. */
  private async autoRestart(vm: string, dom: DomainInfo): Promise<void> {
    const rec = this.s.vm(vm);
    const other = { ...rec.other_config };
    if (Date.now() - this.startTime(rec) < this.s.opts.rebootGuardMs) {
      const last = Number(other.last_artificial_reboot_delay);
      const delay = Number.isFinite(last) && other.last_artificial_reboot_delay !== undefined ? Math.min(60, last === 0 ? 2 : last * 2) : 0;
      other.last_artificial_reboot_delay = String(delay);
      this.s.store.update('VM', vm, { other_config: other });
      if (delay > 0) {
        this.s.log.warn({ vm, delay }, 'the guest restarts too often: waiting before restarting it');
        await new Promise((r) => setTimeout(r, delay * 1000));
      }
    } else if (other.last_artificial_reboot_delay !== undefined) {
      delete other.last_artificial_reboot_delay;
      this.s.store.update('VM', vm, { other_config: other });
    }
    try {
      await this.boot.reboot(vm, dom.domid);
    } catch (e) {
      this.s.log.error({ vm, err: e instanceof Error ? e.message : String(e) }, 'restart failed: the VM is halted');
      await this.records.halted(vm);
    }
  }
}
