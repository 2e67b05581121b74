// VM's operation rules: which operations a VM admits now, and the precise error for
// each one it does not, checked in xapi's order (SEMANTICS §5, the 2009 xapi):
//   1. power state (VM_BAD_POWER_STATE [vm, expected, actual], lower case);
//   2. (operations in progress: OTHER_OPERATION_IN_PROGRESS, by src/api/operations.ts);
//   3. templates (VM_IS_TEMPLATE), provision on a non-template;
//   4. the control domain;
//   5. HVM guests without PV drivers.
import type { ObjectStore } from '../db/store.js';
import type { Records } from '../datamodel/records.js';
import { NULL_REF } from '../datamodel/model.js';
import { defineOperations, refusal, type Refusal } from '../core/operations.js';

type Power = 'Halted' | 'Paused' | 'Running' | 'Suspended';

/** The operations listed in allowed_operations (those a client can start now). */
export const VM_LISTED_OPS = [
  'clone', 'copy', 'provision', 'start', 'start_on', 'pause', 'unpause', 'clean_shutdown', 'clean_reboot',
  'hard_shutdown', 'hard_reboot', 'suspend', 'resume', 'resume_on', 'destroy', 'changing_VCPUs_live', 'make_into_template',
] as const;

const R: Power = 'Running';
/** The power states each operation accepts, in the order the error lists them. */
export const POWER_STATES: Record<string, Power[]> = {
  start: ['Halted'], start_on: ['Halted'], provision: ['Halted'], make_into_template: ['Halted'], destroy: ['Halted'],
  unpause: ['Paused'],
  resume: ['Suspended'], resume_on: ['Suspended'], csvm: ['Suspended'],
  pause: [R], suspend: [R], clean_shutdown: [R], clean_reboot: [R], pool_migrate: [R], migrate_send: [R],
  send_sysrq: [R], send_trigger: [R], data_source_op: [R],
  changing_VCPUs_live: [R], changing_memory_live: [R], changing_shadow_memory_live: [R],
  clone: ['Halted', 'Suspended'], copy: ['Halted', 'Suspended'], export: ['Halted', 'Suspended'],
  hard_shutdown: ['Paused', 'Suspended', R], get_boot_record: ['Paused', 'Suspended', R], hard_reboot: ['Paused', 'Suspended', R],
};

/** Operations on the control domain that are allowed anyway. */
const DOM0_EXEMPT = new Set(['changing_memory_live', 'changing_shadow_memory_live', 'data_source_op', 'get_boot_record', 'assert_operation_valid', 'update_allowed_operations']);
/** What a template may do. */
const TEMPLATE_OK = new Set(['clone', 'copy', 'export', 'provision']);
/** Operations that need PV drivers in an HVM guest. */
const NEEDS_PV_DRIVERS = new Set(['suspend', 'pool_migrate', 'clean_shutdown', 'clean_reboot', 'changing_VCPUs_live']);

/** Does this (HVM) VM's guest report PV drivers? */
export function hasPvDrivers(store: ObjectStore, guestMetrics: string): boolean {
  if (!guestMetrics || guestMetrics === NULL_REF) return false;
  const drivers = store.view('VM_guest_metrics', guestMetrics)?.PV_drivers_version as Record<string, string> | undefined;
  return !!drivers && Object.keys(drivers).length > 0;
}

export function badPowerState(vm: string, allowed: Power[], actual: Power): Refusal {
  return refusal('VM_BAD_POWER_STATE', vm, allowed.map((s) => s.toLowerCase()).join(', '), actual.toLowerCase());
}

/** Whether the pool lets a suspended VM be cloned or copied (other_config:allow_clone_suspended_vm). */
function cloneSuspendedAllowed(store: ObjectStore): boolean {
  for (const pool of store.viewAll('pool').values()) return (pool.other_config as Record<string, string>).allow_clone_suspended_vm === 'true';
  return false;
}

/** The VM's record is the store's shared one: allowed_operations asks this for every
 * operation in turn, and a refusal becomes an error only when it is thrown. */
export function vmCheck(store: ObjectStore, ref: string, op: string): Refusal | undefined {
  const f = store.view('VM', ref) as Readonly<Records['VM']> | undefined;
  if (!f) return refusal('HANDLE_INVALID', 'VM', ref);
  const power = f.power_state;
  const allowed = POWER_STATES[op];
  if (allowed && !allowed.includes(power)) return badPowerState(ref, allowed, power);
  if ((op === 'clone' || op === 'copy') && power === 'Suspended' && !cloneSuspendedAllowed(store)) {
    return badPowerState(ref, ['Halted'], power);
  }
  if (f.is_a_template) {
    const isDefault = f.other_config.default_template === 'true';
    if (!TEMPLATE_OK.has(op) && !(op === 'destroy' && !isDefault)) return refusal('VM_IS_TEMPLATE', ref);
  } else if (op === 'provision') {
    return refusal('PROVISION_ONLY_ALLOWED_ON_TEMPLATE');
  }
  if (f.is_control_domain && !DOM0_EXEMPT.has(op)) return refusal('OPERATION_NOT_ALLOWED', 'Operations on domain 0 are not allowed');
  if (f.HVM_boot_policy !== '' && power === 'Running' && NEEDS_PV_DRIVERS.has(op) && !hasPvDrivers(store, f.guest_metrics)) {
    return refusal('OPERATION_NOT_ALLOWED', `${op} not possible for HVM domains (are PV drivers installed?)`);
  }
  return undefined;
}

export function defineVmOperations(): void {
  defineOperations('VM', {
    ops: VM_LISTED_OPS,
    check: vmCheck,
    compatible: [['clone', 'copy', 'export'], ['get_boot_record']],
  });
}
