// What a handler gets: the call's context and the daemon's services, which daemon.ts
// constructs and wires. Only the API layer (and rpc/ above it) sees this whole set.
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { SessionManager } from '../auth/sessions.js';
import type { TaskManager } from '../tasks/manager.js';
import type { EventService } from '../events/service.js';
import type { NetworkService } from '../network/service.js';
import type { StorageService } from '../storage/service.js';
import type { VmService } from '../vm/service.js';
import type { HostAdmin } from '../host/admin.js';
import type { PoolRole } from '../pool/role.js';
import type { CallContext } from '../core/context.js';


export interface Daemon {
  store: ObjectStore;
  sessions: SessionManager;
  tasks: TaskManager;
  events: EventService;
  network: NetworkService;
  storage: StorageService;
  vms: VmService;
  /** This host's administration (host.disable, host.enable). */
  host: HostAdmin;
  /** This host's pool role and the pool secret. */
  role: PoolRole;
  log: Logger;
  /** This host's ref and the pool's, fixed at bootstrap. */
  hostRef: string;
  poolRef: string;
}

export interface ApiContext extends CallContext {
  daemon: Daemon;
}

/** A custom message's implementation: arguments arrive converted and checked. */
export type Handler = (ctx: ApiContext, ...args: any[]) => unknown;
