// allowed_operations for SR, VDI and VBD: what each operation needs, in the order
// xapi checks it, so that a refused call and allowed_operations always agree.
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import { XenApiError } from '../core/errors.js';
import { defineOperations, updateAllowedOperations } from '../core/operations.js';

const err = (code: ConstructorParameters<typeof XenApiError>[0], ...p: unknown[]) => new XenApiError(code, p);

/** The capabilities of the SM record for an SR type (SM records mirror the plugins). */
export function smCapabilities(store: ObjectStore, type: string): string[] | undefined {
  for (const rec of store.allRecords('SM').values()) if (rec.type === type) return rec.capabilities as string[];
  return undefined;
}

export function pluggedHere(store: ObjectStore, sr: string): boolean {
  return (store.field('SR', sr, 'PBDs') ?? []).some((p) => store.field('PBD', p, 'currently_attached') === true);
}

/** VBDs through which a VM is using the VDI now. */
export function activeVbds(store: ObjectStore, vdi: string): string[] {
  return (store.field('VDI', vdi, 'VBDs') ?? []).filter((v) => store.field('VBD', v, 'currently_attached') === true);
}

const SR_OPS = ['scan', 'destroy', 'forget', 'plug', 'unplug', 'vdi_create', 'vdi_introduce', 'vdi_destroy', 'vdi_resize', 'vdi_clone', 'vdi_snapshot'] as const;
const SR_CAP: Record<string, string> = {
  vdi_create: 'VDI_CREATE', vdi_introduce: 'VDI_INTRODUCE', vdi_destroy: 'VDI_DELETE', vdi_resize: 'VDI_RESIZE',
  vdi_clone: 'VDI_CLONE', vdi_snapshot: 'VDI_SNAPSHOT',
};

export function srCheck(store: ObjectStore, sr: string, op: string): XenApiError | undefined {
  const type = store.field('SR', sr, 'type') ?? '';
  const caps = smCapabilities(store, type);
  if (op === 'destroy' || op === 'forget') {
    return pluggedHere(store, sr) ? err('SR_HAS_PBD', sr) : undefined;
  }
  if (op === 'plug' || op === 'unplug') return caps ? undefined : err('SR_UNKNOWN_DRIVER', type);
  if (!caps) return err('SR_UNKNOWN_DRIVER', type);
  const cap = SR_CAP[op];
  if (cap && !caps.includes(cap)) return err('SR_OPERATION_NOT_SUPPORTED', sr);
  if (!pluggedHere(store, sr)) return err('SR_HAS_NO_PBDS', sr);
  return undefined;
}

const VDI_OPS = ['clone', 'copy', 'resize', 'resize_online', 'snapshot', 'destroy', 'forget'] as const;
const VDI_SR_OP: Record<string, string | undefined> = {
  clone: 'vdi_clone', snapshot: 'vdi_snapshot', resize: 'vdi_resize', destroy: 'vdi_destroy', copy: 'scan', resize_online: 'scan',
};

export function vdiCheck(store: ObjectStore, vdi: string, op: string): XenApiError | undefined {
  const rec = store.get('VDI', vdi);
  if (!rec) return err('HANDLE_INVALID', 'VDI', vdi);
  const sr = rec.SR;
  if (op === 'resize_online') {
    const caps = smCapabilities(store, store.field('SR', sr, 'type') ?? '') ?? [];
    if (!caps.includes('VDI_RESIZE_ONLINE')) return err('SR_OPERATION_NOT_SUPPORTED', sr);
  }
  const srOp = VDI_SR_OP[op];
  if (srOp) {
    const e = srCheck(store, sr, srOp);
    if (e) return e;
  }
  // A disk in use by a VM allows only what does not disturb it.
  if (op !== 'snapshot' && op !== 'resize_online' && activeVbds(store, vdi).length > 0) return err('VDI_IN_USE', vdi, op);
  if (op !== 'destroy' && op !== 'forget' && rec.missing) return err('VDI_MISSING', sr, vdi);
  return undefined;
}

export function vmPowerState(store: ObjectStore, vm: string): string {
  return store.field('VM', vm, 'power_state') ?? 'Halted';
}

const VBD_OPS = ['eject', 'insert', 'plug', 'unplug', 'unplug_force'] as const;

export function vbdCheck(store: ObjectStore, vbd: string, op: string): XenApiError | undefined {
  const rec = store.get('VBD', vbd);
  if (!rec) return err('HANDLE_INVALID', 'VBD', vbd);
  const power = vmPowerState(store, rec.VM);
  switch (op) {
    case 'plug':
    case 'unplug':
    case 'unplug_force':
      if (power !== 'Running') return err('VM_BAD_POWER_STATE', rec.VM, 'running', power.toLowerCase());
      if (op === 'plug' && rec.currently_attached) return err('DEVICE_ALREADY_ATTACHED', vbd);
      if (op !== 'plug' && !rec.currently_attached) return err('DEVICE_ALREADY_DETACHED', vbd);
      if (op === 'unplug' && !rec.unpluggable) return err('VBD_NOT_UNPLUGGABLE', vbd);
      if (rec.type === 'CD' && (store.field('VM', rec.VM, 'HVM_boot_policy') ?? '') !== '') {
        return err('OPERATION_NOT_ALLOWED', 'HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected');
      }
      return undefined;
    case 'insert':
    case 'eject':
      if (power === 'Suspended') return err('VM_BAD_POWER_STATE', rec.VM, 'running', 'suspended');
      if (rec.type !== 'CD') return err('VBD_NOT_REMOVABLE_MEDIA', vbd);
      if (op === 'insert' && !rec.empty) return err('VBD_NOT_EMPTY', vbd);
      if (op === 'eject' && rec.empty) return err('VBD_IS_EMPTY', vbd);
      return undefined;
    default:
      return undefined;
  }
}

defineOperations('SR', {
  ops: SR_OPS,
  check: srCheck,
  compatible: [['scan', 'vdi_create', 'vdi_introduce', 'vdi_destroy', 'vdi_resize', 'vdi_clone', 'vdi_snapshot']],
});
defineOperations('VDI', { ops: VDI_OPS, check: vdiCheck });
defineOperations('VBD', { ops: VBD_OPS, check: vbdCheck });

/** Recomputes allowed_operations after a change that may affect them. */
export function refreshOperations(store: ObjectStore, what: { sr?: string; vdi?: string; vbd?: string; vm?: string }): void {
  store.tx(() => {
    const vdis = new Set<string>();
    const vbds = new Set<string>();
    if (what.sr && store.exists('SR', what.sr)) {
      updateAllowedOperations(store, 'SR', what.sr);
      for (const v of store.field('SR', what.sr, 'VDIs') ?? []) vdis.add(v);
    }
    if (what.vdi) vdis.add(what.vdi);
    if (what.vbd) vbds.add(what.vbd);
    if (what.vm && store.exists('VM', what.vm)) for (const b of store.field('VM', what.vm, 'VBDs') ?? []) vbds.add(b);
    for (const b of vbds) {
      if (!store.exists('VBD', b)) continue;
      updateAllowedOperations(store, 'VBD', b);
      const v = store.field('VBD', b, 'VDI');
      if (v && v !== NULL_REF) vdis.add(v);
    }
    for (const v of vdis) if (store.exists('VDI', v)) updateAllowedOperations(store, 'VDI', v);
  });
}

/** Every SR, VDI and VBD (at start). */
export function refreshAllOperations(store: ObjectStore): void {
  store.tx(() => {
    for (const sr of store.all('SR')) updateAllowedOperations(store, 'SR', sr);
    for (const v of store.all('VDI')) updateAllowedOperations(store, 'VDI', v);
    for (const b of store.all('VBD')) updateAllowedOperations(store, 'VBD', b);
  });
}
