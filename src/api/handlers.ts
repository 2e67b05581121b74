// The custom messages implemented so far, one module per class.
import type { Handler } from './context.js';
import { sessionHandlers } from './session.js';

export const handlers = new Map<string, Handler>([
  ...Object.entries(sessionHandlers).map(([n, h]) => [`session.${n}`, h] as const),
]);
