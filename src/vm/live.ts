// Changes to a running domain: VCPUs, VCPU scheduler parameters, memory target, HVM
// shadow memory, and the keys and triggers sent to it. The record follows only when the
// driver accepted the change.
import type { CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { isHvm, memoryOf, shadowMiB } from './config.js';
import { withVmError } from './errors.js';
import type { VmMetrics } from './metrics.js';
import type { VmState } from './state.js';

export class VmLive {
  constructor(private readonly s: VmState, private readonly metrics: VmMetrics) {}

  async setVcpusLive(ctx: CallContext, vm: string, n: number): Promise<void> {
    await this.s.withOp(ctx, vm, 'changing_VCPUs_live', async () => {
      const rec = this.s.vm(vm);
      if (n < 1 || n > rec.VCPUs_max) fail('INVALID_VALUE', 'nvcpu', n);
      await withVmError(vm, 'vcpus', () => this.s.driver.setVcpus(rec.domid, n));
      this.s.store.update('VM', vm, { VCPUs_at_startup: n });
      await this.refreshMetrics(vm, rec.domid);
    });
  }

  async addVcpusParamLive(ctx: CallContext, vm: string, key: string, value: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'changing_VCPUs_live', async () => {
      const rec = this.s.vm(vm);
      const p: { weight?: number; cap?: number; mask?: string } = {};
      if (key === 'weight' || key === 'cap') {
        if (!/^\d+$/.test(value)) fail('INVALID_VALUE', key, value);
        p[key] = Number(value);
      } else if (key === 'mask') {
        if (!/^[\d,\s-]+$/.test(value)) fail('INVALID_VALUE', key, value);
        p.mask = value.replace(/\s+/g, '');
      }
      if (Object.keys(p).length) await withVmError(vm, 'vcpus', () => this.s.driver.setVcpuParams(rec.domid, p));
      this.s.store.update('VM', vm, { VCPUs_params: { ...rec.VCPUs_params, [key]: value } });
    });
  }

  async setMemoryTargetLive(ctx: CallContext, vm: string, target: number): Promise<void> {
    await this.s.withOp(ctx, vm, 'changing_memory_live', async () => {
      const rec = this.s.vm(vm);
      const mem = memoryOf(rec);
      if (target < mem.dynamicMin || target > mem.dynamicMax) {
        fail('MEMORY_CONSTRAINT_VIOLATION', `memory_dynamic_min <= target <= memory_dynamic_max (${mem.dynamicMin} <= ${target} <= ${mem.dynamicMax})`);
      }
      await withVmError(vm, 'memory', () => this.s.driver.setMemoryTarget(rec.domid, target));
      this.s.store.update('VM', vm, { memory_target: target });
      await this.refreshMetrics(vm, rec.domid);
    });
  }

  async setShadowMultiplierLive(ctx: CallContext, vm: string, multiplier: number): Promise<void> {
    await this.s.withOp(ctx, vm, 'changing_shadow_memory_live', async () => {
      const rec = this.s.vm(vm);
      if (!isHvm(rec)) fail('VM_HVM_REQUIRED', vm);
      if (!(multiplier >= 1)) fail('INVALID_VALUE', 'multiplier', multiplier);
      await withVmError(vm, 'shadow', () => this.s.driver.setShadowMemory(rec.domid, shadowMiB({ ...rec, HVM_shadow_multiplier: multiplier })));
      this.s.store.update('VM', vm, { HVM_shadow_multiplier: multiplier });
    });
  }

  async sysrq(ctx: CallContext, vm: string, key: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'send_sysrq', async () => {
      if (!/^[0-9a-zA-Z]$/.test(key)) fail('INVALID_VALUE', 'key', key);
      await withVmError(vm, 'sysrq', () => this.s.driver.sysrq(this.s.vm(vm).domid, key));
    });
  }

  async trigger(ctx: CallContext, vm: string, trigger: string): Promise<void> {
    await this.s.withOp(ctx, vm, 'send_trigger', async () => {
      if (!['nmi', 'reset', 'init', 'power', 'sleep', 's3resume'].includes(trigger)) fail('INVALID_VALUE', 'trigger', trigger);
      await withVmError(vm, 'trigger', () => this.s.driver.trigger(this.s.vm(vm).domid, trigger));
    });
  }

  /** VM_metrics after a change the domain shows at once (VCPUs, memory). */
  private async refreshMetrics(vm: string, domid: number): Promise<void> {
    const d = await this.s.driver.info(domid);
    if (d) this.metrics.update(vm, d);
  }
}
