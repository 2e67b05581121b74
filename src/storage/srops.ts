// SR and PBD work shared by the API handlers and the daemon's start: attaching and
// detaching an SR on this host, scanning it, and keeping its size figures true.
import { randomUUID } from 'node:crypto';
import type { CallContext } from '../core/context.js';
import { fail, XenApiError } from '../core/errors.js';
import { runOperation } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VDIRecord } from '../datamodel/records.js';
import { activeVbds, refreshOperations } from './rules.js';
import type { StorageService } from './service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Runs fn as operation `op` on the object when there is a caller; bare at start. */
export function maybeOperation<T>(svc: StorageService, ctx: CallContext | undefined, cls: string, ref: string, op: string, fn: () => Promise<T>): Promise<T> {
  return ctx ? runOperation(svc.store, ctx, cls, ref, op, fn) : fn();
}

const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : undefined);

/** physical_size and physical_utilisation from the plugin, virtual_allocation from the VDIs. */
export async function refreshSr(svc: StorageService, sr: string, figures?: Record<string, unknown>): Promise<void> {
  const store = svc.store;
  let f = figures ?? svc.freshFigures.get(sr);
  svc.freshFigures.delete(sr);
  if (!f) {
    try {
      f = await svc.call(sr, 'sr_stat');
    } catch (e) {
      svc.log.warn({ sr, err: (e as Error).message }, 'SR size figures not refreshed');
      f = {};
    }
  }
  if (!store.exists('SR', sr)) return;
  const alloc = (store.field('SR', sr, 'VDIs') ?? []).reduce((s, v) => s + (store.field('VDI', v, 'virtual_size') ?? 0), 0);
  const changes: Record<string, number> = { virtual_allocation: alloc };
  const size = int(f.physical_size);
  const used = int(f.physical_utilisation);
  if (size !== undefined) changes.physical_size = size;
  if (used !== undefined) changes.physical_utilisation = used;
  store.update('SR', sr, changes);
}

/** virtual_allocation now; the plugin's figures a moment later, without holding up the caller. */
export function refreshSrSoon(svc: StorageService, sr: string): void {
  const store = svc.store;
  if (!store.exists('SR', sr)) return;
  const alloc = (store.field('SR', sr, 'VDIs') ?? []).reduce((s, v) => s + (store.field('VDI', v, 'virtual_size') ?? 0), 0);
  store.update('SR', sr, { virtual_allocation: alloc });
  // Next turn of the event loop: the caller's answer goes out before a plugin process starts.
  setImmediate(() => void refreshSr(svc, sr).catch((e: Error) => svc.log.warn({ sr, err: e.message }, 'SR size figures not refreshed')));
}

interface ScannedImage {
  uuid?: string;
  location: string;
  virtual_size?: number;
  physical_utilisation?: number;
  read_only?: boolean;
  name_label?: string;
  name_description?: string;
  sm_config?: Record<string, string>;
}

/** Brings the SR's VDI records in line with what the plugin finds: new images are
 * introduced, vanished ones forgotten (or marked missing while a VBD still names them).
 * Images of operations in flight (the journal) are left alone. */
export async function scanSr(svc: StorageService, sr: string): Promise<void> {
  const store = svc.store;
  svc.requirePlugged(sr);
  await svc.locked(sr, async () => {
    const res = await svc.call(sr, 'sr_scan', { op: 'scan' });
    const images = (Array.isArray(res.vdis) ? res.vdis : []).filter((i): i is ScannedImage => typeof (i as ScannedImage)?.location === 'string');
    const srUuid = store.field('SR', sr, 'uuid') ?? '';
    const busy = svc.intents.busyVdiUuids(srUuid);
    store.tx(() => {
      const records = new Map<string, { ref: string; rec: VDIRecord }>();
      for (const ref of store.field('SR', sr, 'VDIs') ?? []) {
        const rec = store.get('VDI', ref)!;
        records.set(rec.location, { ref, rec });
      }
      const seen = new Set<string>();
      for (const img of images) {
        seen.add(img.location);
        const known = records.get(img.location);
        if (known) {
          const changes: Partial<VDIRecord> = {};
          const vs = int(img.virtual_size);
          const pu = int(img.physical_utilisation);
          if (vs !== undefined && vs !== known.rec.virtual_size) changes.virtual_size = vs;
          if (pu !== undefined && pu !== known.rec.physical_utilisation) changes.physical_utilisation = pu;
          if (known.rec.missing) changes.missing = false;
          if (Object.keys(changes).length) store.update('VDI', known.ref, changes);
          continue;
        }
        if (img.uuid && busy.has(img.uuid)) continue;
        const uuid = img.uuid && UUID.test(img.uuid) && !store.refByUuid('VDI', img.uuid) ? img.uuid : randomUUID();
        store.create('VDI', {
          uuid, name_label: img.name_label ?? '', name_description: img.name_description ?? '', SR: sr,
          virtual_size: int(img.virtual_size) ?? 0, physical_utilisation: int(img.physical_utilisation) ?? 0,
          type: 'user', sharable: false, read_only: img.read_only === true, other_config: {}, location: img.location,
          managed: true, missing: false, parent: NULL_REF, xenstore_data: {}, sm_config: img.sm_config ?? {},
        });
      }
      for (const [loc, { ref, rec }] of records) {
        if (seen.has(loc) || busy.has(rec.uuid)) continue;
        if (rec.VBDs.length > 0 || rec.crash_dumps.length > 0) {
          if (!rec.missing) store.update('VDI', ref, { missing: true });
        } else {
          store.destroy('VDI', ref);
        }
      }
      const oc = { ...(store.field('SR', sr, 'other_config') ?? {}) };
      if ('dirty' in oc) {
        delete oc.dirty;
        store.update('SR', sr, { other_config: oc });
      }
    });
    await refreshSr(svc, sr, res);
  });
  refreshOperations(store, { sr });
}

/** Attaches the SR on this host through the PBD (no-op if attached), then scans it. */
export async function plugPbd(svc: StorageService, pbd: string, ctx?: CallContext): Promise<void> {
  const store = svc.store;
  const rec = store.get('PBD', pbd);
  if (!rec) fail('HANDLE_INVALID', 'PBD', pbd);
  if (rec.currently_attached) return;
  const sr = rec.SR;
  svc.manifestOf(sr);
  if (!store.field('SR', sr, 'shared')) {
    for (const other of store.field('SR', sr, 'PBDs') ?? []) {
      if (other !== pbd && store.field('PBD', other, 'currently_attached')) fail('SR_NOT_SHARABLE', sr, rec.host);
    }
  }
  if (rec.host !== svc.hostRef) fail('OPERATION_NOT_ALLOWED', 'a PBD can only be plugged on the host it belongs to, and this daemon manages only its own host');
  await maybeOperation(svc, ctx, 'SR', sr, 'plug', () => svc.locked(sr, async () => {
    await svc.call(sr, 'sr_attach', { deviceConfig: rec.device_config, op: 'plug' });
    store.update('PBD', pbd, { currently_attached: true });
  }));
  refreshOperations(store, { sr });
  try {
    await scanSr(svc, sr);
  } catch (e) {
    svc.log.warn({ sr, err: (e as Error).message }, 'scan after plugging the SR failed');
  }
}

/** Detaches the SR on this host; refused while a VM uses one of its disks. */
export async function unplugPbd(svc: StorageService, pbd: string, ctx?: CallContext): Promise<void> {
  const store = svc.store;
  const rec = store.get('PBD', pbd);
  if (!rec) fail('HANDLE_INVALID', 'PBD', pbd);
  if (!rec.currently_attached) return;
  const sr = rec.SR;
  const inUse = (store.field('SR', sr, 'VDIs') ?? []).filter((v) => activeVbds(store, v).length > 0);
  if (inUse.length > 0) throw new XenApiError('VDI_IN_USE', inUse);
  await maybeOperation(svc, ctx, 'SR', sr, 'unplug', () => svc.locked(sr, async () => {
    await svc.call(sr, 'sr_detach', { deviceConfig: rec.device_config, op: 'unplug' });
    store.update('PBD', pbd, { currently_attached: false });
  }));
  refreshOperations(store, { sr });
}

/** Removes the records of an SR, its PBDs, VDIs and the VBDs that name them (data kept). */
export function forgetSrRecords(svc: StorageService, sr: string): void {
  const store = svc.store;
  store.tx(() => {
    for (const vdi of store.field('SR', sr, 'VDIs') ?? []) dropVdiRecord(svc, vdi);
    for (const pbd of store.field('SR', sr, 'PBDs') ?? []) store.destroy('PBD', pbd);
    for (const pool of store.all('pool')) {
      const p = store.get('pool', pool)!;
      const changes: Record<string, string> = {};
      for (const f of ['default_SR', 'suspend_image_SR', 'crash_dump_SR'] as const) if (p[f] === sr) changes[f] = NULL_REF;
      if (Object.keys(changes).length) store.update('pool', pool, changes);
    }
    for (const host of store.all('host')) {
      const h = store.get('host', host)!;
      if (h.suspend_image_sr === sr) store.update('host', host, { suspend_image_sr: NULL_REF });
      if (h.crash_dump_sr === sr) store.update('host', host, { crash_dump_sr: NULL_REF });
    }
    store.destroy('SR', sr);
  });
}

/** Removes a VDI's record; VBDs naming it go too, except CD drives, which become empty. */
export function dropVdiRecord(svc: StorageService, vdi: string): void {
  const store = svc.store;
  store.tx(() => {
    for (const vbd of store.field('VDI', vdi, 'VBDs') ?? []) {
      const v = store.get('VBD', vbd)!;
      if (v.type === 'CD') store.update('VBD', vbd, { VDI: NULL_REF, empty: true });
      else store.destroy('VBD', vbd);
    }
    for (const cd of store.field('VDI', vdi, 'crash_dumps') ?? []) store.destroy('crashdump', cd);
    store.destroy('VDI', vdi);
  });
}
