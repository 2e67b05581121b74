// The storage layer at daemon start: end what a previous daemon left running, find the
// plugins and mirror them in SM records, re-attach the SRs that were attached, finish
// the journal's unfinished business, and scan, so that records and disks agree before
// the first client call.
import { XenApiError } from '../core/errors.js';
import { clearStaleOperations } from '../core/operations.js';
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import { discoverPlugins, pluginDirs, type Manifest } from './manifest.js';
import { refreshAllOperations } from './rules.js';
import type { StorageService } from './service.js';
import { dropVdiRecord, refreshSr, scanSr } from './srops.js';

/** One SM record per plugin type, fields kept in step with the manifests. */
export function syncSmRecords(store: ObjectStore, plugins: Map<string, Manifest>): void {
  store.tx(() => {
    const byType = new Map<string, string>();
    for (const [ref, rec] of store.allRecords('SM')) {
      if (byType.has(rec.type as string) || !plugins.has(rec.type as string)) store.destroy('SM', ref);
      else byType.set(rec.type as string, ref);
    }
    for (const m of plugins.values()) {
      const fields = {
        name_label: m.name, name_description: m.description, type: m.type, vendor: m.vendor, copyright: m.copyright,
        version: m.version, required_api_version: m.required_api_version, configuration: m.configuration, capabilities: m.capabilities,
      };
      const ref = byType.get(m.type);
      if (!ref) {
        store.create('SM', { ...fields, other_config: {} });
        continue;
      }
      const cur = store.get('SM', ref)!;
      const changed = Object.entries(fields).filter(([k, v]) => JSON.stringify(cur[k as keyof typeof cur]) !== JSON.stringify(v));
      if (changed.length) store.update('SM', ref, Object.fromEntries(changed));
    }
  });
}

async function reattach(svc: StorageService): Promise<void> {
  const store = svc.store;
  for (const pbd of store.field('host', svc.hostRef, 'PBDs') ?? []) {
    const rec = store.get('PBD', pbd)!;
    if (!rec.currently_attached) continue;
    try {
      await svc.locked(rec.SR, () => svc.call(rec.SR, 'sr_attach', { deviceConfig: rec.device_config, op: 'plug' }));
    } catch (e) {
      svc.log.error({ sr: rec.SR, pbd, err: (e as Error).message }, 'could not re-attach the SR at start: PBD marked unplugged');
      store.update('PBD', pbd, { currently_attached: false });
    }
  }
}

/** Finishes (or undoes) the storage changes a previous daemon did not see through. */
export async function reconcileJournal(svc: StorageService): Promise<void> {
  const store = svc.store;
  const log = svc.log;
  const scans = new Map<string, Array<{ uuid?: string; location: string }>>();
  for (const intent of svc.intents.all()) {
    try {
      if (intent.kind === 'sr-create') {
        if (!store.refByUuid('SR', intent.srUuid)) {
          await svc.call(NULL_REF, 'sr_delete', { type: intent.type, srUuid: intent.srUuid, deviceConfig: intent.deviceConfig, smConfig: intent.smConfig })
            .catch((e: unknown) => {
              // Nothing of this SR was ever made (the plugin finds no SR there): done.
              if (!(e instanceof XenApiError && e.code === 'SR_BACKEND_FAILURE_47')) throw e;
            });
          log.info({ sr: intent.srUuid }, 'removed the storage of an SR whose creation did not finish');
        }
        svc.intents.remove(intent);
        continue;
      }
      const sr = intent.sr;
      if (!store.exists('SR', sr)) {
        svc.intents.remove(intent);
        continue;
      }
      let images = scans.get(sr);
      if (!images) {
        const res = await svc.call(sr, 'sr_scan');
        images = (Array.isArray(res.vdis) ? res.vdis : []) as Array<{ uuid?: string; location: string }>;
        scans.set(sr, images);
      }
      const record = store.refByUuid('VDI', intent.vdiUuid);
      const image = images.find((i) => i.uuid === intent.vdiUuid || (intent.kind === 'vdi-delete' && i.location === intent.location));
      if (image && !record) {
        await svc.call(sr, 'vdi_delete', { vdi: { uuid: intent.vdiUuid, location: image.location, sm_config: {} } });
        log.info({ sr, vdi: intent.vdiUuid, location: image.location }, 'removed an image whose VDI record was never written or already removed');
      } else if (!image && record && intent.kind === 'vdi-delete') {
        dropVdiRecord(svc, record);
        log.info({ sr, vdi: intent.vdiUuid }, 'removed the record of a VDI whose image was already deleted');
      }
      svc.intents.remove(intent);
      if (store.exists('SR', sr)) await refreshSr(svc, sr);
    } catch (e) {
      log.error({ intent, err: (e as Error).message }, 'storage journal entry not settled: kept for the next start');
    }
  }
}

/** Brings the storage layer up at daemon start (see the top of this file). */
export async function startStorage(svc: StorageService): Promise<void> {
  const store = svc.store;
  const reaped = await svc.children.reapStale();
  if (reaped.length > 0) svc.log.warn({ commands: reaped }, 'ended storage processes left running by a previous daemon');
  svc.plugins = discoverPlugins(svc.pluginDirs ?? pluginDirs(), svc.log);
  syncSmRecords(store, svc.plugins);
  svc.log.info({ types: [...svc.plugins.keys()] }, 'storage plugins');
  clearStaleOperations(store);
  await reattach(svc);
  await reconcileJournal(svc);
  for (const pbd of store.field('host', svc.hostRef, 'PBDs') ?? []) {
    const rec = store.get('PBD', pbd)!;
    if (!rec.currently_attached) continue;
    await scanSr(svc, rec.SR).catch((e: Error) => svc.log.warn({ sr: rec.SR, err: e.message }, 'scan at start failed'));
  }
  refreshAllOperations(store);
}
