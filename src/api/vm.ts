// VM's custom messages: the power operations, clone/copy/provision, live changes,
// host checks, operation checks and the setters xapi declares as messages. The work is
// in src/vm/: each handler calls the part of the VM service that does it. (The VBD and
// VIF device questions live with storage and networking: src/api/vbd.ts, network.ts.)
import type { ApiContext, Handler } from './context.js';
import { fail } from '../core/errors.js';
import { assertOperationValid, updateAllowedOperations } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import type { ApiRecord } from '../db/store.js';
import type { VmService } from '../vm/service.js';

type StringMap = Record<string, string>;

const vms = (ctx: ApiContext): VmService => ctx.daemon.vms;
/** A host argument that cannot be NULL. */
const host = (ref: string) => (ref === NULL_REF ? fail('HANDLE_INVALID', 'host', ref) : ref);

export const vmHandlers: Record<string, Handler> = {
  create: (ctx: ApiContext, args: ApiRecord) => vms(ctx).lifecycle.create(args),
  destroy: (ctx: ApiContext, vm: string) => vms(ctx).lifecycle.destroy(ctx, vm),

  // ---- power ------------------------------------------------------------------------------
  start: (ctx: ApiContext, vm: string, paused: boolean, force: boolean) => vms(ctx).boot.start(ctx, vm, paused, force),
  start_on: (ctx: ApiContext, vm: string, on: string, paused: boolean, force: boolean) => vms(ctx).boot.start(ctx, vm, paused, force, 'start_on', host(on)),
  pause: (ctx: ApiContext, vm: string) => vms(ctx).power.pause(ctx, vm),
  unpause: (ctx: ApiContext, vm: string) => vms(ctx).power.unpause(ctx, vm),
  suspend: (ctx: ApiContext, vm: string) => vms(ctx).power.suspend(ctx, vm),
  resume: (ctx: ApiContext, vm: string, paused: boolean, force: boolean) => vms(ctx).boot.resume(ctx, vm, paused, force),
  resume_on: (ctx: ApiContext, vm: string, on: string, paused: boolean, force: boolean) => vms(ctx).boot.resume(ctx, vm, paused, force, 'resume_on', host(on)),
  clean_shutdown: (ctx: ApiContext, vm: string) => vms(ctx).power.cleanShutdown(ctx, vm),
  hard_shutdown: (ctx: ApiContext, vm: string) => vms(ctx).power.hardShutdown(ctx, vm),
  clean_reboot: (ctx: ApiContext, vm: string) => vms(ctx).power.cleanReboot(ctx, vm),
  hard_reboot: (ctx: ApiContext, vm: string) => vms(ctx).power.hardReboot(ctx, vm),
  power_state_reset: (ctx: ApiContext, vm: string) => vms(ctx).power.powerStateReset(ctx, vm),
  pool_migrate(ctx: ApiContext, vm: string, to: string, _options: StringMap) {
    assertOperationValid(ctx.daemon.store, 'VM', vm, 'pool_migrate');
    if (to === ctx.daemon.hostRef) fail('OPERATION_NOT_ALLOWED', 'the VM already runs on this host, and there is no other host: pools are not supported yet');
    fail('OPERATION_NOT_ALLOWED', 'pool_migrate needs a pool of several hosts; this host is alone (pools are not supported yet)');
  },

  // ---- new VMs and disks ---------------------------------------------------------------------
  clone: (ctx: ApiContext, vm: string, newName: string) => vms(ctx).lifecycle.clone(ctx, vm, newName),
  copy: (ctx: ApiContext, vm: string, newName: string, sr: string) => vms(ctx).lifecycle.clone(ctx, vm, newName, sr),
  provision: (ctx: ApiContext, vm: string) => vms(ctx).lifecycle.provision(ctx, vm),

  // ---- live changes ----------------------------------------------------------------------------
  set_VCPUs_number_live: (ctx: ApiContext, vm: string, n: number) => vms(ctx).live.setVcpusLive(ctx, vm, n),
  add_to_VCPUs_params_live: (ctx: ApiContext, vm: string, key: string, value: string) => vms(ctx).live.addVcpusParamLive(ctx, vm, key, value),
  set_memory_target_live: (ctx: ApiContext, vm: string, target: number) => vms(ctx).live.setMemoryTargetLive(ctx, vm, target),
  set_shadow_multiplier_live: (ctx: ApiContext, vm: string, m: number) => vms(ctx).live.setShadowMultiplierLive(ctx, vm, m),
  send_sysrq: (ctx: ApiContext, vm: string, key: string) => vms(ctx).live.sysrq(ctx, vm, key),
  send_trigger: (ctx: ApiContext, vm: string, trigger: string) => vms(ctx).live.trigger(ctx, vm, trigger),

  // ---- questions ------------------------------------------------------------------------------------
  async get_boot_record(ctx: ApiContext, vm: string) {
    assertOperationValid(ctx.daemon.store, 'VM', vm, 'get_boot_record');
    return vms(ctx).boot.bootRecord(vm);
  },
  maximise_memory: (ctx: ApiContext, vm: string, total: number, approximate: boolean) => vms(ctx).lifecycle.maximiseMemory(vm, total, approximate),
  assert_can_boot_here: (ctx: ApiContext, vm: string, on: string) => vms(ctx).lifecycle.assertCanBootHere(vm, host(on)),
  get_possible_hosts: (ctx: ApiContext, vm: string) => vms(ctx).lifecycle.possibleHosts(vm),
  assert_operation_valid: (ctx: ApiContext, vm: string, op: string) => assertOperationValid(ctx.daemon.store, 'VM', vm, op),
  update_allowed_operations: (ctx: ApiContext, vm: string) => updateAllowedOperations(ctx.daemon.store, 'VM', vm),

  // ---- setters declared as messages ---------------------------------------------------------------
  set_platform: (ctx: ApiContext, vm: string, value: StringMap) => vms(ctx).lifecycle.set(vm, { platform: value }),
  add_to_platform: (ctx: ApiContext, vm: string, key: string, value: string) => vms(ctx).lifecycle.editMap(vm, 'platform', key, value),
  remove_from_platform: (ctx: ApiContext, vm: string, key: string) => vms(ctx).lifecycle.editMap(vm, 'platform', key),
  set_other_config: (ctx: ApiContext, vm: string, value: StringMap) => vms(ctx).lifecycle.set(vm, { other_config: value }),
  add_to_other_config: (ctx: ApiContext, vm: string, key: string, value: string) => vms(ctx).lifecycle.editMap(vm, 'other_config', key, value),
  remove_from_other_config: (ctx: ApiContext, vm: string, key: string) => vms(ctx).lifecycle.editMap(vm, 'other_config', key),
  set_HVM_boot_policy: (ctx: ApiContext, vm: string, value: string) => vms(ctx).lifecycle.set(vm, { HVM_boot_policy: value }),
  set_actions_after_crash: (ctx: ApiContext, vm: string, value: VMRecord['actions_after_crash']) => vms(ctx).lifecycle.set(vm, { actions_after_crash: value }),
  set_is_a_template: (ctx: ApiContext, vm: string, value: boolean) => vms(ctx).lifecycle.setIsATemplate(ctx, vm, value),
};
