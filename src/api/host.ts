// host's custom messages implemented so far; the work is in src/host/.
import type { ApiContext, Handler } from './context.js';
import { listMethods } from '../datamodel/model.js';

export const hostHandlers: Record<string, Handler> = {
  disable: (ctx: ApiContext, host: string, autoEnable: boolean) => ctx.daemon.host.disable(host, autoEnable),
  enable: (ctx: ApiContext, host: string) => ctx.daemon.host.enable(host),
  list_methods: () => listMethods(),
};
