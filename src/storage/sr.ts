// SR and PBD messages: creating storage through its type's plugin, introducing and
// forgetting records, destroying storage, scanning and probing.
import { randomUUID } from 'node:crypto';
import type { CallContext } from '../core/context.js';
import { fail, XenApiError } from '../core/errors.js';
import { assertOperationValid, runOperation } from '../core/operations.js';
import { activeVbds, refreshOperations } from './rules.js';
import type { StorageService } from './service.js';
import { forgetSrRecords, plugPbd, scanSr } from './srops.js';

const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** SR.probe's answer in xapi's format: <SRlist><SR><UUID>…</UUID>…</SR></SRlist>. */
export function probeXml(srs: unknown[]): string {
  const lines = ['<?xml version="1.0" ?>', '<SRlist>'];
  for (const s of srs) {
    if (!s || typeof s !== 'object') continue;
    lines.push('\t<SR>');
    const o = s as Record<string, unknown>;
    if (o.uuid !== undefined) lines.push(`\t\t<UUID>\n\t\t\t${esc(String(o.uuid))}\n\t\t</UUID>`);
    for (const [k, v] of Object.entries(o)) {
      if (k === 'uuid' || !XML_NAME.test(k)) continue;
      lines.push(`\t\t<${k}>\n\t\t\t${esc(String(v))}\n\t\t</${k}>`);
    }
    lines.push('\t</SR>');
  }
  lines.push('</SRlist>');
  return `${lines.join('\n')}\n`;
}

export interface NewSr {
  host: string;
  deviceConfig: Record<string, string>;
  physicalSize: number;
  nameLabel: string;
  nameDescription: string;
  type: string;
  contentType: string;
  shared: boolean;
  smConfig: Record<string, string>;
}

/** Runs sr_create for a new uuid, with a journal entry until the records exist. */
async function makeStorage(svc: StorageService, a: NewSr, keepIntent: boolean) {
  const m = svc.manifestForType(a.type);
  const uuid = randomUUID();
  const intent = keepIntent ? svc.intents.add({ kind: 'sr-create', srUuid: uuid, type: m.type, deviceConfig: a.deviceConfig, smConfig: a.smConfig }) : undefined;
  try {
    await svc.call('', 'sr_create', { type: m.type, srUuid: uuid, deviceConfig: a.deviceConfig, smConfig: a.smConfig, args: { physical_size: a.physicalSize }, op: 'create' });
  } catch (e) {
    if (intent) svc.intents.remove(intent);
    throw e;
  }
  return { m, uuid, intent };
}

/** SR.create: the storage, its records, and its PBD plugged. */
export async function createSr(svc: StorageService, ctx: CallContext, a: NewSr): Promise<string> {
  if (a.host !== svc.hostRef) fail('OPERATION_NOT_ALLOWED', 'this daemon can create SRs only on its own host');
  const { m, uuid, intent } = await makeStorage(svc, a, true);
  const store = svc.store;
  let sr: string;
  let pbd: string;
  try {
    [sr, pbd] = store.tx(() => {
      const sr = store.create('SR', {
        uuid, name_label: a.nameLabel, name_description: a.nameDescription, type: m.type, content_type: a.contentType || m.content_type,
        shared: a.shared, other_config: {}, sm_config: a.smConfig, physical_size: -1, physical_utilisation: -1, virtual_allocation: 0,
      });
      const pbd = store.create('PBD', { host: a.host, SR: sr, device_config: a.deviceConfig, currently_attached: false, other_config: {} });
      return [sr, pbd];
    });
  } catch (e) {
    await svc.call('', 'sr_delete', { type: m.type, srUuid: uuid, deviceConfig: a.deviceConfig, smConfig: a.smConfig }).catch(() => undefined);
    throw e;
  } finally {
    svc.intents.remove(intent!);
  }
  refreshOperations(store, { sr });
  try {
    await plugPbd(svc, pbd, ctx);
  } catch (e) {
    // As xapi: the SR exists; the failed plug is for the administrator to look into.
    svc.log.warn({ sr, pbd, err: (e as Error).message }, 'SR created but its PBD could not be plugged');
  }
  return sr;
}

/** SR.make: storage only, no records (the caller introduces the SR and makes a PBD). */
export async function makeSr(svc: StorageService, a: NewSr): Promise<string> {
  if (a.host !== svc.hostRef) fail('OPERATION_NOT_ALLOWED', 'this daemon can make SRs only on its own host');
  const { uuid } = await makeStorage(svc, a, false);
  return uuid;
}

export function introduceSr(svc: StorageService, a: Omit<NewSr, 'host' | 'deviceConfig' | 'physicalSize'> & { uuid: string }): string {
  const store = svc.store;
  const id = a.uuid || randomUUID();
  if (store.refByUuid('SR', id)) fail('SR_UUID_EXISTS', id);
  const sr = store.create('SR', {
    uuid: id, name_label: a.nameLabel, name_description: a.nameDescription, type: a.type.toLowerCase(), content_type: a.contentType,
    shared: a.shared, other_config: {}, sm_config: a.smConfig, physical_size: 0, physical_utilisation: 0, virtual_allocation: 0,
  });
  refreshOperations(store, { sr });
  return sr;
}

export async function forgetSr(svc: StorageService, ctx: CallContext, sr: string): Promise<void> {
  await runOperation(svc.store, ctx, 'SR', sr, 'forget', async () => forgetSrRecords(svc, sr));
}

export async function destroySr(svc: StorageService, ctx: CallContext, sr: string): Promise<void> {
  const store = svc.store;
  assertOperationValid(store, 'SR', sr, 'destroy');
  const inUse = (store.field('SR', sr, 'VDIs') ?? []).filter((v) => activeVbds(store, v).length > 0);
  if (inUse.length > 0) throw new XenApiError('VDI_IN_USE', inUse);
  const pbd = svc.localPbd(sr);
  if (!pbd) fail('SR_HAS_NO_PBDS', sr);
  const deviceConfig = store.field('PBD', pbd, 'device_config') ?? {};
  await runOperation(store, ctx, 'SR', sr, 'destroy', () => svc.locked(sr, async () => {
    await svc.call(sr, 'sr_attach', { deviceConfig, op: 'destroy' });
    await svc.call(sr, 'sr_delete', { deviceConfig, op: 'destroy' });
    forgetSrRecords(svc, sr);
  }));
}

export async function scanSrOperation(svc: StorageService, ctx: CallContext, sr: string): Promise<void> {
  await runOperation(svc.store, ctx, 'SR', sr, 'scan', () => scanSr(svc, sr));
}

export async function probeSr(svc: StorageService, deviceConfig: Record<string, string>, type: string, smConfig: Record<string, string>): Promise<string> {
  const m = svc.manifestForType(type);
  if (!m.capabilities.includes('SR_PROBE')) fail('SR_BACKEND_FAILURE', "Operation 'sr_probe' not supported by this SR type", '', '');
  const res = await svc.call('', 'sr_probe', { type: m.type, args: { device_config: deviceConfig, sm_config: smConfig }, op: 'probe' });
  return probeXml(Array.isArray(res.srs) ? res.srs : []);
}

export function setSrShared(svc: StorageService, sr: string, value: boolean): void {
  const pbds = svc.store.field('SR', sr, 'PBDs') ?? [];
  if (!value && pbds.length > 1) fail('SR_HAS_MULTIPLE_PBDS', pbds.join(','));
  svc.store.update('SR', sr, { shared: value });
}

// ---- PBD ------------------------------------------------------------------------------

export function createPbd(svc: StorageService, args: Record<string, unknown>): string {
  const store = svc.store;
  for (const f of ['host', 'SR', 'device_config'] as const) if (!(f in args)) fail('FIELD_TYPE_ERROR', f);
  const host = args.host as string;
  const sr = args.SR as string;
  if (!store.exists('host', host)) fail('HANDLE_INVALID', 'host', host);
  if (!store.exists('SR', sr)) fail('HANDLE_INVALID', 'SR', sr);
  const existing = (store.field('SR', sr, 'PBDs') ?? []).find((p) => store.field('PBD', p, 'host') === host);
  if (existing) fail('PBD_EXISTS', sr, host, existing);
  const pbd = store.create('PBD', {
    host, SR: sr, device_config: args.device_config as Record<string, string>, currently_attached: false,
    other_config: (args.other_config as Record<string, string> | undefined) ?? {},
  });
  refreshOperations(store, { sr });
  return pbd;
}

export function destroyPbd(svc: StorageService, pbd: string): void {
  const store = svc.store;
  if (store.field('PBD', pbd, 'currently_attached')) fail('OPERATION_NOT_ALLOWED', 'PBD is currently attached');
  const sr = store.field('PBD', pbd, 'SR')!;
  store.destroy('PBD', pbd);
  refreshOperations(store, { sr });
}
