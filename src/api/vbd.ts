// VBD messages and VM.get_allowed_VBD_devices; the work is in src/storage/vbd.ts.
import type { ApiContext, Handler } from './context.js';
import type { VBDRecord } from '../datamodel/records.js';
import { assertAttachable } from '../storage/attach.js';
import { allowedVbdDevices } from '../storage/devices.js';
import * as vbd from '../storage/vbd.js';

export const vbdHandlers: Record<string, Handler> = {
  create: (ctx: ApiContext, args: Partial<VBDRecord>) => vbd.createVbd(ctx.daemon.storage, args),
  destroy: (ctx: ApiContext, self: string) => vbd.destroyVbd(ctx.daemon.storage, self),
  plug: (ctx: ApiContext, self: string) => vbd.plugVbd(ctx.daemon.storage, ctx, self),
  unplug: (ctx: ApiContext, self: string) => vbd.unplugVbd(ctx.daemon.storage, ctx, self, false),
  unplug_force: (ctx: ApiContext, self: string) => vbd.unplugVbd(ctx.daemon.storage, ctx, self, true),
  insert: (ctx: ApiContext, self: string, vdi: string) => vbd.insertVbd(ctx.daemon.storage, ctx, self, vdi),
  eject: (ctx: ApiContext, self: string) => vbd.ejectVbd(ctx.daemon.storage, ctx, self),
  assert_attachable: (ctx: ApiContext, self: string) => assertAttachable(ctx.daemon.storage, self),
  set_mode: (ctx: ApiContext, self: string, value: 'RO' | 'RW') => vbd.setVbdMode(ctx.daemon.storage, self, value),
};

export const vmStorageHandlers: Record<string, Handler> = {
  get_allowed_VBD_devices: (ctx: ApiContext, vm: string) => allowedVbdDevices(ctx.daemon.store, vm),
};
