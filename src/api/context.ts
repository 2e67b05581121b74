// What a handler gets: the daemon's services and who is calling.
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { SessionManager } from '../auth/sessions.js';
import type { TaskManager } from '../tasks/manager.js';
import type { EventService } from '../events/service.js';
import type { NetworkService } from '../network/service.js';
import type { VmService } from '../vm/service.js';

export type Transport = 'http' | 'https' | 'unix';

export interface Daemon {
  store: ObjectStore;
  sessions: SessionManager;
  tasks: TaskManager;
  events: EventService;
  log: Logger;
  /** This host's ref and the pool's, fixed at bootstrap. */
  hostRef: string;
  poolRef: string;
  /** Networking (bridges, PIFs, VLANs, bonds, VIF attach); absent in daemons built without it. */
  network?: NetworkService;
  /** The VM power-state machine and its hypervisor driver; absent in daemons built without it. */
  vms?: VmService;
}

/** The task behind a call of a message that has an Async form (sync calls get one too,
 * as in xapi). Long operations report progress and watch `signal` for cancellation. */
export interface TaskHandle {
  ref: string;
  /** Aborted when a client cancels the task; the handler then throws TASK_CANCELLED. */
  signal: AbortSignal;
  /** Says whether task.cancel may stop this operation now (allowed_operations). */
  setCancellable(on: boolean): void;
  /** Progress from 0 to 1. */
  setProgress(p: number): void;
  /** Throws TASK_CANCELLED if the task was cancelled. */
  checkCancelled(): void;
}

export interface CallContext {
  daemon: Daemon;
  transport: Transport;
  /** The caller's session ref, for messages that take one. */
  session?: string;
  task?: TaskHandle;
}

/** A custom message's implementation: arguments arrive converted and checked. */
export type Handler = (ctx: CallContext, ...args: any[]) => unknown;
