// The daemon's networking: which interfaces it works on (host, its namespace, or the
// database only), NIC discovery (./discovery.ts) or reconciling the database with the
// host (./reconcile.ts) at start, PIFs up and down on their bridges (./realize.ts, with
// a DHCP client for DHCP PIFs: ./dhcp.ts, ./leases.ts), PIF metrics (./metrics.ts), and
// VIF backends on bridges for the hypervisor driver (./vif-attach.ts). What those parts
// share is in ./state.ts. API operations (./ops.ts, ./pif-ops.ts, ./vlan-bond.ts) run
// one at a time under `exclusive`, as xapi serialises network reconfiguration.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import { IpError, IpRunner } from './ip.js';
import { chooseMode, guardNamespace, type NetworkMode } from './namespace.js';
import { DhcpClients } from './dhcp.js';
import { recordLeases } from './leases.js';
import { ensureStandIns, firstStart } from './discovery.js';
import { reconcile } from './reconcile.js';
import { refreshEvery, refreshMetrics } from './metrics.js';
import { attachToBridge, detachFromBridge } from './vif-attach.js';
import { describe, NetworkState } from './state.js';

export interface NetworkServiceOptions {
  store: ObjectStore;
  log: Logger;
  hostRef: string;
  mode: NetworkMode;
  /** Work in this existing namespace (made by someone else, never deleted by xapid). */
  netns?: string;
  stateDir: string;
  /** Stand-in NICs made in an owned namespace (or in the database) on first start. */
  simNics?: number;
  timeoutMs?: number;
  /** Seconds between PIF metrics refreshes; 0 disables them. */
  metricsIntervalSec?: number;
  /** Longest wait of PIF.reconfigure_ip/plug for a first DHCP lease (default 30). */
  dhcpWaitSec?: number;
  /** VIF hot-plug into running VMs (the VM layer's adapter, src/vm/hotplug.ts). */
  hotplug: VifHotplug;
}

/** What the hypervisor side offers for VIF hot-plug (src/vm/hotplug.ts). */
export interface VifHotplug {
  /** Creates the backend device of a VIF in a running VM; returns its host interface name. */
  plug(vm: string, vif: string): Promise<string>;
  /** Removes the VIF's backend device from the running VM. */
  unplug(vm: string, vif: string): Promise<void>;
}

export class NetworkService extends NetworkState {
  readonly hotplug: VifHotplug;
  private readonly opts: NetworkServiceOptions;
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private guard?: ChildProcess;

  constructor(o: NetworkServiceOptions) {
    super(o);
    this.opts = o;
    this.hotplug = o.hotplug;
    if (o.dhcpWaitSec !== undefined) this.dhcpWaitMs = o.dhcpWaitSec * 1000;
  }

  /** Sets up the mode, then discovers NICs (first start) or reconciles (later starts).
   * On failure everything started is stopped again. */
  async start(): Promise<void> {
    const o = this.opts;
    const { mode, netns, owns, fresh } = await chooseMode({ mode: o.mode, netns: o.netns, stateDir: o.stateDir, timeoutMs: o.timeoutMs ?? 10_000 }, this.log);
    this.settle(mode, netns, owns);
    if (owns && netns) this.guard = guardNamespace(netns);
    try {
      // Host mode: clients outlive xapid, as dhclient outlives xapi, and are adopted here.
      if (this.host.live) {
        this.dhcp = await DhcpClients.open({
          dir: path.join(o.stateDir, 'dhcp'), netns, persistent: mode === 'host', log: this.log,
          onChange: () => recordLeases(this),
        });
      }
      const simNics = o.simNics ?? 2;
      await this.exclusive(async () => {
        if (this.ownsNamespace) await ensureStandIns(this, simNics, fresh);
        if (this.localPifs().length === 0) await firstStart(this, simNics);
        else await reconcile(this);
        await refreshMetrics(this);
      });
      // Clients of an earlier run that no PIF took back.
      await this.dhcp?.dropOrphans();
    } catch (e) {
      await this.stop();
      throw e;
    }
    const every = o.metricsIntervalSec ?? 60;
    if (every > 0) this.timer = refreshEvery(this, every, (fn) => this.exclusive(fn));
  }

  /** Waits for running operations, stops the DHCP clients (namespace mode; in host mode
   * they keep their leases for the next start to adopt), then removes the namespace if
   * xapid made it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    if (this.dhcp && this.mode !== 'host') await this.dhcp.stopAll();
    this.dhcp?.close();
    if (this.ownsNamespace && this.netns) {
      try {
        await IpRunner.netnsDelete(this.netns);
        this.log.info({ netns: this.netns }, 'network namespace removed');
      } catch (e) {
        this.log.error({ err: e instanceof IpError ? e.detail : String(e), netns: this.netns }, 'could not remove the network namespace');
      }
    }
    await this.endGuard();
  }

  /** Lets the namespace's guard go, and waits for it: a daemon restarted in place makes
   * the namespace again with the same owner mark (its PID), which a guard still running
   * would take for its own and delete. */
  private async endGuard(): Promise<void> {
    const guard = this.guard;
    if (!guard || guard.exitCode !== null || guard.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => guard.once('exit', () => resolve()));
    guard.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise<void>((resolve) => { timer = setTimeout(resolve, 5000); })]);
    clearTimeout(timer);
  }

  /** Runs fn after every network operation started before it (one at a time). Commands
   * still queued at the end are sent (an operation that forgot to is a bug: logged). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      this.host.invalidate();
      try {
        return await fn();
      } finally {
        await this.host.flush(true).catch((err) => this.log.error({ err: describe(err) }, 'queued network commands failed'));
        this.host.invalidate();
        // A lease that came while the database did not want it yet (e.g. before the
        // PIF's new mode was recorded) is recorded now.
        recordLeases(this);
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  // ---- VIFs (for the hypervisor driver and the VM power-state machine) -------------

  /** Puts a VIF's backend interface (e.g. vif3.0) on its network's bridge; see
   * attachToBridge in ./vif-attach.ts. Failures are CANNOT_PLUG_VIF and undone. */
  attachVif(vifRef: string, ifname: string): Promise<void> {
    return this.exclusive(() => attachToBridge(this, vifRef, ifname));
  }

  /** Takes a VIF's backend interface off its bridge (if it still exists) and records
   * the VIF as detached (a driver that deleted the device passes no name). */
  detachVif(vifRef: string, ifname?: string): Promise<void> {
    return this.exclusive(() => detachFromBridge(this, vifRef, ifname));
  }
}
