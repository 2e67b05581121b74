// VDI: disks made, copied, resized and removed through their SR's plugin.
import type { ApiContext, Handler } from './context.js';
import type { VDIRecord } from '../datamodel/records.js';
import { branchVdi, copyVdi, createVdi, destroyVdi, forgetVdi, introduceVdi, resizeVdi } from '../storage/vdiops.js';

export const vdiHandlers: Record<string, Handler> = {
  create(ctx: ApiContext, args: Partial<VDIRecord>) {
    return createVdi(ctx.daemon.storage, ctx, args);
  },

  destroy(ctx: ApiContext, vdi: string) {
    return destroyVdi(ctx.daemon.storage, ctx, vdi);
  },

  clone(ctx: ApiContext, vdi: string, driverParams: Record<string, string>) {
    return branchVdi(ctx.daemon.storage, ctx, vdi, 'clone', driverParams);
  },

  snapshot(ctx: ApiContext, vdi: string, driverParams: Record<string, string>) {
    return branchVdi(ctx.daemon.storage, ctx, vdi, 'snapshot', driverParams);
  },

  copy(ctx: ApiContext, vdi: string, sr: string, baseVdi: string, intoVdi: string) {
    return copyVdi(ctx.daemon.storage, ctx, vdi, sr, baseVdi, intoVdi);
  },

  resize(ctx: ApiContext, vdi: string, size: number) {
    return resizeVdi(ctx.daemon.storage, ctx, vdi, size, false);
  },

  resize_online(ctx: ApiContext, vdi: string, size: number) {
    return resizeVdi(ctx.daemon.storage, ctx, vdi, size, true);
  },

  introduce(ctx: ApiContext, uuid: string, nameLabel: string, nameDescription: string, sr: string, type: VDIRecord['type'], sharable: boolean, readOnly: boolean,
    otherConfig: Record<string, string>, location: string, xenstoreData: Record<string, string>, smConfig: Record<string, string>) {
    // The later parameters (managed, sizes, snapshot fields) are not part of API 1.1:
    // sizes come from the plugin, and a 1.1 VDI has no snapshot fields.
    return introduceVdi(ctx.daemon.storage, ctx, {
      uuid, name_label: nameLabel, name_description: nameDescription, SR: sr, type, sharable, read_only: readOnly,
      other_config: otherConfig, location, xenstore_data: xenstoreData, sm_config: smConfig,
    });
  },

  forget(ctx: ApiContext, vdi: string) {
    return forgetVdi(ctx.daemon.storage, ctx, vdi);
  },

  set_read_only(ctx: ApiContext, vdi: string, value: boolean) {
    ctx.daemon.store.update('VDI', vdi, { read_only: value });
  },

  set_name_label(ctx: ApiContext, vdi: string, value: string) {
    ctx.daemon.store.update('VDI', vdi, { name_label: value });
  },

  set_name_description(ctx: ApiContext, vdi: string, value: string) {
    ctx.daemon.store.update('VDI', vdi, { name_description: value });
  },
};
