// The custom messages implemented so far, one module per class.
import type { Handler } from './context.js';
import { sessionHandlers } from './session.js';
import { taskHandlers } from './task.js';
import { eventHandlers } from './event.js';

const byClass: Record<string, Record<string, Handler>> = {
  session: sessionHandlers,
  task: taskHandlers,
  event: eventHandlers,
};

export const handlers = new Map<string, Handler>(
  Object.entries(byClass).flatMap(([cls, hs]) => Object.entries(hs).map(([n, h]) => [`${cls}.${n}`, h] as const)),
);
