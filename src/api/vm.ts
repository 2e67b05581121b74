// VM's custom messages: the power operations, clone/copy/provision, live changes,
// host checks, operation checks and the setters xapi declares as messages. The work is
// in src/vm/. (get_allowed_VBD_devices and get_allowed_VIF_devices live with storage and
// networking: src/api/vbd.ts, src/api/network.ts.)
import type { ApiContext, Handler } from './context.js';
import { fail } from '../core/errors.js';
import { assertOperationValid, runOperation, updateAllowedOperations } from '../core/operations.js';
import { createObject } from '../db/objects.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import type { ApiRecord } from '../db/store.js';
import { now } from '../core/datetime.js';
import { memoryOf, checkVcpus, shadowMiB } from '../vm/config.js';
import { refreshOperations } from '../storage/rules.js';
import { cloneVm, provisionVm } from '../vm/clone.js';
import type { VmService } from '../vm/service.js';

const MiB = 1024 * 1024;

const vms = (ctx: ApiContext): VmService => ctx.daemon.vms;

/** Setters of fields that allowed_operations depends on recompute it. */
function setAndRefresh(ctx: ApiContext, vm: string, changes: Partial<VMRecord>): void {
  const store = ctx.daemon.store;
  store.tx(() => {
    store.update('VM', vm, changes);
    updateAllowedOperations(store, 'VM', vm);
  });
}

function editMap(ctx: ApiContext, vm: string, field: 'platform' | 'other_config', key: string, value?: string): void {
  const store = ctx.daemon.store;
  store.tx(() => {
    const cur = { ...(store.field('VM', vm, field) as Record<string, string>) };
    if (value === undefined) delete cur[key];
    else Object.defineProperty(cur, key, { value, enumerable: true, writable: true, configurable: true });
    store.update('VM', vm, { [field]: cur });
    updateAllowedOperations(store, 'VM', vm);
  });
}

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

export const vmHandlers: Record<string, Handler> = {
  // ---- constructor and destructor --------------------------------------------------------

  create(ctx: ApiContext, args: ApiRecord) {
    const store = ctx.daemon.store;
    // A new VM is halted, whatever the caller says, and has no domain.
    const ref = createObject(ctx.daemon.store, 'VM', { ...args, power_state: 'Halted' });
    store.tx(() => {
      store.update('VM', ref, { domid: -1, resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF, is_control_domain: false });
      updateAllowedOperations(store, 'VM', ref);
    });
    return ref;
  },

  destroy(ctx: ApiContext, vm: string) {
    return vms(ctx).state.withOp(ctx, vm, 'destroy', async () => {
      const store = ctx.daemon.store;
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
  },

  // ---- power ------------------------------------------------------------------------------

  start(ctx: ApiContext, vm: string, startPaused: boolean, force: boolean) {
    return vms(ctx).boot.start(ctx, vm, startPaused, force);
  },
  start_on(ctx: ApiContext, vm: string, host: string, startPaused: boolean, force: boolean) {
    if (host === NULL_REF) fail('HANDLE_INVALID', 'host', host);
    return vms(ctx).boot.start(ctx, vm, startPaused, force, 'start_on', host);
  },
  pause(ctx: ApiContext, vm: string) {
    return vms(ctx).power.pause(ctx, vm);
  },
  unpause(ctx: ApiContext, vm: string) {
    return vms(ctx).power.unpause(ctx, vm);
  },
  suspend(ctx: ApiContext, vm: string) {
    return vms(ctx).power.suspend(ctx, vm);
  },
  resume(ctx: ApiContext, vm: string, startPaused: boolean, force: boolean) {
    return vms(ctx).boot.resume(ctx, vm, startPaused, force);
  },
  resume_on(ctx: ApiContext, vm: string, host: string, startPaused: boolean, force: boolean) {
    if (host === NULL_REF) fail('HANDLE_INVALID', 'host', host);
    return vms(ctx).boot.resume(ctx, vm, startPaused, force, 'resume_on', host);
  },
  clean_shutdown(ctx: ApiContext, vm: string) {
    return vms(ctx).power.cleanShutdown(ctx, vm);
  },
  hard_shutdown(ctx: ApiContext, vm: string) {
    return vms(ctx).power.hardShutdown(ctx, vm);
  },
  clean_reboot(ctx: ApiContext, vm: string) {
    return vms(ctx).power.cleanReboot(ctx, vm);
  },
  hard_reboot(ctx: ApiContext, vm: string) {
    return vms(ctx).power.hardReboot(ctx, vm);
  },
  power_state_reset(ctx: ApiContext, vm: string) {
    return vms(ctx).power.powerStateReset(ctx, vm);
  },
  pool_migrate(ctx: ApiContext, vm: string, host: string, _options: Record<string, string>) {
    assertOperationValid(ctx.daemon.store, 'VM', vm, 'pool_migrate');
    if (host === ctx.daemon.hostRef) fail('OPERATION_NOT_ALLOWED', 'the VM already runs on this host, and there is no other host: pools are not supported yet');
    fail('OPERATION_NOT_ALLOWED', 'pool_migrate needs a pool of several hosts; this host is alone (pools are not supported yet)');
  },

  // ---- new VMs and disks ---------------------------------------------------------------------

  clone(ctx: ApiContext, vm: string, newName: string) {
    return cloneVm(vms(ctx).state, ctx, vm, newName);
  },
  copy(ctx: ApiContext, vm: string, newName: string, sr: string) {
    return cloneVm(vms(ctx).state, ctx, vm, newName, sr);
  },
  provision(ctx: ApiContext, vm: string) {
    return provisionVm(vms(ctx).state, ctx, vm);
  },

  // ---- live changes ----------------------------------------------------------------------------

  set_VCPUs_number_live(ctx: ApiContext, vm: string, n: number) {
    return vms(ctx).live.setVcpusLive(ctx, vm, n);
  },
  add_to_VCPUs_params_live(ctx: ApiContext, vm: string, key: string, value: string) {
    return vms(ctx).live.addVcpusParamLive(ctx, vm, key, value);
  },
  set_memory_target_live(ctx: ApiContext, vm: string, target: number) {
    return vms(ctx).live.setMemoryTargetLive(ctx, vm, target);
  },
  set_shadow_multiplier_live(ctx: ApiContext, vm: string, multiplier: number) {
    return vms(ctx).live.setShadowMultiplierLive(ctx, vm, multiplier);
  },
  send_sysrq(ctx: ApiContext, vm: string, key: string) {
    return vms(ctx).live.sysrq(ctx, vm, key);
  },
  send_trigger(ctx: ApiContext, vm: string, trigger: string) {
    return vms(ctx).live.trigger(ctx, vm, trigger);
  },

  // ---- questions ------------------------------------------------------------------------------------

  async get_boot_record(ctx: ApiContext, vm: string) {
    assertOperationValid(ctx.daemon.store, 'VM', vm, 'get_boot_record');
    return vms(ctx).boot.bootRecord(vm);
  },
  maximise_memory(ctx: ApiContext, vm: string, total: number, approximate: boolean) {
    if (total < 0) fail('INVALID_VALUE', 'total', total);
    return maximiseMemory(ctx.daemon.store.get('VM', vm)!, total, approximate);
  },
  async assert_can_boot_here(ctx: ApiContext, vm: string, host: string) {
    if (host === NULL_REF) fail('HANDLE_INVALID', 'host', host);
    const rec = ctx.daemon.store.get('VM', vm)!;
    memoryOf(rec);
    checkVcpus(rec);
    await vms(ctx).boot.assertCanBootHere(vm, host);
  },
  async get_possible_hosts(ctx: ApiContext, vm: string) {
    const rec = ctx.daemon.store.get('VM', vm)!;
    const out: string[] = [];
    for (const host of ctx.daemon.store.all('host')) {
      try {
        memoryOf(rec);
        checkVcpus(rec);
        await vms(ctx).boot.assertCanBootHere(vm, host);
        out.push(host);
      } catch {
        /* not this one */
      }
    }
    return out;
  },
  assert_operation_valid(ctx: ApiContext, vm: string, op: string) {
    assertOperationValid(ctx.daemon.store, 'VM', vm, op);
  },
  update_allowed_operations(ctx: ApiContext, vm: string) {
    updateAllowedOperations(ctx.daemon.store, 'VM', vm);
  },

  // ---- setters declared as messages ---------------------------------------------------------------

  set_platform(ctx: ApiContext, vm: string, value: Record<string, string>) {
    setAndRefresh(ctx, vm, { platform: value });
  },
  add_to_platform(ctx: ApiContext, vm: string, key: string, value: string) {
    editMap(ctx, vm, 'platform', key, value);
  },
  remove_from_platform(ctx: ApiContext, vm: string, key: string) {
    editMap(ctx, vm, 'platform', key);
  },
  set_other_config(ctx: ApiContext, vm: string, value: Record<string, string>) {
    setAndRefresh(ctx, vm, { other_config: value });
  },
  add_to_other_config(ctx: ApiContext, vm: string, key: string, value: string) {
    editMap(ctx, vm, 'other_config', key, value);
  },
  remove_from_other_config(ctx: ApiContext, vm: string, key: string) {
    editMap(ctx, vm, 'other_config', key);
  },
  set_HVM_boot_policy(ctx: ApiContext, vm: string, value: string) {
    setAndRefresh(ctx, vm, { HVM_boot_policy: value });
  },
  set_actions_after_crash(ctx: ApiContext, vm: string, value: VMRecord['actions_after_crash']) {
    setAndRefresh(ctx, vm, { actions_after_crash: value });
  },
  /** Making a VM into a template needs it halted (the make_into_template operation). */
  async set_is_a_template(ctx: ApiContext, vm: string, value: boolean) {
    const store = ctx.daemon.store;
    const cur = store.field('VM', vm, 'is_a_template');
    if (cur === value) return;
    if (!value) {
      setAndRefresh(ctx, vm, { is_a_template: false });
      return;
    }
    await runOperation(store, ctx, 'VM', vm, 'make_into_template', () => {
      store.tx(() => {
        store.update('VM', vm, { is_a_template: true });
        const m = store.field('VM', vm, 'metrics')!;
        if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { last_updated: now() });
      });
    });
  },
};

