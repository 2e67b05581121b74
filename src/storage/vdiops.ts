// VDI work: every function changes storage through the SR's plugin first and writes
// records only once the plugin has succeeded, with a journal entry covering the gap
// (see intents.ts). They take the caller's context so that VM operations (clone, copy,
// provision) can use them with their own task.
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import type { CallContext } from '../core/context.js';
import { fail, XenApiError } from '../core/errors.js';
import { assertOperationValid, runOperation } from '../core/operations.js';
import { classes, NULL_REF } from '../datamodel/model.js';
import type { VDIRecord } from '../datamodel/records.js';
import { copyImage, CopyCancelled } from './copy.js';
import type { Intent } from './intents.js';
import { activeVbds, refreshOperations } from './rules.js';
import { dropVdiRecord, refreshSr, refreshSrSoon } from './srops.js';
import type { StorageService } from './service.js';

const int = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : d);
const strMap = (v: unknown): Record<string, string> =>
  v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};

/** The fields of a new VDI record: the caller's metadata plus what the plugin reports. */
function recordFrom(meta: Partial<VDIRecord>, sr: string, uuid: string, res: Record<string, unknown>): Partial<VDIRecord> {
  return {
    uuid,
    name_label: meta.name_label ?? '',
    name_description: meta.name_description ?? '',
    SR: sr,
    virtual_size: int(res.virtual_size, meta.virtual_size ?? 0),
    physical_utilisation: int(res.physical_utilisation, 0),
    type: meta.type ?? 'user',
    sharable: meta.sharable ?? false,
    read_only: typeof res.read_only === 'boolean' ? res.read_only || (meta.read_only ?? false) : meta.read_only ?? false,
    other_config: meta.other_config ?? {},
    location: String(res.location ?? ''),
    managed: true,
    missing: false,
    parent: NULL_REF,
    xenstore_data: meta.xenstore_data ?? {},
    sm_config: { ...(meta.sm_config ?? {}), ...strMap(res.sm_config) },
  };
}

/** Makes storage through `make` and then its record; the record never exists without
 * the image, and an image whose record could not be written is removed again. */
async function makeVdi(svc: StorageService, sr: string, uuid: string, make: () => Promise<Record<string, unknown>>, meta: Partial<VDIRecord>, after?: (res: Record<string, unknown>) => void): Promise<string> {
  const store = svc.store;
  const intent = svc.intents.add({ kind: 'vdi-create', sr, srUuid: store.field('SR', sr, 'uuid') ?? '', vdiUuid: uuid });
  try {
    return await svc.locked(sr, async () => {
      const res = await make();
      try {
        return store.tx(() => {
          const ref = store.create('VDI', recordFrom(meta, sr, uuid, res));
          after?.(res);
          return ref;
        });
      } catch (e) {
        await svc.call(sr, 'vdi_delete', { vdi: { uuid, location: String(res.location ?? ''), sm_config: {} } }).catch(() => undefined);
        throw e;
      }
    });
  } finally {
    svc.intents.remove(intent);
  }
}

function requireFields(args: Record<string, unknown>): void {
  for (const f of classes.get('VDI')!.storedFields) {
    const settable = f.qualifier === 'RW' || f.qualifier === 'RO/constructor';
    if (settable && f.required && !(f.name in args)) fail('FIELD_TYPE_ERROR', f.name);
  }
}

export async function createVdi(svc: StorageService, ctx: CallContext, args: Partial<VDIRecord>): Promise<string> {
  requireFields(args);
  const sr = args.SR!;
  if (!svc.store.exists('SR', sr)) fail('HANDLE_INVALID', 'SR', sr);
  const size = args.virtual_size!;
  if (size <= 0) fail('INVALID_VALUE', 'virtual_size', size);
  const ref = await runOperation(svc.store, ctx, 'SR', sr, 'vdi_create', async () => {
    const uuid = randomUUID();
    const sm = args.sm_config ?? {};
    return makeVdi(svc, sr, uuid, () => svc.call(sr, 'vdi_create', {
      vdi: { uuid, location: '', sm_config: sm }, args: { virtual_size: size, sm_config: sm }, op: 'vdi_create',
    }), args);
  });
  await refreshSr(svc, sr);
  refreshOperations(svc.store, { sr, vdi: ref });
  return ref;
}

/** Removes the image, then the record (and the VBDs that named it). */
export async function destroyVdi(svc: StorageService, ctx: CallContext, vdi: string): Promise<void> {
  const store = svc.store;
  const rec = store.get('VDI', vdi)!;
  const sr = rec.SR;
  await runOperation(svc.store, ctx, 'VDI', vdi, 'destroy', () => runOperation(svc.store, ctx, 'SR', sr, 'vdi_destroy', async () => {
    const intent = svc.intents.add({ kind: 'vdi-delete', sr, srUuid: store.field('SR', sr, 'uuid') ?? '', vdiUuid: rec.uuid, location: rec.location });
    try {
      await svc.locked(sr, async () => {
        await svc.call(sr, 'vdi_delete', { vdi, op: 'destroy' });
        dropVdiRecord(svc, vdi);
      });
    } finally {
      svc.intents.remove(intent);
    }
  }));
  await refreshSr(svc, sr);
  refreshOperations(store, { sr });
}

/** VDI.clone and VDI.snapshot: a new VDI in the same SR with the disk's contents now. */
export async function branchVdi(svc: StorageService, ctx: CallContext, vdi: string, kind: 'clone' | 'snapshot', driverParams: Record<string, string>): Promise<string> {
  const store = svc.store;
  const src = store.get('VDI', vdi)!;
  const sr = src.SR;
  const ref = await runOperation(svc.store, ctx, 'VDI', vdi, kind, () => runOperation(svc.store, ctx, 'SR', sr, `vdi_${kind}`, async () => {
    if (kind === 'snapshot' && activeVbds(store, vdi).length > 0 && !svc.manifestOf(sr).live_snapshot) {
      // The plugin cannot take a consistent snapshot under a running VM's feet.
      fail('VDI_IN_USE', vdi, kind);
    }
    const uuid = randomUUID();
    const meta: Partial<VDIRecord> = {
      name_label: src.name_label, name_description: src.name_description, type: src.type, sharable: src.sharable,
      read_only: kind === 'snapshot' ? src.read_only : false, other_config: src.other_config, xenstore_data: src.xenstore_data,
      sm_config: {}, virtual_size: src.virtual_size,
    };
    return makeVdi(svc, sr, uuid, () => svc.call(sr, `vdi_${kind}`, { vdi, args: { new_uuid: uuid, driver_params: driverParams }, op: kind }), meta, (res) => {
      const o = res.origin as Record<string, unknown> | undefined;
      if (!o || !store.exists('VDI', vdi)) return;
      const changes: Partial<VDIRecord> = {};
      if (typeof o.location === 'string' && o.location) changes.location = o.location;
      if (typeof o.physical_utilisation === 'number') changes.physical_utilisation = Math.round(o.physical_utilisation);
      if (Object.keys(changes).length) store.update('VDI', vdi, changes);
    });
  }));
  await refreshSr(svc, sr);
  refreshOperations(store, { sr, vdi });
  return ref;
}

interface Attached { sr: string; vdi: string; path: string; format: string }

/** Bytes a regular file really occupies, or undefined for anything else (a block device). */
function allocatedFile(p: string): number | undefined {
  try {
    const st = statSync(p);
    return st.isFile() ? st.blocks * 512 : undefined;
  } catch {
    return undefined;
  }
}

async function attachFor(svc: StorageService, vdi: string, writable: boolean, op: string): Promise<Attached> {
  const sr = svc.store.field('VDI', vdi, 'SR')!;
  const r = await svc.call(sr, 'vdi_attach', { vdi, args: { writable }, op });
  if (typeof r.path !== 'string' || !r.path) throw new XenApiError('SR_BACKEND_FAILURE', ['the plugin gave no path for the attached VDI', JSON.stringify(r), '']);
  return { sr, vdi, path: r.path, format: typeof r.format === 'string' && r.format ? r.format : 'raw' };
}

async function detachQuietly(svc: StorageService, a: Attached | undefined): Promise<void> {
  if (!a || !svc.store.exists('VDI', a.vdi)) return;
  await svc.call(a.sr, 'vdi_detach', { vdi: a.vdi }).catch((e: Error) => svc.log.warn({ vdi: a.vdi, err: e.message }, 'VDI detach after copy failed'));
}

/** VDI.copy: the disk's bytes into a new VDI of `sr`, or into the existing `into`. */
export async function copyVdi(svc: StorageService, ctx: CallContext, vdi: string, sr: string, base: string, into: string): Promise<string> {
  const store = svc.store;
  const src = store.get('VDI', vdi)!;
  let destSr = sr;
  if (into !== NULL_REF) {
    const target = store.get('VDI', into)!;
    if (into === vdi) fail('OPERATION_NOT_ALLOWED', 'a VDI cannot be copied into itself');
    if (sr !== NULL_REF && target.SR !== sr) fail('INVALID_VALUE', 'into_vdi', into);
    if (target.read_only) fail('VDI_READONLY', into);
    if (target.virtual_size < src.virtual_size) fail('VDI_TOO_SMALL', into, src.virtual_size);
    if (activeVbds(store, into).length > 0) fail('VDI_IN_USE', into, 'copy');
    destSr = target.SR;
  } else if (sr === NULL_REF) {
    fail('HANDLE_INVALID', 'SR', sr);
  }
  if (base !== NULL_REF && !store.exists('VDI', base)) fail('HANDLE_INVALID', 'VDI', base);
  svc.manifestOf(destSr);
  if (into === NULL_REF && !svc.manifestOf(destSr).capabilities.includes('VDI_CREATE')) fail('SR_OPERATION_NOT_SUPPORTED', destSr);
  svc.requirePlugged(destSr);
  const task = ctx.task;

  const destLookup = svc.manifestOf(destSr).attach_is_lookup;
  const run = async (): Promise<string> => {
    let intent: Intent | undefined;
    let newUuid: string | undefined;
    let newLocation = '';
    let made: Record<string, unknown> | undefined;
    let srcAt: Attached | undefined;
    let dstAt: Attached | undefined;
    try {
      const newVdi = () => ({ uuid: newUuid!, location: newLocation, sm_config: {} });
      // The destination is made and attached while the source is attached: the plugin
      // calls overlap instead of adding up.
      const destination = async () => {
        if (into !== NULL_REF) {
          dstAt = await attachFor(svc, into, true, 'copy');
          return;
        }
        newUuid = randomUUID();
        intent = svc.intents.add({ kind: 'vdi-create', sr: destSr, srUuid: store.field('SR', destSr, 'uuid') ?? '', vdiUuid: newUuid });
        const uuid = newUuid;
        made = await runOperation(svc.store, ctx, 'SR', destSr, 'vdi_create', () => svc.locked(destSr, () => svc.call(destSr, 'vdi_create', {
          vdi: { uuid, location: '', sm_config: {} }, args: { virtual_size: src.virtual_size, sm_config: {} }, op: 'copy',
        })));
        newLocation = String(made.location ?? '');
        const given = made.attach as Record<string, unknown> | undefined;
        const r = destLookup && given && typeof given.path === 'string' ? given
          : await svc.call(destSr, 'vdi_attach', { vdi: newVdi(), args: { writable: true }, op: 'copy' });
        if (typeof r.path !== 'string' || !r.path) throw new XenApiError('SR_BACKEND_FAILURE', ['the plugin gave no path for the new VDI', JSON.stringify(r), '']);
        dstAt = { sr: destSr, vdi: '', path: r.path, format: typeof r.format === 'string' && r.format ? r.format : 'raw' };
      };
      const source = async () => {
        srcAt = await attachFor(svc, vdi, false, 'copy');
      };
      // The source first: its plugin works while the journal entry is written to disk.
      const first = await Promise.allSettled([source(), destination()]);
      for (const r of first) if (r.status === 'rejected') throw r.reason;
      if (!srcAt || !dstAt) throw new XenApiError('INTERNAL_ERROR', ['copy ends not attached']);
      task?.setCancellable(true);
      let last = 0;
      await copyImage(srcAt, dstAt, {
        children: svc.children,
        targetIsZero: into === NULL_REF,
        signal: task?.signal,
        onProgress: (p) => {
          if (p - last >= 0.01 || p === 1) {
            last = p;
            task?.setProgress(p * 0.99);
          }
          if (p > 0 && svc.faultIs('crash-during-copy')) svc.crash();
        },
      });
      task?.setCancellable(false);
      if (svc.faultIs('crash-after:copy')) svc.crash();
      // Both ends let go (where letting go is more than forgetting a path), and the
      // new image's figures: from the file itself when it is one, else from the plugin.
      svc.freshFigures.delete(destSr);
      const after: Array<Promise<unknown>> = [];
      if (!svc.manifestOf(src.SR).attach_is_lookup) after.push(detachQuietly(svc, srcAt));
      if (!destLookup) after.push(svc.call(destSr, 'vdi_detach', { vdi: into === NULL_REF ? newVdi() : into }).catch(() => undefined));
      let stat: Record<string, unknown> = {};
      const own = allocatedFile(dstAt.path);
      if (own !== undefined) stat = { physical_utilisation: own };
      else after.push(svc.call(destSr, 'vdi_stat', { vdi: into === NULL_REF ? newVdi() : into }).then((r) => (stat = r), () => undefined));
      await Promise.all(after);
      srcAt = undefined;
      dstAt = undefined;
      if (into === NULL_REF) {
        const meta: Partial<VDIRecord> = {
          name_label: src.name_label, name_description: src.name_description, type: src.type, sharable: src.sharable,
          read_only: src.read_only, other_config: src.other_config, xenstore_data: src.xenstore_data, sm_config: {},
          virtual_size: src.virtual_size,
        };
        const ref = store.create('VDI', recordFrom(meta, destSr, newUuid!, { ...made, ...stat, location: newLocation }));
        svc.intents.remove(intent!);
        intent = undefined;
        return ref;
      }
      if (typeof stat.physical_utilisation === 'number') store.update('VDI', into, { physical_utilisation: Math.round(stat.physical_utilisation) });
      return into;
    } catch (e) {
      task?.setCancellable(false);
      const src0 = srcAt as Attached | undefined;
      const dst0 = dstAt as Attached | undefined;
      await detachQuietly(svc, src0);
      if (dst0) await svc.call(destSr, 'vdi_detach', { vdi: dst0.vdi || { uuid: newUuid!, location: newLocation, sm_config: {} } }).catch(() => undefined);
      if (made) {
        const uuid = newUuid!;
        await svc.locked(destSr, () => svc.call(destSr, 'vdi_delete', { vdi: { uuid, location: newLocation, sm_config: {} } }))
          .then(() => intent && svc.intents.remove(intent))
          .catch((err: Error) => svc.log.error({ err: err.message, uuid }, 'could not remove the unfinished copy: the journal keeps it for the next start'));
      } else if (intent) {
        svc.intents.remove(intent);
      }
      if (e instanceof CopyCancelled) fail('TASK_CANCELLED', task?.ref ?? '');
      if (e instanceof XenApiError) throw e;
      throw new XenApiError('VDI_COPY_FAILED', []);
    }
  };

  // No spare plugin processes start while the bytes move: they would take CPU from the copy.
  const quiet = () => svc.pool.quietDuring(run);
  const ref = await runOperation(svc.store, ctx, 'VDI', vdi, 'copy', () => (into !== NULL_REF ? runOperation(svc.store, ctx, 'VDI', into, 'copy', quiet) : quiet()));
  task?.setProgress(1);
  refreshSrSoon(svc, destSr);
  refreshOperations(store, { sr: destSr, vdi: ref });
  return ref;
}

export async function resizeVdi(svc: StorageService, ctx: CallContext, vdi: string, size: number, online: boolean): Promise<void> {
  const store = svc.store;
  if (size <= 0) fail('INVALID_VALUE', 'size', size);
  const sr = store.field('VDI', vdi, 'SR')!;
  const op = online ? 'resize_online' : 'resize';
  await runOperation(svc.store, ctx, 'VDI', vdi, op, () => runOperation(svc.store, ctx, 'SR', sr, 'vdi_resize', () => svc.locked(sr, async () => {
    const res = await svc.call(sr, online ? 'vdi_resize_online' : 'vdi_resize', { vdi, args: { new_size: size }, op });
    const changes: Partial<VDIRecord> = {};
    if (typeof res.virtual_size === 'number') changes.virtual_size = Math.round(res.virtual_size);
    if (typeof res.physical_utilisation === 'number') changes.physical_utilisation = Math.round(res.physical_utilisation);
    store.update('VDI', vdi, changes);
  })));
  await refreshSr(svc, sr);
}

export interface IntroduceArgs {
  uuid: string; name_label: string; name_description: string; SR: string; type: VDIRecord['type']; sharable: boolean;
  read_only: boolean; other_config: Record<string, string>; location: string; xenstore_data: Record<string, string>;
  sm_config: Record<string, string>;
}

/** VDI.introduce: a record for an image the SR already holds. */
export async function introduceVdi(svc: StorageService, ctx: CallContext, a: IntroduceArgs): Promise<string> {
  const store = svc.store;
  const sr = a.SR;
  const uuid = a.uuid || randomUUID();
  if (store.refByUuid('VDI', uuid)) fail('DB_UNIQUENESS_CONSTRAINT_VIOLATION', 'VDI', 'uuid', uuid);
  const ref = await runOperation(svc.store, ctx, 'SR', sr, 'vdi_introduce', () => svc.locked(sr, async () => {
    if ((store.field('SR', sr, 'VDIs') ?? []).some((v) => store.field('VDI', v, 'location') === a.location)) fail('LOCATION_NOT_UNIQUE', sr, a.location);
    let res: Record<string, unknown>;
    try {
      res = await svc.call(sr, 'vdi_introduce', { vdi: { uuid, location: a.location, sm_config: a.sm_config }, op: 'vdi_introduce' });
    } catch (e) {
      if (e instanceof XenApiError && e.code === 'VDI_MISSING') fail('VDI_LOCATION_MISSING', sr, a.location);
      throw e;
    }
    return store.create('VDI', recordFrom({ ...a, virtual_size: 0 }, sr, uuid, { ...res, location: res.location ?? a.location }));
  }));
  await refreshSr(svc, sr);
  refreshOperations(store, { sr, vdi: ref });
  return ref;
}

/** VDI.forget: the record goes, the image stays (a scan brings it back). */
export async function forgetVdi(svc: StorageService, ctx: CallContext, vdi: string): Promise<void> {
  const sr = svc.store.field('VDI', vdi, 'SR')!;
  assertOperationValid(svc.store, 'VDI', vdi, 'forget');
  await runOperation(svc.store, ctx, 'VDI', vdi, 'forget', async () => {
    dropVdiRecord(svc, vdi);
  });
  await refreshSr(svc, sr);
  refreshOperations(svc.store, { sr });
}
