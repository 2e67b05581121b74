// What the parts of the VM service share: their dependencies and the daemon's VM state
// that lives only in memory. Which VMs have an operation running (domain changes for
// them wait until it ends), one chain of syncs per VM, the waiters for domain changes,
// the memory promised to starts in progress, and the operations the previous daemon
// left behind. One per daemon; src/vm/service.ts makes it and hands it to every part.
import type { Logger } from 'pino';
import type { DomainEvent, DomainInfo, Driver } from '../../drivers/driver.js';
import type { CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { runOperation } from '../core/operations.js';
import type { RecordCodec } from '../core/record-codec.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VBDRecord, VIFRecord, VMRecord } from '../datamodel/records.js';
import type { ObjectStore } from '../db/store.js';
import type { NetworkService } from '../network/service.js';
import type { StorageService } from '../storage/service.js';
import { vmError, type VmOp } from './errors.js';
import { VmStorage } from './storage.js';

export const MiB = 1024 * 1024;

export interface VmServiceDeps {
  store: ObjectStore;
  log: Logger;
  /** This host: where VMs start, and what resident_on names. */
  hostRef: string;
  /** The pool, whose settings name SRs for suspend images and crash dumps. */
  poolRef: string;
  driver: Driver;
  storage: StorageService;
  network: NetworkService;
  /** How VM.last_booted_record is written and read (the wire format's, from rpc/). */
  records: RecordCodec;
  stateDir: string;
  /** How long a clean shutdown or reboot may take, acknowledgement included. */
  shutdownTimeoutMs: number;
  /** A crash this soon after start does not restart the VM (xapi: 120 s). */
  crashGuardMs: number;
  /** A guest restarting this soon after start is delayed more each time (xapi: 60 s). */
  rebootGuardMs: number;
  /** Between VM_metrics / VM_guest_metrics refreshes. */
  metricsIntervalMs: number;
}

export type Power = VMRecord['power_state'];

export class VmState {
  readonly driver: Driver;
  readonly storage: VmStorage;
  readonly store: ObjectStore;
  readonly log: Logger;
  readonly hostRef: string;
  readonly network: NetworkService;
  /** Operations interrupted by the previous daemon, per VM, read before anything clears them. */
  readonly interrupted = new Map<string, string[]>();
  /** Memory promised to starts in progress. */
  reserved = 0;
  closed = false;
  private readonly busy = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly waiters = new Set<(e: DomainEvent) => void>();

  /** `resync` looks at a VM's domain again: called when the last operation on it ends
   * after domain changes were left to it. */
  constructor(readonly opts: VmServiceDeps, private readonly resync: (vm: string) => void) {
    this.driver = opts.driver;
    this.store = opts.store;
    this.hostRef = opts.hostRef;
    this.network = opts.network;
    this.log = opts.log.child({ component: 'vm' });
    this.storage = new VmStorage(opts.storage, opts.stateDir);
    // Read now: other start-up steps clear current_operations before open() runs.
    for (const [ref, rec] of this.store.allRecords('VM')) {
      const ops = Object.values(rec.current_operations as Record<string, string>);
      if (ops.length) this.interrupted.set(ref, ops);
    }
  }

  // ---- operations ------------------------------------------------------------------------

  /** Runs an operation on the VM with its lock; domain events meanwhile wait for it. */
  async withOp<T>(ctx: CallContext, vm: string, op: string, fn: () => Promise<T>): Promise<T> {
    return runOperation(this.store, ctx, 'VM', vm, op, async () => {
      this.busy.set(vm, (this.busy.get(vm) ?? 0) + 1);
      try {
        return await fn();
      } finally {
        const n = (this.busy.get(vm) ?? 1) - 1;
        if (n > 0) this.busy.set(vm, n);
        else {
          this.busy.delete(vm);
          if (this.pending.delete(vm)) setImmediate(() => this.resync(vm));
        }
      }
    });
  }

  isBusy(vm: string): boolean {
    return this.busy.has(vm);
  }

  /** True when an operation runs on the VM: the change is then left to it, and looked at
   * again when it ends. */
  leaveToOperation(vm: string): boolean {
    if (!this.busy.has(vm)) return false;
    this.pending.add(vm);
    return true;
  }

  // ---- domain changes --------------------------------------------------------------------

  /** One sync at a time per VM, in order. */
  serial(vm: string, fn: () => Promise<void>): void {
    const prev = this.chains.get(vm) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => this.log.error({ vm, err: err instanceof Error ? err.message : String(err) }, 'acting on a domain change failed'));
    this.chains.set(vm, next);
    void next.then(() => {
      if (this.chains.get(vm) === next) this.chains.delete(vm);
    });
  }

  /** Waits for the syncs under way. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  /** Tells the waiters of waitDomain about a domain change. */
  notify(e: DomainEvent): void {
    for (const w of this.waiters) w(e);
  }

  /** Waits until `done` holds for the domain (undefined: it is gone), or the time is up. */
  waitDomain(domid: number, done: (d: DomainInfo | undefined) => boolean, timeoutMs: number): Promise<DomainInfo | undefined | 'timeout'> {
    return new Promise((resolve) => {
      let finished = false;
      const finish = (v: DomainInfo | undefined | 'timeout') => {
        if (finished) return;
        finished = true;
        this.waiters.delete(listener);
        clearTimeout(timer);
        resolve(v);
      };
      const listener = (e: DomainEvent) => {
        if (e.kind === 'gone' && e.domid === domid && done(undefined)) finish(undefined);
        else if (e.kind === 'changed' && e.info.domid === domid && done(e.info)) finish(e.info);
      };
      this.waiters.add(listener);
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      void this.driver.info(domid).then((d) => {
        if (done(d)) finish(d);
      }, () => undefined);
    });
  }

  /** The VM's domain: the one with the domid the record names, else its newest. */
  async domainOf(uuid: string, domid?: number): Promise<DomainInfo | undefined> {
    const mine = (await this.driver.list()).filter((d) => d.uuid === uuid);
    return mine.find((d) => d.domid === domid) ?? mine.sort((a, b) => b.domid - a.domid)[0];
  }

  /** Destroys the domain; one that is gone already is no failure. */
  async destroyDomain(vm: string, domid: number, op: VmOp): Promise<void> {
    await this.driver.destroy(domid).catch((e) => {
      if (!(e instanceof Error && (e as { kind?: string }).kind === 'no-such-domain')) throw vmError(e, vm, op);
    });
  }

  /** With xl a VIF's backend is a host interface, which the network service attaches and
   * releases; elsewhere a VIF counts as attached while its domain runs. */
  usesHostNetworking(): boolean {
    return this.driver.name === 'xl';
  }

  // ---- records ---------------------------------------------------------------------------

  vm(ref: string): VMRecord {
    const r = this.store.get('VM', ref);
    if (!r) fail('HANDLE_INVALID', 'VM', ref);
    return r;
  }

  vbds(vm: VMRecord): Array<[string, VBDRecord]> {
    return vm.VBDs.map((r) => [r, this.store.get('VBD', r)!] as [string, VBDRecord]).filter(([, b]) => b);
  }

  vifs(vm: VMRecord): Array<[string, VIFRecord]> {
    return vm.VIFs.map((r) => [r, this.store.get('VIF', r)!] as [string, VIFRecord]).filter(([, v]) => v);
  }

  /** The SR a kind of image goes to, from host then pool settings. */
  pickSr(where: string[]): string | undefined {
    const store = this.store;
    for (const w of where) {
      const [cls, field] = w.split('.') as ['host' | 'pool', string];
      const ref = cls === 'host' ? this.hostRef : this.opts.poolRef;
      const sr = store.any.field(cls, ref, field) as string | undefined;
      if (sr && sr !== NULL_REF && store.exists('SR', sr)) return sr;
    }
    return undefined;
  }
}
