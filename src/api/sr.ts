// SR and PBD messages; the work is in src/storage/sr.ts and srops.ts.
import type { ApiContext, Handler } from './context.js';
import * as sr from '../storage/sr.js';
import { plugPbd, unplugPbd } from '../storage/srops.js';

type StringMap = Record<string, string>;

export const srHandlers: Record<string, Handler> = {
  create(ctx: ApiContext, host: string, deviceConfig: StringMap, physicalSize: number, nameLabel: string, nameDescription: string, type: string, contentType: string, shared: boolean, smConfig: StringMap) {
    return sr.createSr(ctx.daemon.storage, ctx, { host, deviceConfig, physicalSize, nameLabel, nameDescription, type, contentType, shared, smConfig });
  },
  make(ctx: ApiContext, host: string, deviceConfig: StringMap, physicalSize: number, nameLabel: string, nameDescription: string, type: string, contentType: string, smConfig: StringMap) {
    return sr.makeSr(ctx.daemon.storage, { host, deviceConfig, physicalSize, nameLabel, nameDescription, type, contentType, shared: false, smConfig });
  },
  introduce(ctx: ApiContext, uuid: string, nameLabel: string, nameDescription: string, type: string, contentType: string, shared: boolean, smConfig: StringMap) {
    return sr.introduceSr(ctx.daemon.storage, { uuid, nameLabel, nameDescription, type, contentType, shared, smConfig });
  },
  forget: (ctx: ApiContext, self: string) => sr.forgetSr(ctx.daemon.storage, ctx, self),
  destroy: (ctx: ApiContext, self: string) => sr.destroySr(ctx.daemon.storage, ctx, self),
  scan: (ctx: ApiContext, self: string) => sr.scanSrOperation(ctx.daemon.storage, ctx, self),
  probe: (ctx: ApiContext, _host: string, deviceConfig: StringMap, type: string, smConfig: StringMap) => sr.probeSr(ctx.daemon.storage, deviceConfig, type, smConfig),
  get_supported_types: (ctx: ApiContext) => [...ctx.daemon.storage.plugins.keys()].sort(),
  set_shared: (ctx: ApiContext, self: string, value: boolean) => sr.setSrShared(ctx.daemon.storage, self, value),
  set_physical_size: (ctx: ApiContext, self: string, value: number) => ctx.daemon.store.update('SR', self, { physical_size: value }),
  set_name_label: (ctx: ApiContext, self: string, value: string) => ctx.daemon.store.update('SR', self, { name_label: value }),
  set_name_description: (ctx: ApiContext, self: string, value: string) => ctx.daemon.store.update('SR', self, { name_description: value }),
};

export const pbdHandlers: Record<string, Handler> = {
  create: (ctx: ApiContext, args: Record<string, unknown>) => sr.createPbd(ctx.daemon.storage, args),
  destroy: (ctx: ApiContext, pbd: string) => sr.destroyPbd(ctx.daemon.storage, pbd),
  plug: (ctx: ApiContext, pbd: string) => plugPbd(ctx.daemon.storage, pbd, ctx),
  unplug: (ctx: ApiContext, pbd: string) => unplugPbd(ctx.daemon.storage, pbd, ctx),
  set_device_config: (ctx: ApiContext, pbd: string, value: StringMap) => ctx.daemon.store.update('PBD', pbd, { device_config: value }),
};
