// What a handler gets: the daemon's services and who is calling.
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { SessionManager } from '../auth/sessions.js';

export type Transport = 'http' | 'https' | 'unix';

export interface Daemon {
  store: ObjectStore;
  sessions: SessionManager;
  log: Logger;
  /** This host's ref and the pool's, fixed at bootstrap. */
  hostRef: string;
  poolRef: string;
}

export interface CallContext {
  daemon: Daemon;
  transport: Transport;
  /** The caller's session ref, for messages that take one. */
  session?: string;
}

/** A custom message's implementation: arguments arrive converted and checked. */
export type Handler = (ctx: CallContext, ...args: any[]) => unknown;
