// event: the classic subscription API and event.from / event.inject.
import type { CallContext, Handler } from './context.js';

export const eventHandlers: Record<string, Handler> = {
  register(ctx: CallContext, classes: string[]) {
    ctx.daemon.events.register(ctx.session!, classes);
  },
  unregister(ctx: CallContext, classes: string[]) {
    ctx.daemon.events.unregister(ctx.session!, classes);
  },
  next(ctx: CallContext) {
    return ctx.daemon.events.next(ctx.session!);
  },
  get_current_id(ctx: CallContext) {
    return ctx.daemon.events.getCurrentId();
  },
  from(ctx: CallContext, classes: string[], token: string, timeout: number) {
    return ctx.daemon.events.from(ctx.session!, classes, token, timeout);
  },
  inject(ctx: CallContext, cls: string, ref: string) {
    return ctx.daemon.events.inject(cls, ref);
  },
};
