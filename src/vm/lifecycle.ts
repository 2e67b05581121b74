// VM records outside the power-state machine: VM.create and VM.destroy, clone/copy/
// provision (clone.ts), the setters xapi declares as messages (they recompute
// allowed_operations), making a template, and the questions about hosts and memory.
import type { CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { runOperation, updateAllowedOperations } from '../core/operations.js';
import { now } from '../core/datetime.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import { createObject } from '../db/objects.js';
import type { ApiRecord } from '../db/store.js';
import { refreshOperations } from '../storage/rules.js';
import type { VmBoot } from './boot.js';
import { cloneVm, provisionVm } from './clone.js';
import { checkVcpus, memoryOf, shadowMiB } from './config.js';
import { MiB, type VmState } from './state.js';

/** The largest memory_static_max whose domain, overhead included, fits in `total` bytes. */
export function maximiseMemory(rec: VMRecord, total: number, approximate: boolean): number {
  let m = total;
  for (let i = 0; i < 20; i++) {
    const overhead = Math.ceil(m / 128) + Math.max(1, rec.VCPUs_max) * MiB + shadowMiB({ ...rec, memory_static_max: m }) * MiB;
    const next = Math.max(0, total - overhead);
    if (next === m) break;
    m = next;
  }
  return approximate ? Math.floor(m / MiB) * MiB : m;
}

export class VmLifecycle {
  constructor(private readonly s: VmState, private readonly boot: VmBoot) {}

  private get store() {
    return this.s.store;
  }

  create(args: ApiRecord): string {
    const store = this.store;
    // A new VM is halted, whatever the caller says, and has no domain.
    const ref = createObject(store, 'VM', { ...args, power_state: 'Halted' });
    store.tx(() => {
      store.update('VM', ref, { domid: -1, resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF, is_control_domain: false });
      updateAllowedOperations(store, 'VM', ref);
    });
    return ref;
  }

  destroy(ctx: CallContext, vm: string): Promise<void> {
    return this.s.withOp(ctx, vm, 'destroy', async () => {
      const store = this.store;
      // As xapi: the VM's devices, consoles, crash dump records and metrics go with it; its VDIs stay.
      store.tx(() => {
        const rec = store.get('VM', vm)!;
        const vdis = rec.VBDs.map((r) => store.field('VBD', r, 'VDI')!).filter((v) => v !== NULL_REF);
        for (const r of rec.VBDs) store.destroy('VBD', r);
        for (const r of rec.VIFs) store.destroy('VIF', r);
        for (const r of rec.consoles) store.destroy('console', r);
        for (const r of rec.crash_dumps) store.destroy('crashdump', r);
        for (const r of rec.VTPMs) store.destroy('VTPM', r);
        store.destroy('VM', vm);
        if (rec.metrics !== NULL_REF && store.exists('VM_metrics', rec.metrics)) store.destroy('VM_metrics', rec.metrics);
        if (rec.guest_metrics !== NULL_REF && store.exists('VM_guest_metrics', rec.guest_metrics)) store.destroy('VM_guest_metrics', rec.guest_metrics);
        for (const vdi of vdis) if (store.exists('VDI', vdi)) refreshOperations(store, { vdi });
      });
    });
  }

  /** VM.clone (copyTo undefined) or VM.copy. */
  clone(ctx: CallContext, vm: string, newName: string, copyTo?: string): Promise<string> {
    return cloneVm(this.s, ctx, vm, newName, copyTo);
  }

  provision(ctx: CallContext, vm: string): Promise<void> {
    return provisionVm(this.s, ctx, vm);
  }

  // ---- setters declared as messages ------------------------------------------------------

  /** Setters of fields that allowed_operations depends on recompute it. */
  set(vm: string, changes: Partial<VMRecord>): void {
    const store = this.store;
    store.tx(() => {
      store.update('VM', vm, changes);
      updateAllowedOperations(store, 'VM', vm);
    });
  }

  /** add_to_ / remove_from_ (value undefined) a map field. */
  editMap(vm: string, field: 'platform' | 'other_config', key: string, value?: string): void {
    const store = this.store;
    store.tx(() => {
      const cur = { ...(store.field('VM', vm, field) as Record<string, string>) };
      if (value === undefined) delete cur[key];
      else Object.defineProperty(cur, key, { value, enumerable: true, writable: true, configurable: true });
      store.update('VM', vm, { [field]: cur });
      updateAllowedOperations(store, 'VM', vm);
    });
  }

  /** Making a VM into a template needs it halted (the make_into_template operation). */
  async setIsATemplate(ctx: CallContext, vm: string, value: boolean): Promise<void> {
    const store = this.store;
    const cur = store.field('VM', vm, 'is_a_template');
    if (cur === value) return;
    if (!value) {
      this.set(vm, { is_a_template: false });
      return;
    }
    await runOperation(store, ctx, 'VM', vm, 'make_into_template', () => {
      store.tx(() => {
        store.update('VM', vm, { is_a_template: true });
        const m = store.field('VM', vm, 'metrics')!;
        if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { last_updated: now() });
      });
    });
  }

  // ---- questions ---------------------------------------------------------------------------

  maximiseMemory(vm: string, total: number, approximate: boolean): number {
    if (total < 0) fail('INVALID_VALUE', 'total', total);
    return maximiseMemory(this.s.vm(vm), total, approximate);
  }

  /** VM.assert_can_boot_here: the VM's own settings, then the host's. */
  async assertCanBootHere(vm: string, host: string): Promise<void> {
    const rec = this.s.vm(vm);
    memoryOf(rec);
    checkVcpus(rec);
    await this.boot.assertCanBootHere(vm, host);
  }

  async possibleHosts(vm: string): Promise<string[]> {
    const out: string[] = [];
    for (const host of this.store.all('host')) {
      try {
        await this.assertCanBootHere(vm, host);
        out.push(host);
      } catch {
        /* not this one */
      }
    }
    return out;
  }
}
