// task: client-made tasks, cancellation and removal.
import type { CallContext, Handler } from './context.js';

export const taskHandlers: Record<string, Handler> = {
  create(ctx: CallContext, label: string, description: string) {
    return ctx.daemon.tasks.create(label, description, ctx.session, true);
  },
  cancel(ctx: CallContext, task: string) {
    ctx.daemon.tasks.cancel(task, ctx.task?.ref);
  },
  destroy(ctx: CallContext, task: string) {
    ctx.daemon.tasks.destroy(task);
  },
};
