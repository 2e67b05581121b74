// The power operations other than booting: pause and unpause, clean and hard shutdown
// and reboot, suspend, and power_state_reset. Each runs under the VM's operation lock
// (VmState.withOp), so a conflicting call meanwhile gets OTHER_OPERATION_IN_PROGRESS.
import type { DomainInfo } from '../../drivers/driver.js';
import type { CallContext } from '../core/context.js';
import { now } from '../core/datetime.js';
import { fail } from '../core/errors.js';
import { updateAllowedOperations } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import type { VmBoot } from './boot.js';
import { validateForStart } from './config.js';
import { withVmError, type VmOp } from './errors.js';
import type { VmRecords } from './records.js';
import { MiB, type VmState } from './state.js';

export class VmPower {
  constructor(private readonly s: VmState, private readonly records: VmRecords, private readonly boot: VmBoot) {}

  async pause(ctx: CallContext, vm: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'pause', async () => {
      const rec = this.s.vm(vm);
      await withVmError(vm, 'pause', () => this.s.driver.pause(rec.domid));
      this.setPaused(vm, rec, true);
    });
  }

  async unpause(ctx: CallContext, vm: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'unpause', async () => {
      const rec = this.s.vm(vm);
      const dom = await this.s.driver.info(rec.domid);
      if (dom?.state === 'crashed' || dom?.state === 'shutdown') {
        // A preserved crashed domain cannot run again: only hard_shutdown or hard_reboot help.
        fail('VM_CRASHED', vm);
      }
      await withVmError(vm, 'unpause', () => this.s.driver.unpause(rec.domid));
      this.setPaused(vm, rec, false);
    });
  }

  /** The record after a pause or unpause: the domain is the same, only its state changed. */
  private setPaused(vm: string, rec: VMRecord, paused: boolean): void {
    const store = this.s.store;
    store.tx(() => {
      store.update('VM', vm, { power_state: paused ? 'Paused' : 'Running' });
      const m = rec.metrics;
      if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { state: [paused ? 'paused' : 'running'], last_updated: now() });
      updateAllowedOperations(store, 'VM', vm);
    });
  }

  /** Asks the guest to stop and waits for it; returns how it stopped, unless it crashed
   * meanwhile (VM_CRASHED). */
  private async cleanStop(vm: string, reason: 'poweroff' | 'reboot', op: VmOp): Promise<DomainInfo | undefined> {
    const rec = this.s.vm(vm);
    const t0 = Date.now();
    const total = this.s.opts.shutdownTimeoutMs;
    await withVmError(vm, op, () => this.s.driver.requestShutdown(rec.domid, reason, Math.min(total, 60_000)));
    const left = Math.max(1, total - (Date.now() - t0));
    const r = await this.s.waitDomain(rec.domid, (d) => !d || d.state === 'shutdown' || d.state === 'crashed', left);
    if (r === 'timeout') fail('VM_SHUTDOWN_TIMEOUT', vm, String(total / 1000));
    if (r?.state === 'crashed' || r?.shutdownReason === 'crash') fail('VM_CRASHED', vm);
    return r;
  }

  async cleanShutdown(ctx: CallContext, vm: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'clean_shutdown', async () => {
      const domid = this.s.vm(vm).domid;
      const d = await this.cleanStop(vm, 'poweroff', 'clean_shutdown');
      if (d?.shutdownReason === 'reboot') fail('VM_REBOOTED', vm);
      await this.records.destroyAndHalt(vm, domid);
    });
  }

  async cleanReboot(ctx: CallContext, vm: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'clean_reboot', async () => {
      const domid = this.s.vm(vm).domid;
      const d = await this.cleanStop(vm, 'reboot', 'clean_reboot');
      if (d && d.shutdownReason !== 'reboot') fail('VM_HALTED', vm);
      await this.boot.reboot(vm, domid);
    });
  }

  async hardShutdown(ctx: CallContext, vm: string): Promise<void> {
    const store = this.s.store;
    await this.s.withOp(ctx, vm, 'hard_shutdown', async () => {
      const rec = this.s.vm(vm);
      if (rec.power_state === 'Suspended') {
        await this.dropSuspendImage(ctx, vm);
        store.tx(() => {
          store.update('VM', vm, { power_state: 'Halted' });
          updateAllowedOperations(store, 'VM', vm);
        });
        return;
      }
      await this.records.destroyAndHalt(vm, rec.domid);
    });
  }

  async hardReboot(ctx: CallContext, vm: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'hard_reboot', async () => {
      const rec = this.s.vm(vm);
      if (rec.power_state === 'Suspended') {
        // The 2009 xapi allows it: the suspended state is thrown away and the VM boots afresh.
        validateForStart(vm, rec);
        await this.boot.assertCanBootHere(vm, this.s.hostRef);
        await this.dropSuspendImage(ctx, vm);
        this.s.store.update('VM', vm, { power_state: 'Halted' });
        const { dom, devices } = await this.boot.build(vm, false, 'hard_reboot');
        this.records.started(vm, dom, 'Running', { fresh: true, devices });
        return;
      }
      await this.boot.reboot(vm, rec.domid);
    });
  }

  private async dropSuspendImage(ctx: CallContext | undefined, vm: string): Promise<void> {
    const vdi = this.s.store.field('VM', vm, 'suspend_VDI')!;
    this.s.store.update('VM', vm, { suspend_VDI: NULL_REF });
    if (vdi !== NULL_REF) await this.s.storage.destroyVdi(ctx, vdi).catch((err: Error) => this.s.log.warn({ vm, vdi, err: err.message }, 'could not remove the suspend image'));
  }

  async suspend(ctx: CallContext, vm: string): Promise<void> {
    const storage = this.s.storage;
    await this.s.withOp(ctx, vm, 'suspend', async () => {
      const rec = this.s.vm(vm);
      const sr = this.s.pickSr(['host.suspend_image_sr', 'pool.suspend_image_SR', 'pool.default_SR']);
      if (!sr) fail('VM_NO_SUSPEND_SR', vm);
      const size = Math.ceil((rec.memory_static_max + 32 * MiB) / MiB) * MiB;
      const vdi = await storage.createVdi(ctx, {
        SR: sr, virtual_size: size, type: 'suspend', name_label: 'Suspend image',
        name_description: `Suspend image of ${rec.name_label}`, sm_config: { vmhint: rec.uuid },
      });
      ctx.task?.setProgress(0.1);
      try {
        await withVmError(vm, 'suspend', () => storage.withImage(vdi, true, (file) => this.s.driver.save(rec.domid, file, this.s.opts.shutdownTimeoutMs)));
      } catch (e) {
        await storage.destroyVdi(ctx, vdi).catch(() => undefined);
        throw e;
      }
      await this.records.release(this.records.stopped(vm, 'Suspended', vdi));
    });
  }

  /** power_state_reset: for a VM whose domain is known gone; not locked, as it must work when a lock is stuck. */
  async powerStateReset(_ctx: CallContext, vm: string): Promise<void> {
    const { store, hostRef } = this.s;
    const rec = this.s.vm(vm);
    if (rec.is_control_domain) fail('CANNOT_RESET_CONTROL_DOMAIN', vm);
    if (rec.power_state === 'Running' || rec.power_state === 'Paused') {
      if (rec.resident_on === hostRef || rec.resident_on === NULL_REF) {
        const dom = await this.s.domainOf(rec.uuid);
        if (dom) fail('DOMAIN_EXISTS', vm, dom.domid);
      } else if (store.exists('host', rec.resident_on) && rec.resident_on !== hostRef) {
        const hm = store.field('host', rec.resident_on, 'metrics');
        if (hm && hm !== NULL_REF && store.field('host_metrics', hm, 'live')) fail('HOST_IS_LIVE', rec.resident_on);
      }
    }
    const what = this.records.stopped(vm, 'Halted');
    if (rec.power_state === 'Suspended') await this.dropSuspendImage(undefined, vm);
    store.tx(() => {
      store.update('VM', vm, { current_operations: {} });
      updateAllowedOperations(store, 'VM', vm);
    });
    await this.records.release(what);
  }
}
