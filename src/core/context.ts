// What a service needs to know about the call it serves: how the caller came in, its
// session, and the task the work runs under. The API layer's context extends this with
// the daemon's services; services never see that part, they get their own dependencies.

export type Transport = 'http' | 'https' | 'unix';

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
  transport: Transport;
  /** The caller's session ref, for messages that take one. */
  session?: string;
  task?: TaskHandle;
}

/** The context of work the daemon starts itself (restarts after a guest crash, clean-ups). */
export const INTERNAL: CallContext = Object.freeze({ transport: 'unix' });
