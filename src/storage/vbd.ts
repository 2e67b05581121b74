// VBD: a VM's disk and CD drives. Creation rules and CD media changes are here; plugging
// into a running VM goes through the block device driver the service was given.
import type { CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { assertOperationValid, runOperation } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VBDRecord } from '../datamodel/records.js';
import { createObject, destroyObject } from '../db/objects.js';
import { attachVbdDisk, detachVbdDisk, markVbdAttached } from './attach.js';
import { resolveUserdevice } from './devices.js';
import { refreshOperations, vmPowerState } from './rules.js';
import type { StorageService } from './service.js';

const DISK_TYPES = new Set(['system', 'user', 'ephemeral', 'suspend', 'crashdump']);

/** A CD's medium must come from an ISO library. */
function assertIsoVdi(svc: StorageService, vdi: string): void {
  const store = svc.store;
  const sr = store.field('VDI', vdi, 'SR')!;
  const ct = store.field('SR', sr, 'content_type') ?? '';
  if (ct !== 'iso') fail('VDI_IS_NOT_ISO', vdi, ct);
}

export function createVbd(svc: StorageService, args: Partial<VBDRecord>): string {
  const store = svc.store;
  const rec: Partial<VBDRecord> = { ...args };
  if (rec.VM !== undefined && !store.exists('VM', rec.VM)) fail('HANDLE_INVALID', 'VM', rec.VM);
  const empty = rec.empty === true;
  if (empty) rec.VDI = NULL_REF;
  if (!empty && rec.VDI !== undefined) {
    if (rec.VDI === NULL_REF || !store.exists('VDI', rec.VDI)) fail('HANDLE_INVALID', 'VDI', rec.VDI);
    const vdiType = store.field('VDI', rec.VDI, 'type')!;
    if (!DISK_TYPES.has(vdiType)) fail('VDI_INCOMPATIBLE_TYPE', rec.VDI, vdiType);
  }
  if (rec.type === 'CD' && rec.mode === 'RW') fail('VBD_CDS_MUST_BE_READONLY');
  if (empty && rec.type !== 'CD') fail('VBD_NOT_REMOVABLE_MEDIA', 'in constructor');
  if (!empty && rec.type === 'CD' && rec.VDI) assertIsoVdi(svc, rec.VDI);
  if (!empty && rec.mode === 'RW' && rec.VDI && store.field('VDI', rec.VDI, 'read_only')) fail('VDI_READONLY', rec.VDI);
  if (rec.VM !== undefined && rec.userdevice !== undefined) rec.userdevice = resolveUserdevice(store, rec.VM, rec.userdevice);
  rec.currently_attached = false;
  rec.device = '';
  const ref = createObject(store, 'VBD', rec);
  refreshOperations(store, { vbd: ref });
  return ref;
}

export function destroyVbd(svc: StorageService, vbd: string): void {
  const store = svc.store;
  if (store.field('VBD', vbd, 'currently_attached')) fail('OPERATION_NOT_ALLOWED', 'VBD still attached to a running VM');
  const vdi = store.field('VBD', vbd, 'VDI');
  destroyObject(store, 'VBD', vbd);
  if (vdi && vdi !== NULL_REF) refreshOperations(store, { vdi });
}

export async function plugVbd(svc: StorageService, ctx: CallContext, vbd: string): Promise<void> {
  const store = svc.store;
  assertOperationValid(store, 'VBD', vbd, 'plug');
  const vm = store.field('VBD', vbd, 'VM')!;
  await runOperation(store, ctx, 'VBD', vbd, 'plug', async () => {
    const disk = await attachVbdDisk(svc, vbd);
    try {
      const { device } = await svc.devices.plug(vm, vbd, disk);
      markVbdAttached(store, vbd, true, device);
    } catch (e) {
      if (disk) await detachVbdDisk(svc, vbd).catch(() => undefined);
      throw e;
    }
  });
}

export async function insertVbd(svc: StorageService, ctx: CallContext, vbd: string, vdi: string): Promise<void> {
  const store = svc.store;
  assertOperationValid(store, 'VBD', vbd, 'insert');
  assertIsoVdi(svc, vdi);
  await runOperation(store, ctx, 'VBD', vbd, 'insert', async () => {
    const rec = store.get('VBD', vbd)!;
    if (rec.currently_attached) {
      store.update('VBD', vbd, { VDI: vdi, empty: false });
      try {
        const disk = await attachVbdDisk(svc, vbd);
        await svc.devices.changeMedium(rec.VM, vbd, disk);
      } catch (e) {
        store.update('VBD', vbd, { VDI: NULL_REF, empty: true });
        throw e;
      }
    } else {
      // A drive not in use by a running domain: the medium is a database change only.
      store.update('VBD', vbd, { VDI: vdi, empty: false });
    }
  });
  refreshOperations(store, { vbd, vdi });
}

export async function ejectVbd(svc: StorageService, ctx: CallContext, vbd: string): Promise<void> {
  const store = svc.store;
  assertOperationValid(store, 'VBD', vbd, 'eject');
  const old = store.field('VBD', vbd, 'VDI')!;
  await runOperation(store, ctx, 'VBD', vbd, 'eject', async () => {
    const rec = store.get('VBD', vbd)!;
    if (rec.currently_attached) {
      await svc.devices.changeMedium(rec.VM, vbd, undefined);
      await detachVbdDisk(svc, vbd).catch(() => undefined);
    }
    store.update('VBD', vbd, { VDI: NULL_REF, empty: true });
  });
  refreshOperations(store, { vbd, vdi: old });
}

export function setVbdMode(svc: StorageService, vbd: string, value: 'RO' | 'RW'): void {
  const store = svc.store;
  const rec = store.get('VBD', vbd)!;
  const power = vmPowerState(store, rec.VM);
  if (power !== 'Halted') fail('VM_BAD_POWER_STATE', rec.VM, 'halted', power.toLowerCase());
  if (value === 'RW' && rec.type === 'CD') fail('VBD_CDS_MUST_BE_READONLY');
  if (value === 'RW' && rec.VDI !== NULL_REF && store.field('VDI', rec.VDI, 'read_only')) fail('VDI_READONLY', rec.VDI);
  store.update('VBD', vbd, { mode: value });
}

export async function unplugVbd(svc: StorageService, ctx: CallContext, vbd: string, force: boolean): Promise<void> {
  const store = svc.store;
  const op = force ? 'unplug_force' : 'unplug';
  assertOperationValid(store, 'VBD', vbd, op);
  const vm = store.field('VBD', vbd, 'VM')!;
  await runOperation(store, ctx, 'VBD', vbd, op, async () => {
    await svc.devices.unplug(vm, vbd, force);
    markVbdAttached(store, vbd, false, '');
    await detachVbdDisk(svc, vbd).catch((e: Error) => svc.log.warn({ vbd, err: e.message }, 'VDI detach after unplug failed'));
  });
}
