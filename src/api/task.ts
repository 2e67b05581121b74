// task: client-made tasks, cancellation and removal.
import type { ApiContext, Handler } from './context.js';

export const taskHandlers: Record<string, Handler> = {
  create(ctx: ApiContext, label: string, description: string) {
    return ctx.daemon.tasks.create(label, description, ctx.session, true);
  },
  cancel(ctx: ApiContext, task: string) {
    ctx.daemon.tasks.cancel(task, ctx.task?.ref);
  },
  destroy(ctx: ApiContext, task: string) {
    ctx.daemon.tasks.destroy(task);
  },
};
