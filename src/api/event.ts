// event: the classic subscription API and event.from / event.inject.
import type { ApiContext, Handler } from './context.js';

export const eventHandlers: Record<string, Handler> = {
  register(ctx: ApiContext, classes: string[]) {
    ctx.daemon.events.register(ctx.session!, classes);
  },
  unregister(ctx: ApiContext, classes: string[]) {
    ctx.daemon.events.unregister(ctx.session!, classes);
  },
  next(ctx: ApiContext) {
    return ctx.daemon.events.next(ctx.session!);
  },
  get_current_id(ctx: ApiContext) {
    return ctx.daemon.events.getCurrentId();
  },
  from(ctx: ApiContext, classes: string[], token: string, timeout: number) {
    return ctx.daemon.events.from(ctx.session!, classes, token, timeout);
  },
  inject(ctx: ApiContext, cls: string, ref: string) {
    return ctx.daemon.events.inject(cls, ref);
  },
};
