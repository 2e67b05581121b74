// What the VM side uses to give a VM its disks. The hypervisor driver (not part of the
// storage layer) calls attachVbdDisk before it puts a disk into a domain's
// configuration, using the returned path and format, and detachVbdDisk after the
// domain has let go of it; markVbdAttached records the outcome. For hot-plug into a
// running VM, VBD.plug/unplug/insert/eject use the BlockDeviceDriver the storage service
// was given (the VM layer's adapter, src/vm/hotplug.ts).
import { fail } from '../core/errors.js';
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import { activeVbds, refreshOperations } from './rules.js';
import type { AttachedDisk, StorageService } from './service.js';
import { deviceName } from './devices.js';

/** Checks that the VBD's disk could be attached now (VBD.assert_attachable). */
export function assertAttachable(svc: StorageService, vbd: string): void {
  const store = svc.store;
  const rec = store.get('VBD', vbd);
  if (!rec) fail('HANDLE_INVALID', 'VBD', vbd);
  if (rec.empty || rec.VDI === NULL_REF) {
    if (rec.type !== 'CD') fail('VBD_NOT_REMOVABLE_MEDIA', vbd);
    return;
  }
  const vdi = store.get('VDI', rec.VDI);
  if (!vdi) fail('HANDLE_INVALID', 'VDI', rec.VDI);
  svc.manifestOf(vdi.SR);
  svc.requirePlugged(vdi.SR);
  if (!svc.manifestOf(vdi.SR).capabilities.includes('VDI_ATTACH')) fail('SR_OPERATION_NOT_SUPPORTED', vdi.SR);
  if (vdi.missing) fail('VDI_MISSING', vdi.SR, rec.VDI);
  if (rec.mode === 'RW' && vdi.read_only) fail('VDI_READONLY', rec.VDI);
  if (!vdi.sharable) {
    const others = activeVbds(store, rec.VDI).filter((b) => b !== vbd);
    if (others.some((b) => store.field('VBD', b, 'mode') === 'RW') || (rec.mode === 'RW' && others.length > 0)) fail('VDI_IN_USE', rec.VDI, 'attach');
  }
}

/** Asks the VDI's plugin to make the disk reachable on this host; undefined for an empty CD drive. */
export async function attachVbdDisk(svc: StorageService, vbd: string): Promise<AttachedDisk | undefined> {
  assertAttachable(svc, vbd);
  const store = svc.store;
  const rec = store.get('VBD', vbd)!;
  if (rec.empty || rec.VDI === NULL_REF) return undefined;
  const sr = store.field('VDI', rec.VDI, 'SR')!;
  const writable = rec.mode === 'RW';
  const r = await svc.call(sr, 'vdi_attach', { vdi: rec.VDI, args: { writable }, op: 'attach' });
  if (typeof r.path !== 'string' || !r.path) fail('VDI_NOT_AVAILABLE', rec.VDI);
  const xs = r.xenstore_data && typeof r.xenstore_data === 'object' ? Object.fromEntries(Object.entries(r.xenstore_data).map(([k, v]) => [k, String(v)])) : {};
  return {
    vbd, vdi: rec.VDI, sr, path: r.path, format: typeof r.format === 'string' && r.format ? r.format : 'raw',
    readOnly: !writable || r.read_only === true, xenstoreData: xs,
  };
}

/** Tells the VDI's plugin that this host no longer uses the disk. */
export async function detachVbdDisk(svc: StorageService, vbd: string): Promise<void> {
  const store = svc.store;
  const rec = store.get('VBD', vbd);
  if (!rec || rec.empty || rec.VDI === NULL_REF || !store.exists('VDI', rec.VDI)) return;
  const sr = store.field('VDI', rec.VDI, 'SR')!;
  await svc.call(sr, 'vdi_detach', { vdi: rec.VDI, op: 'detach' });
}

/** Records that the VBD is (or is no longer) in use by its running domain. */
export function markVbdAttached(store: ObjectStore, vbd: string, attached: boolean, device?: string): void {
  store.tx(() => {
    const rec = store.get('VBD', vbd);
    if (!rec) return;
    const dev = device ?? (attached ? deviceName(store, rec.VM, rec.userdevice) : rec.device);
    store.update('VBD', vbd, { currently_attached: attached, device: dev });
    refreshOperations(store, { vbd });
  });
}
