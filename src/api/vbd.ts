// VBD: a VM's disk and CD drives. Creation rules and CD media changes are here; plugging
// into a running VM goes through the hypervisor driver (storage/attach.ts).
import type { CallContext, Handler } from './context.js';
import { fail } from './errors.js';
import { assertOperationValid, runOperation } from './operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VBDRecord } from '../datamodel/records.js';
import { createObject, destroyObject } from './lifecycle.js';
import { assertAttachable, attachVbdDisk, detachVbdDisk, markVbdAttached } from '../storage/attach.js';
import { allowedVbdDevices, resolveUserdevice } from '../storage/devices.js';
import { refreshOperations, vmPowerState } from '../storage/rules.js';
import { storageOf } from '../storage/service.js';

const DISK_TYPES = new Set(['system', 'user', 'ephemeral', 'suspend', 'crashdump']);

function driverOrFail(ctx: CallContext, what: string) {
  const d = storageOf(ctx.daemon).driver;
  if (!d) fail('NOT_IMPLEMENTED', `${what}: no hypervisor driver is available to change a running VM's devices`);
  return d;
}

/** A CD's medium must come from an ISO library. */
function assertIsoVdi(ctx: CallContext, vdi: string): void {
  const store = ctx.daemon.store;
  const sr = store.field('VDI', vdi, 'SR')!;
  const ct = store.field('SR', sr, 'content_type') ?? '';
  if (ct !== 'iso') fail('VDI_IS_NOT_ISO', vdi, ct);
}

export const vbdHandlers: Record<string, Handler> = {
  create(ctx: CallContext, args: Partial<VBDRecord>) {
    const store = ctx.daemon.store;
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
    if (!empty && rec.type === 'CD' && rec.VDI) assertIsoVdi(ctx, rec.VDI);
    if (!empty && rec.mode === 'RW' && rec.VDI && store.field('VDI', rec.VDI, 'read_only')) fail('VDI_READONLY', rec.VDI);
    if (rec.VM !== undefined && rec.userdevice !== undefined) rec.userdevice = resolveUserdevice(store, rec.VM, rec.userdevice);
    rec.currently_attached = false;
    rec.device = '';
    const ref = createObject(ctx, 'VBD', rec);
    refreshOperations(store, { vbd: ref });
    return ref;
  },

  destroy(ctx: CallContext, vbd: string) {
    const store = ctx.daemon.store;
    if (store.field('VBD', vbd, 'currently_attached')) fail('OPERATION_NOT_ALLOWED', 'VBD still attached to a running VM');
    const vdi = store.field('VBD', vbd, 'VDI');
    destroyObject(ctx, 'VBD', vbd);
    if (vdi && vdi !== NULL_REF) refreshOperations(store, { vdi });
  },

  async plug(ctx: CallContext, vbd: string) {
    const store = ctx.daemon.store;
    assertOperationValid(store, 'VBD', vbd, 'plug');
    const driver = driverOrFail(ctx, 'VBD.plug');
    const vm = store.field('VBD', vbd, 'VM')!;
    await runOperation(ctx, 'VBD', vbd, 'plug', async () => {
      const disk = await attachVbdDisk(ctx.daemon, vbd);
      try {
        const { device } = await driver.plug(ctx.daemon, vm, vbd, disk);
        markVbdAttached(ctx.daemon, vbd, true, device);
      } catch (e) {
        if (disk) await detachVbdDisk(ctx.daemon, vbd).catch(() => undefined);
        throw e;
      }
    });
  },

  async unplug(ctx: CallContext, vbd: string) {
    await unplugVbd(ctx, vbd, false);
  },

  async unplug_force(ctx: CallContext, vbd: string) {
    await unplugVbd(ctx, vbd, true);
  },

  async insert(ctx: CallContext, vbd: string, vdi: string) {
    const store = ctx.daemon.store;
    assertOperationValid(store, 'VBD', vbd, 'insert');
    assertIsoVdi(ctx, vdi);
    await runOperation(ctx, 'VBD', vbd, 'insert', async () => {
      const rec = store.get('VBD', vbd)!;
      if (rec.currently_attached) {
        const driver = driverOrFail(ctx, 'VBD.insert');
        store.update('VBD', vbd, { VDI: vdi, empty: false });
        try {
          const disk = await attachVbdDisk(ctx.daemon, vbd);
          await driver.changeMedium(ctx.daemon, rec.VM, vbd, disk);
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
  },

  async eject(ctx: CallContext, vbd: string) {
    const store = ctx.daemon.store;
    assertOperationValid(store, 'VBD', vbd, 'eject');
    const old = store.field('VBD', vbd, 'VDI')!;
    await runOperation(ctx, 'VBD', vbd, 'eject', async () => {
      const rec = store.get('VBD', vbd)!;
      if (rec.currently_attached) {
        const driver = driverOrFail(ctx, 'VBD.eject');
        await driver.changeMedium(ctx.daemon, rec.VM, vbd, undefined);
        await detachVbdDisk(ctx.daemon, vbd).catch(() => undefined);
      }
      store.update('VBD', vbd, { VDI: NULL_REF, empty: true });
    });
    refreshOperations(store, { vbd, vdi: old });
  },

  assert_attachable(ctx: CallContext, vbd: string) {
    assertAttachable(ctx.daemon, vbd);
  },

  set_mode(ctx: CallContext, vbd: string, value: 'RO' | 'RW') {
    const store = ctx.daemon.store;
    const rec = store.get('VBD', vbd)!;
    const power = vmPowerState(store, rec.VM);
    if (power !== 'Halted') fail('VM_BAD_POWER_STATE', rec.VM, 'halted', power.toLowerCase());
    if (value === 'RW' && rec.type === 'CD') fail('VBD_CDS_MUST_BE_READONLY');
    if (value === 'RW' && rec.VDI !== NULL_REF && store.field('VDI', rec.VDI, 'read_only')) fail('VDI_READONLY', rec.VDI);
    store.update('VBD', vbd, { mode: value });
  },
};

async function unplugVbd(ctx: CallContext, vbd: string, force: boolean): Promise<void> {
  const store = ctx.daemon.store;
  const op = force ? 'unplug_force' : 'unplug';
  assertOperationValid(store, 'VBD', vbd, op);
  const driver = driverOrFail(ctx, `VBD.${op}`);
  const vm = store.field('VBD', vbd, 'VM')!;
  await runOperation(ctx, 'VBD', vbd, op, async () => {
    await driver.unplug(ctx.daemon, vm, vbd, force);
    markVbdAttached(ctx.daemon, vbd, false, '');
    await detachVbdDisk(ctx.daemon, vbd).catch((e: Error) => ctx.daemon.log.warn({ vbd, err: e.message }, 'VDI detach after unplug failed'));
  });
}

export const vmStorageHandlers: Record<string, Handler> = {
  get_allowed_VBD_devices(ctx: CallContext, vm: string) {
    return allowedVbdDevices(ctx.daemon.store, vm);
  },
};
