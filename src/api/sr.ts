// SR: creating storage through its type's plugin, introducing and forgetting records,
// destroying storage, scanning and probing.
import { randomUUID } from 'node:crypto';
import type { CallContext, Handler } from './context.js';
import { fail, XenApiError } from './errors.js';
import { assertOperationValid, runOperation } from './operations.js';
import { activeVbds, refreshOperations } from '../storage/rules.js';
import { storageOf } from '../storage/service.js';
import { forgetSrRecords, plugPbd, scanSr, unplugPbd } from '../storage/srops.js';

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

/** Runs sr_create for a new uuid, with a journal entry until the records exist. */
async function makeStorage(ctx: CallContext, type: string, deviceConfig: Record<string, string>, physicalSize: number, smConfig: Record<string, string>, keepIntent: boolean) {
  const svc = storageOf(ctx.daemon);
  const m = svc.manifestForType(type);
  const uuid = randomUUID();
  const intent = keepIntent ? svc.intents.add({ kind: 'sr-create', srUuid: uuid, type: m.type, deviceConfig, smConfig }) : undefined;
  try {
    await svc.call('', 'sr_create', { type: m.type, srUuid: uuid, deviceConfig, smConfig, args: { physical_size: physicalSize }, op: 'create' });
  } catch (e) {
    if (intent) svc.intents.remove(intent);
    throw e;
  }
  return { svc, m, uuid, intent };
}

export const srHandlers: Record<string, Handler> = {
  async create(ctx: CallContext, host: string, deviceConfig: Record<string, string>, physicalSize: number, nameLabel: string, nameDescription: string, type: string, contentType: string, shared: boolean, smConfig: Record<string, string>) {
    if (host !== ctx.daemon.hostRef) fail('OPERATION_NOT_ALLOWED', 'this daemon can create SRs only on its own host');
    const { svc, m, uuid, intent } = await makeStorage(ctx, type, deviceConfig, physicalSize, smConfig, true);
    const store = ctx.daemon.store;
    let sr: string;
    let pbd: string;
    try {
      [sr, pbd] = store.tx(() => {
        const sr = store.create('SR', {
          uuid, name_label: nameLabel, name_description: nameDescription, type: m.type, content_type: contentType || m.content_type,
          shared, other_config: {}, sm_config: smConfig, physical_size: -1, physical_utilisation: -1, virtual_allocation: 0,
        });
        const pbd = store.create('PBD', { host, SR: sr, device_config: deviceConfig, currently_attached: false, other_config: {} });
        return [sr, pbd];
      });
    } catch (e) {
      await svc.call('', 'sr_delete', { type: m.type, srUuid: uuid, deviceConfig, smConfig }).catch(() => undefined);
      throw e;
    } finally {
      svc.intents.remove(intent!);
    }
    refreshOperations(store, { sr });
    try {
      await plugPbd(svc, pbd, ctx);
    } catch (e) {
      // As xapi: the SR exists; the failed plug is for the administrator to look into.
      ctx.daemon.log.warn({ sr, pbd, err: (e as Error).message }, 'SR created but its PBD could not be plugged');
    }
    return sr;
  },

  async make(ctx: CallContext, host: string, deviceConfig: Record<string, string>, physicalSize: number, _nameLabel: string, _nameDescription: string, type: string, _contentType: string, smConfig: Record<string, string>) {
    if (host !== ctx.daemon.hostRef) fail('OPERATION_NOT_ALLOWED', 'this daemon can make SRs only on its own host');
    // Storage only, no records: the caller introduces the SR and makes a PBD.
    const { uuid } = await makeStorage(ctx, type, deviceConfig, physicalSize, smConfig, false);
    return uuid;
  },

  introduce(ctx: CallContext, uuid: string, nameLabel: string, nameDescription: string, type: string, contentType: string, shared: boolean, smConfig: Record<string, string>) {
    const store = ctx.daemon.store;
    const id = uuid || randomUUID();
    if (store.refByUuid('SR', id)) fail('SR_UUID_EXISTS', id);
    const sr = store.create('SR', {
      uuid: id, name_label: nameLabel, name_description: nameDescription, type: type.toLowerCase(), content_type: contentType,
      shared, other_config: {}, sm_config: smConfig, physical_size: 0, physical_utilisation: 0, virtual_allocation: 0,
    });
    refreshOperations(store, { sr });
    return sr;
  },

  async forget(ctx: CallContext, sr: string) {
    const svc = storageOf(ctx.daemon);
    await runOperation(ctx, 'SR', sr, 'forget', async () => forgetSrRecords(svc, sr));
  },

  async destroy(ctx: CallContext, sr: string) {
    const svc = storageOf(ctx.daemon);
    const store = ctx.daemon.store;
    assertOperationValid(store, 'SR', sr, 'destroy');
    const inUse = (store.field('SR', sr, 'VDIs') ?? []).filter((v) => activeVbds(store, v).length > 0);
    if (inUse.length > 0) throw new XenApiError('VDI_IN_USE', inUse);
    const pbd = svc.localPbd(sr);
    if (!pbd) fail('SR_HAS_NO_PBDS', sr);
    const deviceConfig = store.field('PBD', pbd, 'device_config') ?? {};
    await runOperation(ctx, 'SR', sr, 'destroy', () => svc.locked(sr, async () => {
      await svc.call(sr, 'sr_attach', { deviceConfig, op: 'destroy' });
      await svc.call(sr, 'sr_delete', { deviceConfig, op: 'destroy' });
      forgetSrRecords(svc, sr);
    }));
  },

  async scan(ctx: CallContext, sr: string) {
    const svc = storageOf(ctx.daemon);
    await runOperation(ctx, 'SR', sr, 'scan', () => scanSr(svc, sr));
  },

  async probe(ctx: CallContext, _host: string, deviceConfig: Record<string, string>, type: string, smConfig: Record<string, string>) {
    const svc = storageOf(ctx.daemon);
    const m = svc.manifestForType(type);
    if (!m.capabilities.includes('SR_PROBE')) fail('SR_BACKEND_FAILURE', "Operation 'sr_probe' not supported by this SR type", '', '');
    const res = await svc.call('', 'sr_probe', { type: m.type, args: { device_config: deviceConfig, sm_config: smConfig }, op: 'probe' });
    return probeXml(Array.isArray(res.srs) ? res.srs : []);
  },

  get_supported_types(ctx: CallContext) {
    return [...storageOf(ctx.daemon).plugins.keys()].sort();
  },

  set_shared(ctx: CallContext, sr: string, value: boolean) {
    const store = ctx.daemon.store;
    const pbds = store.field('SR', sr, 'PBDs') ?? [];
    if (!value && pbds.length > 1) fail('SR_HAS_MULTIPLE_PBDS', pbds.join(','));
    store.update('SR', sr, { shared: value });
  },

  set_physical_size(ctx: CallContext, sr: string, value: number) {
    ctx.daemon.store.update('SR', sr, { physical_size: value });
  },

  set_name_label(ctx: CallContext, sr: string, value: string) {
    ctx.daemon.store.update('SR', sr, { name_label: value });
  },

  set_name_description(ctx: CallContext, sr: string, value: string) {
    ctx.daemon.store.update('SR', sr, { name_description: value });
  },
};

export const pbdHandlers: Record<string, Handler> = {
  create(ctx: CallContext, args: Record<string, unknown>) {
    const store = ctx.daemon.store;
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
  },

  destroy(ctx: CallContext, pbd: string) {
    const store = ctx.daemon.store;
    if (store.field('PBD', pbd, 'currently_attached')) fail('OPERATION_NOT_ALLOWED', 'PBD is currently attached');
    const sr = store.field('PBD', pbd, 'SR')!;
    store.destroy('PBD', pbd);
    refreshOperations(store, { sr });
  },

  async plug(ctx: CallContext, pbd: string) {
    await plugPbd(storageOf(ctx.daemon), pbd, ctx);
  },

  async unplug(ctx: CallContext, pbd: string) {
    await unplugPbd(storageOf(ctx.daemon), pbd, ctx);
  },

  set_device_config(ctx: CallContext, pbd: string, value: Record<string, string>) {
    ctx.daemon.store.update('PBD', pbd, { device_config: value });
  },
};
